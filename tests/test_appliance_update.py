"""App updates (kiosk/update.py): fresh venv per release, atomic switch, rollback, signatures.

The releases installed here are small real wheels built by the test (a ``retail-kiosk``
distribution whose ``kiosk`` script answers ``update selftest`` and ``health`` the way a good
or a broken release would); pip really installs them into new virtual environments, offline.
Restarting a systemd unit is the one part not exercised (no systemd as PID 1 here): the
health check runs as a command instead.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import sqlite3
import subprocess
import threading
import zipfile
from pathlib import Path

import pytest

from kiosk import update as up
from kiosk.cli import main

STUB = '''\
import os, sqlite3, sys

SELFTEST_OK = {selftest_ok}
HEALTHY = {healthy}


def main():
    args = sys.argv[1:]
    if "--version" in args:
        print("kiosk {version}")
        return 0
    if args[-2:] == ["update", "selftest"]:
        return 0 if SELFTEST_OK else 1
    if args[:1] == ["health"]:
        db = sqlite3.connect(args[1])  # a release that migrates the database, then fails
        db.execute("CREATE TABLE IF NOT EXISTS v_{tag} (x)")
        db.commit()
        return 0 if HEALTHY else 1
    return 2
'''


def make_wheel(dest: Path, version: str, *, selftest_ok=True, healthy=True) -> Path:
    tag = version.replace(".", "_")
    dist = f"retail_kiosk-{version}.dist-info"
    files = {
        f"kiosk_stub_{tag}/__init__.py": STUB.format(selftest_ok=selftest_ok, healthy=healthy,
                                                    version=version, tag=tag),  # fmt: skip
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: retail-kiosk\nVersion: {version}\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{dist}/entry_points.txt": f"[console_scripts]\nkiosk = kiosk_stub_{tag}:main\n",
    }
    record = []
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{name},sha256={digest.decode()},{len(text.encode())}")
    record.append(f"{dist}/RECORD,,")
    files[f"{dist}/RECORD"] = "\n".join(record) + "\n"
    dest.mkdir(parents=True, exist_ok=True)
    wheel = dest / f"retail_kiosk-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return wheel


def kiosk_version(layout: up.Layout) -> str:
    out = subprocess.run([layout.current / "bin/kiosk", "--version"], capture_output=True, text=True)
    return out.stdout.strip()


@pytest.fixture
def layout(tmp_path) -> up.Layout:
    return up.Layout(tmp_path / "opt-kiosk")


@pytest.fixture
def db(tmp_path) -> Path:
    path = tmp_path / "till-1.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE sale (cents INTEGER)")
    conn.execute("INSERT INTO sale VALUES (1250)")
    conn.commit()
    conn.close()
    return path


def tables(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        conn.close()


def test_install_switch_and_rollback_on_a_failed_health_check(layout, db, tmp_path):
    wheels = tmp_path / "wheels"
    first = up.apply(layout, make_wheel(wheels, "0.2.0"), db=db)
    assert layout.current.resolve() == first and kiosk_version(layout) == "kiosk 0.2.0"

    bad = make_wheel(wheels, "0.4.0", healthy=False)
    health = [str(layout.current / "bin/kiosk"), "health", str(db)]
    with pytest.raises(up.UpdateError, match="rolled back to 0.2.0"):
        up.apply(layout, bad, db=db, health_cmd=health)
    assert layout.current.resolve() == first and kiosk_version(layout) == "kiosk 0.2.0"
    assert tables(db) == {"sale"}  # what the broken release did to the database is undone

    good = up.apply(layout, make_wheel(wheels, "0.5.0"), db=db, health_cmd=health)
    assert kiosk_version(layout) == "kiosk 0.5.0" and "v_0_5_0" in tables(db)
    assert layout.previous.resolve() == first
    assert up.rollback(layout) == first and kiosk_version(layout) == "kiosk 0.2.0"
    assert layout.previous.resolve() == good
    assert layout.current.is_symlink()  # a symlink swapped by rename: never a half state


def test_a_release_failing_its_selftest_is_never_switched_to(layout, tmp_path):
    wheels = tmp_path / "wheels"
    first = up.apply(layout, make_wheel(wheels, "0.2.0"))
    with pytest.raises(up.UpdateError, match="self-test"):
        up.apply(layout, make_wheel(wheels, "0.3.0", selftest_ok=False))
    assert layout.current.resolve() == first
    assert [p.name.split("-")[0] for p in layout.releases.iterdir()] == ["0.2.0"]


@pytest.fixture
def hub_updates(tmp_path):
    """The hub's update directory served over real HTTP (what the dashboard serves as /updates/)."""
    root = tmp_path / "hub-updates"
    root.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(root), **kw)

        def log_message(self, *_a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture
def keys(tmp_path):
    private, public = tmp_path / "signing.key", tmp_path / "signing.pub"
    up.keygen(private, public)
    return private, public


def test_check_fetches_a_signed_release_from_the_hub(layout, hub_updates, keys, tmp_path, capsys):
    root, url = hub_updates
    private, public = keys
    up.publish([make_wheel(tmp_path / "build", "0.6.0")], root, private)
    args = ["update", "--root", str(layout.root), "check", "--from", url, "--public-key", str(public),
            "--settle", "0"]  # fmt: skip
    assert main(args) == 0
    assert kiosk_version(layout) == "kiosk 0.6.0"
    assert main(args) == 0
    assert "up to date (0.6.0)" in capsys.readouterr().out


def test_check_refuses_a_tampered_wheel_or_a_foreign_signature(layout, hub_updates, keys, tmp_path):
    root, url = hub_updates
    private, public = keys
    up.apply(layout, make_wheel(tmp_path / "w", "0.2.0"))
    up.publish([make_wheel(tmp_path / "build", "0.7.0")], root, private)
    wheel = root / "retail_kiosk-0.7.0-py3-none-any.whl"
    wheel.write_bytes(wheel.read_bytes() + b"\0evil")  # swapped on the way
    with pytest.raises(up.UpdateError, match="does not match the signed manifest"):
        up.fetch(url, layout, public)

    rogue_private, rogue_public = tmp_path / "rogue.key", tmp_path / "rogue.pub"
    up.keygen(rogue_private, rogue_public)
    up.publish([make_wheel(tmp_path / "rogue", "0.8.0")], root, rogue_private)
    with pytest.raises(up.UpdateError, match="not signed"):
        up.fetch(url, layout, public)
    manifest = json.loads((root / "latest.json").read_text())
    manifest["files"]["../../etc/passwd.whl"] = manifest["files"].pop(next(iter(manifest["files"])))
    with pytest.raises(up.UpdateError):
        up.verify_manifest(manifest, rogue_public)  # signature broken by the edit, and a bad name
    assert kiosk_version(layout) == "kiosk 0.2.0"
    assert not list(layout.wheelhouse.glob("*0.8.0*"))


def test_selftest_of_this_checkout_migrates_a_copy_only(tmp_path, capsys):
    """The real `kiosk update selftest` opens a copy: the live database is not touched."""
    config = tmp_path / "device.toml"
    config.write_text('[device]\nstore_id = "teststore"\ndevice_id = "till-1"\ndata_dir = "data"\n')
    (tmp_path / "data").mkdir()
    live = tmp_path / "data/till-1.db"
    conn = sqlite3.connect(live)
    conn.execute("CREATE TABLE sale (x)")
    conn.commit()
    conn.close()
    assert main(["--config", str(config), "update", "selftest"]) == 0
    assert capsys.readouterr().out.strip() == "ok"
    assert tables(live) == {"sale"}
