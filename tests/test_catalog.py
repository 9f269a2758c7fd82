"""The product catalogue: article groups, products, EAN barcodes, gift flags, replication."""

from __future__ import annotations

import pytest

from kiosk.engine import catalog, events, loyalty
from kiosk.engine.store import Identity, Store
from tests.support.shop import english, replay

__all__ = ["english"]


def test_ean_check_digits():
    assert catalog.valid_ean("4006381333931")  # EAN-13
    assert catalog.valid_ean("96385074")  # EAN-8
    assert catalog.valid_ean("036000291452")  # UPC-A
    assert not catalog.valid_ean("4006381333932")
    assert not catalog.valid_ean("40063813339")
    assert catalog.normalise_ean(" 4006381 333931 ") == "4006381333931"
    with pytest.raises(catalog.CatalogError, match="not a valid EAN"):
        catalog.normalise_ean("4006381333932")


def test_groups_carry_kind_gender_and_family(store):
    gid = catalog.save_group(store, "  Damen   Hosen ", gender="Damen", family="Hose")
    svc = catalog.save_group(store, "Änderungen", kind="service")
    assert [(g["name"], g["kind"], g["gender"], g["family"]) for g in catalog.groups(store)] == [
        ("Damen Hosen", "goods", "damen", "Hose"), ("Änderungen", "service", "", "")]  # fmt: skip
    with pytest.raises(catalog.CatalogError) as exc:
        catalog.save_group(store, "", kind="food", gender="kinder")
    assert set(exc.value.errors) == {"name", "kind", "gender"}
    pid = catalog.save_product(store, "Saum kürzen", 1500, group_id=svc)
    p = catalog.get(store, pid)
    assert (p.kind, p.gender, p.group_name) == ("service", "", "Änderungen")
    catalog.save_group(store, "Damen Hosen", gender="damen", family="Jeans", group_id=gid)
    assert catalog.groups(store)[0]["family"] == "Jeans"


def test_products_with_barcodes_prices_and_validation(store):
    gid = catalog.save_group(store, "Hosen")
    pid = catalog.save_product(store, "Jeans", 4999, group_id=gid, sku="J-1",
                               eans=["4006381333931", "96385074"], vat_bp=1900)  # fmt: skip
    p = catalog.by_ean(store, "4006381333931")
    assert (p.id, p.name, p.price_cents, p.sku, p.special) == (pid, "Jeans", 4999, "J-1", False)
    assert catalog.eans_of(store, pid) == ["4006381333931", "96385074"]
    with pytest.raises(catalog.CatalogError) as exc:
        catalog.save_product(store, "", 12.5, vat_bp=1600, group_id="nope",
                             eans=["4006381333931", "123"])  # fmt: skip
    assert set(exc.value.errors) == {"name", "price_cents", "vat_bp", "group_id", "eans"}
    with pytest.raises(catalog.CatalogError, match="another product"):
        catalog.save_product(store, "Andere", 100, eans=["4006381333931"])
    catalog.save_product(store, "Jeans", 4999, eans=[], active=False, product_id=pid)
    with pytest.raises(catalog.UnknownProduct, match="No product"):
        catalog.by_ean(store, "4006381333931")  # no longer sold
    with pytest.raises(catalog.UnknownProduct):
        catalog.get(store, "missing")


def test_gift_flags_by_level(store):
    gid = catalog.save_group(store, "Accessoires")
    l1 = loyalty.save_level(store, "Level 1", 10)
    l2 = loyalty.save_level(store, "Level 2", 20)
    bag = catalog.save_product(store, "Tasche", 1500, group_id=gid, gift_level_id=l2)
    scarf = catalog.save_product(store, "Schal", 900, group_id=gid)
    catalog.set_gift_level(store, scarf, l1)
    assert [p.name for p in catalog.gift_products(store)] == ["Schal", "Tasche"]
    catalog.set_gift_level(store, bag, None)
    assert [p.name for p in catalog.gift_products(store)] == ["Schal"]
    with pytest.raises(catalog.CatalogError, match="Unknown loyalty level"):
        catalog.set_gift_level(store, bag, "nope")


def test_catalogue_edits_merge_per_field_on_another_replica(store):
    gid = catalog.save_group(store, "Hosen")
    pid = catalog.save_product(store, "Jeans", 4999, group_id=gid, eans=["4006381333931"])
    catalog.save_product(store, "Jeans Slim", 5999, group_id=gid, product_id=pid)
    other = Store(None, Identity("teststore", "till-2", 2))
    try:
        assert replay(store, other) == 3
        assert replay(store, other) == 0  # applying twice changes nothing
        p = catalog.by_ean(other, "4006381333931")
        assert (p.name, p.price_cents) == ("Jeans Slim", 5999)
        # an older edit arriving late loses against the newer one
        first = events.history(store, "catalog.product_upserted")[-1]
        late = events.Event(events.new_id(), "till-3", first.hlc, first.type, 1, first.payload,
                            first.created_at)  # fmt: skip
        events.apply(other, late)
        assert catalog.get(other, pid).name == "Jeans Slim"
    finally:
        other.close()
