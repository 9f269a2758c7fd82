"""Batched apply: one savepoint per batch, redone event by event when one event fails."""

from __future__ import annotations

import dataclasses
import random

import pytest

from kiosk.engine import customers, events, replication, search
from kiosk.engine.store import Identity, Store
from tests.support.workload import customer_ops


def _store(device: str, no: int) -> Store:
    return Store(None, Identity("teststore", device, no))


def _sequenced(store: Store) -> list[events.Event]:
    evs = sorted(events.history(store, limit=10**9), key=lambda e: e.hlc)
    return [dataclasses.replace(e, seq=i + 1) for i, e in enumerate(evs)]


def test_a_failing_event_does_not_lose_the_good_ones_of_its_batch():
    source = _store("till-1", 1)
    rng = random.Random(7)
    with source.transaction():
        for _ in range(40):
            customer_ops(source, rng)
    evs = _sequenced(source)
    bad_at = len(evs) // 2
    # a newer event type than this software knows, in the middle of the batch
    bad = dataclasses.replace(evs[bad_at], id=events.new_id(), type="customer.future", seq=None)
    batch = [*evs[:bad_at], bad, *evs[bad_at:]]

    replica = _store("till-2", 2)
    applied, cursor = replication.apply_sequenced(replica, batch)

    assert applied == len(evs)
    assert cursor == len(evs)
    assert events.get(replica, bad.id) is None
    assert replication.state_hash(replica) == replication.state_hash(source)
    # applying the batch again changes nothing
    assert replication.apply_sequenced(replica, batch) == (0, len(evs))
    assert replication.state_hash(replica) == replication.state_hash(source)


def test_batched_apply_gives_the_same_search_index_as_local_writes():
    source = _store("till-1", 1)
    rng = random.Random(11)
    with source.transaction():
        for _ in range(150):
            customer_ops(source, rng)
    replica = _store("till-2", 2)
    evs = _sequenced(source)
    for i in range(0, len(evs), 37):
        replication.apply_sequenced(replica, evs[i : i + 37])

    def index(store: Store) -> tuple[list, list]:
        return (
            store.db.execute("SELECT rowid, * FROM customer_fts ORDER BY rowid").fetchall(),
            store.db.execute("SELECT rowid, * FROM customer_names ORDER BY rowid").fetchall(),
        )

    def ids_by_rowid(store: Store) -> dict[int, str]:
        return dict(store.db.execute("SELECT rowid, id FROM customers"))

    # rowids may differ between replicas: compare entries by customer id
    def by_id(store: Store) -> list[dict]:
        ids = ids_by_rowid(store)
        return [{ids[r[0]]: r[1:] for r in part} for part in index(store)]

    assert by_id(replica) == by_id(source)
    assert replication.state_hash(replica) == replication.state_hash(source)
    some = customers.count(replica)
    assert some > 0
    with replica.transaction():
        assert search.rebuild(replica.db) == some


def test_apply_in_batch_needs_a_transaction():
    source = _store("till-1", 1)
    customer_ops(source, random.Random(1))
    ev = events.history(source)[0]
    with pytest.raises(RuntimeError):
        events.apply_in_batch(_store("till-2", 2), ev)


def test_a_batch_reindexes_each_customer_once_at_its_end():
    """GIVEN a customer created and renamed three times WHEN the replica applies the four
    events as one batch THEN the search index is written once, with the last name, and a
    batch that fails leaves no deferred work behind."""
    source = _store("till-1", 1)
    c = customers.create(source, {"first_name": "Anna", "last_name": "Mayer"}, force=True)
    for name in ("Maier", "Meyer", "Schmitz"):
        customers.update(source, c["id"], {"last_name": name}, force=True)
    replica = _store("till-2", 2)
    writes: list[str] = []
    replica.db.conn.set_trace_callback(
        lambda sql: writes.append(sql) if sql.startswith("INSERT INTO customer_fts") else None
    )
    replication.apply_sequenced(replica, _sequenced(source))
    replica.db.conn.set_trace_callback(None)
    assert len(writes) == 1
    assert [h.id for h in customers.find(replica, "schmitz")] == [c["id"]]
    assert customers.find(replica, "mayer") == []
    assert not replica.is_deferring

    # a failing batch: rolled back with its deferred re-index, then redone event by event
    customers.update(source, c["id"], {"last_name": "Schulz"}, force=True)
    last = _sequenced(source)[-1]
    bad = dataclasses.replace(last, id=events.new_id(), type="customer.future", seq=None)
    replication.apply_sequenced(replica, [last, bad])
    assert [h.id for h in customers.find(replica, "schulz")] == [c["id"]]
    assert customers.find(replica, "schmitz") == []
    assert not replica.is_deferring
