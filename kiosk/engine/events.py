"""The event log: every state change is an event, written in the same transaction.

An event is the unit the sync ships: ``id`` (UUIDv7), ``device``, ``hlc``, ``type``, schema
version ``v`` and a JSON ``payload``. Local commands call :func:`emit`; events from other
replicas go through :func:`apply`. Both run the same registered handler, so a device and the
hub compute identical state. Applying an event whose id is already stored changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec
import uuid6

from kiosk.engine.clock import iso
from kiosk.engine.hlc import Timestamp
from kiosk.engine.store import ID_RE, Store

_LOGGER = logging.getLogger(__name__)

MAX_PAYLOAD_BYTES = 64 * 1024

_json_encode = msgspec.json.Encoder().encode
_json_decode = msgspec.json.Decoder().decode


class EventError(ValueError):
    """An event is malformed, unknown or of an unsupported version."""


class PayloadTooLarge(EventError):
    """The change is too large for one event (the sync's message limit)."""


@dataclass(frozen=True)
class Event:
    id: str
    device: str
    hlc: str
    type: str
    v: int
    payload: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""
    seq: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "device": self.device,
            "hlc": self.hlc,
            "type": self.type,
            "v": self.v,
            "payload": self.payload,
            "created_at": self.created_at,
            "seq": self.seq,
        }

    @classmethod
    def from_row(cls, row: dict[str, Any] | tuple) -> "Event":
        if not isinstance(row, dict):
            row = dict(zip(_COLUMNS, row))
        return cls(
            id=row["id"],
            device=row["device"],
            hlc=row["hlc"],
            type=row["type"],
            v=row["v"],
            payload=_json_decode(row["payload"]),
            created_at=row["created_at"],
            seq=row.get("seq"),
        )


_COLUMNS = ("id", "device", "hlc", "type", "v", "payload", "created_at", "seq")

Handler = Callable[[Store, Event], None]


@dataclass(frozen=True)
class _Registration:
    handler: Handler
    versions: frozenset[int]


_HANDLERS: dict[str, _Registration] = {}


def handler(event_type: str, versions: Iterable[int] = (1,)) -> Callable[[Handler], Handler]:
    """Register the function that applies events of ``event_type`` to the projections.

    Handlers must be deterministic and commutative where the merge rules require it (LWW by
    HLC, ledger union): they see only the store and the event, never the wall clock.
    """

    def register(fn: Handler) -> Handler:
        if event_type in _HANDLERS:
            raise ValueError(f"two handlers for event type {event_type}")
        _HANDLERS[event_type] = _Registration(fn, frozenset(versions))
        return fn

    return register


def known_types() -> list[str]:
    return sorted(_HANDLERS)


def new_id() -> str:
    """Return a new UUIDv7 string: unique, and sortable by creation time."""
    return str(uuid6.uuid7())


def _insert(store: Store, ev: Event, payload_json: str, acked: int) -> None:
    # the raw connection: always inside a transaction, and this runs once per event
    store.db.conn.execute(
        "INSERT INTO events (id, device, hlc, type, v, payload, created_at, seq, acked)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [ev.id, ev.device, ev.hlc, ev.type, ev.v, payload_json, ev.created_at, ev.seq, acked],
    )


def emit(store: Store, event_type: str, payload: dict[str, Any], v: int = 1) -> Event:
    """Record a local change: write the event and apply it, atomically."""
    reg = _HANDLERS.get(event_type)
    if reg is None or v not in reg.versions:
        raise EventError(f"no handler for {event_type} v{v}")
    raw = _json_encode(payload)
    if len(raw) > MAX_PAYLOAD_BYTES:  # bytes, as the sync's message limit counts them
        raise PayloadTooLarge(f"{event_type} payload is larger than {MAX_PAYLOAD_BYTES} bytes")
    payload_json = raw.decode()
    with store.transaction():
        ev = Event(
            id=new_id(),
            device=store.identity.device_id,
            hlc=store.hlc.now(),
            type=event_type,
            v=v,
            payload=payload,
            created_at=iso(store.clock()),
        )
        _insert(store, ev, payload_json, acked=0)
        reg.handler(store, ev)
    return ev


def validate(ev: Event) -> None:
    """Check an incoming event's envelope; raise EventError with a clear reason."""
    if not isinstance(ev.id, str) or len(ev.id) != 36:
        raise EventError(f"bad event id {ev.id!r}")
    if not isinstance(ev.device, str) or not ID_RE.match(ev.device):
        raise EventError(f"bad device id {ev.device!r}")
    try:
        Timestamp.parse(ev.hlc)
    except (ValueError, AttributeError) as exc:
        raise EventError(str(exc)) from exc
    reg = _HANDLERS.get(ev.type)
    if reg is None:
        raise EventError(f"unknown event type {ev.type!r}")
    if ev.v not in reg.versions:
        raise EventError(f"{ev.type} v{ev.v} is not supported (supported: {sorted(reg.versions)})")
    if not isinstance(ev.payload, dict):
        raise EventError("payload must be an object")


def apply(store: Store, ev: Event) -> bool:
    """Apply an event made elsewhere; return False when it was already applied.

    The event row and the projection change commit together, so a crash between them is
    impossible and a re-delivery is recognised by its id.
    """
    with store.transaction():
        return apply_in_batch(store, ev)


def apply_in_batch(store: Store, ev: Event) -> bool:
    """:func:`apply` without a savepoint of its own, for loops over many events.

    The caller holds a transaction (or savepoint) around the whole batch and, when this
    raises, rolls the batch back and applies it again event by event with :func:`apply`:
    a failed event may have written part of its change.
    """
    if not store.in_transaction:
        raise RuntimeError("apply_in_batch must run inside a transaction")
    validate(ev)
    raw = _json_encode(ev.payload)
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise PayloadTooLarge(f"{ev.type} payload is larger than {MAX_PAYLOAD_BYTES} bytes")
    payload_json = raw.decode()
    row = store.db.conn.execute("SELECT seq FROM events WHERE id = ?", [ev.id]).fetchone()
    if row is not None:
        if ev.seq is not None and row[0] is None:
            set_seq(store, ev.id, ev.seq)
        return False
    try:
        store.hlc.observe(ev.hlc)
    except ValueError as exc:  # a device clock far in the future must not poison ours
        raise EventError(str(exc)) from exc
    # Events that come back from the hub are acknowledged by definition.
    _insert(store, ev, payload_json, acked=1)
    _HANDLERS[ev.type].handler(store, ev)
    return True


def set_seq(store: Store, event_id: str, seq: int) -> None:
    store.db.execute("UPDATE events SET seq = ?, acked = 1 WHERE id = ?", [seq, event_id])


def get(store: Store, event_id: str) -> Event | None:
    row = store.db.execute(
        f"SELECT {', '.join(_COLUMNS)} FROM events WHERE id = ?", [event_id]
    ).fetchone()
    return Event.from_row(row) if row else None


def outbox(store: Store, limit: int = 500) -> list[Event]:
    """Return this device's events the hub has not acknowledged yet, oldest first."""
    rows = store.db.execute(
        f"SELECT {', '.join(_COLUMNS)} FROM events"
        " WHERE seq IS NULL AND device = ? AND acked = 0 ORDER BY id LIMIT ?",
        [store.identity.device_id, limit],
    ).fetchall()
    return [Event.from_row(r) for r in rows]


def outbox_size(store: Store) -> int:
    return store.db.execute(
        "SELECT count(*) FROM events WHERE seq IS NULL AND device = ? AND acked = 0",
        [store.identity.device_id],
    ).fetchone()[0]


def mark_acked(store: Store, acks: Iterable[tuple[str, int | None]]) -> None:
    """Record the hub's acknowledgements ``(event id, store sequence)``."""
    with store.transaction():
        for event_id, seq in acks:
            if seq is None:
                store.db.execute("UPDATE events SET acked = 1 WHERE id = ?", [event_id])
            else:
                set_seq(store, event_id, seq)


def history(store: Store, event_type: str | None = None, limit: int = 100) -> list[Event]:
    where, args = ("WHERE type = ?", [event_type]) if event_type else ("", [])
    rows = store.db.execute(
        f"SELECT {', '.join(_COLUMNS)} FROM events {where} ORDER BY hlc DESC LIMIT ?",
        [*args, limit],
    ).fetchall()
    return [Event.from_row(r) for r in rows]
