"""Shared parts of the driver tests (no tests here): callback collector, English messages,
and socat pty pairs that stand in for a serial cable."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from kiosk.drivers.base import Callbacks, State


@pytest.fixture(autouse=True)
def english():
    from kiosk import i18n

    before = i18n.language()
    i18n.set_language("en")
    yield
    i18n.set_language(before)


class Collector:
    """Callbacks that remember everything, and let a test wait for a condition."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.scans: list = []
        self.rejected: list = []
        self.keys: list[str] = []
        self.statuses: list = []
        self.counts: list = []
        self.jobs: list = []

    def _add(self, target: list, item) -> None:
        with self.cond:
            target.append(item)
            self.cond.notify_all()

    def callbacks(self) -> Callbacks:
        return Callbacks(
            scan=lambda s: self._add(self.scans, s),
            rejected=lambda r: self._add(self.rejected, r),
            keys=lambda _name, text: self._add(self.keys, text),
            status=lambda s: self._add(self.statuses, s),
            counts=lambda c: self._add(self.counts, c),
            job=lambda j: self._add(self.jobs, j),
        )

    def wait(self, predicate, timeout: float = 10.0) -> None:
        """Wait until ``predicate()`` holds; it is checked on every callback and every 20 ms
        (predicates may look at driver state that changes without a callback)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while not predicate():
                left = deadline - time.monotonic()
                assert left > 0, "condition not reached in time"
                self.cond.wait(min(left, 0.02))

    def states(self) -> list[State]:
        with self.cond:
            return [s.state for s in self.statuses]

    def messages(self) -> list[str]:
        with self.cond:
            return [s.message for s in self.statuses]


class PtyPair:
    """Two linked pseudo-terminals made by socat: the driver opens ``a``, the test ``b``."""

    def __init__(self, directory: Path) -> None:
        self.a = str(directory / "tty-driver")
        self.b = str(directory / "tty-device")
        self.proc: subprocess.Popen | None = None

    def start(self) -> PtyPair:
        self.proc = subprocess.Popen(
            ["socat", f"pty,raw,echo=0,link={self.a}", f"pty,raw,echo=0,link={self.b}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not (os.path.exists(self.a) and os.path.exists(self.b)):
            if time.monotonic() > deadline:
                raise TimeoutError("socat did not create the pty pair")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Pull the cable: socat exits and both ptys disappear."""
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    def device(self, timeout: float = 0.05):
        """The far end, as the hardware sees it."""
        import serial

        return serial.Serial(self.b, timeout=timeout)


@pytest.fixture
def pty_pair(tmp_path):
    if shutil.which("socat") is None:
        pytest.skip("socat not installed")
    pair = PtyPair(tmp_path).start()
    yield pair
    pair.stop()
