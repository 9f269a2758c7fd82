"""Property tests: balance = sum of the ledger, no negative balances, rounding never makes cents."""

from __future__ import annotations

import datetime as dt
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from kiosk.engine import giftcards, loyalty, promotions, sale, settings, wallet
from kiosk.engine.promotions import CustomerDiscount, Line, Rule
from kiosk.engine.store import Identity, Store
from tests.support.shop import card_type, english, make_shop

__all__ = ["english"]

FAST = hsettings(max_examples=40, deadline=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
UTC = dt.UTC
T0 = dt.datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def shop():
    """One shop for all examples; every example works on a customer of its own."""
    s = Store(None, Identity("teststore", "till-1", 1))
    yield make_shop(s)
    s.close()


def ledger_sum(store, customer_id) -> int:
    return store.db.execute(
        "SELECT coalesce(sum(points), 0) FROM loyalty_points WHERE customer_id = ?", [customer_id]
    ).fetchone()[0]


# -- the points ledger through the engine's commands --------------------------------------------
op = st.one_of(
    st.tuples(st.just("buy"), st.lists(st.sampled_from(["Jeans", "Bluse", "Hemd", "Kürzen",
                                                        "Buch"]), min_size=1, max_size=4)),
    st.tuples(st.just("adjust"), st.integers(-300, 300).filter(bool)),
    st.tuples(st.just("redeem"), st.one_of(st.just(0), st.integers(1, 400))),
    st.tuples(st.just("return"), st.just(None)),
    st.tuples(st.just("block"), st.just(None)),
)  # fmt: skip


@FAST
@given(ops=st.lists(op, min_size=1, max_size=8), side=st.fixed_dictionaries({
    "redeem_type": st.sampled_from([1, 2, 3, 4]), "redeem_min": st.integers(0, 50),
    "redeem_max": st.sampled_from([0, 100, 250]), "redeem_factor": st.sampled_from(["1", "2", "5"]),
    "bonus_sales_bp": st.integers(0, 2000), "redeem_discount_sales_bp": st.integers(0, 5000),
    "direct_sales_bp": st.integers(0, 3000), "direct_points": st.integers(0, 20)}),
    rounding=st.sampled_from(["exact", "old"]), forfeit=st.booleans())  # fmt: skip
def test_balance_is_the_sum_of_the_ledger_and_never_negative(shop, ops, side, rounding, forfeit):
    s = shop.store
    c = shop.customer()
    tid = card_type(s, conversion_factor=10, rounding=rounding, forfeit_on_block=forfeit,
                    damen=side)  # fmt: skip
    card_no = loyalty.issue_card(s, c["id"], tid)
    sales = []
    for kind, arg in ops:
        try:
            if kind == "buy":
                d = shop.draft(*arg, customer=c["id"])
                sales.append(shop.pay_rest(d))
            elif kind == "adjust":
                loyalty.adjust(s, c["id"], arg, "Test")
            elif kind == "redeem":
                d = shop.draft("Jeans", customer=c["id"])
                try:
                    sale.redeem_points(s, d, arg)
                    shop.pay_rest(d)
                finally:
                    if sale.current_draft(s):
                        sale.cancel(s, sale.current_draft(s))
            elif kind == "return" and sales:
                d = sale.open_draft(s)
                sale.attach_customer(s, d, c["id"])
                sale.add_return(s, d, sales[-1].id, 1)
                shop.pay_rest(d, "cash")
            elif kind == "block":
                loyalty.set_card_status(s, card_no, "blocked")
                loyalty.set_card_status(s, card_no, "active")
        except (sale.SaleError, loyalty.LoyaltyError):
            if sale.current_draft(s):
                sale.cancel(s, sale.current_draft(s))
        bal = loyalty.balance(s, c["id"])
        assert bal == ledger_sum(s, c["id"])
        assert bal >= 0
        assert loyalty.statement(s, c["id"]).balance == bal


# -- expiry: the pure FIFO statement ---------------------------------------------------------------
rows_st = st.lists(st.tuples(st.integers(0, 1000), st.integers(-500, 500).filter(bool)),
                   min_size=0, max_size=25)  # fmt: skip


@hsettings(max_examples=100, deadline=None)
@given(rows=rows_st, n=st.integers(0, 24), unit=st.sampled_from(["days", "months", "years"]),
       as_of=st.integers(0, 3000), guard=st.booleans())  # fmt: skip
def test_expiry_statement_sums_up_and_stays_positive_when_spends_are_checked(
    rows, n, unit, as_of, guard
):
    """Computed expiries are entries too: balance = sum of every entry, FIFO, no negatives."""
    rows = sorted(rows)
    data = []
    for day, points in rows:
        at = T0 + dt.timedelta(days=day)
        if guard and points < 0:  # the commands refuse spending more than the valid balance
            have = loyalty.compute_statement("c", data, at, n, unit).balance
            points = -min(-points, have)
            if not points:
                continue
        data.append((at.isoformat(), "earn" if points > 0 else "redeem", points, None, None))
    when = T0 + dt.timedelta(days=max([as_of] + [d for d, _p in rows]))
    stmt = loyalty.compute_statement("c", data, when, n, unit)
    assert stmt.balance == sum(e.points for e in stmt.entries)
    if n:  # every point still held has an expiry date
        assert sum(p for _at, p in stmt.expiring) == max(stmt.balance, 0)
    if n == 0:
        assert stmt.balance == sum(r[2] for r in data)
    if guard:
        assert stmt.balance >= 0
        assert all(e.points < 0 for e in stmt.entries if not e.stored)


# -- rounding: discounts and points never create cents ------------------------------------------------
line_st = st.builds(
    Line, pos=st.integers(1, 99), kind=st.sampled_from(["product", "product", "return", "giftcard"]),
    name=st.just("x"), qty=st.integers(1, 5), unit_cents=st.integers(0, 20000),
    product_id=st.sampled_from(["a", "b", "c"]), group_id=st.sampled_from(["g1", "g2"]),
    article_kind=st.sampled_from(["goods", "service"]), special=st.booleans(),
    manual_bp=st.sampled_from([0, 0, 1000, 3333]), manual_cents=st.sampled_from([0, 0, 99, 5000]),
)  # fmt: skip
rule_st = st.one_of(
    st.builds(Rule, id=st.text("abc", min_size=1, max_size=3), name=st.just("f"),
              kind=st.just("final_price"), price_cents=st.integers(0, 20000),
              product_ids=st.sampled_from([("a",), ("b",), ("a", "c")])),
    st.builds(Rule, id=st.text("abc", min_size=1, max_size=3), name=st.just("s"),
              kind=st.just("sale_percent"), bp=st.integers(1, 10000),
              group_ids=st.sampled_from([(), ("g1",)])),
    st.builds(Rule, id=st.text("abc", min_size=1, max_size=3), name=st.just("n"),
              kind=st.just("nth_item"), bp=st.integers(1, 10000), n=st.integers(2, 4)),
)  # fmt: skip


@hsettings(max_examples=150, deadline=None)
@given(lines=st.lists(line_st, min_size=1, max_size=6), rules=st.lists(rule_st, max_size=4),
       group_bp=st.integers(0, 10000), vip_bp=st.integers(0, 10000),
       basket_bp=st.integers(0, 10000), basket_cents=st.integers(0, 50000),
       direct=st.integers(0, 10000), use_pct=st.booleans())  # fmt: skip
def test_pricing_never_creates_cents(lines, rules, group_bp, vip_bp, basket_bp, basket_cents,
                                     direct, use_pct):  # fmt: skip
    for i, ln in enumerate(lines):
        ln.pos = i + 1
        if ln.kind == "return":
            ln.qty = -ln.qty
    gross = [ln.gross_cents for ln in lines]
    promotions.price(lines, rules, customer=CustomerDiscount(group_bp, group_bp // 2, "g",
                                                             vip_bp, "v"),
                     basket_bp=basket_bp if use_pct else 0,
                     basket_cents=0 if use_pct else basket_cents,
                     loyalty_direct_bp={"goods": direct, "service": direct // 2})  # fmt: skip
    for ln, g in zip(lines, gross):
        assert ln.gross_cents == g
        assert all(isinstance(d.cents, int) and d.cents > 0 for d in ln.discounts)
        if ln.discountable:
            assert 0 <= ln.total_cents <= g
        else:
            assert ln.discounts == [] and ln.total_cents == g
    assert promotions.total(lines) == sum(gross) - sum(ln.discount_cents for ln in lines)
    basket = sum(d.cents for ln in lines for d in ln.discounts if d.source == "basket")
    if not use_pct:
        base = sum(ln.total_cents + sum(d.cents for d in ln.discounts if d.source in (
            "basket", "loyalty_direct")) for ln in lines if ln.discountable)  # fmt: skip
        assert basket == min(basket_cents, base)  # spread exactly: no cent lost or made


@hsettings(max_examples=150, deadline=None)
@given(total=st.integers(0, 10**7), weights=st.lists(st.integers(0, 10**6), min_size=1,
                                                      max_size=12))  # fmt: skip
def test_allocate_splits_exactly(total, weights):
    shares = promotions.allocate(total, weights)
    assert len(shares) == len(weights) and all(s >= 0 for s in shares)
    assert sum(shares) == (total if sum(weights) > 0 and total else 0)
    for share, w in zip(shares, weights):
        if sum(weights):
            assert abs(Fraction(share) - Fraction(total * w, sum(weights))) < 1


@hsettings(max_examples=150, deadline=None)
@given(points=st.integers(0, 10**6), pts=st.integers(1, 1000), cents=st.integers(1, 10000),
       rounding=st.sampled_from(["exact", "old"]), want=st.integers(1, 100000))  # fmt: skip
def test_points_are_never_worth_more_than_their_exact_value(points, pts, cents, rounding, want):
    rules = loyalty.RedeemRules(1, loyalty.Decimal(1), pts, (pts, cents), 0, 0, rounding,
                                0, 0, 0, 0, False, "")  # fmt: skip
    value = loyalty.points_value(points, rules)
    assert 0 <= value <= Fraction(points * cents, pts)
    need = loyalty.points_for_value(want, rules)
    assert loyalty.points_value(need, rules) >= want
    assert need == 0 or loyalty.points_value(need - 1, rules) < want


@hsettings(max_examples=100, deadline=None)
@given(cents=st.integers(-10**6, 10**6), bp=st.integers(0, 10000), factor=st.integers(1, 1000),
       rounding=st.sampled_from(["exact", "old"]))  # fmt: skip
def test_bonus_and_base_points_round_down_or_half_up_only(cents, bp, factor, rounding):
    pts = loyalty.bonus_points(cents, bp, factor, rounding)
    exact = Fraction(max(cents, 0) * bp * factor, 1_000_000)
    assert pts >= 0
    if rounding == "exact":
        assert abs(pts - exact) <= Fraction(1, 2)
    else:  # old: whole euros first, fractions of points dropped
        assert pts <= exact and pts == int(Fraction(max(cents, 0) // 100 * 100 * bp * factor,
                                                    1_000_000))  # fmt: skip
    prog = loyalty.Program(True, True, False, False, False, 1000, loyalty.Decimal("0.1"), 10,
                           1000, 0, frozenset(), frozenset(), True, True)  # fmt: skip
    assert loyalty.base_points(cents, prog) == max(cents, 0) // 1000


# -- stored value ledgers ------------------------------------------------------------------------------
@FAST
@given(spends=st.lists(st.integers(1, 6000), min_size=1, max_size=6))
def test_wallet_balance_is_the_sum_and_never_negative_online(shop, spends):
    s = shop.store
    c = shop.customer()
    wt = wallet.save_type(s, "KMU")
    d = sale.open_draft(s)
    sale.attach_customer(s, d, c["id"])
    sale.load_wallet(s, d, wt, amount_cents=12000)
    number = shop.pay_rest(d, "cash").payload["wallet"][0]["number"]
    for amount in spends:
        d = shop.draft(("Jeans", 2), customer=c["id"])
        try:
            sale.add_payment(s, d, "wallet", amount, ref=number)
            shop.pay_rest(d)
        except sale.SaleError:
            sale.cancel(s, d)
        bal = wallet.balance(s, number)
        assert bal == s.db.execute("SELECT sum(amount_cents) FROM wallet_entries WHERE number = ?",
                                   [number]).fetchone()[0]  # fmt: skip
        assert 0 <= bal <= settings.get(s, "wallet.cap_cents")


@FAST
@given(value=st.integers(500, 20000), baskets=st.lists(st.sampled_from(["Bluse", "Jeans"]),
                                                       min_size=1, max_size=3))  # fmt: skip
def test_gift_card_is_used_up_in_one_go(shop, value, baskets):
    s = shop.store
    code = giftcards.issue(s, value, kind="giftcard")
    d = shop.draft(*baskets)
    due = sale.quote(s, d).total_cents
    try:
        sale.add_payment(s, d, "giftcard", ref=code)
    except sale.SaleError:
        assert value > due  # refused only when a rest would remain
        sale.add_payment(s, d, "giftcard", ref=code, forfeit_rest=True)
    shop.pay_rest(d)
    assert giftcards.balance(s, code) == 0
