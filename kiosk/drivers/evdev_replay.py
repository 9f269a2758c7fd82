"""Replay recorded evdev streams through the same read path as a live input device.

:class:`PipeInputDevice` is an ``evdev`` EventIO whose file descriptor is a pipe carrying
``struct input_event`` records, so ``read()`` is evdev's own C reader and the scanner loop
cannot tell it from ``/dev/input/eventN``. Closing the pipe's write end looks like an
unplugged device (end of stream).

Registered as scanner type ``evdev-replay`` for demos, UI work and benchmarks without a
scanner::

    [[drivers.scanner]]
    type = "evdev-replay"
    file = "tests/data/evdev/scanner_burst_de.json"
    speed = 1.0          # 1 = recorded pace, 0 = as fast as possible
    repeat_every_s = 5   # play again after a pause; 0 = once
"""

from __future__ import annotations

import os
import struct
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from evdev.device import DeviceInfo
from evdev.eventio import EventIO

from kiosk.drivers import barcodes
from kiosk.drivers.registry import DriverConfig, DriverContext, register
from kiosk.drivers.record_evdev import Recording
from kiosk.drivers.scanner_evdev import EvdevScanner, check_framing
from kiosk.i18n import _

_EVENT = struct.Struct("llHHi")  # struct input_event on this platform (timeval, type, code, value)

Row = tuple[int, int, int, int, int]


class PipeInputDevice(EventIO):
    """An input device fed through a pipe; looks like a kernel evdev node to readers."""

    def __init__(
        self, name: str = "Replay scanner", path: str = "replay://0", vendor: int = 0, product: int = 0
    ) -> None:
        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)
        self.fd = self._r
        self.name = name
        self.path = path
        self.phys = ""
        self.info = DeviceInfo(bustype=3, vendor=vendor, product=product, version=1)
        self.grabbed = False
        self.grab_count = 0
        self._lock = threading.Lock()

    # -- the writing side (the "kernel") -----------------------------------------------------
    def write_events(self, events: Iterable[Any], shift: float = 0.0) -> None:
        """Write events (InputEvent or rows); ``shift`` seconds are added to their times."""
        data = bytearray()
        for ev in events:
            sec, usec, etype, code, value = (
                ev if isinstance(ev, tuple | list) else (ev.sec, ev.usec, ev.type, ev.code, ev.value)
            )
            if shift:
                stamp = sec + usec / 1e6 + shift
                sec, usec = int(stamp), int(round((stamp - int(stamp)) * 1e6))
                if usec >= 1_000_000:
                    sec, usec = sec + 1, usec - 1_000_000
            data += _EVENT.pack(sec, usec, etype, code, value)
        with self._lock:
            if self._w < 0:
                raise OSError("replay device unplugged")
            view = memoryview(bytes(data))
            while view:
                written = os.write(self._w, view)
                view = view[written:]

    def unplug(self) -> None:
        """Close the writing end: the reader sees end of stream, as on a removed device."""
        with self._lock:
            if self._w >= 0:
                os.close(self._w)
                self._w = -1

    @property
    def plugged(self) -> bool:
        return self._w >= 0

    # -- the InputDevice surface the loop uses -------------------------------------------------
    def grab(self) -> None:
        self.grabbed = True
        self.grab_count += 1

    def ungrab(self) -> None:
        self.grabbed = False

    def capabilities(self) -> dict[int, list[int]]:
        return {}

    def close(self) -> None:
        self.unplug()
        if self._r >= 0:
            os.close(self._r)
            self._r = -1
            self.fd = -1


class ReplayFinder:
    """A finder whose device is plugged in and pulled out by hand (tests, demos)."""

    def __init__(self, description: str = "replay") -> None:
        self._device: PipeInputDevice | None = None
        self._handed_out = False
        self._lock = threading.Lock()
        self.description = description
        self.finds = 0

    def plug(self, device: PipeInputDevice) -> PipeInputDevice:
        with self._lock:
            self._device, self._handed_out = device, False
        return device

    def unplug(self) -> None:
        with self._lock:
            device, self._device = self._device, None
        if device is not None:
            device.unplug()

    def find(self) -> PipeInputDevice | None:
        with self._lock:
            self.finds += 1
            if self._device is None or self._handed_out or not self._device.plugged:
                return None
            self._handed_out = True
            return self._device

    def describe(self) -> str:
        return self.description


def play(
    device: PipeInputDevice,
    events: list[Row],
    speed: float = 1.0,
    stop: threading.Event | None = None,
) -> None:
    """Write a recording to the device at ``speed`` times its pace, re-stamped to now.

    Each event is stamped with the time it is due, so the gaps the reader sees are the
    recorded ones even when this thread is late; events already due go out in one write.
    """
    if not events:
        return
    t0 = events[0][0] + events[0][1] / 1e6
    start = time.time()
    if speed <= 0:
        device.write_events(events, shift=start - t0)
        return
    due = [start + (sec + usec / 1e6 - t0) / speed for sec, usec, *_ in events]
    i = 0
    while i < len(events):
        if stop is not None and stop.is_set():
            return
        wait = due[i] - time.time()
        if wait > 0:
            time.sleep(wait)
        now = time.time()
        j = i + 1
        while j < len(events) and due[j] <= now:
            j += 1
        rows = [
            (int(due[k]), int((due[k] - int(due[k])) * 1e6), *events[k][2:]) for k in range(i, j)
        ]
        device.write_events(rows)
        i = j


class ReplayConfig(DriverConfig):
    file: str
    speed: float = 1.0
    start_delay_s: float = 0.5
    repeat_every_s: float = 0.0
    layout: Literal["de", "us", ""] = ""  # default: the layout stored in the recording
    max_gap_ms: float = 50.0
    min_length: int = 4
    terminator: Literal["enter", "tab", "none"] = "enter"
    prefix: str = ""
    suffix: str = ""
    require_prefix: bool = False
    symbologies: tuple[str, ...] = barcodes.DEFAULT_SYMBOLOGIES
    grab: bool = True
    rescan_s: float = 1.0

    def __post_init__(self) -> None:
        check_framing(self)


class RecordingFinder(ReplayFinder):
    """Plugs in a pipe device and plays a recording into it on a helper thread."""

    def __init__(self, recording: Recording, config: ReplayConfig, name: str) -> None:
        super().__init__(_("recording {file}").format(file=config.file))
        self.recording = recording
        self.config = config
        self.stop_event = threading.Event()
        self.name = name
        self._player: threading.Thread | None = None

    def find(self) -> PipeInputDevice | None:
        if self._player is None:  # first look: plug in and start playing
            device = PipeInputDevice(
                name=self.recording.device.get("name") or self.name,
                path=f"replay://{Path(self.config.file).name}",
                vendor=int(self.recording.device.get("vendor", 0)),
                product=int(self.recording.device.get("product", 0)),
            )
            self.plug(device)
            self._player = threading.Thread(
                target=self._play, args=(device,), name=f"replay-{self.name}", daemon=True
            )
            self._player.start()
        return super().find()

    def _play(self, device: PipeInputDevice) -> None:
        if self.stop_event.wait(self.config.start_delay_s):
            return
        while not self.stop_event.is_set():
            try:
                play(device, self.recording.events, self.config.speed, self.stop_event)
            except OSError:
                return  # reader closed the device
            if self.config.repeat_every_s <= 0 or self.stop_event.wait(self.config.repeat_every_s):
                return


class ReplayScanner(EvdevScanner):
    def stop(self, timeout: float = 5.0) -> None:
        self.finder.stop_event.set()
        super().stop(timeout)


@register("scanner", "evdev-replay", ReplayConfig, "plays a recorded evdev stream (no hardware)")
def _make(config: ReplayConfig, name: str, context: DriverContext) -> EvdevScanner:
    path = Path(config.file)
    if not path.is_absolute():
        path = context.data_dir / path if not path.exists() else path
    recording = Recording.load(path)
    layout = config.layout or recording.layout or "de"
    from kiosk.drivers.scanner_evdev import EvdevScannerConfig

    scanner_cfg = EvdevScannerConfig(
        type="evdev",
        name=name,
        path=str(path),
        layout=layout,
        max_gap_ms=config.max_gap_ms,
        min_length=config.min_length,
        terminator=config.terminator,
        prefix=config.prefix,
        suffix=config.suffix,
        require_prefix=config.require_prefix,
        symbologies=config.symbologies,
        grab=config.grab,
        rescan_s=config.rescan_s,
    )
    return ReplayScanner(name, scanner_cfg, RecordingFinder(recording, config, name), context.callbacks)
