"""ESC/POS printer status from DLE EOT real-time replies (pure decoding).

``DLE EOT n`` (0x10 0x04 n) is answered with one byte even while the printer is offline or
busy. Every valid reply has bit 1 and bit 4 set and bits 0 and 7 clear (``0xx1xx10``), which
tells a reply from line noise. No reply at all means the printer is off or not connected —
python-escpos' ``paper_status()`` would call that "paper adequate"; here it is an error.

    n=1 printer:  bit 2 drawer pin 3 high, bit 3 offline, bit 5 waiting for recovery,
                  bit 6 feed button pressed
    n=2 offline:  bit 2 cover open, bit 3 paper fed by button, bit 5 stopped by paper end,
                  bit 6 error
    n=3 error:    bit 3 autocutter error, bit 5 unrecoverable error, bit 6 auto-recoverable
                  error (head too hot)
    n=4 paper:    bits 2+3 roll near its end, bits 5+6 paper out
"""

from __future__ import annotations

from dataclasses import dataclass

from kiosk.drivers.base import State
from kiosk.i18n import _

DLE_EOT = b"\x10\x04"
QUERIES = (1, 2, 4, 3)  # the order they are asked in; 3 only when 2 reports an error


def query_bytes(n: int) -> bytes:
    return DLE_EOT + bytes([n])


def valid_reply(byte: int) -> bool:
    """True when ``byte`` has the fixed bits of a DLE EOT reply (0xx1xx10)."""
    return byte & 0x93 == 0x12


class StatusReplyError(ValueError):
    """A reply byte is not a DLE EOT status (noise, wrong baud rate, another protocol)."""


@dataclass(frozen=True)
class PrinterState:
    online: bool
    cover_open: bool = False
    paper: str = "ok"  # ok, low, out
    error: str = ""  # "", cutter, unrecoverable, recoverable, other
    drawer_pin3: bool = False  # drawer sensor level; open/closed depends on the drawer
    feed_button: bool = False

    @property
    def can_print(self) -> bool:
        return self.online and not self.cover_open and self.paper != "out" and not self.error

    def problems(self) -> list[str]:
        """Translated, most important first."""
        out = []
        if self.cover_open:
            out.append(_("cover open"))
        if self.paper == "out":
            out.append(_("paper out"))
        if self.error == "cutter":
            out.append(_("cutter jammed"))
        elif self.error == "unrecoverable":
            out.append(_("printer error – switch it off and on"))
        elif self.error == "recoverable":
            out.append(_("print head too hot – wait a moment"))
        elif self.error:
            out.append(_("printer error"))
        if not self.online and not out:
            out.append(_("offline"))
        if self.paper == "low":
            out.append(_("paper low"))
        return out

    def state(self) -> State:
        if not self.can_print:
            return State.ERROR
        if self.paper == "low":
            return State.WARNING
        return State.OK

    def details(self) -> dict[str, object]:
        return {
            "online": self.online,
            "cover_open": self.cover_open,
            "paper": self.paper,
            "error": self.error,
        }


def decode(replies: dict[int, int]) -> PrinterState:
    """Build the state from reply bytes keyed by n; raise StatusReplyError on a bad byte."""
    for n, byte in replies.items():
        if not valid_reply(byte):
            raise StatusReplyError(f"DLE EOT {n}: 0x{byte:02x} is not a status reply")
    printer = replies.get(1, 0x12)
    offline = replies.get(2, 0x12)
    errors = replies.get(3, 0x12)
    paper = replies.get(4, 0x12)
    error = ""
    if errors & 0x08:
        error = "cutter"
    elif errors & 0x20:
        error = "unrecoverable"
    elif errors & 0x40:
        error = "recoverable"
    elif offline & 0x40:
        error = "other"
    if paper & 0x60 or offline & 0x20:
        paper_state = "out"
    elif paper & 0x0C:
        paper_state = "low"
    else:
        paper_state = "ok"
    return PrinterState(
        online=not printer & 0x08,
        cover_open=bool(offline & 0x04),
        paper=paper_state,
        error=error,
        drawer_pin3=bool(printer & 0x04),
        feed_button=bool(printer & 0x40),
    )
