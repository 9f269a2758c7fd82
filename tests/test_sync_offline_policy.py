"""Offline redemption policy and overdrafts found at merge, through the real sync path."""

from __future__ import annotations

import pytest

from kiosk.engine import catalog, giftcards, sale, stored_value
from tests.test_sync_mqtt import Rig, wait_until

pytestmark = pytest.mark.broker


@pytest.fixture
def rig(tmp_path):
    r = Rig(tmp_path)
    yield r
    r.close()


def _sell(store, product_id: str, card: str) -> sale.CompletedSale:
    draft = sale.open_draft(store)
    sale.add_product(store, draft, product_id)
    sale.add_payment(store, draft, "giftcard", ref=card, forfeit_rest=True)
    due = sale.quote(store, draft).due_cents
    if due:
        sale.add_payment(store, draft, "card", due)
    return sale.complete(store, draft)


def test_two_offline_tills_overspend_a_card_and_the_merge_flags_it(rig):
    """GIVEN a 40 € gift card known to both tills, and the tills cut off from the hub
    WHEN each till takes the whole card offline (within the 50 € per-day offline limit)
    and a 80 € card is refused offline (over the limit)
    THEN after reconnecting both sales are kept, the card's merged balance is -40 €, and the
    overdraft is listed on the hub and on both tills."""
    rig.start_hub()
    t1, t2 = rig.stores["till-1"], rig.stores["till-2"]
    rig.start_device("till-1")
    rig.start_device("till-2")
    with t1.transaction():
        jacket = catalog.save_product(t1, "Jacke", 4000)
    small = giftcards.issue(t1, 4000, kind="giftcard")
    big = giftcards.issue(t1, 8000, kind="giftcard")
    wait_until(lambda: rig.converged(["till-1", "till-2"]), 30, "card known everywhere")
    wait_until(lambda: stored_value.is_online(t1) and stored_value.is_online(t2), 10, "in sync")
    rig.stop_device("till-1")
    rig.stop_device("till-2")
    assert not stored_value.is_online(t1) and not stored_value.is_online(t2)

    s1 = _sell(t1, jacket, small)
    s2 = _sell(t2, jacket, small)
    with pytest.raises(sale.SaleError, match="offline"):
        _sell(t2, jacket, big)
    assert giftcards.balance(t1, small) == 0 and giftcards.balance(t2, small) == 0

    rig.start_device("till-1")
    rig.start_device("till-2")
    wait_until(lambda: rig.converged(["till-1", "till-2"]), 30, "merge")
    for store in (rig.hub_store, t1, t2):
        assert giftcards.balance(store, small) == -4000
        assert [(o.ledger, o.account, o.balance) for o in stored_value.overdrafts(store)] == [
            ("giftcard", small, -4000)]  # fmt: skip
        assert sale.get(store, s1.id) and sale.get(store, s2.id)
