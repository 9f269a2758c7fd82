"""paho-mqtt client set-up shared by devices, the hub and head office.

Clean sessions on purpose: nothing in this product relies on the broker keeping messages for
an absent client (a default Mosquitto drops QoS 1 messages beyond 1000 per client, its
persistence is periodic). Whatever was missed is replayed from the hub's database.
"""

from __future__ import annotations

import logging
import queue
import socket
import ssl
from dataclasses import dataclass

import paho.mqtt.client as mqtt

from kiosk.config import HubConfig

_LOGGER = logging.getLogger(__name__)

KEEPALIVE_S = 15


@dataclass(frozen=True)
class Inbound:
    """What the paho thread hands to a worker thread: one message or a link change."""

    kind: str  # "msg", "up", "down"
    topic: str = ""
    payload: bytes = b""
    retain: bool = False


def make_client(
    client_id: str,
    hub: HubConfig,
    inbox: "queue.Queue[Inbound]",
    *,
    will: tuple[str, bytes] | None = None,
    subscriptions: list[str] | None = None,
    max_inflight: int = 100,
) -> mqtt.Client:
    """Build a paho client that reconnects by itself and hands everything to ``inbox``.

    Subscriptions are renewed on every (re)connect, since a clean session forgets them.
    """
    client = mqtt.Client(
        callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=True,
        protocol=mqtt.MQTTv311,
    )
    if hub.username:
        client.username_pw_set(hub.username, hub.password())
    if hub.tls:
        ctx = ssl.create_default_context(cafile=str(hub.ca_file) if hub.ca_file else None)
        client.tls_set_context(ctx)
    if will:
        client.will_set(will[0], will[1], qos=1, retain=True)
    client.max_inflight_messages_set(max_inflight)
    client.on_socket_open = _no_delay
    client.reconnect_delay_set(min_delay=1, max_delay=5)
    subs = list(subscriptions or [])

    def on_connect(cl, _userdata, _flags, reason_code, _props) -> None:
        if reason_code.is_failure:
            _LOGGER.warning("%s: broker refused the connection: %s", client_id, reason_code)
            return
        if subs:
            cl.subscribe([(topic, 1) for topic in subs])
        inbox.put(Inbound("up"))

    def on_disconnect(_cl, _userdata, _flags, reason_code, _props) -> None:
        inbox.put(Inbound("down", payload=str(reason_code).encode()))

    def on_message(_cl, _userdata, msg: mqtt.MQTTMessage) -> None:
        # amqtt (the demo's embedded broker) hands a connecting client the retained messages of
        # every topic anyone subscribed to; Mosquitto does not. Keep only what we asked for.
        if not any(matches(sub, msg.topic) for sub in subs):
            _LOGGER.debug("%s: dropped a message on %s: not subscribed", client_id, msg.topic)
            return
        inbox.put(Inbound("msg", msg.topic, msg.payload, bool(msg.retain)))

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    client.on_message = on_message
    return client


def _no_delay(_client, _userdata, sock) -> None:
    # paho leaves Nagle on: a small publish after another waits for the broker's delayed ACK
    # (~40 ms per hop on Linux); our messages are small and latency matters (clipad, feed)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, AttributeError):  # not a TCP socket (e.g. a websocket wrapper)
        pass


def start(client: mqtt.Client, hub: HubConfig) -> None:
    """Connect in the background; paho keeps retrying while the broker is away."""
    client.connect_async(hub.host, hub.port, keepalive=KEEPALIVE_S)
    client.loop_start()


def stop(client: mqtt.Client) -> None:
    client.disconnect()
    client.loop_stop()


def matches(sub: str, topic: str) -> bool:
    return mqtt.topic_matches_sub(sub, topic)
