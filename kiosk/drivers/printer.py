"""ESC/POS receipt printers through python-escpos, behind a durable print queue.

A sale never waits for paper: :meth:`EscposPrinter.submit` stores the rendered bytes in a
SQLite spool file and returns the job id at once. A worker thread opens the printer (serial,
USB, network or file backend of python-escpos), asks its status where the connection can
answer (``DLE EOT`` real-time requests, see :mod:`kiosk.drivers.printer_status`), and sends the
oldest pending job. A printer that is off, unplugged, out of paper or with its cover open is
reported through the status callback and the job stays pending; it prints when the printer is
back, also after a restart of the app (the spool is a file).

    submit(bytes) ─> spool (SQLite, pending) ─> worker: open ─> status ok? ─> write ─> done
                                                  │               └─ no ──> report, retry
                                                  └─ fails ──> DISCONNECTED, retry

Cash drawer kicks go through the same worker but are not spooled: a drawer must not pop open
minutes later when the printer comes back, so a kick that cannot be sent is reported and
dropped.
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import socket
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Literal

from escpos import constants as esc
from escpos.escpos import Escpos
from escpos.exceptions import DeviceNotFoundError
from escpos.printer import Network

from kiosk.drivers import printer_status
from kiosk.drivers.base import Callbacks, JobUpdate, State, utcnow
from kiosk.drivers.registry import DriverConfig, DriverContext, register
from kiosk.drivers.status import StatusReporter
from kiosk.i18n import _

_LOGGER = logging.getLogger(__name__)

DRAWER_KICK = {2: esc.CD_KICK_2, 5: esc.CD_KICK_5}  # ESC p m 50 50 (100 ms on, 100 ms off)
KEEP_DONE_JOBS = 200


# -- configuration -------------------------------------------------------------------------
class PrinterConfig(DriverConfig, kw_only=True):
    """Keys every printer type has."""

    profile: str = ""  # python-escpos capability profile, e.g. "TM-T88V"; "" = default
    status: bool = True  # ask DLE EOT status before each job (where the backend can read)
    status_timeout_s: float = 0.5  # no reply within this time: printer off / offline
    status_poll_s: float = 5.0  # while idle, how often the status is refreshed
    retry_s: float = 2.0  # wait between attempts while the printer is not usable
    queue_path: str = ""  # spool file; default <data_dir>/print-queue-<name>.sqlite
    drawer_pin: Literal[2, 5] = 2

    def __post_init__(self) -> None:
        if min(self.status_timeout_s, self.status_poll_s, self.retry_s) <= 0:
            raise ValueError(_("status_timeout_s, status_poll_s and retry_s must be positive"))


class SerialPrinterConfig(PrinterConfig, kw_only=True):
    device: str  # /dev/ttyUSB0, /dev/serial/by-id/…
    baudrate: int = 9600
    bytesize: Literal[7, 8] = 8
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    xonxoff: bool = False
    dsrdtr: bool = False  # DSR/DTR hardware flow control (most TM printers: true)


class UsbPrinterConfig(PrinterConfig, kw_only=True):
    vendor_id: int  # e.g. 0x04b8 (Epson)
    product_id: int
    in_ep: int = 0x82
    out_ep: int = 0x01
    timeout_ms: int = 2000


class NetworkPrinterConfig(PrinterConfig, kw_only=True):
    host: str
    port: int = 9100
    timeout_s: float = 5.0


class FilePrinterConfig(PrinterConfig, kw_only=True):
    path: str  # /dev/usb/lp0 (kernel usblp) or a plain file
    status: bool = False  # a file cannot answer


def make_escpos(config: PrinterConfig) -> Escpos:
    """Build the python-escpos printer object for a config (does not open it)."""
    from escpos import printer as p

    profile = {"profile": config.profile} if config.profile else {}
    if isinstance(config, SerialPrinterConfig):
        return p.Serial(
            devfile=config.device,
            baudrate=config.baudrate,
            bytesize=config.bytesize,
            parity=config.parity,
            stopbits=config.stopbits,
            xonxoff=config.xonxoff,
            dsrdtr=config.dsrdtr,
            timeout=config.status_timeout_s,
            **profile,
        )
    if isinstance(config, UsbPrinterConfig):
        return p.Usb(
            idVendor=config.vendor_id,
            idProduct=config.product_id,
            in_ep=config.in_ep,
            out_ep=config.out_ep,
            timeout=config.timeout_ms,
            **profile,
        )
    if isinstance(config, NetworkPrinterConfig):
        return _Network(host=config.host, port=config.port, timeout=config.timeout_s, **profile)
    if isinstance(config, FilePrinterConfig):
        return p.File(devfile=config.path, auto_flush=True, **profile)
    raise TypeError(f"no python-escpos backend for {type(config).__name__}")


class _Network(Network):
    """python-escpos' Network, but closing the socket when the connection fails (its own
    open() leaves it to the garbage collector)."""

    def open(self, raise_not_found: bool = True) -> None:
        if self._device:
            self.close()
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        except OSError as exc:
            self.device = None
            raise DeviceNotFoundError(f"Could not open socket for {self.host}: {exc}") from exc
        self.device = sock


def describe(config: PrinterConfig) -> str:
    if isinstance(config, SerialPrinterConfig):
        return config.device
    if isinstance(config, UsbPrinterConfig):
        return f"USB {config.vendor_id:04x}:{config.product_id:04x}"
    if isinstance(config, NetworkPrinterConfig):
        return f"{config.host}:{config.port}"
    if isinstance(config, FilePrinterConfig):
        return config.path
    return type(config).__name__


# -- the spool -----------------------------------------------------------------------------
class PrintQueue:
    """Jobs in a SQLite file: pending until printed; survives crashes and restarts."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.execute(
            """
            CREATE TABLE IF NOT EXISTS jobs (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                kind TEXT NOT NULL,
                ref TEXT NOT NULL DEFAULT '',
                data BLOB NOT NULL,
                state TEXT NOT NULL DEFAULT 'pending',
                attempts INTEGER NOT NULL DEFAULT 0,
                error TEXT NOT NULL DEFAULT '',
                created_at TEXT NOT NULL,
                printed_at TEXT
            )
            """
        )
        self._db.execute("CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, id)")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def add(self, data: bytes, kind: str, ref: str = "") -> int:
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO jobs (kind, ref, data, created_at) VALUES (?, ?, ?, ?)",
                [kind, ref, bytes(data), utcnow().isoformat(timespec="milliseconds")],
            )
            return int(cur.lastrowid)

    def next_pending(self) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT id, kind, ref, data, attempts FROM jobs WHERE state = 'pending'"
                " ORDER BY id LIMIT 1"
            ).fetchone()
        if row is None:
            return None
        return dict(zip(("id", "kind", "ref", "data", "attempts"), row))

    def mark(self, job_id: int, state: str, error: str = "") -> None:
        with self._lock:
            self._db.execute(
                "UPDATE jobs SET state = ?, error = ?, printed_at = ? WHERE id = ?",
                [state, error, utcnow().isoformat(timespec="milliseconds") if state == "done" else None, job_id],
            )
            if state == "done":
                self._db.execute(
                    "DELETE FROM jobs WHERE state != 'pending' AND id <= ("
                    " SELECT id FROM jobs WHERE state != 'pending' ORDER BY id DESC"
                    " LIMIT 1 OFFSET ?)",
                    [KEEP_DONE_JOBS],
                )

    def attempt(self, job_id: int, error: str) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE jobs SET attempts = attempts + 1, error = ? WHERE id = ?", [error, job_id]
            )

    def get(self, job_id: int) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT id, kind, ref, data, state, attempts, error FROM jobs WHERE id = ?",
                [job_id],
            ).fetchone()
        if row is None:
            return None
        return dict(zip(("id", "kind", "ref", "data", "state", "attempts", "error"), row))

    def last(self, kind: str) -> dict[str, Any] | None:
        """The newest job of ``kind`` (printed or still pending), not a cancelled one."""
        with self._lock:
            row = self._db.execute(
                "SELECT id FROM jobs WHERE kind = ? AND state != 'cancelled'"
                " ORDER BY id DESC LIMIT 1",
                [kind],
            ).fetchone()
        return self.get(row[0]) if row else None

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, kind, ref, attempts, error FROM jobs WHERE state = 'pending'"
                " ORDER BY id"
            ).fetchall()
        return [dict(zip(("id", "kind", "ref", "attempts", "error"), r)) for r in rows]


# -- the driver ----------------------------------------------------------------------------
class PrinterUnavailable(Exception):
    """The printer cannot take a job now; ``state``/``message`` say why (for the status bar)."""

    def __init__(self, state: State, message: str, reconnect: bool = True, **details: Any) -> None:
        super().__init__(message)
        self.state = state
        self.message = message
        self.reconnect = reconnect  # False: the line works, the printer said no (keep it open)
        self.details = details


class EscposPrinter(StatusReporter):
    """A receipt printer: durable queue + worker thread + status."""

    kind = "printer"

    def __init__(
        self, name: str, config: PrinterConfig, queue: PrintQueue, callbacks: Callbacks
    ) -> None:
        self.name = name
        self.config = config
        self.queue = queue
        self.callbacks = callbacks
        self.where = describe(config)
        self.printer_state: printer_status.PrinterState | None = None
        self._escpos: Escpos | None = None
        self._kicks: collections.deque[bytes] = collections.deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_poll = 0.0
        self._init_status(_("starting"))

    # -- API for the till (never blocks on the printer) ---------------------------------------
    def submit(self, data: bytes, kind: str = "receipt", ref: str = "") -> int:
        if not data:
            raise ValueError(_("nothing to print"))
        job_id = self.queue.add(data, kind, ref)
        self.callbacks.call("job", JobUpdate(self.name, job_id, kind, ref, "pending"))
        self._wake.set()
        return job_id

    def reprint_last(self, kind: str = "receipt") -> int | None:
        """Queue the last job of ``kind`` again; None when there was none."""
        last = self.queue.last(kind)
        if last is None:
            return None
        return self.submit(last["data"], kind, last["ref"])

    def cancel(self, job_id: int) -> bool:
        job = self.queue.get(job_id)
        if job is None or job["state"] != "pending":
            return False
        self.queue.mark(job_id, "cancelled")
        self.callbacks.call("job", JobUpdate(self.name, job_id, job["kind"], job["ref"], "cancelled"))
        return True

    def pending(self) -> list[dict[str, Any]]:
        return self.queue.pending()

    def kick_drawer(self, pin: int | None = None) -> None:
        """Open the cash drawer connected to the printer (sent next, not spooled)."""
        pin = self.config.drawer_pin if pin is None else pin
        if pin not in DRAWER_KICK:
            raise ValueError(_("drawer pin must be 2 or 5"))
        self._kicks.append(DRAWER_KICK[pin])
        self._wake.set()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until no job is pending (CLI and tests); True when the queue is empty."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.queue.pending() and not self._kicks:
                return True
            time.sleep(0.02)
        return False

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"printer-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        self._thread = None
        self._disconnect()
        self._publish(State.STOPPED, _("stopped"))

    def close(self) -> None:
        self.stop()
        self.queue.close()

    # -- the worker -------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self._step()
            except PrinterUnavailable as exc:
                if exc.reconnect:
                    self._disconnect()
                self._publish(exc.state, exc.message, **exc.details)
                self._wait(self.config.retry_s)
                continue
            except Exception as exc:  # noqa: BLE001 - report; the till keeps selling
                _LOGGER.exception("%s: printer loop failed", self.name)
                self._disconnect()
                self._publish(State.ERROR, _("printer error: {error}").format(error=exc))
                self._wait(self.config.retry_s)
                continue
            if not busy:
                self._wait(
                    self.config.status_poll_s if self.status.usable else self.config.retry_s
                )

    def _wait(self, seconds: float) -> None:
        self._wake.wait(seconds)
        self._wake.clear()

    def _step(self) -> bool:
        """Do one unit of work; return True when there may be more to do at once."""
        while self._kicks:
            data = self._kicks.popleft()
            try:
                self._ensure_usable()
                self._write(data)
            except PrinterUnavailable as exc:
                self._kicks.clear()  # a late drawer opening is worse than none
                self.callbacks.call(
                    "job", JobUpdate(self.name, 0, "drawer", "", "cancelled", exc.message)
                )
                raise
            self.callbacks.call("job", JobUpdate(self.name, 0, "drawer", "", "done"))
        job = self.queue.next_pending()
        if job is None:
            # a printer with a problem is asked more often, so the till sees the fix soon
            every = self.config.status_poll_s if self.status.usable else self.config.retry_s
            if time.monotonic() - self._last_poll >= every:
                self._ensure_usable()
            return False
        try:
            self._ensure_usable()
            self._write(job["data"])
        except PrinterUnavailable as exc:
            self.queue.attempt(job["id"], exc.message)
            raise
        self.queue.mark(job["id"], "done")
        self.callbacks.call("job", JobUpdate(self.name, job["id"], job["kind"], job["ref"], "done"))
        return True

    def _connect(self) -> Escpos:
        if self._escpos is not None:
            return self._escpos
        printer = make_escpos(self.config)
        try:
            printer.open()
        except DeviceNotFoundError as exc:
            raise PrinterUnavailable(
                State.DISCONNECTED,
                _("not connected: printer {where} not found").format(where=self.where),
                error=str(exc).splitlines()[0],
            ) from exc
        except Exception as exc:  # pyusb raises its own errors (no backend, access denied)
            raise PrinterUnavailable(
                State.DISCONNECTED,
                _("not connected: printer {where} ({error})").format(where=self.where, error=exc),
            ) from exc
        self._escpos = printer
        return printer

    def _disconnect(self) -> None:
        printer, self._escpos = self._escpos, None
        if printer is None:
            return
        try:
            printer.close()
        except Exception:  # noqa: BLE001 - the port is gone: flushing it fails
            device = getattr(printer, "_device", None)
            try:
                if device:
                    device.close()
            except Exception:  # noqa: BLE001
                pass
        finally:
            # python-escpos closes again in __del__; with a vanished port that would raise
            # inside the garbage collector
            printer._device = False

    def _ensure_usable(self) -> None:
        """Open the printer and check it can print; raise PrinterUnavailable otherwise."""
        printer = self._connect()
        self._last_poll = time.monotonic()
        if not self.config.status:
            self._publish(State.OK, _("ready: {where}").format(where=self.where))
            return
        state = self._query(printer)
        self.printer_state = state
        problems = state.problems()
        details = state.details()
        if not state.can_print:
            raise PrinterUnavailable(
                State.ERROR,
                _("printer: {problems}").format(problems=", ".join(problems)),
                reconnect=False,
                **details,
            )
        if problems:  # paper low
            self._publish(State.WARNING, _("printer: {problems}").format(
                problems=", ".join(problems)), **details)
        else:
            self._publish(State.OK, _("ready: {where}").format(where=self.where), **details)

    def _query(self, printer: Escpos) -> printer_status.PrinterState:
        replies: dict[int, int] = {}
        try:
            _drain(printer)
            for n in printer_status.QUERIES:
                if n == 3 and not replies.get(2, 0) & 0x40:
                    continue  # error details only when the offline status reports an error
                printer._raw(printer_status.query_bytes(n))
                byte = _read_byte(printer, self.config.status_timeout_s)
                if byte is None:
                    raise PrinterUnavailable(
                        State.DISCONNECTED,
                        _("printer {where} does not answer – switched off?").format(where=self.where),
                        # a serial line stays open while the printer is off; a socket or
                        # USB handle to a printer that went silent is better made anew
                        reconnect=not isinstance(self.config, SerialPrinterConfig),
                    )
                replies[n] = byte
            return printer_status.decode(replies)
        except printer_status.StatusReplyError as exc:
            raise PrinterUnavailable(
                State.ERROR,
                _("printer {where} gives garbled status – check the baud rate").format(
                    where=self.where
                ),
                reconnect=False,
                error=str(exc),
            ) from exc
        except (OSError, ValueError) as exc:
            raise PrinterUnavailable(
                State.DISCONNECTED,
                _("printer {where} went away ({error})").format(where=self.where, error=exc),
            ) from exc

    def _write(self, data: bytes) -> None:
        printer = self._connect()
        try:
            printer._raw(data)
            flush = getattr(printer.device, "flush", None)
            if flush is not None:
                flush()
        except Exception as exc:  # serial, socket and usb errors all mean the same here
            raise PrinterUnavailable(
                State.DISCONNECTED,
                _("printer {where} went away while printing ({error})").format(
                    where=self.where, error=exc
                ),
            ) from exc


def _drain(printer: Escpos) -> None:
    """Drop stale bytes (a late reply, XON/XOFF) before asking."""
    device = printer.device
    reset = getattr(device, "reset_input_buffer", None)
    if reset is not None:
        reset()


def _read_byte(printer: Escpos, timeout: float) -> int | None:
    """Read one status byte within ``timeout``; None when the printer stays silent."""
    device = printer.device
    deadline = time.monotonic() + timeout
    if hasattr(device, "read") and hasattr(device, "in_waiting"):  # pyserial
        while time.monotonic() < deadline:
            data = device.read(1)
            if data:
                return data[0]
        return None
    if hasattr(device, "recv"):  # socket
        device.settimeout(timeout)
        try:
            data = device.recv(1)
        except TimeoutError:
            return None
        if not data:
            raise OSError("connection closed")
        return data[0]
    try:  # USB: python-escpos reads the in endpoint
        data = printer._read()
    except Exception:  # noqa: BLE001 - pyusb timeout
        return None
    return data[0] if data else None


def _queue_for(config: PrinterConfig, name: str, context: DriverContext) -> PrintQueue:
    path = Path(config.queue_path) if config.queue_path else None
    if path is None:
        path = context.data_dir / f"print-queue-{name}.sqlite"
    elif not path.is_absolute():
        path = context.data_dir / path
    return PrintQueue(path)


def _factory(config: PrinterConfig, name: str, context: DriverContext) -> EscposPrinter:
    return EscposPrinter(name, config, _queue_for(config, name, context), context.callbacks)


register("printer", "serial", SerialPrinterConfig, "ESC/POS printer on a serial port")(_factory)
register("printer", "usb", UsbPrinterConfig, "ESC/POS printer on USB (pyusb)")(_factory)
register("printer", "network", NetworkPrinterConfig, "ESC/POS printer on TCP port 9100")(_factory)
register("printer", "file", FilePrinterConfig, "ESC/POS printer device file (/dev/usb/lp0)")(_factory)


def render_test_page(device_id: str, printer: str, now: dt.datetime | None = None) -> bytes:
    """A short test page (python-escpos Dummy renders the bytes)."""
    from escpos.printer import Dummy

    now = now or utcnow()
    page = Dummy()
    page.set(align="center", bold=True, double_height=True)
    page.text(_("Test page") + "\n")
    page.set(align="left", bold=False, normal_textsize=True)
    page.text(f"{device_id} / {printer}\n")
    page.text(now.isoformat(timespec="seconds") + "\n")
    page.text("0123456789 ABCDEFGHIJKLMNOPQRSTUVWXYZ\n")
    page.text("äöüß ÄÖÜ €\n")
    page.cut()
    return page.output
