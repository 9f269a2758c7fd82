"""Store Mosquitto bridged to a head-office Mosquitto; head office applies the same events."""

from __future__ import annotations

import random

import pytest

from kiosk.config import HubConfig
from kiosk.engine import replication
from kiosk.engine.store import Identity, Store
from kiosk.sync import SyncClient
from storehub.enrol import render_bridge, set_password
from storehub.headoffice import HeadOffice
from storehub.hub import Hub
from tests.support.broker import Mosquitto, device_config, hub_config, store_broker
from tests.support.net import free_port
from tests.support.workload import sales
from tests.test_sync_mqtt import wait_until

pytestmark = pytest.mark.broker

STORE = "laden-koeln"


@pytest.fixture
def headoffice_broker(tmp_path):
    """Head office's Mosquitto: the store's bridge and the consumer, each with a password."""
    conf = tmp_path / "ho-conf"
    set_password(conf, f"{STORE}-bridge", "bridge-secret")
    set_password(conf, "headoffice", "ho-secret")
    (conf / "acl").write_text(
        f"user {STORE}-bridge\ntopic readwrite retail/v1/{STORE}/#\n\n"
        "user headoffice\ntopic read retail/v1/+/hub/#\ntopic write retail/v1/+/headoffice/cmd/#\n"
    )
    broker = Mosquitto(tmp_path / "ho", anonymous=False, extra_conf=(
        f"password_file {conf}/passwd\nacl_file {conf}/acl\n")).start()  # fmt: skip
    yield broker
    broker.stop()


def test_head_office_applies_the_store_events_through_the_bridge(tmp_path, headoffice_broker):
    """GIVEN a store broker bridged to head office, a hub and two tills selling
    WHEN the head-office consumer starts late (it missed the live feed) and the tills go on
    THEN it replays the gap through the bridge and holds exactly the hub's state; a restart
    of the consumer applies nothing twice."""
    ho = headoffice_broker
    bridge = render_bridge(STORE, f"127.0.0.1:{ho.port}", f"{STORE}-bridge", "bridge-secret")
    broker = store_broker(tmp_path, STORE, ["till-1", "till-2"], extra_conf=bridge).start()
    hub_store = Store(tmp_path / "hub.db", Identity(STORE, "hub", 99))
    hub = Hub(hub_store, hub_config(broker)).start()
    tills = {d: Store(tmp_path / f"{d}.db", Identity(STORE, d, i + 1))
             for i, d in enumerate(["till-1", "till-2"])}  # fmt: skip
    clients = [SyncClient(s, device_config(broker, d).hub).start() for d, s in tills.items()]
    ho_cfg = HubConfig(host=ho.host, port=ho.port, username="headoffice",
                       password_file=tmp_path / "ho.pw")  # fmt: skip
    (tmp_path / "ho.pw").write_text("ho-secret\n")
    consumer = None
    try:
        rng = random.Random(4)
        for i in range(60):
            sales(tills[f"till-{i % 2 + 1}"], rng)
        consumer = HeadOffice(tmp_path / "headoffice", ho_cfg, [STORE]).start()
        for i in range(60):
            sales(tills[f"till-{i % 2 + 1}"], rng)

        def same() -> bool:
            if any(replication.counts(s)["backlog"] for s in tills.values()):
                return False
            replica = consumer.stores[STORE]
            return (replication.cursor(replica) == replication.head(hub_store) > 0
                    and replication.state_hash(replica) == replication.state_hash(hub_store))

        wait_until(same, 90, "head office converges")
        assert consumer.followers[STORE].applied == replication.head(hub_store)
        consumer.stop()
        consumer = HeadOffice(tmp_path / "headoffice", ho_cfg, [STORE]).start()
        wait_until(lambda: consumer.followers[STORE].pending is None
                   and consumer.followers[STORE].head > 0, 30, "restarted consumer")  # fmt: skip
        assert consumer.followers[STORE].applied == 0
        assert same()
    finally:
        if consumer:
            consumer.stop()
        for c in clients:
            c.stop()
        hub.stop()
        broker.stop()
        hub_store.close()
        for s in tills.values():
            s.close()
