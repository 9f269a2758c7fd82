"""`kiosk demo` starts a whole demo store under Xvfb, and Ctrl-C stops all of it."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

pytestmark = pytest.mark.display


def wait_for(predicate, timeout: float, what: str, proc: subprocess.Popen):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        if proc.poll() is not None:
            pytest.fail(f"kiosk demo exited with {proc.returncode} while waiting for {what}")
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def picture_is_not_blank(path: Path) -> bool:
    with Image.open(path) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
    return colours is None or len(colours) > 10


def dashboard_answers(port: int) -> bool:
    try:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy
        with opener.open(f"http://127.0.0.1:{port}/login", timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError):
        return False


def test_demo_store_comes_up_and_stops_on_ctrl_c(xdisplay, tmp_path, artifacts_dir):
    data = tmp_path / "demo-data"
    shots = tmp_path / "shots"
    env = {**os.environ, "DISPLAY": xdisplay, "KIOSK_SCREENSHOT": str(shots / "till.png")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "kiosk.cli", "demo", "--data", str(data), "--customers", "40"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        till_shot = wait_for(lambda: next(shots.glob("till*.png"), None), 90, "the till's window", proc)
        display_shot = wait_for(lambda: next(shots.glob("display*.png"), None), 30, "the display", proc)
        wait_for(lambda: till_shot.stat().st_size > 0 and display_shot.stat().st_size > 0, 10,
                 "screenshots written", proc)  # fmt: skip
        assert proc.poll() is None, "the demo is still running"
        for name in ("till.toml", "display.toml", "hub.toml", "till-1.db", "display-1.db", "hub.db"):
            assert (data / name).exists(), name
        with sqlite3.connect(data / "till-1.db") as db:
            assert db.execute("SELECT count(*) FROM customers").fetchone()[0] == 40
        assert picture_is_not_blank(till_shot) and picture_is_not_blank(display_shot)
        port = tomllib.loads((data / "hub.toml").read_text())["dashboard_port"]
        assert wait_for(lambda: dashboard_answers(port), 60, "the dashboard", proc)
        for shot in (till_shot, display_shot):
            (artifacts_dir / f"demo-{shot.name}").write_bytes(shot.read_bytes())
        proc.send_signal(signal.SIGINT)  # what Ctrl-C in the terminal does
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:  # a failure above: stop the demo (and its children) anyway
            proc.send_signal(signal.SIGINT)
            try:
                proc.communicate(timeout=40)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 0, output
    # every child is gone: nothing holds the databases open
    leftovers = subprocess.run(["pgrep", "-f", str(data)], capture_output=True, text=True, check=False).stdout
    assert leftovers == "", f"processes still running: {leftovers}"
