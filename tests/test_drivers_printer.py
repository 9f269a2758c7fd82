"""ESC/POS printers: exact bytes through python-escpos backends, status over DLE EOT with a
socat pty pair (the test plays the printer), a TCP socket printer, and the durable queue."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

from kiosk.drivers import registry
from kiosk.drivers.base import State
from kiosk.drivers.printer import PrintQueue
from tests.support.net import free_port
from tests.test_drivers_helpers import Collector, english, pty_pair  # noqa: F401

RECEIPT = b"\x1b@Bon 0001\nSumme 12,34 EUR\n\x1dV\x00"
OK = {1: 0x12, 2: 0x12, 3: 0x12, 4: 0x12}


def build(tmp_path: Path, got: Collector, tables: dict) -> dict:
    context = registry.DriverContext(data_dir=tmp_path, callbacks=got.callbacks())
    built = registry.build_all(tables, context)
    assert not built.problems, built.problems
    return built.drivers


def stop(*drivers) -> None:
    for d in drivers:
        d.stop()
        queue = getattr(d, "queue", None)
        if queue is not None:
            queue.close()


# -- file backend: exact bytes, queue, reprint, drawer ---------------------------------------
def test_file_printer_writes_the_exact_bytes_and_reports_the_job(tmp_path):
    got = Collector()
    out = tmp_path / "lp0"
    printer = build(tmp_path, got, {"printer": [{"type": "file", "path": str(out)}]})["printer"]
    printer.start()
    try:
        job = printer.submit(RECEIPT, ref="sale-1")
        assert printer.wait_idle()
        got.wait(lambda: any(j.state == "done" for j in got.jobs))
    finally:
        stop(printer)
    assert out.read_bytes() == RECEIPT
    assert [(j.job_id, j.ref, j.state) for j in got.jobs] == [(job, "sale-1", "pending"), (job, "sale-1", "done")]
    assert (tmp_path / "print-queue-printer.sqlite").exists()


def test_jobs_wait_for_a_printer_that_is_off_and_survive_a_restart(tmp_path):
    got = Collector()
    out = tmp_path / "usb" / "lp0"  # the device node is not there: printer off
    tables = {"printer": [{"type": "file", "path": str(out), "retry_s": 0.05}]}
    printer = build(tmp_path, got, tables)["printer"]
    printer.start()
    first = printer.submit(RECEIPT + b"1", ref="sale-1")  # returns at once: the sale goes on
    got.wait(lambda: printer.pending()[0]["attempts"] >= 1)  # tried, and kept
    assert printer.status.state is State.DISCONNECTED
    assert "not connected: printer" in printer.status.message
    assert printer.pending()[0]["error"] == printer.status.message
    stop(printer)  # the app is closed with the job still pending

    printer = build(tmp_path, got, tables)["printer"]  # next start, same spool file
    assert [j["id"] for j in printer.pending()] == [first]
    second = printer.submit(RECEIPT + b"2", ref="sale-2")
    printer.start()
    try:
        out.parent.mkdir()  # printer switched on
        assert printer.wait_idle()
        got.wait(lambda: printer.status.state is State.OK)
    finally:
        stop(printer)
    assert out.read_bytes() == RECEIPT + b"1" + RECEIPT + b"2"  # in order, each once
    assert second > first


def test_reprint_last_receipt_and_cancel(tmp_path):
    got = Collector()
    out = tmp_path / "lp0"
    printer = build(tmp_path, got, {"printer": [{"type": "file", "path": str(out)}]})["printer"]
    assert printer.reprint_last() is None  # nothing printed yet
    printer.submit(b"A", ref="sale-1")
    printer.submit(b"T", kind="test")
    doomed = printer.submit(b"X", ref="sale-2")
    assert printer.cancel(doomed)
    assert not printer.cancel(doomed)
    printer.reprint_last()  # the last receipt that was not cancelled: A
    printer.start()
    try:
        assert printer.wait_idle()
    finally:
        stop(printer)
    assert out.read_bytes() == b"ATA"
    with pytest.raises(ValueError):
        printer.submit(b"")


def test_drawer_kick_bytes_through_the_printer(tmp_path):
    got = Collector()
    out = tmp_path / "lp0"
    drivers = build(tmp_path, got, {
        "printer": [{"type": "file", "path": str(out)}],
        "drawer": [{"type": "printer", "pin": 2}, {"type": "printer", "pin": 5, "name": "drawer-b"}],
    })  # fmt: skip
    printer, drawer, drawer_b = drivers["printer"], drivers["drawer"], drivers["drawer-b"]
    printer.start()
    try:
        got.wait(lambda: printer.status.state is State.OK)
        assert drawer.status.state is State.OK
        drawer.open()
        got.wait(lambda: [j.state for j in got.jobs if j.kind == "drawer"] == ["done"])
        drawer_b.open()
        got.wait(lambda: [j.state for j in got.jobs if j.kind == "drawer"] == ["done", "done"])
    finally:
        stop(printer)
    # ESC p m t1 t2: pin 2 (m=0) / pin 5 (m=1), 50 × 2 ms on and off
    assert out.read_bytes() == b"\x1bp\x00\x32\x32" + b"\x1bp\x01\x32\x32"


def test_drawer_kick_is_dropped_not_delayed_when_the_printer_is_off(tmp_path):
    got = Collector()
    out = tmp_path / "off" / "lp0"
    drivers = build(tmp_path, got, {
        "printer": [{"type": "file", "path": str(out), "retry_s": 0.05}],
        "drawer": [{"type": "printer"}],
    })  # fmt: skip
    printer, drawer = drivers["printer"], drivers["drawer"]
    printer.start()
    try:
        drawer.open()
        got.wait(lambda: any(j.kind == "drawer" for j in got.jobs))
        [kick] = [j for j in got.jobs if j.kind == "drawer"]
        assert kick.state == "cancelled" and "not connected" in kick.error
        assert drawer.status.state is State.DISCONNECTED
        out.parent.mkdir()
        got.wait(lambda: printer.status.state is State.OK)
    finally:
        stop(printer)
    assert not out.exists() or out.read_bytes() == b""  # no late drawer opening


def test_drawer_without_its_printer_reports_instead_of_crashing(tmp_path):
    drivers = build(tmp_path, Collector(), {"drawer": [{"type": "printer", "printer": "bon"}]})
    drawer = drivers["drawer"]
    assert drawer.status.state is State.ERROR
    assert "no printer named 'bon'" in drawer.status.message
    with pytest.raises(RuntimeError):
        drawer.open()


def test_bad_printer_config_becomes_a_status_not_an_exception(tmp_path):
    context = registry.DriverContext(data_dir=tmp_path)
    built = registry.build_all(
        {"printer": [{"type": "serial"}, {"type": "laser", "name": "p2"}]}, context
    )
    assert not built.drivers
    assert [(p.driver, p.state) for p in built.problems] == [
        ("printer", State.ERROR), ("p2", State.ERROR)
    ]
    assert "device" in built.problems[0].message
    assert "unknown type 'laser'" in built.problems[1].message


def test_missing_usb_printer_is_reported(tmp_path):
    got = Collector()
    printer = build(tmp_path, got, {
        "printer": [{"type": "usb", "vendor_id": 0x04B8, "product_id": 0x0E15, "retry_s": 0.05}]
    })["printer"]  # fmt: skip
    printer.start()
    try:
        got.wait(lambda: printer.status.state is State.DISCONNECTED)
        assert printer.status.message.startswith("not connected: printer USB 04b8:0e15")
    finally:
        stop(printer)


def test_queue_keeps_only_recent_finished_jobs(tmp_path, monkeypatch):
    from kiosk.drivers import printer as printer_module

    monkeypatch.setattr(printer_module, "KEEP_DONE_JOBS", 3)
    queue = PrintQueue(tmp_path / "q.sqlite")
    try:
        ids = [queue.add(b"x", "receipt") for _ in range(6)]
        for job_id in ids[:5]:
            queue.mark(job_id, "done")
        assert queue.get(ids[0]) is None and queue.get(ids[1]) is None
        assert queue.get(ids[2])["state"] == "done"
        assert [j["id"] for j in queue.pending()] == [ids[5]]
    finally:
        queue.close()


# -- a printer that answers DLE EOT ------------------------------------------------------------
class PlayedPrinter:
    """The far end of the cable: answers DLE EOT n with ``replies[n]``, keeps the rest."""

    def __init__(self, port) -> None:
        self.port = port
        self.replies = dict(OK)
        self.silent = False
        self.received = bytearray()
        self.queries: list[int] = []
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._buf = bytearray()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PlayedPrinter:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self.thread.join(5)

    def data(self) -> bytes:
        with self.lock:
            return bytes(self.received)

    def wait_data(self, expected: bytes, timeout: float = 10.0) -> bytes:
        """The bytes received once they end with ``expected`` (the line may lag behind)."""
        deadline = time.monotonic() + timeout
        while not self.data().endswith(expected) and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.data()

    def _run(self) -> None:
        while not self._stop.is_set():
            chunk = self._read()
            if chunk is None:
                return
            self._buf += chunk
            self._parse()

    def _parse(self) -> None:
        while self._buf:
            i = self._buf.find(b"\x10\x04")
            if i < 0:  # no query; keep a trailing DLE that may start one
                cut = len(self._buf) - (1 if self._buf.endswith(b"\x10") else 0)
                with self.lock:
                    self.received += self._buf[:cut]
                del self._buf[:cut]
                return
            with self.lock:
                self.received += self._buf[:i]
            del self._buf[:i]
            if len(self._buf) < 3:
                return  # the rest of the query is still on its way
            n = self._buf[2]
            del self._buf[:3]
            with self.lock:
                self.queries.append(n)
            if not self.silent:
                self._write(bytes([self.replies[n]]))

    def _read(self) -> bytes | None:
        try:
            return self.port.read(64)
        except OSError:
            return None

    def _write(self, data: bytes) -> None:
        self.port.write(data)


@pytest.mark.socat
def test_serial_printer_status_paper_out_then_prints_when_paper_is_back(tmp_path, pty_pair):
    got = Collector()
    tables = {"printer": [{"type": "serial", "device": pty_pair.a, "baudrate": 19200,
                           "retry_s": 0.05, "status_timeout_s": 0.3}]}  # fmt: skip
    printer = build(tmp_path, got, tables)["printer"]
    with pty_pair.device() as port, PlayedPrinter(port) as device:
        device.replies[2] = 0x12 | 0x20  # stopped by paper end
        device.replies[4] = 0x12 | 0x60  # paper out
        printer.start()
        try:
            job = printer.submit(RECEIPT)
            got.wait(lambda: printer.status.state is State.ERROR)
            assert printer.status.message == "printer: paper out"
            assert printer.status.details["paper"] == "out"
            assert [j["id"] for j in printer.pending()] == [job]  # kept, not lost
            assert device.data() == b""  # nothing printed onto no paper

            device.replies.update({2: 0x12, 4: 0x12 | 0x0C})  # new roll... nearly at its end
            assert printer.wait_idle()
            got.wait(lambda: printer.status.state is State.WARNING)
            assert printer.status.message == "printer: paper low"
        finally:
            stop(printer)
        assert device.wait_data(RECEIPT) == RECEIPT
        assert device.queries[:3] == [1, 2, 4]


@pytest.mark.socat
def test_serial_printer_cover_open_and_switched_off(tmp_path, pty_pair):
    got = Collector()
    tables = {"printer": [{"type": "serial", "device": pty_pair.a, "retry_s": 0.05,
                           "status_timeout_s": 0.2}]}  # fmt: skip
    printer = build(tmp_path, got, tables)["printer"]
    with pty_pair.device() as port, PlayedPrinter(port) as device:
        device.replies.update({1: 0x12 | 0x08, 2: 0x12 | 0x04})  # offline because cover open
        printer.start()
        try:
            got.wait(lambda: "printer: cover open" in got.messages())
            assert printer.status.details["cover_open"] is True
            device.silent = True  # switched off: no reply at all
            got.wait(lambda: printer.status.state is State.DISCONNECTED)
            assert "does not answer" in printer.status.message
            device.silent = False
            device.replies.update(OK)
            got.wait(lambda: printer.status.state is State.OK)
            printer.submit(b"hello\n")
            assert printer.wait_idle()
        finally:
            stop(printer)
        assert device.wait_data(b"hello\n").endswith(b"hello\n")


@pytest.mark.socat
def test_serial_printer_garbled_status_and_unplugged_cable(tmp_path, pty_pair):
    got = Collector()
    tables = {"printer": [{"type": "serial", "device": pty_pair.a, "retry_s": 0.05,
                           "status_timeout_s": 0.2}]}  # fmt: skip
    printer = build(tmp_path, got, tables)["printer"]
    with pty_pair.device() as port, PlayedPrinter(port) as device:
        device.replies[1] = 0xFF  # wrong baud rate looks like this
        printer.start()
        try:
            got.wait(lambda: printer.status.state is State.ERROR)
            assert "garbled status" in printer.status.message
        finally:
            pass
    pty_pair.stop()
    try:
        got.wait(lambda: printer.status.state is State.DISCONNECTED)
        job = printer.submit(b"later")
        assert [j["id"] for j in printer.pending()] == [job]
    finally:
        stop(printer)


# -- network backend ---------------------------------------------------------------------------
class SocketPort:
    """Adapts an accepted socket to the read/write the played printer uses."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        conn.settimeout(0.05)

    def read(self, n: int) -> bytes | None:
        try:
            data = self.conn.recv(n)
        except TimeoutError:
            return b""
        if not data:
            raise OSError("closed")
        return data

    def write(self, data: bytes) -> None:
        self.conn.sendall(data)


def test_network_printer_answers_status_over_tcp_and_prints(tmp_path):
    got = Collector()
    port = free_port()
    with socket.create_server(("127.0.0.1", port)) as server:
        tables = {"printer": [{"type": "network", "host": "127.0.0.1", "port": port,
                               "status_timeout_s": 0.5, "retry_s": 0.05}]}  # fmt: skip
        printer = build(tmp_path, got, tables)["printer"]
        printer.start()
        server.settimeout(10)
        conn, _ = server.accept()
        with conn, PlayedPrinter(SocketPort(conn)) as device:
            try:
                printer.submit(RECEIPT)
                assert printer.wait_idle()
                got.wait(lambda: printer.status.state is State.OK)
            finally:
                stop(printer)
            assert device.wait_data(RECEIPT) == RECEIPT
            assert device.queries[:3] == [1, 2, 4]


def test_network_printer_switched_off_is_disconnected_and_keeps_the_job(tmp_path):
    got = Collector()
    tables = {"printer": [{"type": "network", "host": "127.0.0.1", "port": free_port(),
                           "timeout_s": 0.5, "retry_s": 0.05}]}  # fmt: skip
    printer = build(tmp_path, got, tables)["printer"]
    printer.start()
    try:
        job = printer.submit(RECEIPT)
        got.wait(lambda: printer.status.state is State.DISCONNECTED)
        assert "not connected: printer 127.0.0.1:" in printer.status.message
        assert [j["id"] for j in printer.pending()] == [job]
    finally:
        stop(printer)


def test_every_kind_implements_its_interface(tmp_path):
    from kiosk.drivers import base

    drivers = build(tmp_path, Collector(), {
        "scanner": [{"type": "serial", "url": "loop://"}],
        "printer": [{"type": "file", "path": str(tmp_path / "lp0")}],
        "drawer": [{"type": "printer"}],
        "display": [{"type": "serial-vfd", "url": "loop://"}],
        "counter": [{"type": "serial", "url": "loop://"}],
    })  # fmt: skip
    try:
        assert isinstance(drivers["scanner"], base.BarcodeSource)
        assert isinstance(drivers["printer"], base.ReceiptPrinter)
        assert isinstance(drivers["drawer"], base.CashDrawer)
        assert isinstance(drivers["display"], base.LineDisplay)
        assert isinstance(drivers["counter"], base.Counter)
        assert {d.kind for d in drivers.values()} == set(registry.KINDS)
        assert all(d.status.state is State.STARTING for d in drivers.values() if d.kind != "drawer")
    finally:
        drivers["printer"].queue.close()
