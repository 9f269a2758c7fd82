"""Benchmark: convergence after an outage: 10,000 events made offline on one till.

    .venv/bin/python bench/convergence.py                # 10,000 events
    .venv/bin/python bench/convergence.py --events 50000

A hub process and a second till process run, in sync, on a Mosquitto with passwords and the
ACL (each its own process, as in a store). Till 1 is off the network and writes ``--events``
customer events (creates, edits, cards, groups, merges, erasures). Then it reconnects: timed
from its sync client's start until the hub has sequenced every event and till 2 has applied
them all (its feed cursor at the hub's head); then the state hashes of the three replicas are
compared. Goal: ≤ 5 s.
"""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kiosk.engine import events, replication  # noqa: E402
from kiosk.engine.store import Identity, Store  # noqa: E402
from kiosk.sync import SyncClient  # noqa: E402
from storehub import db as _hub_tables  # noqa: E402,F401  (declares the hub's local tables)
from tests.support.broker import device_config, store_broker  # noqa: E402
from tests.support.workload import offline_events  # noqa: E402

STORE = "bench"


def wait(cond, timeout: float = 600.0, step: float = 0.01) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError
        time.sleep(step)


def query(path: Path, sql: str) -> int:
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        try:
            row = con.execute(sql).fetchone()
            return int(row[0]) if row and row[0] is not None else 0
        finally:
            con.close()
    except sqlite3.OperationalError:
        return 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=10_000)
    args = ap.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        broker = store_broker(tmp, STORE, ["till-1", "till-2"]).start()
        conf = broker.conf_dir
        hub_db, till2_db = tmp / "hub.db", tmp / "till-2.db"
        procs = [
            subprocess.Popen([sys.executable, "-m", "storehub.cli", "run", "--store", STORE,
                              "--db", str(hub_db), "--port", str(broker.port), "--username",
                              "hub", "--password-file", str(conf / "hub.password")],
                             cwd=ROOT, env=env),
            subprocess.Popen([sys.executable, "-m", "tests.support.workload", "device", "--idle",
                              "--config", str(conf / "devices" / "till-2.toml"),
                              "--db", str(till2_db)], cwd=ROOT, env=env),
        ]  # fmt: skip
        till1 = Store(tmp / "till-1.db", Identity(STORE, "till-1", 1))
        try:
            t0 = time.perf_counter()
            made = offline_events(till1, args.events)
            make_s = time.perf_counter() - t0
            wait(lambda: query(till2_db, "SELECT value FROM meta WHERE key = 'sync.online'") == 1)
            t0 = time.perf_counter()
            c1 = SyncClient(till1, device_config(broker, "till-1").hub).start()
            wait(lambda: query(hub_db, "SELECT max(seq) FROM events") >= made)
            hub_s = time.perf_counter() - t0
            wait(lambda: query(till2_db, "SELECT value FROM meta WHERE key = 'sync.feed_seq'")
                 >= made)  # fmt: skip
            other_s = time.perf_counter() - t0
            wait(lambda: events.outbox_size(till1) == 0 and replication.cursor(till1) >= made)
            all_s = time.perf_counter() - t0
            c1.stop()
        finally:
            for p in procs:
                p.send_signal(signal.SIGTERM)
                p.wait(30)
            broker.stop()
        stores = [till1, Store(hub_db, Identity(STORE, "hub", 99)),
                  Store(till2_db, Identity(STORE, "till-2", 2))]  # fmt: skip
        # the floor: the engine applying the same events on one replica, no network at all,
        # in batches of 200 through the replica's own path
        floor = Store(tmp / "floor.db", Identity(STORE, "floor", 97))
        evs = events.history(till1, limit=10**7)
        t0 = time.perf_counter()
        for i in range(0, len(evs), 200):
            replication.apply_sequenced(floor, evs[i : i + 200])
        floor_s = time.perf_counter() - t0
        stores.append(floor)
        hashes = {replication.state_hash(s) for s in stores}
        counters = dict(stores[1].db.execute("SELECT name, n FROM hub_counters").fetchall())
        for s in stores:
            s.close()
    print(f"offline events on till-1: {made} (made in {make_s:.1f} s)")
    print(f"after reconnect: hub has all {hub_s:.2f} s, till-2 has all {other_s:.2f} s, "
          f"till-1 acked and caught up {all_s:.2f} s (goal <= 5 s)")
    print(f"engine apply alone (same events, one replica, no network): {floor_s:.2f} s")
    print(f"state hashes identical on hub, till-1, till-2: {len(hashes) == 1}; hub counters "
          f"{counters}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
