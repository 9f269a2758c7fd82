"""Promotions and the pricing of a basket, with one documented stacking order.

Rules are shop data (``promotion.upserted`` events, LWW per field), from the Fastmag
"Verwaltung von Preisen, Verkäufen und Werbeaktionen":

* ``final_price``  – a fixed final price for some products ("Endpreis");
* ``sale_percent`` – a percentage on the whole store or some article groups for a period
  ("Verkaufsregel", e.g. 30 % during the sales);
* ``nth_item``     – every n-th item at a percentage off ("1 gekauft, 2. zu −50 %").

Stacking order (each step works on what the previous steps left of the line):

1. final price        the lowest active final price replaces the list price; the line is
                      now a special offer;
2. sales rule %       the highest matching ``sale_percent`` (rules never compound); special;
3. n-th item %        units in the rule's scope, dearest first; every n-th unit (so the
                      cheapest ones) gets the percentage; special;
4. manual line        the cashier's line discount (percent or amount, capped at the line);
5. customer           the higher of the customer-group discount (only on non-specials
                      unless the group has "also on specials") and the VIP card rate;
6. basket             the cashier's basket discount (percent or amount), spread over the
                      discountable lines by largest remainder so the cents add up exactly;
7. loyalty direct %   the TiM card's direct discount on services / goods (redemption type 3).

Percentages round half up to the cent per line and never exceed what is left of the line,
so a line total is never negative and the basket total is always the sum of its lines.
Only product lines with a positive quantity take discounts; returns keep the price they
were sold at, gift card and e-wallet loads are stored value, not goods.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

import msgspec
from sqlite_utils import Migrations

from kiosk.engine import events, lww
from kiosk.engine.store import Store, register_migrations
from kiosk.i18n import _

_LOGGER = logging.getLogger(__name__)

migrations = register_migrations(Migrations("kiosk.promotions"))

RULE_KINDS = ("final_price", "sale_percent", "nth_item")
STACKING_ORDER = (
    "final_price", "sale_rule", "multi_buy", "manual_line", "customer", "basket",
    "loyalty_direct",
)  # fmt: skip


@migrations()
def m001_promotions(db) -> None:
    db.execute(
        """
        CREATE TABLE promotions (
            id TEXT PRIMARY KEY,
            name TEXT,
            kind TEXT,            -- final_price, sale_percent, nth_item
            bp INTEGER,           -- percentage in basis points (sale_percent, nth_item)
            n INTEGER,            -- nth_item: every n-th unit
            price_cents INTEGER,  -- final_price
            product_ids TEXT,     -- JSON list; empty = no product restriction
            group_ids TEXT,       -- JSON list; empty = no group restriction
            starts TEXT,          -- shop-local date, inclusive; NULL = open
            ends TEXT,            -- shop-local date, inclusive; NULL = open
            active INTEGER,
            _clock TEXT
        )
        """
    )


class PromotionError(ValueError):
    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


# -- arithmetic ------------------------------------------------------------------------------------
def percent_of(cents: int, bp: int) -> int:
    """``cents × bp / 10000`` rounded half up (for non-negative cents)."""
    return (cents * bp + 5000) // 10000


def allocate(total: int, weights: list[int]) -> list[int]:
    """Split ``total`` cents in proportion to ``weights``, exactly (largest remainder)."""
    wsum = sum(weights)
    if total == 0 or wsum <= 0:
        return [0] * len(weights)
    shares = [total * w // wsum for w in weights]
    rest = total - sum(shares)
    order = sorted(range(len(weights)), key=lambda i: (-(total * weights[i] % wsum), i))
    for i in order[:rest]:
        shares[i] += 1
    return shares


# -- the basket model -------------------------------------------------------------------------------
@dataclass
class Discount:
    source: str  # one of STACKING_ORDER
    label: str
    cents: int


@dataclass
class Line:
    """One basket line; ``discounts`` are filled by :func:`price`."""

    pos: int
    kind: str  # product, return, giftcard, wallet_load, gift
    name: str
    qty: int
    unit_cents: int  # list price per unit, VAT included
    product_id: str | None = None
    group_id: str | None = None
    article_kind: str = "goods"  # goods, service, repair
    gender: str = ""  # '', damen, herren
    family: str = ""
    vat_bp: int = 1900
    special: bool = False
    manual_bp: int = 0
    manual_cents: int = 0
    ref: str | None = None
    discounts: list[Discount] = field(default_factory=list)

    @property
    def gross_cents(self) -> int:
        return self.qty * self.unit_cents

    @property
    def discount_cents(self) -> int:
        ds = self.discounts  # hot in quote(): most lines have no or one discount
        if not ds:
            return 0
        return ds[0].cents if len(ds) == 1 else sum(d.cents for d in ds)

    @property
    def total_cents(self) -> int:
        return self.qty * self.unit_cents - self.discount_cents

    @property
    def discountable(self) -> bool:
        return self.kind == "product" and self.qty > 0

    @property
    def discounted(self) -> bool:
        return self.special or any(d.cents for d in self.discounts)

    def add(self, source: str, label: str, cents: int) -> int:
        cents = max(0, min(cents, self.total_cents))
        if cents:
            self.discounts.append(Discount(source, label, cents))
        return cents


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    kind: str
    bp: int = 0
    n: int = 0
    price_cents: int = 0
    product_ids: tuple[str, ...] = ()
    group_ids: tuple[str, ...] = ()
    starts: str | None = None
    ends: str | None = None
    active: bool = True

    def matches(self, line: Line) -> bool:
        if self.product_ids and line.product_id not in self.product_ids:
            return False
        if self.group_ids and line.group_id not in self.group_ids:
            return False
        return True

    def valid_on(self, day: dt.date) -> bool:
        iso = day.isoformat()
        return (
            self.active
            and (self.starts is None or self.starts <= iso)
            and (self.ends is None or iso <= self.ends)
        )


@dataclass(frozen=True)
class CustomerDiscount:
    """What step 5 may take off a line: group rates by special flag, and the VIP rate."""

    group_bp: int = 0  # for lines that are not on offer
    group_bp_specials: int = 0  # for lines on offer (groups with "also on specials")
    group_label: str = ""
    vip_bp: int = 0
    vip_label: str = ""


def price(
    lines: list[Line],
    rules: list[Rule] = (),
    *,
    customer: CustomerDiscount = CustomerDiscount(),
    basket_bp: int = 0,
    basket_cents: int = 0,
    loyalty_direct_bp: dict[str, int] | None = None,
    loyalty_label: str = "",
) -> list[Line]:
    """Apply every discount to ``lines`` in the documented order; returns the same lines."""
    for line in lines:
        line.discounts = []
    items = [ln for ln in lines if ln.discountable]
    # 1. final price
    for line in items:
        finals = [r for r in rules if r.kind == "final_price" and r.matches(line)
                  and r.price_cents < line.unit_cents]  # fmt: skip
        if finals:
            best = min(finals, key=lambda r: (r.price_cents, r.id))
            line.add("final_price", best.name, (line.unit_cents - best.price_cents) * line.qty)
            line.special = True
    # 2. sales rule: the best percentage, never compounded
    for line in items:
        sales = [r for r in rules if r.kind == "sale_percent" and r.matches(line) and r.bp > 0]
        if sales:
            best = max(sales, key=lambda r: (r.bp, r.id))
            if line.add("sale_rule", best.name, percent_of(line.total_cents, best.bp)):
                line.special = True
    # 3. n-th item: each unit gets at most one multi-buy discount
    taken: set[tuple[int, int]] = set()
    for rule in sorted((r for r in rules if r.kind == "nth_item" and r.n >= 2 and r.bp > 0),
                       key=lambda r: r.id):  # fmt: skip
        units = []
        for li, line in enumerate(items):
            if not rule.matches(line):
                continue
            rest, q = line.total_cents, line.qty
            for u in range(q):
                if (li, u) not in taken:
                    units.append((rest // q + (1 if u < rest % q else 0), li, u))
        units.sort(key=lambda t: (-t[0], t[1], t[2]))
        per_line: dict[int, int] = {}
        for k in range(rule.n - 1, len(units), rule.n):
            value, li, u = units[k]
            taken.add((li, u))
            per_line[li] = per_line.get(li, 0) + percent_of(value, rule.bp)
        for li, cents in per_line.items():
            if items[li].add("multi_buy", rule.name, cents):
                items[li].special = True
    # 4. manual line discount
    for line in items:
        if line.manual_bp:
            line.add("manual_line", _("Line discount"), percent_of(line.total_cents, line.manual_bp))
        if line.manual_cents:
            line.add("manual_line", _("Line discount"), line.manual_cents)
    # 5. customer: group rate (specials only if allowed) or VIP rate, whichever is higher
    for line in items:
        group_bp = customer.group_bp_specials if line.special else customer.group_bp
        if customer.vip_bp > group_bp:
            line.add("customer", customer.vip_label, percent_of(line.total_cents, customer.vip_bp))
        elif group_bp:
            line.add("customer", customer.group_label, percent_of(line.total_cents, group_bp))
    # 6. basket discount, spread exactly over the lines
    if basket_bp or basket_cents:
        base = sum(ln.total_cents for ln in items)
        wanted = percent_of(base, basket_bp) if basket_bp else min(basket_cents, base)
        for line, cents in zip(items, allocate(wanted, [ln.total_cents for ln in items])):
            line.add("basket", _("Basket discount"), cents)
    # 7. loyalty direct discount by article kind (repairs count as services)
    if loyalty_direct_bp:
        for line in items:
            kind = "service" if line.article_kind in ("service", "repair") else "goods"
            bp = loyalty_direct_bp.get(kind, 0)
            if bp:
                line.add("loyalty_direct", loyalty_label, percent_of(line.total_cents, bp))
    return lines


def total(lines: list[Line]) -> int:
    return sum(ln.total_cents for ln in lines)


# -- rules as shop data -------------------------------------------------------------------------------
def _date_text(value: Any, field_name: str, errors: dict[str, str]) -> str | None:
    if value in (None, ""):
        return None
    try:
        return (value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))).isoformat()
    except ValueError:
        errors[field_name] = _("Enter the date as YYYY-MM-DD.")
        return None


def save_rule(
    store: Store, name: str, kind: str, *, bp: int = 0, n: int = 0, price_cents: int = 0,
    product_ids: list[str] = (), group_ids: list[str] = (), starts: Any = None,
    ends: Any = None, active: bool = True, rule_id: str | None = None,
) -> str:  # fmt: skip
    """Create or change a promotion rule; returns its id."""
    errors: dict[str, str] = {}
    name = " ".join((name or "").split())
    if not name or len(name) > 60:
        errors["name"] = _("Enter a name of at most 60 characters.")
    if kind not in RULE_KINDS:
        errors["kind"] = _("Choose one of: {choices}.").format(choices=", ".join(RULE_KINDS))
    if kind in ("sale_percent", "nth_item") and not (isinstance(bp, int) and 0 < bp <= 10000):
        errors["bp"] = _("The percentage must lie between 0.01 and 100.")
    if kind == "nth_item" and not (isinstance(n, int) and 2 <= n <= 20):
        errors["n"] = _("Every n-th item: n must lie between 2 and 20.")
    if kind == "final_price":
        if isinstance(price_cents, bool) or not isinstance(price_cents, int) or price_cents < 0:
            errors["price_cents"] = _("Enter the final price in cents.")
        if not product_ids:
            errors["product_ids"] = _("A final price needs at least one product.")
    start, end = _date_text(starts, "starts", errors), _date_text(ends, "ends", errors)
    if start and end and end < start:
        errors["ends"] = _("The end lies before the start.")
    if errors:
        raise PromotionError(errors)
    rid = rule_id or events.new_id()
    events.emit(
        store,
        "promotion.upserted",
        {"id": rid, "fields": {"name": name, "kind": kind, "bp": bp, "n": n,
                               "price_cents": price_cents, "product_ids": list(product_ids),
                               "group_ids": list(group_ids), "starts": start, "ends": end,
                               "active": bool(active)}},
    )  # fmt: skip
    return rid


@events.handler("promotion.upserted")
def _apply_rule(store: Store, ev: events.Event) -> None:
    fields = dict(ev.payload["fields"])
    for key in ("product_ids", "group_ids"):
        if key in fields:
            fields[key] = msgspec.json.encode(fields[key]).decode()
    if "active" in fields:
        fields["active"] = int(bool(fields["active"]))
    lww.upsert(store.db, "promotions", {"id": ev.payload["id"]}, fields, ev.hlc)


def rules(store: Store, *, on: dt.date | None = None, active_only: bool = True) -> list[Rule]:
    """Promotion rules, only those valid on the shop-local day ``on`` when given."""
    out = []
    for row in store.db.execute(
        "SELECT id, name, kind, coalesce(bp, 0), coalesce(n, 0), coalesce(price_cents, 0),"
        " product_ids, group_ids, starts, ends, coalesce(active, 1) FROM promotions ORDER BY id"
    ):
        rule = Rule(
            row[0], row[1], row[2], row[3], row[4], row[5],
            tuple(msgspec.json.decode(row[6] or "[]")), tuple(msgspec.json.decode(row[7] or "[]")),
            row[8], row[9], bool(row[10]),
        )  # fmt: skip
        if (active_only and not rule.active) or (on is not None and not rule.valid_on(on)):
            continue
        out.append(rule)
    return out
