"""Messages to customers: consent, audiences, campaigns, templates, unsubscribe, automations.

Sending is not done here (the hub's ``storehub.messaging`` sends over SMTP, a GSM modem, an
SMS gateway or WhatsApp). This module decides *who may get what*: every message to a
customer is queued through :func:`send_to_customer`, which

* refuses a marketing message without the customer's consent for that channel
  (transactional messages such as a receipt or "repair ready" need none);
* records an ``message.addressed`` event beside the outbox's ``message.queued`` with the
  customer, purpose and an idempotency *key*, so an automation or campaign that runs twice
  (a restart, a second hub) never queues the same message twice.

The sender checks consent again just before sending (:func:`may_send`): a withdrawal that
arrives after queueing wins.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import urllib.parse
from dataclasses import dataclass
from typing import Any

import msgspec
import phonenumbers
from sqlite_utils import Migrations

from kiosk.engine import customers, events, lww, messages_outbox, settings
from kiosk.engine.clock import local_date
from kiosk.engine.store import Store, register_migrations
from kiosk.i18n import N_, _

migrations = register_migrations(Migrations("kiosk.messaging"))

CHANNELS = ("email", "sms", "whatsapp")
CONSENT_OF = {"email": "email_consent", "sms": "sms_consent", "whatsapp": "sms_consent"}
TRANSACTIONAL = frozenset({"receipt", "repair_ready", "vip_alert", "credit_note",
                           "giftcard_reminder", "order_ready"})  # fmt: skip
MARKETING = frozenset({"campaign", "birthday", "promotion", "gift_voucher", "loyalty_voucher",
                       "signup_voucher", "single"})  # fmt: skip
SMS_CAMPAIGN_MAX = 150
MAX_FILTERS = 5
REMINDER_MODES = ("email", "sms", "email_then_sms", "sms_then_email", "both")

settings.define("messaging.sender_name", "", settings.check_text(11),
                N_("Sender name shown on SMS (at most 11 characters)"))  # fmt: skip
settings.define("messaging.email_from", "", settings.check_text(254),
                N_("Sender address of e-mails"))  # fmt: skip
settings.define("messaging.unsubscribe_url", "", settings.check_text(300),
                N_("Web address of the hub's unsubscribe page"))  # fmt: skip
settings.define("ereceipt.mode", "suggest", settings.check_choice("never", "suggest", "always"),
                N_("E-receipts: never, suggest at the till, or always when an e-mail is known"))
settings.define("ereceipt.subject", "Ihr Kassenbon", settings.check_text(120),
                N_("Subject of e-receipt mails"))  # fmt: skip
settings.define("ereceipt.body", "Guten Tag {first_name} {last_name},\n\nanbei Ihr Kassenbon.",
                settings.check_text(2000), N_("Body of e-receipt mails"))  # fmt: skip
settings.define("ereceipt.document_types", ["sale", "return"],
                lambda v: [settings.check_choice("sale", "return", "giftcard", "deposit")(x)
                           for x in (v if isinstance(v, list) else [v])],
                N_("Document types that are sent as e-receipts"))  # fmt: skip
settings.define("automation.birthday", {"active": False, "channel": "email", "hour": 9,
                                         "giftcard_cents": 0, "giftcard_days": 30,
                                         "text": "Alles Gute zum Geburtstag, {first_name}!"},
                lambda v: _check_birthday(v), N_("Birthday greetings"))  # fmt: skip
settings.define("automation.giftcard_reminder", {"active": False, "mode": "email",
                                                  "days_before": 14,
                                                  "text": "Ihr Gutschein {code} verfällt am {date}."},
                lambda v: _check_reminder(v), N_("Reminder for gift cards about to expire"))


class MessagingError(ValueError):
    pass




def _check_birthday(value: Any) -> dict:
    if not isinstance(value, dict):
        raise settings.SettingError(_("Expected a table of settings."))
    out = dict(value)
    if out.get("channel") not in ("email", "sms"):
        raise settings.SettingError(_("Choose e-mail or SMS."))
    if not (0 <= int(out.get("hour", 9)) <= 23):
        raise settings.SettingError(_("The send hour lies between 0 and 23."))
    if int(out.get("giftcard_cents", 0)) < 0 or int(out.get("giftcard_days", 30)) < 1:
        raise settings.SettingError(_("Enter a gift card amount of 0 or more and a validity of at least one day."))
    return out


def _check_table(value: Any) -> dict:
    if not isinstance(value, dict):
        raise settings.SettingError(_("Expected a table of settings."))
    return dict(value)


def _check_reminder(value: Any) -> dict:
    if not isinstance(value, dict) or value.get("mode") not in REMINDER_MODES:
        raise settings.SettingError(_("Choose a reminder mode."))
    if not (1 <= int(value.get("days_before", 14)) <= 365):
        raise settings.SettingError(_("Remind 1 to 365 days before."))
    return dict(value)


@migrations()
def m001_addressed(db) -> None:
    db.execute(
        """
        CREATE TABLE message_addressed (
            message_id TEXT PRIMARY KEY,
            customer_id TEXT,
            purpose TEXT NOT NULL,
            key TEXT,
            campaign_id TEXT,
            channel TEXT,
            _clock TEXT
        )
        """
    )
    db.execute("CREATE INDEX message_addressed_key ON message_addressed(key)")
    db.execute("CREATE INDEX message_addressed_campaign ON message_addressed(campaign_id)")
    db.execute(
        """
        CREATE TABLE campaigns (
            id TEXT PRIMARY KEY, name TEXT, channel TEXT, filters TEXT, subject TEXT,
            body TEXT, created_at TEXT, sent_at TEXT, _clock TEXT
        )
        """
    )


# -- consent ----------------------------------------------------------------------------------
def is_marketing(purpose: str) -> bool:
    if purpose in TRANSACTIONAL:
        return False
    if purpose in MARKETING:
        return True
    raise MessagingError(_("Unknown message purpose {purpose!r}.").format(purpose=purpose))


def recipient_of(record: dict[str, Any], channel: str) -> str | None:
    if channel == "email":
        return record.get("email")
    return record.get("mobile") or record.get("phone")


def may_send(store: Store, customer_id: str | None, channel: str, purpose: str) -> bool:
    """True when this purpose may reach this customer on this channel now."""
    if not is_marketing(purpose):
        return True
    if customer_id is None:
        return False
    try:
        record = customers.get(store, customer_id)
    except customers.NotFound:  # erased or unknown: never advertise
        return False
    return bool(record.get(CONSENT_OF[channel]))


# -- templates --------------------------------------------------------------------------------
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


def render(template: str, values: dict[str, Any]) -> str:
    """Fill ``{first_name}``-style placeholders; unknown ones become empty (no format())."""
    return _PLACEHOLDER.sub(lambda m: str(values.get(m.group(1)) or ""), template).strip()


def placeholder_values(store: Store, record: dict[str, Any], extra: dict[str, Any] | None = None) -> dict:
    return {**{k: v for k, v in record.items() if isinstance(v, (str, int))},
            "shop": settings.get(store, "shop.name"), **(extra or {})}  # fmt: skip


def message_text(store: Store, record: dict[str, Any], channel: str, purpose: str, body: str,
                 values: dict[str, Any] | None = None, *, cut: bool = True) -> str:  # fmt: skip
    """The text a customer gets: placeholders filled; a marketing SMS/WhatsApp carries the
    shop's sender name in front and is cut to 150 characters (``cut=False`` leaves it long so
    an editor can show by how much)."""
    text = render(body, placeholder_values(store, record, values))
    if channel != "email" and is_marketing(purpose):
        sender = settings.get(store, "messaging.sender_name")
        if sender and not text.startswith(sender):
            text = f"{sender}: {text}"
        if cut and len(text) > SMS_CAMPAIGN_MAX:
            text = text[: SMS_CAMPAIGN_MAX - 1] + "…"
    return text


# -- queueing ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Queued:
    message_id: str | None  # None: refused (no consent, no address) or queued before
    reason: str = ""


def already_queued(store: Store, key: str) -> bool:
    return bool(store.db.execute("SELECT 1 FROM message_addressed WHERE key = ?", [key]).fetchone())


def send_to_customer(
    store: Store, customer_id: str, channel: str, purpose: str, body: str, *,
    subject: str | None = None, key: str | None = None, campaign_id: str | None = None,
    values: dict[str, Any] | None = None,
) -> Queued:  # fmt: skip
    """Queue one message to a customer if consent and address allow; idempotent by ``key``."""
    if channel not in CHANNELS:
        raise MessagingError(_("Unknown message channel."))
    marketing = is_marketing(purpose)
    with store.transaction():
        if key and already_queued(store, key):
            return Queued(None, "duplicate")
        record = customers.get(store, customer_id)
        if marketing and not record.get(CONSENT_OF[channel]):
            return Queued(None, "no_consent")
        recipient = recipient_of(record, channel)
        if not recipient:
            return Queued(None, "no_address")
        text = message_text(store, record, channel, purpose, body, values)
        message_id = messages_outbox.queue(
            store, "sms" if channel == "whatsapp" else channel, recipient, text,
            subject=render(subject, placeholder_values(store, record, values)) if subject else None,
            reason=purpose, ref=key,
        )  # fmt: skip
        events.emit(store, "message.addressed",
                    {"message_id": message_id, "customer_id": record["id"], "purpose": purpose,
                     "key": key, "campaign_id": campaign_id, "channel": channel})  # fmt: skip
    return Queued(message_id)


@events.handler("message.addressed")
def _apply_addressed(store: Store, ev: events.Event) -> None:
    p = ev.payload
    lww.upsert(store.db, "message_addressed", {"message_id": p["message_id"]},
               {"customer_id": p.get("customer_id"), "purpose": p["purpose"], "key": p.get("key"),
                "campaign_id": p.get("campaign_id"), "channel": p.get("channel")}, ev.hlc)  # fmt: skip


def addressed(store: Store, message_id: str) -> dict[str, Any] | None:
    rows = list(store.db.query("SELECT * FROM message_addressed WHERE message_id = ?", [message_id]))
    return rows[0] if rows else None


# -- audiences and campaigns ------------------------------------------------------------------
OPERATORS = {
    "=": "{col} = ?", "!=": "coalesce({col}, '') != ?", "contains": "{col} LIKE '%' || ? || '%'",
    "starts": "{col} LIKE ? || '%'", "<": "{col} < ?", ">": "{col} > ?", "<=": "{col} <= ?",
    ">=": "{col} >= ?", "empty": "coalesce({col}, '') = ''", "not_empty": "coalesce({col}, '') != ''",
}  # fmt: skip
FILTER_FIELDS = ("gender", "first_name", "last_name", "company", "birth_date", "email",
                 "mobile", "postcode", "city", "country", "language", "provenance", "grouping",
                 "created_at", "home_store")  # fmt: skip


@dataclass(frozen=True)
class Filter:
    field: str  # one of FILTER_FIELDS, or "group" (name of a customer group), or "birth_month"
    op: str
    value: str = ""


def _where(filters: list[Filter]) -> tuple[str, list[Any]]:
    if len(filters) > MAX_FILTERS:
        raise MessagingError(_("At most {n} filter rows.").format(n=MAX_FILTERS))
    clauses, args = [], []
    for f in filters:
        if f.op not in OPERATORS:
            raise MessagingError(_("Unknown operator {op!r}.").format(op=f.op))
        if f.field == "group":
            if f.op not in ("=", "!="):
                raise MessagingError(_("A group is compared with = or != only."))
            sub = ("c.id {neg} IN (SELECT m.customer_id FROM customer_group_members m"
                   " JOIN customer_groups g ON g.id = m.group_id WHERE m.member = 1 AND lower(g.name) = lower(?))")
            clauses.append(sub.format(neg="" if f.op == "=" else "NOT"))
            args.append(f.value)
            continue
        if f.field == "birth_month":
            col = "CAST(substr(c.birth_date, 6, 2) AS INTEGER)"
        elif f.field in FILTER_FIELDS:
            col = f"c.[{f.field}]"
        else:
            raise MessagingError(_("Unknown field {field!r}.").format(field=f.field))
        clauses.append(OPERATORS[f.op].format(col=col))
        if f.op not in ("empty", "not_empty"):
            args.append(int(f.value) if f.field == "birth_month" else f.value)
    return " AND ".join(clauses) or "1", args


def _audience_sql(filters: list[Filter], channel: str, select: str,
                  source: str = "customers c") -> tuple[str, list[Any]]:  # fmt: skip
    if channel not in CHANNELS:
        raise MessagingError(_("Unknown message channel."))
    where, args = _where(filters)
    address = "c.email" if channel == "email" else "coalesce(c.mobile, c.phone)"
    sql = (f"SELECT {select} FROM {source} WHERE c.erased_at IS NULL AND c.merged_into IS NULL"
           f" AND c.[{CONSENT_OF[channel]}] IN (1, '1') AND coalesce({address}, '') != ''"
           f" AND ({where})")  # fmt: skip
    return sql, args


def audience(store: Store, filters: list[Filter], channel: str, *, limit: int | None = None) -> list[str]:
    """Customer ids matching every filter row who may get marketing on ``channel``."""
    sql, args = _audience_sql(filters, channel, "c.id")
    sql += " ORDER BY c.customer_no"
    if limit:
        sql += f" LIMIT {int(limit)}"
    return [r[0] for r in store.db.execute(sql, args)]


def audience_count(store: Store, filters: list[Filter], channel: str) -> int:
    """How many customers :func:`audience` holds, without loading their ids (the live count)."""
    sql, args = _audience_sql(filters, channel, "count(*)")
    return store.db.execute(sql, args).fetchone()[0]


def first_of_audience(store: Store, filters: list[Filter], channel: str, count: int) -> str | None:
    """The audience's first customer by number (whom a preview is written to).

    ``count`` is :func:`audience_count`'s answer. A large audience is dense: walking the
    customer-number index finds its first member at once, where the planner would rather
    sort every member; a small one is cheaper to sort.
    """
    if count <= 0:
        return None
    source = "customers c INDEXED BY customers_no" if count > 10_000 else "customers c"
    sql, args = _audience_sql(filters, channel, "c.id", source)
    row = store.db.execute(sql + " ORDER BY c.customer_no LIMIT 1", args).fetchone()
    return row[0] if row else None


def create_campaign(store: Store, name: str, channel: str, filters: list[Filter], body: str,
                    subject: str | None = None) -> str:  # fmt: skip
    name, body = name.strip(), body.strip()
    if not name or len(name) > 80:
        raise MessagingError(_("Enter a name of at most 80 characters."))
    if not body:
        raise MessagingError(_("Write the message first."))
    if channel == "email" and not (subject or "").strip():
        raise MessagingError(_("An e-mail needs a subject."))
    _where(filters)  # validates
    audience(store, filters, channel, limit=1)
    with store.transaction():
        ev = events.emit(store, "campaign.saved", {
            "name": name, "channel": channel, "subject": subject, "body": body,
            "filters": [[f.field, f.op, f.value] for f in filters]})
    return ev.id


@events.handler("campaign.saved")
def _apply_campaign(store: Store, ev: events.Event) -> None:
    p = ev.payload
    lww.upsert(store.db, "campaigns", {"id": p.get("id", ev.id)},
               {"name": p["name"], "channel": p["channel"], "subject": p.get("subject"),
                "body": p["body"], "filters": msgspec.json.encode(p["filters"]).decode(),
                "created_at": ev.created_at}, ev.hlc)  # fmt: skip


def campaign(store: Store, campaign_id: str) -> dict[str, Any]:
    rows = list(store.db.query("SELECT * FROM campaigns WHERE id = ?", [campaign_id]))
    if not rows:
        raise MessagingError(_("Unknown campaign."))
    row = rows[0]
    row["filters"] = [Filter(*f) for f in msgspec.json.decode(row["filters"])]
    return row


def preview(store: Store, campaign_id: str) -> tuple[int, str]:
    """Live count and the message as the first recipient would get it."""
    c = campaign(store, campaign_id)
    ids = audience(store, c["filters"], c["channel"])
    sample = customers.get(store, ids[0]) if ids else {"first_name": "Anna", "last_name": "Muster"}
    return len(ids), render(c["body"], placeholder_values(store, sample, None))


def send_campaign(store: Store, campaign_id: str, *, batch: int = 500) -> int:
    """Queue the campaign for its audience now; running it again queues nothing new."""
    c = campaign(store, campaign_id)
    ids = audience(store, c["filters"], c["channel"])
    queued = 0
    for start in range(0, len(ids), batch):
        with store.transaction():
            for cid in ids[start : start + batch]:
                r = send_to_customer(store, cid, c["channel"], "campaign", c["body"],
                                     subject=c["subject"], key=f"campaign:{campaign_id}:{cid}",
                                     campaign_id=campaign_id)  # fmt: skip
                queued += r.message_id is not None
    return queued


# -- unsubscribe ------------------------------------------------------------------------------
def unsubscribe_token(store: Store, customer_id: str, channel: str) -> str:
    mac = hmac.new(store.secret_key, f"unsub|{customer_id}|{channel}".encode(), hashlib.sha256)
    return f"{customer_id}.{channel}.{mac.hexdigest()[:24]}"


def unsubscribe(store: Store, token: str) -> dict[str, Any]:
    """Withdraw the consent named by a link token; returns the customer."""
    try:
        customer_id, channel, _mac = token.rsplit(".", 2)
    except ValueError:
        raise MessagingError(_("This unsubscribe link is not valid.")) from None
    if channel not in CONSENT_OF or not hmac.compare_digest(
        unsubscribe_token(store, customer_id, channel), token
    ):
        raise MessagingError(_("This unsubscribe link is not valid."))
    return customers.update(store, customer_id, {CONSENT_OF[channel]: False},
                            source="unsubscribe", force=True)  # fmt: skip


STOP_WORDS = frozenset({"stop", "stopp", "abmelden", "ende", "unsubscribe"})


def inbound_sms(store: Store, phone: str, text: str) -> list[str]:
    """A reply like STOP withdraws SMS consent for every customer with that number."""
    if text.strip().lower() not in STOP_WORDS:
        return []
    number = customers.normalise_phone(phone)
    ids = [r[0] for r in store.db.execute(
        "SELECT id FROM customers WHERE (mobile = ? OR phone = ?) AND erased_at IS NULL"
        " AND merged_into IS NULL", [number, number])]  # fmt: skip
    for cid in ids:
        customers.update(store, cid, {"sms_consent": False}, source="unsubscribe", force=True)
    return ids


# -- automations ------------------------------------------------------------------------------
def run_birthdays(store: Store, now: dt.datetime) -> list[str]:
    """Greet today's birthday customers once a year (idempotent per customer and year)."""
    conf = settings.get(store, "automation.birthday")
    today = local_date(now)
    if not conf.get("active") or now.astimezone(_berlin()).hour < int(conf.get("hour", 9)):
        return []
    rows = store.db.execute(
        "SELECT id FROM customers WHERE erased_at IS NULL AND merged_into IS NULL"
        " AND substr(birth_date, 6, 5) = ?", [today.strftime("%m-%d")]).fetchall()  # fmt: skip
    sent = []
    for (cid,) in rows:
        key = f"birthday:{today.year}:{cid}"
        with store.transaction():  # the gift card and its message, or neither
            if already_queued(store, key) or not may_send(store, cid, conf["channel"], "birthday"):
                continue
            if not recipient_of(customers.get(store, cid), conf["channel"]):
                continue  # no gift card that nobody hears of
            values = {}
            if int(conf.get("giftcard_cents", 0)) > 0:
                from kiosk.engine import giftcards  # sale-side module; only needed here

                values["code"] = giftcards.issue(
                    store, int(conf["giftcard_cents"]), kind="voucher",
                    valid_days=int(conf.get("giftcard_days", 30)), customer_id=cid)  # fmt: skip
            r = send_to_customer(store, cid, conf["channel"], "birthday", conf["text"],
                                 subject=_("Happy birthday"), key=key, values=values)  # fmt: skip
            if r.message_id:
                sent.append(r.message_id)
    return sent


def run_giftcard_reminders(store: Store, now: dt.datetime,
                           cards: list[tuple[str, str, str]]) -> list[str]:  # fmt: skip
    """Remind owners of gift cards expiring soon; ``cards`` are (code, customer_id, expiry ISO
    date) of cards with a balance left. Modes: e-mail only, SMS only, e-mail else SMS, SMS else
    e-mail, both. Idempotent per card and channel."""
    conf = settings.get(store, "automation.giftcard_reminder")
    if not conf.get("active"):
        return []
    today = local_date(now)
    horizon = today + dt.timedelta(days=int(conf["days_before"]))
    order = {"email": ["email"], "sms": ["sms"], "email_then_sms": ["email", "sms"],
             "sms_then_email": ["sms", "email"], "both": ["email", "sms"]}[conf["mode"]]
    sent = []
    for code, cid, expiry in cards:
        day = dt.date.fromisoformat(expiry[:10])
        if not (today <= day <= horizon):
            continue
        for channel in order:
            r = send_to_customer(store, cid, channel, "giftcard_reminder", conf["text"],
                                 subject=_("Your gift card expires soon"),
                                 key=f"gcreminder:{code}:{channel}",
                                 values={"code": code, "date": day.strftime("%d.%m.%Y")})  # fmt: skip
            if r.message_id:
                sent.append(r.message_id)
                if conf["mode"] != "both":
                    break
            elif r.reason == "duplicate" and conf["mode"] != "both":
                break
    return sent


def _berlin():
    from zoneinfo import ZoneInfo

    return ZoneInfo("Europe/Berlin")


# -- gift-voucher runs, sign-up vouchers, expiring cards, credit notes --------------------------
settings.define("automation.signup_voucher", {"active": False, "cents": 500, "days": 60,
                                               "text": "Willkommen, {first_name}! Ihr Gutschein: {code}"},
                _check_table,
                N_("Voucher for new customers who give their e-mail address"))  # fmt: skip
settings.define("automation.credit_note_reminder", {"active": False, "days_after": 30,
                                                     "text": "Ihr Guthaben {code} wartet auf Sie."},
                _check_table,
                N_("Reminder for credit notes some days after they were made"))  # fmt: skip


@dataclass(frozen=True)
class VoucherCandidate:
    customer_id: str
    turnover_cents: int
    visits: int


def voucher_run_preview(store: Store, start: dt.date, end: dt.date, *, min_turnover_cents: int = 0,
                        min_visits: int = 0) -> list[VoucherCandidate]:  # fmt: skip
    """Customers whose turnover and number of visits in [start, end] reach the thresholds."""
    rows = store.db.execute(
        "SELECT s.customer_id, sum(CASE WHEN s.kind = 'refund' THEN -abs(s.total_cents)"
        " ELSE s.total_cents END), count(DISTINCT s.local_date)"
        " FROM sales s JOIN customers c ON c.id = s.customer_id"
        " WHERE s.local_date BETWEEN ? AND ? AND c.erased_at IS NULL AND c.merged_into IS NULL"
        " GROUP BY s.customer_id HAVING sum(s.total_cents) >= ? AND count(DISTINCT s.local_date) >= ?"
        " ORDER BY 2 DESC",
        [start.isoformat(), end.isoformat(), min_turnover_cents, min_visits],
    ).fetchall()
    return [VoucherCandidate(*r) for r in rows]


def run_gift_vouchers(store: Store, run_id: str, candidates: list[VoucherCandidate], *,
                      channel: str, text: str, amount_cents: int = 0, percent_bp: int = 0,
                      valid_days: int = 90, purpose: str = "gift_voucher") -> list[str]:  # fmt: skip
    """Confirmed run: one voucher and one message per candidate; a rerun adds nothing."""
    from kiosk.engine import giftcards

    if bool(amount_cents) == bool(percent_bp):
        raise MessagingError(_("Give either an amount or a percentage of the turnover."))
    sent = []
    for cand in candidates:
        key = f"voucher-run:{run_id}:{cand.customer_id}"
        value = amount_cents or cand.turnover_cents * percent_bp // 10_000  # cents never made up
        with store.transaction():
            if value <= 0 or already_queued(store, key) or not may_send(
                    store, cand.customer_id, channel, purpose):  # fmt: skip
                continue
            if not recipient_of(customers.get(store, cand.customer_id), channel):
                continue
            code = giftcards.issue(store, value, kind="voucher", valid_days=valid_days,
                                   customer_id=cand.customer_id)  # fmt: skip
            r = send_to_customer(store, cand.customer_id, channel, purpose, text,
                                 subject=_("A voucher for you"), key=key,
                                 values={"code": code, "amount": f"{value / 100:.2f} €".replace(".", ",")})  # fmt: skip
            sent.append(r.message_id)
    return sent


def run_signup_vouchers(store: Store, now: dt.datetime, *, within_days: int = 7) -> list[str]:
    """A voucher by e-mail for customers created recently with an address and consent."""
    conf = settings.get(store, "automation.signup_voucher")
    if not conf.get("active"):
        return []
    since = (now - dt.timedelta(days=within_days)).astimezone(dt.UTC).isoformat()
    ids = [r[0] for r in store.db.execute(
        "SELECT id FROM customers WHERE created_at >= ? AND coalesce(email, '') != ''"
        " AND email_consent IN (1, '1') AND erased_at IS NULL AND merged_into IS NULL",
        [since[:19]])]  # fmt: skip
    cands = [VoucherCandidate(cid, 0, 0) for cid in ids]
    return run_gift_vouchers(store, "signup", cands, channel="email", text=conf["text"],
                             amount_cents=int(conf["cents"]), valid_days=int(conf["days"]),
                             purpose="signup_voucher")  # fmt: skip


def expiring_cards(store: Store, today: dt.date, horizon_days: int) -> list[tuple[str, str, str]]:
    """(code, customer, valid_until) of owned gift cards with a balance expiring soon."""
    until = (today + dt.timedelta(days=horizon_days)).isoformat()
    return [tuple(r) for r in store.db.execute(
        "SELECT g.code, g.customer_id, g.valid_until FROM giftcards g"
        " WHERE g.customer_id IS NOT NULL AND g.valid_until BETWEEN ? AND ?"
        " AND (SELECT coalesce(sum(amount_cents), 0) FROM giftcard_entries e WHERE e.code = g.code) > 0"
        " ORDER BY g.valid_until", [today.isoformat(), until])]  # fmt: skip


def run_credit_note_reminders(store: Store, now: dt.datetime) -> list[str]:
    """Remind owners of vouchers (credit notes) that still hold money X days after issue."""
    conf = settings.get(store, "automation.credit_note_reminder")
    if not conf.get("active"):
        return []
    cutoff = (now - dt.timedelta(days=int(conf["days_after"]))).astimezone(dt.UTC)
    rows = store.db.execute(
        "SELECT g.code, g.customer_id FROM giftcards g WHERE g.kind = 'voucher'"
        " AND g.customer_id IS NOT NULL AND g.issued_at <= ?"
        " AND (SELECT coalesce(sum(amount_cents), 0) FROM giftcard_entries e WHERE e.code = g.code) > 0",
        [cutoff.isoformat()[:19] + "~"]).fetchall()  # fmt: skip
    sent = []
    for code, cid in rows:
        for channel in ("email", "sms"):
            r = send_to_customer(store, cid, channel, "credit_note", conf["text"],
                                 subject=_("Your credit note"), key=f"creditnote:{code}",
                                 values={"code": code})  # fmt: skip
            if r.message_id or r.reason == "duplicate":
                if r.message_id:
                    sent.append(r.message_id)
                break
    return sent


def run_automations(store: Store, now: dt.datetime) -> dict[str, int]:
    """Everything scheduled, once; safe to call every minute (each run is idempotent)."""
    reminder = settings.get(store, "automation.giftcard_reminder")
    cards = expiring_cards(store, local_date(now), int(reminder.get("days_before", 14)))
    return {
        "birthday": len(run_birthdays(store, now)),
        "giftcard_reminder": len(run_giftcard_reminders(store, now, cards)),
        "signup_voucher": len(run_signup_vouchers(store, now)),
        "credit_note": len(run_credit_note_reminders(store, now)),
    }


# -- e-receipts ---------------------------------------------------------------------------------
def ereceipt_offer(store: Store, sale_kind: str, customer: dict[str, Any] | None) -> str:
    """What the till does after a sale: "never", "ask" (suggest, or always without an address)
    or "send" (always, and the customer's e-mail is known)."""
    mode = settings.get(store, "ereceipt.mode")
    if mode == "never" or sale_kind not in settings.get(store, "ereceipt.document_types"):
        return "never"
    if mode == "always" and customer and customer.get("email"):
        return "send"
    return "ask"


def document_type(recorded: dict[str, Any]) -> str:
    """The ``ereceipt.document_types`` entry a completed sale counts as."""
    if recorded.get("kind") == "refund":
        return "return"
    kinds = {ln.get("kind") for ln in recorded.get("lines") or []}
    if kinds == {"giftcard"}:
        return "giftcard"
    if kinds == {"wallet_load"}:
        return "deposit"
    return "sale"


def send_ereceipt(store: Store, sale_id: str, *, email: str | None = None,
                  kind: str = "sale") -> Queued:  # fmt: skip
    """Queue the receipt of a sale by e-mail (PDF attached when sent). An address typed at the
    till is checked and, when the sale has a customer without one, added to that customer."""
    from kiosk.engine import sale as sales

    if settings.get(store, "ereceipt.mode") == "never":
        return Queued(None, "disabled")
    if kind not in settings.get(store, "ereceipt.document_types"):
        return Queued(None, "document_type")
    record = sales.get(store, sale_id)
    customer_id = record.get("customer_id")
    key = f"ereceipt:{sale_id}"
    with store.transaction():
        if already_queued(store, key):
            return Queued(None, "duplicate")
        if email:
            try:
                address = customers._normalise_value(customers.FIELD_BY_NAME["email"], email,
                                                     local_date(store.clock()), "DE")  # fmt: skip
            except ValueError as exc:
                raise customers.ValidationError({"email": str(exc)}) from None
            if not address:
                raise customers.ValidationError({"email": _("Enter an e-mail address.")})
            current = customers.get(store, customer_id) if customer_id else None
            if current is not None and not current.get("email"):
                customers.update(store, customer_id, {"email": address}, force=True)
                current = customers.get(store, customer_id)
            if current is None or current.get("email") != address:
                # Typed for this receipt only (a guest, or another address than the stored
                # one): the receipt goes where the customer asked; the record is left as it is.
                values = placeholder_values(store, current or {}, {"receipt_no": record.get("receipt_no")})
                message_id = messages_outbox.queue(
                    store, "email", address, render(settings.get(store, "ereceipt.body"), values),
                    subject=render(settings.get(store, "ereceipt.subject"), values),
                    reason="receipt", ref=key,
                )  # fmt: skip
                events.emit(store, "message.addressed",
                            {"message_id": message_id, "customer_id": customer_id,
                             "purpose": "receipt", "key": key, "campaign_id": None,
                             "channel": "email"})  # fmt: skip
                return Queued(message_id)
        if not customer_id:
            return Queued(None, "no_address")
        return send_to_customer(store, customer_id, "email", "receipt",
                                settings.get(store, "ereceipt.body"),
                                subject=settings.get(store, "ereceipt.subject"), key=key,
                                values={"receipt_no": record.get("receipt_no")})  # fmt: skip


def receipt_sale_id(meta: dict[str, Any] | None) -> str | None:
    """The sale behind an e-receipt message (for the PDF attachment)."""
    key = (meta or {}).get("key") or ""
    return key.split(":", 1)[1] if key.startswith("ereceipt:") else None


# -- WhatsApp click-to-chat (shops without the Cloud API) ------------------------------------------
def whatsapp_number(record: dict[str, Any]) -> str | None:
    """The customer's number for WhatsApp: the mobile, else a phone that is a mobile number."""
    if record.get("mobile"):
        return record["mobile"]
    phone = record.get("phone")
    if phone:
        try:
            number = phonenumbers.parse(phone, customers.DEFAULT_REGION)
        except phonenumbers.NumberParseException:
            return None
        if phonenumbers.number_type(number) in (phonenumbers.PhoneNumberType.MOBILE,
                                                phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE):
            return phone
    return None


def click_to_chat(phone: str | None, text: str = "") -> str:
    """A wa.me link that opens a chat with ``phone`` and ``text`` typed in (the cashier's phone
    scans it as a QR code). German numbers (``0171 …``, ``0049 …``) become international."""
    if not (phone or "").strip():
        raise MessagingError(_("No mobile number."))
    try:
        number = customers.normalise_phone(phone)
    except ValueError as exc:
        raise MessagingError(str(exc)) from None
    url = f"https://wa.me/{number.lstrip('+')}"
    if text:
        url += "?text=" + urllib.parse.quote(text, safe="")
    return url


def export_audience(store: Store, campaign_id: str, dest, progress=None) -> int:
    """The campaign's recipients as an Excel list (the customer export's columns)."""
    from kiosk.engine import customer_export

    c = campaign(store, campaign_id)
    return customer_export.export(store, dest, ids=audience(store, c["filters"], c["channel"]),
                                  progress=progress)  # fmt: skip
