"""Serial barcode scanners: pyserial loop:// and a socat pty pair playing the scanner."""

from __future__ import annotations

import pytest

from kiosk.drivers import registry
from kiosk.drivers.base import State
from kiosk.drivers.scanner_serial import SerialScanner
from tests.test_drivers_helpers import Collector, english, pty_pair  # noqa: F401


def make(got: Collector, **table) -> SerialScanner:
    entry, config = registry.parse("scanner", 0, {"type": "serial", "rescan_s": 0.05, **table})
    return registry.create(entry, config, registry.DriverContext(data_dir=".", callbacks=got.callbacks()))


@pytest.mark.parametrize(
    ("terminator", "sent"),
    [
        ("any-eol", b"4006381333931\r\nART-4711\n96385074\r"),
        ("crlf", b"4006381333931\r\nART-4711\r\n96385074\r\n"),
        ("cr", b"4006381333931\rART-4711\r96385074\r"),
        ("etx", b"\x024006381333931\x03\x02ART-4711\x03\x0296385074\x03"),
    ],
)
def test_loop_url_frames_scans_at_the_configured_terminator(terminator, sent):
    got = Collector()
    prefix = "\x02" if terminator == "etx" else ""
    scanner = make(got, url="loop://", terminator=terminator, prefix=prefix, baudrate=19200)
    scanner.start()
    try:
        assert scanner.wait_ready()
        assert scanner.port.baudrate == 19200
        for i in range(0, len(sent), 5):  # bytes arrive in pieces, as on a real line
            scanner.port.write(sent[i : i + 5])
        got.wait(lambda: len(got.scans) == 3)
        assert [(s.text, s.symbology) for s in got.scans] == [
            ("4006381333931", "ean13"), ("ART-4711", "code128"), ("96385074", "ean8")
        ]
        assert not got.rejected
    finally:
        scanner.stop()


def test_loop_url_refuses_garbage_and_wrong_check_digits():
    got = Collector()
    scanner = make(got, url="loop://", terminator="cr")
    scanner.start()
    try:
        assert scanner.wait_ready()
        scanner.port.write(b"4006381333932\r\x07\x08noise\r")
        got.wait(lambda: len(got.rejected) == 2)
        assert [r.code for r in got.rejected] == ["check_digit", "charset"]
        assert "expected 1" in got.rejected[0].reason
        assert not got.scans
    finally:
        scanner.stop()


def test_without_terminator_a_quiet_line_ends_the_scan():
    got = Collector()
    scanner = make(got, url="loop://", terminator="none", idle_ms=30)
    scanner.start()
    try:
        assert scanner.wait_ready()
        scanner.port.write(b"96385074")
        got.wait(lambda: got.scans)
        scanner.port.write(b"4006381333931")
        got.wait(lambda: len(got.scans) == 2)
        assert [s.text for s in got.scans] == ["96385074", "4006381333931"]
    finally:
        scanner.stop()


def test_missing_port_is_reported_and_never_raises(tmp_path):
    got = Collector()
    scanner = make(got, url=str(tmp_path / "ttyUSB9"))
    scanner.start()
    try:
        got.wait(lambda: State.DISCONNECTED in got.states())
        assert scanner.status.message == f"not connected: {tmp_path / 'ttyUSB9'} not found"
    finally:
        scanner.stop()


def test_config_errors_name_the_key():
    with pytest.raises(registry.DriverConfigError, match="not a standard rate"):
        registry.parse("scanner", 1, {"type": "serial", "url": "loop://", "baudrate": 1234})
    with pytest.raises(registry.DriverConfigError, match=r"drivers.scanner\[1\].*terminator"):
        registry.parse("scanner", 1, {"type": "serial", "url": "loop://", "terminator": "nul"})
    with pytest.raises(registry.DriverConfigError, match="url"):
        registry.parse("scanner", 1, {"type": "serial"})


@pytest.mark.socat
def test_pty_pair_scanner_at_configured_baud_and_replug(pty_pair):
    got = Collector()
    scanner = make(got, url=pty_pair.a, baudrate=115200, terminator="crlf")
    scanner.start()
    try:
        assert scanner.wait_ready()
        with pty_pair.device() as device:
            device.write(b"036000291452\r\n")
            got.wait(lambda: len(got.scans) == 1)
        assert (got.scans[0].text, got.scans[0].symbology) == ("036000291452", "upca")
        assert scanner.port.baudrate == 115200

        pty_pair.stop()  # cable pulled
        got.wait(lambda: scanner.status.state is State.DISCONNECTED)

        pty_pair.start()  # plugged in again: the driver reopens the port by itself
        got.wait(lambda: scanner.status.state is State.OK)
        with pty_pair.device() as device:
            device.write(b"04252614\r\n")
            got.wait(lambda: len(got.scans) == 2)
        assert got.scans[1].symbology == "upce"
    finally:
        scanner.stop()
