"""The till with its hardware from a device config, driven under Xvfb.

A serial scanner and a pole display on socat pty pairs (the test plays both devices at the far
ends), a door counter on a third pty, a receipt printer writing into a file (python-escpos File) with the cash drawer on its
kick port, and a people counter of a type that does not exist. An EAN written into the
scanner's pty lands in the basket; a cash sale prints the receipt into the file, kicks the
drawer and shows line and total on the pole display; pulling the scanner's cable shows it as
not connected while the till goes on selling; the unknown type is an error in the strip.
"""

from __future__ import annotations

import datetime as dt
import shutil

import pytest

from kiosk.config import DeviceConfig, UiConfig
from kiosk.engine import catalog, settings, stored_value, traffic
from kiosk.engine.clock import SHOP_TZ
from kiosk.engine.store import Identity, Store
from tests.test_drivers_helpers import PtyPair

pytestmark = [pytest.mark.display, pytest.mark.socat]

KICK_PIN2 = b"\x1bp\x00\x32\x32"  # ESC p 0 50 50


def ean(n: int) -> str:
    body = f"200{n:09d}"
    return body + catalog.ean_check_digit(body)


SCARF, BELT = ean(1), ean(2)


class FarEnd:
    """The device side of a pty: collects everything the driver writes."""

    def __init__(self, pair: PtyPair) -> None:
        self.port = pair.device(timeout=0)
        self.data = b""

    def read(self) -> bytes:
        try:
            self.data += self.port.read(4096)
        except OSError:
            pass
        return self.data


@pytest.fixture
def rig(xdisplay, tmp_path):
    if shutil.which("socat") is None:
        pytest.skip("socat not installed")
    from kiosk import i18n
    from kiosk.app import KioskApp, configure_kivy
    from tests.support.kivy_driver import KivyDriver

    (tmp_path / "scanner").mkdir()
    (tmp_path / "display").mkdir()
    (tmp_path / "counter").mkdir()
    scanner_pty = PtyPair(tmp_path / "scanner").start()
    display_pty = PtyPair(tmp_path / "display").start()
    counter_pty = PtyPair(tmp_path / "counter").start()
    receipt_file = tmp_path / "printer.bin"
    receipt_file.touch()
    config = DeviceConfig(
        identity=Identity(store_id="teststore", device_id="till-hw", device_no=1),
        data_dir=tmp_path / "data",
        language="en",
        ui=UiConfig(fullscreen=False, width=1280, height=800, keyboard="de"),
        drivers={
            "scanner": [{"type": "serial", "url": scanner_pty.a, "terminator": "crlf",
                         "rescan_s": 0.2}],
            "printer": [{"type": "file", "path": str(receipt_file), "retry_s": 0.2,
                         "receipt": {"columns": 42, "logo": ""}}],
            "drawer": [{"type": "printer", "printer": "printer", "pin": 2}],
            "display": [{"type": "serial-vfd", "url": display_pty.a, "rescan_s": 0.2}],
            "counter": [{"type": "serial", "url": counter_pty.a, "flush_s": 0.2, "rescan_s": 0.2},
                        {"type": "magic-door"}],
        },
    )  # fmt: skip
    config.data_dir.mkdir()
    store = Store(config.db_path, config.identity)
    stored_value.set_connectivity(store, True)
    settings.set(store, "shop.name", "Modehaus Test")
    group = catalog.save_group(store, "Accessories", kind="goods")
    catalog.save_product(store, "Wool scarf", 2995, group_id=group, eans=[SCARF])
    catalog.save_product(store, "Leather belt", 4950, group_id=group, eans=[BELT])
    store.close()
    configure_kivy(config.ui)
    app = KioskApp(config, "till")
    driver = KivyDriver.start(app)
    driver.scanner_pty, driver.display_pty, driver.receipt_file = scanner_pty, display_pty, receipt_file
    driver.counter_pty = counter_pty
    try:
        yield driver
    finally:
        driver.stop()
        app.store.close()
        scanner_pty.stop()
        display_pty.stop()
        counter_pty.stop()
        i18n.set_language("en")


def strip_text(driver, name: str) -> str:
    strip = driver.app.hardware.strip
    return strip.texts.get(name, "") if strip is not None else ""


def test_scan_sell_print_kick_display_unplug(rig, artifacts_dir):
    ui = rig
    app = ui.app
    hw = app.hardware
    assert hw is not None and hw.strip is not None

    # every configured device has a chip; the unknown type is an error, not a crash
    ui.wait_until(lambda: strip_text(ui, "scanner") == "ready", timeout=10, what="scanner ready")
    ui.wait_until(lambda: strip_text(ui, "display") == "ready", timeout=10, what="display ready")
    ui.wait_until(lambda: strip_text(ui, "printer") == "ready", timeout=10, what="printer ready")
    ui.wait_until(lambda: strip_text(ui, "counter") == "ready", timeout=10, what="counter ready")
    assert strip_text(ui, "counter-2") == "configuration error"
    bad = {s.driver: s for s in hw.statuses()}["counter-2"]
    assert str(bad.state) == "error" and "unknown type 'magic-door'" in bad.message

    # the door counter counts three people in: stored as traffic for this hour
    counter = FarEnd(ui.counter_pty)
    counter.port.write(b"IN 3\r\n")
    counter.port.flush()
    today = dt.datetime.now(SHOP_TZ).date()
    ui.wait_until(lambda: traffic.visits(app.store, today) == 3, timeout=10, what="visits stored")

    # the scanner's far end sends an EAN: the line appears in the basket
    scanner = FarEnd(ui.scanner_pty)
    display = FarEnd(ui.display_pty)
    scanner.port.write(f"{SCARF}\r\n".encode())
    scanner.port.flush()
    ui.wait_until(lambda: [r["name_text"] for r in ui.find("lines").data] == ["Wool scarf"],
                  timeout=10, what="scanned line in the basket")  # fmt: skip
    assert ui.find("total").text == "29,95 €"

    # the pole display shows the line and the total
    ui.wait_until(lambda: b"Wool scarf" in display.read() and b"29,95" in display.data,
                  timeout=10, what="pole display line")  # fmt: skip
    assert b"Total" in display.data
    ui.screenshot(artifacts_dir / "hardware_scanned.png")

    # cash sale: receipt into the file, drawer kicked, total and change on the pole display
    ui.tap(ui.find("pay"))
    ui.pump(3)
    nudge = getattr(app, "nudge_popup", None)  # "Create a customer record?" – not now
    if nudge is not None and nudge.parent is not None:
        ui.tap(nudge.ids.go_on)
    ui.wait_until(lambda: app.screens.current == "payment", what="payment screen")
    screen = app.screen("payment")
    amount = ui.find("amount_input")
    amount.text = ""
    ui.type_text("50", into=amount)
    ui.tap(ui.find("pay_cash"))
    ui.wait_until(lambda: screen.ready, what="paid")
    display.data = b""
    ui.tap(ui.find("complete"))
    ui.wait_until(lambda: screen.printed, timeout=10, what="receipt queued")
    assert hw.printer.wait_idle(10)
    out = ui.receipt_file.read_bytes()
    assert b"Wool scarf" in out and b"29,95" in out and b"20,05" in out  # name, total, change
    assert out.count(KICK_PIN2) == 1  # one kick per sale
    assert out.index(KICK_PIN2) < out.index(b"Wool scarf")  # the drawer opens first
    ui.wait_until(lambda: b"Change" in display.read(), timeout=10, what="change on the display")
    assert b"29,95" in display.data and b"20,05" in display.data
    ui.screenshot(artifacts_dir / "hardware_sale_done.png")

    # reprint the last receipt from the device list
    ui.tap(ui.find("next_customer"))
    ui.wait_until(lambda: app.screens.current == "till", what="back at the till")
    popup = hw.strip.open_details()
    ui.pump(3)
    ui.tap(popup.ids.reprint)
    assert hw.printer.wait_idle(10)
    assert ui.receipt_file.read_bytes().count(b"Wool scarf") == 2
    popup.dismiss()
    ui.pump(2)

    # pull the scanner's cable: shown as not connected, the till keeps selling
    scanner.port.close()
    ui.scanner_pty.stop()
    ui.wait_until(lambda: strip_text(ui, "scanner") == "not connected", timeout=10,
                  what="scanner shown as not connected")  # fmt: skip
    ui.screenshot(artifacts_dir / "hardware_scanner_unplugged.png")
    popup = hw.strip.open_details()
    ui.pump(3)
    ui.screenshot(artifacts_dir / "hardware_devices_popup.png")
    popup.dismiss()
    app.barcode_scanned(BELT)  # typed or from another scanner: still sells
    ui.wait_until(lambda: [r["name_text"] for r in ui.find("lines").data] == ["Leather belt"],
                  what="sale goes on")  # fmt: skip
    assert strip_text(ui, "printer") == "ready"


def test_german_strip_and_no_devices(xdisplay, tmp_path):
    """German texts in the strip; a till without a [drivers] table has no strip at all."""
    from kiosk import i18n
    from kiosk.app import KioskApp, configure_kivy
    from kiosk.drivers.base import DeviceStatus, State
    from kiosk.hardware import state_text
    from tests.support.kivy_driver import KivyDriver

    i18n.set_language("de")
    try:
        assert state_text(DeviceStatus("scanner", "scanner", State.STARTING, "x")) == "startet"
    finally:
        i18n.set_language("en")
    config = DeviceConfig(
        identity=Identity(store_id="teststore", device_id="till-bare", device_no=1),
        data_dir=tmp_path, language="en", ui=UiConfig(keyboard="de"),
    )  # fmt: skip
    configure_kivy(config.ui)
    driver = KivyDriver.start(KioskApp(config, "till"))
    try:
        assert driver.app.hardware is not None and driver.app.hardware.strip is None
        assert driver.app.hardware.printer is None
    finally:
        driver.stop()
        driver.app.store.close()


def test_bad_receipt_layout_refuses_only_its_printer(tmp_path):
    """A wrong [drivers.printer.receipt] is a configuration error of that printer; the next
    printer keeps its name and is built; the layout of a good one is used."""
    from kiosk.hardware import Hardware

    config = DeviceConfig(
        identity=Identity(store_id="teststore", device_id="till-cfg", device_no=1),
        data_dir=tmp_path, language="en",
        drivers={"printer": [
            {"type": "file", "path": str(tmp_path / "a.bin"), "receipt": {"columns": 33}},
            {"type": "file", "path": str(tmp_path / "b.bin"), "receipt": {"columns": 48}},
        ]},
    )  # fmt: skip
    hw = Hardware(config, app=None)
    statuses = {s.driver: s for s in hw.statuses()}
    assert set(statuses) == {"printer", "printer-2"}
    assert str(statuses["printer"].state) == "error"
    assert "unsupported paper width" in statuses["printer"].message
    assert list(hw.drivers) == ["printer-2"] and hw.printer.name == "printer-2"
    assert hw.layouts["printer-2"].columns == 48
    hw.printer.close()
