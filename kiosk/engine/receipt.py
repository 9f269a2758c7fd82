"""Receipts: a printable *model* of a completed sale, and the same receipt as a PDF.

The model is plain frozen data built from the recorded ``sale.completed`` payload plus the
shop settings; printers and the PDF only lay it out, they never compute money. So the till
slip, the reprint and the e-mailed PDF always show the same figures::

    model = receipt.build(store, sale_id)                    # till slip (thermal printer)
    model = receipt.build(store, sale_id, copy=True)         # reprint, marked as a copy
    pdf = receipt.pdf_bytes(receipt.build(store, sale_id, medium="pdf"))   # for e-mail

ESC/POS output lives in ``kiosk.drivers.receipt_escpos.render(model, printer)``; this module
imports no printer library (the engine runs on the hub too).

What is on a receipt: shop header (settings ``shop.*``), the lines with their discounts and
VAT letter, total, payments and change, the VAT summary per rate, the customer and the
loyalty points (only when ``loyalty.show_on_receipt`` / ``loyalty.show_on_pdf`` is on),
codes of gift cards and e-wallets sold, the POS voucher (printed at the foot) and the
footer text of setting ``receipt.footer``. Amounts are integer cents shown the German way
(``12,50 €``); the time is the shop-local time of completion.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from kiosk.engine import loyalty, sale, settings
from kiosk.engine.clock import SHOP_TZ, parse_iso
from kiosk.engine.store import Store
from kiosk.i18n import _

settings.define(
    "receipt.footer",
    "Vielen Dank für Ihren Einkauf!\nUmtausch mit Beleg innerhalb von 14 Tagen.",
    settings.check_text(500),
    "Text at the foot of every receipt (one line per row)",
)

MEDIA = ("print", "pdf")
# Stored value sold is not a taxable supply when sold (multi-purpose voucher, § 3 Abs. 15 UStG).
_NOT_TAXED = ("giftcard", "wallet_load")
_SPENT = ("redeem", "gift")  # point entries that spend; the others earn (or take back)


# -- formatting -----------------------------------------------------------------------------------
def money(cents: int) -> str:
    """Integer cents the German way: ``-1234567`` → ``-12.345,67 €``."""
    sign = "-" if cents < 0 else ""
    whole, rest = divmod(abs(int(cents)), 100)
    return f"{sign}{whole:,}".replace(",", ".") + f",{rest:02d} €"


def percent(bp: int) -> str:
    """Basis points as German percent: ``1900`` → ``19 %``, ``750`` → ``7,5 %``."""
    whole, rest = divmod(int(bp), 100)
    return (f"{whole},{rest:02d}".rstrip("0").rstrip(",")) + " %"


def date_text(day: dt.date) -> str:
    return day.strftime("%d.%m.%Y")


def datetime_text(ts: dt.datetime) -> str:
    return ts.astimezone(SHOP_TZ).strftime("%d.%m.%Y %H:%M")


def net_of(gross_cents: int, rate_bp: int) -> int:
    """The net amount in a VAT-inclusive gross, rounded half up (away from zero)."""
    sign = -1 if gross_cents < 0 else 1
    g, d = abs(gross_cents), 10000 + rate_bp
    return sign * ((2 * g * 10000 + d) // (2 * d))


# -- the model ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Shop:
    name: str
    address: tuple[str, ...]
    phone: str
    email: str
    vat_id: str


@dataclass(frozen=True)
class Line:
    name: str
    qty: int
    unit_cents: int
    total_cents: int  # after the line's discounts
    vat_letter: str  # "" when the line is not taxed (stored value sold)
    discounts: tuple[tuple[str, int], ...] = ()  # (label, cents taken off)
    note: str = ""  # gift card number, "loyalty gift" …


@dataclass(frozen=True)
class Payment:
    label: str
    amount_cents: int  # what counts against the total
    tendered_cents: int = 0  # cash handed over (0: not cash)
    detail: str = ""  # masked card number, points used


@dataclass(frozen=True)
class VatRow:
    letter: str
    rate_bp: int
    net_cents: int
    vat_cents: int
    gross_cents: int


@dataclass(frozen=True)
class Points:
    earned: int  # net of this sale's earning entries: negative when a refund takes points back
    redeemed: int  # spent on a redemption or a loyalty gift
    balance: int | None


@dataclass(frozen=True)
class Code:
    kind: str  # giftcard, wallet, voucher
    title: str
    code: str
    value_cents: int
    valid_until: dt.date | None = None
    text: str = ""  # condition, e.g. minimum purchase


@dataclass(frozen=True)
class Receipt:
    kind: str  # sale, refund
    copy: bool
    medium: str  # print, pdf
    receipt_no: str
    device: str
    completed_at: dt.datetime  # aware, shop-local
    shop: Shop
    lines: tuple[Line, ...]
    discount_cents: int
    total_cents: int
    payments: tuple[Payment, ...]
    change_cents: int
    vat: tuple[VatRow, ...]
    customer: str | None
    card_no: str | None
    points: Points | None
    codes: tuple[Code, ...]  # gift cards and e-wallets sold
    voucher: Code | None  # printed at the foot
    footer: tuple[str, ...]
    refers_to: tuple[str, ...] = ()  # receipt numbers of the sales a refund takes back


# -- building --------------------------------------------------------------------------------------
def _vat_letters(rates: set[int]) -> dict[int, str]:
    # A for the highest rate (19 %), B for the next (7 %) … as German tills do
    return {bp: chr(ord("A") + i) for i, bp in enumerate(sorted(rates, reverse=True))}


def _mask(ref: str | None) -> str:
    return f"…{ref[-4:]}" if ref and len(ref) > 4 else (ref or "")


def shop_of(store: Store) -> Shop:
    g = lambda key: settings.get(store, key)  # noqa: E731
    address = tuple(row.strip() for row in g("shop.address").splitlines() if row.strip())
    return Shop(g("shop.name"), address, g("shop.phone"), g("shop.email"), g("shop.vat_id"))


def from_sale(
    recorded: dict[str, Any], shop: Shop, *, footer: str = "", show_points: bool = True,
    copy: bool = False, medium: str = "print", voucher_min_cents: int = 0,
    refers_to: tuple[str, ...] = (),
) -> Receipt:  # fmt: skip
    """Build the model from a recorded sale (``sale.get``) without reading the store."""
    if medium not in MEDIA:
        raise ValueError(f"unknown receipt medium {medium!r}")
    taxed = [ln for ln in recorded["lines"] if ln["kind"] not in _NOT_TAXED]
    letters = _vat_letters({ln["vat_bp"] for ln in taxed})
    lines = []
    for ln in recorded["lines"]:
        note = ""
        if ln["kind"] == "giftcard" and ln.get("ref"):
            note = ln["ref"]
        elif ln["kind"] == "wallet_load" and ln.get("ref"):
            note = ln["ref"]
        elif ln["kind"] == "gift":
            note = _("Loyalty gift")
        discounts = tuple((label or _("Discount"), cents)
                          for _source, label, cents in ln.get("discounts", ()) if cents)  # fmt: skip
        lines.append(Line(
            ln["name"], ln["qty"], ln["unit_cents"], ln["total_cents"],
            "" if ln["kind"] in _NOT_TAXED else letters[ln["vat_bp"]], discounts, note,
        ))  # fmt: skip
    gross_by_rate: dict[int, int] = {}
    for ln in taxed:
        gross_by_rate[ln["vat_bp"]] = gross_by_rate.get(ln["vat_bp"], 0) + ln["total_cents"]
    vat = []
    for bp in sorted(gross_by_rate, reverse=True):
        gross = gross_by_rate[bp]
        net = net_of(gross, bp)
        vat.append(VatRow(letters[bp], bp, net, gross - net, gross))
    labels = {"cash": _("Cash"), "card": _("Card"), "giftcard": _("Gift card"),
              "voucher": _("Voucher"), "wallet": _("E-wallet"), "points": _("Points")}  # fmt: skip
    redeemed_points = -sum(e["points"] for e in recorded.get("points", ())
                           if e["kind"] == "redeem")  # fmt: skip
    payments = []
    for method, amount, ref, tendered in recorded["payments"]:
        detail = _mask(ref)
        if method == "points" and redeemed_points:
            detail = str(redeemed_points)
        payments.append(Payment(labels.get(method, method), amount,
                                tendered if method == "cash" else 0, detail))  # fmt: skip
    points = None
    entries = recorded.get("points") or []
    if show_points and recorded.get("customer_id") and (entries or recorded.get("points_balance")):
        points = Points(
            earned=sum(e["points"] for e in entries if e["kind"] not in _SPENT),
            redeemed=-sum(e["points"] for e in entries if e["kind"] in _SPENT),
            balance=recorded.get("points_balance"),
        )  # fmt: skip
    codes = []
    for entry in recorded.get("giftcards", ()):
        if entry["kind"] == "issue" and entry["card_kind"] == "giftcard":
            codes.append(Code("giftcard", _("Gift card"), entry["code"], entry["amount_cents"],
                              dt.date.fromisoformat(entry["valid_until"])))  # fmt: skip
    for entry in recorded.get("wallet", ()):
        if entry["kind"] == "load":
            codes.append(Code("wallet", _("E-wallet"), entry["number"], entry["amount_cents"]))
    voucher = None
    if recorded.get("voucher"):
        v = recorded["voucher"]
        text = (_("Redeemable from a purchase of {amount}.").format(amount=money(voucher_min_cents))
                if voucher_min_cents else "")  # fmt: skip
        voucher = Code("voucher", _("Voucher"), v["code"], v["value_cents"],
                       dt.date.fromisoformat(v["valid_until"]), text)  # fmt: skip
    customer = None
    if recorded.get("customer_name") or recorded.get("customer_no"):
        name = recorded.get("customer_name") or ""
        number = recorded.get("customer_no")
        customer = f"{name} ({number})" if name and number else (name or number)
    return Receipt(
        kind=recorded["kind"], copy=copy, medium=medium, receipt_no=recorded["receipt_no"],
        device=recorded.get("device", ""),
        completed_at=parse_iso(recorded["completed_at"]).astimezone(SHOP_TZ),
        shop=shop, lines=tuple(lines), discount_cents=recorded["discount_cents"],
        total_cents=recorded["total_cents"], payments=tuple(payments),
        change_cents=recorded.get("change_cents", 0), vat=tuple(vat), customer=customer,
        card_no=recorded.get("card_no"), points=points, codes=tuple(codes), voucher=voucher,
        footer=tuple(footer.splitlines()), refers_to=refers_to,
    )  # fmt: skip


def build(store: Store, sale_id: str, *, copy: bool = False, medium: str = "print") -> Receipt:
    """The receipt of a completed sale; ``copy`` marks a reprint; ``medium`` picks which
    "show points" setting applies (the printed slip or the PDF)."""
    recorded = sale.get(store, sale_id)
    prog = loyalty.program(store)
    show = prog.enabled and (prog.show_on_pdf if medium == "pdf" else prog.show_on_receipt)
    refers = []
    for ln in recorded["lines"]:
        if ln["kind"] == "return" and ln.get("ref"):
            orig_id = ln["ref"].split(":", 1)[0]
            row = store.db.execute("SELECT receipt_no FROM sales WHERE id = ?",
                                   [orig_id]).fetchone()  # fmt: skip
            if row and row[0] not in refers:
                refers.append(row[0])
    return from_sale(
        recorded, shop_of(store), footer=settings.get(store, "receipt.footer"),
        show_points=show, copy=copy, medium=medium,
        voucher_min_cents=settings.get(store, "vouchers.min_sale_for_use_cents"),
        refers_to=tuple(refers),
    )  # fmt: skip


# -- headings shared by the printed slip and the PDF ------------------------------------------------
def title(model: Receipt) -> str:
    return _("Refund") if model.kind == "refund" else _("Receipt")


def copy_mark() -> str:
    return _("COPY")


def qty_text(line: Line) -> str:
    """``2 x 49,95 €`` (shown under a line when it is not a single unit)."""
    return f"{line.qty} x {money(line.unit_cents)}"


def points_rows(points: Points) -> list[tuple[str, str, bool]]:
    """(label, value, bold) rows of the loyalty block."""
    out = []
    if points.earned > 0:
        out.append((_("Points earned"), f"+{points.earned}", False))
    elif points.earned < 0:
        out.append((_("Points taken back"), str(points.earned), False))
    if points.redeemed:
        out.append((_("Points redeemed"), f"-{points.redeemed}", False))
    if points.balance is not None:
        out.append((_("Points balance"), str(points.balance), True))
    return out


def code_lines(code: Code) -> list[str]:
    """The text around a printed code: value, validity, condition."""
    out = [f"{code.title}: {money(code.value_cents)}"]
    if code.valid_until:
        out.append(_("Valid until {date}").format(date=date_text(code.valid_until)))
    if code.text:
        out.append(code.text)
    return out


# -- PDF (fpdf2) ------------------------------------------------------------------------------------
def _pdf_text(text: str) -> str:
    # the PDF core fonts speak Windows-1252: umlauts and € work, anything else becomes "?"
    return text.encode("cp1252", "replace").decode("cp1252")


def pdf_bytes(model: Receipt) -> bytes:
    """The receipt as a one-page PDF, 80 mm wide and as long as the receipt."""
    width_mm, margin = 80.0, 5.0
    body = width_mm - 2 * margin
    # first pass on a long roll to measure, second on a page exactly as long as the receipt
    height = _draw_pdf(model, width_mm, 2000.0, margin, body).get_y() + margin
    pdf = _draw_pdf(model, width_mm, max(height, 60.0), margin, body)
    return bytes(pdf.output())


def _draw_pdf(model: Receipt, width_mm: float, height_mm: float, margin: float, body: float):
    # imported here: fpdf takes a second to import and the engine is imported everywhere
    import qrcode
    from fpdf import FPDF

    pdf = FPDF(unit="mm", format=(width_mm, height_mm))
    pdf.core_fonts_encoding = "windows-1252"
    pdf.set_margins(margin, margin, margin)
    pdf.set_auto_page_break(False)
    pdf.set_creation_date(model.completed_at)
    pdf.set_title(_pdf_text(f"{title(model)} {model.receipt_no}"))
    pdf.add_page()

    def line(text: str = "", *, bold: bool = False, size: float = 9, align: str = "L") -> None:
        pdf.set_font("helvetica", "B" if bold else "", size)
        pdf.multi_cell(body, size * 0.45, _pdf_text(text), align=align,
                       new_x="LMARGIN", new_y="NEXT")  # fmt: skip

    def row(left: str, right: str, *, bold: bool = False, size: float = 9) -> None:
        pdf.set_font("helvetica", "B" if bold else "", size)
        h = size * 0.45
        right = _pdf_text(right)
        rw = pdf.get_string_width(right) + 1
        y = pdf.get_y()
        pdf.multi_cell(body - rw, h, _pdf_text(left), new_x="LMARGIN", new_y="NEXT")
        end = pdf.get_y()
        pdf.set_xy(margin + body - rw, y)
        pdf.cell(rw, h, right, align="R")
        pdf.set_xy(margin, end)

    def rule() -> None:
        pdf.ln(1)
        pdf.line(margin, pdf.get_y(), margin + body, pdf.get_y())
        pdf.ln(1.5)

    def qr(text: str) -> None:
        img = qrcode.QRCode(border=1, box_size=4)
        img.add_data(text)
        img.make(fit=True)
        size = 28.0
        pdf.image(img.make_image()._img.convert("RGB"), x=margin + (body - size) / 2, y=pdf.get_y(),
                  w=size, h=size)  # fmt: skip
        pdf.ln(size + 1)

    shop = model.shop
    line(shop.name, bold=True, size=14, align="C")
    for text in (*shop.address, shop.phone, shop.email):
        if text:
            line(text, align="C")
    if shop.vat_id:
        line(_("VAT ID {id}").format(id=shop.vat_id), align="C")
    rule()
    line(f"{title(model)} {model.receipt_no}", bold=True)
    if model.copy:
        line(copy_mark(), bold=True, size=12, align="C")
    line(datetime_text(model.completed_at))
    for ref in model.refers_to:
        line(_("Return of receipt {no}").format(no=ref))
    rule()
    for ln in model.lines:
        row(ln.name, f"{money(ln.total_cents)} {ln.vat_letter}".rstrip())
        if ln.qty != 1:
            line(f"  {qty_text(ln)}", size=8)
        for label, cents in ln.discounts:
            row(f"  {label}", money(-cents), size=8)
        if ln.note:
            line(f"  {ln.note}", size=8)
    rule()
    row(_("Total"), money(model.total_cents), bold=True, size=12)
    if model.discount_cents:
        row(_("You saved"), money(model.discount_cents), size=8)
    for p in model.payments:
        label = f"{p.label} ({p.detail})" if p.detail else p.label
        row(label, money(p.tendered_cents or p.amount_cents))
    if model.change_cents:
        row(_("Change"), money(model.change_cents))
    if model.vat:
        rule()
        row(_("VAT"), f"{_('Net')} / {_('VAT')} / {_('Gross')}", size=8)
        for v in model.vat:
            amounts = " / ".join(money(c) for c in (v.net_cents, v.vat_cents, v.gross_cents))
            row(f"{v.letter} {percent(v.rate_bp)}", amounts, size=8)
    if model.customer or model.points:
        rule()
    if model.customer:
        line(_("Customer: {name}").format(name=model.customer))
    if model.points:
        for label, value, bold in points_rows(model.points):
            row(label, value, bold=bold)
    for code in model.codes:
        rule()
        for i, text in enumerate(code_lines(code)):
            line(text, bold=i == 0, align="C")
        qr(code.code)
        line(code.code, align="C")
    if model.footer:
        rule()
        for text in model.footer:
            line(text, align="C")
    if model.voucher:
        rule()
        for i, text in enumerate(code_lines(model.voucher)):
            line(text, bold=i == 0, align="C")
        qr(model.voucher.code)
        line(model.voucher.code, align="C")
    return pdf
