"""Till sales: the draft basket, completion as one transaction, returns and refunds, replay."""

from __future__ import annotations

import pytest

from kiosk.engine import (
    events,
    giftcards,
    loyalty,
    sale,
    settings,
    stored_value,
    wallet,
)
from kiosk.engine.store import Identity, Store
from tests.support.shop import (
    card_type,
    english,
    make_shop,
    new_wallet,
    projection,
    replay,
)

__all__ = ["english"]

LEDGERS = ("sales", "sale_lines", "sale_payments", "loyalty_points", "giftcard_entries",
           "wallet_entries", "messages_outbox", "events")  # fmt: skip


def counts(store) -> dict[str, int]:
    return {t: store.db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in LEDGERS}


@pytest.fixture
def shop(store):
    return make_shop(store)


@pytest.fixture
def file_shop(file_store):
    """A shop in a real SQLite file: restarts, second connections, commits."""
    return make_shop(file_store)


def test_a_sale_records_lines_payments_and_a_receipt_number(shop):
    s = shop.store
    d = shop.draft("Jeans", ("Bluse", 2))
    assert sale.scan(s, d, shop.eans["Jeans"]).kind == "product"  # same article: same line
    q = sale.quote(s, d, online=True)
    assert [(ln.name, ln.qty) for ln in q.lines] == [("Jeans", 2), ("Bluse", 2)]
    assert (q.gross_cents, q.total_cents, q.due_cents) == (16000, 16000, 16000)
    sale.add_payment(s, d, "card", 10000)
    sale.add_payment(s, d, "cash", 10000)  # 40 € change
    q = sale.quote(s, d, online=True)
    assert (q.due_cents, q.change_cents) == (0, 4000) and q.ready
    done = sale.complete(s, d, online=True)
    assert done.receipt_no == "01-000001" and done.change_cents == 4000
    assert sale.current_draft(s) is None
    rec = sale.by_receipt(s, "01-000001")
    assert rec["total_cents"] == 16000 and rec["kind"] == "sale"
    assert rec["payments"] == [["card", 10000, None, 0], ["cash", 6000, None, 10000]]
    assert s.db.execute("SELECT sum(total_cents) FROM sale_lines").fetchone()[0] == 16000


def test_bad_input_is_refused_and_changes_nothing(shop):
    s = shop.store
    d = shop.draft("Jeans")
    before = counts(s)
    with pytest.raises(sale.SaleError):
        sale.add_product(s, d, shop.products["Jeans"], 0)
    with pytest.raises(sale.SaleError):
        sale.scan(s, d, "4000000000000")  # valid EAN, nobody knows it
    with pytest.raises(sale.SaleError, match="cannot exceed"):
        sale.add_payment(s, d, "card", 99999)
    with pytest.raises(sale.SaleError, match="still due"):
        sale.complete(s, d, online=True)
    with pytest.raises(sale.SaleError, match="Unknown payment"):
        sale.add_payment(s, d, "cheque", 100)
    with pytest.raises(sale.SaleError, match="not both"):
        sale.set_line_discount(s, d, 1, percent_bp=1000, amount_cents=100)
    with pytest.raises(sale.SaleError, match="100 %"):
        sale.set_basket_discount(s, d, percent_bp=10001)
    with pytest.raises(sale.SaleError, match="no longer in the basket"):
        sale.set_quantity(s, d, 9, 2)
    assert counts(s) == before
    assert sale.quote(s, d).payments == []


def test_draft_survives_a_restart_and_can_be_parked(file_shop, tmp_path, identity):
    shop = file_shop
    s = shop.store
    d = shop.draft("Jeans")
    reopened = Store(s.path, identity)
    try:
        assert sale.current_draft(reopened) == d
        assert sale.quote(reopened, d).total_cents == 5000
    finally:
        reopened.close()
    sale.park(s, d)
    d2 = sale.open_draft(s)
    assert d2 != d
    with pytest.raises(sale.SaleError, match="Finish or park"):
        sale.resume(s, d)
    sale.cancel(s, d2)
    sale.resume(s, d)
    assert sale.current_draft(s) == d


def test_completion_is_all_or_nothing_when_a_payment_fails(file_shop):
    """A wallet emptied elsewhere between payment and completion: no sale, no entries."""
    shop = file_shop
    s = shop.store
    c = shop.customer()
    number = new_wallet(shop, c["id"], 3000)
    tid = card_type(s, new_customer_points=0)
    loyalty.issue_card(s, c["id"], tid)
    d = shop.draft("Jeans", "Bluse", customer=c["id"])
    sale.add_payment(s, d, "wallet", 2000, ref=number)
    sale.add_payment(s, d, "card", 6000)
    # another till spends the wallet (its event arrives through the sync)
    other = Store(None, Identity("teststore", "till-2", 2))
    try:
        replay(s, other)
        d2 = sale.open_draft(other)
        sale.add_product(other, d2, shop.products["Bluse"])
        sale.add_payment(other, d2, "wallet", 2000, ref=number)
        sale.add_payment(other, d2, "card", 1000)
        sale.complete(other, d2, online=True)
        spend = events.history(other, "sale.completed", limit=1)[0]
    finally:
        other.close()
    events.apply(s, spend)
    before = counts(s)
    points_before = loyalty.balance(s, c["id"])
    with pytest.raises(sale.SaleError, match="holds only"):
        sale.complete(s, d, online=True)
    assert counts(s) == before
    assert loyalty.balance(s, c["id"]) == points_before
    assert wallet.balance(s, number) == 1000
    assert s.get_meta("counter.receipt_no") == "1"  # the wallet load's sale only
    assert sale.current_draft(s) == d  # the basket is still there to fix the payment


def test_completion_writes_sale_ledgers_and_events_in_one_commit(file_shop):
    """A second connection sees either nothing of the sale or all of it."""
    shop = file_shop
    s = shop.store
    c = shop.customer()
    number = new_wallet(shop, c["id"], 5000)
    loyalty.issue_card(s, c["id"], card_type(s))
    d = shop.draft("Jeans", "Hemd", customer=c["id"])
    sale.add_payment(s, d, "wallet", 1000, ref=number)
    sale.add_payment(s, d, "card", 8000)
    reader = s.clone()
    try:
        before = counts(reader)
        with s.transaction():
            sale.complete(s, d, online=True)
            assert counts(reader) == before  # not visible before the commit
        after = counts(reader)
    finally:
        reader.close()
    assert after["sales"] == before["sales"] + 1
    assert after["wallet_entries"] == before["wallet_entries"] + 1
    assert after["loyalty_points"] == before["loyalty_points"] + 1  # 9 points for 90 €
    assert after["events"] == before["events"] + 1  # one sale.completed carries everything


def test_rolled_back_outer_transaction_leaves_no_trace(file_shop):
    shop = file_shop
    s = shop.store
    d = shop.draft("Jeans")
    sale.add_payment(s, d, "card", 5000)
    before = counts(s)
    with pytest.raises(RuntimeError), s.transaction():
        sale.complete(s, d, online=True)
        raise RuntimeError("power cut before the commit")
    assert counts(s) == before
    assert sale.current_draft(s) == d


def test_return_of_an_earlier_sale_refunds_the_price_paid(shop):
    s = shop.store
    c = shop.customer()
    settings.set(s, "loyalty.min_spend_cents", 100)  # 0.1 point per euro in 1 € blocks
    d = shop.draft(("Jeans", 3), customer=c["id"])
    sale.set_basket_discount(s, d, amount_cents=100)  # 149 € for 3: 49.67 € each
    first = shop.pay_rest(d)
    assert first.total_cents == 14900
    assert loyalty.balance(s, c["id"]) == 14  # floor(149 × 0.1)
    d = sale.open_draft(s)
    sale.attach_customer(s, d, c["id"])
    sale.add_return(s, d, first.id, 1, 2)
    with pytest.raises(sale.SaleError, match="Only 1"):
        sale.add_return(s, d, first.id, 1, 2)
    q = sale.quote(s, d, online=True)
    assert q.total_cents == -9934 and q.lines[0].kind == "return"
    sale.add_payment(s, d, "cash", -9934)
    refund = sale.complete(s, d, online=True)
    rec = sale.get(s, refund.id)
    assert rec["kind"] == "refund" and rec["total_cents"] == -9934
    assert [e["kind"] for e in rec["points"]] == ["clawback"]
    assert loyalty.balance(s, c["id"]) == 14 - 9
    d = sale.open_draft(s)
    sale.add_return(s, d, first.id, 1, 1)
    assert sale.quote(s, d).total_cents == -4966  # the cents add up to what was paid
    sale.add_payment(s, d, "card", -4966)
    sale.complete(s, d, online=True)
    d = sale.open_draft(s)
    with pytest.raises(sale.SaleError, match="Only 0"):
        sale.add_return(s, d, first.id, 1, 1)


def test_return_by_scanning_a_product_with_negative_quantity(shop):
    s = shop.store
    d = sale.open_draft(s)
    sale.add_product(s, d, shop.eans["Bluse"], -1)
    sale.add_product(s, d, shop.eans["Jeans"], 1)  # exchange: pay the difference
    q = sale.quote(s, d, online=True)
    assert q.total_cents == 2000
    sale.add_payment(s, d, "cash", 2000)
    assert sale.complete(s, d, online=True).payload["kind"] == "sale"


def test_replaying_every_event_twice_on_a_second_store_changes_nothing(file_shop, tmp_path):
    """Idempotency: a second replica converges, and a re-delivery is a no-op."""
    shop = file_shop
    s = shop.store
    c = shop.customer(birth_date="1985-05-06")
    loyalty.issue_card(s, c["id"], card_type(s, new_customer_points=100))
    number = new_wallet(shop, c["id"], 5000)
    d = shop.draft("Jeans", "Kürzen", customer=c["id"])
    sale.sell_giftcard(s, d, 2500)
    sale.add_payment(s, d, "wallet", 1500, ref=number)
    done = shop.pay_rest(d)
    code = next(e["code"] for e in done.payload["giftcards"] if e["kind"] == "issue")
    d = shop.draft("Bluse", customer=c["id"])
    sale.add_payment(s, d, "giftcard", ref=code, forfeit_rest=True)
    sale.redeem_points(s, d, 0)
    shop.pay_rest(d, "cash")
    other = Store(tmp_path / "hub.db", Identity("teststore", "hub"))
    try:
        n = replay(s, other)
        assert n == s.db.execute("SELECT count(*) FROM events").fetchone()[0]
        first = projection(other)
        assert replay(s, other) == 0
        assert projection(other) == first
        mine = projection(s)
        for table in ("sales", "sale_lines", "sale_payments", "loyalty_points",
                      "giftcard_entries", "wallet_entries", "giftcards", "wallets"):  # fmt: skip
            assert first[table] == mine[table], table
        assert loyalty.balance(other, c["id"]) == loyalty.balance(s, c["id"])
        assert wallet.balance(other, number) == 3500
        assert giftcards.balance(other, code) == 0
    finally:
        other.close()


def test_scan_recognises_customer_cards_gift_cards_and_wallets(shop):
    s = shop.store
    c = shop.customer()
    card_no = loyalty.issue_card(s, c["id"], card_type(s))
    number = new_wallet(shop, c["id"], 1000)
    code = giftcards.issue(s, 2000, kind="giftcard")
    d = sale.open_draft(s)
    assert sale.scan(s, d, card_no).customer["id"] == c["id"]
    assert sale.scan(s, d, code).kind == "giftcard"
    assert sale.scan(s, d, number).kind == "wallet"
    with pytest.raises(sale.SaleError, match="Unknown code"):
        sale.scan(s, d, "nothing-like-it")


def test_offline_limits_refuse_large_stored_value_spending(shop):
    s = shop.store
    c = shop.customer()
    number = new_wallet(shop, c["id"], 10000)
    stored_value.set_connectivity(s, False)
    d = shop.draft(("Jeans", 2), customer=c["id"])
    with pytest.raises(sale.SaleError, match="offline"):
        sale.add_payment(s, d, "wallet", 5001, ref=number)  # stored_value offline limit 50 €
    stored_value.set_connectivity(s, True)
    sale.add_payment(s, d, "wallet", 5000, ref=number)
    sale.add_payment(s, d, "card", 5000)
    assert sale.complete(s, d).total_cents == 10000


def test_return_of_goods_paid_with_points_gives_points_back_not_money(shop):
    s = shop.store
    c = shop.customer()
    loyalty.adjust(s, c["id"], 20, "Start")  # 10 points = 10 € (programme default)
    d = shop.draft(("Bluse", 2), customer=c["id"])  # 60 €
    sale.redeem_points(s, d, 20)  # 20 € in points, 40 € by card: 4 points earned
    first = shop.pay_rest(d)
    assert loyalty.balance(s, c["id"]) == 4
    d = sale.open_draft(s)  # no customer scanned: the sale's customer is attached
    sale.add_return(s, d, first.id, 1, 1)
    q = sale.quote(s, d)
    assert q.customer["id"] == c["id"]
    assert q.total_cents == -2000  # 30 € returned: 10 € of it was paid with points
    assert [(e["kind"], e["points"]) for e in q.earn_preview] == [("restore", 10),
                                                                  ("clawback", -2)]  # fmt: skip
    sale.add_payment(s, d, "card", -2000)
    sale.complete(s, d, online=True)
    assert loyalty.balance(s, c["id"]) == 12


def test_returned_units_keep_every_cent_of_their_price(shop):
    s = shop.store
    d = shop.draft(("Bluse", 3))
    sale.set_basket_discount(s, d, amount_cents=1)  # 89,99 € for 3: 30,00 + 30,00 + 29,99
    first = shop.pay_rest(d)
    d = sale.open_draft(s)
    sale.add_return(s, d, first.id, 1, 3)
    q = sale.quote(s, d)
    assert [(ln.qty, ln.unit_cents) for ln in q.lines] == [(-2, 3000), (-1, 2999)]
    assert q.total_cents == -8999


def test_a_full_basket_fits_one_sale_event(shop):
    from kiosk.engine import catalog, promotions
    from tests.support.shop import ean

    s = shop.store
    promotions.save_rule(s, "Alles 10 %", "sale_percent", bp=1000)
    d = sale.open_draft(s)
    for i in range(sale.MAX_LINES):
        pid = catalog.save_product(s, f"Ein Artikel mit einem recht langen Namen Nummer {i}",
                                   1000 + i, group_id=shop.groups["damen"], eans=[ean(500 + i)])  # fmt: skip
        sale.add_product(s, d, pid)
    with pytest.raises(sale.SaleError, match="at most 100 lines"):
        sale.add_product(s, d, shop.products["Jeans"], -1)
    sale.set_basket_discount(s, d, percent_bp=500)
    done = shop.pay_rest(d)
    assert len(done.payload["lines"]) == sale.MAX_LINES


def test_a_completed_basket_is_gone_for_the_till_and_removed_when_the_next_sale_opens(shop):
    """GIVEN a parked sale and a completed return WHEN the parked sale is resumed THEN the
    completed basket is no draft any more (not listed, not usable, its return not counted
    twice), and the next new sale removes its rows."""
    s = shop.store
    c = shop.customer()
    first = shop.pay_rest(shop.draft(("Jeans", 2), customer=c["id"]))
    parked = shop.draft("Hemd")
    sale.park(s, parked)
    d = sale.open_draft(s)
    sale.add_return(s, d, first.id, 1, 1)
    sale.add_payment(s, d, "cash", sale.quote(s, d).due_cents)
    sale.complete(s, d, online=True)

    assert [r["id"] for r in sale.drafts(s)] == [parked]
    assert sale.current_draft(s) is None
    for use in (lambda: sale.quote(s, d), lambda: sale.scan(s, d, shop.eans["Jeans"]),
                lambda: sale.complete(s, d, online=True)):  # fmt: skip
        with pytest.raises(sale.SaleError, match="no longer exists"):
            use()
    sale.resume(s, parked)
    sale.add_return(s, parked, first.id, 1, 1)  # one of two returned so far, not two
    with pytest.raises(sale.SaleError, match="Only 0"):
        sale.add_return(s, parked, first.id, 1, 1)
    sale.cancel(s, parked)

    def rows() -> int:
        return s.db.execute(
            "SELECT (SELECT count(*) FROM sale_drafts) + (SELECT count(*) FROM sale_draft_lines)"
            " + (SELECT count(*) FROM sale_draft_payments)"
        ).fetchone()[0]

    assert rows() > 0  # the completed basket, until …
    sale.open_draft(s)  # … the next sale opens
    assert rows() == 1
