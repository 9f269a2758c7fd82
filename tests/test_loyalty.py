"""Loyalty: every programme setting (Prismanote), card type rule (TiM) and level gift (Fastmag)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import msgspec
import pytest

from kiosk.engine import catalog, customers, loyalty, sale, settings
from kiosk.engine.store import Store
from tests.support.shop import card_type, english, make_shop

__all__ = ["english"]


@pytest.fixture
def shop(identity, frozen_clock):  # 2026-05-04 10:30 UTC; in memory: fast
    s = Store(None, identity, clock=frozen_clock)
    yield make_shop(s)
    s.close()


def entries(done) -> list[tuple[str, int]]:
    return [(e["kind"], e["points"]) for e in done.payload["points"]]


def ledger_rows(store) -> list[tuple]:
    return store.db.execute("SELECT * FROM loyalty_points ORDER BY event_id, n").fetchall()


# -- programme settings (Prismanote "Sparpunkte") -------------------------------------------------
def test_programme_off_gives_no_points_and_refuses_redemption(shop):
    s, c = shop.store, shop.customer()
    settings.set(s, "loyalty.enabled", False)
    assert entries(shop.sell("Jeans", customer=c["id"])) == []
    d = shop.draft("Jeans", customer=c["id"])
    with pytest.raises(sale.SaleError, match="switched off"):
        sale.redeem_points(s, d, 0)
    assert not sale.quote(s, d).loyalty.enabled


def test_one_point_per_full_ten_euros_by_default(shop):
    c = shop.customer()
    assert entries(shop.sell("Jeans", ("Bluse", 3), customer=c["id"])) == [("earn", 14)]  # 140 €
    d = shop.draft("Kürzen", customer=c["id"])  # 15 € → 1 point (min spend 10 €)
    assert entries(shop.pay_rest(d)) == [("earn", 1)]
    assert loyalty.balance(shop.store, c["id"]) == 15


def test_min_spend_and_points_per_euro(shop):
    s, c = shop.store, shop.customer()
    settings.set(s, "loyalty.min_spend_cents", 2000)  # points only per full 20 €
    settings.set(s, "loyalty.points_per_euro", "0.5")
    assert entries(shop.sell("Jeans", customer=c["id"])) == [("earn", 20)]  # 40 € of 50 € count
    settings.set(s, "loyalty.min_spend_cents", 100)
    settings.set(s, "loyalty.points_per_euro", "2")
    assert entries(shop.sell("Kürzen", customer=c["id"])) == [("earn", 30)]
    with pytest.raises(settings.SettingError):
        settings.set(s, "loyalty.points_per_euro", 0.5)  # floats are refused
    with pytest.raises(settings.SettingError):
        settings.set(s, "loyalty.min_spend_cents", 0)


def test_points_on_discounted_lines_can_be_switched_off(shop):
    s, c = shop.store, shop.customer()
    catalog.save_product(s, "Sale-Bluse", 3000, group_id=shop.groups["damen"], special=True,
                         product_id=shop.products["Bluse"])  # fmt: skip
    d = shop.draft("Jeans", "Bluse", "Hemd", customer=c["id"])
    sale.set_line_discount(s, d, 3, percent_bp=1000)
    assert entries(shop.pay_rest(d)) == [("earn", 11)]  # 50 + 30 + 36 €
    settings.set(s, "loyalty.points_on_discounted", False)
    d = shop.draft("Jeans", "Bluse", "Hemd", customer=c["id"])
    sale.set_line_discount(s, d, 3, percent_bp=1000)
    assert entries(shop.pay_rest(d)) == [("earn", 5)]  # only the Jeans at full price
    settings.set(s, "loyalty.points_on_discounted", True)
    card_no = loyalty.issue_card(s, c["id"], card_type(s, points_on_discounted=False))
    d = shop.draft("Jeans", "Bluse", customer=c["id"])  # the card type says no as well
    assert entries(shop.pay_rest(d)) == [("earn", 5)]
    assert card_no.startswith("2901")


def test_points_on_repairs(shop):
    s, c = shop.store, shop.customer()
    assert entries(shop.sell("Reißverschluss", customer=c["id"])) == []
    settings.set(s, "loyalty.points_on_repairs", True)
    assert entries(shop.sell("Reißverschluss", customer=c["id"])) == [("earn", 2)]


def test_webshop_earn_and_redeem_flags(shop):
    s, c = shop.store, shop.customer()
    loyalty.adjust(s, c["id"], 50, "Startguthaben")

    def web_sale(redeem: bool):
        d = sale.open_draft(s, channel="web")
        sale.add_product(s, d, shop.products["Jeans"])
        sale.attach_customer(s, d, c["id"])
        if redeem:
            sale.redeem_points(s, d, 10)
        return shop.pay_rest(d)

    assert entries(web_sale(False)) == []
    with pytest.raises(sale.SaleError, match="webshop"):
        web_sale(True)
    sale.cancel(s, sale.current_draft(s))
    settings.set(s, "loyalty.webshop_earn", True)
    settings.set(s, "loyalty.webshop_redeem", True)
    done = web_sale(True)  # 10 points = 10 €: 40 € paid earn 4 points
    assert entries(done) == [("earn", 4), ("redeem", -10)]


def test_excluded_groups_and_payment_methods(shop):
    s, c = shop.store, shop.customer()
    settings.set(s, "loyalty.excluded_groups", [shop.groups["books"]])
    assert entries(shop.sell("Buch", "Jeans", customer=c["id"])) == [("earn", 5)]
    settings.set(s, "loyalty.excluded_payment_methods", ["points", "cash"])
    d = shop.draft("Jeans", "Bluse", customer=c["id"])
    sale.add_payment(s, d, "cash", 5000)
    assert entries(shop.pay_rest(d)) == [("earn", 3)]  # only the 30 € paid by card
    with pytest.raises(settings.SettingError):
        settings.set(s, "loyalty.excluded_payment_methods", ["cheque"])


def test_redemption_rate_ten_points_ten_euros_and_the_till_hint(shop):
    s, c = shop.store, shop.customer()
    settings.set(s, "loyalty.redeem_min_points", 20)
    loyalty.adjust(s, c["id"], 15, "Umstellung")
    d = shop.draft("Jeans", customer=c["id"])
    info = sale.quote(s, d).loyalty
    assert (info.balance, info.can_redeem, info.hint) == (15, False, "")
    with pytest.raises(sale.SaleError, match="At least 20"):
        sale.redeem_points(s, d, 0)
    loyalty.adjust(s, c["id"], 20, "Aktion")
    info = sale.quote(s, d).loyalty
    assert (info.balance, info.redeemable_points, info.redeemable_cents) == (35, 35, 3500)
    assert "35 points" in info.hint
    sale.redeem_points(s, d, 0)  # as much as is useful
    q = sale.quote(s, d, online=True)
    assert (q.redemption.points, q.payments[0].method, q.payments[0].amount_cents) == (
        35, "points", 3500)  # fmt: skip
    done = shop.pay_rest(d)  # 15 € paid by card earn 1 point
    assert entries(done) == [("earn", 1), ("redeem", -35)]
    assert loyalty.balance(s, c["id"]) == 1


def test_validity_expiry_is_computed_and_never_rewrites_the_ledger(shop, frozen_clock):
    s, c = shop.store, shop.customer()
    settings.set(s, "loyalty.validity", {"n": 12, "unit": "months"})
    shop.sell("Jeans", customer=c["id"])  # 5 points on 2026-05-04
    frozen_clock.advance(days=200)
    shop.sell(("Bluse", 2), customer=c["id"])  # 6 points on 2026-11-20
    loyalty.adjust(s, c["id"], -3, "Korrektur")  # eats the oldest points first
    rows = ledger_rows(s)
    assert loyalty.balance(s, c["id"]) == 8
    frozen_clock.advance(days=170)  # 2027-05-09: the first lot (2 left) has expired
    st = loyalty.statement(s, c["id"])
    assert st.balance == 6 == loyalty.balance(s, c["id"])
    assert [(e.kind, e.points, e.stored) for e in st.entries][-1] == ("expire", -2, False)
    assert st.balance == sum(e.points for e in st.entries)
    assert ledger_rows(s) == rows  # nothing was written by expiring
    past = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    assert loyalty.balance(s, c["id"], past) == 8  # history can still be asked for
    for n, unit, days in ((30, "days", 30), (1, "months", 31), (1, "years", 365)):
        settings.set(s, "loyalty.validity", {"n": n, "unit": unit})
        assert loyalty.expires_at(past, n, unit) - past == dt.timedelta(days=days)
    with pytest.raises(settings.SettingError):
        settings.set(s, "loyalty.validity", {"n": 3, "unit": "weeks"})


# -- card types (TiM "Kundenkarte") -----------------------------------------------------------------
def test_card_type_validity_activity_and_new_customer_points(shop, frozen_clock):
    s, c = shop.store, shop.customer()
    tid = card_type(s, new_customer_points=100)
    assert loyalty.card_type(s, tid).validity_months == 24  # TiM defaults
    assert loyalty.card_type(s, tid).birthday_rule == "250;5;10"
    card_no = loyalty.issue_card(s, c["id"], tid)
    assert customers.get(s, c["id"])["cards"][0]["valid_until"] == "2028-05-04"
    assert loyalty.balance(s, c["id"]) == 100
    frozen_clock.advance(seconds=1)
    loyalty.issue_card(s, c["id"], tid)  # a second card: no second welcome
    assert loyalty.balance(s, c["id"]) == 100
    off = card_type(s, description="Alte Karte", active=False)
    with pytest.raises(loyalty.LoyaltyError, match="not active"):
        loyalty.issue_card(s, c["id"], off)
    with pytest.raises(loyalty.LoyaltyError) as exc:
        card_type(s, validity_months=0, rounding="modern", birthday_rule="x")
    assert {"validity_months", "rounding", "birthday_rule"} <= set(exc.value.errors)
    assert loyalty.active_card(s, c["id"]).card_no != card_no  # the newest card counts


def test_rounding_exact_and_old():
    assert loyalty.bonus_points(1999, 1000, 100, "exact") == 200  # 19.99 € × 10 % × 100
    assert loyalty.bonus_points(1999, 1000, 100, "old") == 190  # whole euros, points cut
    assert loyalty.bonus_points(1, 1, 1, "exact") == 0
    rules = loyalty.RedeemRules(1, loyalty.Decimal(1), 100, (100, 100), 0, 0, "old",
                                0, 0, 0, 0, False, "")  # fmt: skip
    assert loyalty.points_value(1999, rules) == 1900  # 19.99 € worth, old: whole euros
    assert loyalty.points_value(1999, dataclasses.replace(rules, rounding="exact")) == 1999


def test_bonus_percent_on_services_and_sales_for_damen_and_herren(shop):
    s, c = shop.store, shop.customer()  # Frau: the Damen column
    tid = card_type(s, damen={"bonus_sales_bp": 1000, "bonus_service_bp": 2000},
                    herren={"bonus_sales_bp": 500})  # fmt: skip
    loyalty.issue_card(s, c["id"], tid)
    done = shop.sell("Jeans", "Kürzen", "Hemd", customer=c["id"])
    # 105 € → 10 points; Jeans 50 € × 10 % × 100 = 500; Kürzen 15 € × 20 % = 300;
    # the Hemd is a Herren article: 40 € × 5 % = 200
    assert sorted(entries(done)) == [("bonus", 200), ("bonus", 300), ("bonus", 500),
                                     ("earn", 10)]  # fmt: skip


def test_birth_month_points_on_every_visit(shop):
    s = shop.store
    may, june = shop.customer(birth_date="1980-05-30"), shop.customer(birth_date="1980-06-01")
    tid = card_type(s, birth_month_points=25)
    for c in (may, june):
        loyalty.issue_card(s, c["id"], tid)
    for _ in range(2):
        assert ("birth_month", 25) in entries(shop.sell("Jeans", customer=may["id"]))
    assert ("birth_month", 25) not in entries(shop.sell("Jeans", customer=june["id"]))


@pytest.mark.parametrize(
    ("birth", "today", "gets"),
    [
        ("1980-05-09", "2026-05-04", True),  # 5 days before
        ("1980-05-10", "2026-05-04", False),  # 6 days before
        ("1980-04-24", "2026-05-04", True),  # 10 days after
        ("1980-04-23", "2026-05-04", False),  # 11 days after
        ("1990-01-02", "2026-12-29", True),  # across the new year
        ("1992-02-29", "2027-03-01", True),  # leap-day birthday in a common year
    ],
)
def test_birthday_points_window_250_5_10(shop, frozen_clock, birth, today, gets):
    s = shop.store
    frozen_clock.now = dt.datetime.fromisoformat(today + "T10:00:00+00:00")
    c = shop.customer(birth_date=birth)
    loyalty.issue_card(s, c["id"], card_type(s, birthday_rule="250;5;10"))
    assert (("birthday", 250) in entries(shop.sell("Bluse", customer=c["id"]))) is gets
    assert ("birthday", 250) not in entries(shop.sell("Bluse", customer=c["id"]))  # once a year


def test_birthday_rule_parsing():
    assert loyalty.parse_birthday_rule("250;5;10") == (250, 5, 10)
    assert loyalty.parse_birthday_rule("100") == (100, 0, 0)
    assert loyalty.parse_birthday_rule("") is None
    for bad in ("250;5", "a;b;c", "250;-1;3", "250;90;0"):
        with pytest.raises(loyalty.LoyaltyError):
            loyalty.parse_birthday_rule(bad)


def test_return_visit_reward_within_n_weeks(shop, frozen_clock):
    s, c = shop.store, shop.customer()
    loyalty.issue_card(s, c["id"], card_type(s, damen={"return_weeks": 2, "return_points": 30}))
    assert ("return_visit", 30) not in entries(shop.sell("Bluse", customer=c["id"]))
    assert ("return_visit", 30) not in entries(shop.sell("Bluse", customer=c["id"]))  # same day
    frozen_clock.advance(days=14)
    assert ("return_visit", 30) in entries(shop.sell("Bluse", customer=c["id"]))
    frozen_clock.advance(days=15)
    assert ("return_visit", 30) not in entries(shop.sell("Bluse", customer=c["id"]))


def test_direct_points_per_visit_and_promotion_hint(shop):
    s, c = shop.store, shop.customer()
    loyalty.issue_card(s, c["id"], card_type(s, damen={
        "direct_points": 7, "redeem_min": 10, "visit_promo": True,
        "visit_promo_text": "Heute doppelte Punkte auf Schals!"}))  # fmt: skip
    assert entries(shop.sell("Bluse", customer=c["id"])) == [("earn", 3), ("visit", 7)]
    info = sale.quote(s, shop.draft("Bluse", customer=c["id"])).loyalty
    assert info.can_redeem and info.hint.endswith("Heute doppelte Punkte auf Schals!")


# -- redemption types ----------------------------------------------------------------------------
def _card_customer(shop, **side):
    s, c = shop.store, shop.customer()
    loyalty.issue_card(s, c["id"], card_type(s, conversion_factor=100, damen=side))
    loyalty.adjust(s, c["id"], 1000, "Test")
    return c


def test_redeem_type_1_amount_with_min_and_max(shop):
    s = shop.store
    c = _card_customer(shop, redeem_type=1, redeem_factor="1", redeem_min=500, redeem_max=800)
    d = shop.draft("Jeans", customer=c["id"])
    info = sale.quote(s, d).loyalty
    assert (info.redeemable_points, info.redeemable_cents) == (800, 800)  # 100 points = 1 €
    with pytest.raises(sale.SaleError, match="Between 500 and 800"):
        sale.redeem_points(s, d, 900)
    sale.redeem_points(s, d, 0)
    done = shop.pay_rest(d)
    assert done.payload["payments"][0][:2] == ["points", 800]
    assert ("redeem", -800) in entries(done)
    d = shop.draft("Jeans", customer=c["id"])  # 200 + 4 points left: below the minimum
    with pytest.raises(sale.SaleError, match="At least 500"):
        sale.redeem_points(s, d, 0)


def test_redeem_type_1_factor_two_euros_per_hundred_points(shop):
    c = _card_customer(shop, redeem_type=1, redeem_factor="2")
    d = shop.draft("Bluse", customer=c["id"])
    sale.redeem_points(shop.store, d, 300)
    assert sale.quote(shop.store, d).payments[0].amount_cents == 600


def test_redeem_type_2_points_in_steps_of_the_factor(shop):
    c = _card_customer(shop, redeem_type=2, redeem_factor="50")
    d = shop.draft("Bluse", customer=c["id"])
    sale.redeem_points(shop.store, d, 275)
    q = sale.quote(shop.store, d)
    assert (q.redemption.points, q.payments[0].amount_cents) == (250, 250)


def test_redeem_type_3_direct_percent_discount(shop):
    s = shop.store
    c = _card_customer(shop, redeem_type=3, redeem_min=200, direct_sales_bp=1000,
                       direct_service_bp=2000)  # fmt: skip
    d = shop.draft("Jeans", "Kürzen", customer=c["id"])
    sale.redeem_points(s, d, 0)  # takes the minimum
    q = sale.quote(s, d)
    assert [d.cents for ln in q.lines for d in ln.discounts if d.source == "loyalty_direct"] == [
        500, 300]  # fmt: skip
    assert q.total_cents == 5700 and q.redemption.points == 200
    done = shop.pay_rest(d)
    assert ("redeem", -200) in entries(done)
    rec = next(e for e in done.payload["points"] if e["kind"] == "redeem")
    assert rec["value_cents"] == 800


def test_redeem_type_4_discount_on_points(shop):
    s = shop.store
    c = _card_customer(shop, redeem_type=4, redeem_factor="1", redeem_discount_sales_bp=2000)
    d = shop.draft("Bluse", customer=c["id"])  # 30 € due = 3000 face points … 20 % off
    loyalty.adjust(s, c["id"], 2000, "mehr")
    sale.redeem_points(s, d, 0)
    q = sale.quote(s, d)
    assert (q.redemption.points, q.payments[0].amount_cents) == (2400, 3000)
    assert q.due_cents == 0


# -- blocking, bulk actions, statistics -------------------------------------------------------------
def test_forfeit_points_when_the_card_is_blocked(shop):
    s = shop.store
    keep, lose = shop.customer(), shop.customer(first_name="Berta")
    t_keep, t_lose = card_type(s), card_type(s, description="Strenge Karte", forfeit_on_block=True)
    k = loyalty.issue_card(s, keep["id"], t_keep)
    f = loyalty.issue_card(s, lose["id"], t_lose)
    for c in (keep, lose):
        loyalty.adjust(s, c["id"], 120, "Start")
    loyalty.set_card_status(s, k, "blocked")
    loyalty.set_card_status(s, f, "blocked")
    assert loyalty.balance(s, keep["id"]) == 120
    assert loyalty.balance(s, lose["id"]) == 0
    assert [e.kind for e in loyalty.statement(s, lose["id"]).entries] == ["adjust", "forfeit"]
    assert loyalty.active_card(s, lose["id"]) is None


def test_bulk_deactivate_reactivate_extend_and_card_statistics(shop, frozen_clock):
    s = shop.store
    tid = card_type(s, validity_months=1)
    cards = [loyalty.issue_card(s, shop.customer(first_name=f"K{i}")["id"], tid) for i in range(3)]
    loyalty.issue_card(s, shop.customer(first_name="X")["id"], tid, card_no="100007")
    st = loyalty.card_stats(s, tid)
    assert (st.active, st.inactive, st.expired) == (4, 0, 0)
    assert (st.smallest, st.largest) == ("100007", cards[-1])
    loyalty.set_card_status(s, cards[0], "blocked")
    assert loyalty.deactivate_all(s, tid) == 3
    assert loyalty.card_stats(s, tid).inactive == 3
    assert loyalty.reactivate_all(s, tid) == 3  # the blocked card stays blocked
    st = loyalty.card_stats(s, tid)
    assert (st.active, st.blocked) == (3, 1)
    frozen_clock.advance(days=40)
    assert loyalty.card_stats(s, tid).expired == 4
    assert loyalty.extend_expired(s, tid) == 4
    st = loyalty.card_stats(s, tid)
    assert (st.active, st.blocked, st.expired) == (3, 1, 0)
    row = s.db.execute("SELECT valid_until FROM customer_cards WHERE card_no = ?", [cards[1]])
    assert row.fetchone()[0] == "2026-07-13"  # 2026-06-13 + 1 month


# -- levels and gifts (Fastmag) ---------------------------------------------------------------------
def test_levels_gifts_one_per_sale_only_reachable(shop):
    s, c = shop.store, shop.customer()
    l1 = loyalty.save_level(s, "Level 1", 10)
    l2 = loyalty.save_level(s, "Level 2", 20)
    g1 = catalog.save_product(s, "Tasche", 1500, group_id=shop.groups["damen"], gift_level_id=l1)
    g2 = catalog.save_product(s, "Schal", 2500, group_id=shop.groups["damen"])
    catalog.set_gift_level(s, g2, l2)
    loyalty.adjust(s, c["id"], 15, "Start")
    options = loyalty.gifts_for(s, c["id"])
    assert [(o.product.name, o.points, o.reachable) for o in options] == [
        ("Tasche", 10, True), ("Schal", 20, False)]  # the cashier sees all gifts
    d = shop.draft("Jeans", customer=c["id"])
    with pytest.raises(sale.SaleError, match="needs 20 points"):
        sale.choose_gift(s, d, g2)
    sale.choose_gift(s, d, g1)
    sale.choose_gift(s, d, g1)  # one gift per sale: choosing again replaces it
    q = sale.quote(s, d)
    assert [ln.kind for ln in q.lines].count("gift") == 1 and q.total_cents == 5000
    done = shop.pay_rest(d)
    assert ("gift", -10) in entries(done) and ("earn", 5) in entries(done)
    assert loyalty.balance(s, c["id"]) == 10
    with pytest.raises(loyalty.LoyaltyError, match="gift products"):
        loyalty.save_level(s, "Level 1", 10, active=False, level_id=l1)
    d = shop.draft("Bluse", customer=c["id"])
    sale.choose_gift(s, d, g1)
    loyalty.adjust(s, c["id"], -5, "an der anderen Kasse eingelöst")
    with pytest.raises(sale.SaleError, match="no longer reach"):
        shop.pay_rest(d)
    assert loyalty.balance(s, c["id"]) == 5


def test_adjust_needs_a_reason_and_cannot_overdraw(shop):
    s, c = shop.store, shop.customer()
    with pytest.raises(loyalty.LoyaltyError, match="reason"):
        loyalty.adjust(s, c["id"], 5, "  ")
    loyalty.adjust(s, c["id"], 5, "Kulanz")
    with pytest.raises(loyalty.LoyaltyError, match="negative"):
        loyalty.adjust(s, c["id"], -6, "Fehler")
    assert [e.reason for e in loyalty.statement(s, c["id"]).entries] == ["Kulanz"]


# -- docs/loyalty.md is the settings reference: it must match the code ---------------------------
def _documented() -> list[tuple[str, str]]:
    import re
    from pathlib import Path

    text = (Path(__file__).parent.parent / "docs" / "loyalty.md").read_text()
    pairs = []
    for row in text.splitlines():
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        if len(cells) != 4 or not cells[1].startswith("`"):
            continue
        keys, defaults = re.findall(r"`([^`]+)`", cells[1]), re.findall(r"`([^`]+)`", cells[2])
        if not defaults:
            continue
        if len(defaults) == 1:
            defaults *= len(keys)
        for k, d in zip(keys, defaults, strict=True):  # "*.x" stands for damen.x and herren.x
            pairs += [(k.replace("*", side), d) for side in loyalty.SIDES] if "*" in k else [(k, d)]
    return pairs


def test_every_documented_setting_exists_with_its_documented_default():
    import json

    defs = settings.definitions()
    ct = msgspec.to_builtins(loyalty.CardType())
    pairs = _documented()
    assert len(pairs) > 40
    for key, default in pairs:
        if key.split(".")[0] in ("loyalty", "giftcard", "wallet", "vouchers", "offline"):
            assert key in defs, key
            assert defs[key].default == json.loads(default), key
        else:
            value = ct
            for part in key.split("."):
                value = value[part]
            assert value == json.loads(default), key
    documented = {k for k, _d in pairs}
    for key in defs:
        if key.split(".")[0] in ("loyalty", "giftcard", "wallet", "vouchers", "offline"):
            assert key in documented, f"{key} is missing in docs/loyalty.md"
    sides = {f"{side}.{name}" for side in loyalty.SIDES for name in ct["damen"]}
    fields = {k for k in ct if k not in ("damen", "herren", "id", "description")} | sides
    assert fields <= documented, f"card type fields missing in docs: {fields - documented}"


def test_redeem_type_4_with_a_big_balance_or_a_100_percent_discount_answers_at_once(shop):
    s = shop.store
    c = _card_customer(shop, redeem_type=4, redeem_discount_sales_bp=10000)
    loyalty.adjust(s, c["id"], 5_000_000, "Großkunde")
    d = shop.draft("Bluse", customer=c["id"])
    with pytest.raises(sale.SaleError, match="less than one cent"):  # points that cost nothing
        sale.redeem_points(s, d, 4_000_000)
    sale.cancel(s, d)
    c = _card_customer(shop, redeem_type=4, redeem_discount_sales_bp=2500)
    loyalty.adjust(s, c["id"], 5_000_000, "Großkunde")
    d = shop.draft("Bluse", customer=c["id"])
    sale.redeem_points(s, d, 4_000_000)  # more than is useful: only 30 € are bought
    q = sale.quote(s, d)
    assert (q.redemption.points, q.payments[0].amount_cents) == (2250, 3000)


def test_asking_for_more_points_than_are_useful_spends_only_what_is_due(shop):
    s = shop.store
    c = _card_customer(shop, redeem_type=1, redeem_factor="1")  # 100 points = 1 €, 1000 held
    d = shop.draft("Kürzen", customer=c["id"])  # 15 €
    sale.redeem_points(s, d, 1000)
    q = sale.quote(s, d)
    assert (q.redemption.points, q.payments[0].amount_cents, q.due_cents) == (1000, 1000, 500)
    sale.cancel(s, d)
    loyalty.adjust(s, c["id"], 4000, "mehr")
    d = shop.draft("Kürzen", customer=c["id"])
    sale.redeem_points(s, d, 5000)
    q = sale.quote(s, d)
    assert (q.redemption.points, q.payments[0].amount_cents, q.due_cents) == (1500, 1500, 0)
