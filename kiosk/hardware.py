"""The till's hardware, wired into the Kivy app: drivers from the device config, their status
on screen, scans into the basket, receipts into the print queue, drawer, pole display and
people counter.

    app.hardware = Hardware(config, app)      # in build(): drivers built, nothing opened yet
    app.services.append(app.hardware)         # start() in on_start, stop() in on_stop

Drivers run on their own threads and report through ``Callbacks``; everything that touches
widgets or the app's store is handed to the UI thread with ``Clock.schedule_once``. A device
that is missing, unplugged or wrongly configured only changes its status: nothing here raises
into the app.

A printer table may carry the receipt layout as a sub-table (``kiosk.drivers.receipt_escpos
.Layout``); it is taken out before the driver sees the table::

    [[drivers.printer]]
    type = "serial"
    device = "/dev/ttyUSB0"
    [drivers.printer.receipt]
    columns = 48
    logo = ""
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from kivy.clock import Clock

from kiosk.config import DeviceConfig
from kiosk.drivers import registry
from kiosk.drivers.base import Callbacks, CountDelta, DeviceStatus, Rejected, Scan, State
from kiosk.drivers.status import StatusBoard
from kiosk.engine import traffic
from kiosk.i18n import _

_LOGGER = logging.getLogger(__name__)

STATUS_REFRESH_S = 1.0  # drivers without callbacks (the drawer) are read this often
COUNTS_DRAIN_S = 1.0


def split_layouts(tables: dict[str, list[dict[str, Any]]]) -> tuple[dict, dict, list]:
    """Take the ``receipt`` sub-tables out of the printer tables.

    Returns (driver tables, {printer name: Layout}, problems). A bad layout refuses its
    printer table like any other configuration error."""
    from kiosk.drivers.receipt_escpos import Layout

    out: dict[str, list[dict[str, Any]]] = {}
    layouts: dict[str, Any] = {}
    problems: list[DeviceStatus] = []
    for kind, entries in tables.items():
        kept = []
        for index, table in enumerate(entries):
            if kind != "printer" or not isinstance(table, dict):
                kept.append(table)
                continue
            table = copy.copy(table)
            options = table.pop("receipt", {})
            name = str(table.get("name") or registry.default_name(kind, index))
            table["name"] = name  # later tables keep their names when this one is refused
            try:
                if not isinstance(options, dict):
                    raise TypeError(_("must be a table"))
                layouts[name] = Layout.from_config(options)
            except (TypeError, ValueError) as exc:
                problems.append(DeviceStatus(name, kind, State.ERROR, _(
                    "configuration: drivers.printer[{index}].receipt: {error}").format(
                        index=index, error=exc)))  # fmt: skip
                kept.append(None)  # keeps the indexes (and default names) of later tables
                continue
            kept.append(table)
        out[kind] = kept
    return out, layouts, problems


def state_text(status: DeviceStatus) -> str:
    """One or two words for the status strip."""
    if status.details.get("config"):
        return _("configuration error")
    if status.state is State.OK:
        return _("ready")
    if status.state is State.DISCONNECTED:
        return _("not connected")
    if status.state is State.STARTING:
        return _("starting")
    if status.state is State.STOPPED:
        return _("stopped")
    return status.message  # warning / error: the driver's own words (paper out, cover open)


class Hardware:
    """Drivers of one device, started and stopped with the app."""

    kind = "hardware"  # never taken for a printer by the payment screen

    def __init__(self, config: DeviceConfig, app: Any) -> None:
        self.config = config
        self.app = app
        self.board = StatusBoard(on_change=self._status_changed)
        self.drivers: dict[str, Any] = {}
        self.layouts: dict[str, Any] = {}
        self.problems: list[DeviceStatus] = []
        self.strip = None
        self._counts: queue.Queue[CountDelta] = queue.Queue()
        self._events: list[Any] = []
        self._started = False
        self._after_sale = False  # the pole display shows the total until the next line
        self._strip_trigger = Clock.create_trigger(self._refresh_strip, 0)
        self._build()

    # -- building -------------------------------------------------------------------------------
    def _build(self) -> None:
        tables, self.layouts, problems = split_layouts(self.config.drivers or {})
        callbacks = Callbacks(
            scan=self._on_scan, rejected=self._on_rejected, status=self.board.update,
            counts=self._counts.put,
        )  # fmt: skip
        context = registry.DriverContext(
            data_dir=self.config.data_dir, device_id=self.config.identity.device_id,
            callbacks=callbacks,
        )  # fmt: skip
        try:
            built = registry.build_all(
                {k: [t for t in v if t is not None] for k, v in tables.items()}, context)
            self.drivers = dict(built.drivers)
            problems += built.problems
        except Exception as exc:  # a broken driver must not stop the till
            _LOGGER.exception("drivers not set up")
            problems.append(DeviceStatus("drivers", "device", State.ERROR, str(exc)))
        # marked so the strip says "configuration error" and the list gives the whole message
        self.problems = [dataclasses.replace(p, details={**p.details, "config": True})
                         for p in problems]  # fmt: skip
        for problem in self.problems:
            self.board.update(problem)

    def of_kind(self, kind: str) -> list[Any]:
        return [d for d in self.drivers.values() if getattr(d, "kind", "") == kind]

    @property
    def printer(self) -> Any:
        """The receipt printer (the first one configured), or None."""
        printers = self.of_kind("printer")
        return printers[0] if printers else None

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> None:
        if self._started:
            return
        self._started = True
        for driver in self.drivers.values():
            try:
                driver.start()
            except Exception as exc:  # shown as the device's status instead
                _LOGGER.exception("driver %s did not start", driver.name)
                self.board.update(DeviceStatus(driver.name, driver.kind, State.ERROR, str(exc)))
        sale = getattr(self.app, "sale", None)
        if sale is not None and self.of_kind("display"):
            sale.bind(quote=self._on_quote)
            self._on_quote(sale, sale.quote)
        self._install_strip()
        self._events = [
            Clock.schedule_interval(self._refresh_strip, STATUS_REFRESH_S),
            Clock.schedule_interval(self._drain_counts, COUNTS_DRAIN_S),
        ]

    def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        for ev in self._events:
            ev.cancel()
        sale = getattr(self.app, "sale", None)
        if sale is not None:
            sale.unbind(quote=self._on_quote)
        for driver in reversed(list(self.drivers.values())):
            try:
                close = getattr(driver, "close", None)  # printers: also the spool file
                (close or driver.stop)()
            except Exception:
                _LOGGER.exception("driver %s did not stop cleanly", driver.name)
        self._drain_counts()  # counters flush on stop: nothing counted is lost

    # -- status ----------------------------------------------------------------------------------
    def statuses(self) -> list[DeviceStatus]:
        """Every configured device's current status (refused tables included)."""
        out = {p.driver: p for p in self.problems}
        for name, driver in self.drivers.items():
            try:
                out[name] = driver.status
            except Exception as exc:  # noqa: BLE001
                out[name] = DeviceStatus(name, getattr(driver, "kind", ""), State.ERROR, str(exc))
        return list(out.values())

    def _status_changed(self, _status: DeviceStatus) -> None:
        self._strip_trigger()  # Clock triggers may be fired from any thread

    def _install_strip(self) -> None:
        shell = getattr(self.app, "shell", None)
        if shell is None or not (self.drivers or self.problems) or self.strip is not None:
            return
        from kiosk.screens.device_status import DeviceStatusStrip

        self.strip = DeviceStatusStrip(hardware=self)
        header = shell.ids.get("header")
        if header is not None:
            header.add_widget(self.strip, index=1)  # before the clock
        self._refresh_strip()

    def _refresh_strip(self, _dt: Any = None) -> None:
        if self.strip is not None:
            self.strip.show(self.statuses())

    # -- scanners ----------------------------------------------------------------------------------
    def _on_scan(self, scan: Scan) -> None:
        Clock.schedule_once(lambda _dt: self.app.barcode_scanned(scan.text), 0)

    def _on_rejected(self, rejected: Rejected) -> None:
        Clock.schedule_once(lambda _dt: self.app.notify(rejected.reason, "warning"), 0)

    # -- receipts and drawer -------------------------------------------------------------------------
    def print_receipt(self, model: Any, ref: str = "",
                      on_queued: Callable[[], None] | None = None) -> bool:  # fmt: skip
        """Render the receipt with the printer's layout and profile and queue it (on a worker
        thread: the sale never waits). False when there is no printer."""
        from kiosk.drivers.receipt_escpos import Layout, to_bytes

        printer = self.printer
        if printer is None:
            return False
        layout = self.layouts.get(printer.name) or Layout()
        profile = getattr(getattr(printer, "config", None), "profile", "") or None

        def work() -> None:
            try:
                printer.submit(to_bytes(model, layout, profile), "receipt", ref)
            except Exception as exc:  # a printing problem must not stop the till
                _LOGGER.exception("receipt %s not queued", ref)
                text = _("Receipt not printed: {error}").format(error=exc)
                Clock.schedule_once(lambda _dt: self.app.notify(text, "danger"), 0)
                return
            if on_queued is not None:
                Clock.schedule_once(lambda _dt: on_queued(), 0)

        threading.Thread(target=work, name=f"receipt-{ref}", daemon=True).start()
        return True

    def reprint_last(self) -> int | None:
        printer = self.printer
        job = printer.reprint_last("receipt") if printer is not None else None
        if job is None:
            self.app.notify(_("No receipt to print again."), "warning")
        else:
            self.app.notify(_("Last receipt printed again."))
        return job

    def open_drawer(self) -> bool:
        """Kick every configured drawer; a missing printer is shown, never raised."""
        drawers = self.of_kind("drawer")
        opened = False
        for drawer in drawers:
            try:
                drawer.open()
                opened = True
            except Exception as exc:  # noqa: BLE001
                self.app.notify(_("Cash drawer: {error}").format(error=exc), "warning")
        return opened

    def sale_completed(self, done: Any) -> None:
        """After a sale: open the drawer when cash was taken, the total on the pole display."""
        payments = done.payload.get("payments", []) if isinstance(done.payload, dict) else []
        if any(p[0] == "cash" for p in payments):
            self.open_drawer()
        paid = sum(p[3] or p[1] for p in payments if p[0] == "cash") + sum(
            p[1] for p in payments if p[0] != "cash")
        for display in self.of_kind("display"):
            display.show_total(done.total_cents, paid)
        self._after_sale = True

    # -- pole display ----------------------------------------------------------------------------------
    def _on_quote(self, controller: Any, q: Any) -> None:
        displays = self.of_kind("display")
        if q is None or not displays:
            return
        if not q.lines:
            if not self._after_sale:
                for display in displays:
                    display.clear()
            return
        self._after_sale = False
        selected = getattr(controller, "selected", 0)
        line = next((ln for ln in q.lines if ln.pos == selected), q.lines[-1])
        for display in displays:
            display.show_item(line.name, line.total_cents, q.total_cents)

    # -- people counter ------------------------------------------------------------------------------
    def _drain_counts(self, _dt: Any = None) -> None:
        """Store the counters' hourly deltas (UI thread, the app's store connection)."""
        store = getattr(self.app, "store", None)
        while True:
            try:
                delta = self._counts.get_nowait()
            except queue.Empty:
                return
            if store is None:
                continue
            try:
                traffic.record_delta(store, delta)
            except Exception:  # a bad delta is logged, counting goes on
                _LOGGER.exception("people count not stored: %r", delta)
