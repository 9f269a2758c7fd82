"""Dashboard pages for messaging: the campaign builder, one message to one customer, and what
the automations and gift-voucher runs sent.

Everything goes through the engine (``kiosk.engine.messaging``): it decides who may get what
(consent, address) and queues; the hub's dispatcher sends. The builder counts its audience
live through a small JSON endpoint (``POST /campaigns/count``, CSRF-checked like every form);
without JavaScript the "Zählen" button does the same with a full page. Drafts ("Vorschlag")
come from ``storehub.messaging.ai`` — an OpenAI-compatible endpoint stored with the hub's
messaging credentials, else a German template — and are always shown for editing first.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import logging
import secrets
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from kiosk.engine import customers, groups, messaging, settings
from kiosk.engine.clock import local_date
from kiosk.engine.messaging import Filter, MessagingError
from kiosk.engine.store import Store
from kiosk.i18n import N_, _
from storehub.dashboard import queries
from storehub.dashboard.extras import parse_bp, parse_cents
from storehub.messaging import ai, dispatch

_LOGGER = logging.getLogger(__name__)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
AI_CREDENTIALS = "ai"  # row in the hub-local, encrypted messaging_credentials table
FORM_MEMORY = 20  # builder forms remembered per session (a resubmitted form opens its campaign)
VALUE_MAX = 100
SMS_CHANNELS = ("sms", "whatsapp")
CHANNEL_LABELS = {"email": N_("E-mail"), "sms": N_("SMS"), "whatsapp": N_("WhatsApp")}
OPERATOR_LABELS = {
    "=": N_("is"), "!=": N_("is not"), "contains": N_("contains"), "starts": N_("starts with"),
    "<": N_("less than"), ">": N_("greater than"), "<=": N_("at most"), ">=": N_("at least"),
    "empty": N_("is empty"), "not_empty": N_("is not empty"),
}  # fmt: skip
NO_VALUE_OPS = ("empty", "not_empty")
DATE_FIELDS = ("birth_date", "created_at")
EXTRA_FIELD_LABELS = {"created_at": N_("Created on"), "home_store": N_("Home store"),
                      "group": N_("Group"), "birth_month": N_("Birth month (1-12)")}  # fmt: skip
# Purposes a draft can be asked for (ai.TEMPLATES has texts for all but "other").
DRAFT_PURPOSES = (
    ("promotion", N_("Promotion")), ("birthday", N_("Birthday")),
    ("repair_ready", N_("Repair ready")), ("order_ready", N_("Order ready")),
    ("giftcard_reminder", N_("Gift card expires soon")), ("other", N_("Other")),
)  # fmt: skip
# One message to one customer (the choices are in campaign_macros.html): service messages need
# no consent, advertising does.
SINGLE_PURPOSES = ("single", "promotion", "birthday", "repair_ready", "order_ready")
VOUCHER_CHANNELS = ("email", "sms")
# What the message log's codes (reason, status) read as on the page.
MESSAGE_LABELS = {
    "receipt": N_("E-receipt"), "repair_ready": N_("Repair ready"), "order_ready": N_("Order ready"),
    "vip_alert": N_("VIP alert"), "credit_note": N_("Credit-note reminder"),
    "giftcard_reminder": N_("Gift card expires soon"), "campaign": N_("Campaign"),
    "birthday": N_("Birthday"), "promotion": N_("Promotion"), "gift_voucher": N_("Gift voucher"),
    "loyalty_voucher": N_("Loyalty voucher"), "signup_voucher": N_("Sign-up voucher"),
    "single": N_("Single message"), "queued": N_("queued"), "sent": N_("sent"),
    "failed": N_("failed"), "bounced": N_("bounced"), **CHANNEL_LABELS,
}  # fmt: skip


def field_choices() -> list[tuple[str, str]]:
    """(field, label msgid) of every field a filter row may use."""
    out = []
    for name in (*messaging.FILTER_FIELDS, "group", "birth_month"):
        fld = customers.FIELD_BY_NAME.get(name)
        out.append((name, EXTRA_FIELD_LABELS.get(name) or (fld.label if fld else name)))
    return out


# -- the builder's form ----------------------------------------------------------------------------
@dataclass
class Builder:
    """The campaign form as typed (kept for re-rendering) and what it means."""

    name: str = ""
    channel: str = "email"
    subject: str = ""
    body: str = ""
    purpose: str = "promotion"
    form_id: str = ""
    rows: list[dict[str, str]] = field(default_factory=list)
    filters: list[Filter] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


def _text(form: dict[str, Any], key: str, limit: int = 2000) -> str:
    value = form.get(key)
    if isinstance(value, list):  # a field sent twice: the last one wins
        value = value[-1] if value else ""
    return str(value or "").strip()[:limit]


def _date(raw: str) -> dt.date | None:
    for fmt in ("%Y-%m-%d", "%d.%m.%Y", "%d.%m.%y"):
        try:
            return dt.datetime.strptime(raw, fmt).date()
        except ValueError:
            continue
    return None


def filter_value(st: Store, name: str, op: str, raw: str) -> str:
    """The value a filter row compares with, in the stored form; MessagingError when wrong."""
    if op in NO_VALUE_OPS:
        if name in ("group", "birth_month"):
            raise MessagingError(_("This field needs a comparison with a value."))
        return ""
    if not raw:
        raise MessagingError(_("Enter a value for this row."))
    if len(raw) > VALUE_MAX:
        raise MessagingError(_("The value is too long."))
    if name == "birth_month":
        if not raw.isdigit() or not 1 <= int(raw) <= 12:
            raise MessagingError(_("Enter a month from 1 to 12."))
        return str(int(raw))
    if name == "group":
        if raw.lower() not in {g["name"].lower() for g in groups.all_groups(st, active_only=False)}:
            raise MessagingError(_("There is no group named {name}.").format(name=raw))
        return raw
    if name in DATE_FIELDS and op not in ("contains", "starts"):
        day = _date(raw)
        if day is None:
            raise MessagingError(_("Enter a date as DD.MM.YYYY."))
        return day.isoformat()
    fld = customers.FIELD_BY_NAME.get(name)
    if fld is not None and fld.choices and op in ("=", "!="):
        for key, label in fld.choices:  # "Frau" or "f" both mean f
            if raw.lower() in (key.lower(), label.lower(), _(label).lower()):
                return key
        choices = ", ".join(_(label) for _key, label in fld.choices)
        raise MessagingError(_("Choose one of: {choices}.").format(choices=choices))
    return raw


def parse_builder(st: Store, form: dict[str, Any]) -> Builder:
    """Read the builder form; every problem lands in ``errors`` (keyed by form field)."""
    b = Builder(name=_text(form, "name", 200), channel=_text(form, "channel", 20) or "email",
                subject=_text(form, "subject", 200), body=_text(form, "body", 5000),
                purpose=_text(form, "purpose", 40) or "promotion",
                form_id=_text(form, "form_id", 64) or secrets.token_urlsafe(12))  # fmt: skip
    if b.channel not in messaging.CHANNELS:
        b.errors["channel"] = _("Unknown message channel.")
    allowed = {name for name, _label in field_choices()}
    for i in range(messaging.MAX_FILTERS):
        row = {"field": _text(form, f"f{i}-field", 40), "op": _text(form, f"f{i}-op", 20) or "=",
               "value": _text(form, f"f{i}-value", 200)}  # fmt: skip
        b.rows.append(row)
        if not row["field"]:
            if row["value"]:
                b.errors[f"f{i}"] = _("Choose a field for this row.")
            continue
        try:
            if row["field"] not in allowed:
                raise MessagingError(_("Unknown field {field!r}.").format(field=row["field"]))
            if row["op"] not in messaging.OPERATORS:
                raise MessagingError(_("Unknown operator {op!r}.").format(op=row["op"]))
            if row["field"] == "group" and row["op"] not in ("=", "!="):
                raise MessagingError(_("A group is compared with = or != only."))
            value = filter_value(st, row["field"], row["op"], row["value"])
        except MessagingError as exc:
            b.errors[f"f{i}"] = str(exc)
            continue
        b.filters.append(Filter(row["field"], row["op"], value))
    return b


@dataclass(frozen=True)
class Preview:
    count: int
    to: str  # the first recipient's name, "" when there is none
    subject: str
    text: str
    sender: str
    limit: int  # characters allowed (SMS), 0 for e-mail

    @property
    def too_long(self) -> bool:
        return bool(self.limit) and len(self.text) > self.limit


def preview(st: Store, channel: str, filters: list[Filter], body: str, subject: str) -> Preview:
    """Live count of who may get the campaign and the message as its first recipient sees it."""
    count = messaging.audience_count(st, filters, channel)
    first = messaging.first_of_audience(st, filters, channel, count)  # the preview's reader
    record = customers.get(st, first) if first else {"first_name": "Anna", "last_name": "Muster"}
    sms = channel in SMS_CHANNELS
    return Preview(
        count=count, to=customers.display_name(record) if first else "",
        subject="" if sms else messaging.render(subject, messaging.placeholder_values(st, record)),
        text=messaging.message_text(st, record, channel, "campaign", body, cut=False),
        sender=settings.get(st, "messaging.sender_name"),
        limit=messaging.SMS_CAMPAIGN_MAX if sms else 0,
    )  # fmt: skip


# -- drafts -----------------------------------------------------------------------------------------
def ai_endpoint(st: Store) -> ai.Endpoint | None:
    """The drafting endpoint stored on the hub (base URL, model, key), or None."""
    try:
        conf = dispatch.load_credentials(st, AI_CREDENTIALS)
    except Exception:  # a key that no longer decrypts: drafts fall back to the templates
        _LOGGER.warning("stored AI endpoint cannot be read; using templates", exc_info=True)
        return None
    if not conf or not conf.get("base_url") or not conf.get("model"):
        return None
    return ai.Endpoint(conf["base_url"], conf["model"], conf.get("api_key") or None)


def draft_limit(st: Store, channel: str) -> int:
    if channel in SMS_CHANNELS:
        sender = settings.get(st, "messaging.sender_name")
        return messaging.SMS_CAMPAIGN_MAX - (len(sender) + 2 if sender else 0)
    return 600


def make_draft(st: Store, purpose: str, customer: dict[str, Any], channel: str) -> tuple[ai.Draft, bool]:
    """A draft text and whether an AI endpoint is configured."""
    endpoint = ai_endpoint(st)
    d = ai.draft(purpose, customer, settings.get(st, "shop.name"), endpoint,
                 limit=draft_limit(st, channel))  # fmt: skip
    return d, endpoint is not None


def draft_note(d: ai.Draft, configured: bool) -> str:
    if d.source == "ai":
        return _("Suggestion written by the AI service. Please check it before sending.")
    if configured:
        return _("The AI service did not answer; the suggestion comes from a template.")
    return _("Suggestion from a template (no AI service is set up).")


# -- one message to one customer --------------------------------------------------------------------
class Refused(Exception):
    """The engine did not queue the message (no consent, no address, sent before)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def refusal_text(reason: str, channel: str) -> str:
    label = _(CHANNEL_LABELS.get(channel, channel))
    if reason == "no_consent":
        return _("Not sent: this customer has not agreed to advertising by {channel}. Service "
                 "messages such as \u201crepair ready\u201d need no consent.").format(channel=label)
    if reason == "no_address":
        return _("Not sent: there is no address for {channel} on record.").format(channel=label)
    if reason == "duplicate":
        return _("This message was already queued.")
    return _("Not sent.")


# -- gift-voucher runs ------------------------------------------------------------------------------
@dataclass
class VoucherForm:
    start: dt.date | None = None
    end: dt.date | None = None
    min_turnover_cents: int = 0
    min_visits: int = 0
    channel: str = "email"
    amount_cents: int = 0
    percent_bp: int = 0
    valid_days: int = 90
    text: str = ""
    raw: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        """One run per period: a customer gets at most one voucher for it, however often it runs."""
        return f"{self.start}..{self.end}"


VOUCHER_TEXT = "Danke für Ihre Treue, {first_name}! Ihr Gutschein {code} über {amount} wartet auf Sie."


def voucher_defaults(today: dt.date) -> dict[str, str]:
    last = today.replace(day=1) - dt.timedelta(days=1)
    return {"start": last.replace(day=1).isoformat(), "end": last.isoformat(), "min_turnover": "100",
            "min_visits": "2", "channel": "email", "kind": "amount", "value": "10",
            "valid_days": "90", "text": VOUCHER_TEXT}  # fmt: skip


def parse_voucher_form(form: dict[str, Any]) -> VoucherForm:
    keys = ("start", "end", "min_turnover", "min_visits", "channel", "kind", "value", "valid_days", "text")
    raw = {k: _text(form, k, 1000) for k in keys}
    v = VoucherForm(raw=raw, channel=raw["channel"] or "email", text=raw["text"])
    v.start, v.end = _date(raw["start"]), _date(raw["end"])
    if v.start is None or v.end is None:
        v.errors["period"] = _("Enter the period as two dates (DD.MM.YYYY).")
    elif v.end < v.start:
        v.errors["period"] = _("The period ends before it starts.")
    turnover = parse_cents(raw["min_turnover"] or "0")
    if turnover is None:
        v.errors["min_turnover"] = _("Enter an amount in euros, e.g. 100 or 99,50.")
    v.min_turnover_cents = turnover or 0
    if not (raw["min_visits"] or "0").isdigit():
        v.errors["min_visits"] = _("Expected a whole number.")
    else:
        v.min_visits = int(raw["min_visits"] or "0")
    if v.channel not in VOUCHER_CHANNELS:
        v.errors["channel"] = _("Choose e-mail or SMS.")
    if raw["kind"] == "percent":
        bp = parse_bp(raw["value"])
        if not bp or bp > 10_000:
            v.errors["value"] = _("Enter a percentage above 0 and at most 100.")
        v.percent_bp = bp or 0
    else:
        cents = parse_cents(raw["value"])
        if not cents:
            v.errors["value"] = _("Enter an amount in euros, e.g. 100 or 99,50.")
        v.amount_cents = cents or 0
    if not raw["valid_days"].isdigit() or not 1 <= int(raw["valid_days"]) <= 3650:
        v.errors["valid_days"] = _("Enter a validity of 1 to 3650 days.")
    else:
        v.valid_days = int(raw["valid_days"])
    if not v.text:
        v.errors["text"] = _("Write the message first.")
    elif "{code}" not in v.text:
        v.errors["text"] = _("The text must contain {code}, the voucher's code.")
    return v


def voucher_candidates(st: Store, v: VoucherForm) -> list[dict[str, Any]]:
    """The preview list: each candidate with the voucher value and whether the run reaches them."""
    assert v.start is not None and v.end is not None
    out = []
    for cand in messaging.voucher_run_preview(st, v.start, v.end, min_turnover_cents=v.min_turnover_cents,
                                              min_visits=v.min_visits):  # fmt: skip
        record = customers.get(st, cand.customer_id)
        value = v.amount_cents or cand.turnover_cents * v.percent_bp // 10_000
        if messaging.already_queued(st, f"voucher-run:{v.run_id}:{cand.customer_id}"):
            state = "done"
        elif value <= 0:
            state = "zero"
        elif not messaging.may_send(st, cand.customer_id, v.channel, "gift_voucher"):
            state = "no_consent"
        elif not messaging.recipient_of(record, v.channel):
            state = "no_address"
        else:
            state = "ok"
        out.append({"id": record["id"], "no": record.get("customer_no"),
                    "name": customers.display_name(record), "turnover_cents": cand.turnover_cents,
                    "visits": cand.visits, "value_cents": value, "state": state})  # fmt: skip
    return out


VOUCHER_STATES = {"ok": N_("gets a voucher"), "done": N_("already got one in this run"),
                  "zero": N_("voucher would be 0,00 €"), "no_consent": N_("no consent"),
                  "no_address": N_("no address")}  # fmt: skip


# -- routes -------------------------------------------------------------------------------------------
def install(app: FastAPI, h: SimpleNamespace) -> None:
    """Add the routes; ``h`` carries pool, render, flash, back, command, Manager, Owner, Form, csp."""
    pool, render, flash, back, command = h.pool, h.render, h.flash, h.back, h.command
    Manager, Owner, Form = h.Manager, h.Owner, h.Form
    script_csp = h.csp.replace("script-src 'none'", "script-src 'self'")
    dispatch.migrations.apply(pool.base.db)  # the credentials table, also before the hub ran

    @app.exception_handler(MessagingError)
    async def _messaging_error(request: Request, exc: MessagingError) -> Response:
        return render(request, "message.html", {"title": _("Not possible"), "message": str(exc)}, 400)

    def with_script(response: Response) -> Response:
        """The builder's page may load its one script from this site (live count)."""
        response.headers["Content-Security-Policy"] = script_csp
        return response

    def remembered(request: Request) -> dict[str, str]:
        return dict(request.session.get("campaign_forms") or {})

    def remember(request: Request, form_id: str, campaign_id: str) -> None:
        forms = remembered(request)
        forms[form_id] = campaign_id
        request.session["campaign_forms"] = dict(list(forms.items())[-FORM_MEMORY:])

    def builder_context(st: Store, user: dict, b: Builder, **more: Any) -> dict[str, Any]:
        endpoint = ai_endpoint(st)
        return {
            "b": b, "campaigns": queries.campaigns(st), "channels": messaging.CHANNELS,
            "channel_labels": CHANNEL_LABELS, "fields": field_choices(),
            "operators": OPERATOR_LABELS, "purposes": DRAFT_PURPOSES,
            "sms_channels": SMS_CHANNELS, "sender": settings.get(st, "messaging.sender_name"),
            "sms_max": messaging.SMS_CAMPAIGN_MAX, "ai": endpoint, "errors": b.errors,
            "can_configure": user["role"] == "owner", **more,
        }  # fmt: skip

    def builder_page(request: Request, st: Store, user: dict, b: Builder, status: int = 200,
                     **more: Any) -> Response:  # fmt: skip
        return with_script(render(request, "campaigns.html", builder_context(st, user, b, **more), status))

    def counted(st: Store, b: Builder) -> Preview | None:
        if b.errors or b.channel not in messaging.CHANNELS:
            return None
        try:
            return preview(st, b.channel, b.filters, b.body, b.subject)
        except MessagingError as exc:
            b.errors["filters"] = str(exc)
            return None

    @app.get("/campaigns", response_class=HTMLResponse)
    def campaigns_page(request: Request, user: dict = Manager):
        st = pool.get()
        b = Builder(form_id=secrets.token_urlsafe(12), rows=[{} for _i in range(messaging.MAX_FILTERS)])
        # No count here: over a big customer file it is the slow part, and the page's script
        # asks for it right after loading (without the script, "Zählen" does).
        return builder_page(request, st, user, b, preview=None)

    @app.post("/campaigns/count")
    def campaigns_count(request: Request, user: dict = Manager, form: dict = Form):
        """The live count and preview for the builder's script (JSON; nothing is written)."""
        st = pool.get()
        b = parse_builder(st, form)
        p = counted(st, b)
        if p is None:
            return JSONResponse({"count": None, "errors": b.errors,
                                 "error": " ".join(dict.fromkeys(b.errors.values()))}, 400)  # fmt: skip
        return JSONResponse({
            "count": p.count, "to": p.to, "subject": p.subject, "text": p.text, "length": len(p.text),
            "limit": p.limit, "sender": p.sender, "too_long": p.too_long, "errors": {}, "error": "",
        })  # fmt: skip

    @app.post("/campaigns", response_class=HTMLResponse)
    def campaigns_post(request: Request, user: dict = Manager, form: dict = Form):
        st = pool.get()
        b = parse_builder(st, form)
        action = _text(form, "action", 20)
        if action == "draft":
            if b.purpose not in {p for p, _label in DRAFT_PURPOSES}:
                b.purpose = "other"
            placeholders = {"first_name": "{first_name}", "last_name": "{last_name}"}
            d, configured = make_draft(st, b.purpose, placeholders, b.channel)
            b.body = d.text
            return builder_page(request, st, user, b, preview=counted(st, b),
                                draft_note=draft_note(d, configured))  # fmt: skip
        if action != "save":  # "Zählen": count and preview without JavaScript
            p = counted(st, b)
            return builder_page(request, st, user, b, 400 if b.errors else 200, preview=p)
        if b.form_id in remembered(request):  # the same form sent again: its campaign exists
            return back(f"/campaigns/{remembered(request)[b.form_id]}")
        if not b.errors:
            try:
                cid = command(st, user, "campaign.save", b.name, lambda: messaging.create_campaign(
                    st, b.name, b.channel, b.filters, b.body, subject=b.subject or None))
            except MessagingError as exc:
                b.errors["campaign"] = str(exc)
        if b.errors:
            return builder_page(request, st, user, b, 400, preview=counted(st, b))
        remember(request, b.form_id, cid)
        return back(f"/campaigns/{cid}")

    @app.post("/campaigns/ai", response_class=HTMLResponse)
    def campaigns_ai(request: Request, user: dict = Owner, form: dict = Form):
        """Store (or remove) the OpenAI-compatible endpoint used for drafts, encrypted on the hub."""
        st = pool.get()
        if _text(form, "action", 20) == "remove":
            with st.transaction():
                st.db.execute("DELETE FROM messaging_credentials WHERE channel = ?", [AI_CREDENTIALS])
                h.audit(st, user["name"], "messaging.ai.remove", "")
            flash(request, _("The AI service is no longer used; suggestions come from templates."))
            return back("/campaigns")
        base_url, model = _text(form, "base_url", 300), _text(form, "model", 100)
        key = _text(form, "api_key", 500)
        errors = {}
        if not base_url.startswith(("http://", "https://")) or " " in base_url:
            errors["base_url"] = _("Enter the service's address, e.g. http://127.0.0.1:11434/v1.")
        if not model:
            errors["model"] = _("Enter the model's name.")
        if errors:
            b = Builder(form_id=secrets.token_urlsafe(12), rows=[{} for _i in range(messaging.MAX_FILTERS)])
            b.errors.update(errors)
            return builder_page(request, st, user, b, 400, ai_form={"base_url": base_url, "model": model})
        old = dispatch.load_credentials(st, AI_CREDENTIALS) or {}
        values = {"base_url": base_url, "model": model, "api_key": key or old.get("api_key") or ""}
        dispatch.save_credentials(st, AI_CREDENTIALS, values)
        h.audit(st, user["name"], "messaging.ai.save", base_url, model)
        flash(request, _("Saved."))
        return back("/campaigns")

    # -- automations and voucher runs (before /campaigns/{id}) ------------------------------------------
    def automations_context(st: Store, user: dict, **more: Any) -> dict[str, Any]:
        autos = [
            ("birthday", N_("Birthday greetings"), settings.get(st, "automation.birthday")),
            ("giftcard_reminder", N_("Reminder for gift cards about to expire"),
             settings.get(st, "automation.giftcard_reminder")),
            ("signup_voucher", N_("Voucher for new customers who give their e-mail address"),
             settings.get(st, "automation.signup_voucher")),
            ("credit_note", N_("Reminder for credit notes some days after they were made"),
             settings.get(st, "automation.credit_note_reminder")),
            ("gift_voucher", N_("Gift-voucher runs"), {"active": None}),
        ]  # fmt: skip
        return {
            "autos": autos, "summary": queries.automation_summary(st),
            "messages": queries.message_summary(st), "recent": queries.recent_messages(st),
            "runs": queries.voucher_runs(st), "v": voucher_defaults(local_date(st.clock())),
            "channel_labels": CHANNEL_LABELS, "voucher_channels": VOUCHER_CHANNELS,
            "labels": MESSAGE_LABELS, "states": VOUCHER_STATES, "can_run": user["role"] == "owner", **more,
        }  # fmt: skip

    @app.get("/campaigns/automations", response_class=HTMLResponse)
    def automations_page(request: Request, user: dict = Manager):
        return render(request, "automations.html", automations_context(pool.get(), user))

    @app.post("/campaigns/vouchers", response_class=HTMLResponse)
    def voucher_run(request: Request, user: dict = Owner, form: dict = Form):
        """Preview the candidates of a gift-voucher run, then (confirmed) issue and queue."""
        st = pool.get()
        v = parse_voucher_form(form)
        if v.errors:
            return render(request, "automations.html", automations_context(
                st, user, v=v.raw, errors=v.errors), 400)  # fmt: skip
        cands = voucher_candidates(st, v)
        if _text(form, "action", 20) != "run":
            return render(request, "automations.html", automations_context(
                st, user, v=v.raw, candidates=cands, run_id=v.run_id,
                reach=sum(c["state"] == "ok" for c in cands)))  # fmt: skip
        chosen = [messaging.VoucherCandidate(c.customer_id, c.turnover_cents, c.visits)
                  for c in messaging.voucher_run_preview(
                      st, v.start, v.end, min_turnover_cents=v.min_turnover_cents,
                      min_visits=v.min_visits)]  # fmt: skip
        sent = command(st, user, "vouchers.run", v.run_id, lambda: messaging.run_gift_vouchers(
            st, v.run_id, chosen, channel=v.channel, text=v.text, amount_cents=v.amount_cents,
            percent_bp=v.percent_bp, valid_days=v.valid_days), detail=f"{len(chosen)} candidates")
        if sent:
            flash(request, _("{n} vouchers issued; the hub sends the messages shortly.").format(n=len(sent)))
        else:
            flash(request, _("No new vouchers: everyone this run reaches already has one."), "warn")
        return back("/campaigns/automations")

    # -- one campaign: confirm and send, export -------------------------------------------------------
    def campaign_context(st: Store, campaign_id: str) -> dict[str, Any]:
        c = messaging.campaign(st, campaign_id)
        p = preview(st, c["channel"], c["filters"], c["body"], c["subject"] or "")
        status = queries.campaign_status(st, campaign_id)
        labels = dict(field_choices())
        rows = [(_(labels.get(f.field, f.field)), _(OPERATOR_LABELS.get(f.op, f.op)), f.value)
                for f in c["filters"]]  # fmt: skip
        return {"c": c, "p": p, "status": status, "queued": sum(status.values()), "rows": rows,
                "channel_labels": CHANNEL_LABELS}  # fmt: skip

    @app.get("/campaigns/{campaign_id}", response_class=HTMLResponse)
    def campaign_page(request: Request, campaign_id: str, user: dict = Manager):
        return render(request, "campaign.html", campaign_context(pool.get(), campaign_id))

    @app.post("/campaigns/{campaign_id}/send", response_class=HTMLResponse)
    def campaign_send(request: Request, campaign_id: str, user: dict = Manager, form: dict = Form):
        st = pool.get()
        c = messaging.campaign(st, campaign_id)
        if form.get("confirm") != "1":
            ctx = campaign_context(st, campaign_id)
            ctx["errors"] = {"confirm": _("Tick the box to confirm sending.")}
            return render(request, "campaign.html", ctx, 400)
        n = command(st, user, "campaign.send", c["name"], lambda: messaging.send_campaign(st, campaign_id))
        if n:
            flash(request, _("{n} messages queued; the hub sends them shortly.").format(n=n))
        else:
            flash(request, _("Nothing new to send: everyone in the audience already has this message."),
                  "warn")  # fmt: skip
        return back(f"/campaigns/{campaign_id}")

    @app.get("/campaigns/{campaign_id}/audience.xlsx")
    def campaign_export(request: Request, campaign_id: str, user: dict = Manager):
        st = pool.get()
        c = messaging.campaign(st, campaign_id)
        buf = io.BytesIO()
        n = messaging.export_audience(st, campaign_id, buf)
        h.audit(st, user["name"], "campaign.export", c["name"], f"{n} customers")
        return Response(buf.getvalue(), media_type=XLSX, headers={
            "Content-Disposition": f'attachment; filename="kampagne-{local_date(st.clock())}.xlsx"'})

    # -- one message to one customer ----------------------------------------------------------------
    def single_context(st: Store, record: dict[str, Any], form: dict[str, Any], **more: Any) -> dict:
        return {"c": record, "name": customers.display_name(record), "form": form,
                "sender": settings.get(st, "messaging.sender_name"), **more}  # fmt: skip

    @app.post("/customers/{customer_id}/message", response_class=HTMLResponse)
    def customer_message(request: Request, customer_id: str, user: dict = Manager, form: dict = Form):
        st = pool.get()
        record = customers.get(st, customer_id)
        channel, purpose = _text(form, "channel", 20), _text(form, "purpose", 40)
        subject, body = _text(form, "subject", 200), _text(form, "body", 2000)
        shown = {"channel": channel, "purpose": purpose, "subject": subject, "body": body}
        errors: dict[str, str] = {}
        if channel not in messaging.CHANNELS:
            errors["channel"] = _("Unknown message channel.")
        if purpose not in SINGLE_PURPOSES:
            errors["purpose"] = _("Choose what the message is about.")
        if errors:
            return render(request, "message_customer.html", single_context(st, record, shown, errors=errors), 400)
        if _text(form, "action", 20) == "draft":
            d, configured = make_draft(st, purpose, record, channel)
            shown["body"] = d.text
            return render(request, "message_customer.html", single_context(
                st, record, shown, draft_note=draft_note(d, configured)))  # fmt: skip
        if not body:
            errors["body"] = _("Write the message first.")
            return render(request, "message_customer.html", single_context(st, record, shown, errors=errors), 400)
        nonce = _text(form, "form_id", 64) or request.session.get("csrf", "")
        key = "single:" + hashlib.sha256(
            f"{record['id']}|{channel}|{purpose}|{subject}|{body}|{nonce}".encode()).hexdigest()[:24]
        subj = subject or _("Message from {shop}").format(shop=settings.get(st, "shop.name"))

        def queue() -> str:
            r = messaging.send_to_customer(st, record["id"], channel, purpose, body,
                                           subject=subj if channel == "email" else None, key=key)  # fmt: skip
            if r.message_id is None:
                raise Refused(r.reason)  # rolls back: no audit row for what did not happen
            return r.message_id

        try:
            command(st, user, "message.single", record.get("customer_no") or record["id"], queue,
                    detail=f"{channel} {purpose}")  # fmt: skip
        except Refused as exc:
            return render(request, "message_customer.html", single_context(
                st, record, shown, errors={"send": refusal_text(exc.reason, channel)}), 400)  # fmt: skip
        flash(request, _("Message queued; the hub sends it shortly."))
        return back(f"/customers/{record['id']}")
