"""Promotions and the documented discount stacking order (docs/loyalty.md)."""

from __future__ import annotations

import pytest

from kiosk.engine import groups, promotions, sale, vouchers
from kiosk.engine.promotions import CustomerDiscount, Line, Rule
from tests.support.shop import english, make_shop

__all__ = ["english"]


@pytest.fixture
def shop(store):
    return make_shop(store)


def discounts(q) -> list[tuple[str, str, int]]:
    return [(ln.name, d.source, d.cents) for ln in q.lines for d in ln.discounts]


def test_store_wide_percentage_only_within_its_period(shop, frozen_clock):
    s = shop.store
    s.clock = frozen_clock  # 2026-05-04
    promotions.save_rule(s, "Sommerschlussverkauf", "sale_percent", bp=3000,
                         starts="2026-05-01", ends="2026-05-10")  # fmt: skip
    d = shop.draft("Jeans", "Kürzen")
    assert sale.quote(s, d).total_cents == 3500 + 1050
    frozen_clock.advance(days=7)  # 2026-05-11: over
    assert sale.quote(s, d).total_cents == 6500
    with pytest.raises(promotions.PromotionError) as exc:
        promotions.save_rule(s, "Falsch", "sale_percent", bp=0, starts="2026-05-10",
                             ends="2026-05-01")  # fmt: skip
    assert set(exc.value.errors) == {"bp", "ends"}


def test_best_sales_rule_wins_rules_never_compound(shop):
    s = shop.store
    promotions.save_rule(s, "Alles 10 %", "sale_percent", bp=1000)
    promotions.save_rule(s, "Hosen 20 %", "sale_percent", bp=2000, group_ids=[shop.groups["damen"]])
    q = sale.quote(s, shop.draft("Jeans", "Hemd"))
    assert discounts(q) == [("Jeans", "sale_rule", 1000), ("Hemd", "sale_rule", 400)]


def test_second_item_half_price(shop):
    s = shop.store
    promotions.save_rule(s, "2. Artikel -50 %", "nth_item", bp=5000, n=2,
                         group_ids=[shop.groups["damen"]])  # fmt: skip
    q = sale.quote(s, shop.draft(("Bluse", 3), "Jeans", "Hemd"))
    # units by price: Jeans 50, Bluse 30, 30, 30 → the 2nd and 4th (two Blusen) get 50 %
    assert discounts(q) == [("Bluse", "multi_buy", 3000)]
    assert q.total_cents == 9000 + 5000 + 4000 - 3000


def test_fixed_final_price(shop):
    s = shop.store
    promotions.save_rule(s, "Jeans für 39", "final_price", price_cents=3900,
                         product_ids=[shop.products["Jeans"]])  # fmt: skip
    promotions.save_rule(s, "Jeans für 45", "final_price", price_cents=4500,
                         product_ids=[shop.products["Jeans"]])  # fmt: skip
    q = sale.quote(s, shop.draft(("Jeans", 2)))
    assert discounts(q) == [("Jeans", "final_price", 2200)]  # the lowest final price
    assert q.lines[0].special  # now an offer: group discounts without the flag skip it
    with pytest.raises(promotions.PromotionError):
        promotions.save_rule(s, "Ohne Artikel", "final_price", price_cents=100)


def test_customer_category_discount_and_the_also_on_specials_flag(shop):
    s = shop.store
    plain = shop.customer()
    vip = shop.customer(first_name="Vera")
    g1 = groups.save(s, "Stammkunden", discount="10")
    g2 = groups.save(s, "Personal", discount="20", applies_to_specials=True)
    groups.assign(s, plain["id"], g1)
    groups.assign(s, vip["id"], g2)
    promotions.save_rule(s, "Hemd für 30", "final_price", price_cents=3000,
                         product_ids=[shop.products["Hemd"]])  # fmt: skip
    q = sale.quote(s, shop.draft("Jeans", "Hemd", customer=plain["id"]))
    assert discounts(q) == [("Jeans", "customer", 500), ("Hemd", "final_price", 1000)]
    sale.cancel(s, q.draft_id)
    q = sale.quote(s, shop.draft("Jeans", "Hemd", customer=vip["id"]))
    assert discounts(q) == [("Jeans", "customer", 1000), ("Hemd", "final_price", 1000),
                            ("Hemd", "customer", 600)]  # fmt: skip


def test_vip_rate_replaces_a_lower_group_rate(shop):
    s = shop.store
    c = shop.customer()
    groups.assign(s, c["id"], groups.save(s, "Stammkunden", discount="10"))
    vouchers.save_vip(s, "#VIP#A1", c["id"], 1500)
    d = shop.draft("Jeans", customer=c["id"])
    sale.apply_vip(s, d, "#VIP#A1")
    assert discounts(sale.quote(s, d)) == [("Jeans", "customer", 750)]  # 15 %, not 10 + 15


def test_the_full_stacking_order_on_one_line():
    """final price → sales rule → n-th item → manual → customer → basket → loyalty direct."""
    lines = [Line(1, "product", "Jeans", 2, 10000, product_id="j", group_id="g", manual_bp=1000),
             Line(2, "product", "Gürtel", 1, 3000, product_id="b", group_id="g")]  # fmt: skip
    rules = [Rule("r1", "Endpreis", "final_price", price_cents=8000, product_ids=("j",)),
             Rule("r2", "Sale", "sale_percent", bp=1000),
             Rule("r3", "2. -50 %", "nth_item", bp=5000, n=2)]  # fmt: skip
    promotions.price(lines, rules, customer=CustomerDiscount(group_bp=1000, group_bp_specials=500,
                                                             group_label="Stamm"),
                     basket_cents=1001, loyalty_direct_bp={"goods": 1000}, loyalty_label="Karte")
    jeans, belt = lines
    assert [(d.source, d.cents) for d in jeans.discounts] == [
        ("final_price", 4000),   # 2 × (100 € → 80 €)           160,00 left
        ("sale_rule", 1600),     # 10 % of 160 €                144,00
        ("multi_buy", 3600),     # units 72, 72, 27: 2nd = 72 € at 50 %   108,00
        ("manual_line", 1080),   # 10 % cashier                  97,20
        ("customer", 486),       # 5 %: the line is on offer     92,34
        ("basket", 783),         # 10,01 € × 92,34 / 117,99      84,51
        ("loyalty_direct", 845), # 10 % card discount            76,06
    ]  # fmt: skip
    assert [(d.source, d.cents) for d in belt.discounts] == [
        ("sale_rule", 300), ("customer", 135), ("basket", 218), ("loyalty_direct", 235)]
    # the sales rule made the belt an offer too, so it also gets the 5 % "specials" rate
    assert jeans.total_cents == 7606 and belt.total_cents == 2112
    assert promotions.STACKING_ORDER == tuple(dict.fromkeys(
        d.source for d in jeans.discounts))  # fmt: skip


def test_discounts_never_exceed_the_line_and_skip_returns_and_stored_value():
    lines = [Line(1, "product", "A", 1, 999, manual_cents=5000),
             Line(2, "return", "B", -1, 2000),
             Line(3, "giftcard", "Gutschein", 1, 5000)]  # fmt: skip
    promotions.price(lines, [Rule("r", "Sale", "sale_percent", bp=5000)], basket_bp=1000)
    assert [ln.total_cents for ln in lines] == [0, -2000, 5000]


def test_allocate_is_exact():
    assert promotions.allocate(100, [1, 1, 1]) == [34, 33, 33]
    assert sum(promotions.allocate(1001, [14400, 3000])) == 1001
    assert promotions.allocate(5, [0, 0]) == [0, 0]
    assert promotions.percent_of(333, 5000) == 167  # half up
