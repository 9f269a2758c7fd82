"""Drain the engine's message outbox: consent check, send, record the status, retry later.

Runs on the hub (the store's one sender). Attempts and channel credentials are hub-local
tables (not replicated); statuses are events (``message.status``) so devices and the dashboard
see queued → sent / failed / bounced. A message is checked for consent again right before it
goes out: a withdrawal that arrived after queueing wins.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlite_utils import Migrations

from kiosk.engine import messages_outbox, messaging, replication, secretbox, settings
from kiosk.engine.clock import iso, parse_iso
from kiosk.engine.store import Store, register_migrations
from storehub.messaging.channels import Channel, Outgoing, SendError

_LOGGER = logging.getLogger(__name__)

migrations = register_migrations(Migrations("storehub.messaging"))
replication.local_table("message_attempts")
replication.local_table("messaging_credentials")

MAX_ATTEMPTS = 8
BACKOFF_S = 30  # 30 s, 60 s, 2 min … capped at MAX_BACKOFF_S
MAX_BACKOFF_S = 3600


@migrations()
def m001_attempts(db) -> None:
    db.execute(
        "CREATE TABLE message_attempts (message_id TEXT PRIMARY KEY, attempts INTEGER NOT NULL,"
        " next_try_at TEXT NOT NULL, last_error TEXT)"
    )
    db.execute("CREATE TABLE messaging_credentials (channel TEXT PRIMARY KEY, token TEXT NOT NULL)")


def save_credentials(store: Store, channel: str, values: dict) -> None:
    """Keep a channel's settings (passwords, API tokens) encrypted with the store key."""
    token = secretbox.encrypt(store.secret_key, json.dumps(values), purpose="messaging")
    with store.transaction():
        store.db.execute("INSERT OR REPLACE INTO messaging_credentials VALUES (?, ?)",
                         [channel, token])  # fmt: skip


def load_credentials(store: Store, channel: str) -> dict | None:
    row = store.db.execute("SELECT token FROM messaging_credentials WHERE channel = ?",
                           [channel]).fetchone()  # fmt: skip
    return json.loads(secretbox.decrypt(store.secret_key, row[0], "messaging")) if row else None


@dataclass
class Report:
    sent: int = 0
    failed: int = 0
    bounced: int = 0
    refused: int = 0  # consent withdrawn before sending
    deferred: int = 0


Attachments = Callable[[Store, messages_outbox.Message], list[tuple[str, bytes, str]]]


def receipt_pdf(store: Store, msg: messages_outbox.Message) -> list[tuple[str, bytes, str]]:
    """The PDF receipt for an e-receipt message (the default attachment rule)."""
    sale_id = messaging.receipt_sale_id(messaging.addressed(store, msg.id))
    if not sale_id:
        return []
    from kiosk.engine import receipt

    model = receipt.build(store, sale_id, medium="pdf")
    return [(f"Bon-{model.receipt_no}.pdf", receipt.pdf_bytes(model), "application/pdf")]


class Dispatcher:
    def __init__(self, store: Store, channels: dict[str, Channel], *,
                 attachments: Attachments | None = None,
                 clock: Callable[[], dt.datetime] | None = None) -> None:  # fmt: skip
        self.store = store
        self.channels = channels
        self.attachments = attachments or receipt_pdf
        self.clock = clock or store.clock

    def _due(self, message_id: str, now: dt.datetime) -> bool:
        row = self.store.db.execute(
            "SELECT next_try_at FROM message_attempts WHERE message_id = ?", [message_id]
        ).fetchone()
        return row is None or parse_iso(row[0]) <= now

    def _retry_later(self, message_id: str, error: str, now: dt.datetime) -> int:
        row = self.store.db.execute(
            "SELECT attempts FROM message_attempts WHERE message_id = ?", [message_id]
        ).fetchone()
        attempts = (row[0] if row else 0) + 1
        delay = min(BACKOFF_S * 2 ** (attempts - 1), MAX_BACKOFF_S)
        with self.store.transaction():
            self.store.db.execute(
                "INSERT OR REPLACE INTO message_attempts VALUES (?, ?, ?, ?)",
                [message_id, attempts, iso(now + dt.timedelta(seconds=delay)), error[:300]],
            )
        return attempts

    def _outgoing(self, msg: messages_outbox.Message, meta: dict | None) -> Outgoing:
        headers = {}
        if meta and meta["customer_id"] and messaging.is_marketing(meta["purpose"]):
            url_base = settings.get(self.store, "messaging.unsubscribe_url")
            channel = meta.get("channel") or msg.channel
            token = messaging.unsubscribe_token(self.store, meta["customer_id"], channel)
            if url_base:
                link = f"{url_base.rstrip('/')}/{token}"
                headers["List-Unsubscribe"] = f"<{link}>"
                headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        files = self.attachments(self.store, msg) if self.attachments else []
        return Outgoing(msg.recipient, msg.body, msg.subject, attachments=files, headers=headers)

    def run_once(self, limit: int = 500) -> Report:
        """Send what is due now; returns counts. Never raises for one bad message."""
        report = Report()
        now = self.clock()
        for msg in messages_outbox.pending(self.store, limit=limit):
            if not self._due(msg.id, now):
                report.deferred += 1
                continue
            meta = messaging.addressed(self.store, msg.id)
            channel_name = (meta or {}).get("channel") or msg.channel
            if meta and not messaging.may_send(self.store, meta["customer_id"], channel_name,
                                               meta["purpose"]):  # fmt: skip
                messages_outbox.mark_failed(self.store, msg.id, "consent withdrawn")
                report.refused += 1
                continue
            channel = self.channels.get(channel_name)
            if channel is None:
                report.deferred += 1  # not configured yet: keep it queued
                continue
            try:
                provider_id = channel.send(self._outgoing(msg, meta))
            except SendError as exc:
                if exc.permanent:
                    messages_outbox.mark_bounced(self.store, msg.id, str(exc))
                    report.bounced += 1
                elif self._retry_later(msg.id, str(exc), now) >= MAX_ATTEMPTS:
                    messages_outbox.mark_failed(self.store, msg.id, str(exc))
                    report.failed += 1
                else:
                    report.deferred += 1
                _LOGGER.warning("message %s via %s: %s", msg.id, channel_name, exc)
                continue
            messages_outbox.mark_sent(self.store, msg.id)
            _LOGGER.debug("message %s sent via %s (%s)", msg.id, channel_name, provider_id)
            report.sent += 1
        return report
