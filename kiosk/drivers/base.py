"""Small interfaces every driver kind implements, and the values drivers report.

Drivers run their device loops on background threads and report through the callbacks in
:class:`Callbacks`. Callbacks are called on the driver's thread: the Kivy app forwards them to
the UI thread with ``Clock.schedule_once``; nothing here ever touches the UI.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

_LOGGER = logging.getLogger(__name__)

UTC = dt.timezone.utc


def utcnow() -> dt.datetime:
    """Return the current time as an aware UTC datetime."""
    return dt.datetime.now(UTC)


class State(enum.StrEnum):
    """Health of one device, as shown in the till's status bar."""

    STARTING = "starting"
    OK = "ok"
    WARNING = "warning"  # works, but needs attention soon (paper low)
    ERROR = "error"  # connected but not usable (cover open, paper out, no reply, bad config)
    DISCONNECTED = "disconnected"  # not there: unplugged, switched off, wrong path
    STOPPED = "stopped"


@dataclass(frozen=True)
class DeviceStatus:
    """What the UI shows for one configured device (and what the hub gets as device health)."""

    driver: str  # the configured name, e.g. "printer" or "scanner-2"
    kind: str  # scanner, printer, display, drawer, counter
    state: State
    message: str  # one translated line for people
    details: dict[str, Any] = field(default_factory=dict)
    at: dt.datetime = field(default_factory=utcnow)

    @property
    def usable(self) -> bool:
        return self.state in (State.OK, State.WARNING)

    def same_as(self, other: DeviceStatus | None) -> bool:
        """Return True when ``other`` says the same thing (ignoring its time)."""
        return (
            other is not None
            and (self.state, self.message, self.details)
            == (other.state, other.message, other.details)
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "driver": self.driver,
            "kind": self.kind,
            "state": str(self.state),
            "message": self.message,
            "details": dict(self.details),
            "at": self.at.astimezone(UTC).isoformat(timespec="milliseconds"),
        }


@dataclass(frozen=True)
class Scan:
    """A validated barcode from a scanner."""

    text: str
    symbology: str  # ean13, ean8, upca, upce, itf14, code128, gs1-128, code39
    source: str  # driver name
    gtin: str | None = None  # 14-digit GTIN for EAN/UPC/ITF codes: the product lookup key
    first_key_at: float = 0.0  # epoch seconds of the first key/byte (kernel timestamp for evdev)
    done_at: float = 0.0  # epoch seconds when the scan was complete


@dataclass(frozen=True)
class Rejected:
    """Input from a scanner that was not accepted as a barcode, with the reason."""

    text: str
    reason: str  # translated
    code: str  # machine-readable: check_digit, charset, symbology, length, prefix, unterminated
    source: str


@dataclass(frozen=True)
class CountDelta:
    """People counted by one counter in one hour since its last flush."""

    counter: str
    hour_start: dt.datetime  # aware: start of the shop-local hour
    direction: str  # in, out, pass
    count: int
    per_visit: int  # passes per visit for direction "pass" (2 for a beam crossed in and out)
    flush_id: str  # unique per flush: recording the same delta twice counts it once


@dataclass(frozen=True)
class JobUpdate:
    """A print job changed state (queued, printed, cancelled)."""

    printer: str
    job_id: int
    kind: str
    ref: str
    state: str  # pending, done, cancelled
    error: str = ""


def _ignore(*_args: Any) -> None:
    return None


@dataclass
class Callbacks:
    """Where drivers report; every callback runs on a driver thread and must not block."""

    scan: Callable[[Scan], None] = _ignore
    rejected: Callable[[Rejected], None] = _ignore
    keys: Callable[[str, str], None] = _ignore  # (driver, text) slow typing on a scanner device
    status: Callable[[DeviceStatus], None] = _ignore
    counts: Callable[[CountDelta], None] = _ignore
    job: Callable[[JobUpdate], None] = _ignore

    def call(self, name: str, *args: Any) -> bool:
        """Call one callback; a failing receiver is logged and never stops a device loop."""
        try:
            getattr(self, name)(*args)
            return True
        except Exception:  # noqa: BLE001 - the receiver's bug must not kill the device thread
            _LOGGER.exception("driver callback %s failed", name)
            return False


# -- the interfaces --------------------------------------------------------------------------
@runtime_checkable
class Driver(Protocol):
    name: str
    kind: str

    def start(self) -> None: ...

    def stop(self, timeout: float = 5.0) -> None: ...

    @property
    def status(self) -> DeviceStatus: ...


@runtime_checkable
class BarcodeSource(Driver, Protocol):
    """Reports :class:`Scan` through ``Callbacks.scan`` from its own thread."""


@runtime_checkable
class ReceiptPrinter(Driver, Protocol):
    def submit(self, data: bytes, kind: str = "receipt", ref: str = "") -> int:
        """Queue rendered ESC/POS bytes durably and return at once with the job id."""
        ...

    def reprint_last(self, kind: str = "receipt") -> int | None: ...

    def kick_drawer(self, pin: int | None = None) -> None: ...


@runtime_checkable
class LineDisplay(Driver, Protocol):
    columns: int

    def show(self, line1: str, line2: str = "") -> None:
        """Show two lines; returns at once, the write happens on the driver thread."""
        ...

    def clear(self) -> None: ...


@runtime_checkable
class CashDrawer(Driver, Protocol):
    def open(self) -> None: ...


@runtime_checkable
class Counter(Driver, Protocol):
    """Reports :class:`CountDelta` through ``Callbacks.counts`` (hourly buckets)."""

    def flush(self) -> list[CountDelta]: ...
