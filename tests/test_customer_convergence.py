"""Replicas converge: any order and duplication of customer events gives the same state."""

from __future__ import annotations

import hashlib
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk.engine import customers, events, groups
from kiosk.engine.store import Identity, Store

TABLES = {
    "customers": "id",
    "customer_cards": "card_no",
    "customer_answers": "customer_id, question",
    "customer_groups": "id",
    "customer_group_members": "customer_id, group_id",
    "customer_redirects": "loser",
}


def state_hash(store: Store) -> str:
    h = hashlib.sha256()
    for table, order in TABLES.items():
        for row in store.db.execute(f"SELECT * FROM {table} ORDER BY {order}"):
            h.update(repr(row).encode())
    # rowids differ between replicas (insertion order); the indexed content must not
    for row in sorted(store.db.execute("SELECT * FROM customer_fts")):
        h.update(repr(row).encode())
    return h.hexdigest()


def _device(n: int) -> Store:
    return Store(None, Identity("s", f"till-{n}", n))


OPS = st.lists(
    st.tuples(
        st.integers(0, 2),  # device
        st.sampled_from(["edit_city", "edit_email", "consent", "erase", "merge", "group", "card"]),
        st.integers(0, 5),  # customer index
        st.integers(0, 5),  # other customer / value
    ),
    max_size=25,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS, seed=st.integers(0, 2**32))
def test_any_interleaving_and_duplication_converges(ops, seed):
    devices = [_device(n) for n in (1, 2, 3)]
    # a shared starting point: customers and a group made on device 1, known to all
    base = devices[0]
    ids = [
        customers.create(base, {"last_name": f"Kunde{i}", "first_name": "Vorname"}, force=True)["id"]
        for i in range(6)
    ]
    vip = groups.save(base, "VIP")
    for other in devices[1:]:
        for ev in reversed(events.history(base, limit=1000)):
            events.apply(other, ev)
    # concurrent, offline work on every device
    for dev_no, op, i, j in ops:
        dev = devices[dev_no]
        cid = ids[i]
        try:
            if op == "edit_city":
                customers.update(dev, cid, {"city": f"Stadt{j}"}, force=True)
            elif op == "edit_email":
                customers.update(dev, cid, {"email": f"k{j}@example.de"}, force=True)
            elif op == "consent":
                customers.update(dev, cid, {"sms_consent": bool(j % 2)}, force=True)
            elif op == "erase":
                customers.erase(dev, cid)
            elif op == "merge":
                customers.merge(dev, ids[j], cid)
            elif op == "group":
                (groups.assign if j % 2 else groups.remove)(dev, cid, vip)
            elif op == "card":
                customers.assign_card(dev, cid, f"CARD{j:04d}")
        except (customers.NotFound, customers.ValidationError):
            pass  # the command was refused on that device's current view: no event
    all_events = {ev.id: ev for dev in devices for ev in events.history(dev, limit=10_000)}
    rng = random.Random(seed)
    hashes = set()
    for _ in range(3):
        replica = _device(9)
        stream = list(all_events.values()) * 2  # every event delivered twice
        rng.shuffle(stream)
        for ev in stream:
            events.apply(replica, ev)
        hashes.add(state_hash(replica))
    # and the devices themselves, after exchanging everything
    for dev in devices:
        for ev in all_events.values():
            events.apply(dev, ev)
        hashes.add(state_hash(dev))
    assert len(hashes) == 1
