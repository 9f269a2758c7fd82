"""Loyalty: programme settings, TiM card types, the points ledger, Fastmag levels and gifts.

Three sources shape this module (see docs/loyalty.md for the full mapping):

* Prismanote "Sparpunkte": programme-wide settings (``loyalty.*`` settings) – on/off, points
  per spend, redemption rate, validity, excluded article groups and payment methods …
* TiM "Kundenkarte": card types (``loyalty_card_types``) with bonus percentages per article
  kind and gender, visit, birthday and return-visit points, and redemption rules;
* Fastmag: levels by points whose gift products the cashier may hand out, one per sale.

The points ledger is append-only (``loyalty_points``, one row per entry, keyed by the event
id and the entry's index). The balance is derived: the sum of the entries minus what has
expired, and expiry is computed when asked (:func:`statement`), never written by a cron.
Redemptions consume the oldest earned points first (FIFO), so "which points expired" has
one answer. Commands compute every amount and put it in the payload; handlers only record.
"""

from __future__ import annotations

import calendar
import datetime as dt
import logging
import re
from collections import deque
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

import msgspec
from sqlite_utils import Migrations

from kiosk.engine import catalog, customers, events, lww, settings, stored_value
from kiosk.engine.clock import iso, local_date, parse_iso
from kiosk.engine.promotions import Line
from kiosk.engine.store import Store, register_migrations
from kiosk.i18n import _

_LOGGER = logging.getLogger(__name__)

migrations = register_migrations(Migrations("kiosk.loyalty"))

ENTRY_KINDS = (
    "earn", "bonus", "visit", "birthday", "birth_month", "return_visit", "welcome",
    "redeem", "gift", "forfeit", "adjust", "clawback", "restore",
)  # fmt: skip
PAYMENT_METHODS = ("cash", "card", "giftcard", "wallet", "points", "voucher")
SIDES = ("damen", "herren")
REDEEM_AMOUNT, REDEEM_POINTS, REDEEM_DIRECT_PERCENT, REDEEM_DISCOUNT_ON_POINTS = 1, 2, 3, 4
ROUNDING = ("exact", "old")
VALIDITY_UNITS = ("days", "months", "years")


# -- programme settings (Prismanote "Sparpunkte") ----------------------------------------------------
def _check_decimal(value: Any) -> str:
    try:
        number = Decimal(str(value).replace(",", "."))
    except InvalidOperation as exc:
        raise settings.SettingError(_("Expected a number such as 0.1.")) from exc
    if isinstance(value, float) or not number.is_finite() or not 0 <= number <= 1000:
        raise settings.SettingError(_("Expected a number from 0 to 1000, written as text."))
    return str(number)


def _check_validity(value: Any) -> dict[str, Any]:
    if (
        not isinstance(value, dict)
        or value.get("unit") not in VALIDITY_UNITS
        or isinstance(value.get("n"), bool)
        or not isinstance(value.get("n"), int)
        or not 0 <= value["n"] <= 3650
    ):
        raise settings.SettingError(
            _("Expected a number (0 = never expires) and a unit: days, months or years.")
        )
    return {"n": value["n"], "unit": value["unit"]}


def _check_str_list(allowed: tuple[str, ...] | None = None):
    def check(value: Any) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise settings.SettingError(_("Expected a list."))
        if allowed is not None and any(v not in allowed for v in value):
            raise settings.SettingError(
                _("Choose from: {choices}.").format(choices=", ".join(allowed))
            )
        return list(dict.fromkeys(value))

    return check


settings.define("loyalty.enabled", False, settings.check_bool, "Loyalty points programme on/off")
settings.define("loyalty.show_on_receipt", True, settings.check_bool,
                "Print points earned and balance on the till receipt")  # fmt: skip
settings.define("loyalty.show_on_pdf", True, settings.check_bool,
                "Show points earned and balance on PDF receipts")  # fmt: skip
settings.define("loyalty.points_on_discounted", True, settings.check_bool,
                "Give points on discounted lines")  # fmt: skip
settings.define("loyalty.points_on_repairs", False, settings.check_bool,
                "Give points on repairs")  # fmt: skip
settings.define("loyalty.webshop_earn", False, settings.check_bool, "Webshop sales earn points")
settings.define("loyalty.webshop_redeem", False, settings.check_bool,
                "Points can be redeemed in the webshop")  # fmt: skip
settings.define("loyalty.min_spend_cents", 1000, settings.check_int(1, 10_000_000),
                "Minimum spend for one point (cents): points are given per full block")  # fmt: skip
settings.define("loyalty.points_per_euro", "0.1", _check_decimal,
                "Points per euro of eligible spend (0.1 = 1 point per 10 €)")  # fmt: skip
settings.define("loyalty.redeem_points", 10, settings.check_int(1, 1_000_000),
                "Redemption rate: this many points …")  # fmt: skip
settings.define("loyalty.redeem_value_cents", 1000, settings.check_int(0, 10_000_000),
                "… are worth this many cents (10 points = 10 €)")  # fmt: skip
settings.define("loyalty.redeem_min_points", 0, settings.check_int(0, 10_000_000),
                "Points needed before a redemption is offered (the till shows a hint)")  # fmt: skip
settings.define("loyalty.validity", {"n": 0, "unit": "months"}, _check_validity,
                "How long points stay valid (0 = no expiry)")  # fmt: skip
settings.define("loyalty.excluded_groups", [], _check_str_list(),
                "Article groups that earn no points")  # fmt: skip
settings.define("loyalty.excluded_payment_methods", ["points"], _check_str_list(PAYMENT_METHODS),
                "Payment methods whose amount earns no points")  # fmt: skip


# -- schema --------------------------------------------------------------------------------------------
@migrations()
def m001_loyalty(db) -> None:
    db.execute(
        """
        CREATE TABLE loyalty_points (
            event_id TEXT NOT NULL,
            n INTEGER NOT NULL,
            customer_id TEXT NOT NULL,
            orig_customer_id TEXT NOT NULL,
            card_no TEXT,
            kind TEXT NOT NULL,
            points INTEGER NOT NULL,      -- signed: earned > 0, spent < 0
            value_cents INTEGER NOT NULL DEFAULT 0,  -- money value of a redemption
            reason TEXT,
            sale_id TEXT,
            at TEXT NOT NULL,             -- aware ISO time of the entry (event created_at)
            offline INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (event_id, n)
        )
        """
    )
    db.execute("CREATE INDEX loyalty_points_customer ON loyalty_points(customer_id, at)")
    db.execute("CREATE INDEX loyalty_points_orig ON loyalty_points(orig_customer_id)")
    db.execute(
        """
        CREATE TABLE loyalty_card_types (
            id TEXT PRIMARY KEY,
            number TEXT,
            description TEXT,
            active INTEGER,
            config TEXT,        -- JSON of CardType fields (one form, saved as a whole)
            _clock TEXT
        )
        """
    )
    db.execute(
        """
        CREATE TABLE loyalty_levels (
            id TEXT PRIMARY KEY,
            name TEXT,
            points INTEGER,
            active INTEGER,
            _clock TEXT
        )
        """
    )


@migrations()
def m002_balance_index(db) -> None:
    # The balance is a sum over a customer's entries: a covering index keeps it an index-only
    # scan (and finds birthday entries) however long the customer's history grows.
    db.execute("CREATE INDEX loyalty_points_sum ON loyalty_points(customer_id, kind, points)")


@migrations()
def m003_one_customer_index(db) -> None:
    # One index serves the balance (covering sum), the history (by time) and the kind checks,
    # and merges find their rows through it too (customers._apply_merged): each entry written
    # at a sale's commit now costs one index page instead of three.
    db.execute("DROP INDEX loyalty_points_orig")
    db.execute("DROP INDEX loyalty_points_sum")
    db.execute("DROP INDEX loyalty_points_customer")
    db.execute(
        "CREATE INDEX loyalty_points_customer ON loyalty_points(customer_id, at, kind, points)"
    )


customers.register_customer_ref("loyalty_points")


class LoyaltyError(ValueError):
    def __init__(self, errors: dict[str, str] | str):
        self.errors = errors if isinstance(errors, dict) else {"loyalty": errors}
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.errors.items()))


# -- card types (TiM "Kundenkarte") ----------------------------------------------------------------------
class SideRules(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The settings TiM keeps twice, for "Damen" and for "Herren"."""

    bonus_service_bp: int = 0  # % bonus (as points value) on services
    bonus_sales_bp: int = 0  # % bonus on goods
    return_weeks: int = 0  # reward a second visit within this many weeks …
    return_points: int = 0  # … with this many points
    redeem_factor: str = "1"  # 1 = 1 €, 1 point or 1 % depending on redeem_type
    redeem_type: int = REDEEM_AMOUNT  # 1 amount, 2 points, 3 direct %, 4 discount on points
    redeem_min: int = 0  # points needed to redeem (the till shows a hint from here)
    redeem_max: int = 0  # most points per redemption (0 = no limit)
    redeem_discount_service_bp: int = 0  # type 4: fewer points needed for services
    redeem_discount_sales_bp: int = 0  # type 4: … for goods
    direct_service_bp: int = 0  # type 3: direct % discount on services
    direct_sales_bp: int = 0  # type 3: direct % discount on goods
    direct_points: int = 0  # fixed points per visit
    visit_promo: bool = False  # show the promotion hint when redeem_min is reached
    visit_promo_text: str = ""


class CardType(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    id: str = ""
    number: str = ""
    description: str = ""
    active: bool = True
    validity_months: int = 24
    rounding: str = "exact"  # exact ("genaue Rundung") or old ("alte Rundung")
    conversion_factor: int = 100  # points per 1 € (100 points = 1 € → 100)
    points_on_discounted: bool = True
    forfeit_on_block: bool = False
    new_customer_points: int = 0
    birth_month_points: int = 0  # per visit in the birth month
    # "250;5;10": 250 points from 5 days before to 10 days after (TiM's default; "" = none)
    birthday_rule: str = "250;5;10"
    damen: SideRules = msgspec.field(default_factory=SideRules)
    herren: SideRules = msgspec.field(default_factory=SideRules)

    def side(self, side: str) -> SideRules:
        return self.herren if side == "herren" else self.damen


def parse_birthday_rule(text: str) -> tuple[int, int, int] | None:
    """'250;5;10' → (250 points, 5 days before, 10 days after); '' → None."""
    text = (text or "").strip()
    if not text:
        return None
    parts = [p.strip() for p in text.replace(",", ";").split(";")]
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(values) == 1:
        values += [0, 0]
    if len(values) != 3 or min(values) < 0 or values[1] > 60 or values[2] > 60:
        raise LoyaltyError({"birthday_rule": _(
            "Write points;days before;days after, e.g. 250;5;10."
        )})  # fmt: skip
    return values[0], values[1], values[2]


def _check_card_type(ct: CardType) -> dict[str, str]:
    errors: dict[str, str] = {}
    if not ct.description.strip() or len(ct.description) > 60:
        errors["description"] = _("Enter a description of at most 60 characters.")
    if not 1 <= ct.validity_months <= 240:
        errors["validity_months"] = _("Validity: 1 to 240 months.")
    if ct.rounding not in ROUNDING:
        errors["rounding"] = _("Choose exact or old rounding.")
    if not 1 <= ct.conversion_factor <= 100_000:
        errors["conversion_factor"] = _("The conversion factor must lie between 1 and 100000.")
    for name in ("new_customer_points", "birth_month_points"):
        if not 0 <= getattr(ct, name) <= 1_000_000:
            errors[name] = _("Expected a number from 0 to 1000000.")
    try:
        parse_birthday_rule(ct.birthday_rule)
    except LoyaltyError as exc:
        errors.update(exc.errors)
    for side_name in SIDES:
        side = ct.side(side_name)
        for name in ("bonus_service_bp", "bonus_sales_bp", "redeem_discount_service_bp",
                     "redeem_discount_sales_bp", "direct_service_bp", "direct_sales_bp"):  # fmt: skip
            if not 0 <= getattr(side, name) <= 10000:
                errors[f"{side_name}.{name}"] = _("The percentage must lie between 0 and 100.")
        if side.redeem_type not in (1, 2, 3, 4):
            errors[f"{side_name}.redeem_type"] = _(
                "Redemption type: 1 amount, 2 points, 3 direct discount, 4 discount on points."
            )
        try:
            factor = Decimal(side.redeem_factor)
            if not factor.is_finite() or factor <= 0 or factor > 10000:
                raise InvalidOperation
        except InvalidOperation:
            errors[f"{side_name}.redeem_factor"] = _("The redemption factor must be above 0.")
        if side.redeem_max and side.redeem_max < side.redeem_min:
            errors[f"{side_name}.redeem_max"] = _("The maximum lies below the minimum.")
        for name in ("return_weeks", "return_points", "redeem_min", "redeem_max", "direct_points"):
            if not 0 <= getattr(side, name) <= 1_000_000:
                errors[f"{side_name}.{name}"] = _("Expected a number from 0 to 1000000.")
        if len(side.visit_promo_text) > 200:
            errors[f"{side_name}.visit_promo_text"] = _("At most 200 characters.")
    return errors


def save_card_type(store: Store, data: dict[str, Any], type_id: str | None = None) -> str:
    """Create or change a card type from the form's values; returns its id."""
    try:
        ct = msgspec.convert({**data, "id": type_id or data.get("id") or ""}, CardType)
    except msgspec.ValidationError as exc:
        raise LoyaltyError({"card_type": str(exc)}) from exc
    errors = _check_card_type(ct)
    if errors:
        raise LoyaltyError(errors)
    tid = ct.id or events.new_id()
    config = msgspec.to_builtins(ct)
    config["id"] = tid
    events.emit(
        store,
        "loyalty.card_type_upserted",
        {"id": tid, "fields": {"number": ct.number.strip(), "description": ct.description.strip(),
                               "active": ct.active, "config": config}},
    )  # fmt: skip
    return tid


@events.handler("loyalty.card_type_upserted")
def _apply_card_type(store: Store, ev: events.Event) -> None:
    fields = dict(ev.payload["fields"])
    if "config" in fields:
        fields["config"] = msgspec.json.encode(fields["config"]).decode()
    if "active" in fields:
        fields["active"] = int(bool(fields["active"]))
    lww.upsert(store.db, "loyalty_card_types", {"id": ev.payload["id"]}, fields, ev.hlc)


def card_type(store: Store, type_id: str) -> CardType:
    row = store.db.execute(
        "SELECT config, active FROM loyalty_card_types WHERE id = ?", [type_id]
    ).fetchone()
    if row is None or row[0] is None:
        raise LoyaltyError(_("Unknown card type."))
    ct = msgspec.json.decode(row[0], type=CardType)
    return msgspec.structs.replace(ct, id=type_id, active=bool(row[1]))


def card_types(store: Store, *, active_only: bool = False) -> list[CardType]:
    where = "WHERE active = 1" if active_only else ""
    return [card_type(store, r[0]) for r in store.db.execute(
        f"SELECT id FROM loyalty_card_types {where} ORDER BY number, description"
    )]  # fmt: skip


# -- cards of a customer ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Card:
    card_no: str
    status: str
    valid_until: str | None
    type: CardType | None

    def usable_on(self, day: dt.date) -> bool:
        return self.status == "active" and (
            self.valid_until is None or self.valid_until[:10] >= day.isoformat()
        )


def active_card(store: Store, customer_id: str, day: dt.date | None = None) -> Card | None:
    """The customer's most recently issued usable card (its type decides the TiM rules)."""
    day = day or local_date(store.clock())
    rows = store.db.execute(
        "SELECT card_no, status, valid_until, card_type FROM customer_cards"
        " WHERE customer_id = ? ORDER BY issued_at DESC, card_no",
        [customers.resolve(store.db, customer_id)],
    ).fetchall()
    for card_no, status, valid_until, type_id in rows:
        ct = None
        if type_id:
            try:
                ct = card_type(store, type_id)
            except LoyaltyError:
                ct = None
        card = Card(card_no, status or "active", valid_until, ct)
        if card.usable_on(day):
            return card
    return None


def add_months(day: dt.date, months: int) -> dt.date:
    month = day.month - 1 + months
    year = day.year + month // 12
    month = month % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _book(store: Store, customer_id: str, card_no: str | None, entries: list[dict[str, Any]],
          *, offline: bool = False) -> events.Event:  # fmt: skip
    return events.emit(
        store,
        "loyalty.points_booked",
        {"customer_id": customer_id, "card_no": card_no, "entries": entries, "offline": offline},
    )


def issue_card(
    store: Store, customer_id: str, type_id: str, card_no: str | None = None
) -> str:
    """Give a customer a card of a type: valid for the type's months, welcome points once."""
    ct = card_type(store, type_id)
    if not ct.active:
        raise LoyaltyError(_("This card type is not active and cannot be issued."))
    customer = customers.get(store, customer_id)
    today = local_date(store.clock())
    with store.transaction():
        if card_no is None:
            card_no = generate_card_no(store)
        customers.assign_card(
            store, customer["id"], card_no, type_id,
            valid_until=add_months(today, ct.validity_months).isoformat(),
        )  # fmt: skip
        welcomed = store.db.execute(
            "SELECT 1 FROM loyalty_points WHERE customer_id = ? AND kind = 'welcome'",
            [customer["id"]],
        ).fetchone()
        if ct.new_customer_points and not welcomed:
            _book(store, customer["id"], card_no, [{
                "kind": "welcome", "points": ct.new_customer_points,
                "reason": _("Points for a new customer"),
            }])  # fmt: skip
    return card_no


def generate_card_no(store: Store) -> str:
    """An in-store EAN-13 (prefix 29): device number, per-device counter, check digit."""
    seq = store.next_counter("loyalty_card_no")
    body = f"29{store.identity.device_no:02d}{seq:08d}"
    return body + catalog.ean_check_digit(body)


def set_card_status(store: Store, card_no: str, status: str) -> None:
    """Block, deactivate or reactivate a card; points are forfeited if the type says so."""
    row = store.db.execute(
        "SELECT customer_id, card_type FROM customer_cards WHERE card_no = ?", [card_no]
    ).fetchone()
    if row is None:
        raise LoyaltyError(_("Unknown card."))
    with store.transaction():
        customers.set_card_status(store, card_no, status)
        if status in ("blocked", "inactive") and row[0] and row[1]:
            try:
                ct = card_type(store, row[1])
            except LoyaltyError:
                ct = None
            bal = balance(store, row[0])
            if ct is not None and ct.forfeit_on_block and bal > 0:
                _book(store, customers.resolve(store.db, row[0]), card_no, [{
                    "kind": "forfeit", "points": -bal,
                    "reason": _("Card {card} blocked").format(card=card_no),
                }])  # fmt: skip


def _cards_of_type(store: Store, type_id: str) -> list[tuple[str, str, str, str | None]]:
    return store.db.execute(
        "SELECT card_no, customer_id, coalesce(status, 'active'), valid_until FROM customer_cards"
        " WHERE card_type = ? ORDER BY card_no",
        [type_id],
    ).fetchall()


def deactivate_all(store: Store, type_id: str) -> int:
    """Deactivate every active card of a type (TiM bulk button); returns how many."""
    cards = [c for c in _cards_of_type(store, type_id) if c[2] == "active"]
    with store.transaction():
        for card_no, *_rest in cards:
            set_card_status(store, card_no, "inactive")
    return len(cards)


def reactivate_all(store: Store, type_id: str) -> int:
    """Reactivate every card of a type that was deactivated (not blocked ones)."""
    cards = [c for c in _cards_of_type(store, type_id) if c[2] == "inactive"]
    with store.transaction():
        for card_no, *_rest in cards:
            customers.set_card_status(store, card_no, "active")
    return len(cards)


def extend_expired(store: Store, type_id: str) -> int:
    """Give every expired card of a type a new validity of the type's months from today."""
    ct = card_type(store, type_id)
    today = local_date(store.clock())
    until = add_months(today, ct.validity_months).isoformat()
    expired = [c for c in _cards_of_type(store, type_id)
               if c[3] is not None and c[3][:10] < today.isoformat() and c[1]]  # fmt: skip
    with store.transaction():
        for card_no, customer_id, _status, _valid in expired:
            customers.assign_card(store, customers.resolve(store.db, customer_id), card_no,
                                  type_id, valid_until=until)  # fmt: skip
    return len(expired)


@dataclass(frozen=True)
class CardStats:
    active: int
    inactive: int
    blocked: int
    expired: int
    smallest: str | None
    largest: str | None


def _card_sort_key(card_no: str) -> tuple[int, str]:
    return (len(card_no), card_no) if card_no.isdigit() else (1_000, card_no)


def card_stats(store: Store, type_id: str) -> CardStats:
    """Counts of active, inactive, blocked and expired cards; smallest and largest number."""
    today = local_date(store.clock()).isoformat()
    counts = {"active": 0, "inactive": 0, "blocked": 0, "expired": 0}
    numbers = []
    for card_no, _cid, status, valid_until in _cards_of_type(store, type_id):
        numbers.append(card_no)
        if valid_until is not None and valid_until[:10] < today:
            counts["expired"] += 1
        else:
            counts[status if status in counts else "active"] += 1
    numbers.sort(key=_card_sort_key)
    return CardStats(**counts, smallest=numbers[0] if numbers else None,
                     largest=numbers[-1] if numbers else None)  # fmt: skip


# -- levels and gifts (Fastmag) --------------------------------------------------------------------------
def save_level(store: Store, name: str, points: int, *, active: bool = True,
               level_id: str | None = None) -> str:  # fmt: skip
    """Create or change a level: customers with this many points may pick its gifts."""
    name = " ".join((name or "").split())
    errors = {}
    if not name or len(name) > 40:
        errors["name"] = _("Enter a name of at most 40 characters.")
    if isinstance(points, bool) or not isinstance(points, int) or not 1 <= points <= 10_000_000:
        errors["points"] = _("A level needs a number of points above 0.")
    if not active and level_id and store.db.execute(
        "SELECT 1 FROM products WHERE gift_level_id = ? AND coalesce(active, 1) = 1", [level_id]
    ).fetchone():
        errors["active"] = _("Remove the gift products of this level first.")
    if errors:
        raise LoyaltyError(errors)
    lid = level_id or events.new_id()
    events.emit(store, "loyalty.level_upserted",
                {"id": lid, "fields": {"name": name, "points": points, "active": bool(active)}})
    return lid


@events.handler("loyalty.level_upserted")
def _apply_level(store: Store, ev: events.Event) -> None:
    fields = dict(ev.payload["fields"])
    if "active" in fields:
        fields["active"] = int(bool(fields["active"]))
    lww.upsert(store.db, "loyalty_levels", {"id": ev.payload["id"]}, fields, ev.hlc)


def levels(store: Store) -> list[dict[str, Any]]:
    return list(store.db.query(
        "SELECT id, name, points FROM loyalty_levels WHERE active = 1 ORDER BY points, name"
    ))  # fmt: skip


@dataclass(frozen=True)
class GiftOption:
    product: catalog.Product
    level_id: str
    level_name: str
    points: int
    reachable: bool


def gifts_for(store: Store, customer_id: str | None) -> list[GiftOption]:
    """Every gift with its level; only the reachable ones can be picked (Fastmag)."""
    bal = balance(store, customer_id) if customer_id else 0
    lvl = {row["id"]: row for row in levels(store)}
    out = []
    for product in catalog.gift_products(store):
        level = lvl.get(product.gift_level_id)
        if level is None:
            continue
        out.append(GiftOption(product, level["id"], level["name"], level["points"],
                              bal >= level["points"]))  # fmt: skip
    return out


# -- the ledger: recording (handlers) ---------------------------------------------------------------------
def record_entries(
    store: Store, ev: events.Event, customer_id: str, card_no: str | None,
    entries: list[dict[str, Any]], *, sale_id: str | None = None, offline: bool = False,
    start: int = 0,
) -> None:  # fmt: skip
    """Write ledger rows for an event (called only by event handlers)."""
    if not entries:
        return
    db = store.db
    current = customers.resolve(db, customer_id)
    db.conn.executemany(
        "INSERT OR IGNORE INTO loyalty_points (event_id, n, customer_id, orig_customer_id,"
        " card_no, kind, points, value_cents, reason, sale_id, at, offline)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(ev.id, start + i, current, customer_id, card_no, e["kind"], int(e["points"]),
          int(e.get("value_cents", 0)), e.get("reason"), sale_id, ev.created_at, int(offline))
         for i, e in enumerate(entries)],
    )  # fmt: skip
    raw = db.execute(
        "SELECT coalesce(sum(points), 0) FROM loyalty_points WHERE customer_id = ?", [current]
    ).fetchone()[0]
    stored_value.flag_overdraft(db, "points", current, raw, current, customer_id)


@events.handler("loyalty.points_booked")
def _apply_booked(store: Store, ev: events.Event) -> None:
    p = ev.payload
    record_entries(store, ev, p["customer_id"], p.get("card_no"), p["entries"],
                   offline=p.get("offline", False))  # fmt: skip


def adjust(store: Store, customer_id: str, points: int, reason: str) -> None:
    """Book a manual correction; the reason is mandatory and kept in the ledger."""
    reason = " ".join((reason or "").split())
    if not reason:
        raise LoyaltyError({"reason": _("Enter a reason for the correction.")})
    if isinstance(points, bool) or not isinstance(points, int) or points == 0:
        raise LoyaltyError({"points": _("Enter a whole number of points other than 0.")})
    customer = customers.get(store, customer_id)
    if points < 0 and balance(store, customer["id"]) + points < 0:
        raise LoyaltyError({"points": _("The balance would become negative.")})
    card = active_card(store, customer["id"])
    _book(store, customer["id"], card.card_no if card else None,
          [{"kind": "adjust", "points": points, "reason": reason[:200]}])  # fmt: skip


# -- the ledger: reading (expiry computed, FIFO) ------------------------------------------------------------
@dataclass(frozen=True)
class Entry:
    at: str
    kind: str
    points: int
    reason: str | None
    stored: bool  # False for computed expiries
    sale_id: str | None = None


@dataclass(frozen=True)
class Statement:
    customer_id: str
    entries: list[Entry]
    balance: int  # == sum of entries' points
    expiring: list[tuple[str, int]]  # (expiry time, points) of lots still valid, soonest first


def validity_delta(store: Store) -> tuple[int, str]:
    v = settings.get(store, "loyalty.validity")
    return v["n"], v["unit"]


def expires_at(earned: dt.datetime, n: int, unit: str) -> dt.datetime | None:
    if n <= 0:
        return None
    if unit == "days":
        return earned + dt.timedelta(days=n)
    months = n if unit == "months" else 12 * n
    day = add_months(earned.date(), months)
    return earned.replace(year=day.year, month=day.month, day=day.day)


def compute_statement(
    customer_id: str, rows: list[tuple], as_of: dt.datetime, n: int, unit: str
) -> Statement:
    """Pure FIFO: earned lots expire ``n unit`` after they were earned; spending eats oldest.

    ``rows`` are ``(at, kind, points, reason, sale_id)`` ordered by time. A spend larger than
    the valid lots (a merged offline double spend) leaves a deficit that later earnings pay
    off first: the balance is negative until then, never silently reset.
    """
    lots: deque[list] = deque()  # [earned_at, expires_at, remaining]
    deficit = 0
    out: list[Entry] = []

    def expire_until(moment: dt.datetime) -> None:
        due = sorted((lot for lot in lots if lot[1] is not None and lot[1] <= moment and lot[2] > 0),
                     key=lambda lot: lot[1])  # fmt: skip
        for lot in due:
            out.append(Entry(iso(lot[1]), "expire", -lot[2], _("Points expired"), False))
            lot[2] = 0
        while lots and lots[0][2] == 0:
            lots.popleft()

    for at, kind, points, reason, sale_id in rows:
        when = parse_iso(at)
        expire_until(when)
        out.append(Entry(at, kind, points, reason, True, sale_id))
        if points > 0:
            pay = min(deficit, points)
            deficit -= pay
            if points - pay:
                lots.append([when, expires_at(when, n, unit), points - pay])
        elif points < 0:
            need = -points
            for lot in lots:
                take = min(lot[2], need)
                lot[2] -= take
                need -= take
                if not need:
                    break
            deficit += need
            while lots and lots[0][2] == 0:
                lots.popleft()
    expire_until(as_of)
    remaining = sum(lot[2] for lot in lots)
    expiring = [(iso(lot[1]), lot[2]) for lot in lots if lot[1] is not None and lot[2] > 0]
    return Statement(customer_id, out, remaining - deficit, expiring)


def statement(store: Store, customer_id: str, as_of: dt.datetime | None = None) -> Statement:
    """Every entry with the computed expiries; the balance is their sum."""
    cid = customers.resolve(store.db, customer_id)
    rows = store.db.execute(
        "SELECT at, kind, points, reason, sale_id FROM loyalty_points WHERE customer_id = ?"
        " ORDER BY at, event_id, n",
        [cid],
    ).fetchall()
    n, unit = validity_delta(store)
    return compute_statement(cid, rows, as_of or store.clock(), n, unit)


def balance(store: Store, customer_id: str | None, as_of: dt.datetime | None = None) -> int:
    if not customer_id:
        return 0
    n, _unit = validity_delta(store)
    if n <= 0:  # nothing expires: the balance is the plain sum (fast path for the till)
        return store.db.execute(
            "SELECT coalesce(sum(points), 0) FROM loyalty_points WHERE customer_id = ?",
            [customers.resolve(store.db, customer_id)],
        ).fetchone()[0]
    return statement(store, customer_id, as_of).balance


# -- earning ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Program:
    enabled: bool
    points_on_discounted: bool
    points_on_repairs: bool
    webshop_earn: bool
    webshop_redeem: bool
    min_spend_cents: int
    points_per_euro: Decimal
    redeem_points: int
    redeem_value_cents: int
    redeem_min_points: int
    excluded_groups: frozenset[str]
    excluded_payments: frozenset[str]
    show_on_receipt: bool
    show_on_pdf: bool


def program(store: Store) -> Program:
    # one query for the whole programme (it is read on every quote), defaults for the rest
    stored = {
        key: msgspec.json.decode(value)
        for key, value in store.db.execute(
            "SELECT key, value FROM settings WHERE key >= 'loyalty.' AND key < 'loyalty/'"
            " AND value IS NOT NULL"
        )
    }
    defs = settings.definitions()

    def g(key: str) -> Any:
        full = f"loyalty.{key}"
        return stored[full] if full in stored else defs[full].default

    return Program(
        g("enabled"), g("points_on_discounted"), g("points_on_repairs"), g("webshop_earn"),
        g("webshop_redeem"), g("min_spend_cents"), Decimal(g("points_per_euro")),
        g("redeem_points"), g("redeem_value_cents"), g("redeem_min_points"),
        frozenset(g("excluded_groups")), frozenset(g("excluded_payment_methods")),
        g("show_on_receipt"), g("show_on_pdf"),
    )  # fmt: skip


def customer_side(customer: dict[str, Any] | None, lines: list[Line]) -> str:
    """Which TiM column applies: the customer's salutation, else the larger share of lines."""
    gender = (customer or {}).get("gender")
    if gender == "f":
        return "damen"
    if gender == "m":
        return "herren"
    shares = {"damen": 0, "herren": 0}
    for ln in lines:
        if ln.gender in shares and ln.kind == "product":
            shares[ln.gender] += max(0, ln.total_cents)
    return "herren" if shares["herren"] > shares["damen"] else "damen"


def bonus_points(cents: int, bp: int, factor: int, rounding: str) -> int:
    """Points for a % bonus on an amount: exact rounds the points half up from the cent
    amount; old truncates the amount to whole euros first and drops fractions of points."""
    if cents <= 0 or bp <= 0:
        return 0
    if rounding == "old":
        return (cents // 100 * 100) * bp * factor // 1_000_000
    return int((Decimal(cents * bp * factor) / 1_000_000).to_integral_value(ROUND_HALF_UP))


def base_points(eligible_cents: int, prog: Program) -> int:
    """Points per full block of the minimum spend at the points-per-euro rate, rounded down."""
    if eligible_cents <= 0:
        return 0
    blocks = eligible_cents // prog.min_spend_cents
    return int((Decimal(blocks * prog.min_spend_cents) * prog.points_per_euro / 100)
               .to_integral_value(ROUND_FLOOR))  # fmt: skip


def birthday_in_window(birth: dt.date, day: dt.date, before: int, after: int) -> int | None:
    """The year of the birthday whose window contains ``day`` (None when outside)."""
    for year in (day.year - 1, day.year, day.year + 1):
        try:
            bday = birth.replace(year=year)
        except ValueError:  # 29 February in a common year
            bday = dt.date(year, 2, 28)
        if bday - dt.timedelta(days=before) <= day <= bday + dt.timedelta(days=after):
            return year
    return None


@dataclass
class EarnContext:
    lines: list[Line]
    payments: list[tuple[str, int]]  # (method, cents)
    customer: dict[str, Any]
    card: Card | None
    when: dt.datetime
    channel: str = "pos"
    previous_visit: dt.date | None = None
    birthday_taken: set[int] = field(default_factory=set)  # years already rewarded


def compute_earn(prog: Program, ctx: EarnContext) -> list[dict[str, Any]]:
    """Every points entry a sale earns (amounts final: the handler only records them)."""
    if not prog.enabled or (ctx.channel == "web" and not prog.webshop_earn):
        return []
    ct = ctx.card.type if ctx.card else None
    allow_discounted = prog.points_on_discounted and (ct is None or ct.points_on_discounted)

    def eligible(ln: Line) -> bool:
        if ln.kind not in ("product", "return") or ln.group_id in prog.excluded_groups:
            return False
        if ln.article_kind == "repair" and not prog.points_on_repairs:
            return False
        return allow_discounted or not ln.discounted

    lines = [ln for ln in ctx.lines if eligible(ln)]
    positive = sum(ln.total_cents for ln in lines if ln.total_cents > 0)
    negative = -sum(ln.total_cents for ln in lines if ln.total_cents < 0)
    entries: list[dict[str, Any]] = []
    if negative > positive:  # a refund: take back what the returned amount once earned
        pts = base_points(negative - positive, prog)
        if pts:
            entries.append({"kind": "clawback", "points": -pts, "reason": _("Return")})
        return entries
    excluded_paid = sum(c for m, c in ctx.payments if m in prog.excluded_payments and c > 0)
    eligible_cents = max(0, positive - negative - excluded_paid)
    pts = base_points(eligible_cents, prog)
    if pts:
        entries.append({"kind": "earn", "points": pts, "reason": _("Purchase")})
    if ct is None:
        return entries
    side_name = customer_side(ctx.customer, ctx.lines)
    # % bonus per article kind and gender, scaled like the base by excluded payments
    sums: dict[tuple[str, str], int] = {}
    for ln in lines:
        if ln.total_cents <= 0:
            continue
        kind = "service" if ln.article_kind in ("service", "repair") else "sales"
        key = (kind, ln.gender if ln.gender in SIDES else side_name)
        sums[key] = sums.get(key, 0) + ln.total_cents
    for (kind, gender), cents in sorted(sums.items()):
        if positive and excluded_paid:
            cents = cents * eligible_cents // positive
        side = ct.side(gender)
        bp = side.bonus_service_bp if kind == "service" else side.bonus_sales_bp
        bonus = bonus_points(cents, bp, ct.conversion_factor, ct.rounding)
        if bonus:
            label = _("Bonus on services") if kind == "service" else _("Bonus on goods")
            entries.append({"kind": "bonus", "points": bonus, "reason": f"{label} ({gender})"})
    side = ct.side(side_name)
    day = local_date(ctx.when)
    if side.direct_points:
        entries.append({"kind": "visit", "points": side.direct_points, "reason": _("Visit")})
    birth = ctx.customer.get("birth_date")
    if birth:
        born = dt.date.fromisoformat(birth)
        if ct.birth_month_points and born.month == day.month:
            entries.append({"kind": "birth_month", "points": ct.birth_month_points,
                            "reason": _("Visit in the birth month")})  # fmt: skip
        rule = parse_birthday_rule(ct.birthday_rule)
        if rule and rule[0]:
            year = birthday_in_window(born, day, rule[1], rule[2])
            if year is not None and year not in ctx.birthday_taken:
                entries.append({"kind": "birthday", "points": rule[0],
                                # birthdays_taken() reads the year back from the text
                                "reason": _("Birthday {year}").format(year=year)})  # fmt: skip
    if side.return_weeks and side.return_points and ctx.previous_visit is not None:
        gap = (day - ctx.previous_visit).days
        if 0 < gap <= side.return_weeks * 7:
            entries.append({"kind": "return_visit", "points": side.return_points,
                            "reason": _("Came back within {weeks} weeks").format(
                                weeks=side.return_weeks)})  # fmt: skip
    return entries


def birthdays_taken(store: Store, customer_id: str) -> set[int]:
    """Years whose birthday points were booked (the year is the 4-digit number in the reason,
    in whatever language the booking till used)."""
    return {
        int(m.group(1))
        for (reason,) in store.db.execute(
            "SELECT reason FROM loyalty_points WHERE customer_id = ? AND kind = 'birthday'",
            [customers.resolve(store.db, customer_id)],
        )
        if (m := _YEAR_RE.search(reason or ""))
    }


_YEAR_RE = re.compile(r"(?<!\d)(\d{4})(?!\d)")


# -- redeeming ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RedeemRules:
    """How points turn into money or a discount for this customer right now."""

    type: int
    factor: Decimal
    conversion: int  # points per 1 € (programme: redeem_points per redeem_value)
    value_cents_per: tuple[int, int]  # (points, cents): value = points × cents // points
    min_points: int
    max_points: int
    rounding: str
    discount_service_bp: int
    discount_sales_bp: int
    direct_service_bp: int
    direct_sales_bp: int
    promo: bool
    promo_text: str


def redeem_rules(store: Store, card: Card | None, side_name: str,
                 prog: Program | None = None) -> RedeemRules:  # fmt: skip
    prog = prog or program(store)
    if card is None or card.type is None:
        return RedeemRules(REDEEM_AMOUNT, Decimal(1), 0,
                           (prog.redeem_points, prog.redeem_value_cents), prog.redeem_min_points,
                           0, "exact", 0, 0, 0, 0, False, "")  # fmt: skip
    ct, side = card.type, card.type.side(side_name)
    factor = Decimal(side.redeem_factor)
    if side.redeem_type == REDEEM_POINTS:
        per = (ct.conversion_factor, 100)
    else:  # amount / discount on points: factor euros per conversion_factor points
        scaled = factor * 100
        per = (ct.conversion_factor, int(scaled)) if scaled == scaled.to_integral_value() else (
            int(ct.conversion_factor * 100), int(scaled * 100))  # fmt: skip
    return RedeemRules(
        side.redeem_type, factor, ct.conversion_factor, per, side.redeem_min, side.redeem_max,
        ct.rounding, side.redeem_discount_service_bp, side.redeem_discount_sales_bp,
        side.direct_service_bp, side.direct_sales_bp, side.visit_promo, side.visit_promo_text,
    )  # fmt: skip


def points_value(points: int, rules: RedeemRules) -> int:
    """Money value of points, rounded down (old rounding: to whole euros)."""
    if points <= 0:
        return 0
    pts, cents = rules.value_cents_per
    value = points * cents // pts
    return value // 100 * 100 if rules.rounding == "old" else value


def points_for_value(cents: int, rules: RedeemRules) -> int:
    """The fewest points worth at least ``cents`` (before capping the value at what is due)."""
    pts, per = rules.value_cents_per
    if per <= 0:
        return 0
    need = -(-cents * pts // per)
    while points_value(need, rules) < cents:  # old rounding: climb to the next full euro
        need += 1
    return need


@dataclass(frozen=True)
class Redemption:
    points: int  # points taken from the balance
    value_cents: int  # money value (a 'points' payment); 0 for a direct % discount
    type: int
    direct_bp: dict[str, int]  # type 3: {'service': bp, 'goods': bp}
    label: str


@dataclass(frozen=True)
class LoyaltyInfo:
    """What the till shows next to the customer."""

    enabled: bool
    balance: int
    redeemable_points: int
    redeemable_cents: int
    min_points: int
    can_redeem: bool
    hint: str  # shown when the minimum is reached
    card_no: str | None
    card_type: str | None


def _kind_shares(lines: list[Line]) -> tuple[int, int]:
    svc = sum(ln.total_cents for ln in lines if ln.discountable
              and ln.article_kind in ("service", "repair"))  # fmt: skip
    goods = sum(ln.total_cents for ln in lines if ln.discountable) - svc
    return svc, goods


def plan_redemption(
    store: Store, rules: RedeemRules, bal: int, points: int | None, lines: list[Line],
    due_cents: int,
) -> Redemption:  # fmt: skip
    """Check and price a redemption request (``points=None``: as much as is useful)."""
    if bal < max(1, rules.min_points):
        raise LoyaltyError(_("At least {n} points are needed to redeem.").format(
            n=max(1, rules.min_points)))  # fmt: skip
    cap = min(bal, rules.max_points) if rules.max_points else bal
    if rules.type == REDEEM_DIRECT_PERCENT:
        take = rules.min_points or cap if points is None else points
        if not 0 < take <= cap:
            raise LoyaltyError(_("Between {lo} and {hi} points can be redeemed.").format(
                lo=max(1, rules.min_points), hi=cap))  # fmt: skip
        fallback = int(rules.factor * 100)
        direct = {"service": rules.direct_service_bp or fallback,
                  "goods": rules.direct_sales_bp or fallback}  # fmt: skip
        return Redemption(take, 0, rules.type, direct, _("Loyalty discount"))
    if due_cents <= 0:
        raise LoyaltyError(_("Nothing is due that points could pay."))
    discount_bp = 0
    if rules.type == REDEEM_DISCOUNT_ON_POINTS:
        svc, goods = _kind_shares(lines)
        if svc + goods > 0:
            discount_bp = (svc * rules.discount_service_bp + goods * rules.discount_sales_bp) // (
                svc + goods)  # fmt: skip

    def cost(face_points: int) -> int:  # type 4: the points needed are discounted
        return face_points - face_points * discount_bp // 10000

    def most_face(budget: int, limit: int) -> int:
        """The largest face value up to ``limit`` whose cost fits ``budget`` (closed form,
        then a step or two: a loop point by point would hang the till on big balances)."""
        if discount_bp >= 10000:
            return limit
        face = min(limit, budget * 10000 // (10000 - discount_bp))
        while face < limit and cost(face + 1) <= budget:
            face += 1
        while face > 0 and cost(face) > budget:
            face -= 1
        return face

    useful = points_for_value(due_cents, rules)  # more face value than is due buys nothing
    if points is None:
        face = most_face(cap, useful)
    else:
        if isinstance(points, bool) or not isinstance(points, int) or not 0 < points <= cap:
            raise LoyaltyError(_("Between {lo} and {hi} points can be redeemed.").format(
                lo=max(1, rules.min_points), hi=cap))  # fmt: skip
        # the customer offers ``points``: buy as much face value as they pay for, but never
        # more than is due (asking for 5000 points on a 30 € basket spends only 30 € worth)
        face = most_face(points, useful) if discount_bp else min(points, useful)
    if rules.type == REDEEM_POINTS and rules.factor > 1:
        step = int(rules.factor)
        face -= face % step
    value = min(points_value(face, rules), due_cents)
    spent = cost(face) if points is None else min(points, cost(face))
    if value <= 0 or spent <= 0:
        raise LoyaltyError(_("These points are worth less than one cent."))
    return Redemption(spent, value, rules.type, {}, _("Points redeemed"))


_UNSET: Any = object()


def info(store: Store, customer_id: str | None, lines: list[Line] = (), due_cents: int = 0,
         customer: dict[str, Any] | None = None, channel: str = "pos", *,
         prog: Program | None = None, card: Card | None = _UNSET,
         bal: int | None = None) -> LoyaltyInfo:  # fmt: skip
    """Balance, redeemable value and the hint shown at the till.

    ``prog``, ``card`` and ``bal`` may be passed when the caller (the quote) has them already:
    the balance is a sum over the customer's ledger, worth reading once per quote only.
    """
    prog = prog or program(store)
    if not customer_id or not prog.enabled:
        return LoyaltyInfo(prog.enabled, 0, 0, 0, 0, False, "", None, None)
    if card is _UNSET:
        card = active_card(store, customer_id)
    side = customer_side(customer, list(lines))
    rules = redeem_rules(store, card, side, prog)
    if bal is None:
        bal = balance(store, customer_id)
    cap = min(bal, rules.max_points) if rules.max_points else bal
    reachable = bal >= max(1, rules.min_points) and (channel != "web" or prog.webshop_redeem)
    value = points_value(cap, rules) if rules.type != REDEEM_DIRECT_PERCENT else 0
    hint = ""
    if reachable and rules.min_points:
        hint = _("{points} points: the customer can redeem them now.").format(points=bal)
        if rules.promo and rules.promo_text:
            hint = f"{hint} {rules.promo_text}"
    return LoyaltyInfo(True, bal, cap if reachable else 0, value if reachable else 0,
                       rules.min_points, reachable, hint, card.card_no if card else None,
                       card.type.description if card and card.type else None)  # fmt: skip
