"""Gift cards and vouchers: stored value with a code, a balance and an expiry.

Fastmag: a gift card is sold with a generated or scanned number and redeemed by scanning it;
unlike an e-wallet it "must be fully consumed": one redemption takes the whole balance. When
the basket is worth less, the cashier either adds items or confirms that the rest is
forfeited (a ``forfeit`` entry, visible in the card's history). POS vouchers (see
``vouchers``) are gift cards of kind ``voucher``.

The ledger ``giftcard_entries`` is append-only, keyed by event id and entry index; the
balance is the sum of a card's entries. Expiry is a date on the card, checked when the card
is used; nothing is rewritten when it passes.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Migrations

from kiosk.engine import customers, events, settings, stored_value
from kiosk.engine.clock import local_date
from kiosk.engine.store import Store, register_migrations
from kiosk.i18n import _

_LOGGER = logging.getLogger(__name__)

migrations = register_migrations(Migrations("kiosk.giftcards"))

KINDS = ("giftcard", "voucher")
_CODE_RE = re.compile(r"^[A-Za-z0-9\-]{6,32}$")

settings.define("giftcard.validity_months", 36, settings.check_int(1, 120),
                "Gift cards sold at the till stay valid this many months")  # fmt: skip
settings.define("giftcard.min_cents", 500, settings.check_int(1, 10_000_000),
                "Smallest gift card value (cents)")  # fmt: skip
settings.define("giftcard.max_cents", 50000, settings.check_int(1, 10_000_000),
                "Largest gift card value (cents)")  # fmt: skip


@migrations()
def m001_giftcards(db) -> None:
    db.execute(
        """
        CREATE TABLE giftcards (
            code TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            valid_until TEXT,           -- shop-local date, inclusive
            issued_at TEXT,
            customer_id TEXT,
            orig_customer_id TEXT
        )
        """
    )
    db.execute("CREATE INDEX giftcards_customer ON giftcards(customer_id)")
    db.execute(
        """
        CREATE TABLE giftcard_entries (
            event_id TEXT NOT NULL,
            n INTEGER NOT NULL,
            code TEXT NOT NULL,
            kind TEXT NOT NULL,          -- issue, redeem, forfeit
            amount_cents INTEGER NOT NULL,   -- signed: issue > 0, redeem/forfeit < 0
            value_cents INTEGER NOT NULL DEFAULT 0,  -- spent at the till (offline limit)
            sale_id TEXT,
            at TEXT NOT NULL,
            offline INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (event_id, n)
        )
        """
    )
    db.execute("CREATE INDEX giftcard_entries_code ON giftcard_entries(code, at)")


@migrations()
def m002_balance_index(db) -> None:
    # balance = sum of the entries: a covering index keeps the sum an index-only scan
    db.execute("CREATE INDEX giftcard_entries_sum ON giftcard_entries(code, amount_cents)")


customers.register_customer_ref("giftcards")


class GiftCardError(stored_value.RedemptionRefused):
    pass


@dataclass(frozen=True)
class GiftCard:
    code: str
    kind: str
    balance_cents: int
    valid_until: str | None
    customer_id: str | None

    def expired_on(self, day: dt.date) -> bool:
        return self.valid_until is not None and self.valid_until < day.isoformat()


def normalise_code(code: str) -> str:
    code = re.sub(r"\s+", "", str(code or ""))
    if not _CODE_RE.match(code):
        raise GiftCardError(_("A gift card number has 6 to 32 letters and digits."))
    return code


def lookup(store: Store, code: str) -> GiftCard:
    code = normalise_code(code)
    row = store.db.execute(
        "SELECT kind, valid_until, customer_id FROM giftcards WHERE code = ?", [code]
    ).fetchone()
    if row is None:
        raise GiftCardError(_("Unknown gift card {code}.").format(code=code))
    return GiftCard(code, row[0], balance(store, code), row[1], row[2])


def balance(store: Store, code: str) -> int:
    return store.db.execute(
        "SELECT coalesce(sum(amount_cents), 0) FROM giftcard_entries WHERE code = ?", [code]
    ).fetchone()[0]


def history(store: Store, code: str) -> list[dict[str, Any]]:
    return list(store.db.query(
        "SELECT at, kind, amount_cents, sale_id, offline FROM giftcard_entries WHERE code = ?"
        " ORDER BY at, event_id, n", [code],
    ))  # fmt: skip


# -- planning (commands compute; the sale handler records) -------------------------------------------------
def plan_sale(store: Store, amount_cents: int, code: str | None = None) -> dict[str, Any]:
    """Check a gift card to be sold; a missing code is generated at completion."""
    lo, hi = settings.get(store, "giftcard.min_cents"), settings.get(store, "giftcard.max_cents")
    if isinstance(amount_cents, bool) or not isinstance(amount_cents, int) or not lo <= amount_cents <= hi:
        raise GiftCardError(_("A gift card is worth between {lo} and {hi}.").format(
            lo=stored_value.format_cents(lo), hi=stored_value.format_cents(hi)))  # fmt: skip
    if code is not None:
        code = normalise_code(code)
        if store.db.execute("SELECT 1 FROM giftcards WHERE code = ?", [code]).fetchone():
            raise GiftCardError(_("The gift card {code} has been sold already.").format(code=code))
    return {"code": code, "amount_cents": amount_cents}


def issue_entry(store: Store, code: str, kind: str, amount_cents: int, valid_until: dt.date,
                customer_id: str | None = None) -> dict[str, Any]:  # fmt: skip
    return {"code": code, "card_kind": kind, "kind": "issue", "amount_cents": amount_cents,
            "value_cents": 0, "valid_until": valid_until.isoformat(),
            "customer_id": customer_id}  # fmt: skip


def default_valid_until(store: Store) -> dt.date:
    from kiosk.engine.loyalty import add_months

    return add_months(local_date(store.clock()), settings.get(store, "giftcard.validity_months"))


def plan_redeem(
    store: Store, code: str, due_cents: int, *, online: bool, forfeit_rest: bool = False,
    method: str = "giftcard",
) -> tuple[int, list[dict[str, Any]]]:  # fmt: skip
    """Price a redemption: (cents paid, ledger entries). The whole balance is used up."""
    card = lookup(store, code)
    want_kind = "voucher" if method == "voucher" else "giftcard"
    if card.kind != want_kind:
        raise GiftCardError(
            (_("{code} is a voucher, not a gift card.") if card.kind == "voucher"
             else _("{code} is a gift card, not a voucher.")).format(code=card.code)
        )  # fmt: skip
    today = local_date(store.clock())
    if card.expired_on(today):
        raise GiftCardError(_("The gift card {code} expired on {date}.").format(
            code=card.code, date=card.valid_until))  # fmt: skip
    if card.balance_cents <= 0:
        raise GiftCardError(_("The gift card {code} has been used up.").format(code=card.code))
    if due_cents <= 0:
        raise GiftCardError(_("Nothing is due."))
    pay = min(card.balance_cents, due_cents)
    rest = card.balance_cents - pay
    if rest and not forfeit_rest:
        raise GiftCardError(_(
            "A gift card must be used in full: {rest} would be left. Add items or confirm that "
            "the rest is forfeited."
        ).format(rest=stored_value.format_cents(rest)))  # fmt: skip
    spent = stored_value.offline_spent_today(store, "giftcard_entries", "code", card.code)
    stored_value.check_offline(store, "giftcard", online=online, spent_today=spent,
                               amount_cents=card.balance_cents)  # fmt: skip
    entries = [{"code": card.code, "kind": "redeem", "amount_cents": -pay, "value_cents": pay}]
    if rest:
        entries.append({"code": card.code, "kind": "forfeit", "amount_cents": -rest,
                        "value_cents": rest})  # fmt: skip
    return pay, entries


# -- recording (handlers only) -------------------------------------------------------------------------------
def record_entries(store: Store, ev: events.Event, entries: list[dict[str, Any]], *,
                   sale_id: str | None = None, offline: bool = False, start: int = 0) -> None:  # fmt: skip
    """Write gift card rows for an event; flag a card whose merged balance went negative."""
    if not entries:
        return
    db = store.db
    for e in entries:
        if e["kind"] == "issue":
            orig = e.get("customer_id")
            cur = customers.resolve(db, orig) if orig else None
            # Two offline tills may sell the same scanned card: keep the later expiry so every
            # replica agrees whatever the order.
            db.execute(
                "INSERT INTO giftcards (code, kind, valid_until, issued_at, customer_id,"
                " orig_customer_id) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(code) DO UPDATE SET"
                " valid_until = max(coalesce(valid_until, ''), excluded.valid_until),"
                " issued_at = min(issued_at, excluded.issued_at)",
                [e["code"], e.get("card_kind", "giftcard"), e.get("valid_until"), ev.created_at,
                 cur, orig],
            )  # fmt: skip
    db.conn.executemany(
        "INSERT OR IGNORE INTO giftcard_entries (event_id, n, code, kind, amount_cents,"
        " value_cents, sale_id, at, offline) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(ev.id, start + i, e["code"], e["kind"], int(e["amount_cents"]),
          int(e.get("value_cents", 0)), sale_id, ev.created_at, int(offline))
         for i, e in enumerate(entries)],
    )  # fmt: skip
    for code in {e["code"] for e in entries}:
        stored_value.flag_overdraft(db, "giftcard", code, balance(store, code))


def issue(store: Store, amount_cents: int, *, kind: str = "voucher", valid_days: int = 90,
          customer_id: str | None = None, code: str | None = None) -> str:  # fmt: skip
    """Issue a gift card or voucher outside a sale (campaigns, goodwill); returns its code."""
    if kind not in KINDS:
        raise GiftCardError(_("Unknown gift card kind."))
    if isinstance(amount_cents, bool) or not isinstance(amount_cents, int) or amount_cents <= 0:
        raise GiftCardError(_("Enter an amount in cents above 0."))
    cid = customers.get(store, customer_id)["id"] if customer_id else None
    with store.transaction():
        if code is None:
            code = stored_value.new_code(store, "8" if kind == "voucher" else "9", f"{kind}_no")
        else:
            plan_sale(store, max(amount_cents, settings.get(store, "giftcard.min_cents")), code)
        until = local_date(store.clock()) + dt.timedelta(days=valid_days)
        events.emit(store, "giftcard.booked",
                    {"entries": [issue_entry(store, code, kind, amount_cents, until, cid)]})
    return code


@events.handler("giftcard.booked")
def _apply_booked(store: Store, ev: events.Event) -> None:
    record_entries(store, ev, ev.payload["entries"], offline=ev.payload.get("offline", False))
