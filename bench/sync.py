"""Benchmark: the full sync path against raw paho QoS 1 on the same Mosquitto, same run.

    .venv/bin/python bench/sync.py                 # 5,000 events
    .venv/bin/python bench/sync.py --events 20000

Full path: events wait in a device's durable outbox (SQLite); the sync client publishes them
(QoS 1, batched), the hub applies each one idempotently in a transaction, sequences it and
acks it; the device marks it acknowledged. Timed from the client's start until the last ack
is on the device's disk. Raw: one paho client publishes the same number of messages of the
same size (one event each) with QoS 1, another receives them; timed from the first publish to
the last receipt. Both through one Mosquitto with passwords and the ACL. Goal: ratio ≥ 0.5.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import paho.mqtt.client as mqtt  # noqa: E402

from kiosk.engine import events, replication  # noqa: E402
from kiosk.engine.store import Identity, Store  # noqa: E402
from kiosk.sync import SyncClient  # noqa: E402
from kiosk.sync_protocol import Topics, WireEvent, encode  # noqa: E402
from tests.support.broker import device_config, store_broker  # noqa: E402
from tests.support.workload import offline_events  # noqa: E402

STORE = "bench"


def wait(cond, timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError
        time.sleep(0.005)


def raw_paho(broker, n: int, payload: bytes) -> float:
    """Publish n QoS 1 messages and time until the subscriber has them all."""
    got = threading.Event()
    count = [0]
    user, pw = "hub", (broker.conf_dir / "hub.password").read_text().strip()

    def client(cid: str) -> mqtt.Client:
        c = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id=cid)
        c.username_pw_set(user, pw)
        c.max_inflight_messages_set(100)
        c.max_queued_messages_set(0)
        c.connect(broker.host, broker.port)
        c.loop_start()
        wait(c.is_connected, 10)
        return c

    def on_message(_c, _u, _m) -> None:
        count[0] += 1
        if count[0] == n:
            got.set()

    sub = client("raw-sub")
    sub.on_message = on_message
    subscribed = threading.Event()
    sub.on_subscribe = lambda *_a: subscribed.set()
    topic = f"retail/v1/{STORE}/raw/bench"
    sub.subscribe(topic, qos=1)
    subscribed.wait(10)
    pub = client("raw-pub")
    t0 = time.perf_counter()
    for _ in range(n):
        pub.publish(topic, payload, qos=1)
    got.wait(600)
    elapsed = time.perf_counter() - t0
    for c in (pub, sub):
        c.loop_stop()
        c.disconnect()
    return elapsed


def full_path(broker, tmp: Path, n: int) -> tuple[float, int, bytes]:
    device = Store(tmp / "till-1.db", Identity(STORE, "till-1", 1))
    made = offline_events(device, n)
    sample = encode(WireEvent.of(events.history(device, limit=1)[0]))
    # the hub runs as its own process, as in a store (no GIL shared with the device)
    hub = subprocess.Popen(
        [sys.executable, "-m", "storehub.cli", "run", "--store", STORE, "--db", str(tmp / "hub.db"),
         "--port", str(broker.port), "--username", "hub",
         "--password-file", str(broker.conf_dir / "hub.password")],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    try:
        wait_retained(broker, Topics(STORE).state("hub"), b"ready")
        t0 = time.perf_counter()
        client = SyncClient(device, device_config(broker, "till-1").hub).start()
        wait(lambda: events.outbox_size(device) == 0)
        elapsed = time.perf_counter() - t0
        client.stop()
    finally:
        hub.send_signal(signal.SIGTERM)
        hub.wait(30)
    hub_store = Store(tmp / "hub.db", Identity(STORE, "hub", 99))
    assert replication.head(hub_store) == made
    hub_store.close()
    device.close()
    return elapsed, made, sample


def wait_retained(broker, topic: str, value: bytes) -> None:
    seen = threading.Event()
    c = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id="probe")
    c.username_pw_set("hub", (broker.conf_dir / "hub.password").read_text().strip())
    c.on_message = lambda _c, _u, m: seen.set() if m.payload == value else None
    c.on_connect = lambda cl, *_a: cl.subscribe(topic, qos=1)
    c.connect(broker.host, broker.port)
    c.loop_start()
    seen.wait(60)
    c.loop_stop()
    c.disconnect()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=5000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        broker = store_broker(tmp, STORE, ["till-1"]).start()
        try:
            full_s, made, sample = full_path(broker, tmp, args.events)
            raw_s = raw_paho(broker, made, sample)
        finally:
            broker.stop()
    full_rate, raw_rate = made / full_s, made / raw_s
    print(f"events: {made} (one event ≈ {len(sample)} bytes as JSON)")
    print(f"full path (outbox -> Mosquitto -> hub apply+seq -> ack on disk): "
          f"{full_s:.2f} s, {full_rate:,.0f} events/s")
    print(f"raw paho QoS 1 publish -> receive, one message per event:       "
          f"{raw_s:.2f} s, {raw_rate:,.0f} msgs/s")
    print(f"ratio full/raw: {full_rate / raw_rate:.2f} (goal >= 0.5); load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
