"""Replica bookkeeping that is not MQTT: store sequence, feed cursor, hub epoch, state hash.

The hub gives every event it accepts a *store sequence number* (``events.seq``). A replica
applies sequenced events in any order (handlers commute) and keeps a *feed cursor*: the highest
sequence up to which it holds every event. A gap above the cursor is asked for again; nothing
depends on a broker keeping messages. The hub's *epoch* names its database: when a hub is
replaced by one with another epoch, the sequence numbers mean nothing any more, so a device
forgets them and sends its own events again (the hub applies them idempotently).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, replace

import msgspec
from sqlite_utils import Migrations

from kiosk.engine import events
from kiosk.engine.clock import iso
from kiosk.engine.store import Store, register_migrations

_LOGGER = logging.getLogger(__name__)

migrations = register_migrations(Migrations("kiosk.replication"))

_CURSOR = "sync.feed_seq"
_EPOCH = "sync.hub_epoch"

# Tables whose rows legitimately differ between replicas (left out of the state hash).
_LOCAL_TABLES: set[str] = {"meta", "events", "sync_rejected",
                           # open baskets live on one till; only completed sales are events
                           "sale_drafts", "sale_draft_lines", "sale_draft_payments"}


@migrations()
def m001_rejected(db) -> None:
    # Own events the hub refused for good: kept for the owner to see, no longer re-sent.
    db.execute(
        "CREATE TABLE sync_rejected (event_id TEXT PRIMARY KEY, reason TEXT NOT NULL,"
        " at TEXT NOT NULL)"
    )
    # The hub sequences its own events (dashboard edits) by finding the unsequenced ones.
    db.execute("CREATE INDEX events_unsequenced ON events(id) WHERE seq IS NULL")


@migrations()
def m002_outbox_in_unsequenced(db) -> None:
    # Own events waiting for the hub's ack are never sequenced yet (acked = 0 implies
    # seq IS NULL), so the outbox is read through events_unsequenced; one index fewer to
    # write at every sale.
    db.execute("DROP INDEX events_outbox")


def local_table(name: str) -> None:
    """Declare a table that holds replica-local data (left out of :func:`state_hash`)."""
    _LOCAL_TABLES.add(name)


# -- hub side: sequencing -------------------------------------------------------------------
def head(store: Store) -> int:
    """Return the highest store sequence number in this database (0 when none)."""
    return store.db.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]


def assign_seq(store: Store, event_ids: Iterable[str]) -> list[tuple[str, int]]:
    """Give each unsequenced event the next store sequence number (call in a transaction)."""
    if not store.in_transaction:
        raise RuntimeError("assign_seq must run inside a transaction")
    event_ids = list(event_ids)
    current: dict[str, int | None] = {}
    for i in range(0, len(event_ids), 500):  # one query per 500 ids (group commit at the hub)
        part = event_ids[i : i + 500]
        current.update(store.db.execute(
            f"SELECT id, seq FROM events WHERE id IN ({','.join('?' * len(part))})", part
        ).fetchall())  # fmt: skip
    out: list[tuple[str, int]] = []
    updates: list[tuple[int, str]] = []
    nxt = head(store) + 1
    for event_id in event_ids:
        if event_id not in current:
            raise KeyError(event_id)
        seq = current[event_id]
        if seq is None:
            seq = current[event_id] = nxt
            updates.append((nxt, event_id))
            nxt += 1
        out.append((event_id, seq))
    store.db.conn.executemany("UPDATE events SET seq = ?, acked = 1 WHERE id = ?", updates)
    return out


def since(store: Store, from_seq: int, limit: int) -> list[events.Event]:
    """Return sequenced events with ``seq >= from_seq`` in sequence order (replay)."""
    rows = store.db.execute(
        "SELECT id, device, hlc, type, v, payload, created_at, seq FROM events"
        " WHERE seq >= ? ORDER BY seq LIMIT ?",
        [from_seq, limit],
    ).fetchall()
    return [events.Event.from_row(r) for r in rows]


def unsequenced(store: Store, limit: int = 1000) -> list[str]:
    """Return ids of events this database has not sequenced yet, oldest first (hub's own)."""
    return [
        r[0]
        for r in store.db.execute(
            "SELECT id FROM events WHERE seq IS NULL ORDER BY id LIMIT ?", [limit]
        )
    ]


# -- replica side: cursor, epoch ---------------------------------------------------------------
def cursor(store: Store) -> int:
    """Return the sequence up to which this replica holds every event."""
    return int(store.get_meta(_CURSOR, "0"))


def advance_cursor(store: Store) -> int:
    """Move the cursor over every contiguous sequenced event; return the new cursor."""
    current = cursor(store)
    pos = current
    while True:
        rows = store.db.execute(
            "SELECT seq FROM events WHERE seq > ? ORDER BY seq LIMIT 500", [pos]
        ).fetchall()
        for (seq,) in rows:
            if seq != pos + 1:
                break
            pos = seq
        else:
            if len(rows) == 500:
                continue
        break
    if pos != current:
        with store.transaction():
            store.set_meta(_CURSOR, str(pos))
    return pos


def apply_sequenced(store: Store, batch: Iterable[events.Event]) -> tuple[int, int]:
    """Apply events that carry a store sequence, in one transaction.

    Returns ``(newly applied, cursor)``. An event already held only gets its sequence (that is
    how a device learns the hub has its own events even when the ack was lost).
    """
    batch = list(batch)
    with store.transaction():
        try:
            # one savepoint for the batch, not one per event; a failure redoes it one by one
            with store.transaction(), store.deferring():
                applied = sum(events.apply_in_batch(store, ev) for ev in batch)
        except events.EventError:
            applied = 0
            for ev in batch:
                try:
                    if events.apply(store, ev):
                        applied += 1
                except events.EventError as exc:
                    # e.g. a newer event type than this software knows: the cursor stops
                    # before it, so the event is fetched again after an update.
                    _LOGGER.error("cannot apply event %s (seq %s): %s", ev.id, ev.seq, exc)
        new_cursor = advance_cursor(store)
    return applied, new_cursor


def epoch(store: Store) -> str | None:
    """Return the epoch of the hub whose sequence numbers this replica holds."""
    return store.get_meta(_EPOCH)


def adopt_epoch(store: Store, hub_epoch: str) -> bool:
    """Follow a hub epoch; on a change, forget old sequence numbers and re-send own events.

    Returns True when something was reset.
    """
    current = epoch(store)
    if current == hub_epoch:
        return False
    with store.transaction():
        if current is not None:
            _LOGGER.warning("hub epoch changed %s -> %s: re-sending own events", current, hub_epoch)
            store.db.execute("UPDATE events SET seq = NULL WHERE seq IS NOT NULL")
            store.db.execute(
                "UPDATE events SET acked = 0 WHERE device = ?", [store.identity.device_id]
            )
            store.db.execute("DELETE FROM sync_rejected")
        store.set_meta(_CURSOR, "0")
        store.set_meta(_EPOCH, hub_epoch)
    return current is not None


def reject(store: Store, errors: Iterable[tuple[str, str]]) -> None:
    """Record own events the hub refused for good; they stop being re-sent."""
    now = iso(store.clock())
    with store.transaction():
        for event_id, reason in errors:
            store.db.execute(
                "INSERT OR REPLACE INTO sync_rejected VALUES (?, ?, ?)", [event_id, reason, now]
            )
            store.db.execute("UPDATE events SET acked = 1 WHERE id = ?", [event_id])


def rejected(store: Store) -> list[dict]:
    return list(store.db.query("SELECT * FROM sync_rejected ORDER BY at"))


def outbox_after(store: Store, after_id: str, limit: int) -> list[events.Event]:
    """Return own unacknowledged events with an id above ``after_id``, oldest first."""
    rows = store.db.execute(
        "SELECT id, device, hlc, type, v, payload, created_at, seq FROM events"
        " WHERE seq IS NULL AND device = ? AND acked = 0 AND id > ? ORDER BY id LIMIT ?",
        [store.identity.device_id, after_id, limit],
    ).fetchall()
    return [events.Event.from_row(r) for r in rows]


def resend_all(store: Store) -> int:
    """Mark every own event unacknowledged again (the hub applies them idempotently)."""
    with store.transaction():
        cur = store.db.execute(
            "UPDATE events SET acked = 0 WHERE device = ? AND seq IS NULL",
            [store.identity.device_id],
        )
        return cur.rowcount


# -- comparing replicas -------------------------------------------------------------------------
_sorted_json = msgspec.json.Encoder(order="sorted").encode


def _replicated_tables(store: Store) -> list[str]:
    rows = store.db.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'table' ORDER BY name"
    ).fetchall()
    virtual = [n for n, sql in rows if (sql or "").upper().startswith("CREATE VIRTUAL TABLE")]
    return [
        name
        for name, _sql in rows
        if name not in _LOCAL_TABLES
        and not name.startswith(("sqlite_", "_"))
        and name not in virtual
        and not any(name.startswith(v + "_") for v in virtual)  # FTS shadow tables
    ]


def state_hash(store: Store, *, detail: bool = False) -> str | dict[str, str]:
    """Hash the replicated state: the event set and every projection table.

    Two replicas that hold the same events must give the same hash, whatever the order in
    which they applied them. ``detail=True`` returns one hash per table (to find a difference).
    """
    parts: dict[str, str] = {}
    h = hashlib.sha256()
    for row in store.db.execute(
        "SELECT id, device, hlc, type, v, payload, created_at FROM events ORDER BY id"
    ):
        payload = _sorted_json(msgspec.json.decode(row[5]))
        h.update(_sorted_json([*row[:5], payload.decode(), row[6]]))
    parts["events"] = h.hexdigest()
    for table in _replicated_tables(store):
        if store.db.execute(f"SELECT 1 FROM [{table}] LIMIT 1").fetchone() is None:
            continue  # empty or absent alike: a hub may load modules a till never imports
        cols = [r[1] for r in store.db.execute(f"PRAGMA table_info([{table}])")]
        names = ", ".join(f"[{c}]" for c in cols)
        h = hashlib.sha256(_sorted_json(cols))
        for row in store.db.execute(f"SELECT {names} FROM [{table}] ORDER BY {names}"):
            h.update(_sorted_json(list(row)))
        parts[table] = h.hexdigest()
    if detail:
        return parts
    return hashlib.sha256(_sorted_json(parts)).hexdigest()


def counts(store: Store) -> dict[str, int]:
    """Return event counts for reports: total, own, unacknowledged, sequenced."""
    me = store.identity.device_id
    row = store.db.execute(
        "SELECT count(*), sum(device = ?), sum(device = ? AND acked = 0), count(seq)"
        " FROM events",
        [me, me],
    ).fetchone()
    return {"events": row[0], "own": row[1] or 0, "backlog": row[2] or 0, "sequenced": row[3]}


# -- connectivity, as the engine's commands see it -------------------------------------------------
@dataclass(frozen=True)
class SyncState:
    """A snapshot of a device's link to the hub.

    ``in_sync`` means connected, the hub is up and this replica holds every event the hub has
    sequenced: balances read now are the store's balances. Redemption commands take it to
    choose between the online rules and the per-store offline policy.
    """

    connected: bool = False
    hub_ready: bool = False
    feed_seq: int = 0
    hub_seq: int = 0
    backlog: int = 0
    replaying: bool = False
    rejected: int = 0
    since: str = ""  # when ``in_sync`` last changed (ISO 8601 UTC)

    @property
    def in_sync(self) -> bool:
        return (
            self.connected and self.hub_ready and not self.replaying
            and self.feed_seq >= self.hub_seq
        )  # fmt: skip


class Connectivity:
    """Thread-safe holder of the current :class:`SyncState` (written by sync, read by the UI)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = SyncState()

    @property
    def state(self) -> SyncState:
        with self._lock:
            return self._state

    @property
    def in_sync(self) -> bool:
        return self.state.in_sync

    def update(self, now: str, **changes) -> tuple[SyncState, bool]:
        """Apply changes; return the new state and whether anything changed."""
        with self._lock:
            old = self._state
            new = replace(old, **changes)
            if new == old:
                return old, False
            if new.in_sync != old.in_sync:
                new = replace(new, since=now)
            self._state = new
            return new, True
