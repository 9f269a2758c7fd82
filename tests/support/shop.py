"""A small shop for the sale, loyalty and stored-value tests (and bench/sale.py).

Everything goes through the engine's commands, so the fixtures are what a shop owner would
set up: article groups, products with EANs, a customer with a loyalty card, a wallet type.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from kiosk import i18n
from kiosk.engine import (
    catalog,
    customers,
    events,
    loyalty,
    sale,
    settings,
    stored_value,
    wallet,
)
from kiosk.engine.store import Store

ONLINE = True


@pytest.fixture(autouse=True)
def english():
    """Messages in English so tests can match them (import this fixture into a module)."""
    before = i18n.language()
    i18n.set_language("en")
    yield
    i18n.set_language(before)


def ean(n: int) -> str:
    """A valid in-store EAN-13 for product number ``n``."""
    body = f"400{n:09d}"
    return body + catalog.ean_check_digit(body)


def sell(store: Store, customer_id: str, cents: int) -> sale.CompletedSale:
    """A new article at ``cents`` sold to the customer and paid by card: revenue and a visit
    for the rules that count them (voucher runs, campaign filters)."""
    pid = catalog.save_product(store, f"Ring {cents}", cents)
    draft = sale.open_draft(store)
    sale.add_product(store, draft, pid)
    sale.attach_customer(store, draft, customer_id)
    sale.add_payment(store, draft, "card", cents)
    return sale.complete(store, draft)


@dataclass
class Shop:
    store: Store
    groups: dict[str, str] = field(default_factory=dict)
    products: dict[str, str] = field(default_factory=dict)
    eans: dict[str, str] = field(default_factory=dict)

    def product(self, name: str, price: int, group: str = "damen", **kw: Any) -> str:
        code = ean(len(self.products) + 1)
        pid = catalog.save_product(self.store, name, price, group_id=self.groups[group],
                                   eans=[code], **kw)  # fmt: skip
        self.products[name], self.eans[name] = pid, code
        return pid

    def customer(self, **data: Any) -> dict[str, Any]:
        values = {"last_name": "Muster", "first_name": "Anna", "gender": "f"}
        values.update(data)
        return customers.create(self.store, values, force=True)

    def draft(self, *items: str | tuple[str, int], customer: str | None = None) -> str:
        d = sale.open_draft(self.store)
        for item in items:
            name, qty = (item, 1) if isinstance(item, str) else item
            sale.add_product(self.store, d, self.products[name], qty)
        if customer:
            sale.attach_customer(self.store, d, customer)
        return d

    def pay_rest(self, d: str, method: str = "card") -> sale.CompletedSale:
        q = sale.quote(self.store, d, online=ONLINE)
        if q.due_cents:
            sale.add_payment(self.store, d, method, q.due_cents)
        return sale.complete(self.store, d, online=ONLINE)

    def sell(self, *items: str | tuple[str, int], customer: str | None = None,
             method: str = "card") -> sale.CompletedSale:  # fmt: skip
        return self.pay_rest(self.draft(*items, customer=customer), method)


def make_shop(store: Store, *, loyalty_on: bool = True) -> Shop:
    shop = Shop(store)
    shop.groups["damen"] = catalog.save_group(store, "Damenhosen", gender="damen", family="Hose")
    shop.groups["herren"] = catalog.save_group(store, "Herrenhemden", gender="herren",
                                               family="Hemd")  # fmt: skip
    shop.groups["service"] = catalog.save_group(store, "Änderungen", kind="service")
    shop.groups["repair"] = catalog.save_group(store, "Reparatur", kind="repair")
    shop.groups["books"] = catalog.save_group(store, "Bücher")
    shop.product("Jeans", 5000)
    shop.product("Bluse", 3000)
    shop.product("Hemd", 4000, "herren")
    shop.product("Kürzen", 1500, "service")
    shop.product("Reißverschluss", 2000, "repair")
    shop.product("Buch", 2000, "books", vat_bp=700)
    if loyalty_on:
        settings.set(store, "loyalty.enabled", True)
    stored_value.set_connectivity(store, True)  # in sync with the hub unless a test says not
    return shop


def card_type(store: Store, **overrides: Any) -> str:
    data: dict[str, Any] = {"description": "Treuekarte"}
    data.update(overrides)
    return loyalty.save_card_type(store, data)


def new_wallet(shop: Shop, customer_id: str, cents: int, *, condition: str = "") -> str:
    """Load a wallet in a sale of its own; returns the wallet number."""
    wt = wallet.save_type(shop.store, f"KMU {condition or 'frei'}"[:30], condition=condition)
    d = sale.open_draft(shop.store)
    sale.attach_customer(shop.store, d, customer_id)
    sale.load_wallet(shop.store, d, wt, amount_cents=cents)
    done = shop.pay_rest(d, "cash")
    return done.payload["wallet"][0]["number"]


# -- comparing replicas ------------------------------------------------------------------------
DEVICE_LOCAL = {"meta", "events", "sale_drafts", "sale_draft_lines", "sale_draft_payments"}


def projection(store: Store) -> dict[str, list[tuple]]:
    """Every shop-data table's rows, sorted (device-local working state left out)."""
    out = {}
    for (name,) in store.db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        " AND name NOT LIKE '%_fts%' AND substr(name, 1, 1) != '_'"
    ).fetchall():
        if name in DEVICE_LOCAL or name.startswith("search"):
            continue
        out[name] = sorted(store.db.execute(f"SELECT * FROM [{name}]").fetchall(), key=repr)
    return out


def replay(source: Store, target: Store) -> int:
    """Apply every event of ``source`` to ``target`` in HLC order; returns how many were new."""
    rows = source.db.execute(
        "SELECT id, device, hlc, type, v, payload, created_at, seq FROM events ORDER BY hlc"
    ).fetchall()
    return sum(events.apply(target, events.Event.from_row(r)) for r in rows)
