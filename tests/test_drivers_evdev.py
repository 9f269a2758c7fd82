"""HID scanners through evdev: recorded InputEvent streams fed at the device-read boundary.

Recordings (tests/data/evdev) are decoded purely, and also written as ``struct input_event``
records into a pipe that evdev's own C reader reads, exactly as from /dev/input/eventN.
"""

from __future__ import annotations

import errno
import time
from pathlib import Path

import pytest

from kiosk.drivers import keymap, registry
from kiosk.drivers.base import Rejected, Scan, State
from kiosk.drivers.evdev_replay import PipeInputDevice, ReplayFinder
from kiosk.drivers.record_evdev import Recording
from kiosk.drivers.scan_framing import FramingConfig, HumanKeys, decode_stream
from kiosk.drivers.scanner_evdev import EvdevFinder, EvdevScanner, EvdevScannerConfig
from tests.test_drivers_helpers import Collector, english  # noqa: F401

DATA = Path(__file__).parent / "data" / "evdev"
ALL = ("ean13", "ean8", "upca", "upce", "code128", "gs1-128")


def rec(name: str) -> Recording:
    return Recording.load(DATA / name)


# -- pure decoding of the recordings --------------------------------------------------------
@pytest.mark.parametrize("name", sorted(p.name for p in DATA.glob("*.json")))
def test_every_recording_types_what_was_noted(name):
    recording = rec(name)
    assert keymap.text(recording.input_events(), recording.layout) == "".join(recording.expected)


@pytest.mark.parametrize("name", ["scanner_de.json", "scanner_us.json"])
def test_scanner_bursts_in_german_and_us_layout(name):
    recording = rec(name)
    out = decode_stream(recording.input_events(), recording.layout, FramingConfig(symbologies=ALL))
    scans = [o for o in out if isinstance(o, Scan)]
    assert [(s.text, s.symbology) for s in scans] == [
        ("4006381333931", "ean13"),
        ("96385074", "ean8"),
        ("036000291452", "upca"),
        ("04252614", "upce"),
        ("ART-4711/Gr.XL", "code128"),  # shift: - / .
        ("LAGER@B{7}[3]\\x|~", "code128"),  # AltGr on de: @ { [ ] } \ | ~
        ("Zy-Yz_QWERTZ", "code128"),  # Y/Z swap between QWERTZ and QWERTY
    ]
    assert all(s.first_key_at < s.done_at for s in scans)  # kernel timestamps carried over
    [bad] = [o for o in out if isinstance(o, Rejected)]
    assert (bad.text, bad.code) == ("4006381333932", "check_digit")
    assert "expected 1" in bad.reason
    assert not [o for o in out if isinstance(o, HumanKeys)]


def test_scanner_set_to_us_on_a_german_setting_is_refused_with_a_layout_hint():
    recording = rec("scanner_us.json")
    out = decode_stream(recording.input_events(), "de", FramingConfig(symbologies=ALL))
    texts = {o.text: o for o in out}
    assert isinstance(texts["4006381333931"], Scan)  # digits are the same in both layouts
    refused = texts["ARTß4711-Gr.XL"]
    assert isinstance(refused, Rejected) and refused.code == "charset"
    assert "keyboard layout does not match" in refused.reason


def test_a_person_typing_is_never_a_scan_even_an_ean():
    recording = rec("human_de.json")
    out = decode_stream(recording.input_events(), "de", FramingConfig())
    assert all(isinstance(o, HumanKeys) for o in out)
    assert "".join(o.text for o in out) == "Müller\n4006381333931\nGröße 42\n"


def test_typing_then_a_scan_then_typing_on_one_device():
    recording = rec("mixed_de.json")
    out = decode_stream(recording.input_events(), "de", FramingConfig())
    assert [type(o).__name__ for o in out] == [
        "HumanKeys", "HumanKeys", "Scan", "HumanKeys", "HumanKeys"
    ]
    assert out[2].text == "4006381333931"
    assert "".join(o.text for o in out if isinstance(o, HumanKeys)) == "12x\n"


def test_prefix_and_suffix_are_stripped_and_a_required_prefix_is_enforced():
    recording = rec("prefixed_de.json")
    cfg = FramingConfig(prefix="#S", suffix="#E", require_prefix=True)
    out = decode_stream(recording.input_events(), "de", cfg)
    assert isinstance(out[0], Scan) and out[0].text == "4006381333931"
    assert "".join(o.text for o in out[1:]) == "abc\n"  # typed by hand afterwards

    plain = decode_stream(rec("scanner_de.json").input_events(), "de", cfg)
    assert plain[0].code == "prefix"
    assert "without the scanner prefix" in plain[0].reason


def test_without_a_suffix_the_inter_character_timeout_ends_each_scan():
    recording = rec("no_suffix_de.json")
    out = decode_stream(recording.input_events(), "de", FramingConfig(terminator="none"))
    assert [(o.text, o.symbology) for o in out] == [("4006381333931", "ean13"), ("96385074", "ean8")]
    # the same stream with Enter expected: each burst is refused as unterminated
    strict = decode_stream(recording.input_events(), "de", FramingConfig(terminator="enter"))
    assert [o.code for o in strict] == ["unterminated", "unterminated"]


def test_a_gap_longer_than_max_gap_splits_a_burst_into_typing():
    recording = rec("scanner_de.json")
    out = decode_stream(recording.input_events(), "de", FramingConfig(max_gap_ms=0.5))
    assert not [o for o in out if isinstance(o, Scan)]


@pytest.mark.parametrize("name", ["gs1_de.json", "gs1_us.json"])
def test_gs1_separator_by_alt_code_on_de_and_ctrl_bracket_on_us(name):
    recording = rec(name)
    out = decode_stream(recording.input_events(), recording.layout, FramingConfig(symbologies=ALL))
    assert [(o.text, o.symbology) for o in out] == [("0104012345123456\x1d10LOT42", "gs1-128")]


def test_caps_lock_and_dead_keys_on_de():
    from evdev import ecodes as e

    def press(code, t):
        return [(0, t, e.EV_KEY, code, 1), (0, t + 1, e.EV_KEY, code, 0)]

    rows = press(e.KEY_CAPSLOCK, 0) + press(e.KEY_A, 10) + press(e.KEY_APOSTROPHE, 20)
    rows += press(e.KEY_GRAVE, 30) + press(e.KEY_E, 40)  # dead ^ + E = Ê (caps still on)
    rows += press(e.KEY_CAPSLOCK, 50) + press(e.KEY_EQUAL, 60) + press(e.KEY_SPACE, 70)
    assert keymap.text([_Ev(*r) for r in rows], "de") == "AÄÊ´"


class _Ev:
    def __init__(self, sec, usec, type_, code, value):
        self.sec, self.usec, self.type, self.code, self.value = sec, usec, type_, code, value


# -- the live device loop -------------------------------------------------------------------
def make_scanner(collector: Collector, **cfg) -> tuple[EvdevScanner, ReplayFinder]:
    config = EvdevScannerConfig(type="evdev", match_name="scanner", rescan_s=0.05, **cfg)
    finder = ReplayFinder()
    return EvdevScanner("scanner", config, finder, collector.callbacks()), finder


def test_live_loop_grabs_reads_scans_and_survives_unplug_and_replug():
    got = Collector()
    scanner, finder = make_scanner(got, symbologies=ALL)
    scanner.start()
    try:
        got.wait(lambda: State.DISCONNECTED in got.states())  # nothing plugged in yet
        assert "not connected" in scanner.status.message

        first = finder.plug(PipeInputDevice(name="Honeywell scanner"))
        recording = rec("scanner_de.json")
        first.write_events(recording.events, shift=time.time() - recording.events[0][0])
        got.wait(lambda: len(got.scans) == 7 and len(got.rejected) == 1)
        assert first.grabbed and first.grab_count == 1  # exclusive while reading
        assert scanner.status.state is State.OK
        assert [s.text for s in got.scans][:2] == ["4006381333931", "96385074"]

        finder.unplug()  # pulled out: end of stream
        got.wait(lambda: scanner.status.state is State.DISCONNECTED)
        assert not first.grabbed
        assert "disconnected: Honeywell scanner – plug it in again" in [
            s.message for s in got.statuses
        ]

        second = finder.plug(PipeInputDevice(name="Honeywell scanner"))
        got.wait(lambda: scanner.status.state is State.OK)
        second.write_events(recording.events[:100], shift=time.time() - recording.events[0][0])
        got.wait(lambda: len(got.scans) == 8)
        assert got.scans[-1].text == "4006381333931"
        assert second.grabbed
    finally:
        scanner.stop()
    assert scanner.status.state is State.STOPPED


def test_live_loop_ends_a_scan_without_suffix_when_the_scanner_goes_quiet():
    got = Collector()
    scanner, finder = make_scanner(got, terminator="none", max_gap_ms=30)
    scanner.start()
    try:
        device = finder.plug(PipeInputDevice())
        recording = rec("no_suffix_de.json")
        # only the first code: nothing after it, so only the idle timeout can end it
        first_code = [r for r in recording.events if r[0] == recording.events[0][0]]
        device.write_events(first_code, shift=time.time() - recording.events[0][0])
        got.wait(lambda: got.scans)
        assert got.scans[0].text == "4006381333931"
    finally:
        scanner.stop()


class BusyDevice(PipeInputDevice):
    def grab(self) -> None:
        raise OSError(errno.EBUSY, "Device or resource busy")


def test_a_device_grabbed_by_another_program_is_reported_not_read():
    got = Collector()
    scanner, finder = make_scanner(got)
    finder.plug(BusyDevice(name="Datalogic"))
    scanner.start()
    try:
        got.wait(lambda: State.ERROR in got.states())
        assert scanner.status.message == "Datalogic is grabbed by another program"
    finally:
        scanner.stop()


def test_missing_input_devices_are_reported_as_disconnected(tmp_path):
    got = Collector()
    config = EvdevScannerConfig(type="evdev", match_name="Honeywell", rescan_s=0.05)
    scanner = EvdevScanner("scanner", config, EvdevFinder(config, str(tmp_path)), got.callbacks())
    scanner.start()
    try:
        got.wait(lambda: State.DISCONNECTED in got.states())
        assert "name contains 'Honeywell'" in scanner.status.message
    finally:
        scanner.stop()


def test_finder_matches_name_and_usb_ids():
    device = PipeInputDevice(name="Honeywell Imaging 1900", vendor=0x0C2E, product=0x0B61)
    try:
        def cfg(**kw):
            return EvdevScannerConfig(type="evdev", **kw)

        assert EvdevFinder(cfg(match_name="honeywell")).matches(device)
        assert EvdevFinder(cfg(vendor_id=0x0C2E, product_id=0x0B61)).matches(device)
        assert not EvdevFinder(cfg(vendor_id=0x0C2E, product_id=0x0B62)).matches(device)
        assert not EvdevFinder(cfg(match_name="Zebra")).matches(device)
    finally:
        device.close()


def test_config_needs_a_way_to_find_the_device_and_known_symbologies():
    with pytest.raises(registry.DriverConfigError, match="match_name"):
        registry.parse("scanner", 0, {"type": "evdev"})
    with pytest.raises(registry.DriverConfigError, match="unknown symbologies qr"):
        registry.parse("scanner", 0, {"type": "evdev", "match_name": "x", "symbologies": ["qr"]})
    with pytest.raises(registry.DriverConfigError, match="layout"):
        registry.parse("scanner", 0, {"type": "evdev", "match_name": "x", "layout": "fr"})
    with pytest.raises(registry.DriverConfigError, match="unknown"):
        registry.parse("scanner", 0, {"type": "evdev", "match_name": "x", "bogus": 1})


def test_evdev_replay_type_plays_a_recording_through_the_same_loop(tmp_path):
    got = Collector()
    entry, config = registry.parse(
        "scanner", 0,
        {"type": "evdev-replay", "file": str(DATA / "scanner_us.json"), "speed": 0,
         "start_delay_s": 0, "symbologies": list(ALL)},
    )  # fmt: skip
    scanner = registry.create(entry, config, registry.DriverContext(tmp_path, callbacks=got.callbacks()))
    scanner.start()
    try:
        got.wait(lambda: len(got.scans) == 7)
        assert scanner.decoder.keys.layout_name == "us"  # taken from the recording
    finally:
        scanner.stop()


def test_record_reads_a_device_and_the_file_replays_the_same(tmp_path):
    from kiosk.drivers import record_evdev

    source = rec("gs1_us.json")
    device = PipeInputDevice(name="Synthetic HID scanner", vendor=0x0C2E, product=0x0B61)
    try:
        device.write_events(source.events)
        device.unplug()  # end of stream ends the recording
        rows = record_evdev.record(device, seconds=10)
        assert device.grab_count == 1 and not device.grabbed
        made = record_evdev.make_recording(device, rows, layout="us", note="test")
    finally:
        device.close()
    made.save(tmp_path / "r.json")
    loaded = Recording.load(tmp_path / "r.json")
    assert loaded.events == source.events
    assert loaded.device["vendor"] == 0x0C2E
    assert keymap.text(loaded.input_events(), "us") == source.expected[0]


def test_a_file_that_is_not_a_recording_is_refused(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{"format": "other"}')
    with pytest.raises(ValueError, match="not an evdev recording"):
        Recording.load(path)
