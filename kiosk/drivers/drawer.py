"""Cash drawer opened through the receipt printer's drawer port (ESC p).

    [[drivers.drawer]]
    type = "printer"
    printer = "printer"   # name of the printer the drawer cable is plugged into
    pin = 2               # 2 or 5 (drawer kick connector pin)

The kick is sent by the printer's worker thread ahead of queued receipts; when the printer
is not reachable the kick is dropped and reported (never replayed later).
"""

from __future__ import annotations

from typing import Literal

from kiosk.drivers.base import DeviceStatus, State
from kiosk.drivers.printer import EscposPrinter
from kiosk.drivers.registry import DriverConfig, DriverContext, register
from kiosk.i18n import _


class PrinterDrawerConfig(DriverConfig, kw_only=True):
    printer: str = "printer"
    pin: Literal[2, 5] = 2


class PrinterDrawer:
    """A drawer has no status of its own: it is usable when its printer is."""

    kind = "drawer"

    def __init__(self, name: str, printer: EscposPrinter | None, pin: int, printer_name: str) -> None:
        self.name = name
        self.printer = printer
        self.pin = pin
        self.printer_name = printer_name

    def start(self) -> None:
        pass  # the printer runs the thread

    def stop(self, timeout: float = 5.0) -> None:
        pass

    @property
    def status(self) -> DeviceStatus:
        if self.printer is None:
            return DeviceStatus(
                self.name, self.kind, State.ERROR,
                _("no printer named {name!r} is configured for the drawer").format(
                    name=self.printer_name),
            )
        ps = self.printer.status
        state = State.OK if ps.usable else ps.state
        message = _("via {printer}").format(printer=self.printer.name) if ps.usable else ps.message
        return DeviceStatus(self.name, self.kind, state, message)

    def open(self) -> None:
        if self.printer is None:
            raise RuntimeError(self.status.message)
        self.printer.kick_drawer(self.pin)


@register("drawer", "printer", PrinterDrawerConfig, "cash drawer on the printer's kick port")
def _make(config: PrinterDrawerConfig, name: str, context: DriverContext) -> PrinterDrawer:
    printer = context.drivers.get(config.printer)
    if not isinstance(printer, EscposPrinter):
        printer = None
    return PrinterDrawer(name, printer, config.pin, config.printer)
