"""The demo's embedded broker (amqtt) with the clients every device builds (sync_mqtt)."""

from __future__ import annotations

import queue
import time

import paho.mqtt.client as mqtt
import pytest

from kiosk.config import HubConfig
from kiosk.sync_mqtt import make_client, start, stop
from storehub.broker import EmbeddedBroker
from tests.support.net import LOOPBACK, free_port


@pytest.fixture
def broker():
    b = EmbeddedBroker(LOOPBACK, free_port()).start()
    yield b
    b.stop()


def _messages(inbox: queue.Queue, seconds: float) -> list:
    out, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            item = inbox.get(timeout=0.05)
        except queue.Empty:
            continue
        if item.kind == "msg":
            out.append((item.topic, item.payload, item.retain))
    return out


def test_a_client_gets_only_the_retained_messages_it_subscribed_to(broker):
    """GIVEN the hub's retained state, and a client subscribed to it WHEN the display connects,
    subscribed only to its till's basket THEN it gets the retained basket and nothing else
    (amqtt hands a new client the retained messages of everyone's subscriptions; the display
    used to log them as bad basket messages)."""
    hub = HubConfig(host=LOOPBACK, port=broker.port)
    state, basket = "retail/v1/s/hub/$state", "retail/v1/s/till-1/display/basket"
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="hub")
    pub.connect(LOOPBACK, broker.port)
    pub.loop_start()
    pub.publish(state, b"ready", qos=1, retain=True).wait_for_publish(5)
    pub.publish(basket, b'{"seq": 1}', qos=1, retain=True).wait_for_publish(5)
    watcher_inbox: queue.Queue = queue.Queue()
    watcher = make_client("watcher", hub, watcher_inbox, subscriptions=[state])
    start(watcher, hub)
    assert _messages(watcher_inbox, 1.5) == [(state, b"ready", True)]
    display_inbox: queue.Queue = queue.Queue()
    display = make_client("display", hub, display_inbox, subscriptions=[basket])
    start(display, hub)
    try:
        assert _messages(display_inbox, 1.5) == [(basket, b'{"seq": 1}', True)]
        pub.publish(state, b"lost", qos=1).wait_for_publish(5)  # live, not only retained
        pub.publish(basket, b'{"seq": 2}', qos=1).wait_for_publish(5)
        assert _messages(display_inbox, 1.0) == [(basket, b'{"seq": 2}', False)]
    finally:
        stop(display)
        stop(watcher)
        pub.loop_stop()
        pub.disconnect()
