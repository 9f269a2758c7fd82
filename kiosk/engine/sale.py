"""Till sales: a persistent draft basket, its quote, and completion as one transaction.

The draft is the till's working memory, kept in SQLite so a power cut mid-sale loses
nothing: every scan, quantity, discount, customer and payment is committed
(``synchronous=FULL``) before the screen shows it. Drafts are device-local and never
replicated: a basket nobody paid for is not shop data. The sale becomes shop data when it is
completed: one ``sale.completed`` event carries the priced lines, discounts, payments and
every ledger entry (points, gift cards, vouchers, e-wallet); its handler writes the sale
and all ledger rows; VIP alert messages are queued and the draft is deleted — all in one
``store.transaction()``, so either everything is there or nothing is.

Screens call this module directly::

    draft = sale.open_draft(store)                 # or the open draft after a restart
    sale.scan(store, draft, "4006381333931")       # EAN, customer card, #VIP#…, gift card
    sale.set_quantity(store, draft, pos=1, qty=2)
    sale.attach_customer(store, draft, customer_id)
    sale.redeem_points(store, draft)               # as much as is useful
    sale.add_payment(store, draft, "wallet", 1500, ref="9010000001234565")
    sale.add_payment(store, draft, "cash", 5000)
    q = sale.quote(store, draft)                   # lines, totals, due, change, loyalty info
    done = sale.complete(store, draft)             # -> CompletedSale (receipt number …)

Draft life cycle::

    (none) --open_draft--> open --complete--> (sale.completed event; draft deleted)
                            |  ^
                       park |  | resume
                            v  |
                           parked        open/parked --cancel--> (deleted)
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import msgspec
from sqlite_utils import Migrations

from kiosk.engine import (
    alerts, catalog, customers, events, giftcards, groups, loyalty, messages_outbox, promotions,
    settings, stored_value, vouchers, wallet,
)  # fmt: skip
from kiosk.engine.clock import iso, local_date
from kiosk.engine.promotions import CustomerDiscount, Line
from kiosk.engine.store import Store, cluster_by_key, dicts, register_migrations
from kiosk.i18n import _

_LOGGER = logging.getLogger(__name__)

migrations = register_migrations(Migrations("kiosk.sale"))

LINE_KINDS = ("product", "return", "giftcard", "wallet_load", "gift")
PAYMENT_METHODS = loyalty.PAYMENT_METHODS
MAX_QTY = 9999
MAX_LINES = 100  # a full basket must fit one sale.completed event (events.MAX_PAYLOAD_BYTES)


@migrations()
def m001_sale(db) -> None:
    # Device-local working state (never replicated): the basket being rung up.
    db.execute(
        """
        CREATE TABLE sale_drafts (
            id TEXT PRIMARY KEY,
            status TEXT NOT NULL,          -- open, parked, done (see complete)
            channel TEXT NOT NULL DEFAULT 'pos',
            opened_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            customer_id TEXT,
            vip_code TEXT,
            basket_bp INTEGER NOT NULL DEFAULT 0,
            basket_cents INTEGER NOT NULL DEFAULT 0,
            redeem_points INTEGER,         -- NULL: no redemption; 0: as much as is useful
            gift_product_id TEXT
        )
        """
    )
    db.execute(
        """
        CREATE TABLE sale_draft_lines (
            draft_id TEXT NOT NULL REFERENCES sale_drafts(id) ON DELETE CASCADE,
            pos INTEGER NOT NULL,
            kind TEXT NOT NULL,
            name TEXT NOT NULL,
            qty INTEGER NOT NULL,
            unit_cents INTEGER NOT NULL,
            product_id TEXT,
            group_id TEXT,
            article_kind TEXT NOT NULL DEFAULT 'goods',
            gender TEXT NOT NULL DEFAULT '',
            family TEXT NOT NULL DEFAULT '',
            vat_bp INTEGER NOT NULL DEFAULT 1900,
            special INTEGER NOT NULL DEFAULT 0,
            manual_bp INTEGER NOT NULL DEFAULT 0,
            manual_cents INTEGER NOT NULL DEFAULT 0,
            ref TEXT,                      -- gift card code, wallet number, returned sale line
            meta TEXT,                     -- JSON: wallet load details …
            PRIMARY KEY (draft_id, pos)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE sale_draft_payments (
            draft_id TEXT NOT NULL REFERENCES sale_drafts(id) ON DELETE CASCADE,
            pos INTEGER NOT NULL,
            method TEXT NOT NULL,
            amount_cents INTEGER NOT NULL, -- tendered (cash), asked (wallet); 0 = computed
            ref TEXT,
            forfeit_rest INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (draft_id, pos)
        )
        """
    )
    # Shop data, written only by the sale.completed handler.
    db.execute(
        """
        CREATE TABLE sales (
            id TEXT PRIMARY KEY,
            event_id TEXT NOT NULL,
            receipt_no TEXT NOT NULL,
            device TEXT NOT NULL,
            kind TEXT NOT NULL,            -- sale, refund
            channel TEXT NOT NULL,
            completed_at TEXT NOT NULL,
            local_date TEXT NOT NULL,
            customer_id TEXT,
            orig_customer_id TEXT,
            card_no TEXT,
            total_cents INTEGER NOT NULL,
            discount_cents INTEGER NOT NULL,
            points_earned INTEGER NOT NULL,
            points_redeemed INTEGER NOT NULL,
            offline INTEGER NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX sales_customer ON sales(customer_id, local_date)")
    db.execute("CREATE INDEX sales_date ON sales(local_date)")
    db.execute(
        """
        CREATE TABLE sale_lines (
            sale_id TEXT NOT NULL,
            pos INTEGER NOT NULL,
            kind TEXT NOT NULL,
            product_id TEXT,
            group_id TEXT,
            qty INTEGER NOT NULL,
            gross_cents INTEGER NOT NULL,
            discount_cents INTEGER NOT NULL,
            total_cents INTEGER NOT NULL,
            ref TEXT,
            PRIMARY KEY (sale_id, pos)
        )
        """
    )
    db.execute("CREATE INDEX sale_lines_ref ON sale_lines(ref) WHERE ref IS NOT NULL")
    db.execute(
        """
        CREATE TABLE sale_payments (
            sale_id TEXT NOT NULL,
            pos INTEGER NOT NULL,
            method TEXT NOT NULL,
            amount_cents INTEGER NOT NULL,
            ref TEXT,
            PRIMARY KEY (sale_id, pos)
        )
        """
    )


@migrations()
def m002_clustered_sales(db) -> None:
    # A completed sale is one commit with an fsync, and its cost grows with every page it
    # writes: clustered on their keys, sales, lines and payments write one B-tree each.
    # (Open baskets' lines and payments too; their parent sale_drafts stays as it is, as
    # dropping a parent table would cascade into them.)
    for table in ("sales", "sale_lines", "sale_payments", "sale_draft_lines",
                  "sale_draft_payments"):
        cluster_by_key(db, table)


customers.register_customer_ref("sales")


class SaleError(ValueError):
    """A till action cannot be done; the message says why in the cashier's words."""


# -- reading the draft ---------------------------------------------------------------------------------------
def _now(store: Store) -> str:
    return iso(store.clock())


def _draft_row(store: Store, draft_id: str) -> dict[str, Any]:
    rows = dicts(store.db, "SELECT * FROM sale_drafts WHERE id = ?", [draft_id])
    # a done draft was completed; its rows go when the next sale opens
    if not rows or rows[0]["status"] == "done":
        raise SaleError(_("This sale no longer exists."))
    return rows[0]


def _open_row(store: Store, draft_id: str) -> dict[str, Any]:
    row = _draft_row(store, draft_id)
    if row["status"] != "open":
        raise SaleError(_("This sale is parked; resume it first."))
    return row


def _touch(store: Store, draft_id: str, **fields: Any) -> None:
    sets = "".join(f", [{k}] = ?" for k in fields)
    store.db.execute(
        f"UPDATE sale_drafts SET updated_at = ?{sets} WHERE id = ?",
        [_now(store), *fields.values(), draft_id],
    )


_LINE_COLS = (
    "pos", "kind", "name", "qty", "unit_cents", "product_id", "group_id", "article_kind",
    "gender", "family", "vat_bp", "special", "manual_bp", "manual_cents", "ref", "meta",
)  # fmt: skip


def _lines(store: Store, draft_id: str) -> tuple[list[Line], dict[int, dict[str, Any]]]:
    lines, metas = [], {}
    for row in store.db.execute(
        f"SELECT {', '.join(_LINE_COLS)} FROM sale_draft_lines WHERE draft_id = ? ORDER BY pos",
        [draft_id],
    ):
        (pos, kind, name, qty, unit, pid, gid, akind, gender, family, vat, special, mbp, mcents,
         ref, meta) = row  # fmt: skip
        lines.append(Line(pos, kind, name, qty, unit, pid, gid, akind, gender, family, vat,
                          bool(special), mbp, mcents, ref))  # fmt: skip
        if meta:
            metas[pos] = msgspec.json.decode(meta)
    return lines, metas


def _next_pos(store: Store, draft_id: str) -> int:
    row = store.db.execute(
        "SELECT coalesce(max(pos), 0) + 1, count(*) FROM sale_draft_lines WHERE draft_id = ?",
        [draft_id],
    ).fetchone()
    if row[1] >= MAX_LINES:
        raise SaleError(_("A sale has at most {n} lines.").format(n=MAX_LINES))
    return row[0]


def _insert_line(store: Store, draft_id: str, **values: Any) -> int:
    pos = _next_pos(store, draft_id)
    values = {"pos": pos, **values}
    if "meta" in values and values["meta"] is not None:
        values["meta"] = msgspec.json.encode(values["meta"]).decode()
    cols = ", ".join(["draft_id", *values])
    marks = ", ".join("?" for _ in range(len(values) + 1))
    store.db.execute(
        f"INSERT INTO sale_draft_lines ({cols}) VALUES ({marks})", [draft_id, *values.values()]
    )
    _touch(store, draft_id)
    return pos


# -- draft commands -----------------------------------------------------------------------------------------
def current_draft(store: Store) -> str | None:
    """The open draft of this device (after a restart: the basket that was being rung up)."""
    row = store.db.execute(
        "SELECT id FROM sale_drafts WHERE status = 'open' ORDER BY opened_at DESC LIMIT 1"
    ).fetchone()
    return row[0] if row else None


def open_draft(store: Store, *, channel: str = "pos") -> str:
    """Return the open draft, or start a new one."""
    if channel not in ("pos", "web"):
        raise SaleError(_("Unknown sales channel."))
    with store.transaction():
        existing = current_draft(store)
        if existing:
            return existing
        # Completed baskets are removed here rather than in the completing commit: deleting
        # a basket's rows dirties several more pages, and every page of that commit is
        # written and fsynced while the customer waits for the receipt.
        store.db.execute("DELETE FROM sale_drafts WHERE status = 'done'")
        draft_id = events.new_id()
        now = _now(store)
        store.db.execute(
            "INSERT INTO sale_drafts (id, status, channel, opened_at, updated_at)"
            " VALUES (?, 'open', ?, ?, ?)",
            [draft_id, channel, now, now],
        )
    return draft_id


def drafts(store: Store) -> list[dict[str, Any]]:
    """Open and parked drafts with their line count, newest first."""
    return list(store.db.query(
        "SELECT d.id, d.status, d.opened_at, d.updated_at, d.customer_id,"
        " (SELECT count(*) FROM sale_draft_lines l WHERE l.draft_id = d.id) AS lines"
        " FROM sale_drafts d WHERE d.status != 'done' ORDER BY d.updated_at DESC"
    ))  # fmt: skip


def park(store: Store, draft_id: str) -> None:
    """Put a sale aside (the customer fetches something) so the till can serve the next one."""
    with store.transaction():
        _open_row(store, draft_id)
        _touch(store, draft_id, status="parked")


def resume(store: Store, draft_id: str) -> None:
    with store.transaction():
        row = _draft_row(store, draft_id)
        if row["status"] != "parked":
            return
        other = current_draft(store)
        if other and other != draft_id:
            raise SaleError(_("Finish or park the current sale first."))
        _touch(store, draft_id, status="open")


def cancel(store: Store, draft_id: str) -> None:
    """Throw the basket away (nothing was sold: no event)."""
    with store.transaction():
        _draft_row(store, draft_id)
        store.db.execute("DELETE FROM sale_drafts WHERE id = ?", [draft_id])


def _check_qty(qty: Any) -> int:
    if isinstance(qty, bool) or not isinstance(qty, int) or qty == 0 or abs(qty) > MAX_QTY:
        raise SaleError(_("The quantity must be a whole number from 1 to {n}.").format(n=MAX_QTY))
    return qty


def add_product(store: Store, draft_id: str, product: str | catalog.Product, qty: int = 1) -> int:
    """Add a product (id, EAN or Product) to the basket; a negative quantity is a return."""
    qty = _check_qty(qty)
    with store.transaction():
        _open_row(store, draft_id)
        if isinstance(product, str):
            try:
                product = catalog.by_ean(store, product)
            except catalog.UnknownProduct:
                product = catalog.get(store, product)
        if not product.active:
            raise SaleError(_("{name} is no longer sold.").format(name=product.name))
        # The same article scanned again goes onto its line, as the cashier expects.
        row = store.db.execute(
            "SELECT pos, qty FROM sale_draft_lines WHERE draft_id = ? AND kind = 'product'"
            " AND product_id = ? AND manual_bp = 0 AND manual_cents = 0 AND ? > 0"
            " ORDER BY pos DESC LIMIT 1",
            [draft_id, product.id, qty],
        ).fetchone()
        if row and abs(row[1] + qty) <= MAX_QTY:
            store.db.execute(
                "UPDATE sale_draft_lines SET qty = ? WHERE draft_id = ? AND pos = ?",
                [row[1] + qty, draft_id, row[0]],
            )
            _touch(store, draft_id)
            return row[0]
        return _insert_line(
            store, draft_id, kind="product" if qty > 0 else "return", name=product.name,
            qty=qty, unit_cents=product.price_cents, product_id=product.id,
            group_id=product.group_id, article_kind=product.kind, gender=product.gender,
            family=product.family, vat_bp=product.vat_bp, special=int(product.special),
        )  # fmt: skip


def add_return(store: Store, draft_id: str, sale_id: str, pos: int, qty: int = 1) -> int:
    """Take back ``qty`` units of a line of an earlier sale at the price that was paid.

    The money refunded is what was paid per unit (the line total split exactly over its
    units; units whose cents differ become two lines so no cent is lost or made). If the
    sale was partly paid with redeemed points, that share comes back as points, not as
    money: the line's meta carries ``restore_points`` and the sale's customer is attached.
    Returns the position of the (first) return line.
    """
    qty = _check_qty(qty)
    if qty < 0:
        qty = -qty
    ref = f"{sale_id}:{pos}"
    with store.transaction():
        draft = _open_row(store, draft_id)
        line = store.db.execute(
            "SELECT qty, total_cents, product_id, kind FROM sale_lines WHERE sale_id = ? AND pos = ?",
            [sale_id, pos],
        ).fetchone()
        if line is None or line[3] != "product":
            raise SaleError(_("This sale line cannot be returned."))
        returned = -store.db.execute(
            "SELECT coalesce(sum(qty), 0) FROM sale_lines WHERE ref = ? AND kind = 'return'", [ref]
        ).fetchone()[0]
        pending = -store.db.execute(
            "SELECT coalesce(sum(l.qty), 0) FROM sale_draft_lines l"
            " JOIN sale_drafts d ON d.id = l.draft_id"
            " WHERE l.ref = ? AND l.kind = 'return' AND d.status != 'done'",
            [ref],
        ).fetchone()[0]
        if returned + pending + qty > line[0]:
            raise SaleError(_("Only {n} of this line can still be returned.").format(
                n=line[0] - returned - pending))  # fmt: skip
        product = catalog.get(store, line[2])
        paid = promotions.allocate(line[1], [1] * line[0])[returned + pending:][:qty]
        restore, paid = _points_share(store, sale_id, paid)
        sold = store.db.execute("SELECT customer_id FROM sales WHERE id = ?", [sale_id]).fetchone()
        if restore and draft["customer_id"] is None and sold and sold[0]:
            _touch(store, draft_id, customer_id=customers.resolve(store.db, sold[0]))
        first = None
        for unit in sorted(set(paid), reverse=True):
            at = _insert_line(
                store, draft_id, kind="return", name=product.name, qty=-paid.count(unit),
                unit_cents=unit, product_id=product.id, group_id=product.group_id,
                article_kind=product.kind, gender=product.gender, family=product.family,
                vat_bp=product.vat_bp, ref=ref,
                meta={"restore_points": restore} if restore and first is None else None,
            )  # fmt: skip
            first = first or at
        return first


def _points_share(store: Store, sale_id: str, paid: list[int]) -> tuple[int, list[int]]:
    """Split the returned units' price into (points to give back, money per unit).

    The share of the sale paid with points is ``points payment / sale total``; the points
    given back are the redeemed points in that proportion, rounded down, and the money is
    the rest, split exactly over the units: together never more than was paid.
    """
    total, by_points = store.db.execute(
        "SELECT s.total_cents, coalesce(sum(p.amount_cents), 0) FROM sales s LEFT JOIN"
        " sale_payments p ON p.sale_id = s.id AND p.method = 'points' WHERE s.id = ?",
        [sale_id],
    ).fetchone()  # fmt: skip
    if not total or total <= 0 or by_points <= 0:
        return 0, paid
    value = sum(paid)
    points_cents = value * by_points // total
    redeemed = -store.db.execute(
        "SELECT coalesce(sum(points), 0) FROM loyalty_points WHERE sale_id = ? AND kind = 'redeem'",
        [sale_id],
    ).fetchone()[0]  # fmt: skip
    money = promotions.allocate(value - points_cents, paid)
    return redeemed * points_cents // by_points, money


def set_quantity(store: Store, draft_id: str, pos: int, qty: int) -> None:
    qty = _check_qty(qty)
    with store.transaction():
        _open_row(store, draft_id)
        row = store.db.execute(
            "SELECT kind FROM sale_draft_lines WHERE draft_id = ? AND pos = ?", [draft_id, pos]
        ).fetchone()
        if row is None:
            raise SaleError(_("This line is no longer in the basket."))
        if row[0] != "product" or qty < 0:
            raise SaleError(_("The quantity of this line cannot be changed."))
        store.db.execute(
            "UPDATE sale_draft_lines SET qty = ? WHERE draft_id = ? AND pos = ?", [qty, draft_id, pos]
        )
        _touch(store, draft_id)


def remove_line(store: Store, draft_id: str, pos: int) -> None:
    with store.transaction():
        _open_row(store, draft_id)
        cur = store.db.execute(
            "DELETE FROM sale_draft_lines WHERE draft_id = ? AND pos = ? RETURNING product_id, kind",
            [draft_id, pos],
        ).fetchone()
        if cur is None:
            raise SaleError(_("This line is no longer in the basket."))
        if cur[1] == "gift":
            _touch(store, draft_id, gift_product_id=None)
        else:
            _touch(store, draft_id)


def _check_discount(percent_bp: int | None, amount_cents: int | None) -> tuple[int, int]:
    bp, cents = percent_bp or 0, amount_cents or 0
    if bp and cents:
        raise SaleError(_("Give either a percentage or an amount, not both."))
    for v in (bp, cents):
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise SaleError(_("A discount is a positive whole number."))
    if bp > 10000:
        raise SaleError(_("A discount cannot exceed 100 %."))
    return bp, cents


def set_line_discount(store: Store, draft_id: str, pos: int, *, percent_bp: int | None = None,
                      amount_cents: int | None = None) -> None:  # fmt: skip
    """The cashier's discount on one line (percent in basis points or cents); 0 removes it."""
    bp, cents = _check_discount(percent_bp, amount_cents)
    with store.transaction():
        _open_row(store, draft_id)
        row = store.db.execute(
            "SELECT kind FROM sale_draft_lines WHERE draft_id = ? AND pos = ?", [draft_id, pos]
        ).fetchone()
        if row is None:
            raise SaleError(_("This line is no longer in the basket."))
        if row[0] != "product":
            raise SaleError(_("This line takes no discount."))
        store.db.execute(
            "UPDATE sale_draft_lines SET manual_bp = ?, manual_cents = ? WHERE draft_id = ? AND pos = ?",
            [bp, cents, draft_id, pos],
        )
        _touch(store, draft_id)


def set_basket_discount(store: Store, draft_id: str, *, percent_bp: int | None = None,
                        amount_cents: int | None = None) -> None:  # fmt: skip
    bp, cents = _check_discount(percent_bp, amount_cents)
    with store.transaction():
        _open_row(store, draft_id)
        _touch(store, draft_id, basket_bp=bp, basket_cents=cents)


def attach_customer(store: Store, draft_id: str, customer: str | None) -> dict[str, Any] | None:
    """Link a customer (id, customer number or card number) to the sale; None detaches."""
    with store.transaction():
        _open_row(store, draft_id)
        if customer is None:
            _touch(store, draft_id, customer_id=None, redeem_points=None, gift_product_id=None)
            store.db.execute(
                "DELETE FROM sale_draft_lines WHERE draft_id = ? AND kind = 'gift'", [draft_id]
            )
            return None
        try:
            record = customers.get(store, customer)
        except customers.NotFound:
            try:
                record = customers.by_number(store, customer)
            except customers.NotFound as exc:
                raise SaleError(_("No customer {number}.").format(number=customer)) from exc
        _touch(store, draft_id, customer_id=record["id"])
        return record


def apply_vip(store: Store, draft_id: str, code: str | None) -> vouchers.VipCard | None:
    """Use a VIP card in this sale (its customer is attached if none is)."""
    with store.transaction():
        row = _open_row(store, draft_id)
        if code is None:
            _touch(store, draft_id, vip_code=None)
            return None
        try:
            card = vouchers.lookup_vip(store, code, local_date(store.clock()))
        except vouchers.VoucherError as exc:
            raise SaleError(str(exc.errors["voucher"])) from exc
        fields: dict[str, Any] = {"vip_code": card.code}
        if row["customer_id"] is None:
            fields["customer_id"] = customers.resolve(store.db, card.customer_id)
        _touch(store, draft_id, **fields)
        return card


def sell_giftcard(store: Store, draft_id: str, amount_cents: int, code: str | None = None) -> int:
    """Add a gift card to sell (scanned number, or one is generated at completion)."""
    with store.transaction():
        _open_row(store, draft_id)
        try:
            plan = giftcards.plan_sale(store, amount_cents, code)
        except giftcards.GiftCardError as exc:
            raise SaleError(str(exc)) from exc
        if plan["code"] and store.db.execute(
            "SELECT 1 FROM sale_draft_lines WHERE draft_id = ? AND kind = 'giftcard' AND ref = ?",
            [draft_id, plan["code"]],
        ).fetchone():
            raise SaleError(_("This gift card is in the basket already."))
        return _insert_line(store, draft_id, kind="giftcard", name=_("Gift card"), qty=1,
                            unit_cents=amount_cents, vat_bp=0, ref=plan["code"])  # fmt: skip


def load_wallet(store: Store, draft_id: str, type_id: str, *, amount_cents: int | None = None,
                number: str | None = None) -> int:  # fmt: skip
    """Add an e-wallet load (fixed or free amount) to the basket."""
    with store.transaction():
        row = _open_row(store, draft_id)
        try:
            plan = wallet.plan_load(store, type_id, amount_cents=amount_cents, number=number,
                                    customer_id=row["customer_id"])  # fmt: skip
        except wallet.WalletError as exc:
            raise SaleError(str(exc)) from exc
        wtype = wallet.get_type(store, type_id)
        return _insert_line(
            store, draft_id, kind="wallet_load", name=_("E-wallet {name}").format(name=wtype.name),
            qty=1, unit_cents=plan["pay_cents"], vat_bp=0, ref=plan["number"],
            meta={"type_id": type_id, "load_cents": plan["load_cents"]},
        )  # fmt: skip


def redeem_points(store: Store, draft_id: str, points: int | None = 0) -> None:
    """Redeem points in this sale: ``0`` as many as useful, a number, or None to undo."""
    with store.transaction():
        row = _open_row(store, draft_id)
        if points is not None:
            if row["customer_id"] is None:
                raise SaleError(_("Attach a customer first."))
            _touch(store, draft_id, redeem_points=points)
            quote(store, draft_id, strict=True)  # a refused request rolls back with the block
        else:
            _touch(store, draft_id, redeem_points=None)


def choose_gift(store: Store, draft_id: str, product_id: str | None) -> None:
    """Hand out one loyalty gift the customer's points reach (Fastmag: one per sale)."""
    with store.transaction():
        row = _open_row(store, draft_id)
        store.db.execute("DELETE FROM sale_draft_lines WHERE draft_id = ? AND kind = 'gift'",
                         [draft_id])  # fmt: skip
        if product_id is None:
            _touch(store, draft_id, gift_product_id=None)
            return
        if row["customer_id"] is None:
            raise SaleError(_("Attach a customer first."))
        option = next((g for g in loyalty.gifts_for(store, row["customer_id"])
                       if g.product.id == product_id), None)  # fmt: skip
        if option is None:
            raise SaleError(_("This product is not a loyalty gift."))
        if not option.reachable:
            raise SaleError(_("{name} needs {points} points.").format(
                name=option.product.name, points=option.points))  # fmt: skip
        _insert_line(store, draft_id, kind="gift", name=option.product.name, qty=1, unit_cents=0,
                     product_id=option.product.id, group_id=option.product.group_id,
                     article_kind=option.product.kind, gender=option.product.gender,
                     vat_bp=option.product.vat_bp, ref=option.level_id)  # fmt: skip
        _touch(store, draft_id, gift_product_id=product_id)


def add_payment(store: Store, draft_id: str, method: str, amount_cents: int = 0, *,
                ref: str | None = None, forfeit_rest: bool = False) -> int:  # fmt: skip
    """Add a payment: cash (tendered), card, wallet (amount), gift card / voucher (scanned code:
    the amount is computed). Refunds use negative cash or card amounts."""
    if method not in PAYMENT_METHODS or method == "points":
        raise SaleError(_("Unknown payment method."))
    if isinstance(amount_cents, bool) or not isinstance(amount_cents, int):
        raise SaleError(_("Enter the amount in cents."))
    if method in ("giftcard", "voucher", "wallet") and not ref:
        raise SaleError(_("Scan the card first."))
    with store.transaction():
        _open_row(store, draft_id)
        if ref and store.db.execute(
            "SELECT 1 FROM sale_draft_payments WHERE draft_id = ? AND ref = ?", [draft_id, ref]
        ).fetchone():
            raise SaleError(_("This card is already used in this sale."))
        pos = store.db.execute(
            "SELECT coalesce(max(pos), 0) + 1 FROM sale_draft_payments WHERE draft_id = ?",
            [draft_id],
        ).fetchone()[0]
        store.db.execute(
            "INSERT INTO sale_draft_payments (draft_id, pos, method, amount_cents, ref,"
            " forfeit_rest) VALUES (?, ?, ?, ?, ?, ?)",
            [draft_id, pos, method, amount_cents, ref, int(forfeit_rest)],
        )
        _touch(store, draft_id)
        quote(store, draft_id, strict=True)  # refuse (and roll back) what cannot be paid
    return pos


def remove_payment(store: Store, draft_id: str, pos: int) -> None:
    with store.transaction():
        _open_row(store, draft_id)
        store.db.execute("DELETE FROM sale_draft_payments WHERE draft_id = ? AND pos = ?",
                         [draft_id, pos])  # fmt: skip
        _touch(store, draft_id)


@dataclass(frozen=True)
class ScanResult:
    kind: str  # product, customer, vip, giftcard, voucher, wallet
    pos: int | None = None
    customer: dict[str, Any] | None = None
    card: Any = None


def scan(store: Store, draft_id: str, code: str) -> ScanResult:
    """Handle a scanned code: product EAN, customer or card number, VIP card, gift card."""
    code = (code or "").strip()
    if not code:
        raise SaleError(_("Nothing was scanned."))
    if vouchers.is_vip_code(code):
        return ScanResult("vip", card=apply_vip(store, draft_id, code))
    if catalog.valid_ean(code):
        try:
            return ScanResult("product", pos=add_product(store, draft_id, catalog.by_ean(store, code)))
        except catalog.UnknownProduct:
            pass  # loyalty cards are in-store EANs too: try the other lists
    try:
        return ScanResult("customer", customer=attach_customer(store, draft_id, code))
    except SaleError:
        pass
    try:
        card = giftcards.lookup(store, code)
        return ScanResult(card.kind, card=card)
    except giftcards.GiftCardError:
        pass
    try:
        return ScanResult("wallet", card=wallet.lookup(store, code))
    except wallet.WalletError:
        pass
    raise SaleError(_("Unknown code {code}.").format(code=code))


# -- the quote: everything priced -----------------------------------------------------------------------------
@dataclass
class Payment:
    pos: int
    method: str
    amount_cents: int  # counts against the total (cash: net of change)
    ref: str | None = None
    tendered_cents: int = 0
    label: str = ""
    giftcard_entries: list[dict[str, Any]] = field(default_factory=list)
    wallet_entry: dict[str, Any] | None = None
    points: int = 0


@dataclass
class Quote:
    draft_id: str
    channel: str
    lines: list[Line]
    line_meta: dict[int, dict[str, Any]]
    gross_cents: int
    discount_cents: int
    total_cents: int
    payments: list[Payment]
    paid_cents: int
    due_cents: int
    change_cents: int
    customer: dict[str, Any] | None
    card: loyalty.Card | None
    vip: vouchers.VipCard | None
    loyalty: loyalty.LoyaltyInfo
    redemption: loyalty.Redemption | None
    earn_preview: list[dict[str, Any]]
    voucher_cents: int
    next_voucher: tuple[int, int] | None
    alerts: list[str]
    problems: list[str]

    @property
    def points_to_earn(self) -> int:
        return sum(e["points"] for e in self.earn_preview)

    @property
    def ready(self) -> bool:
        """True when the sale can be completed."""
        return not self.problems and self.due_cents == 0 and bool(self.lines)


def _customer_discount(store: Store, customer: dict[str, Any] | None,
                       vip: vouchers.VipCard | None) -> CustomerDiscount:  # fmt: skip
    if customer is None:
        return CustomerDiscount(vip_bp=vip.discount_bp if vip else 0,
                                vip_label=_("VIP discount") if vip else "")  # fmt: skip
    gs = groups.groups_of(store, customer["id"])
    plain = max((g for g in gs), key=lambda g: g["discount_bp"] or 0, default=None)
    # as groups.best_discount_bp, from the one list read above
    return CustomerDiscount(
        group_bp=max((g["discount_bp"] or 0 for g in gs), default=0),
        group_bp_specials=max(
            (g["discount_bp"] or 0 for g in gs if g["applies_to_specials"]), default=0
        ),
        group_label=plain["name"] if plain else "",
        vip_bp=vip.discount_bp if vip else 0,
        vip_label=_("VIP discount") if vip else "",
    )


def _basis_for_voucher(lines: list[Line]) -> int:
    return sum(ln.total_cents for ln in lines if ln.kind == "product")


def quote(store: Store, draft_id: str, *, online: bool | None = None, strict: bool = False,
          for_screen: bool = True, _row: dict[str, Any] | None = None) -> Quote:  # fmt: skip
    """Price the draft: lines with every discount, payments, what is due, loyalty figures.

    With ``strict`` a problem (a gift card that would not be used up, an offline limit …)
    raises SaleError instead of being listed in ``problems``. Without ``for_screen`` the
    recall alerts and the next voucher tier, which only the till's screen shows, are left
    out (the completing commit does not need them).
    """
    row = _row or _draft_row(store, draft_id)
    online = stored_value.resolve_online(store, online)
    now = store.clock()
    today = local_date(now)
    problems: list[str] = []

    def problem(msg: str) -> None:
        if strict:
            raise SaleError(msg)
        problems.append(msg)

    lines, metas = _lines(store, draft_id)
    customer = None
    if row["customer_id"]:
        try:
            customer = customers.get(store, row["customer_id"])
        except customers.NotFound:
            problem(_("The customer of this sale no longer exists."))
    vip = None
    if row["vip_code"]:
        try:
            vip = vouchers.lookup_vip(store, row["vip_code"], today)
        except vouchers.VoucherError as exc:
            problem(exc.errors["voucher"])
    prog = loyalty.program(store)
    card = loyalty.active_card(store, customer["id"], today) if customer else None
    rules = promotions.rules(store, on=today)
    cust_discount = _customer_discount(store, customer, vip)
    promotions.price(lines, rules, customer=cust_discount, basket_bp=row["basket_bp"],
                     basket_cents=row["basket_cents"])  # fmt: skip
    # loyalty redemption: direct % discount (type 3) re-prices; money types become a payment
    redemption = None
    side = loyalty.customer_side(customer, lines)
    redeem_rules = loyalty.redeem_rules(store, card, side, prog) if customer else None
    bal = loyalty.balance(store, customer["id"]) if customer and prog.enabled else 0
    if row["redeem_points"] is not None and customer is not None:
        if not prog.enabled:
            problem(_("The loyalty programme is switched off."))
        elif row["channel"] == "web" and not prog.webshop_redeem:
            problem(_("Points cannot be redeemed in the webshop."))
        else:
            try:
                due_before = promotions.total(lines)
                redemption = loyalty.plan_redemption(
                    store, redeem_rules, bal, row["redeem_points"] or None, lines, due_before)
                if redemption.direct_bp:
                    promotions.price(lines, rules, customer=cust_discount,
                                     basket_bp=row["basket_bp"], basket_cents=row["basket_cents"],
                                     loyalty_direct_bp=redemption.direct_bp,
                                     loyalty_label=redemption.label)  # fmt: skip
            except loyalty.LoyaltyError as exc:
                problem(str(next(iter(exc.errors.values()))))
    gift_points = 0
    for ln in lines:
        if ln.kind == "gift":
            level = store.db.execute("SELECT points FROM loyalty_levels WHERE id = ?",
                                     [ln.ref]).fetchone()  # fmt: skip
            gift_points += level[0] if level else 0
    if gift_points and redemption is not None and bal < gift_points + redemption.points:
        problem(_("The points do not reach both the gift and the redemption."))
    elif gift_points and (not prog.enabled or bal < gift_points):  # spent elsewhere meanwhile
        problem(_("The points no longer reach the chosen gift."))
    gross = sum(ln.gross_cents for ln in lines)
    total = promotions.total(lines)
    # payments in the order given; points first, they were asked for before paying
    payments: list[Payment] = []
    due = total
    if redemption is not None and redemption.value_cents:
        value = min(redemption.value_cents, max(due, 0))
        payments.append(Payment(0, "points", value, label=redemption.label,
                                points=redemption.points))  # fmt: skip
        due -= value
    if redemption is not None:
        spent = stored_value.offline_spent_today(store, "loyalty_points", "customer_id",
                                                 customer["id"])  # fmt: skip
        value = redemption.value_cents or sum(
            d.cents for ln in lines for d in ln.discounts if d.source == "loyalty_direct")
        try:
            stored_value.check_offline(store, "points", online=online, spent_today=spent,
                                       amount_cents=value)  # fmt: skip
        except stored_value.RedemptionRefused as exc:
            problem(str(exc))
    change = 0
    for pos, method, amount, ref, forfeit in store.db.execute(
        "SELECT pos, method, amount_cents, ref, forfeit_rest FROM sale_draft_payments"
        " WHERE draft_id = ? ORDER BY pos", [draft_id],
    ).fetchall():  # fmt: skip
        pay = Payment(pos, method, 0, ref)
        try:
            if method in ("giftcard", "voucher"):
                if method == "voucher":
                    minimum = settings.get(store, "vouchers.min_sale_for_use_cents")
                    if total < minimum:
                        raise stored_value.RedemptionRefused(_(
                            "A voucher can be used from a purchase of {amount}."
                        ).format(amount=stored_value.format_cents(minimum)))  # fmt: skip
                paid, entries = giftcards.plan_redeem(store, ref, due, online=online,
                                                      forfeit_rest=bool(forfeit), method=method)  # fmt: skip
                pay.amount_cents, pay.giftcard_entries = paid, entries
                pay.label = _("Voucher") if method == "voucher" else _("Gift card")
            elif method == "wallet":
                entry = wallet.plan_debit(store, ref, amount, lines, due, online=online)
                pay.amount_cents, pay.wallet_entry, pay.label = amount, entry, _("E-wallet")
            elif method == "cash":
                pay.tendered_cents = amount
                pay.amount_cents = amount if amount < 0 or amount <= due else max(due, 0)
                change += amount - pay.amount_cents
                pay.label = _("Cash")
            else:  # card
                if amount > 0 and amount > due:
                    raise stored_value.RedemptionRefused(
                        _("A card payment cannot exceed what is due ({due}).").format(
                            due=stored_value.format_cents(max(due, 0))))  # fmt: skip
                pay.amount_cents, pay.label = amount, _("Card")
        except stored_value.RedemptionRefused as exc:
            problem(str(exc))
            continue
        payments.append(pay)
        due -= pay.amount_cents
    paid = sum(p.amount_cents for p in payments)
    earn = []
    if customer is not None:
        earn = loyalty.compute_earn(prog, loyalty.EarnContext(
            lines, [(p.method, p.amount_cents) for p in payments], customer, card, now,
            row["channel"], previous_visit(store, customer["id"], today),
            loyalty.birthdays_taken(store, customer["id"]),
        ))  # fmt: skip
    restore = sum(int(m.get("restore_points", 0)) for m in metas.values()) if customer else 0
    if total < 0 and earn:  # never take back more than is there
        have = max(0, bal + restore - (redemption.points if redemption else 0))
        earn = [{**e, "points": max(e["points"], -have)} for e in earn if have]
    if restore:  # returned goods that were paid with points give the points back
        earn = [{"kind": "restore", "points": restore,
                 "reason": _("Points back for returned goods")}, *earn]  # fmt: skip
    voucher_cents = vouchers.pos_voucher_value(store, _basis_for_voucher(lines)) if total > 0 else 0
    info = loyalty.info(store, customer["id"] if customer else None, lines, due, customer,
                        row["channel"], prog=prog, card=card,
                        bal=bal if prog.enabled else None)  # fmt: skip
    alert_texts = alerts.alerts_for(store, customer) if customer and for_screen else []
    next_tier = vouchers.next_tier(store, _basis_for_voucher(lines)) if for_screen else None
    return Quote(
        draft_id, row["channel"], lines, metas, gross, gross - total, total, payments, paid,
        total - paid, change, customer, card, vip, info, redemption, earn, voucher_cents,
        next_tier, alert_texts, problems,
    )  # fmt: skip


def previous_visit(store: Store, customer_id: str, before: dt.date) -> dt.date | None:
    row = store.db.execute(
        "SELECT max(local_date) FROM sales WHERE customer_id = ? AND kind = 'sale'"
        " AND local_date < ?",
        [customers.resolve(store.db, customer_id), before.isoformat()],
    ).fetchone()
    return dt.date.fromisoformat(row[0]) if row and row[0] else None


# -- completion -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CompletedSale:
    id: str
    event_id: str
    receipt_no: str
    total_cents: int
    change_cents: int
    payload: dict[str, Any]


def _line_payload(ln: Line, meta: dict[str, Any] | None) -> dict[str, Any]:
    out = {
        "pos": ln.pos, "kind": ln.kind, "name": ln.name, "qty": ln.qty,
        "unit_cents": ln.unit_cents, "gross_cents": ln.gross_cents,
        "discounts": [[d.source, d.label, d.cents] for d in ln.discounts],
        "total_cents": ln.total_cents, "vat_bp": ln.vat_bp, "product_id": ln.product_id,
        "group_id": ln.group_id, "article_kind": ln.article_kind, "gender": ln.gender,
        "special": ln.special, "ref": ln.ref,
    }  # fmt: skip
    if meta:
        out["meta"] = meta
    return out


def complete(store: Store, draft_id: str, *, online: bool | None = None) -> CompletedSale:
    """Complete the sale: one transaction with the sale event, every ledger entry, the VIP
    alerts and the draft marked done (its rows go when the next sale opens). Raises
    SaleError (nothing written) when it cannot."""
    online = stored_value.resolve_online(store, online)
    with store.transaction():
        row = _open_row(store, draft_id)
        q = quote(store, draft_id, online=online, strict=True, for_screen=False, _row=row)
        if not q.lines:
            raise SaleError(_("The basket is empty."))
        if q.due_cents > 0:
            raise SaleError(_("{due} is still due.").format(
                due=stored_value.format_cents(q.due_cents)))  # fmt: skip
        if q.due_cents < 0:
            raise SaleError(_("{amount} is still to be paid out.").format(
                amount=stored_value.format_cents(-q.due_cents)))  # fmt: skip
        today = local_date(store.clock())
        sale_id = events.new_id()
        receipt_no = f"{store.identity.device_no:02d}-{store.next_counter('receipt_no'):06d}"
        customer_id = q.customer["id"] if q.customer else None
        # stored value sold: numbers are generated now, inside the transaction
        gift_entries: list[dict[str, Any]] = []
        wallet_entries: list[dict[str, Any]] = []
        line_meta = dict(q.line_meta)
        for ln in q.lines:
            if ln.kind == "giftcard":
                code = ln.ref or stored_value.new_code(store, "9", "giftcard_no")
                ln.ref = code
                gift_entries.append(giftcards.issue_entry(
                    store, code, "giftcard", ln.total_cents, giftcards.default_valid_until(store),
                    customer_id))  # fmt: skip
            elif ln.kind == "wallet_load":
                meta = line_meta.get(ln.pos, {})
                number = ln.ref or stored_value.new_code(store, "7", "wallet_no")
                ln.ref = number
                wallet_entries.append({"number": number, "type_id": meta["type_id"],
                                       "kind": "load", "amount_cents": meta["load_cents"],
                                       "customer_id": customer_id})  # fmt: skip
        for p in q.payments:
            gift_entries.extend(p.giftcard_entries)
            if p.wallet_entry:
                wallet_entries.append(p.wallet_entry)
        voucher = None
        if q.voucher_cents:
            code = stored_value.new_code(store, "8", "voucher_no")
            until = vouchers.voucher_valid_until(store, today)
            gift_entries.append(giftcards.issue_entry(store, code, "voucher", q.voucher_cents,
                                                      until, customer_id))  # fmt: skip
            voucher = {"code": code, "value_cents": q.voucher_cents, "valid_until": until.isoformat()}
        points: list[dict[str, Any]] = list(q.earn_preview)
        if q.redemption is not None:
            value = q.redemption.value_cents or sum(
                d.cents for ln in q.lines for d in ln.discounts if d.source == "loyalty_direct")
            points.append({"kind": "redeem", "points": -q.redemption.points,
                           "value_cents": value, "reason": q.redemption.label})  # fmt: skip
        for ln in q.lines:
            if ln.kind == "gift":
                level = store.db.execute("SELECT points, name FROM loyalty_levels WHERE id = ?",
                                         [ln.ref]).fetchone()  # fmt: skip
                points.append({"kind": "gift", "points": -level[0],
                               "reason": _("Gift: {name}").format(name=ln.name)})  # fmt: skip
        earned = sum(e["points"] for e in points if e["points"] > 0)
        redeemed = -sum(e["points"] for e in points if e["points"] < 0)
        before = q.loyalty.balance if q.loyalty.enabled else loyalty.balance(store, customer_id)
        balance_after = before + earned - redeemed if customer_id else None
        payload = {
            "sale_id": sale_id, "receipt_no": receipt_no, "channel": q.channel,
            "kind": "refund" if q.total_cents < 0 else "sale",
            "local_date": today.isoformat(), "customer_id": customer_id,
            "customer_no": q.customer["customer_no"] if q.customer else None,
            "customer_name": customers.display_name(q.customer) if q.customer else None,
            "card_no": q.card.card_no if q.card else None,
            "vip_code": q.vip.code if q.vip else None,
            "lines": [_line_payload(ln, line_meta.get(ln.pos)) for ln in q.lines],
            "gross_cents": q.gross_cents, "discount_cents": q.discount_cents,
            "total_cents": q.total_cents,
            "payments": [[p.method, p.amount_cents, p.ref, p.tendered_cents] for p in q.payments],
            "change_cents": q.change_cents,
            "points": points, "points_balance": balance_after,
            "giftcards": gift_entries, "wallet": wallet_entries, "voucher": voucher,
            "offline": not online,
        }  # fmt: skip
        try:
            ev = events.emit(store, "sale.completed", payload)
        except events.PayloadTooLarge:  # long names, many discounts
            raise SaleError(
                _("This sale is too large to be recorded; split it into two sales.")
            ) from None
        if q.vip and q.vip.alert_phones:
            name = customers.display_name(q.customer) if q.customer else q.vip.code
            text = _("VIP card {code} ({name}) used: {total}, receipt {receipt}.").format(
                code=q.vip.code, name=name, total=stored_value.format_cents(q.total_cents),
                receipt=receipt_no)  # fmt: skip
            for phone in q.vip.alert_phones:
                messages_outbox.queue(store, "sms", phone, text, reason="vip_alert", ref=sale_id)
        store.db.execute("UPDATE sale_drafts SET status = 'done' WHERE id = ?", [row["id"]])
    return CompletedSale(sale_id, ev.id, receipt_no, q.total_cents, q.change_cents, payload)


@events.handler("sale.completed")
def _apply_completed(store: Store, ev: events.Event) -> None:
    p = ev.payload
    db = store.db
    orig = p.get("customer_id")
    current = customers.resolve(db, orig) if orig else None
    earned = sum(e["points"] for e in p["points"] if e["points"] > 0)
    redeemed = -sum(e["points"] for e in p["points"] if e["points"] < 0)
    db.execute(
        "INSERT OR IGNORE INTO sales (id, event_id, receipt_no, device, kind, channel,"
        " completed_at, local_date, customer_id, orig_customer_id, card_no, total_cents,"
        " discount_cents, points_earned, points_redeemed, offline)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [p["sale_id"], ev.id, p["receipt_no"], ev.device, p["kind"], p["channel"],
         ev.created_at, p["local_date"], current, orig, p.get("card_no"), p["total_cents"],
         p["discount_cents"], earned, redeemed, int(p.get("offline", False))],
    )  # fmt: skip
    db.conn.executemany(
        "INSERT OR IGNORE INTO sale_lines (sale_id, pos, kind, product_id, group_id, qty,"
        " gross_cents, discount_cents, total_cents, ref) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(p["sale_id"], ln["pos"], ln["kind"], ln.get("product_id"), ln.get("group_id"),
          ln["qty"], ln["gross_cents"], ln["gross_cents"] - ln["total_cents"], ln["total_cents"],
          ln.get("ref")) for ln in p["lines"]],
    )  # fmt: skip
    db.conn.executemany(
        "INSERT OR IGNORE INTO sale_payments (sale_id, pos, method, amount_cents, ref)"
        " VALUES (?, ?, ?, ?, ?)",
        [(p["sale_id"], i, m, amount, ref) for i, (m, amount, ref, _t) in enumerate(p["payments"])],
    )
    offline = bool(p.get("offline", False))
    if orig and p["points"]:
        loyalty.record_entries(store, ev, orig, p.get("card_no"), p["points"],
                               sale_id=p["sale_id"], offline=offline)  # fmt: skip
    giftcards.record_entries(store, ev, p["giftcards"], sale_id=p["sale_id"], offline=offline)
    wallet.record_entries(store, ev, p["wallet"], sale_id=p["sale_id"], offline=offline)


# -- reading completed sales ---------------------------------------------------------------------------------
def get(store: Store, sale_id: str) -> dict[str, Any]:
    """The completed sale as recorded (the event payload plus when and where)."""
    row = store.db.execute(
        "SELECT event_id, completed_at, device FROM sales WHERE id = ?", [sale_id]
    ).fetchone()
    if row is None:
        raise SaleError(_("Unknown sale."))
    ev = events.get(store, row[0])
    return {**ev.payload, "completed_at": row[1], "device": row[2]}


def by_receipt(store: Store, receipt_no: str) -> dict[str, Any]:
    row = store.db.execute("SELECT id FROM sales WHERE receipt_no = ?", [receipt_no]).fetchone()
    if row is None:
        raise SaleError(_("No sale with receipt number {no}.").format(no=receipt_no))
    return get(store, row[0])


# -- customer aggregates for alert rules (Fastmag: totalCA >= '1000') ------------------------------------------
def _aggregate(sql: str):
    def value(store: Store, customer: dict[str, Any]) -> Any:
        return store.db.execute(sql, [customer["id"]]).fetchone()[0]

    return value


def _revenue_euros(store: Store, customer: dict[str, Any]) -> Decimal:
    cents = store.db.execute(
        "SELECT coalesce(sum(total_cents), 0) FROM sales WHERE customer_id = ?", [customer["id"]]
    ).fetchone()[0]
    return Decimal(cents) / 100


alerts.register_variable("total_revenue", "number", _revenue_euros,
                         ("totalca", "ca", "umsatz", "gesamtumsatz", "revenue"))  # fmt: skip
alerts.register_variable(
    "visits", "number",
    _aggregate("SELECT count(*) FROM sales WHERE customer_id = ? AND kind = 'sale'"),
    ("passages", "besuche", "nbpassages", "anzahlbesuche"),
)  # fmt: skip
alerts.register_variable(
    "last_purchase", "date",
    _aggregate("SELECT max(local_date) FROM sales WHERE customer_id = ? AND kind = 'sale'"),
    ("letztereinkauf", "dernierachat", "lastpurchase", "datedernierachat"),
)  # fmt: skip
alerts.register_variable(
    "points", "number",
    lambda store, customer: loyalty.balance(store, customer["id"]),
    ("punkte", "treuepunkte", "points_balance", "punktestand"),
)  # fmt: skip
