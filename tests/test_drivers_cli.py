"""``kiosk drivers …`` through the real command line entry point."""

from __future__ import annotations

import pytest

from kiosk.cli import main
from tests.test_drivers_helpers import english  # noqa: F401


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "device.toml"
    path.write_text(
        f"""
[device]
store_id = "teststore"
device_id = "till-1"
data_dir = "{tmp_path / 'data'}"

[[drivers.printer]]
type = "file"
path = "{tmp_path / 'lp0'}"

[[drivers.printer]]
name = "kitchen"
type = "network"
host = "127.0.0.1"
port = 9
timeout_s = 0.2
retry_s = 0.05

[[drivers.drawer]]
type = "printer"

[[drivers.display]]
type = "serial-vfd"
url = "loop://"

[[drivers.scanner]]
type = "evdev"
match_name = "Honeywell"

[[drivers.scanner]]
type = "serial"
url = "{tmp_path / 'ttyACM0'}"

[[drivers.counter]]
type = "serial"
url = "loop://"
baudrate = 12
""",
        encoding="utf-8",
    )
    return path


def test_list_shows_every_configured_driver_with_its_status(config, tmp_path, capsys):
    assert main(["--config", str(config), "drivers", "list", "--wait", "2"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[1]: line for line in out.splitlines() if line.startswith("  ") and len(line.split()) > 2}
    assert "ok" in lines["printer"] and "ready:" in lines["printer"]
    assert "disconnected" in lines["kitchen"] and "127.0.0.1:9" in lines["kitchen"]
    assert "ok" in lines["drawer"]
    assert "ok" in lines["display"]
    assert "disconnected" in lines["scanner"] and "Honeywell" in lines["scanner"]
    assert f"{tmp_path / 'ttyACM0'} not found" in lines["scanner-2"]
    assert "error" in lines["counter"] and "not a standard rate" in lines["counter"]
    assert "input devices:" in out and "serial ports:" in out and "USB printers:" in out


def test_list_without_a_config_still_lists_detected_devices(tmp_path, capsys):
    assert main(["--config", str(tmp_path / "none.toml"), "drivers", "list"]) == 0
    out = capsys.readouterr().out
    assert "no device config" in out and "serial ports:" in out


def test_test_print_prints_a_test_page_on_the_file_printer(config, tmp_path, capsys):
    assert main(["--config", str(config), "drivers", "test-print"]) == 0
    assert "test page printed on printer" in capsys.readouterr().out
    page = (tmp_path / "lp0").read_bytes()
    assert b"Test page" in page and b"till-1 / printer" in page
    assert page.endswith(b"\x1dV\x00")  # python-escpos full cut
    assert (tmp_path / "data" / "print-queue-printer.sqlite").exists()


def test_test_print_on_a_printer_that_is_off_says_so_and_keeps_the_job(config, capsys):
    assert main(["--config", str(config), "drivers", "test-print", "--printer", "kitchen",
                 "--wait", "0.5"]) == 1  # fmt: skip
    err = capsys.readouterr().err
    assert "not printed yet" in err and "the job stays queued" in err


def test_kick_opens_the_drawer_through_the_printer(config, tmp_path, capsys):
    assert main(["--config", str(config), "drivers", "kick"]) == 0
    assert (tmp_path / "lp0").read_bytes() == b"\x1bp\x00\x32\x32"


def test_types_lists_config_keys(capsys):
    assert main(["drivers", "types"]) == 0
    out = capsys.readouterr().out
    assert '[[drivers.printer]] type = "serial"' in out
    assert "    device  (required)" in out
    assert "    baudrate = 9600" in out
