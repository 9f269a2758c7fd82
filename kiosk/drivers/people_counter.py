"""Door people counters ("Durchgangszähler"): serial or input-event, counted per shop hour.

Counts are kept per shop-local hour and direction in memory and handed out as
:class:`~kiosk.drivers.base.CountDelta` every ``flush_s`` (and on stop) through
``Callbacks.counts``; the app records each delta with ``kiosk.engine.traffic.record``, which
is idempotent by the delta's ``flush_id``.

Serial counters send one line per event: ``IN``, ``OUT`` or ``PASS`` (tokens configurable),
optionally with a number (``IN 3``) when the counter batches::

    [[drivers.counter]]
    type = "serial"
    url = "/dev/ttyUSB1"
    baudrate = 9600

Input-event counters are a beam or mat wired to a USB keyboard encoder: each key press is
one event::

    [[drivers.counter]]
    type = "evdev"
    match_name = "Door sensor"
    in_key = "KEY_F13"
    out_key = "KEY_F14"
    pass_key = ""        # a single beam that cannot tell direction: per_visit passes per visit
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import time
import uuid
from typing import Any
from zoneinfo import ZoneInfo

from evdev import ecodes

from kiosk.drivers.base import Callbacks, CountDelta, State
from kiosk.drivers.registry import DriverContext, register
from kiosk.drivers.scanner_evdev import EvdevFinder, EvdevReader, MatchConfig
from kiosk.drivers.scanner_serial import SerialLineReader, SerialPortConfig
from kiosk.i18n import _

_LOGGER = logging.getLogger(__name__)

DIRECTIONS = ("in", "out", "pass")
_SHOP_TZ = ZoneInfo("Europe/Berlin")  # as kiosk.engine.clock.SHOP_TZ (drivers stay engine-free)


def shop_hour(epoch: float) -> dt.datetime:
    """Start of the shop-local hour containing ``epoch`` (aware, Europe/Berlin)."""
    local = dt.datetime.fromtimestamp(epoch, _SHOP_TZ)
    return local.replace(minute=0, second=0, microsecond=0)


class Tally:
    """Counts per (hour, direction) since the last flush; thread-safe, pure otherwise."""

    def __init__(self, counter: str, per_visit: int = 2) -> None:
        self.counter = counter
        self.per_visit = per_visit
        self._lock = threading.Lock()
        self._counts: dict[tuple[dt.datetime, str], int] = {}

    def add(self, direction: str, when: float, n: int = 1) -> None:
        if direction not in DIRECTIONS or n <= 0:
            return
        # keyed in UTC: two local 02:00 hours on the autumn DST night compare equal otherwise
        key = (shop_hour(when).astimezone(dt.timezone.utc), direction)
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + n

    def flush(self) -> list[CountDelta]:
        with self._lock:
            counts, self._counts = self._counts, {}
        return [
            CountDelta(
                counter=self.counter,
                hour_start=hour.astimezone(_SHOP_TZ),
                direction=direction,
                count=n,
                per_visit=self.per_visit if direction == "pass" else 1,
                flush_id=str(uuid.uuid4()),
            )
            for (hour, direction), n in sorted(counts.items())
        ]


class _Counting:
    """Shared by both counter types: tally, periodic flush, flush on stop."""

    kind = "counter"
    name: str
    callbacks: Callbacks
    tally: Tally
    flush_s: float
    _last_flush: float

    def flush(self) -> list[CountDelta]:
        self._last_flush = time.monotonic()
        deltas = self.tally.flush()
        for delta in deltas:
            self.callbacks.call("counts", delta)
        return deltas

    def _maybe_flush(self) -> None:
        if time.monotonic() - self._last_flush >= self.flush_s:
            self.flush()


class SerialCounterConfig(SerialPortConfig, kw_only=True):
    in_token: str = "IN"
    out_token: str = "OUT"
    pass_token: str = "PASS"
    per_visit: int = 2
    flush_s: float = 60.0
    encoding: str = "ascii"

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_counting(self)


def _check_counting(cfg: Any) -> None:
    if not 1 <= cfg.per_visit <= 10:
        raise ValueError(_("per_visit must be 1–10"))
    if cfg.flush_s <= 0:
        raise ValueError(_("flush_s must be positive"))


_LINE = re.compile(rb"\r\n|\r|\n")


class SerialCounter(_Counting, SerialLineReader):
    def __init__(self, name: str, config: SerialCounterConfig, callbacks: Callbacks) -> None:
        super().__init__(name, config, callbacks)
        self.tally = Tally(name, config.per_visit)
        self.flush_s = config.flush_s
        self._last_flush = time.monotonic()
        self._buf = bytearray()
        self._tokens = {
            config.in_token.upper(): "in",
            config.out_token.upper(): "out",
            config.pass_token.upper(): "pass",
        }
        self.unknown_lines = 0

    def on_connected(self) -> None:
        self._buf.clear()

    def on_bytes(self, data: bytes, when: float) -> None:
        self._buf += data
        while (m := _LINE.search(self._buf)) is not None:
            line = bytes(self._buf[: m.start()])
            del self._buf[: m.end()]
            self.on_line(line.decode(self.config.encoding, errors="replace").strip(), when)
        self._maybe_flush()

    def on_line(self, line: str, when: float) -> None:
        if not line:
            return
        parts = line.split()
        direction = self._tokens.get(parts[0].upper())
        n = 1
        if len(parts) == 2 and parts[1].isdigit():
            n = int(parts[1])
        elif len(parts) != 1:
            direction = None
        if direction is None:
            self.unknown_lines += 1
            _LOGGER.info("%s: ignored line %r", self.name, line)
            self._publish(
                State.WARNING,
                _("counter sends unknown data ({line!r}) – check the token settings").format(
                    line=line[:20]
                ),
            )
            return
        self.tally.add(direction, when, n)

    def on_idle(self) -> None:
        self._maybe_flush()

    def stop(self, timeout: float = 5.0) -> None:
        super().stop(timeout)
        self.flush()


class EvdevCounterConfig(MatchConfig, kw_only=True):
    in_key: str = ""
    out_key: str = ""
    pass_key: str = ""
    per_visit: int = 2
    flush_s: float = 60.0

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_counting(self)
        keys = [k for k in (self.in_key, self.out_key, self.pass_key) if k]
        if not keys:
            raise ValueError(_("give in_key/out_key or pass_key (e.g. \"KEY_F13\")"))
        for key in keys:
            if not isinstance(getattr(ecodes, key, None), int) or not key.startswith(("KEY_", "BTN_")):
                raise ValueError(_("unknown key name {key!r}").format(key=key))


class EvdevCounter(_Counting, EvdevReader):
    def __init__(self, name: str, config: EvdevCounterConfig, finder: Any, callbacks: Callbacks) -> None:
        super().__init__(name, config, finder, callbacks)
        self.tally = Tally(name, config.per_visit)
        self.flush_s = config.flush_s
        self._last_flush = time.monotonic()
        self._keys = {
            getattr(ecodes, key): direction
            for key, direction in (
                (config.in_key, "in"), (config.out_key, "out"), (config.pass_key, "pass")
            )
            if key
        }

    def on_events(self, events: list[Any]) -> None:
        for ev in events:
            if ev.type == ecodes.EV_KEY and ev.value == 1 and ev.code in self._keys:
                self.tally.add(self._keys[ev.code], ev.sec + ev.usec / 1e6)
        self._maybe_flush()

    def on_idle(self) -> None:
        self._maybe_flush()

    def idle_timeout(self) -> float:
        return min(1.0, self.flush_s)

    def stop(self, timeout: float = 5.0) -> None:
        super().stop(timeout)
        self.flush()


@register("counter", "serial", SerialCounterConfig, "door counter sending IN/OUT/PASS lines")
def _make_serial(config: SerialCounterConfig, name: str, context: DriverContext) -> SerialCounter:
    return SerialCounter(name, config, context.callbacks)


@register("counter", "evdev", EvdevCounterConfig, "door sensor wired to a keyboard encoder")
def _make_evdev(config: EvdevCounterConfig, name: str, context: DriverContext) -> EvdevCounter:
    return EvdevCounter(name, config, EvdevFinder(config), context.callbacks)
