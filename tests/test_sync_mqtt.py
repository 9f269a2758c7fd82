"""Devices, hub and a real Mosquitto (password per device + ACL) on a loopback port."""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt
import pytest

from kiosk.engine import events, replication
from kiosk.engine.store import Identity, Store
from kiosk.sync import SyncClient
from kiosk.sync_protocol import SCHEMA, EventBatch, Topics, WireEvent, encode
from storehub import db as hubdb
from storehub.hub import Hub
from tests.support.broker import device_config, hub_config, store_broker
from tests.support.workload import customer_ops

pytestmark = pytest.mark.broker

STORE = "teststore"
DEVICES = ["till-1", "till-2", "till-3"]


def wait_until(cond: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or cond}")


class Rig:
    """A store: broker, hub and device stores in real SQLite files."""

    def __init__(self, tmp_path) -> None:
        self.tmp = tmp_path
        self.broker = store_broker(tmp_path, STORE, DEVICES).start()
        self.hub_store = Store(tmp_path / "hub.db", Identity(STORE, "hub", 99))
        self.hub: Hub | None = None
        self.stores = {
            d: Store(tmp_path / f"{d}.db", Identity(STORE, d, i + 1)) for i, d in enumerate(DEVICES)
        }
        self.clients: dict[str, SyncClient] = {}

    def start_hub(self) -> Hub:
        self.hub = Hub(self.hub_store, hub_config(self.broker)).start()
        return self.hub

    def stop_hub(self) -> None:
        self.hub.stop()
        self.hub = None

    def start_device(self, device: str, **kw) -> SyncClient:
        cfg = device_config(self.broker, device)
        self.clients[device] = SyncClient(self.stores[device], cfg.hub, **kw).start()
        return self.clients[device]

    def stop_device(self, device: str) -> None:
        self.clients.pop(device).stop()

    def converged(self, devices: list[str]) -> bool:
        replicas = [self.hub_store] + [self.stores[d] for d in devices]
        if any(replication.counts(self.stores[d])["backlog"] for d in devices):
            return False
        head = replication.head(self.hub_store)
        if any(replication.cursor(self.stores[d]) != head for d in devices):
            return False
        return len({replication.state_hash(s) for s in replicas}) == 1

    def close(self) -> None:
        for d in list(self.clients):
            self.stop_device(d)
        if self.hub:
            self.stop_hub()
        self.broker.stop()
        for s in [self.hub_store, *self.stores.values()]:
            s.close()


@pytest.fixture
def rig(tmp_path):
    r = Rig(tmp_path)
    yield r
    r.close()


def raw_client(rig: Rig, user: str, password: str) -> mqtt.Client:
    """A plain paho client with some device's credentials (an attacker or a test probe)."""
    cl = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
                     client_id=f"probe-{user}-{random.randrange(10**6)}")  # fmt: skip
    cl.username_pw_set(user, password)
    cl.connect(rig.broker.host, rig.broker.port)
    cl.loop_start()
    wait_until(cl.is_connected, 10, "probe connects")
    return cl


def password_of(rig: Rig, user: str) -> str:
    name = "hub.password" if user == "hub" else f"devices/{user}.password"
    return (rig.broker.conf_dir / name).read_text().strip()


def assert_exactly_once(rig: Rig, devices: list[str]) -> None:
    hub_ids = {r[0] for r in rig.hub_store.db.execute("SELECT id FROM events")}
    seqs = [r[0] for r in rig.hub_store.db.execute("SELECT seq FROM events ORDER BY seq")]
    assert seqs == list(range(1, len(hub_ids) + 1)), "store sequence has gaps or repeats"
    for d in devices:
        ids = [r[0] for r in rig.stores[d].db.execute("SELECT id FROM events")]
        assert len(ids) == len(set(ids)) and set(ids) == hub_ids


def test_outbox_reaches_the_hub_and_every_device_exactly_once(rig):
    """GIVEN a hub and three devices online
    WHEN every device writes customers, cards, groups and settings
    THEN the hub sequences each event once, acks it, and every replica ends in the same state."""
    rig.start_hub()
    for d in DEVICES:
        rig.start_device(d)
    rng = random.Random(5)
    for i in range(150):
        customer_ops(rig.stores[DEVICES[i % 3]], rng)
    wait_until(lambda: rig.converged(DEVICES), 60, "convergence")
    assert_exactly_once(rig, DEVICES)
    assert hubdb.counters(rig.hub_store)["applied"] == replication.head(rig.hub_store)
    assert all(rig.clients[d].stats["acked"] >= 1 for d in DEVICES)
    assert not any(k.startswith("rejected.") for k in hubdb.counters(rig.hub_store))


def test_events_published_while_no_hub_listens_are_resent_after_the_ack_timeout(rig):
    """GIVEN a retained 'hub ready' but no hub subscribed (the broker keeps nothing for it)
    WHEN the device publishes its outbox and gets no ack
    THEN it sends again after the timeout, and the real hub gets everything once it runs."""
    probe = raw_client(rig, "hub", password_of(rig, "hub"))
    probe.publish(Topics(STORE).state("hub"), b"ready", qos=1, retain=True).wait_for_publish(5)
    rng = random.Random(7)
    for _ in range(40):
        customer_ops(rig.stores["till-1"], rng)
    client = rig.start_device("till-1", ack_timeout=0.5)
    wait_until(lambda: client.stats["resent_rounds"] >= 2, 20, "resends")
    counts = replication.counts(rig.stores["till-1"])
    assert counts["backlog"] == counts["own"] >= 40  # nothing was acked
    probe.loop_stop()
    probe.disconnect()
    rig.start_hub()
    wait_until(lambda: rig.converged(["till-1"]), 30, "convergence")
    assert_exactly_once(rig, ["till-1"])


def test_offline_device_catches_up_by_gap_replay_after_reconnect(rig, monkeypatch):
    """GIVEN a device that was off while the others sold (it missed the live feed)
    WHEN it comes back
    THEN it asks the hub for the gap (several replay rounds) and sends its own offline work."""
    import kiosk.sync_feed

    monkeypatch.setattr(kiosk.sync_feed, "REPLAY_LIMIT", 40)  # force several replay rounds
    rig.start_hub()
    rig.start_device("till-1")
    rng = random.Random(11)
    for _ in range(150):
        customer_ops(rig.stores["till-1"], rng)
    for _ in range(30):
        customer_ops(rig.stores["till-3"], rng)  # offline work on the absent device
    wait_until(lambda: rig.converged(["till-1"]), 30, "till-1 synced")
    client3 = rig.start_device("till-3")
    wait_until(lambda: rig.converged(["till-1", "till-3"]), 60, "till-3 caught up")
    assert client3.follower.applied >= 150
    assert_exactly_once(rig, ["till-1", "till-3"])


def test_hub_restart_and_lost_acks_change_nothing(rig):
    """GIVEN devices syncing
    WHEN the hub stops mid-stream and comes back, and a device forgets every ack (resend all)
    THEN events are still applied once and replicas converge."""
    rig.start_hub()
    for d in DEVICES[:2]:
        rig.start_device(d)
    rng = random.Random(3)
    for i in range(60):
        customer_ops(rig.stores[DEVICES[i % 2]], rng)
    rig.stop_hub()
    for i in range(60):
        customer_ops(rig.stores[DEVICES[i % 2]], rng)
    rig.start_hub()
    wait_until(lambda: rig.converged(DEVICES[:2]), 60, "convergence after hub restart")
    # acks lost: the device forgets them (and the sequence numbers they brought) and
    # reconnects, so it sends everything again
    rig.stop_device("till-1")
    with rig.stores["till-1"].transaction():
        rig.stores["till-1"].db.execute(
            "UPDATE events SET acked = 0, seq = NULL WHERE device = 'till-1'"
        )
    rig.start_device("till-1")
    wait_until(lambda: replication.counts(rig.stores["till-1"])["backlog"] == 0, 30, "re-acked")
    wait_until(lambda: rig.converged(DEVICES[:2]), 30, "convergence")
    assert hubdb.counters(rig.hub_store).get("duplicates", 0) >= 1
    assert_exactly_once(rig, DEVICES[:2])


def _batch_for(store: Store, device: str) -> tuple[bytes, list[events.Event]]:
    evs = events.history(store, limit=10**6)
    return encode(EventBatch(SCHEMA, device, [WireEvent.of(e) for e in evs])), evs


def test_bad_messages_are_rejected_logged_counted_and_nothing_is_applied(rig):
    """GIVEN a running hub and a device's credentials
    WHEN malformed, oversized, wrong-schema, forged, conflicting and replayed batches arrive
    THEN each is refused with its reason, logged in hub_rejects, counted, and nothing applied."""
    rig.start_hub()
    t = Topics(STORE)
    cl = raw_client(rig, "till-1", password_of(rig, "till-1"))
    topic = t.events("till-1")
    # a second replica makes genuine events: one for a forged batch, one to replay
    other = Store(None, Identity(STORE, "till-2", 2))
    rng = random.Random(1)
    customer_ops(other, rng)
    forged_body, forged_events = _batch_for(other, "till-2")
    mine = Store(None, Identity(STORE, "till-1", 1))
    customer_ops(mine, rng)
    good_body, good_events = _batch_for(mine, "till-1")
    # same id, another envelope: a forged or corrupted copy of an event the hub holds
    changed = dataclasses.replace(good_events[0], type="setting.changed", hlc="9" + good_events[0].hlc[1:])
    tampered = encode(EventBatch(SCHEMA, "till-1", [WireEvent.of(changed)]))
    sends = [
        b"{not json",
        encode({"schema": 1, "device": "till-1", "events": [{"id": 5}]}),
        b'{"schema": 1, "device": "till-1", "events": []' + b" " * (600 * 1024) + b"}",
        encode({"schema": 99, "device": "till-1", "events": []}),
        forged_body,  # till-2's events sent with till-1's credentials
        encode(EventBatch(SCHEMA, "till-1", [WireEvent.of(forged_events[0])])),
    ]
    for body in sends:
        cl.publish(topic, body, qos=1).wait_for_publish(5)
    wait_until(lambda: sum(n for k, n in hubdb.counters(rig.hub_store).items()
                           if k.startswith("rejected.")) >= 6, 20, "rejections")  # fmt: skip
    counters = hubdb.counters(rig.hub_store)
    assert counters["rejected.malformed"] == 2
    assert counters["rejected.oversized"] == 1
    assert counters["rejected.schema"] == 1
    assert counters["rejected.forged"] == 2
    assert replication.head(rig.hub_store) == 0 and "applied" not in counters
    # a genuine batch, then the same batch replayed, then a tampered copy of one event
    for body in (good_body, good_body, tampered):
        cl.publish(topic, body, qos=1).wait_for_publish(5)
    wait_until(lambda: hubdb.counters(rig.hub_store).get("rejected.conflict") == 1, 20, "conflict")
    counters = hubdb.counters(rig.hub_store)
    assert counters["applied"] == len(good_events) == replication.head(rig.hub_store)
    assert counters["duplicates"] == len(good_events)  # the replay: acked again, not applied
    reasons = [r["reason"] for r in hubdb.rejects(rig.hub_store)]
    assert sorted(set(reasons)) == ["conflict", "forged", "malformed", "oversized", "schema"]
    assert all(r["device"] == "till-1" for r in hubdb.rejects(rig.hub_store))
    assert events.get(rig.hub_store, good_events[0].id).payload == good_events[0].payload
    cl.loop_stop()
    cl.disconnect()
    other.close()
    mine.close()


def test_acl_keeps_a_device_out_of_other_devices_topics(rig):
    """GIVEN till-1's credentials
    WHEN it publishes a batch under till-2's topic and then one under its own
    THEN the broker drops the first (the hub never sees it) and delivers the second."""
    rig.start_hub()
    wait_until(rig.hub.ready.is_set, 10, "hub")
    cl = raw_client(rig, "till-1", password_of(rig, "till-1"))
    fake = Store(None, Identity(STORE, "till-2", 2))
    customer_ops(fake, random.Random(2))
    body, evs = _batch_for(fake, "till-2")
    t = Topics(STORE)
    cl.publish(t.events("till-2"), body, qos=1).wait_for_publish(5)
    mine = Store(None, Identity(STORE, "till-1", 1))
    customer_ops(mine, random.Random(3))
    body1, evs1 = _batch_for(mine, "till-1")
    cl.publish(t.events("till-1"), body1, qos=1).wait_for_publish(5)
    wait_until(lambda: replication.head(rig.hub_store) == len(evs1), 20, "own batch applied")
    assert events.get(rig.hub_store, evs[0].id) is None
    # nor may a device read another device's acks
    seen: list[str] = []
    cl.on_message = lambda _c, _u, msg: seen.append(msg.topic)
    cl.subscribe(t.ack("till-2"), qos=1)
    cl.subscribe(t.ack("till-1"), qos=1)
    time.sleep(0.3)
    probe = raw_client(rig, "hub", password_of(rig, "hub"))
    probe.publish(t.ack("till-2"), b"x", qos=1).wait_for_publish(5)
    probe.publish(t.ack("till-1"), b"y", qos=1).wait_for_publish(5)
    wait_until(lambda: t.ack("till-1") in seen, 10, "own ack topic readable")
    assert t.ack("till-2") not in seen
    for c in (cl, probe):
        c.loop_stop()
        c.disconnect()
    fake.close()
    mine.close()


def test_retained_config_reaches_devices_that_connect_later(rig):
    """GIVEN the hub publishes loyalty rules as retained config
    WHEN a device connects afterwards
    THEN it receives and stores them."""
    hub = rig.start_hub()
    wait_until(hub.ready.is_set, 10, "hub")
    hub.publish_config("loyalty", {"points_per_euro": 1, "levels": [100, 500]})
    time.sleep(0.3)
    got: dict = {}
    rig.start_device("till-2", on_config=lambda name, value: got.__setitem__(name, value))
    wait_until(lambda: "loyalty" in got, 10, "config")
    assert got["loyalty"] == {"points_per_euro": 1, "levels": [100, 500]}
    assert rig.stores["till-2"].get_meta("config.loyalty") is not None


def test_device_state_is_retained_and_the_last_will_marks_it_lost(rig, tmp_path):
    """GIVEN a device process connected to the store broker
    WHEN it is killed with SIGKILL
    THEN the broker publishes its Last Will: the hub lists it as 'lost' (retained)."""
    import subprocess
    import sys

    rig.start_hub()
    conf = rig.broker.conf_dir / "devices" / "till-3.toml"
    proc = subprocess.Popen([sys.executable, "-m", "tests.support.workload", "device",
                             "--config", str(conf), "--db", str(tmp_path / "p3.db"),
                             "--ops", "20", "--workload", "customer_ops"])  # fmt: skip
    try:
        def state() -> str | None:
            row = rig.hub_store.db.execute(
                "SELECT state FROM hub_devices WHERE device = 'till-3'").fetchone()
            return row[0] if row else None

        wait_until(lambda: state() == "ready", 60, "device ready")
        proc.kill()
        proc.wait(10)
        wait_until(lambda: state() == "lost", 30, "last will")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # retained: a newcomer sees it too
    seen: dict[str, bytes] = {}
    probe = raw_client(rig, "till-1", password_of(rig, "till-1"))
    probe.on_message = lambda _c, _u, msg: seen.__setitem__(msg.topic, msg.payload)
    probe.subscribe(Topics(STORE).state("+"), qos=1)
    wait_until(lambda: seen.get(Topics(STORE).state("till-3")) == b"lost", 10, "retained state")
    probe.loop_stop()
    probe.disconnect()
