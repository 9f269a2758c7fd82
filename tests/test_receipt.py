"""Receipts: the model built from real completed sales, exact ESC/POS bytes, and the PDF.

Golden files live in tests/data/receipts/<kind>.bin (one per receipt kind). After an
intended layout change, regenerate and review them with::

    RECEIPT_GOLDENS=update .venv/bin/python -m pytest -q tests/test_receipt.py -p no:cacheprovider
    .venv/bin/python -m tests.test_receipt tests/data/receipts/plain.bin   # show one as text

Receipts are rendered in English message ids (the German catalog is filled later and must
not change the golden bytes); shop data and product names carry the umlauts.
"""

from __future__ import annotations

import datetime as dt
import difflib
import io
import os
import re
import sys
from pathlib import Path

import pypdf
import pytest
from escpos.printer import Dummy

from kiosk import i18n
from kiosk.drivers.receipt_escpos import DEFAULT_LOGO, Layout, columns, render, to_bytes
from kiosk.engine import catalog, customers, giftcards, loyalty, receipt, sale, settings, wallet
from kiosk.engine.store import Identity, Store

GOLDEN_DIR = Path(__file__).parent / "data" / "receipts"
UPDATE = os.environ.get("RECEIPT_GOLDENS") == "update"
UTC = dt.timezone.utc


# -- helpers ---------------------------------------------------------------------------------------
def readable(data: bytes) -> str:
    """ESC/POS bytes as text (CP858), control and image bytes as \\xNN, one row per line."""
    out = []
    for b in data:
        ch = bytes([b]).decode("cp858")
        out.append(ch if b == 0x0A or 0x20 <= b < 0x7F or b >= 0x80 and ch.isprintable()
                   else f"\\x{b:02x}")  # fmt: skip
    return "".join(out)


def check_golden(name: str, data: bytes) -> None:
    path = GOLDEN_DIR / f"{name}.bin"
    if UPDATE or not path.exists():
        if not UPDATE:
            pytest.fail(f"no golden file {path}: run with RECEIPT_GOLDENS=update and review it")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    expected = path.read_bytes()
    if data != expected:
        diff = "\n".join(difflib.unified_diff(
            readable(expected).splitlines(), readable(data).splitlines(),
            f"{name}.bin", "rendered", lineterm="", n=1))  # fmt: skip
        pytest.fail(f"receipt bytes differ from {path.name}:\n{diff[:6000]}")


def printed(model: receipt.Receipt, layout: Layout = Layout()) -> bytes:
    printer = Dummy(profile="default")
    render(model, printer, layout)
    return printer.output


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture(autouse=True)
def english():
    before = i18n.language()
    i18n.set_language("en")
    yield
    i18n.set_language(before)


@pytest.fixture
def clock():
    return Clock(dt.datetime(2026, 5, 4, 10, 30, tzinfo=UTC))  # 12:30 in Berlin (CEST)


@pytest.fixture
def shop(tmp_path, clock):
    """A till in a real SQLite file with a fixed key, so generated card numbers repeat."""
    s = Store(tmp_path / "till.db", Identity("teststore", "till-1", 1), clock=clock,
              secret_key=b"receipt-golden-files-key-0123456")  # fmt: skip
    with s.transaction():
        settings.set(s, "shop.name", "Mode & Schuhe Müller")
        settings.set(s, "shop.address", "Hauptstraße 1\n80331 München")
        settings.set(s, "shop.phone", "089 123456")
        settings.set(s, "shop.email", "info@mueller-mode.de")
        settings.set(s, "shop.vat_id", "DE123456789")
        settings.set(s, "receipt.footer", "Vielen Dank für Ihren Einkauf!\nÖffnungszeiten: Mo–Sa")
        damen = catalog.save_group(s, "Damenoberbekleidung", gender="damen")
        s.products = {
            "bluse": catalog.save_product(s, "Bluse Größe M, weiß", 4995, group_id=damen,
                                          eans=["4006381333931"]),  # fmt: skip
            "socken": catalog.save_product(s, "Söckchen (3 Paar)", 899, group_id=damen),
            "tee": catalog.save_product(s, "Süßer Tee – Früchte", 350, vat_bp=700),
            "mantel": catalog.save_product(
                s, "Wintermantel Wolle mit sehr langem Namen für den Zeilenumbruch", 18900,
                group_id=damen),  # fmt: skip
        }
    yield s
    s.close()


def sell(store: Store, items, *, customer=None, pay=(("cash", 0),), prepare=None) -> str:
    """Ring up a sale the way the till does and return its id."""
    draft = sale.open_draft(store)
    for key, qty in items:
        sale.add_product(store, draft, store.products[key], qty)
    if customer:
        sale.attach_customer(store, draft, customer)
    if prepare:
        prepare(draft)
    for method, amount in pay:
        if method in ("cash", "card") and amount == 0:  # 0: exactly what is due
            amount = sale.quote(store, draft).due_cents
        sale.add_payment(store, draft, method, amount)
    return sale.complete(store, draft).id


def customer(store: Store) -> dict:
    with store.transaction():
        record = customers.create(store, {"first_name": "Jörg", "last_name": "Weiß"})
    return record


# -- golden receipts ---------------------------------------------------------------------------------
def test_plain_sale_golden(shop):
    """GIVEN two VAT rates, a line discount and cash with change WHEN printed THEN exact bytes."""
    def discount(draft):
        sale.set_line_discount(shop, draft, 1, percent_bp=1000)

    sid = sell(shop, [("bluse", 2), ("tee", 3)], pay=[("cash", 20000)], prepare=discount)
    model = receipt.build(shop, sid)
    assert [v.letter for v in model.vat] == ["A", "B"]
    assert model.total_cents == 2 * 4995 - 999 + 1050
    assert model.points is None and model.customer is None
    data = printed(model)
    check_golden("plain", data)
    text = readable(data)
    assert re.search(r"Total +100,41 €  \n", text) and re.search(r"\nCash +200,00 €  \n", text)
    assert "Süßer Tee - Früchte" in text  # the en dash CP858 lacks became a hyphen
    assert "04.05.2026 12:30" in text  # shop-local time of a 10:30 UTC sale


def test_plain_sale_48_columns_golden(shop):
    """GIVEN a 48-character printer WHEN printed THEN rows fill 48 columns, long names wrap."""
    sid = sell(shop, [("mantel", 1), ("socken", 1)], pay=[("card", 18900 + 899)])
    data = printed(receipt.build(shop, sid), Layout(columns=48))
    check_golden("plain_48", data)
    text = readable(data)
    assert "Wintermantel Wolle mit sehr langem    189,00 € A\nNamen für den Zeilenumbruch\n" in text
    assert b"-" * 48 + b"\n" in data and b"-" * 49 not in data


def test_customer_with_points_golden(shop):
    """GIVEN loyalty on, a customer with a card and 200 points who redeems them
    WHEN printed THEN card, points earned, redeemed and the new balance are on the slip."""
    with shop.transaction():
        settings.set(shop, "loyalty.enabled", True)
    cust = customer(shop)
    type_id = loyalty.save_card_type(shop, {"description": "Kundenkarte", "new_customer_points": 50})
    loyalty.issue_card(shop, cust["id"], type_id)
    loyalty.adjust(shop, cust["id"], 150, "Umstellung")

    def redeem(draft):
        sale.redeem_points(shop, draft)

    sid = sell(shop, [("bluse", 1), ("socken", 2)], customer=cust["id"], prepare=redeem,
               pay=[("card", 0)])  # fmt: skip
    model = receipt.build(shop, sid)
    assert model.points is not None and model.card_no
    assert model.points.redeemed > 0 and model.points.balance == loyalty.balance(shop, cust["id"])
    data = printed(model)
    check_golden("customer_points", data)
    assert "Customer: Jörg Weiß (010000001)".encode("cp858") in data
    assert b"Points balance" in data


def test_voucher_at_the_foot_golden(shop):
    """GIVEN POS vouchers from 50 EUR WHEN printed with barcodes THEN the voucher, its value,
    validity and minimum purchase come after the footer as a CODE128 barcode."""
    with shop.transaction():
        settings.set(shop, "vouchers.pos_enabled", True)
        settings.set(shop, "vouchers.min_sale_for_use_cents", 2500)
    sid = sell(shop, [("bluse", 2)], pay=[("cash", 0)])
    model = receipt.build(shop, sid)
    assert model.voucher is not None and model.voucher.value_cents == 500  # 5 % of 99,90 €
    data = printed(model, Layout(codes="barcode"))
    check_golden("voucher", data)
    footer = data.index("Vielen Dank".encode("cp858"))
    code = model.voucher.code
    pairs = bytes(int(code[i:i + 2]) for i in range(0, len(code), 2))
    barcode = b"\x1dkI" + bytes([2 + len(pairs)]) + b"{C" + pairs  # GS k 73: CODE128, set C
    assert footer < data.index(barcode) < data.index(b"\x1dV")  # after the footer, before the cut
    assert "Redeemable from a purchase of 25,00 €".encode("cp858") in data


def test_giftcard_sale_with_qr_golden(shop):
    """GIVEN a 50 EUR gift card sold WHEN printed THEN its generated number prints as a QR
    image (GS v 0) and as text, with value and expiry."""
    def giftcard(draft):
        sale.sell_giftcard(shop, draft, 5000)

    sid = sell(shop, [("tee", 1)], prepare=giftcard, pay=[("card", 5350)])
    model = receipt.build(shop, sid)
    [code] = model.codes
    assert code.kind == "giftcard" and code.value_cents == 5000
    assert giftcards.balance(shop, code.code) == 5000
    assert [v.gross_cents for v in model.vat] == [350]  # the gift card itself is not taxed
    data = printed(model)
    check_golden("giftcard_qr", data)
    assert data.count(b"\x1dv0") == 2  # the logo and the QR code
    assert code.code.encode() in data


def test_refund_golden(shop):
    """GIVEN a sale and the return of one unit WHEN printed THEN a refund slip names the
    original receipt and pays cash out."""
    first = sell(shop, [("bluse", 2)], pay=[("cash", 0)])
    original = sale.get(shop, first)
    draft = sale.open_draft(shop)
    sale.add_return(shop, draft, first, 1, 1)
    sale.add_payment(shop, draft, "cash", sale.quote(shop, draft).due_cents)
    sid = sale.complete(shop, draft).id
    model = receipt.build(shop, sid)
    assert model.kind == "refund" and model.total_cents == -4995
    assert model.refers_to == (original["receipt_no"],)
    data = printed(model)
    check_golden("refund", data)
    assert b"Refund 01-000002" in data
    assert f"Return of receipt {original['receipt_no']}".encode() in data
    assert "-49,95 €".encode("cp858") in data


def test_refund_takes_points_back(shop):
    """GIVEN a customer who earned points WHEN the goods come back THEN the refund slip shows
    the points taken back and the lower balance."""
    with shop.transaction():
        settings.set(shop, "loyalty.enabled", True)
    cust = customer(shop)
    first = sell(shop, [("bluse", 2)], customer=cust["id"], pay=[("cash", 0)])
    assert receipt.build(shop, first).points == receipt.Points(9, 0, 9)
    draft = sale.open_draft(shop)
    sale.attach_customer(shop, draft, cust["id"])
    sale.add_return(shop, draft, first, 1, 2)
    sale.add_payment(shop, draft, "cash", sale.quote(shop, draft).due_cents)
    model = receipt.build(shop, sale.complete(shop, draft).id)
    assert model.points == receipt.Points(-9, 0, 0)
    assert re.search(r"Points taken back +-9\n", readable(printed(model)))


def test_reprint_marked_as_copy_golden(shop):
    """GIVEN a completed sale WHEN reprinted THEN the same receipt is marked COPY twice."""
    sid = sell(shop, [("socken", 1)], pay=[("cash", 1000)])
    original = printed(receipt.build(shop, sid))
    data = printed(receipt.build(shop, sid, copy=True))
    check_golden("copy", data)
    assert data.count(b"*** COPY ***") == 2 and b"COPY" not in original


def test_wallet_load_and_stored_value_payments(shop):
    """GIVEN an e-wallet loaded in one sale, then a sale paid by gift card, wallet and cash
    WHEN printed THEN the wallet number is printed as a code on the first receipt and the
    second shows each payment with its masked card number; stored value is not taxed."""
    with shop.transaction():
        wtype = wallet.save_type(shop, "Guthaben", load_cents=2000)
    draft = sale.open_draft(shop)
    sale.load_wallet(shop, draft, wtype)
    sale.add_payment(shop, draft, "cash", 2000)
    first = receipt.build(shop, sale.complete(shop, draft).id)
    [code] = first.codes
    assert code.kind == "wallet" and code.value_cents == 2000 and first.vat == ()
    assert code.code.encode() in printed(first)
    card = giftcards.issue(shop, 1000, kind="giftcard")

    def pay(draft):
        sale.add_payment(shop, draft, "giftcard", ref=card)
        sale.add_payment(shop, draft, "wallet", 1500, ref=code.code)

    second = receipt.build(shop, sell(shop, [("bluse", 1)], prepare=pay, pay=[("cash", 0)]))
    assert [(p.label, p.amount_cents, p.detail) for p in second.payments] == [
        ("Gift card", 1000, "…" + card[-4:]), ("E-wallet", 1500, "…" + code.code[-4:]),
        ("Cash", 4995 - 2500, ""),
    ]  # fmt: skip
    text = readable(printed(second))
    assert re.search(rf"Gift card \(\.\.\.{card[-4:]}\) +10,00 €", text)  # … prints as ...


# -- encoding, determinism, settings -----------------------------------------------------------------------
def test_umlauts_and_euro_print_in_cp858(shop):
    """GIVEN umlauts, ß and € WHEN printed THEN CP858 is selected (ESC t 19) and every
    character has its CP858 byte; no character became "?"."""
    sid = sell(shop, [("tee", 1), ("socken", 1)], pay=[("cash", 0)])
    data = printed(receipt.build(shop, sid))
    assert data.startswith(b"\x1b@\x1bt\x13")  # ESC @, then ESC t 19 = CP858
    assert b"Hauptstra\xe1e 1" in data and b"M\x81nchen" in data and b"S\x94ckchen" in data
    assert b"S\x81\xe1er Tee" in data  # "Süßer"
    assert b"12,49 \xd5" in data  # € is 0xD5 in CP858
    assert "Süßer".encode("utf-8") not in data and b"?" not in data.split(b"\x1dv0")[0]


def test_character_outside_the_code_page_prints_as_question_mark(shop):
    with shop.transaction():
        settings.set(shop, "shop.name", "Łódź Moda")
    sid = sell(shop, [("tee", 1)], pay=[("cash", 0)])
    data = printed(receipt.build(shop, sid), Layout(logo=None))
    assert b"?\xa2d? Moda" in data  # Ł and ź are not in CP858; ó is


def test_profile_without_cp858_still_prints_umlauts(shop):
    """GIVEN a printer profile without CP858 (TM-T88II) WHEN printed THEN python-escpos picks
    a page that has the umlauts instead of failing."""
    sid = sell(shop, [("tee", 1)], pay=[("cash", 0)])
    data = to_bytes(receipt.build(shop, sid), Layout(logo=None), profile="TM-T88II")
    assert b"\x1bt\x13" not in data  # no CP858 selected …
    assert b"Hauptstra\xe1e 1" in data  # … yet ß (0xE1 in CP437/CP850) prints


def test_same_printer_twice_gives_identical_jobs(shop):
    """GIVEN one printer object WHEN two receipts are rendered on it THEN each job carries its
    own reset and code page, so both are byte-identical."""
    sid = sell(shop, [("tee", 1)], pay=[("cash", 0)])
    model = receipt.build(shop, sid)
    printer = Dummy(profile="default")
    render(model, printer)
    first = printer.output
    render(model, printer)
    assert printer.output == first + first


def test_points_hidden_when_setting_is_off(shop):
    """GIVEN 'show points on receipt' off but on for PDF WHEN built THEN only the PDF shows them."""
    with shop.transaction():
        settings.set(shop, "loyalty.enabled", True)
        settings.set(shop, "loyalty.show_on_receipt", False)
    cust = customer(shop)
    sid = sell(shop, [("bluse", 1)], customer=cust["id"], pay=[("cash", 0)])
    slip = receipt.build(shop, sid)
    assert slip.points is None and slip.customer == "Jörg Weiß (010000001)"
    assert b"Points" not in printed(slip)
    pdf_model = receipt.build(shop, sid, medium="pdf")
    assert pdf_model.points == receipt.Points(earned=4, redeemed=0, balance=4)
    text = pypdf.PdfReader(io.BytesIO(receipt.pdf_bytes(pdf_model))).pages[0].extract_text()
    assert "Points balance 4" in text


def test_footer_is_a_shop_setting(shop):
    with shop.transaction():
        settings.set(shop, "receipt.footer", "Danke!\n\nBis bald")
    sid = sell(shop, [("tee", 1)], pay=[("cash", 0)])
    model = receipt.build(shop, sid)
    assert model.footer == ("Danke!", "", "Bis bald")
    with pytest.raises(settings.SettingError):
        settings.set(shop, "receipt.footer", "x" * 501)


def test_winter_time_and_midnight(shop, clock):
    """GIVEN a sale at 23:30 UTC in January WHEN printed THEN it is dated the next day, 00:30."""
    clock.now = dt.datetime(2026, 1, 10, 23, 30, tzinfo=UTC)
    sid = sell(shop, [("tee", 1)], pay=[("cash", 0)])
    model = receipt.build(shop, sid)
    assert model.completed_at.utcoffset() == dt.timedelta(hours=1)
    assert b"11.01.2026 00:30" in printed(model)


def test_pdf_opens_and_shows_the_totals(shop):
    """GIVEN a sale with a customer, points and a voucher WHEN rendered as PDF THEN pypdf
    reads one page with the total, payments, VAT and the voucher text."""
    with shop.transaction():
        settings.set(shop, "loyalty.enabled", True)
        settings.set(shop, "vouchers.pos_enabled", True)
    cust = customer(shop)
    sid = sell(shop, [("bluse", 2), ("tee", 3)], customer=cust["id"], pay=[("cash", 20000)])
    data = receipt.pdf_bytes(receipt.build(shop, sid, medium="pdf"))
    reader = pypdf.PdfReader(io.BytesIO(data))
    assert len(reader.pages) == 1
    text = reader.pages[0].extract_text()
    for expected in ("Mode & Schuhe Müller", "Hauptstraße 1", "Total 110,40 €",
                     "Cash 200,00 €", "Change 89,60 €", "A 19 % 83,95 € / 15,95 € / 99,90 €",
                     "Customer: Jörg Weiß (010000001)", "Points balance 11",
                     "Voucher: 11,04 €", "Vielen Dank für Ihren Einkauf!"):  # fmt: skip
        assert expected in text, expected
    assert reader.metadata.title == "Receipt 01-000001"


# -- small parts ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("cents", "text"), [
    (0, "0,00 €"), (5, "0,05 €"), (1250, "12,50 €"), (-1250, "-12,50 €"),
    (123456789, "1.234.567,89 €"),
])  # fmt: skip
def test_money_is_german(cents, text):
    assert receipt.money(cents) == text


@pytest.mark.parametrize(("gross", "bp", "net"), [
    (9990, 1900, 8395), (750, 700, 701), (1, 1900, 1), (-9990, 1900, -8395), (0, 700, 0),
])  # fmt: skip
def test_vat_net_rounds_half_up(gross, bp, net):
    assert receipt.net_of(gross, bp) == net


def test_columns_wrap_left_and_keep_right_flush():
    rows = columns("Wintermantel Wolle mit sehr langem Namen", "189,00 € A", 32)
    assert rows[0].endswith("189,00 € A") and len(rows[0]) == 32
    assert " ".join(r.replace("189,00 € A", "").strip() for r in rows) == (
        "Wintermantel Wolle mit sehr langem Namen")


def test_layout_from_config_and_to_bytes(shop, tmp_path):
    """GIVEN a printer config table WHEN turned into a layout THEN it prints without a logo at
    48 columns, and to_bytes gives the bytes render writes."""
    layout = Layout.from_config({"columns": 48, "logo": "", "codes": "barcode"})
    assert layout == Layout(columns=48, logo=None, codes="barcode")
    with pytest.raises(ValueError, match="colums"):
        Layout.from_config({"colums": 48})
    sid = sell(shop, [("tee", 1)], pay=[("cash", 0)])
    model = receipt.build(shop, sid)
    data = to_bytes(model, layout, profile="TM-T88V")
    assert b"\x1dv0" not in data and b"-" * 48 + b"\n" in data
    assert data == printed(model, layout)  # CP858 is page 19 in both profiles


def test_layout_refuses_bad_values():
    with pytest.raises(ValueError):
        Layout(columns=40)
    with pytest.raises(ValueError):
        Layout(codes="datamatrix")
    assert DEFAULT_LOGO.is_file()


if __name__ == "__main__":  # show golden files as text
    for name in sys.argv[1:]:
        print(readable(Path(name).read_bytes()))
