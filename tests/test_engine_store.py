"""Store, migrations, event log and hybrid logical clock."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiosk.engine import customers, events
from kiosk.engine.hlc import HybridClock, Timestamp
from kiosk.engine.store import Identity, IdentityMismatch, Store, _MIGRATION_SETS


def test_file_store_uses_wal_and_full_sync(file_store):
    db = file_store.db
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_migrations_run_once_and_reapply_is_a_no_op(tmp_path, identity):
    path = tmp_path / "d.db"
    Store(path, identity).close()
    s = Store(path, identity)
    applied = s.db.execute("SELECT count(*) FROM _sqlite_migrations").fetchone()[0]
    s.migrate()
    for migrations in _MIGRATION_SETS:
        migrations.apply(s.db)
    assert s.db.execute("SELECT count(*) FROM _sqlite_migrations").fetchone()[0] == applied
    assert applied >= len(_MIGRATION_SETS)


def test_a_database_refuses_another_device(tmp_path, identity):
    Store(tmp_path / "d.db", identity).close()
    with pytest.raises(IdentityMismatch):
        Store(tmp_path / "d.db", Identity("teststore", "till-2"))


def test_bad_identity_is_refused():
    with pytest.raises(ValueError):
        Identity("Laden Köln", "till-1")
    with pytest.raises(ValueError):
        Identity("shop", "till/1")


def test_state_change_and_event_commit_together(store):
    """GIVEN a failing step after the event WHEN the transaction aborts THEN neither remains."""
    before = store.db.execute("SELECT count(*) FROM events").fetchone()[0]
    with pytest.raises(RuntimeError):
        with store.transaction():
            customers.create(store, {"last_name": "Abbruch"})
            raise RuntimeError("power cut")
    assert store.db.execute("SELECT count(*) FROM events").fetchone()[0] == before
    assert customers.count(store) == 0


def test_event_envelope(store):
    c = customers.create(store, {"last_name": "Klein"})
    [ev] = events.history(store, "customer.created")
    assert ev.device == "till-1" and ev.v == 1 and ev.payload["id"] == c["id"]
    assert len(ev.id) == 36 and ev.id[14] == "7"  # UUIDv7
    assert ev.created_at.endswith("+00:00")
    Timestamp.parse(ev.hlc)


def test_applying_an_event_twice_changes_nothing(store, tmp_path):
    customers.create(store, {"last_name": "Doppelt", "email": "d@example.de"})
    replica = Store(tmp_path / "replica.db", Identity("teststore", "till-2", 2))
    [ev] = events.history(store)
    assert events.apply(replica, ev) is True
    snapshot = list(replica.db.query("SELECT * FROM customers"))
    assert events.apply(replica, ev) is False
    assert events.apply(replica, ev) is False
    assert list(replica.db.query("SELECT * FROM customers")) == snapshot
    assert replica.db.execute("SELECT count(*) FROM events").fetchone()[0] == 1
    assert customers.find(replica, "doppelt")[0].last_name == "Doppelt"


def test_outbox_lists_own_unacked_events_in_order(store):
    for name in ("Eins", "Zwei", "Drei"):
        customers.create(store, {"last_name": name})
    box = events.outbox(store)
    assert [e.payload["fields"]["last_name"] for e in box] == ["Eins", "Zwei", "Drei"]
    events.mark_acked(store, [(box[0].id, 1), (box[1].id, None)])
    assert [e.id for e in events.outbox(store)] == [box[2].id]
    assert events.get(store, box[0].id).seq == 1


@pytest.mark.parametrize(
    "mutate, reason",
    [
        (lambda e: e.__class__(**{**e.__dict__, "type": "nope.nothing"}), "unknown event type"),
        (lambda e: e.__class__(**{**e.__dict__, "v": 99}), "not supported"),
        (lambda e: e.__class__(**{**e.__dict__, "device": "Till 1"}), "bad device id"),
        (lambda e: e.__class__(**{**e.__dict__, "hlc": "yesterday"}), "hybrid logical clock"),
        (lambda e: e.__class__(**{**e.__dict__, "id": "x"}), "bad event id"),
        (lambda e: e.__class__(**{**e.__dict__, "payload": {"id": "x", "fields": {"notes": "x" * 70000}}}), "larger"),
    ],
)
def test_malformed_events_are_refused_and_change_nothing(store, tmp_path, mutate, reason):
    customers.create(store, {"last_name": "Quelle"})
    [ev] = events.history(store)
    replica = Store(tmp_path / "r.db", Identity("teststore", "till-2", 2))
    with pytest.raises(events.EventError, match=reason):
        events.apply(replica, mutate(ev))
    assert replica.db.execute("SELECT count(*) FROM events").fetchone()[0] == 0
    assert customers.count(replica) == 0


def test_hlc_is_monotonic_even_when_the_wall_clock_goes_back():
    walls = iter([1000, 1000, 999, 2000, 1500])
    clock = HybridClock("a", wall=lambda: next(walls))
    stamps = [clock.now() for _ in range(5)]
    assert stamps == sorted(stamps) and len(set(stamps)) == 5


def test_hlc_observes_remote_and_refuses_absurd_future():
    clock = HybridClock("a", wall=lambda: 1000)
    clock.observe(str(Timestamp(5000, 3, "b")))
    assert Timestamp.parse(clock.now()) > Timestamp(5000, 3, "b")
    with pytest.raises(ValueError):
        clock.observe(str(Timestamp(1000 + 3 * 24 * 3600 * 1000, 0, "b")))


@given(st.lists(st.tuples(st.integers(0, 10**13), st.integers(0, 99999)), min_size=2))
def test_hlc_string_order_is_clock_order(pairs):
    stamps = [Timestamp(w, c, "node") for w, c in pairs]
    assert sorted(stamps) == [Timestamp.parse(s) for s in sorted(str(t) for t in stamps)]


def test_store_restart_continues_the_clock(tmp_path, identity):
    s = Store(tmp_path / "d.db", identity)
    customers.create(s, {"last_name": "Vorher"})
    last = s.db.execute("SELECT max(hlc) FROM events").fetchone()[0]
    s.close()
    s = Store(tmp_path / "d.db", identity)
    assert s.hlc.now() > last


_WRITER = textwrap.dedent(
    """
    import sys
    from kiosk.engine.store import Store, Identity
    from kiosk.engine import customers
    s = Store(sys.argv[1], Identity("teststore", "till-1", 1))
    print("ready", flush=True)
    while True:
        with s.transaction():
            c = customers.create(s, {"last_name": "Kunde", "first_name": "Test"}, force=True)
            customers.update(s, c["id"], {"notes": "x" * 2000})
    """
)


@pytest.mark.slow
def test_power_loss_mid_write_leaves_a_consistent_database(tmp_path):
    """GIVEN a process writing customers WHEN it is killed -9 at random THEN the file is consistent."""
    path = tmp_path / "crash.db"
    for delay in (0.3, 0.7, 1.1):
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE)
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        conn = sqlite3.connect(path)
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        n_customers = conn.execute("SELECT count(*) FROM customers").fetchone()[0]
        created = conn.execute("SELECT count(*) FROM events WHERE type='customer.created'").fetchone()[0]
        updated = conn.execute("SELECT count(*) FROM events WHERE type='customer.updated'").fetchone()[0]
        noted = conn.execute("SELECT count(*) FROM customers WHERE notes IS NOT NULL").fetchone()[0]
        fts = conn.execute("SELECT count(*) FROM customer_fts").fetchone()[0]
        conn.execute("INSERT INTO customer_fts(customer_fts) VALUES('integrity-check')")
        conn.close()
        assert n_customers > 0
        # every transaction is whole: one create + one update per customer, indexed once
        assert n_customers == created == updated == noted == fts


def test_background_checkpointer_moves_the_wal_into_the_database(tmp_path, identity):
    """GIVEN a long-running store with the checkpoint thread WHEN much is written THEN the pages
    reach the main file without any commit checkpointing (autocheckpoint is off)."""
    import time

    s = Store(tmp_path / "ck.db", identity)
    s.start_checkpointer(every_s=0.05)
    assert s.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    s.db.execute("CREATE TABLE blob (x TEXT)")
    for _ in range(30):
        with s.transaction():
            s.db.conn.executemany("INSERT INTO blob VALUES (?)", [("x" * 1000,)] * 100)
    deadline = time.monotonic() + 20
    while (tmp_path / "ck.db").stat().st_size < 2_500_000 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (tmp_path / "ck.db").stat().st_size >= 2_500_000
    s.close()
    assert s._checkpointer is None
