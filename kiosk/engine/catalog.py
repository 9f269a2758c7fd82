"""The product catalogue: article groups, products, EAN barcodes, prices, gift flags.

An article group says what its products are: goods or a service (TiM "DL" vs "VK"), a
repair (Prismanote: points on repairs yes/no), the gender of the article ("Damen"/"Herren",
TiM bonus rules differ by it) and a family (Fastmag e-wallet conditions such as
``f.family = 'Hose'``). Products carry the price in cents (VAT included), the VAT rate in
basis points, the "special offer" flag (customer-group discounts skip specials unless the
group says otherwise) and, for the Fastmag loyalty programme, the level whose customers may
pick the product as a gift. Records merge last-writer-wins per field by HLC.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Migrations

from kiosk.engine import events, lww
from kiosk.engine.store import Store, register_migrations
from kiosk.i18n import _

_LOGGER = logging.getLogger(__name__)

migrations = register_migrations(Migrations("kiosk.catalog"))

KINDS = ("goods", "service", "repair")
GENDERS = ("", "damen", "herren")
VAT_RATES_BP = (0, 700, 1900)  # German VAT: 0 %, 7 %, 19 %
MAX_PRICE_CENTS = 10_000_000  # 100,000 € per unit: a typo guard, not a business rule


@migrations()
def m001_catalog(db) -> None:
    db.execute(
        """
        CREATE TABLE article_groups (
            id TEXT PRIMARY KEY,
            name TEXT,
            kind TEXT,           -- goods, service, repair
            gender TEXT,         -- '', damen, herren
            family TEXT,         -- free text used by e-wallet conditions
            active INTEGER,
            _clock TEXT
        )
        """
    )
    db.execute(
        """
        CREATE TABLE products (
            id TEXT PRIMARY KEY,
            sku TEXT,
            name TEXT,
            group_id TEXT,
            price_cents INTEGER,
            vat_bp INTEGER,
            special INTEGER,       -- on offer: customer-group discounts may skip it
            gift_level_id TEXT,    -- Fastmag: may be picked as a gift from this level on
            active INTEGER,
            _clock TEXT
        )
        """
    )
    db.execute("CREATE INDEX products_sku ON products(sku)")
    db.execute("CREATE INDEX products_gift ON products(gift_level_id) WHERE gift_level_id IS NOT NULL")
    db.execute(
        """
        CREATE TABLE product_eans (
            ean TEXT PRIMARY KEY,
            product_id TEXT,
            _clock TEXT
        )
        """
    )
    db.execute("CREATE INDEX product_eans_product ON product_eans(product_id)")


class CatalogError(ValueError):
    """Bad catalogue input; ``errors`` maps field name to a readable message."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


class UnknownProduct(LookupError):
    pass


@dataclass(frozen=True)
class Product:
    id: str
    sku: str
    name: str
    group_id: str | None
    price_cents: int
    vat_bp: int
    special: bool
    gift_level_id: str | None
    active: bool
    kind: str  # from the group: goods, service, repair
    gender: str
    family: str
    group_name: str


# -- validation ------------------------------------------------------------------------------------
def ean_check_digit(body: str) -> str:
    """GS1 check digit for the digits before it (EAN-8, UPC-A, EAN-13, GTIN-14)."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return str((10 - total % 10) % 10)


def valid_ean(code: str) -> bool:
    return (
        code.isdigit() and len(code) in (8, 12, 13, 14) and ean_check_digit(code[:-1]) == code[-1]
    )


def normalise_ean(code: str) -> str:
    """Strip what scanners add; refuse codes whose check digit is wrong."""
    code = re.sub(r"\s+", "", str(code or ""))
    if not valid_ean(code):
        raise CatalogError({"ean": _("{code} is not a valid EAN/GTIN barcode.").format(code=code)})
    return code


def _check_price(value: Any, field: str, errors: dict[str, str]) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        errors[field] = _("Enter the price in cents as a whole number.")
        return None
    if not 0 <= value <= MAX_PRICE_CENTS:
        errors[field] = _("The price must lie between 0 and 100,000 €.")
        return None
    return value


# -- commands ----------------------------------------------------------------------------------------
def save_group(
    store: Store, name: str, *, kind: str = "goods", gender: str = "", family: str = "",
    active: bool = True, group_id: str | None = None,
) -> str:  # fmt: skip
    """Create or change an article group; returns its id."""
    errors: dict[str, str] = {}
    name = " ".join((name or "").split())
    if not name or len(name) > 60:
        errors["name"] = _("Enter a group name of at most 60 characters.")
    if kind not in KINDS:
        errors["kind"] = _("Choose one of: {choices}.").format(choices=", ".join(KINDS))
    gender = (gender or "").lower()
    if gender not in GENDERS:
        errors["gender"] = _("Choose Damen, Herren or nothing.")
    family = " ".join((family or "").split())[:60]
    if errors:
        raise CatalogError(errors)
    gid = group_id or events.new_id()
    events.emit(
        store,
        "catalog.group_upserted",
        {"id": gid, "fields": {"name": name, "kind": kind, "gender": gender, "family": family,
                               "active": bool(active)}},
    )  # fmt: skip
    return gid


def save_product(
    store: Store, name: str, price_cents: int, *, group_id: str | None = None, sku: str = "",
    eans: list[str] = (), vat_bp: int = 1900, special: bool = False,
    gift_level_id: str | None = None, active: bool = True, product_id: str | None = None,
) -> str:  # fmt: skip
    """Create or change a product with its barcodes; returns its id."""
    errors: dict[str, str] = {}
    name = " ".join((name or "").split())
    if not name or len(name) > 80:
        errors["name"] = _("Enter a product name of at most 80 characters.")
    price = _check_price(price_cents, "price_cents", errors)
    if vat_bp not in VAT_RATES_BP:
        errors["vat_bp"] = _("Choose a VAT rate of 0 %, 7 % or 19 %.")
    if group_id and not store.db.execute(
        "SELECT 1 FROM article_groups WHERE id = ?", [group_id]
    ).fetchone():
        errors["group_id"] = _("Unknown article group.")
    if gift_level_id and not store.db.execute(
        "SELECT 1 FROM loyalty_levels WHERE id = ?", [gift_level_id]
    ).fetchone():
        errors["gift_level_id"] = _("Unknown loyalty level.")
    codes: list[str] = []
    for raw in eans:
        try:
            code = normalise_ean(raw)
        except CatalogError as exc:
            errors["eans"] = exc.errors["ean"]
            continue
        owner = store.db.execute(
            "SELECT product_id FROM product_eans WHERE ean = ?", [code]
        ).fetchone()
        if owner and owner[0] and owner[0] != product_id:
            errors["eans"] = _("Barcode {code} belongs to another product.").format(code=code)
        codes.append(code)
    if errors:
        raise CatalogError(errors)
    pid = product_id or events.new_id()
    events.emit(
        store,
        "catalog.product_upserted",
        {"id": pid, "eans": codes,
         "fields": {"name": name, "sku": (sku or "").strip()[:40], "group_id": group_id,
                    "price_cents": price, "vat_bp": vat_bp, "special": bool(special),
                    "gift_level_id": gift_level_id, "active": bool(active)}},
    )  # fmt: skip
    return pid


def set_gift_level(store: Store, product_id: str, level_id: str | None) -> None:
    """Flag a product as a loyalty gift from a level on (None removes the flag)."""
    get(store, product_id)
    if level_id and not store.db.execute(
        "SELECT 1 FROM loyalty_levels WHERE id = ?", [level_id]
    ).fetchone():
        raise CatalogError({"gift_level_id": _("Unknown loyalty level.")})
    events.emit(
        store,
        "catalog.product_upserted",
        {"id": product_id, "eans": [], "fields": {"gift_level_id": level_id}},
    )


@events.handler("catalog.group_upserted")
def _apply_group(store: Store, ev: events.Event) -> None:
    fields = dict(ev.payload["fields"])
    if "active" in fields:
        fields["active"] = int(bool(fields["active"]))
    lww.upsert(store.db, "article_groups", {"id": ev.payload["id"]}, fields, ev.hlc)


@events.handler("catalog.product_upserted")
def _apply_product(store: Store, ev: events.Event) -> None:
    fields = dict(ev.payload["fields"])
    for flag in ("special", "active"):
        if flag in fields:
            fields[flag] = int(bool(fields[flag]))
    lww.upsert(store.db, "products", {"id": ev.payload["id"]}, fields, ev.hlc)
    for code in ev.payload.get("eans", []):
        lww.upsert(store.db, "product_eans", {"ean": code}, {"product_id": ev.payload["id"]}, ev.hlc)


# -- queries ---------------------------------------------------------------------------------------
_SELECT = (
    "SELECT p.id, coalesce(p.sku, ''), p.name, p.group_id, p.price_cents, p.vat_bp,"
    " coalesce(p.special, 0), p.gift_level_id, coalesce(p.active, 1),"
    " coalesce(g.kind, 'goods'), coalesce(g.gender, ''), coalesce(g.family, ''),"
    " coalesce(g.name, '') FROM products p LEFT JOIN article_groups g ON g.id = p.group_id"
)


def _product(row) -> Product:
    return Product(
        row[0], row[1], row[2], row[3], row[4], row[5], bool(row[6]), row[7], bool(row[8]),
        row[9], row[10], row[11], row[12],
    )  # fmt: skip


def get(store: Store, product_id: str) -> Product:
    row = store.db.execute(_SELECT + " WHERE p.id = ?", [product_id]).fetchone()
    if row is None:
        raise UnknownProduct(product_id)
    return _product(row)


def by_ean(store: Store, code: str) -> Product:
    """The active product with this barcode (raises UnknownProduct with a readable text)."""
    code = re.sub(r"\s+", "", str(code or ""))
    row = store.db.execute(
        _SELECT + " JOIN product_eans e ON e.product_id = p.id WHERE e.ean = ?", [code]
    ).fetchone()
    if row is None or not row[8]:
        raise UnknownProduct(_("No product with the barcode {code}.").format(code=code))
    return _product(row)


def eans_of(store: Store, product_id: str) -> list[str]:
    return [r[0] for r in store.db.execute(
        "SELECT ean FROM product_eans WHERE product_id = ? ORDER BY ean", [product_id]
    )]  # fmt: skip


def groups(store: Store, *, active_only: bool = True) -> list[dict[str, Any]]:
    where = "WHERE active = 1" if active_only else ""
    return list(store.db.query(
        f"SELECT id, name, kind, gender, family, active FROM article_groups {where} ORDER BY name"
    ))  # fmt: skip


def gift_products(store: Store) -> list[Product]:
    """Every active product flagged as a loyalty gift, cheapest level first."""
    rows = store.db.execute(
        _SELECT + " JOIN loyalty_levels l ON l.id = p.gift_level_id"
        " WHERE coalesce(p.active, 1) = 1 ORDER BY l.points, p.name"
    ).fetchall()
    return [_product(r) for r in rows]
