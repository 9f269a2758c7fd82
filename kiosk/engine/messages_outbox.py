"""Outgoing messages (SMS, e-mail) queued by the engine for the messaging service to send.

The engine never talks to an SMS gateway or a mail server: it records ``message.queued``
events (for example the VIP card alert to a manager's phone) in the same transaction as the
sale that caused them. The messaging issue's sender reads :func:`pending` and reports back
with :func:`mark_sent` / :func:`mark_failed`, which are events too, so the hub knows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlite_utils import Migrations

from kiosk.engine import events, lww
from kiosk.engine.store import Store, register_migrations
from kiosk.i18n import _

_LOGGER = logging.getLogger(__name__)

migrations = register_migrations(Migrations("kiosk.messages_outbox"))

CHANNELS = ("sms", "email")
SMS_MAX_LEN = 160


@migrations()
def m001_messages(db) -> None:
    db.execute(
        """
        CREATE TABLE messages_outbox (
            id TEXT PRIMARY KEY,      -- the message.queued event id
            channel TEXT,             -- nullable: a status may arrive before its message
            recipient TEXT,
            subject TEXT,
            body TEXT,
            reason TEXT,              -- e.g. vip_alert
            ref TEXT,                 -- what caused it (sale id, card code)
            queued_at TEXT,
            status TEXT,              -- queued, sent, failed (LWW by HLC)
            detail TEXT,
            _clock TEXT
        )
        """
    )
    db.execute("CREATE INDEX messages_outbox_status ON messages_outbox(status)")


class MessageError(ValueError):
    pass


@dataclass(frozen=True)
class Message:
    id: str
    channel: str
    recipient: str
    subject: str | None
    body: str
    reason: str | None
    ref: str | None
    queued_at: str
    status: str


def queue(
    store: Store, channel: str, recipient: str, body: str, *, subject: str | None = None,
    reason: str | None = None, ref: str | None = None,
) -> str:  # fmt: skip
    """Queue one message; returns its id (the event id)."""
    if channel not in CHANNELS:
        raise MessageError(_("Unknown message channel."))
    recipient = recipient.strip()
    if not recipient:
        raise MessageError(_("A message needs a recipient."))
    if channel == "sms" and len(body) > SMS_MAX_LEN:
        body = body[: SMS_MAX_LEN - 1] + "…"
    ev = events.emit(
        store,
        "message.queued",
        {"channel": channel, "recipient": recipient, "subject": subject, "body": body,
         "reason": reason, "ref": ref},
    )  # fmt: skip
    return ev.id


@events.handler("message.queued")
def _apply_queued(store: Store, ev: events.Event) -> None:
    p = ev.payload
    lww.upsert(
        store.db, "messages_outbox", {"id": ev.id},
        {"channel": p["channel"], "recipient": p["recipient"], "subject": p.get("subject"),
         "body": p["body"], "reason": p.get("reason"), "ref": p.get("ref"),
         "queued_at": ev.created_at, "status": "queued"},
        ev.hlc,
    )  # fmt: skip


def _set_status(store: Store, message_id: str, status: str, detail: str = "") -> None:
    if not store.db.execute("SELECT 1 FROM messages_outbox WHERE id = ?", [message_id]).fetchone():
        raise MessageError(_("Unknown message."))
    events.emit(store, "message.status", {"id": message_id, "status": status,
                                          "detail": detail[:300]})  # fmt: skip


def mark_sent(store: Store, message_id: str) -> None:
    _set_status(store, message_id, "sent")


def mark_failed(store: Store, message_id: str, detail: str) -> None:
    _set_status(store, message_id, "failed", detail)


@events.handler("message.status")
def _apply_status(store: Store, ev: events.Event) -> None:
    p = ev.payload
    lww.upsert(
        store.db, "messages_outbox", {"id": p["id"]},
        {"status": p["status"], "detail": p.get("detail")}, ev.hlc,
    )  # fmt: skip


def pending(store: Store, channel: str | None = None, limit: int = 100) -> list[Message]:
    """Messages still to be sent, oldest first."""
    where, args = ("AND channel = ?", [channel]) if channel else ("", [])
    return [
        Message(*row)
        for row in store.db.execute(
            "SELECT id, channel, recipient, subject, body, reason, ref, queued_at, status"
            f" FROM messages_outbox WHERE status = 'queued' {where} ORDER BY id LIMIT ?",
            [*args, limit],
        )
    ]


def mark_bounced(store: Store, message_id: str, detail: str) -> None:
    """The receiving side refused for good (unknown mailbox, invalid number): no retry."""
    _set_status(store, message_id, "bounced", detail)
