"""Customer groups / categories (VIP, Hochzeitskunden, Firmen, Rentner, Studenten …).

A group may carry a percentage discount and a flag whether that discount also applies to
special offers. Membership is a last-writer-wins set per (customer, group).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from sqlite_utils import Migrations

from kiosk.engine import customers, events, lww
from kiosk.engine.store import Store, dicts, register_migrations
from kiosk.i18n import _

migrations = register_migrations(Migrations("kiosk.groups"))


@migrations()
def m001_groups(db) -> None:
    db.execute(
        """
        CREATE TABLE customer_groups (
            id TEXT PRIMARY KEY,
            name TEXT,
            description TEXT,
            discount_bp INTEGER,          -- discount in basis points: 1000 = 10.00 %
            applies_to_specials INTEGER,  -- discount also on articles already on offer
            active INTEGER,
            _clock TEXT
        )
        """
    )
    db.execute(
        """
        CREATE TABLE customer_group_members (
            customer_id TEXT NOT NULL,
            group_id TEXT NOT NULL,
            member INTEGER,
            _clock TEXT,
            PRIMARY KEY (customer_id, group_id)
        )
        """
    )
    db.execute("CREATE INDEX customer_group_members_group ON customer_group_members(group_id)")


class GroupError(ValueError):
    pass


def percent_to_bp(value: Any) -> int:
    """Parse '10', '10,5' or Decimal('12.25') percent into basis points, refusing floats."""
    if isinstance(value, float):
        raise GroupError(_("Enter the discount as text or a whole number, not a float."))
    try:
        pct = Decimal(str(value).replace(",", ".").replace("%", "").strip() or "0")
    except InvalidOperation as exc:
        raise GroupError(_("The discount must be a percentage between 0 and 100.")) from exc
    if not pct.is_finite() or not Decimal(0) <= pct <= Decimal(100):
        raise GroupError(_("The discount must be a percentage between 0 and 100."))
    bp = pct * 100
    if bp != bp.to_integral_value():
        raise GroupError(_("At most two decimal places."))
    return int(bp)


def save(
    store: Store,
    name: str,
    *,
    description: str = "",
    discount: Any = 0,
    applies_to_specials: bool = False,
    active: bool = True,
    group_id: str | None = None,
) -> str:
    """Create or change a group; returns its id."""
    name = " ".join((name or "").split())
    if not name or len(name) > 60:
        raise GroupError(_("Enter a group name of at most 60 characters."))
    clash = store.db.execute(
        "SELECT id FROM customer_groups WHERE lower(name) = lower(?) AND active = 1", [name]
    ).fetchone()
    if clash and clash[0] != group_id:
        raise GroupError(_("A group with this name exists already."))
    gid = group_id or events.new_id()
    events.emit(
        store,
        "group.upserted",
        {"id": gid, "fields": {"name": name, "description": description[:300],
                               "discount_bp": percent_to_bp(discount),
                               "applies_to_specials": bool(applies_to_specials),
                               "active": bool(active)}},
    )  # fmt: skip
    return gid


@events.handler("group.upserted")
def _apply_group(store: Store, ev: events.Event) -> None:
    fields = dict(ev.payload["fields"])
    for flag in ("applies_to_specials", "active"):
        if flag in fields:
            fields[flag] = int(bool(fields[flag]))
    lww.upsert(store.db, "customer_groups", {"id": ev.payload["id"]}, fields, ev.hlc)


def all_groups(store: Store, *, active_only: bool = True) -> list[dict[str, Any]]:
    where = "WHERE active = 1" if active_only else ""
    return [
        {**row, "applies_to_specials": bool(row["applies_to_specials"]),
         "active": bool(row["active"])}
        for row in store.db.query(
            f"SELECT id, name, description, discount_bp, applies_to_specials, active"
            f" FROM customer_groups {where} ORDER BY name"
        )
    ]  # fmt: skip


def _set_member(store: Store, customer_id: str, group_id: str, member: bool) -> None:
    customer = customers.get(store, customer_id)
    if not store.db.execute("SELECT 1 FROM customer_groups WHERE id = ?", [group_id]).fetchone():
        raise GroupError(_("Unknown group."))
    events.emit(
        store,
        "group.membership",
        {"customer_id": customer["id"], "group_id": group_id, "member": member},
    )


def assign(store: Store, customer_id: str, group_id: str) -> None:
    _set_member(store, customer_id, group_id, True)


def remove(store: Store, customer_id: str, group_id: str) -> None:
    _set_member(store, customer_id, group_id, False)


@events.handler("group.membership")
def _apply_membership(store: Store, ev: events.Event) -> None:
    p = ev.payload
    lww.upsert(
        store.db,
        "customer_group_members",
        {"customer_id": p["customer_id"], "group_id": p["group_id"]},
        {"member": int(bool(p["member"]))},
        ev.hlc,
    )


def of_customer(store: Store, customer_id: str) -> list[str]:
    return [
        r[0]
        for r in store.db.execute(
            "SELECT m.group_id FROM customer_group_members m JOIN customer_groups g"
            " ON g.id = m.group_id WHERE m.customer_id = ? AND m.member = 1 AND g.active = 1"
            " ORDER BY g.name",
            [customers.resolve(store.db, customer_id)],
        )
    ]


def groups_of(store: Store, customer_id: str) -> list[dict[str, Any]]:
    """The active groups of a customer, with their discount settings."""
    return dicts(
        store.db,
        "SELECT g.id, g.name, g.discount_bp, g.applies_to_specials FROM customer_group_members m"
        " JOIN customer_groups g ON g.id = m.group_id"
        " WHERE m.customer_id = ? AND m.member = 1 AND g.active = 1 ORDER BY g.name",
        [customers.resolve(store.db, customer_id)],
    )


def best_discount_bp(store: Store, customer_id: str, *, on_special: bool) -> int:
    """The highest group discount that applies to an article (on offer or not)."""
    return max(
        (
            g["discount_bp"]
            for g in groups_of(store, customer_id)
            if g["applies_to_specials"] or not on_special
        ),
        default=0,
    )
