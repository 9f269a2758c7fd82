"""Keyboard-wedge (HID) barcode scanners read through evdev.

The scanner is found by name, USB vendor/product id or a ``/dev/input/by-id`` path and
grabbed exclusively (EVIOCGRAB), so its keystrokes never reach a text field or trigger a
hotkey. The loop only reads events and hands them to the pure decoder
(:mod:`kiosk.drivers.scan_framing`); unplugging and plugging in again is handled by looking
for the device again.

Device loop (one thread per scanner)::

    STARTING ─> looking ──found──> grab ──ok──> READING ──read error / EOF──> DISCONNECTED
                   ^   └─none──> DISCONNECTED      └─busy──> ERROR              │
                   └───────────── every rescan_s ───────────────────────────────┘
"""

from __future__ import annotations

import errno
import logging
import os
import select
import threading
from typing import Any, Literal, Protocol

from kiosk.drivers import barcodes
from kiosk.drivers.base import Callbacks, Rejected, Scan, State
from kiosk.drivers.registry import DriverConfig, DriverContext, register
from kiosk.drivers.scan_framing import FramingConfig, HumanKeys, KeyboardScanDecoder
from kiosk.drivers.status import StatusReporter
from kiosk.i18n import _

_LOGGER = logging.getLogger(__name__)

INPUT_DIR = "/dev/input"


class InputDeviceLike(Protocol):
    """What the loop needs from ``evdev.InputDevice`` (a replay device has the same)."""

    name: str
    path: str

    def fileno(self) -> int: ...

    def read(self) -> Any: ...

    def grab(self) -> None: ...

    def ungrab(self) -> None: ...

    def close(self) -> None: ...


class Finder(Protocol):
    def find(self) -> InputDeviceLike | None:
        """Open and return the device if it is there; raise PermissionError if unreadable."""
        ...

    def describe(self) -> str: ...


class MatchConfig(DriverConfig):
    """How to find an input device: any combination; all given must match."""

    match_name: str = ""  # part of the device name, case-insensitive
    vendor_id: int | None = None  # USB ids, e.g. 0x0c2e
    product_id: int | None = None
    path: str = ""  # /dev/input/by-id/usb-Honeywell_…-event-kbd (stable across ports)
    grab: bool = True
    rescan_s: float = 1.0

    def __post_init__(self) -> None:
        if not (self.match_name or self.vendor_id is not None or self.path):
            raise ValueError(_("give match_name, vendor_id/product_id or path to find the device"))
        if self.rescan_s <= 0:
            raise ValueError(_("rescan_s must be positive"))


class EvdevScannerConfig(MatchConfig):
    layout: Literal["de", "us"] = "de"
    max_gap_ms: float = 50.0  # longest pause between two keys of one scan
    min_length: int = 4
    terminator: Literal["enter", "tab", "none"] = "enter"
    prefix: str = ""
    suffix: str = ""
    require_prefix: bool = False
    symbologies: tuple[str, ...] = barcodes.DEFAULT_SYMBOLOGIES

    def __post_init__(self) -> None:
        super().__post_init__()
        check_framing(self)


def check_framing(cfg: Any) -> None:
    unknown = set(cfg.symbologies) - set(barcodes.SYMBOLOGIES)
    if unknown:
        raise ValueError(
            _("unknown symbologies {names} (known: {known})").format(
                names=", ".join(sorted(unknown)), known=", ".join(barcodes.SYMBOLOGIES)
            )
        )
    if cfg.max_gap_ms <= 0 or cfg.min_length < 1:
        raise ValueError(_("max_gap_ms must be positive and min_length at least 1"))


def framing_of(cfg: Any) -> FramingConfig:
    return FramingConfig(
        max_gap_ms=cfg.max_gap_ms,
        min_length=cfg.min_length,
        terminator=cfg.terminator,
        prefix=cfg.prefix,
        suffix=cfg.suffix,
        require_prefix=cfg.require_prefix,
        symbologies=tuple(cfg.symbologies),
    )


class EvdevFinder:
    """Find an input device in /dev/input; cheap to call again while nothing changed."""

    def __init__(self, config: MatchConfig, input_dir: str = INPUT_DIR) -> None:
        self.config = config
        self.input_dir = input_dir
        self._last_listing: list[str] | None = None
        self._misses = 0

    def describe(self) -> str:
        cfg = self.config
        parts = []
        if cfg.path:
            parts.append(cfg.path)
        if cfg.match_name:
            parts.append(_("name contains {name!r}").format(name=cfg.match_name))
        if cfg.vendor_id is not None:
            product = f"{cfg.product_id:04x}" if cfg.product_id is not None else "*"
            parts.append(f"USB {cfg.vendor_id:04x}:{product}")
        return ", ".join(parts)

    def _listing(self) -> list[str]:
        try:
            return sorted(os.listdir(self.input_dir))
        except OSError:
            return []

    def find(self) -> Any:
        import evdev

        listing = self._listing()
        # Re-open devices only when /dev/input changed (or every 10th try, for lost events).
        if listing == self._last_listing and self._misses % 10:
            self._misses += 1
            return None
        self._last_listing = listing
        found = self._find(evdev)
        self._misses = 0 if found is not None else self._misses + 1
        return found

    def _find(self, evdev: Any) -> Any:
        cfg = self.config
        denied = False
        paths = [cfg.path] if cfg.path else evdev.list_devices(self.input_dir)
        candidates = []
        for path in paths:
            if not os.path.exists(path):
                continue
            try:
                device = evdev.InputDevice(os.path.realpath(path))
            except PermissionError:
                denied = True
                continue
            except OSError:
                continue  # vanished between listing and opening
            if self.matches(device):
                candidates.append(device)
            else:
                device.close()
        if not candidates:
            if denied:
                raise PermissionError(self.describe())
            return None
        candidates.sort(key=_keyboard_rank)
        for extra in candidates[1:]:
            extra.close()
        return candidates[0]

    def matches(self, device: Any) -> bool:
        cfg = self.config
        if cfg.match_name and cfg.match_name.lower() not in (device.name or "").lower():
            return False
        if cfg.vendor_id is not None and device.info.vendor != cfg.vendor_id:
            return False
        if cfg.product_id is not None and device.info.product != cfg.product_id:
            return False
        return True


def _keyboard_rank(device: Any) -> tuple[int, str]:
    """Prefer the interface that types (a scanner may also expose consumer-control keys)."""
    from evdev import ecodes

    try:
        keys = set(device.capabilities().get(ecodes.EV_KEY, []))
    except OSError:
        keys = set()
    typing = ecodes.KEY_ENTER in keys and ecodes.KEY_1 in keys
    return (0 if typing else 1, device.path)


class EvdevReader(StatusReporter):
    """Find, grab and read one input device on a thread; subclasses handle the events."""

    kind = "scanner"

    def __init__(
        self, name: str, config: MatchConfig, finder: Finder, callbacks: Callbacks
    ) -> None:
        self.name = name
        self.config = config
        self.finder = finder
        self.callbacks = callbacks
        self.device: InputDeviceLike | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._wake_r = self._wake_w = -1
        self._init_status(_("starting"))

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name=f"evdev-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread is None:
            return
        self._stop.set()
        os.write(self._wake_w, b"x")
        self._thread.join(timeout)
        self._thread = None
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)
        self._wake_r = self._wake_w = -1
        self._publish(State.STOPPED, _("stopped"))

    # -- the loop --------------------------------------------------------------------------
    def _wait(self, seconds: float) -> None:
        select.select([self._wake_r], [], [], seconds)

    def _run(self) -> None:
        what = self.finder.describe()
        while not self._stop.is_set():
            try:
                device = self.finder.find()
            except PermissionError:
                self._publish(
                    State.ERROR,
                    _("no permission to read input devices ({what}): add the kiosk user to the"
                      " 'input' group").format(what=what),
                )
                self._wait(self.config.rescan_s)
                continue
            except Exception as exc:  # noqa: BLE001 - keep looking; report, never crash
                _LOGGER.exception("looking for %s failed", what)
                self._publish(State.ERROR, _("cannot look for {what}: {error}").format(what=what, error=exc))
                self._wait(self.config.rescan_s)
                continue
            if device is None:
                self._publish(
                    State.DISCONNECTED, _("not connected: no input device ({what})").format(what=what)
                )
                self._wait(self.config.rescan_s)
                continue
            if not self._grab(device):
                device.close()
                self._wait(self.config.rescan_s)
                continue
            self.device = device
            self._publish(
                State.OK, _("ready: {name}").format(name=device.name), path=device.path
            )
            self.on_connected()
            try:
                self._serve(device)
            finally:
                self.device = None
                self._release(device)
            if not self._stop.is_set():
                _LOGGER.warning("%s: %s disconnected", self.name, device.path)
                self._publish(
                    State.DISCONNECTED,
                    _("disconnected: {name} – plug it in again").format(name=device.name),
                )

    def _grab(self, device: InputDeviceLike) -> bool:
        if not self.config.grab:
            return True
        try:
            device.grab()
            return True
        except OSError as exc:
            if exc.errno == errno.EBUSY:
                message = _("{name} is grabbed by another program").format(name=device.name)
            else:
                message = _("cannot grab {name}: {error}").format(name=device.name, error=exc)
            self._publish(State.ERROR, message)
            return False

    def _release(self, device: InputDeviceLike) -> None:
        if self.config.grab:
            try:
                device.ungrab()
            except OSError:
                pass  # already gone
        try:
            device.close()
        except OSError:
            pass

    def _serve(self, device: InputDeviceLike) -> None:
        """Read until the device goes away or stop() is called."""
        fd = device.fileno()
        while not self._stop.is_set():
            timeout = self.idle_timeout()
            ready, _, _ = select.select([fd, self._wake_r], [], [], timeout)
            if self._wake_r in ready:
                return
            if not ready:
                self.on_idle()
                continue
            try:
                events = list(device.read())
            except BlockingIOError:
                continue
            except OSError as exc:  # ENODEV: unplugged
                _LOGGER.info("%s: read failed: %s", self.name, exc)
                self.on_idle()
                return
            if not events:  # end of stream
                self.on_idle()
                return
            self.on_events(events)

    # -- for subclasses ----------------------------------------------------------------------
    def idle_timeout(self) -> float:
        return 1.0

    def on_connected(self) -> None:
        pass

    def on_events(self, events: list[Any]) -> None:
        raise NotImplementedError

    def on_idle(self) -> None:
        pass


class EvdevScanner(EvdevReader):
    """A keyboard-wedge scanner: events -> keymap -> framing -> validated scans."""

    kind = "scanner"

    def __init__(
        self, name: str, config: EvdevScannerConfig, finder: Finder, callbacks: Callbacks
    ) -> None:
        super().__init__(name, config, finder, callbacks)
        self.decoder = KeyboardScanDecoder(config.layout, framing_of(config), name)
        self.scans = 0
        self.rejected = 0

    def idle_timeout(self) -> float:
        if self.decoder.framer.pending:
            return self.config.max_gap_ms / 1000
        return 1.0

    def on_connected(self) -> None:
        self.decoder.reset()

    def on_events(self, events: list[Any]) -> None:
        for event in events:
            self._dispatch(self.decoder.feed(event))

    def on_idle(self) -> None:
        self._dispatch(self.decoder.flush())

    def _dispatch(self, outputs: list[Any]) -> None:
        dispatch(self, outputs)


def dispatch(driver: Any, outputs: list[Any]) -> None:
    """Hand decoder outputs to the callbacks (shared by the keyboard and serial scanners)."""
    for out in outputs:
        if isinstance(out, Scan):
            driver.scans += 1
            driver.callbacks.call("scan", out)
        elif isinstance(out, Rejected):
            driver.rejected += 1
            _LOGGER.info("%s: refused %r: %s", driver.name, out.text, out.reason)
            driver.callbacks.call("rejected", out)
        elif isinstance(out, HumanKeys):
            driver.callbacks.call("keys", driver.name, out.text)


@register("scanner", "evdev", EvdevScannerConfig, "USB/HID keyboard-wedge scanner (evdev)")
def _make(config: EvdevScannerConfig, name: str, context: DriverContext) -> EvdevScanner:
    return EvdevScanner(name, config, EvdevFinder(config), context.callbacks)
