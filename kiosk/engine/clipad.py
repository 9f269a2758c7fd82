"""Clipad sessions: the customer types their own details on a counter tablet.

The cashier presses "Clipad" for the sale's customer (new or existing). That is a
``clipad.requested`` event naming the till, the tablet and the customer, with *only* the fields
the cashier chose to send as a prefill: the tablet never reads the customer table for display.
When the customer validates, the tablet writes the record (``customers.update`` or ``create``,
source "clipad", consent with its date) and ``clipad.submitted`` in one transaction; the till
sees the session turn "submitted" and attaches the customer to its sale. Cancel and idle
timeout end the session with nothing written. Sessions travel as events through the hub, so
this works the same over MQTT as in one database.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import msgspec
from sqlite_utils import Migrations

from kiosk.engine import customers, events, lww
from kiosk.engine.clock import parse_iso
from kiosk.engine.store import Store, register_migrations
from kiosk.i18n import _

migrations = register_migrations(Migrations("kiosk.clipad"))

SESSION_TTL = dt.timedelta(minutes=10)  # a request nobody answers expires
PREFILL_FIELDS = ("gender", "title", "first_name", "last_name", "email", "mobile", "phone",
                  "street", "house_no", "postcode", "city", "country", "birth_date")  # fmt: skip


@migrations()
def m001_sessions(db) -> None:
    db.execute(
        "CREATE TABLE clipad_sessions (id TEXT PRIMARY KEY, till TEXT, clipad TEXT,"
        " customer_id TEXT, draft_id TEXT, prefill TEXT, status TEXT, requested_at TEXT,"
        " finished_at TEXT, _clock TEXT)"
    )


class ClipadError(ValueError):
    pass


@dataclass(frozen=True)
class Session:
    id: str
    till: str
    clipad: str
    customer_id: str | None
    draft_id: str | None
    prefill: dict[str, Any]
    status: str  # requested, submitted, cancelled
    requested_at: str


def request(store: Store, clipad: str, *, customer_id: str | None = None,
            draft_id: str | None = None, prefill: dict[str, Any] | None = None) -> str:  # fmt: skip
    """At the till: send the form to ``clipad``; returns the session id."""
    if customer_id:
        customer_id = customers.get(store, customer_id)["id"]
    sent = {k: v for k, v in (prefill or {}).items() if k in PREFILL_FIELDS and v not in (None, "")}
    sid = events.new_id()
    events.emit(store, "clipad.requested", {"id": sid, "fields": {
        "till": store.identity.device_id, "clipad": clipad, "customer_id": customer_id,
        "draft_id": draft_id, "prefill": msgspec.json.encode(sent).decode(),
        "status": "requested", "requested_at": None}})
    return sid


@events.handler("clipad.requested")
def _apply_requested(store: Store, ev: events.Event) -> None:
    fields = {**ev.payload["fields"], "requested_at": ev.created_at}
    lww.upsert(store.db, "clipad_sessions", {"id": ev.payload["id"]}, fields, ev.hlc)


@events.handler("clipad.finished")
def _apply_finished(store: Store, ev: events.Event) -> None:
    p = ev.payload
    fields = {"status": p["status"], "finished_at": ev.created_at}
    if p.get("customer_id"):
        fields["customer_id"] = p["customer_id"]
    lww.upsert(store.db, "clipad_sessions", {"id": p["id"]}, fields, ev.hlc)


def _session(row: dict[str, Any]) -> Session:
    return Session(row["id"], row["till"], row["clipad"], row["customer_id"], row["draft_id"],
                   msgspec.json.decode(row["prefill"] or "{}"), row["status"],
                   row["requested_at"])  # fmt: skip


def get(store: Store, session_id: str) -> Session:
    rows = list(store.db.query("SELECT * FROM clipad_sessions WHERE id = ?", [session_id]))
    if not rows or rows[0]["till"] is None:
        raise ClipadError(_("Unknown clipad session."))
    return _session(rows[0])


def waiting(store: Store, clipad: str, now: dt.datetime | None = None) -> Session | None:
    """On the tablet: the newest open request for it (older open ones are superseded)."""
    now = now or store.clock()
    rows = list(store.db.query(
        "SELECT * FROM clipad_sessions WHERE clipad = ? AND status = 'requested'"
        " ORDER BY requested_at DESC LIMIT 1", [clipad]))  # fmt: skip
    if not rows or now - parse_iso(rows[0]["requested_at"]) > SESSION_TTL:
        return None
    return _session(rows[0])


def submit(store: Store, session_id: str, data: dict[str, Any]) -> dict[str, Any]:
    """On the tablet: validate and store the customer's own entries; returns the record.

    ``data`` holds customer fields (consent booleans included) and ``answers``. Raises
    customers.ValidationError with per-field messages; nothing is written then.
    """
    session = get(store, session_id)
    if session.status != "requested":
        raise ClipadError(_("This form was closed already."))
    with store.transaction():
        if session.customer_id:
            record = customers.update(store, session.customer_id, data, source="clipad", force=True)
        else:
            record = customers.create(store, data, source="clipad", force=True)
        events.emit(store, "clipad.finished", {"id": session_id, "status": "submitted",
                                               "customer_id": record["id"]})  # fmt: skip
    return record


def cancel(store: Store, session_id: str) -> None:
    """Cancel or idle timeout, on either side: nothing of the form is kept."""
    session = get(store, session_id)
    if session.status == "requested":
        events.emit(store, "clipad.finished", {"id": session_id, "status": "cancelled"})


def finished_for_till(store: Store, till: str, since_id: str = "") -> list[Session]:
    """At the till: sessions of this till that were submitted (to attach the customer)."""
    return [_session(r) for r in store.db.query(
        "SELECT * FROM clipad_sessions WHERE till = ? AND status = 'submitted' AND id > ?"
        " ORDER BY id", [till, since_id])]  # fmt: skip
