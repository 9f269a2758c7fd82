"""Directives to the tills (Fastmag "Richtlinien") and the nudge when a sale has no customer.

A directive is a short message from the owner that scrolls at the till: for every store, one
store, or one cashier, within a validity period, with a priority. It is a record (LWW) so the
owner can edit or withdraw it from the dashboard; tills read :func:`current`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlite_utils import Migrations

from kiosk.engine import events, lww, settings
from kiosk.engine.clock import iso, parse_iso
from kiosk.engine.store import Store, register_migrations
from kiosk.i18n import N_, _

migrations = register_migrations(Migrations("kiosk.directives"))

settings.define("till.nudge_no_customer", True, settings.check_bool,
                N_("Ask the cashier to attach or create a customer before payment"))  # fmt: skip
settings.define("till.nudge_text", "Kundendatensatz anlegen?", settings.check_text(80),
                N_("Text of that question"))  # fmt: skip


@migrations()
def m001_directives(db) -> None:
    db.execute(
        "CREATE TABLE directives (id TEXT PRIMARY KEY, text TEXT, store_id TEXT, cashier TEXT,"
        " valid_from TEXT, valid_until TEXT, priority INTEGER, withdrawn INTEGER,"
        " saved_at TEXT, _clock TEXT)"
    )


class DirectiveError(ValueError):
    pass


@dataclass(frozen=True)
class Directive:
    id: str
    text: str
    store_id: str | None
    cashier: str | None
    valid_from: str
    valid_until: str | None
    priority: int


def publish(store: Store, text: str, *, store_id: str | None = None, cashier: str | None = None,
            valid_from: dt.datetime | None = None, valid_until: dt.datetime | None = None,
            priority: int = 0, directive_id: str | None = None) -> str:  # fmt: skip
    text = " ".join((text or "").split())
    if not text or len(text) > 300:
        raise DirectiveError(_("Enter a message of at most 300 characters."))
    start = valid_from or store.clock()
    if valid_until is not None and valid_until <= start:
        raise DirectiveError(_("The end lies before the start."))
    if not 0 <= priority <= 9:
        raise DirectiveError(_("The priority lies between 0 and 9."))
    did = directive_id or events.new_id()
    events.emit(store, "directive.saved", {"id": did, "fields": {
        "text": text, "store_id": store_id or None, "cashier": cashier or None,
        "valid_from": iso(start), "valid_until": iso(valid_until) if valid_until else None,
        "priority": priority, "withdrawn": 0}})
    return did


def withdraw(store: Store, directive_id: str) -> None:
    if not store.db.execute("SELECT 1 FROM directives WHERE id = ?", [directive_id]).fetchone():
        raise DirectiveError(_("Unknown directive."))
    events.emit(store, "directive.saved", {"id": directive_id, "fields": {"withdrawn": 1}})


@events.handler("directive.saved")
def _apply_saved(store: Store, ev: events.Event) -> None:
    lww.upsert(store.db, "directives", {"id": ev.payload["id"]},
               {**ev.payload["fields"], "saved_at": ev.hlc}, ev.hlc)  # fmt: skip


def current(store: Store, *, store_id: str, cashier: str | None = None,
            now: dt.datetime | None = None) -> list[Directive]:  # fmt: skip
    """What scrolls at this till now: highest priority first, then newest."""
    now = now or store.clock()
    rows = store.db.execute(
        "SELECT id, text, store_id, cashier, valid_from, valid_until, priority FROM directives"
        " WHERE coalesce(withdrawn, 0) = 0 AND text IS NOT NULL"
        " AND (store_id IS NULL OR store_id = ?) AND (cashier IS NULL OR cashier = ?)"
        " ORDER BY priority DESC, saved_at DESC",
        [store_id, cashier or ""],
    ).fetchall()
    return [Directive(*r) for r in rows
            if parse_iso(r[4]) <= now and (r[5] is None or now < parse_iso(r[5]))]  # fmt: skip


def all_directives(store: Store) -> list[dict]:
    return list(store.db.query("SELECT * FROM directives ORDER BY saved_at DESC"))


def nudge(store: Store, customer_attached: bool) -> str | None:
    """The question shown before payment when the sale has no customer (or None)."""
    if customer_attached or not settings.get(store, "till.nudge_no_customer"):
        return None
    return settings.get(store, "till.nudge_text")
