"""E-wallets (Fastmag "KMU", porte-monnaie électronique): load, then spend bit by bit.

A wallet type says what a wallet may pay for (optional article family, Fastmag's condition
``f.family = 'Hose'``) and whether it loads a fixed amount (``load_cents`` credited for
``pay_cents`` paid, e.g. 100 € for 90 €) or any amount the customer asks for (no load amount:
"free KDO"). A wallet never holds more than the cap (setting ``wallet.cap_cents``, default
150 €). Unlike a gift card it may be used partially. Wallets are linked to a customer so a lost
card's money can be found from the customer record.

Ledger ``wallet_entries``: append-only, keyed by event id and entry index; balance = sum.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Migrations

from kiosk.engine import customers, events, lww, settings, stored_value
from kiosk.engine.promotions import Line
from kiosk.engine.store import Store, register_migrations
from kiosk.i18n import _

_LOGGER = logging.getLogger(__name__)

migrations = register_migrations(Migrations("kiosk.wallet"))

settings.define("wallet.cap_cents", 15000, settings.check_int(100, 10_000_000),
                "Most an e-wallet may hold (cents); Fastmag's default is 150 €")  # fmt: skip

_NUMBER_RE = re.compile(r"^[A-Za-z0-9\-]{6,32}$")
_CONDITION_RE = re.compile(r"""^\s*f\.family\s*=\s*['"](?P<family>[^'"]+)['"]\s*;?\s*$""", re.I)


@migrations()
def m001_wallet(db) -> None:
    db.execute(
        """
        CREATE TABLE wallet_types (
            id TEXT PRIMARY KEY,
            name TEXT,
            family TEXT,          -- '' = any article; else only lines of this family
            load_cents INTEGER,   -- NULL: free amount
            pay_cents INTEGER,    -- what the customer pays for a fixed load
            active INTEGER,
            _clock TEXT
        )
        """
    )
    db.execute(
        """
        CREATE TABLE wallets (
            number TEXT PRIMARY KEY,
            type_id TEXT,
            customer_id TEXT,
            orig_customer_id TEXT,
            created_at TEXT
        )
        """
    )
    db.execute("CREATE INDEX wallets_customer ON wallets(customer_id)")
    db.execute(
        """
        CREATE TABLE wallet_entries (
            event_id TEXT NOT NULL,
            n INTEGER NOT NULL,
            number TEXT NOT NULL,
            kind TEXT NOT NULL,              -- load, debit, refund
            amount_cents INTEGER NOT NULL,   -- signed
            value_cents INTEGER NOT NULL DEFAULT 0,  -- spent (offline limit)
            customer_id TEXT,
            orig_customer_id TEXT,
            sale_id TEXT,
            at TEXT NOT NULL,
            offline INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (event_id, n)
        )
        """
    )
    db.execute("CREATE INDEX wallet_entries_number ON wallet_entries(number, at)")
    db.execute("CREATE INDEX wallet_entries_customer ON wallet_entries(customer_id)")


@migrations()
def m002_balance_index(db) -> None:
    # balance = sum of the entries: a covering index keeps the sum an index-only scan
    db.execute("CREATE INDEX wallet_entries_sum ON wallet_entries(number, amount_cents)")


@migrations()
def m003_one_number_index(db) -> None:
    # (number, at, amount_cents) covers both the balance sum and the by-time history.
    db.execute("DROP INDEX wallet_entries_sum")
    db.execute("DROP INDEX wallet_entries_number")
    db.execute("CREATE INDEX wallet_entries_number ON wallet_entries(number, at, amount_cents)")


customers.register_customer_ref("wallets")
customers.register_customer_ref("wallet_entries")


class WalletError(stored_value.RedemptionRefused):
    pass


@dataclass(frozen=True)
class WalletType:
    id: str
    name: str
    family: str
    load_cents: int | None
    pay_cents: int | None
    active: bool


@dataclass(frozen=True)
class Wallet:
    number: str
    type: WalletType
    customer_id: str | None
    balance_cents: int


def parse_condition(text: str) -> str:
    """Accept a family name or Fastmag's ``f.family = 'Hose'``; return the family."""
    text = (text or "").strip()
    if not text:
        return ""
    m = _CONDITION_RE.match(text)
    if m:
        return m.group("family").strip()
    if re.search(r"[=<>'\"]", text):
        raise WalletError(_("Write the condition as f.family = 'Name' or just the family name."))
    return text


def save_type(store: Store, name: str, *, condition: str = "", load_cents: int | None = None,
              pay_cents: int | None = None, active: bool = True,
              type_id: str | None = None) -> str:  # fmt: skip
    """Create or change a wallet type (fixed load when ``load_cents`` is given)."""
    name = " ".join((name or "").split())
    if not name or len(name) > 30:
        raise WalletError(_("Enter a type name of at most 30 characters."))
    family = parse_condition(condition)
    cap = settings.get(store, "wallet.cap_cents")
    if load_cents is not None:
        if isinstance(load_cents, bool) or not isinstance(load_cents, int) or not 0 < load_cents <= cap:
            raise WalletError(_("The load amount must lie between 0 and the cap {cap}.").format(
                cap=stored_value.format_cents(cap)))  # fmt: skip
        pay_cents = load_cents if pay_cents is None else pay_cents
        if isinstance(pay_cents, bool) or not isinstance(pay_cents, int) or not 0 <= pay_cents:
            raise WalletError(_("Enter the amount paid in cents."))
    else:
        pay_cents = None
    tid = type_id or events.new_id()
    events.emit(store, "wallet.type_upserted", {"id": tid, "fields": {
        "name": name, "family": family, "load_cents": load_cents, "pay_cents": pay_cents,
        "active": bool(active)}})  # fmt: skip
    return tid


@events.handler("wallet.type_upserted")
def _apply_type(store: Store, ev: events.Event) -> None:
    fields = dict(ev.payload["fields"])
    if "active" in fields:
        fields["active"] = int(bool(fields["active"]))
    lww.upsert(store.db, "wallet_types", {"id": ev.payload["id"]}, fields, ev.hlc)


def get_type(store: Store, type_id: str) -> WalletType:
    row = store.db.execute(
        "SELECT id, name, coalesce(family, ''), load_cents, pay_cents, coalesce(active, 1)"
        " FROM wallet_types WHERE id = ?", [type_id],
    ).fetchone()  # fmt: skip
    if row is None:
        raise WalletError(_("Unknown wallet type."))
    return WalletType(*row[:5], bool(row[5]))


def types(store: Store) -> list[WalletType]:
    return [get_type(store, r[0]) for r in store.db.execute(
        "SELECT id FROM wallet_types WHERE active = 1 ORDER BY name")]  # fmt: skip


def balance(store: Store, number: str) -> int:
    return store.db.execute(
        "SELECT coalesce(sum(amount_cents), 0) FROM wallet_entries WHERE number = ?", [number]
    ).fetchone()[0]


def lookup(store: Store, number: str) -> Wallet:
    number = re.sub(r"\s+", "", str(number or ""))
    row = store.db.execute(
        "SELECT type_id, customer_id FROM wallets WHERE number = ?", [number]
    ).fetchone()
    if row is None:
        raise WalletError(_("Unknown e-wallet {number}.").format(number=number))
    return Wallet(number, get_type(store, row[0]), row[1], balance(store, number))


def of_customer(store: Store, customer_id: str) -> list[Wallet]:
    """Every wallet of a customer with its balance (to find the money of a lost card)."""
    return [lookup(store, r[0]) for r in store.db.execute(
        "SELECT number FROM wallets WHERE customer_id = ? ORDER BY created_at",
        [customers.resolve(store.db, customer_id)],
    )]  # fmt: skip


# -- planning ------------------------------------------------------------------------------------------------
def plan_load(store: Store, type_id: str, *, amount_cents: int | None = None,
              number: str | None = None, customer_id: str | None = None) -> dict[str, Any]:  # fmt: skip
    """Check a load: returns {number|None, type_id, load_cents, pay_cents} for the basket."""
    wtype = get_type(store, type_id)
    if not wtype.active:
        raise WalletError(_("This wallet type is not active."))
    if wtype.load_cents is not None:
        load, pay = wtype.load_cents, wtype.pay_cents
    else:
        if isinstance(amount_cents, bool) or not isinstance(amount_cents, int) or amount_cents <= 0:
            raise WalletError(_("Enter the amount to load."))
        load = pay = amount_cents
    current = 0
    if number is not None:
        number = re.sub(r"\s+", "", number)
        if not _NUMBER_RE.match(number):
            raise WalletError(_("A wallet number has 6 to 32 letters and digits."))
        row = store.db.execute("SELECT type_id FROM wallets WHERE number = ?", [number]).fetchone()
        if row is not None:
            if row[0] != type_id:
                raise WalletError(_("This wallet is of another type."))
            current = balance(store, number)
    cap = settings.get(store, "wallet.cap_cents")
    if current + load > cap:
        raise WalletError(_("An e-wallet may hold at most {cap}; {left} can still be loaded.").format(
            cap=stored_value.format_cents(cap),
            left=stored_value.format_cents(max(0, cap - current))))  # fmt: skip
    return {"number": number, "type_id": type_id, "load_cents": load, "pay_cents": pay,
            "customer_id": customer_id}  # fmt: skip


def plan_debit(store: Store, number: str, amount_cents: int, lines: list[Line], due_cents: int,
               *, online: bool) -> dict[str, Any]:  # fmt: skip
    """Check a payment from a wallet (partial use allowed, family condition, offline limit)."""
    w = lookup(store, number)
    if isinstance(amount_cents, bool) or not isinstance(amount_cents, int) or amount_cents <= 0:
        raise WalletError(_("Enter the amount to pay from the wallet."))
    if amount_cents > w.balance_cents:
        raise WalletError(_("The wallet holds only {balance}.").format(
            balance=stored_value.format_cents(w.balance_cents)))  # fmt: skip
    if amount_cents > due_cents:
        raise WalletError(_("Only {due} is due.").format(due=stored_value.format_cents(due_cents)))
    if w.type.family:
        allowed = sum(ln.total_cents for ln in lines
                      if ln.kind == "product" and ln.family.lower() == w.type.family.lower())  # fmt: skip
        if amount_cents > allowed:
            raise WalletError(_(
                "This wallet pays only for {family}: at most {allowed} in this basket."
            ).format(family=w.type.family, allowed=stored_value.format_cents(max(0, allowed))))
    spent = stored_value.offline_spent_today(store, "wallet_entries", "number", w.number)
    stored_value.check_offline(store, "wallet", online=online, spent_today=spent,
                               amount_cents=amount_cents)  # fmt: skip
    return {"number": w.number, "kind": "debit", "amount_cents": -amount_cents,
            "value_cents": amount_cents, "customer_id": w.customer_id}  # fmt: skip


# -- recording (handlers only) ---------------------------------------------------------------------------------
def record_entries(store: Store, ev: events.Event, entries: list[dict[str, Any]], *,
                   sale_id: str | None = None, offline: bool = False, start: int = 0) -> None:  # fmt: skip
    if not entries:
        return
    db = store.db
    rows = []
    for i, e in enumerate(entries):
        orig = e.get("customer_id")
        cur = customers.resolve(db, orig) if orig else None
        if e["kind"] == "load":
            db.execute(
                "INSERT INTO wallets (number, type_id, customer_id, orig_customer_id, created_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT(number) DO UPDATE SET"
                " created_at = min(created_at, excluded.created_at)",
                [e["number"], e["type_id"], cur, orig, ev.created_at],
            )
        rows.append((ev.id, start + i, e["number"], e["kind"], int(e["amount_cents"]),
                     int(e.get("value_cents", 0)), cur, orig, sale_id, ev.created_at,
                     int(offline)))  # fmt: skip
    db.conn.executemany(
        "INSERT OR IGNORE INTO wallet_entries (event_id, n, number, kind, amount_cents,"
        " value_cents, customer_id, orig_customer_id, sale_id, at, offline)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    for number in {e["number"] for e in entries}:
        owner = db.execute("SELECT customer_id, orig_customer_id FROM wallets WHERE number = ?",
                           [number]).fetchone()  # fmt: skip
        # orig_customer_id too, so a later customer merge re-points the row (order-independent)
        stored_value.flag_overdraft(db, "wallet", number, balance(store, number),
                                    *(owner if owner else (None, None)))  # fmt: skip
