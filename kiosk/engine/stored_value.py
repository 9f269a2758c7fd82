"""What points, gift cards and e-wallets share: offline limits, overdraft flags, card codes.

Offline policy. Two devices cut off from the hub can both spend the same balance. Each
redemption command is therefore told whether the device is in sync with the hub (argument
``online``, or the connectivity flag the sync layer sets with :func:`set_connectivity`).
Offline, a card may spend at most the per-store limit per shop-local day (settings
``offline.*_limit_cents``); beyond that the command refuses with a readable message.

Overdrafts. Ledgers are unions of events, so after two offline devices merge, a balance can
be negative. Handlers never drop or alter entries; they call :func:`flag_overdraft` after
writing, which keeps one ``ledger_overdrafts`` row per negative account. The row is a pure
function of the account's entries, so every replica ends with the same list whatever the
order in which events arrived.

Codes. Generated gift card, wallet, voucher and loyalty card numbers are
``prefix + device_no + per-device counter + keyed check digits + Luhn digit``: unique in the
store without coordination (the device number), unguessable without the store's key (HMAC),
and typo-proof at the till (Luhn).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
from dataclasses import dataclass

from sqlite_utils import Migrations

from kiosk.engine import customers, settings
from kiosk.engine.clock import iso, local_date, parse_iso
from kiosk.engine.store import Store, register_migrations
from kiosk.i18n import _

_LOGGER = logging.getLogger(__name__)

migrations = register_migrations(Migrations("kiosk.stored_value"))

LEDGERS = ("points", "giftcard", "wallet")
_DAY = dt.timedelta(days=1)

settings.define(
    "offline.points_limit_cents",
    2000,
    settings.check_int(0, 10_000_000),
    "Points worth at most this much (cents) may be redeemed per card and day while offline",
)
settings.define(
    "offline.giftcard_limit_cents",
    5000,
    settings.check_int(0, 10_000_000),
    "Gift cards and vouchers: at most this much (cents) per card and day while offline",
)
settings.define(
    "offline.wallet_limit_cents",
    5000,
    settings.check_int(0, 10_000_000),
    "E-wallets: at most this much (cents) per card and day while offline",
)


@migrations()
def m001_overdrafts(db) -> None:
    db.execute(
        """
        CREATE TABLE ledger_overdrafts (
            ledger TEXT NOT NULL,          -- points, giftcard, wallet
            account TEXT NOT NULL,         -- customer id, gift card code, wallet number
            balance INTEGER NOT NULL,      -- negative: cents, or points for the points ledger
            customer_id TEXT,
            orig_customer_id TEXT,
            PRIMARY KEY (ledger, account)
        )
        """
    )


customers.register_customer_ref("ledger_overdrafts")


class RedemptionRefused(ValueError):
    """A redemption is not allowed (offline limit, expired card, not enough balance…)."""


# -- connectivity ------------------------------------------------------------------------------
def set_connectivity(store: Store, online: bool) -> None:
    """Record whether this device is in sync with the hub (called by the sync layer).

    Device-local state, not shop data: it lives in ``meta`` and is never replicated. A device
    that works alone (no hub configured) is authoritative and marks itself online.
    """
    with store.transaction():
        store.set_meta("sync.online", "1" if online else "0")
        store.set_meta("sync.online_at", iso(store.clock()))


def is_online(store: Store) -> bool:
    """Whether the sync layer last reported the device in sync (offline until told)."""
    return store.get_meta("sync.online") == "1"


def resolve_online(store: Store, online: bool | None) -> bool:
    return is_online(store) if online is None else bool(online)


def offline_limit(store: Store, ledger: str) -> int:
    return settings.get(store, f"offline.{ledger}_limit_cents")


def offline_spent_today(store: Store, table: str, account_col: str, account: str) -> int:
    """Cents spent offline today from one account (``value_cents`` of offline debit rows)."""
    today = local_date(store.clock())
    total = 0
    for at, value in store.db.execute(
        f"SELECT at, value_cents FROM [{table}] WHERE [{account_col}] = ? AND offline = 1"
        " AND value_cents > 0 AND at >= ?",
        [account, iso(store.clock().replace(hour=0, minute=0, second=0, microsecond=0)
                      - _DAY)],
    ):  # fmt: skip
        if local_date(parse_iso(at)) == today:
            total += value
    return total


def check_offline(
    store: Store, ledger: str, *, online: bool, spent_today: int, amount_cents: int
) -> None:
    """Refuse an offline redemption that would pass the per-card daily limit."""
    if online or amount_cents <= 0:
        return
    limit = offline_limit(store, ledger)
    if spent_today + amount_cents > limit:
        left = max(0, limit - spent_today)
        raise RedemptionRefused(
            _(
                "The till is offline: at most {left} can be used from this card today "
                "(offline limit {limit} per day). Try again when the connection is back."
            ).format(left=format_cents(left), limit=format_cents(limit))
        )


# -- overdrafts ----------------------------------------------------------------------------------
def flag_overdraft(
    db, ledger: str, account: str, balance: int, customer_id: str | None = None,
    orig_customer_id: str | None = None,
) -> None:  # fmt: skip
    """Keep the overdraft list in step with an account's balance (called by handlers)."""
    if balance < 0:
        db.execute(
            "INSERT INTO ledger_overdrafts (ledger, account, balance, customer_id,"
            " orig_customer_id) VALUES (?, ?, ?, ?, ?) ON CONFLICT(ledger, account)"
            " DO UPDATE SET balance = excluded.balance, customer_id = excluded.customer_id,"
            " orig_customer_id = excluded.orig_customer_id",  # the owner may arrive later
            [ledger, account, balance, customer_id, orig_customer_id],
        )
    else:
        db.execute(
            "DELETE FROM ledger_overdrafts WHERE ledger = ? AND account = ?", [ledger, account]
        )


@dataclass(frozen=True)
class Overdraft:
    ledger: str
    account: str
    balance: int
    customer_id: str | None


def overdrafts(store: Store) -> list[Overdraft]:
    """Accounts whose merged ledger went below zero (listed for the owner to settle)."""
    return [
        Overdraft(*row)
        for row in store.db.execute(
            "SELECT ledger, account, balance, customer_id FROM ledger_overdrafts"
            " ORDER BY ledger, account"
        )
    ]


# -- codes ----------------------------------------------------------------------------------------
def luhn_digit(digits: str) -> str:
    """Return the Luhn check digit for a string of digits."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def luhn_ok(number: str) -> bool:
    return number.isdigit() and len(number) > 1 and luhn_digit(number[:-1]) == number[-1]


def new_code(store: Store, prefix: str, counter: str, keyed_digits: int = 5) -> str:
    """Generate a store-unique, unguessable, Luhn-checked number (inside a transaction)."""
    seq = store.next_counter(counter)
    body = f"{prefix}{store.identity.device_no:02d}{seq:07d}"
    mac = hmac.new(store.secret_key, f"{store.identity.store_id}:{body}".encode(), hashlib.sha256)
    keyed = str(int.from_bytes(mac.digest()[:8], "big") % 10**keyed_digits).zfill(keyed_digits)
    return body + keyed + luhn_digit(body + keyed)


def format_cents(cents: int) -> str:
    """Format cents the German way: 1234 → '12,34 €'."""
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    euros = f"{cents // 100:,}".replace(",", ".")
    return f"{sign}{euros},{cents % 100:02d} €"

