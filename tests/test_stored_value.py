"""Stored value: gift cards (fully consumed), e-wallets, VIP cards with SMS alert, POS vouchers."""

from __future__ import annotations

import datetime as dt

import pytest

from kiosk.engine import (
    giftcards,
    messages_outbox,
    sale,
    settings,
    stored_value,
    vouchers,
    wallet,
)
from kiosk.engine.store import Store
from tests.support.shop import english, make_shop, new_wallet

__all__ = ["english"]


@pytest.fixture
def shop(identity, frozen_clock):  # in memory: fast; durability is tested in test_sale
    s = Store(None, identity, clock=frozen_clock)
    yield make_shop(s)
    s.close()


def sold_code(done, kind="issue") -> str:
    return next(e["code"] for e in done.payload["giftcards"] if e["kind"] == kind)


# -- gift cards --------------------------------------------------------------------------------------
def test_gift_card_sold_with_generated_or_scanned_number(shop):
    s = shop.store
    d = sale.open_draft(s)
    sale.sell_giftcard(s, d, 5000)
    sale.sell_giftcard(s, d, 2500, code="GC-123456")
    with pytest.raises(sale.SaleError, match="in the basket already"):
        sale.sell_giftcard(s, d, 2500, code="GC-123456")
    with pytest.raises(sale.SaleError, match="between"):
        sale.sell_giftcard(s, d, 100)
    done = shop.pay_rest(d, "cash")
    codes = [e["code"] for e in done.payload["giftcards"]]
    assert codes[1] == "GC-123456"
    assert stored_value.luhn_ok(codes[0]) and codes[0].startswith("901")
    card = giftcards.lookup(s, codes[0])
    assert (card.balance_cents, card.valid_until) == (5000, "2029-05-04")  # 36 months
    d = sale.open_draft(s)
    with pytest.raises(sale.SaleError, match="sold already"):
        sale.sell_giftcard(s, d, 2500, code="GC-123456")
    assert done.payload["points"] == []  # stored value sold earns no points


def test_gift_card_must_be_fully_consumed(shop):
    s = shop.store
    code = giftcards.issue(s, 4000, kind="giftcard")
    d = shop.draft("Bluse")  # 30 € < 40 €
    with pytest.raises(sale.SaleError, match="used up|rest"):
        sale.add_payment(s, d, "giftcard", ref=code)
    assert giftcards.balance(s, code) == 4000
    sale.add_product(s, d, shop.products["Kürzen"])  # 45 €: the card pays 40 €, card 5 €
    sale.add_payment(s, d, "giftcard", ref=code)
    done = shop.pay_rest(d)
    assert done.payload["payments"][0][:2] == ["giftcard", 4000]
    assert giftcards.balance(s, code) == 0
    d = shop.draft("Bluse")
    with pytest.raises(sale.SaleError, match="used up"):
        sale.add_payment(s, d, "giftcard", ref=code)


def test_gift_card_rest_forfeited_when_the_cashier_confirms(shop):
    s = shop.store
    code = giftcards.issue(s, 4000, kind="giftcard")
    d = shop.draft("Bluse")
    sale.add_payment(s, d, "giftcard", ref=code, forfeit_rest=True)
    done = sale.complete(s, d, online=True)
    assert [(e["kind"], e["amount_cents"]) for e in done.payload["giftcards"]] == [
        ("redeem", -3000), ("forfeit", -1000)]  # fmt: skip
    assert giftcards.balance(s, code) == 0
    assert [h["kind"] for h in giftcards.history(s, code)] == ["issue", "redeem", "forfeit"]


def test_expired_gift_card_and_voucher_kinds_are_refused(shop, frozen_clock):
    s = shop.store
    code = giftcards.issue(s, 2000, kind="giftcard", valid_days=10)
    voucher = giftcards.issue(s, 1000, kind="voucher")
    d = shop.draft("Bluse")
    with pytest.raises(sale.SaleError, match="is a gift card"):
        sale.add_payment(s, d, "voucher", ref=code)
    with pytest.raises(sale.SaleError, match="is a voucher"):
        sale.add_payment(s, d, "giftcard", ref=voucher)
    frozen_clock.advance(days=11)
    with pytest.raises(sale.SaleError, match="expired"):
        sale.add_payment(s, d, "giftcard", ref=code)
    with pytest.raises(sale.SaleError, match="Unknown gift card"):
        sale.add_payment(s, d, "giftcard", ref="999999999")


# -- e-wallet -----------------------------------------------------------------------------------------
def test_wallet_partial_use_and_balance(shop):
    s, c = shop.store, shop.customer()
    number = new_wallet(shop, c["id"], 8000)
    assert [w.balance_cents for w in wallet.of_customer(s, c["id"])] == [8000]
    d = shop.draft("Bluse", customer=c["id"])
    sale.add_payment(s, d, "wallet", 1000, ref=number)
    with pytest.raises(sale.SaleError, match="already used"):
        sale.add_payment(s, d, "wallet", 1000, ref=number)
    shop.pay_rest(d)
    assert wallet.balance(s, number) == 7000
    d = shop.draft("Jeans", "Jeans", customer=c["id"])
    with pytest.raises(sale.SaleError, match="holds only 70,00"):
        sale.add_payment(s, d, "wallet", 7001, ref=number)


def test_wallet_cap_of_150_euros(shop):
    s, c = shop.store, shop.customer()
    assert settings.get(s, "wallet.cap_cents") == 15000
    number = new_wallet(shop, c["id"], 12000)
    wt = wallet.lookup(s, number).type.id
    d = sale.open_draft(s)
    with pytest.raises(sale.SaleError, match=r"at most 150,00 €; 30,00 € can still"):
        sale.load_wallet(s, d, wt, amount_cents=3001, number=number)
    sale.load_wallet(s, d, wt, amount_cents=3000, number=number)
    shop.pay_rest(d, "cash")
    assert wallet.balance(s, number) == 15000
    with pytest.raises(wallet.WalletError, match="between 0 and the cap"):
        wallet.save_type(s, "Zu groß", load_cents=15001)


def test_wallet_fixed_load_amount(shop):
    s, c = shop.store, shop.customer()
    wt = wallet.save_type(s, "100 für 90", load_cents=10000, pay_cents=9000)
    d = sale.open_draft(s)
    sale.attach_customer(s, d, c["id"])
    sale.load_wallet(s, d, wt, amount_cents=5)  # the type's amount wins
    q = sale.quote(s, d)
    assert q.total_cents == 9000
    done = shop.pay_rest(d, "cash")
    assert wallet.balance(s, done.payload["wallet"][0]["number"]) == 10000


def test_wallet_family_condition(shop):
    s, c = shop.store, shop.customer()
    assert wallet.parse_condition("f.family = 'Hose'") == "Hose"
    with pytest.raises(wallet.WalletError):
        wallet.parse_condition("f.price > 3")
    number = new_wallet(shop, c["id"], 10000, condition="f.family = 'Hose'")
    d = shop.draft("Bluse", "Hemd", customer=c["id"])  # Bluse is a Hose-family line (30 €)
    with pytest.raises(sale.SaleError, match="only for Hose: at most 30,00"):
        sale.add_payment(s, d, "wallet", 3001, ref=number)
    sale.add_payment(s, d, "wallet", 3000, ref=number)
    assert shop.pay_rest(d).total_cents == 7000
    assert wallet.balance(s, number) == 7000


# -- VIP cards ------------------------------------------------------------------------------------------
def test_vip_card_discount_expiry_and_sms_alert_in_the_sale_transaction(shop, frozen_clock):
    s, c = shop.store, shop.customer()
    with pytest.raises(vouchers.VoucherError) as exc:
        vouchers.save_vip(s, "VIP-1", c["id"], 0)
    assert {"code", "discount_bp"} <= set(exc.value.errors)
    vouchers.save_vip(s, "#VIP#GOLD7", c["id"], 1500, valid_until="2026-06-30",
                      alert_phones=["0171 2345678"])  # fmt: skip
    d = sale.open_draft(s)
    sale.add_product(s, d, shop.products["Jeans"])
    r = sale.scan(s, d, "#VIP#GOLD7")
    assert r.kind == "vip" and sale.quote(s, d).customer["id"] == c["id"]  # attached
    assert sale.quote(s, d).total_cents == 4250
    done = shop.pay_rest(d)
    msgs = messages_outbox.pending(s, "sms")
    assert [(m.recipient, m.reason, m.ref) for m in msgs] == [("+491712345678", "vip_alert",
                                                              done.id)]  # fmt: skip
    assert "#VIP#GOLD7" in msgs[0].body and len(msgs[0].body) <= 160
    ev_types = [r[0] for r in s.db.execute(
        "SELECT type FROM events ORDER BY rowid DESC LIMIT 2")]  # fmt: skip
    assert ev_types == ["message.queued", "sale.completed"]
    frozen_clock.advance(days=60)
    d = sale.open_draft(s)
    with pytest.raises(sale.SaleError, match="expired"):
        sale.scan(s, d, "#VIP#GOLD7")


def test_vip_alert_is_not_queued_when_the_sale_fails(shop):
    s, c = shop.store, shop.customer()
    vouchers.save_vip(s, "#VIP#X1", c["id"], 1000, alert_phones=["+4930123456"])
    d = shop.draft("Jeans")
    sale.apply_vip(s, d, "#VIP#X1")
    with pytest.raises(sale.SaleError):
        sale.complete(s, d, online=True)  # nothing paid
    assert messages_outbox.pending(s) == []


# -- POS vouchers in tiers ----------------------------------------------------------------------------
def test_voucher_tiers_in_percent(shop):
    s = shop.store
    settings.set(s, "vouchers.pos_enabled", True)  # default tiers: 50 € → 5 %, 100 € → 10 % …
    assert shop.sell("Bluse").payload["voucher"] is None
    q = sale.quote(s, shop.draft("Jeans", "Bluse"))
    assert q.voucher_cents == 400 and q.next_voucher == (2000, 1000)
    done = shop.pay_rest(q.draft_id)
    v = done.payload["voucher"]
    assert (v["value_cents"], v["valid_until"]) == (400, "2026-08-02")
    assert giftcards.lookup(s, v["code"]).kind == "voucher"
    assert shop.sell("Jeans", "Jeans", "Bluse").payload["voucher"]["value_cents"] == 1300


def test_voucher_tiers_in_fixed_amounts_and_minimum_sale_for_use(shop):
    s = shop.store
    settings.set(s, "vouchers.pos_enabled", True)
    settings.set(s, "vouchers.pos_mode", "amount")
    settings.set(s, "vouchers.pos_tiers", [[15000, 1500], [5000, 500], [10000, 1000]])
    assert settings.get(s, "vouchers.pos_tiers")[0] == [5000, 500]  # sorted
    code = shop.sell("Jeans", "Jeans").payload["voucher"]["code"]
    assert giftcards.balance(s, code) == 1000
    settings.set(s, "vouchers.min_sale_for_use_cents", 4000)
    d = shop.draft("Bluse")
    with pytest.raises(sale.SaleError, match="from a purchase of 40,00"):
        sale.add_payment(s, d, "voucher", ref=code)
    sale.add_product(s, d, shop.products["Kürzen"])
    sale.add_payment(s, d, "voucher", ref=code)
    done = shop.pay_rest(d)
    assert done.payload["payments"][0][:2] == ["voucher", 1000]
    with pytest.raises(settings.SettingError):
        settings.set(s, "vouchers.pos_tiers", [[5000, 500], [5000, 700]])


def test_overdraft_after_offline_double_spend_is_flagged(shop, tmp_path, identity):
    """Two offline tills spend the same wallet: the merged ledger is listed, not hidden."""
    s, c = shop.store, shop.customer()
    number = new_wallet(shop, c["id"], 4000)
    other = Store(tmp_path / "till2.db", identity.__class__("teststore", "till-2", 2))
    try:
        from tests.support.shop import replay

        replay(s, other)
        for store in (s, other):
            stored_value.set_connectivity(store, False)
            d = sale.open_draft(store)
            sale.add_product(store, d, shop.products["Bluse"])
            sale.add_payment(store, d, "wallet", 3000, ref=number)
            sale.complete(store, d)
        replay(other, s)
        assert wallet.balance(s, number) == -2000
        assert [(o.ledger, o.balance) for o in stored_value.overdrafts(s)] == [("wallet", -2000)]
    finally:
        other.close()


def test_codes_and_money_formatting():
    assert stored_value.format_cents(123456) == "1.234,56 €"
    assert stored_value.format_cents(-5) == "-0,05 €"
    assert stored_value.luhn_ok("79927398713") and not stored_value.luhn_ok("79927398710")
    assert vouchers.is_vip_code(" #vip#abc") and not vouchers.is_vip_code("VIP#abc")
    assert dt.date(2026, 1, 31) < dt.date(2026, 2, 1)
