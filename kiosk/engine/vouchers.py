"""POS vouchers in tiers and VIP cards (Fastmag).

POS vouchers ("Ausgabe von Geschenkgutscheinen am Point of Sale in Etappen"): a sale that
reaches a tier earns a voucher printed at the foot of the receipt, either a percentage of the
sale ("from 50 € → 5 %, from 100 € → 10 %") or a fixed amount ("from 50 € → 5 €"). The voucher
is a gift card of kind ``voucher`` with its own validity; the basis is what the customer paid
for goods and services (after discounts; stored value sold and returns do not count).

VIP cards: codes ``#VIP#`` followed by letters or digits, linked to a customer, with a
discount rate and an expiry. A sale with the card can alert managers by SMS: the message is
queued in ``messages_outbox`` in the same transaction as the sale.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass
from typing import Any

import msgspec
from sqlite_utils import Migrations

from kiosk.engine import customers, events, lww, settings
from kiosk.engine.promotions import percent_of
from kiosk.engine.store import Store, register_migrations
from kiosk.i18n import _

_LOGGER = logging.getLogger(__name__)

migrations = register_migrations(Migrations("kiosk.vouchers"))

VIP_RE = re.compile(r"^#VIP#[A-Za-z0-9]{1,24}$")
MODES = ("percent", "amount")


def _check_tiers(value: Any) -> list[list[int]]:
    if not isinstance(value, list):
        raise settings.SettingError(_("Expected a list of [from cents, value] pairs."))
    out = []
    for item in value:
        if (
            not isinstance(item, (list, tuple)) or len(item) != 2
            or any(isinstance(v, bool) or not isinstance(v, int) or v <= 0 for v in item)
        ):  # fmt: skip
            raise settings.SettingError(_("Each tier is [from cents, value] with whole numbers above 0."))
        out.append([item[0], item[1]])
    out.sort()
    if len({t[0] for t in out}) != len(out):
        raise settings.SettingError(_("Two tiers start at the same amount."))
    return out


settings.define("vouchers.pos_enabled", False, settings.check_bool,
                "Print a voucher at the foot of the receipt when a sale reaches a tier")  # fmt: skip
settings.define("vouchers.pos_mode", "percent", settings.check_choice(*MODES),
                "Tier values are percentages (basis points) or amounts (cents)")  # fmt: skip
settings.define("vouchers.pos_tiers", [[5000, 500], [10000, 1000], [15000, 1500]], _check_tiers,
                "Tiers: [from cents, value]; from 50 € → 5 %, from 100 € → 10 % …")  # fmt: skip
settings.define("vouchers.validity_days", 90, settings.check_int(1, 3650),
                "POS vouchers stay valid this many days")  # fmt: skip
settings.define("vouchers.min_sale_for_use_cents", 0, settings.check_int(0, 10_000_000),
                "A voucher can only be used in a sale of at least this amount (0 = any)")  # fmt: skip


@migrations()
def m001_vip(db) -> None:
    db.execute(
        """
        CREATE TABLE vip_cards (
            code TEXT PRIMARY KEY,
            customer_id TEXT,
            orig_customer_id TEXT,
            discount_bp INTEGER,
            valid_until TEXT,       -- shop-local date, inclusive
            alert_phones TEXT,      -- JSON list of E.164 numbers
            active INTEGER,
            _clock TEXT
        )
        """
    )
    db.execute("CREATE INDEX vip_cards_customer ON vip_cards(customer_id)")


customers.register_customer_ref("vip_cards")


class VoucherError(ValueError):
    def __init__(self, errors: dict[str, str] | str):
        self.errors = errors if isinstance(errors, dict) else {"voucher": errors}
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.errors.items()))


# -- POS tier vouchers -------------------------------------------------------------------------------------
def pos_voucher_value(store: Store, basis_cents: int) -> int:
    """The voucher a sale of ``basis_cents`` earns (0 when below the first tier or off)."""
    if not settings.get(store, "vouchers.pos_enabled") or basis_cents <= 0:
        return 0
    reached = [t for t in settings.get(store, "vouchers.pos_tiers") if basis_cents >= t[0]]
    if not reached:
        return 0
    value = reached[-1][1]
    if settings.get(store, "vouchers.pos_mode") == "percent":
        return percent_of(basis_cents, value)
    return value


def next_tier(store: Store, basis_cents: int) -> tuple[int, int] | None:
    """(cents still to spend, value) of the next tier: "spend 12 € more for a 10 € voucher"."""
    if not settings.get(store, "vouchers.pos_enabled"):
        return None
    for start, value in settings.get(store, "vouchers.pos_tiers"):
        if basis_cents < start:
            return start - basis_cents, value
    return None


def voucher_valid_until(store: Store, today: dt.date) -> dt.date:
    return today + dt.timedelta(days=settings.get(store, "vouchers.validity_days"))


# -- VIP cards ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class VipCard:
    code: str
    customer_id: str
    discount_bp: int
    valid_until: str | None
    alert_phones: list[str]
    active: bool


def save_vip(store: Store, code: str, customer_id: str, discount_bp: int, *,
             valid_until: str | dt.date | None = None, alert_phones: list[str] = (),
             active: bool = True) -> str:  # fmt: skip
    """Assign a VIP card (scanned or typed ``#VIP#…``) to a customer."""
    errors: dict[str, str] = {}
    code = (code or "").strip()
    if not VIP_RE.match(code):
        errors["code"] = _("A VIP card code starts with #VIP# followed by letters or digits.")
    if isinstance(discount_bp, bool) or not isinstance(discount_bp, int) or not 0 < discount_bp <= 10000:
        errors["discount_bp"] = _("The discount must lie between 0.01 and 100 %.")
    until = None
    if valid_until not in (None, ""):
        try:
            until = (valid_until if isinstance(valid_until, dt.date)
                     else dt.date.fromisoformat(str(valid_until))).isoformat()  # fmt: skip
        except ValueError:
            errors["valid_until"] = _("Enter the date as YYYY-MM-DD.")
    phones = []
    for raw in alert_phones:
        try:
            phones.append(customers.normalise_phone(raw))
        except ValueError as exc:
            errors["alert_phones"] = str(exc)
    try:
        customer = customers.get(store, customer_id)
    except customers.NotFound:
        errors["customer_id"] = _("Unknown customer.")
        customer = None
    if customer and not errors:
        row = store.db.execute("SELECT customer_id FROM vip_cards WHERE code = ?", [code]).fetchone()
        if row and row[0] and customers.resolve(store.db, row[0]) != customer["id"]:
            errors["code"] = _("This VIP card belongs to another customer.")
    if errors:
        raise VoucherError(errors)
    events.emit(store, "vip.upserted", {"code": code, "fields": {
        "customer_id": customer["id"], "orig_customer_id": customer["id"],
        "discount_bp": discount_bp, "valid_until": until, "alert_phones": phones,
        "active": bool(active)}})  # fmt: skip
    return code


@events.handler("vip.upserted")
def _apply_vip(store: Store, ev: events.Event) -> None:
    fields = dict(ev.payload["fields"])
    if "alert_phones" in fields:
        fields["alert_phones"] = msgspec.json.encode(fields["alert_phones"]).decode()
    if "active" in fields:
        fields["active"] = int(bool(fields["active"]))
    if "orig_customer_id" in fields:
        fields["customer_id"] = customers.resolve(store.db, fields["orig_customer_id"])
    lww.upsert(store.db, "vip_cards", {"code": ev.payload["code"]}, fields, ev.hlc)


def lookup_vip(store: Store, code: str, day: dt.date) -> VipCard:
    """A usable VIP card, or VoucherError saying why not."""
    code = (code or "").strip()
    row = store.db.execute(
        "SELECT code, customer_id, discount_bp, valid_until, alert_phones, active FROM vip_cards"
        " WHERE code = ?", [code],
    ).fetchone()  # fmt: skip
    if row is None:
        raise VoucherError(_("Unknown VIP card {code}.").format(code=code))
    card = VipCard(row[0], row[1], row[2], row[3], msgspec.json.decode(row[4] or "[]"),
                   bool(row[5]))  # fmt: skip
    if not card.active:
        raise VoucherError(_("The VIP card {code} is not active.").format(code=code))
    if card.valid_until and card.valid_until < day.isoformat():
        raise VoucherError(_("The VIP card {code} expired on {date}.").format(
            code=code, date=card.valid_until))  # fmt: skip
    return card


def is_vip_code(text: str) -> bool:
    return (text or "").strip().upper().startswith("#VIP#")
