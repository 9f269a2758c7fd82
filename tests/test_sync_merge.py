"""Replication without a network: idempotency, ordering, gap replay and merge rules."""

from __future__ import annotations

import os
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk.engine import customers, events, replication
from kiosk.engine import settings as shop_settings
from kiosk.engine.store import Identity, Store
from kiosk.sync_feed import FeedFollower
from kiosk.sync_protocol import SCHEMA, Feed, ReplayResponse, WireEvent
from tests.support.workload import customer_ops


def _store(device: str, no: int = 1) -> Store:
    return Store(None, Identity("teststore", device, no))


def _all_events(store: Store) -> list[events.Event]:
    return events.history(store, limit=10**9)


def _simulate(ops: list[tuple[int, int]], seed: int) -> list[Store]:
    """Three devices work offline and sync now and then; return them."""
    devices = [_store(f"till-{i}", i) for i in (1, 2, 3)]
    rng = random.Random(seed)
    for who, action in ops:
        dev = devices[who]
        if action == 0:  # a partial sync: take some events of another device
            other = devices[(who + 1 + rng.randrange(2)) % 3]
            for ev in rng.sample(_all_events(other), k=min(5, len(_all_events(other)))):
                events.apply(dev, ev)
        else:
            customer_ops(dev, rng)
    return devices


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ops=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 3)), min_size=5, max_size=60),
    seed=st.integers(0, 2**32),
    # seeds, not st.randoms(): how much a replay draws depends on the event count, and event
    # ids carry the clock, so Hypothesis saw one example draw differently twice (flaky strategy)
    orders=st.lists(st.integers(0, 2**32), min_size=2, max_size=3),
)
def test_any_interleaving_and_duplication_gives_the_same_state(ops, seed, orders):
    """GIVEN events made on three devices with partial syncs in between
    WHEN replicas apply all of them in random orders with duplicates
    THEN every replica, and every device after catching up, has the same state hash."""
    devices = _simulate(ops, seed)
    union = {ev.id: ev for d in devices for ev in _all_events(d)}
    replicas = []
    for i, order_seed in enumerate(orders):
        rnd = random.Random(order_seed)
        replica = _store(f"replica-{i}", 50 + i)
        stream = list(union.values())
        stream += rnd.sample(stream, k=len(stream) // 3)  # duplicates
        rnd.shuffle(stream)
        for ev in stream:
            events.apply(replica, ev)
        replicas.append(replica)
    for dev in devices:  # devices catch up too, in their own (creation) order
        for ev in sorted(union.values(), key=lambda e: e.id):
            events.apply(dev, ev)
    hashes = {replication.state_hash(s) for s in replicas + devices}
    if len(hashes) != 1:
        details = [replication.state_hash(s, detail=True) for s in replicas + devices]
        diff = {t for d in details for t in d if d[t] != details[0][t]}
        pytest.fail(f"replicas differ in {sorted(diff)}")


def test_apply_is_idempotent_by_event_id(store):
    src = _store("till-2", 2)
    c = customers.create(src, {"last_name": "Weiß"}, force=True)
    ev = _all_events(src)[0]
    assert events.apply(store, ev) is True
    before = replication.state_hash(store)
    assert events.apply(store, ev) is False
    assert replication.state_hash(store) == before
    assert customers.get(store, c["id"])["last_name"] == "Weiß"


def test_last_writer_wins_per_field_whatever_the_arrival_order():
    a, b = _store("till-1", 1), _store("till-2", 2)
    c = customers.create(a, {"last_name": "Meyer", "city": "Köln"}, force=True)
    for ev in _all_events(a):
        events.apply(b, ev)
    customers.update(a, c["id"], {"city": "Bonn"})  # older
    customers.update(b, c["id"], {"last_name": "Maier"})  # different field
    customers.update(b, c["id"], {"city": "Aachen"})  # newest city
    for x, y in ((a, b), (b, a)):
        for ev in reversed(_all_events(x)):
            events.apply(y, ev)
    for s in (a, b):
        rec = customers.get(s, c["id"])
        assert (rec["last_name"], rec["city"]) == ("Maier", "Aachen")
    assert replication.state_hash(a) == replication.state_hash(b)


def test_erasure_wins_over_later_and_earlier_edits():
    a, b = _store("till-1", 1), _store("till-2", 2)
    c = customers.create(a, {"last_name": "Schmidt", "email": "s@example.org"}, force=True)
    for ev in _all_events(a):
        events.apply(b, ev)
    customers.erase(a, c["id"])
    customers.update(b, c["id"], {"last_name": "Schmitt"})  # made offline after the erasure
    for x, y in ((a, b), (b, a)):
        for ev in _all_events(x):
            events.apply(y, ev)
    for s in (a, b):
        with pytest.raises(customers.NotFound):
            customers.get(s, c["id"])
        row = s.db.execute("SELECT last_name, email FROM customers WHERE id = ?", [c["id"]]).fetchone()
        assert row == (None, None)
        logged = s.db.execute("SELECT payload FROM events WHERE payload LIKE '%Schmi%'").fetchall()
        assert logged == []  # no copy of the personal data left in the log either
    assert replication.state_hash(a) == replication.state_hash(b)


def test_hub_sequence_is_contiguous_and_replay_returns_it_in_order():
    hub = _store("hub", 0)
    src = _store("till-1", 1)
    for n in range(5):
        shop_settings.set(src, "shop.phone", f"0221 {n}")
    with hub.transaction():
        ids = []
        for ev in reversed(_all_events(src)):
            events.apply(hub, ev)
            ids.append(ev.id)
        first = replication.assign_seq(hub, ids[:3])
        again = replication.assign_seq(hub, ids)  # already sequenced ones keep their number
    assert [s for _, s in first] == [1, 2, 3]
    assert [s for _, s in again] == [1, 2, 3, 4, 5]
    assert [e.seq for e in replication.since(hub, 2, 10)] == [2, 3, 4, 5]
    assert replication.head(hub) == 5
    with pytest.raises(RuntimeError):
        replication.assign_seq(hub, ids)  # only inside a transaction


def _sequenced_hub(n: int) -> Store:
    hub = _store("hub", 0)
    src = _store("till-1", 1)
    for i in range(n):
        shop_settings.set(src, "shop.phone", f"0221 {i}")
    with hub.transaction():
        for ev in reversed(_all_events(src)):
            events.apply(hub, ev)
        replication.assign_seq(hub, replication.unsequenced(hub, 10**6))
    return hub


def test_follower_fills_a_gap_from_the_hub_database():
    """GIVEN a device that got feed messages 1-3 and 7-9 (4-6 were lost)
    THEN it asks for a replay from 4 and ends with every event, cursor at the head."""
    hub = _sequenced_hub(9)
    device = _store("till-2", 2)
    requests = []
    follower = FeedFollower(device, requests.append)
    feed = [WireEvent.of(e) for e in replication.since(hub, 1, 100)]
    follower.on_feed(Feed(SCHEMA, "epoch-1", 3, feed[:3]))
    assert follower.cursor == 3 and not requests
    follower.on_feed(Feed(SCHEMA, "epoch-1", 9, feed[6:]))
    assert follower.cursor == 3
    assert [r.from_seq for r in requests] == [4]
    req = requests[0]
    found = [WireEvent.of(e) for e in replication.since(hub, req.from_seq, req.limit)]
    follower.on_replay(ReplayResponse(SCHEMA, req.transaction, "epoch-1", 9, 10, found))
    assert follower.cursor == 9 and follower.caught_up
    assert replication.cursor(device) == 9
    assert replication.state_hash(device) == replication.state_hash(hub)


def test_follower_notices_a_lost_tail_from_the_head():
    from kiosk.sync_protocol import Head

    hub = _sequenced_hub(4)
    device = _store("till-2", 2)
    requests = []
    follower = FeedFollower(device, requests.append)
    follower.on_feed(Feed(SCHEMA, "e", 2, [WireEvent.of(e) for e in replication.since(hub, 1, 2)]))
    assert follower.caught_up and not requests
    follower.on_head(Head(SCHEMA, "e", 4))  # the last feed message never arrived
    assert [r.from_seq for r in requests] == [3]


def test_a_new_hub_epoch_resends_own_events_and_restarts_the_cursor():
    device = _store("till-1", 1)
    shop_settings.set(device, "shop.phone", "0221 1")
    ev = _all_events(device)[0]
    replication.adopt_epoch(device, "old")
    events.mark_acked(device, [(ev.id, 1)])
    replication.advance_cursor(device)
    assert replication.cursor(device) == 1 and events.outbox_size(device) == 0
    assert replication.adopt_epoch(device, "new") is True
    assert replication.cursor(device) == 0
    assert events.outbox_size(device) == 1
    assert events.get(device, ev.id).seq is None


def test_state_hash_ignores_replica_local_data():
    a, b = _store("till-1", 1), _store("till-2", 2)
    with a.transaction():
        a.set_meta("sync.feed_seq", "17")
        a.next_counter("customer_no")
    assert replication.state_hash(a) == replication.state_hash(b)
    shop_settings.set(a, "shop.phone", "0221 1")
    assert replication.state_hash(a) != replication.state_hash(b)


# seeds that once caught order-dependent overdraft rows; MERGE_SEEDS=1,2,... for a longer run
SEEDS = [int(s) for s in os.environ.get("MERGE_SEEDS", "5,6").split(",")]
STEPS = int(os.environ.get("MERGE_STEPS", "200"))


@pytest.mark.parametrize("seed", SEEDS)
def test_sales_with_stored_value_merge_to_the_same_state_in_any_order(seed):
    """GIVEN three tills selling offline (loyalty, gift cards, e-wallets, customer edits and
    merges) with partial syncs in between
    WHEN replicas apply the union of events in random orders with duplicates
    THEN all of them, overdraft list included, have the same state hash."""
    from tests.support.workload import sales

    rng = random.Random(seed)
    devices = [_store(f"till-{i}", i) for i in (1, 2, 3)]
    for step in range(STEPS):
        dev = devices[step % 3]
        if rng.random() < 0.2:
            other = devices[(step + 1 + rng.randrange(2)) % 3]
            for ev in _all_events(other):
                events.apply(dev, ev)
        sales(dev, rng)
    union = {ev.id: ev for d in devices for ev in _all_events(d)}
    replicas = []
    for i in range(3):
        replica = _store(f"replica-{i}", 50 + i)
        stream = list(union.values())
        stream += rng.sample(stream, k=len(stream) // 4)
        rng.shuffle(stream)
        for ev in stream:
            events.apply(replica, ev)
        replicas.append(replica)
    for dev in devices:
        for ev in sorted(union.values(), key=lambda e: e.id):
            events.apply(dev, ev)
    details = [replication.state_hash(s, detail=True) for s in replicas + devices]
    diff = {t for d in details for t in d.keys() | details[0].keys() if d.get(t) != details[0].get(t)}
    assert not diff, f"replicas differ in {sorted(diff)}"
