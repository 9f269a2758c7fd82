"""sd_notify: the real app, started the way kiosk@.service starts it, reports READY=1 and then
pings the watchdog from its main loop (kiosk/sdnotify.py, hooked into KioskApp.on_start)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kiosk import sdnotify

CONFIG = """\
[device]
store_id = "teststore"
device_id = "till-1"
device_no = 1
mode = "till"
data_dir = "data"
language = "de"

[ui]
fullscreen = false
width = 800
height = 600
"""


@pytest.fixture
def notify_socket(tmp_path):
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(90)
    yield path, sock
    sock.close()


def test_notify_is_a_no_op_outside_systemd():
    assert sdnotify.notify("READY=1", env={}) is False
    assert sdnotify.watchdog_interval(env={}) is None
    assert sdnotify.watchdog_interval(env={"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None


def test_notify_reaches_a_socket_and_halves_the_watchdog(notify_socket):
    path, sock = notify_socket
    env = {"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}
    assert sdnotify.notify("READY=1", env=env)
    assert sock.recv(256) == b"READY=1"
    assert sdnotify.watchdog_interval(env=env) == 15.0


@pytest.mark.display
def test_app_reports_ready_and_pings_the_watchdog(xdisplay, tmp_path, notify_socket):
    path, sock = notify_socket
    config = tmp_path / "device.toml"
    config.write_text(CONFIG)
    env = {**os.environ, "DISPLAY": xdisplay, "NOTIFY_SOCKET": str(path),
           "WATCHDOG_USEC": "400000", "KIVY_HOME": str(tmp_path / "kivy")}  # fmt: skip
    env.pop("WATCHDOG_PID", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "kiosk", "--config", str(config), "--mode", "till"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        messages = []
        deadline = time.monotonic() + 120  # a guard against a hang, not a timing assertion
        while messages.count(b"WATCHDOG=1") < 3 and time.monotonic() < deadline:
            try:
                messages.append(sock.recv(256))
            except TimeoutError:
                break
        assert proc.poll() is None, proc.stdout.read().decode(errors="replace")
    finally:
        proc.terminate()
        output = proc.communicate(timeout=60)[0].decode(errors="replace")
    # first the longer start timeout for migrations, then ready once, then the pings
    assert messages[0].startswith(b"EXTEND_TIMEOUT_USEC=900000000\n"), output
    assert messages[1:2] == [b"READY=1"] and messages.count(b"READY=1") == 1, output
    assert messages.count(b"WATCHDOG=1") >= 3, output
    assert Path(tmp_path / "data" / "till-1.db").exists()
