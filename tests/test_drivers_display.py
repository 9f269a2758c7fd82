"""Pole display (2×20 VFD, ESC/POS display commands): exact bytes via loop:// and a pty."""

from __future__ import annotations

import pytest

from kiosk.drivers import registry
from kiosk.drivers.base import State
from kiosk.drivers.pole_display import PoleDisplay, fit, format_cents
from tests.test_drivers_helpers import Collector, english, pty_pair  # noqa: F401

INIT = b"\x1b\x40" + b"\x1b\x74\x13" + b"\x1f\x43\x00"  # ESC @, ESC t 19 (PC858), cursor off


def make(got: Collector, **table) -> PoleDisplay:
    entry, config = registry.parse("display", 0, {"type": "serial-vfd", "rescan_s": 0.05, **table})
    return registry.create(entry, config, registry.DriverContext(data_dir=".", callbacks=got.callbacks()))


def read_exactly(port, n: int) -> bytes:
    data = b""
    for _ in range(200):
        data += port.read(n - len(data))
        if len(data) >= n:
            break
    return data


def test_line_and_total_formatting():
    assert format_cents(1234) == "12,34 €"
    assert format_cents(-5) == "-0,05 €"
    assert format_cents(123456789) == "1.234.567,89 €"
    assert fit("Jeans Slim Fit Blau W32", "79,99 €", 20) == "Jeans Slim F 79,99 €"
    assert fit("Total", "1.234,00 €", 20) == "Total     1.234,00 €"
    assert len(fit("x" * 50, "9" * 30, 20)) == 20


def test_loop_url_gets_the_exact_display_commands():
    got = Collector()
    display = make(got, url="loop://", baudrate=9600)
    display.start()
    try:
        got.wait(lambda: display.status.state is State.OK)
        port = display.port
        assert read_exactly(port, len(INIT)) == INIT
        display.show_item("Socken 3er-Pack", 1299, 4598)
        assert display.wait_written()
        frame = read_exactly(port, 4 + 20 + 4 + 20)
        assert frame == (
            b"\x1f\x24\x01\x01" + b"Socken 3er-P 12,99 \xd5"
            + b"\x1f\x24\x01\x02" + b"Total        45,98 \xd5"
        )  # fmt: skip
        display.clear()
        assert display.wait_written()
        assert read_exactly(port, 1) == b"\x0c"
    finally:
        display.stop()


def test_only_the_newest_text_is_sent_when_lines_come_fast():
    got = Collector()
    display = make(got, url="loop://")
    display.start()
    try:
        got.wait(lambda: display.status.state is State.OK)
        for i in range(200):
            display.show(f"line {i}", "")
        assert display.wait_written()
        assert display.writes <= 200  # coalesced: never more writes than calls
        data = b""
        while chunk := display.port.read(4096):
            data += chunk
        assert data.endswith(display.render("line 199", ""))
    finally:
        display.stop()


def test_missing_display_port_is_reported(tmp_path):
    got = Collector()
    display = make(got, url=str(tmp_path / "ttyUSB0"))
    display.start()
    try:
        display.show("Willkommen")  # never raises, even with nothing connected
        got.wait(lambda: display.status.state is State.DISCONNECTED)
        assert "not found" in display.status.message
    finally:
        display.stop()


def test_display_config_is_checked():
    with pytest.raises(registry.DriverConfigError, match="encoding"):
        registry.parse("display", 0, {"type": "serial-vfd", "url": "loop://", "encoding": "nope"})
    with pytest.raises(registry.DriverConfigError, match="2 rows"):
        registry.parse("display", 0, {"type": "serial-vfd", "url": "loop://", "rows": 4})


@pytest.mark.socat
def test_pty_display_gets_init_and_text_and_the_pending_text_after_replug(pty_pair):
    got = Collector()
    display = make(got, url=pty_pair.a, baudrate=9600, encoding="cp437", codepage=0)
    init = b"\x1b\x40\x1b\x74\x00\x1f\x43\x00"
    with pty_pair.device(timeout=0.1) as far:
        display.start()
        try:
            assert read_exactly(far, len(init)) == init
            display.show("Grüße", "Summe 5,00")
            frame = display.render("Grüße", "Summe 5,00")
            assert b"Gr\x81\xe1e" in frame  # cp437 umlauts
            assert read_exactly(far, len(frame)) == frame
        finally:
            pass
    pty_pair.stop()
    try:
        display.show("after", "unplug")  # written when the port works again
        pty_pair.start()
        with pty_pair.device(timeout=0.1) as far:
            got.wait(lambda: display.status.state is State.OK and display.port is not None)
            expected = init + display.render("after", "unplug")
            assert read_exactly(far, len(expected)) == expected
    finally:
        display.stop()
