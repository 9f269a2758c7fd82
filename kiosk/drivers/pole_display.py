"""Customer pole display: 2×20 VFD on a serial port, ESC/POS display commands (Epson DM-D).

    [[drivers.display]]
    type = "serial-vfd"
    url = "/dev/serial/by-id/usb-…"   # or any pyserial URL (loop:// in tests)
    baudrate = 9600
    encoding = "cp858"                 # characters the display's table has (€ in cp858)
    codepage = 19                      # ESC t n: the table to select (19 = PC858 on Epson)

Bytes sent (exact, see tests):

    on connect   ESC @ (1B 40) initialise, ESC t n (1B 74 n) table, US C 0 (1F 43 00) cursor off
    show(a, b)   US $ 1 1 (1F 24 01 01) + a padded to 20, US $ 1 2 (1F 24 01 02) + b padded
    clear()      CLR (0C)

``show`` returns at once; a writer thread sends only the newest text (a fast scanner does
not queue up stale lines) and reopens the port after unplugging, showing the text again.
"""

from __future__ import annotations

import logging
import threading

import serial

from kiosk.drivers.base import Callbacks, State
from kiosk.drivers.registry import DriverContext, register
from kiosk.drivers.scanner_serial import SerialPortConfig, describe_open_error, open_port
from kiosk.drivers.status import StatusReporter
from kiosk.i18n import _

_LOGGER = logging.getLogger(__name__)

INIT = b"\x1b\x40"
CURSOR_OFF = b"\x1f\x43\x00"
CLEAR = b"\x0c"


def select_table(n: int) -> bytes:
    return b"\x1b\x74" + bytes([n])


def move_to(column: int, row: int) -> bytes:
    return b"\x1f\x24" + bytes([column, row])


class VfdConfig(SerialPortConfig, kw_only=True):
    columns: int = 20
    rows: int = 2
    encoding: str = "cp858"
    codepage: int = 19
    currency: str = "€"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (1 <= self.columns <= 40 and self.rows == 2):
            raise ValueError(_("a pole display has 2 rows of 1 to 40 columns"))
        try:
            "x".encode(self.encoding)
        except LookupError as exc:
            raise ValueError(_("unknown encoding {name!r}").format(name=self.encoding)) from exc
        if not 0 <= self.codepage <= 255:
            raise ValueError(_("codepage must be 0–255"))


def format_cents(cents: int, currency: str = "€") -> str:
    """1234 → '12,34 €' (German style, integer cents in)."""
    sign = "-" if cents < 0 else ""
    cents = abs(int(cents))
    euros = f"{cents // 100:,}".replace(",", ".")
    return f"{sign}{euros},{cents % 100:02d} {currency}".rstrip()


def fit(left: str, right: str, width: int) -> str:
    """Left text and right-aligned amount on one line; the text is cut, never the amount."""
    right = right[:width]
    room = width - len(right) - (1 if right else 0)
    left = left[: max(room, 0)]
    return (left.ljust(width - len(right)) + right)[:width]


class PoleDisplay(StatusReporter):
    kind = "display"

    def __init__(self, name: str, config: VfdConfig, callbacks: Callbacks) -> None:
        self.name = name
        self.config = config
        self.columns = config.columns
        self.callbacks = callbacks
        self.port: serial.SerialBase | None = None
        self._frame: bytes | None = None  # newest text, not yet written
        self._shown: bytes | None = None  # last text written (shown again after reconnecting)
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.writes = 0
        self._init_status(_("starting"))

    # -- API --------------------------------------------------------------------------------
    def render(self, line1: str, line2: str = "") -> bytes:
        """The exact bytes for two lines (padded, cut to the width, encoded)."""
        enc = self.config.encoding
        a = line1[: self.columns].ljust(self.columns).encode(enc, errors="replace")
        b = line2[: self.columns].ljust(self.columns).encode(enc, errors="replace")
        return move_to(1, 1) + a + move_to(1, 2) + b

    def show(self, line1: str, line2: str = "") -> None:
        self._put(self.render(line1, line2))

    def clear(self) -> None:
        self._put(CLEAR)

    def show_item(self, text: str, amount_cents: int, total_cents: int) -> None:
        """The current basket line and the running total."""
        cur = self.config.currency
        self.show(
            fit(text, format_cents(amount_cents, cur), self.columns),
            fit(_("Total"), format_cents(total_cents, cur), self.columns),
        )

    def show_total(self, total_cents: int, paid_cents: int | None = None) -> None:
        cur = self.config.currency
        line2 = ""
        if paid_cents is not None:
            line2 = fit(_("Change"), format_cents(paid_cents - total_cents, cur), self.columns)
        self.show(fit(_("Total"), format_cents(total_cents, cur), self.columns), line2)

    def wait_written(self, timeout: float = 5.0) -> bool:
        """Block until the newest text is written (CLI and tests)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._frame is None, timeout)

    def _put(self, frame: bytes) -> None:
        with self._cond:
            self._frame = frame
            self._cond.notify_all()

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"vfd-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread is None:
            return
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self._thread.join(timeout)
        self._thread = None
        self._publish(State.STOPPED, _("stopped"))

    def _run(self) -> None:
        url = self.config.url
        while not self._stop.is_set():
            try:
                port = open_port(self.config)
                port.write(INIT + select_table(self.config.codepage) + CURSOR_OFF)
                with self._cond:
                    again = self._shown if self._frame is None else None
                if again is not None:  # the display lost its text with its power
                    port.write(again)
            except (serial.SerialException, OSError, ValueError) as exc:
                state, message = describe_open_error(url, exc)
                self._publish(state, message)
                with self._cond:
                    self._cond.wait_for(self._stop.is_set, self.config.rescan_s)
                continue
            self.port = port
            self._publish(State.OK, _("ready: {url}").format(url=url))
            try:
                self._serve(port)
            except (serial.SerialException, OSError) as exc:
                _LOGGER.info("%s: write failed: %s", self.name, exc)
                self._publish(
                    State.DISCONNECTED,
                    _("disconnected: {url} – plug it in again").format(url=url),
                )
            finally:
                self.port = None
                try:
                    port.close()
                except (serial.SerialException, OSError):
                    pass

    def _serve(self, port: serial.SerialBase) -> None:
        while not self._stop.is_set():
            with self._cond:
                self._cond.wait_for(lambda: self._frame is not None or self._stop.is_set(), 1.0)
                frame = self._frame
            if frame is None:
                continue
            port.write(frame)
            port.flush()
            self.writes += 1
            with self._cond:
                if self._frame is frame:
                    self._frame = None
                self._shown = frame if frame != CLEAR else None
                self._cond.notify_all()


@register("display", "serial-vfd", VfdConfig, "2×20 customer pole display (ESC/POS, serial)")
def _make(config: VfdConfig, name: str, context: DriverContext) -> PoleDisplay:
    return PoleDisplay(name, config, context.callbacks)
