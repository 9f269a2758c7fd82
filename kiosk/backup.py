"""Online backups of a device's or the hub's SQLite database, with rotation and restore.

    kiosk backup [--db FILE] --to DIR [--keep 14] [--require-mount]
    kiosk backup --list --to DIR
    kiosk restore BACKUP [--db FILE] [--yes] [--force]

A backup is taken with SQLite's online backup API while the app keeps writing: one
``backup()`` step copies a consistent snapshot under a read transaction (WAL readers never
block the writer). The copy is checked (``PRAGMA integrity_check``), turned into a single
rollback-journal file, fsynced and only then renamed to ``<db stem>-<UTC stamp>.db``, so a
file with that name is always complete. The oldest backups beyond ``--keep`` are deleted.

Restore refuses a file that is not a sound SQLite database or belongs to another device, saves
the current database next to the backups first, and copies the backup *into* the live
database with the backup API again, so the WAL and other connections stay consistent.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import logging
import os
import re
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

_LOGGER = logging.getLogger(__name__)

SUFFIX = ".db"
_STAMP = "%Y%m%dT%H%M%S%fZ"
_NAME_RE = re.compile(r"^(?P<stem>.+)-(?P<stamp>\d{8}T\d{12}Z)\.db$")


class BackupError(RuntimeError):
    """The backup or restore cannot be done; the message says why, nothing was changed."""


@contextlib.contextmanager
def _open(path: Path, *, readonly: bool = False) -> Iterator[sqlite3.Connection]:
    if readonly:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    else:
        conn = sqlite3.connect(str(path), timeout=30)
    conn.isolation_level = None
    try:
        conn.execute("PRAGMA busy_timeout=30000")
        yield conn
    finally:
        conn.close()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def check(path: Path) -> None:
    """Raise BackupError unless ``path`` is a SQLite database that passes integrity_check."""
    path = Path(path)
    if not path.is_file():
        raise BackupError(f"no such file: {path}")
    with path.open("rb") as fh:
        if fh.read(16) != b"SQLite format 3\x00":
            raise BackupError(f"{path} is not a SQLite database")
    try:
        with _open(path, readonly=True) as conn:
            rows = [r[0] for r in conn.execute("PRAGMA integrity_check")]
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} is damaged: {exc}") from exc
    if rows != ["ok"]:
        raise BackupError(f"{path} is damaged: {'; '.join(rows[:5])}")


def identity(path: Path) -> tuple[str, str] | None:
    """(store_id, device_id) recorded in a kiosk/hub database, or None if it has none."""
    try:
        with _open(Path(path), readonly=True) as conn:
            rows = dict(conn.execute("SELECT key, value FROM meta WHERE key LIKE 'identity.%'"))
    except sqlite3.DatabaseError:
        return None
    if "identity.store_id" not in rows:
        return None
    return rows["identity.store_id"], rows.get("identity.device_id", "")


def list_backups(dest: Path, stem: str | None = None) -> list[Path]:
    """Complete backups in ``dest``, oldest first (optionally only those of one database)."""
    found = []
    for path in Path(dest).glob(f"*{SUFFIX}"):
        m = _NAME_RE.match(path.name)
        if m and (stem is None or m["stem"] == stem):
            found.append((m["stamp"], path))
    return [p for _s, p in sorted(found)]


def backup(
    db: Path, dest: Path, *, keep: int = 14, now: dt.datetime | None = None,
    require_mount: bool = False,
) -> Path:  # fmt: skip
    """Copy the live database ``db`` into ``dest``; return the new backup's path."""
    db, dest = Path(db), Path(dest)
    if keep < 1:
        raise BackupError("--keep must be at least 1")
    if not db.is_file():
        raise BackupError(f"no database at {db}")
    if require_mount and not os.path.ismount(dest):
        # an absent USB stick must not fill the root file system under its mount point
        raise BackupError(f"{dest} is not a mounted file system (is the USB stick plugged in?)")
    dest.mkdir(parents=True, exist_ok=True)
    stamp = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).strftime(_STAMP)
    final = dest / f"{db.stem}-{stamp}{SUFFIX}"
    partial = final.with_name(final.name + ".partial")
    partial.unlink(missing_ok=True)
    # customer data: readable by the owner only, also on a FAT stick mounted with umask=077
    os.close(os.open(partial, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600))
    try:
        with _open(db) as src, _open(partial) as dst:
            src.backup(dst)  # pages=-1: one step, one consistent snapshot
            dst.execute("PRAGMA journal_mode=DELETE")  # the backup is one self-contained file
        check(partial)
        _fsync(partial)
        os.replace(partial, final)
        _fsync(dest)
    except (sqlite3.Error, OSError) as exc:
        partial.unlink(missing_ok=True)
        raise BackupError(f"backup of {db} to {dest} failed: {exc}") from exc
    except BackupError:
        partial.unlink(missing_ok=True)
        raise
    for old in list_backups(dest, db.stem)[:-keep]:
        old.unlink()
        _LOGGER.info("removed old backup %s", old)
    _LOGGER.info("backed up %s to %s", db, final)
    return final


def restore(
    source: Path, db: Path, *, safety_dir: Path | None = None, force: bool = False
) -> Path | None:
    """Replace the contents of ``db`` by the backup ``source``.

    Returns the safety copy of the database as it was (None when there was none). Stop the
    app first: it would keep working on what it had read before.
    """
    source, db = Path(source), Path(db)
    check(source)
    saved = None
    if db.exists():
        mine, theirs = identity(db), identity(source)
        if not force and mine and theirs and mine != theirs:
            raise BackupError(
                f"{source} is a backup of {theirs[0]}/{theirs[1]}, this database belongs to "
                f"{mine[0]}/{mine[1]} (use --force to restore it anyway)"
            )
        saved = backup(db, safety_dir or db.parent / "before-restore", keep=5)
    else:
        db.parent.mkdir(parents=True, exist_ok=True)
    try:
        with _open(source, readonly=True) as src, _open(db) as dst:
            src.backup(dst)
    except sqlite3.Error as exc:
        raise BackupError(f"restore of {source} into {db} failed: {exc}") from exc
    check(db)
    _LOGGER.info("restored %s into %s (previous contents saved as %s)", source, db, saved)
    return saved


# -- command line ------------------------------------------------------------------------------
def _default_db(args: argparse.Namespace) -> Path:
    if args.db:
        return Path(args.db)
    from kiosk.config import load

    return load(args.config).db_path


def _cmd_backup(args: argparse.Namespace) -> int:
    try:
        if args.list:
            for path in list_backups(Path(args.to)):
                print(path)
            return 0
        path = backup(_default_db(args), Path(args.to), keep=args.keep,
                      require_mount=args.require_mount)  # fmt: skip
    except BackupError as exc:
        print(f"kiosk backup: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


def _cmd_restore(args: argparse.Namespace) -> int:
    db = _default_db(args)
    if not args.yes:
        print(f"This replaces {db} by {args.backup}. Stop the app first "
              "(systemctl stop kiosk@<mode> or storehub). Type 'yes' to go on: ", end="")  # fmt: skip
        if input().strip().lower() != "yes":
            print("nothing changed")
            return 1
    try:
        saved = restore(Path(args.backup), db, force=args.force)
    except BackupError as exc:
        print(f"kiosk restore: {exc}", file=sys.stderr)
        return 1
    print(f"restored {args.backup} into {db}" + (f"; the previous database is in {saved}" if saved else ""))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("backup", help="online backup of the database, with rotation")
    p.add_argument("--db", help="database file (default: the one of --config)")
    p.add_argument("--to", required=True, help="backup directory (a path or a USB stick)")
    p.add_argument("--keep", type=int, default=14, help="how many backups to keep")
    p.add_argument("--require-mount", action="store_true",
                   help="refuse unless --to is a mounted file system (USB stick)")  # fmt: skip
    p.add_argument("--list", action="store_true", help="list the backups in --to")
    p.set_defaults(func=_cmd_backup)

    r = sub.add_parser("restore", help="restore the database from a backup")
    r.add_argument("backup", help="backup file written by `kiosk backup`")
    r.add_argument("--db", help="database file (default: the one of --config)")
    r.add_argument("--yes", action="store_true", help="do not ask")
    r.add_argument("--force", action="store_true", help="restore a backup of another device")
    r.set_defaults(func=_cmd_restore)
