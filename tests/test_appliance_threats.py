"""Defences of docs/threat-model.md that no other test covers (the others are listed there).

Stolen tablet: revoking its broker login shuts it out; backups are owner-only; Escape never
quits the kiosk. Rogue machine on the shop Wi-Fi: no anonymous or guessed logins at the
broker. Barcode that types commands: control sequences are refused and anything else is
only ever data (a parameterised lookup).
"""

from __future__ import annotations

import signal
import time
import stat
import threading

import paho.mqtt.client as mqtt
import pytest

from kiosk import backup as bk
from kiosk.config import UiConfig
from kiosk.drivers.base import Rejected, Scan
from kiosk.drivers.evdev_synth import synthesize
from kiosk.drivers.scan_framing import FramingConfig, decode_stream
from kiosk.drivers.scanner_evdev import EvdevScannerConfig
from kiosk.engine import customers
from tests.support.broker import store_broker

STORE = "laden-koeln"


def connect_rc(broker, username: str | None, password: str | None) -> int:
    """Connect with MQTT v3.1.1 and return the broker's CONNACK code (0 = accepted)."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"probe-{username}",
                         protocol=mqtt.MQTTv311)  # fmt: skip
    if username is not None:
        client.username_pw_set(username, password)
    answered = threading.Event()
    result = {}

    def on_connect(_c, _u, _flags, reason, _props):
        result["rc"] = reason.value
        answered.set()

    client.on_connect = on_connect
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        assert answered.wait(15), "no CONNACK"
    finally:
        client.disconnect()
        client.loop_stop()
    return result["rc"]


@pytest.fixture
def broker(tmp_path):
    b = store_broker(tmp_path, STORE, ["till-1", "till-2"]).start()
    yield b
    b.stop()


def password(broker, device: str) -> str:
    return (broker.conf_dir / "devices" / f"{device}.password").read_text().strip()


@pytest.mark.broker
def test_rogue_machine_gets_no_anonymous_or_guessed_login(broker):
    assert connect_rc(broker, "till-1", password(broker, "till-1")) == 0  # the control
    assert connect_rc(broker, None, None) != 0
    assert connect_rc(broker, "till-1", "till-1") != 0
    assert connect_rc(broker, "hub", password(broker, "till-1")) != 0  # one device's secret is not the hub's


@pytest.mark.broker
def test_a_stolen_tablet_is_shut_out_by_revoking_its_login(broker):
    """The procedure of docs/threat-model.md: delete its passwd line, reload the broker."""
    stolen = password(broker, "till-2")
    assert connect_rc(broker, "till-2", stolen) == 0
    passwd = broker.conf_dir / "passwd"
    passwd.write_text("".join(line for line in passwd.read_text().splitlines(keepends=True)
                              if not line.startswith("till-2:")))  # fmt: skip
    broker.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 15  # the reload is asynchronous: retry until refused
    while connect_rc(broker, "till-2", stolen) == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert connect_rc(broker, "till-2", stolen) != 0
    assert connect_rc(broker, "till-1", password(broker, "till-1")) == 0  # the others go on


def test_backups_are_readable_by_their_owner_only(file_store, tmp_path):
    customers.create(file_store, {"last_name": "Albers"})
    path = bk.backup(file_store.path, tmp_path / "stick")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_escape_never_quits_the_kiosk():
    from kivy.config import Config

    from kiosk.app import configure_kivy

    configure_kivy(UiConfig(fullscreen=True))
    assert Config.get("kivy", "exit_on_escape") == "0"


def _scan(text: str):
    rec = synthesize([("scanner", text + "\n")], "de")
    out = decode_stream(rec.input_events(), "de", FramingConfig())
    assert len(out) == 1
    return out[0]


@pytest.mark.parametrize("payload", ["\x1b:!sh\x07", "abc\x1b[2Jxyz", "4006\x04381333931"])
def test_a_barcode_with_control_sequences_is_refused(payload):
    result = _scan(payload)
    assert isinstance(result, Rejected) and result.code == "charset"


def test_a_barcode_that_looks_like_a_command_is_only_data(store):
    """It reaches the app as text and is looked up with a bound parameter: nothing runs."""
    customers.create(store, {"last_name": "Albers"})
    payload = "1' OR '1'='1;$(reboot)"
    result = _scan(payload)
    assert isinstance(result, Scan) and result.text == payload
    with pytest.raises(customers.NotFound):
        customers.by_number(store, result.text)


def test_keyboard_scanners_are_grabbed_by_default():
    """A grabbed scanner's keys reach no other program and no virtual terminal switch."""
    assert EvdevScannerConfig(type="evdev", match_name="Honeywell").grab is True
