"""The till's sale and payment screens, driven through real Kivy widgets under Xvfb.

Two EANs are typed into the scan field, a customer card is scanned, points are redeemed, the
rest is paid in cash and the receipt's ESC/POS bytes are read back from a python-escpos Dummy
printer. Screenshots go to tests/artifacts/.
"""

from __future__ import annotations

import pytest
from escpos.printer import Dummy

from kiosk.drivers import receipt_escpos
from kiosk.engine import (
    catalog,
    customers,
    loyalty,
    receipt,
    sale,
    settings,
    stored_value,
)
from kiosk.engine.store import Store

pytestmark = pytest.mark.display


def ean(n: int) -> str:
    body = f"200{n:09d}"
    return body + catalog.ean_check_digit(body)


SCARF, BELT, TOTE, UMBRELLA = ean(1), ean(2), ean(3), ean(4)
SOCKS = [ean(n) for n in range(10, 18)]  # enough lines for the basket list to scroll


def seed(store: Store) -> dict[str, str]:
    """Two articles (and eight pairs of socks), a loyalty programme (10 points = 10 €, hint
    from 20 points), a customer with 30 points, and two level gifts: one within reach, one
    not."""
    stored_value.set_connectivity(store, True)  # a till without a hub is authoritative
    settings.set(store, "loyalty.enabled", True)
    settings.set(store, "loyalty.redeem_min_points", 20)
    settings.set(store, "shop.name", "Modehaus Test")
    group = catalog.save_group(store, "Accessories", kind="goods")
    catalog.save_product(store, "Wool scarf", 2995, group_id=group, eans=[SCARF])
    catalog.save_product(store, "Leather belt", 4950, group_id=group, eans=[BELT])
    for n, code in enumerate(SOCKS, 1):
        catalog.save_product(store, f"Socks {n}", 500 + n, group_id=group, eans=[code])
    silver = loyalty.save_level(store, "Silver", 20)
    gold = loyalty.save_level(store, "Gold", 500)
    tote = catalog.save_product(store, "Tote bag", 0, group_id=group, eans=[TOTE],
                                gift_level_id=silver)  # fmt: skip
    umbrella = catalog.save_product(store, "Umbrella", 0, group_id=group, eans=[UMBRELLA],
                                    gift_level_id=gold)  # fmt: skip
    anna = customers.create(store, {"first_name": "Anna", "last_name": "Berger", "gender": "f"},
                            force=True)  # fmt: skip
    loyalty.adjust(store, anna["id"], 30, "welcome")
    return {"anna": anna["id"], "anna_no": anna["customer_no"], "tote": tote, "umbrella": umbrella}


@pytest.fixture(scope="module")
def till(xdisplay, tmp_path_factory):
    from tests.support.kivy_driver import running_till

    with running_till(tmp_path_factory.mktemp("till-sale"), seed, language="en", printer=Dummy()) as driver:
        yield driver


@pytest.fixture
def ui(till):
    """The till at its home screen with an empty basket and no customer."""
    app = till.app
    if app.keyboard.target is not None:
        app.keyboard.target.focus = False
    app.home()
    app.sale.cancel()
    app.receipt_printer.clear()
    till.pump(3)
    return till


def basket(driver) -> list[dict]:
    return driver.find("lines").data


def scan_typed(driver, code: str) -> None:
    field = driver.find("scan_input")
    driver.type_text(code, into=field, per_key_frames=0)
    driver.press_key("enter")


def test_scan_customer_points_pay_and_print(ui, artifacts_dir):
    from kivy.uix.behaviors import ButtonBehavior

    app = ui.app
    scan_typed(ui, SCARF)
    ui.wait_until(lambda: len(basket(ui)) == 1, what="first line")
    scan_typed(ui, BELT)
    ui.wait_until(lambda: len(basket(ui)) == 2, what="second line")
    assert [r["name_text"] for r in basket(ui)] == ["Wool scarf", "Leather belt"]
    assert ui.find("total").text == "79,45 €"
    assert ui.find("scan_input").text == ""

    # the customer card is scanned: balance, redeemable value and the hint appear
    app.barcode_scanned(ui.ids["anna_no"])
    ui.wait_until(lambda: ui.find("points").text.startswith("30 points"), what="points shown")
    assert ui.find("redeemable").text == "Redeemable: 30 points = 30,00 €"
    assert ui.find("hint").text == "30 points: the customer can redeem them now."
    # all level gifts are listed; only the reachable one can be picked
    assert not ui.find_button("Tote bag · Silver · 20 points").disabled
    umbrella = ui.find_all(ButtonBehavior, text="Umbrella · Gold · 500 points")
    assert len(umbrella) == 1 and umbrella[0].disabled
    ui.tap_until(lambda: ui.find_button("Tote bag · Silver · 20 points"),
                 lambda: any(r["kind"] == "gift" for r in basket(ui)), what="gift line")
    ui.screenshot(artifacts_dir / "sale_basket_customer.png")
    ui.tap(ui.find_button("Tote bag · Silver · 20 points"))  # changed her mind
    ui.wait_until(lambda: len(basket(ui)) == 2, what="gift removed")

    ui.tap(ui.find("redeem"))
    ui.wait_until(lambda: ui.find("redeem").text == "Undo redemption", what="redemption")
    assert ui.find("redeemable").text == "Redeeming 30 points = 30,00 €"

    ui.tap(ui.find("pay"))
    ui.wait_until(lambda: app.screens.current == "payment", what="payment screen")
    screen = app.screen("payment")
    assert screen.total_text == "79,45 €"
    assert screen.due_text == "49,45 €"
    assert ui.find("amount_input").text == "49,45"
    amount = ui.find("amount_input")
    amount.text = ""
    ui.type_text("50", into=amount)
    ui.tap(ui.find("pay_cash"))
    ui.wait_until(lambda: screen.ready, what="paid")
    assert screen.change_text == "0,55 €"
    ui.screenshot(artifacts_dir / "sale_payment.png")

    ui.tap(ui.find("complete"))
    ui.wait_until(lambda: screen.printed, timeout=10, what="receipt printed")
    ui.screenshot(artifacts_dir / "sale_done.png")
    out = app.receipt_printer.output
    for expected in (b"Wool scarf", b"Leather belt", b"79,45", b"Points redeemed", b"-30",
                     b"Points earned", b"+4", b"Points balance", b"Berger", b"0,55"):
        assert expected in out, expected
    assert out.endswith(b"\x1dV\x00") or b"\x1dV" in out[-8:]  # cut

    # the sale is recorded with its points; the till starts a new, empty basket
    done = sale.by_receipt(app.store, screen.last_receipt_no)
    assert done["total_cents"] == 7945
    # byte for byte the receipt of the recorded sale, printed once
    again = Dummy()
    receipt_escpos.render(receipt.build(app.store, done["sale_id"]), again)
    assert out == again.output
    assert loyalty.balance(app.store, ui.ids["anna"]) == 4
    ui.tap(ui.find("next_customer"))
    ui.wait_until(lambda: app.screens.current == "till", what="back at the till")
    assert basket(ui) == [] and app.session.customer is None


def test_bad_code_and_line_edits(ui):
    app = ui.app
    scan_typed(ui, "4006381333932")  # wrong check digit: nothing is added
    ui.wait_until(lambda: any("Unknown code" in t for t in ui.texts()), what="refusal shown")
    assert basket(ui) == []
    scan_typed(ui, SCARF)
    ui.wait_until(lambda: len(basket(ui)) == 1, what="line")
    ui.tap(ui.find("qty_plus"))  # the new line is selected
    ui.wait_until(lambda: basket(ui)[0]["qty_text"] == "2", what="qty 2")
    assert ui.find("total").text == "59,90 €"
    field = ui.find("discount_input")
    ui.type_text("10", into=field, per_key_frames=0)
    ui.tap(ui.find("apply_discount"))
    ui.wait_until(lambda: ui.find("total").text == "53,91 €", what="discount applied")
    ui.type_text("abc", into=field, per_key_frames=0)
    ui.tap(ui.find("apply_discount"))
    assert ui.find("total").text == "53,91 €"
    field.text = ""
    ui.tap(ui.find("remove_line"))
    ui.wait_until(lambda: basket(ui) == [], what="line removed")
    assert sale.quote(app.store, app.sale.draft).lines == []


def shown_rows(driver) -> list[tuple[str, str, bool]]:
    """The basket's row widgets, top to bottom: (name, quantity, selected)."""
    return [(r.name_text, r.qty_text, r.selected) for r in driver.find("lines").rows]


def test_rows_follow_the_basket_and_the_idle_till_draws_nothing(ui):
    """Scanner codes change the rows in place; taps and removals keep them in the basket's
    order; once the basket is shown, no frame is drawn until something changes (a repaint of
    the whole window costs tens of ms with software GL, and a scan would wait for it)."""
    from kiosk.screens.widgets import Toast

    app = ui.app
    ui.wait_until(lambda: not any(isinstance(c, Toast) for c in app.shell.children),
                  timeout=8, what="earlier messages gone")  # fmt: skip
    for code in (SCARF, BELT, SCARF):
        app.barcode_scanned(code)
    ui.pump(2)
    assert shown_rows(ui) == [("Wool scarf", "2", True), ("Leather belt", "1", False)]
    assert [r["qty_text"] for r in basket(ui)] == ["2", "1"]
    belt = ui.find("lines").rows[1]
    ui.tap(belt)
    ui.wait_until(lambda: belt.selected, what="belt selected")
    assert shown_rows(ui) == [("Wool scarf", "2", False), ("Leather belt", "1", True)]
    scarf_pos = basket(ui)[0]["line_pos"]
    app.sale.remove_line(scarf_pos)
    ui.pump(2)
    assert shown_rows(ui) == [("Leather belt", "1", True)]
    app.barcode_scanned(SCARF)  # a new line at the end, in a row kept from the removed one
    ui.pump(2)
    assert shown_rows(ui) == [("Leather belt", "1", False), ("Wool scarf", "1", True)]
    assert ui.find("total").text == "79,45 €"
    for code in SOCKS:  # the list overflows and scrolls to each new line
        app.barcode_scanned(code)
        ui.pump()
    assert [r[0] for r in shown_rows(ui)][-1] == "Socks 8"

    frames: list[float] = []

    def count(*_args) -> None:
        frames.append(1.0)

    clock_text = app.shell.time_text
    ui.window.bind(on_flip=count)
    try:
        ui.sleep(1.5)  # Kivy would fade the scroll bar from 0.5 s to 1 s, a frame each step
    finally:
        ui.window.unbind(on_flip=count)
    header_clock_ticked = app.shell.time_text != clock_text  # a new minute in the header
    assert len(frames) <= (1 if header_clock_ticked else 0)


def test_kiosk_app_picks_the_interrupt_clock():
    """Kivy reads the clock type at its first import: through the kiosk command, kiosk.app
    sets it first, so a scan posted from the scanner thread wakes the loop at once instead of
    waiting for the end of the frame's sleep."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "KIVY_CLOCK"}
    code = ("import kiosk.cli; kiosk.cli.build_parser(); import kiosk.app; "
            "from kivy.clock import Clock; print(Clock.__class__.__name__)")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True, timeout=60)  # fmt: skip
    assert out.stdout.split()[-1] == "ClockBaseInterrupt"
