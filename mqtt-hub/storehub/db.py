"""The hub's own tables beside the replicated store: rejects, counters, device presence.

The hub database is an ordinary engine Store (identity ``<store>/hub``) plus these tables, so
the dashboard reads customers, ledgers and the sync health from one SQLite file.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlite_utils import Migrations

from kiosk.engine import replication
from kiosk.engine.clock import iso
from kiosk.engine.events import new_id
from kiosk.engine.store import Store

_LOGGER = logging.getLogger(__name__)

# Applied explicitly to hub databases only (never registered for device stores).
migrations = Migrations("storehub.hub")

for _table in ("hub_rejects", "hub_counters", "hub_devices", "hub_enrolled"):
    replication.local_table(_table)


@migrations()
def m001_hub(db) -> None:
    db.execute(
        """
        CREATE TABLE hub_rejects (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            device TEXT,            -- from the topic, i.e. the client's credentials
            topic TEXT NOT NULL,
            reason TEXT NOT NULL,   -- malformed, oversized, schema, forged, invalid, conflict, ...
            detail TEXT,
            size INTEGER
        )
        """
    )
    db.execute("CREATE TABLE hub_counters (name TEXT PRIMARY KEY, n INTEGER NOT NULL)")
    db.execute(
        """
        CREATE TABLE hub_devices (
            device TEXT PRIMARY KEY,
            state TEXT, mode TEXT, version TEXT, device_no INTEGER,
            backlog INTEGER, feed_seq INTEGER, in_sync INTEGER, status_at TEXT,
            seen_at TEXT
        )
        """
    )
    db.execute(
        """
        CREATE TABLE hub_enrolled (
            device TEXT PRIMARY KEY, mode TEXT NOT NULL, device_no INTEGER NOT NULL,
            enrolled_at TEXT NOT NULL
        )
        """
    )


@migrations()
def m002_audience_indexes(db) -> None:
    # The campaign builder's live count reads only these columns: covering indexes let it
    # count from the index instead of reading every (wide) customer row. Hub only: tills
    # never count audiences and would pay for the index on every customer write.
    db.execute("CREATE INDEX IF NOT EXISTS hub_audience_email"
               " ON customers(email_consent, erased_at, merged_into, email)")  # fmt: skip
    db.execute("CREATE INDEX IF NOT EXISTS hub_audience_sms"
               " ON customers(sms_consent, erased_at, merged_into, mobile, phone)")  # fmt: skip
    db.execute("ANALYZE customers")  # so the planner knows when they are not selective


def open_hub_store(store: Store) -> str:
    """Add the hub tables to a store and return the hub's epoch (made on first start)."""
    migrations.apply(store.db)
    epoch = store.get_meta("hub.epoch")
    if epoch is None:
        epoch = new_id()
        with store.transaction():
            store.set_meta("hub.epoch", epoch)
    return epoch


MAX_REJECT_ROWS = 10_000  # the log keeps the newest; counters keep the totals


def count(store: Store, name: str, n: int = 1) -> None:
    store.db.execute(
        "INSERT INTO hub_counters VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET n = n + ?",
        [name, n, n],
    )


def record_reject(
    store: Store, topic: str, device: str | None, reason: str, detail: str, size: int
) -> None:
    """Log and count a refused message or event (nothing of it was applied)."""
    _LOGGER.warning("rejected %s from %s on %s: %s", reason, device, topic, detail[:200])
    with store.transaction():
        cur = store.db.execute(
            "INSERT INTO hub_rejects (at, device, topic, reason, detail, size)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [iso(store.clock()), device, topic, reason, detail[:500], size],
        )
        count(store, f"rejected.{reason}")
        if cur.lastrowid and cur.lastrowid % 1000 == 0:
            store.db.execute(
                "DELETE FROM hub_rejects WHERE id <= ?", [cur.lastrowid - MAX_REJECT_ROWS]
            )


def counters(store: Store) -> dict[str, int]:
    return dict(store.db.execute("SELECT name, n FROM hub_counters ORDER BY name").fetchall())


def rejects(store: Store, limit: int = 100) -> list[dict[str, Any]]:
    return list(store.db.query("SELECT * FROM hub_rejects ORDER BY id DESC LIMIT ?", [limit]))


def devices(store: Store) -> list[dict[str, Any]]:
    return list(store.db.query("SELECT * FROM hub_devices ORDER BY device"))


def update_device(store: Store, device: str, **fields: Any) -> None:
    fields["seen_at"] = iso(store.clock())
    names = ", ".join(fields)
    marks = ", ".join("?" for _ in fields)
    sets = ", ".join(f"{k} = excluded.{k}" for k in fields)
    with store.transaction():
        store.db.execute(
            f"INSERT INTO hub_devices (device, {names}) VALUES (?, {marks})"
            f" ON CONFLICT(device) DO UPDATE SET {sets}",
            [device, *fields.values()],
        )
