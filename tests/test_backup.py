"""Online backup, rotation and restore of real SQLite files (kiosk/backup.py, `kiosk backup`)."""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from pathlib import Path

import pytest

from kiosk import backup as bk
from kiosk.cli import main
from kiosk.engine import customers
from kiosk.engine.store import Identity, Store


def dump(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def names(store: Store) -> list[str]:
    return [r[0] for r in store.db.execute("SELECT last_name FROM customers ORDER BY last_name")]


def test_backup_restore_round_trip_gives_back_the_same_database(file_store, tmp_path):
    for name in ("Albers", "Brandt", "Claßen"):
        customers.create(file_store, {"last_name": name})
    snapshot = dump(file_store.path)
    dest = tmp_path / "stick"
    path = bk.backup(file_store.path, dest)
    assert path.parent == dest and bk.list_backups(dest) == [path]
    assert dump(path) == snapshot  # the copy holds exactly what the live database held

    customers.create(file_store, {"last_name": "Danach"})
    db_path = file_store.path
    file_store.close()
    saved = bk.restore(path, db_path, safety_dir=tmp_path / "saved")
    assert dump(db_path) == snapshot
    assert "Danach" in str(dump(saved))  # the state before the restore is kept
    again = Store(db_path, file_store.identity)  # the app opens the restored file as usual
    try:
        assert names(again) == ["Albers", "Brandt", "Claßen"]
        assert again.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        again.close()


def test_backup_while_another_connection_writes_is_a_consistent_snapshot(tmp_path):
    """A writer commits pairs of rows in WAL mode while backups run; each backup is whole."""
    db = tmp_path / "busy.db"
    setup = sqlite3.connect(db, isolation_level=None)
    setup.execute("PRAGMA journal_mode=WAL")
    setup.execute("CREATE TABLE sale (id INTEGER PRIMARY KEY, cents INTEGER NOT NULL)")
    setup.execute("CREATE TABLE ledger (sale_id INTEGER PRIMARY KEY, cents INTEGER NOT NULL)")
    setup.close()
    stop = threading.Event()
    written = []

    def writer() -> None:
        conn = sqlite3.connect(db, isolation_level=None, timeout=30)
        n = 0
        while not stop.is_set() or n < 200:
            n += 1
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO sale VALUES (?, ?)", (n, n * 100))
            conn.execute("INSERT INTO ledger VALUES (?, ?)", (n, n * 100))
            conn.execute("COMMIT")
            written.append(n)
        conn.close()

    thread = threading.Thread(target=writer)
    thread.start()
    copies = []
    try:
        start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        for i in range(8):
            copies.append(bk.backup(db, tmp_path / "bk", keep=100, now=start + dt.timedelta(seconds=i)))
    finally:
        stop.set()
        thread.join()
    counts = []
    for path in copies:
        bk.check(path)
        conn = sqlite3.connect(path)
        sales, ledger = (conn.execute(f"SELECT count(*), coalesce(sum(cents), 0) FROM {t}").fetchone()
                         for t in ("sale", "ledger"))  # fmt: skip
        top = conn.execute("SELECT coalesce(max(id), 0) FROM sale").fetchone()[0]
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        conn.close()
        assert sales == ledger  # never half a transaction
        assert sales[0] == top  # and no gaps: a prefix of the commits
        assert mode == "delete"  # a single self-contained file, no -wal needed
        assert not Path(f"{path}-wal").exists()
        counts.append(sales[0])
    assert counts == sorted(counts) and len(written) >= 200
    assert counts[-1] > 0


def test_rotation_keeps_the_newest(tmp_path):
    db = tmp_path / "hub.db"
    sqlite3.connect(db).execute("CREATE TABLE t (x)").connection.close()
    dest = tmp_path / "bk"
    dest.mkdir()
    (dest / "hub-20250101T000000000000Z.db.partial").write_bytes(b"half")  # a crashed run
    (dest / "notes.db").write_bytes(b"not ours")
    made = [bk.backup(db, dest, keep=3, now=dt.datetime(2026, 3, d, 3, 15, tzinfo=dt.UTC))
            for d in range(1, 7)]  # fmt: skip
    assert bk.list_backups(dest) == made[-3:]
    assert (dest / "notes.db").exists()  # files that are not our backups stay


def _corrupt(path: Path) -> None:
    page = sqlite3.connect(path).execute("PRAGMA page_size").fetchone()[0]
    with path.open("r+b") as fh:
        fh.seek(page * 2 + 10)
        fh.write(b"\xff" * (page - 20))


def test_restore_refuses_a_corrupt_backup_and_changes_nothing(file_store, tmp_path):
    for name in ("Albers", "Brandt"):
        customers.create(file_store, {"last_name": name})
    good = bk.backup(file_store.path, tmp_path / "bk")
    bad = tmp_path / "bad.db"
    bad.write_bytes(good.read_bytes())
    _corrupt(bad)
    before = dump(file_store.path)
    with pytest.raises(bk.BackupError, match="damaged"):
        bk.restore(bad, file_store.path)
    text = tmp_path / "customers.xlsx"
    text.write_bytes(b"PK\x03\x04 not a database")
    with pytest.raises(bk.BackupError, match="not a SQLite database"):
        bk.restore(text, file_store.path)
    assert dump(file_store.path) == before
    assert not (file_store.path.parent / "before-restore").exists()


def test_restore_refuses_a_backup_of_another_device(file_store, tmp_path):
    other = Store(tmp_path / "other.db", Identity("teststore", "till-2", 2))
    customers.create(other, {"last_name": "Fremd"})
    foreign = bk.backup(other.path, tmp_path / "bk")
    other.close()
    with pytest.raises(bk.BackupError, match="teststore/till-2"):
        bk.restore(foreign, file_store.path)
    assert names(file_store) == []


def test_backup_refuses_a_missing_usb_stick(file_store, tmp_path):
    with pytest.raises(bk.BackupError, match="USB stick"):
        bk.backup(file_store.path, tmp_path / "media", require_mount=True)
    assert not (tmp_path / "media").exists()


def test_backup_and_restore_commands(file_store, tmp_path, capsys):
    customers.create(file_store, {"last_name": "Albers"})
    dest = tmp_path / "bk"
    assert main(["backup", "--db", str(file_store.path), "--to", str(dest), "--keep", "2"]) == 0
    made = Path(capsys.readouterr().out.strip())
    assert main(["backup", "--list", "--to", str(dest)]) == 0
    assert capsys.readouterr().out.strip() == str(made)
    customers.create(file_store, {"last_name": "Brandt"})
    db_path = file_store.path
    file_store.close()
    assert main(["restore", str(made), "--db", str(db_path), "--yes"]) == 0
    assert "restored" in capsys.readouterr().out
    assert main(["restore", str(tmp_path / "missing.db"), "--db", str(db_path), "--yes"]) == 1
    assert "no such file" in capsys.readouterr().err
    conn = sqlite3.connect(db_path)
    assert [r[0] for r in conn.execute("SELECT last_name FROM customers")] == ["Albers"]
    conn.close()
