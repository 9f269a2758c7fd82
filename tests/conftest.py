"""Shared fixtures: real SQLite files, a real Mosquitto, a real X display (Xvfb)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

# Kivy reads these at import time: no argv parsing, logs through `logging`, no log files.
os.environ.setdefault("KIVY_NO_ARGS", "1")
os.environ.setdefault("KIVY_LOG_MODE", "PYTHON")
os.environ.setdefault("KIVY_NO_FILELOG", "1")
os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")

from kiosk.engine.store import Identity, Store  # noqa: E402

ARTIFACTS = Path(__file__).parent / "artifacts"


@pytest.fixture(autouse=True)
def _restore_language():
    """The language is process-wide (an app started in a test sets its own): each test
    leaves it as it found it, so no test depends on which ran before."""
    from kiosk import i18n

    before = i18n.language()
    yield
    if i18n.language() != before:
        i18n.set_language(before)


@pytest.fixture
def identity() -> Identity:
    return Identity(store_id="teststore", device_id="till-1", device_no=1)


@pytest.fixture
def store(identity):
    """An in-memory device store (fast engine tests)."""
    s = Store(None, identity)
    yield s
    s.close()


@pytest.fixture
def file_store(tmp_path, identity):
    """A device store in a real SQLite file (durability, WAL, second connections)."""
    s = Store(tmp_path / "device.db", identity)
    yield s
    s.close()


class FrozenClock:
    """A settable clock for rules that depend on the date (birthdays, expiry)."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta) -> None:
        self.now += dt.timedelta(**delta)


@pytest.fixture
def frozen_clock():
    return FrozenClock(dt.datetime(2026, 5, 4, 10, 30, tzinfo=dt.timezone.utc))


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Screenshots and other files tests leave for people to look at (README pictures)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def xdisplay(tmp_path_factory):
    """Start Xvfb once per session and point DISPLAY (and Kivy) at it."""
    from tests.support.xvfb import Xvfb

    server = Xvfb()
    display = server.start()
    old = os.environ.get("DISPLAY")
    os.environ["DISPLAY"] = display
    os.environ.setdefault("KIVY_HOME", str(tmp_path_factory.mktemp("kivy-home")))
    yield display
    server.stop()
    if old is None:
        os.environ.pop("DISPLAY", None)
    else:
        os.environ["DISPLAY"] = old


@pytest.fixture
def mosquitto(tmp_path):
    """A fresh Mosquitto on a free loopback port, killed after the test."""
    from tests.support.broker import Mosquitto

    broker = Mosquitto(tmp_path / "broker").start()
    yield broker
    broker.stop()
