"""Serial barcode scanners (RS-232, or USB in CDC-ACM / "USB COM port" mode) via pyserial.

The port is opened with ``serial.serial_for_url``, so the config may name a device
(``/dev/ttyACM0``, better a stable ``/dev/serial/by-id/…`` link) or any pyserial URL
(``socket://``, ``rfc2217://``, ``loop://``). A scan ends at the terminator, or — for
scanners without one — when the line has been quiet for ``idle_ms``. Unplugging is noticed
on the next read; the port is then opened again every ``rescan_s`` until it is back.
"""

from __future__ import annotations

import errno
import logging
import re
import threading
import time
from typing import Literal

import serial

from kiosk.drivers import barcodes
from kiosk.drivers.base import Callbacks, Rejected, State
from kiosk.drivers.registry import DriverConfig, DriverContext, register
from kiosk.drivers.scan_framing import FramingConfig, validate
from kiosk.drivers.scanner_evdev import check_framing, dispatch
from kiosk.drivers.status import StatusReporter
from kiosk.i18n import _

_LOGGER = logging.getLogger(__name__)

TERMINATORS: dict[str, re.Pattern[bytes] | None] = {
    "cr": re.compile(rb"\r"),
    "lf": re.compile(rb"\n"),
    "crlf": re.compile(rb"\r\n"),
    "any-eol": re.compile(rb"\r\n|\r|\n"),
    "tab": re.compile(rb"\t"),
    "etx": re.compile(rb"\x03"),
    "none": None,
}


class SerialPortConfig(DriverConfig):
    url: str  # /dev/serial/by-id/…, /dev/ttyUSB0, socket://host:port, loop://
    baudrate: int = 9600
    bytesize: Literal[5, 6, 7, 8] = 8
    parity: Literal["N", "E", "O", "M", "S"] = "N"
    stopbits: Literal[1, 2] = 1
    rtscts: bool = False
    dsrdtr: bool = False
    xonxoff: bool = False
    rescan_s: float = 1.0

    def __post_init__(self) -> None:
        if self.baudrate not in serial.Serial.BAUDRATES:
            raise ValueError(_("baudrate {value} is not a standard rate").format(value=self.baudrate))
        if self.rescan_s <= 0:
            raise ValueError(_("rescan_s must be positive"))


class SerialScannerConfig(SerialPortConfig):
    terminator: Literal["cr", "lf", "crlf", "any-eol", "tab", "etx", "none"] = "any-eol"
    idle_ms: float = 80.0  # with terminator "none": quiet time that ends a scan
    encoding: str = "latin-1"
    prefix: str = ""  # e.g. "\u0002" (STX) or an AIM identifier you want removed
    suffix: str = ""
    require_prefix: bool = False
    symbologies: tuple[str, ...] = barcodes.DEFAULT_SYMBOLOGIES
    # unused by serial framing, present so check_framing applies the same rules
    max_gap_ms: float = 50.0
    min_length: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        check_framing(self)
        try:
            "x".encode(self.encoding)
        except LookupError as exc:
            raise ValueError(_("unknown encoding {name!r}").format(name=self.encoding)) from exc


def open_port(cfg: SerialPortConfig, timeout: float = 0.1) -> serial.SerialBase:
    """Open the configured port (any pyserial URL)."""
    return serial.serial_for_url(
        cfg.url,
        baudrate=cfg.baudrate,
        bytesize=cfg.bytesize,
        parity=cfg.parity,
        stopbits=cfg.stopbits,
        rtscts=cfg.rtscts,
        dsrdtr=cfg.dsrdtr,
        xonxoff=cfg.xonxoff,
        timeout=timeout,
        write_timeout=2.0,
    )


def describe_open_error(url: str, exc: Exception) -> tuple[State, str]:
    """Turn an open() failure into the status the till shows."""
    err = getattr(exc, "errno", None)  # pyserial keeps the OS error number
    if err == errno.ENOENT:
        return State.DISCONNECTED, _("not connected: {url} not found").format(url=url)
    if err == errno.EACCES:
        return State.ERROR, _(
            "no permission to open {url}: add the kiosk user to the 'dialout' group"
        ).format(url=url)
    if err == errno.EBUSY:
        return State.ERROR, _("{url} is in use by another program").format(url=url)
    return State.DISCONNECTED, _("not connected: {url} ({error})").format(url=url, error=exc)


class SerialLineReader(StatusReporter):
    """Open a serial port on a thread, read bytes, reopen after unplugging."""

    kind = "scanner"

    def __init__(self, name: str, config: SerialPortConfig, callbacks: Callbacks) -> None:
        self.name = name
        self.config = config
        self.callbacks = callbacks
        self.port: serial.SerialBase | None = None  # the open port; None while disconnected
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._init_status(_("starting"))

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"serial-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout)
        self._thread = None
        self._publish(State.STOPPED, _("stopped"))

    def wait_ready(self, timeout: float = 5.0) -> bool:
        """Block until the port is open (for the CLI and tests); True when it is."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.port is not None and self.status.state is State.OK:
                return True
            time.sleep(0.01)
        return False

    def _run(self) -> None:
        url = self.config.url
        while not self._stop.is_set():
            try:
                port = open_port(self.config)
            except (serial.SerialException, OSError, ValueError) as exc:
                state, message = describe_open_error(url, exc)
                self._publish(state, message)
                self._stop.wait(self.config.rescan_s)
                continue
            self.port = port
            self.on_connected()
            self._publish(State.OK, _("ready: {url}").format(url=url))
            try:
                self._serve(port)
            finally:
                self.port = None
                try:
                    port.close()
                except (serial.SerialException, OSError):
                    pass
            if not self._stop.is_set():
                self._publish(
                    State.DISCONNECTED,
                    _("disconnected: {url} – plug it in again").format(url=url),
                )
                self._stop.wait(min(self.config.rescan_s, 0.2))

    def _serve(self, port: serial.SerialBase) -> None:
        while not self._stop.is_set():
            try:
                data = port.read(max(1, port.in_waiting))
            except (serial.SerialException, OSError) as exc:
                _LOGGER.info("%s: read failed: %s", self.name, exc)
                self.on_idle()
                return
            if data:
                self.on_bytes(data, time.time())
            else:
                self.on_idle()

    # -- for subclasses ----------------------------------------------------------------------
    def on_connected(self) -> None:
        pass

    def on_bytes(self, data: bytes, when: float) -> None:
        raise NotImplementedError

    def on_idle(self) -> None:
        pass


class SerialScanner(SerialLineReader):
    """Bytes -> frames at the terminator -> validated scans."""

    def __init__(self, name: str, config: SerialScannerConfig, callbacks: Callbacks) -> None:
        super().__init__(name, config, callbacks)
        self.framing = FramingConfig(
            terminator="none",
            prefix=config.prefix,
            suffix=config.suffix,
            require_prefix=config.require_prefix,
            symbologies=tuple(config.symbologies),
        )
        self._split = TERMINATORS[config.terminator]
        self._buf = bytearray()
        self._first = 0.0
        self._last = 0.0
        self.scans = 0
        self.rejected = 0

    def on_connected(self) -> None:
        self._buf.clear()

    def on_bytes(self, data: bytes, when: float) -> None:
        if not self._buf:
            self._first = when
        self._buf += data
        self._last = when
        if self._split is None:
            return
        while True:
            match = self._split.search(self._buf)
            if match is None:
                break
            frame = bytes(self._buf[: match.start()])
            del self._buf[: match.end()]
            self._frame(frame, self._first, when)
            self._first = when

    def on_idle(self) -> None:
        if not self._buf:
            return
        if self._split is None:
            if time.time() - self._last >= self.config.idle_ms / 1000:
                frame = bytes(self._buf)
                self._buf.clear()
                self._frame(frame, self._first, self._last)
        elif time.time() - self._last > 2.0:
            # Half a line and then silence: a scanner never does that; drop it with a reason.
            frame = bytes(self._buf)
            self._buf.clear()
            self._frame(frame, self._first, self._last, terminated=False)

    def _frame(self, frame: bytes, first: float, last: float, terminated: bool = True) -> None:
        if not frame.strip(b"\r\n"):
            return  # the LF of a CRLF pair with "cr", or a blank line
        text = frame.decode(self.config.encoding, errors="replace").strip("\r\n")
        if not terminated:
            reason = _("Scan without its end mark – check the scanner's suffix.")
            dispatch(self, [Rejected(text, reason, "unterminated", self.name)])
            return
        dispatch(self, [validate(text, self.framing, self.name, first, last)])


@register("scanner", "serial", SerialScannerConfig, "RS-232 / USB-COM scanner (pyserial)")
def _make(config: SerialScannerConfig, name: str, context: DriverContext) -> SerialScanner:
    return SerialScanner(name, config, context.callbacks)
