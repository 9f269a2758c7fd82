"""The till's live basket to its customer display over MQTT (not an event: it is ephemeral).

The till publishes every :class:`kiosk.engine.display.Snapshot` retained to
``retail/v1/<store>/<till>/display/basket``; the display paired with that till subscribes and
renders the newest one (a higher ``seq``; a restarted till starts again at 1, which the display
accepts when the till says so with a retained message from a new run). The broker ACL lets
every device of the store read ``+/display/basket`` (mqtt-hub/mosquitto/device.acl).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from kiosk.config import HubConfig
from kiosk.engine.display import Snapshot
from kiosk.sync_mqtt import Inbound, make_client
from kiosk.sync_mqtt import start as mqtt_start
from kiosk.sync_mqtt import stop as mqtt_stop
from kiosk.sync_protocol import Topics

_LOGGER = logging.getLogger(__name__)


class _Drop:
    def put(self, _item) -> None:
        pass


def basket_topic(store_id: str, till: str) -> str:
    return f"{Topics(store_id).base}/{till}/display/basket"


class BasketPublisher:
    """At the till: ``publish(snapshot)`` from the UI thread; paho sends in its own thread."""

    def __init__(self, hub: HubConfig, store_id: str, till: str) -> None:
        self.hub = hub
        self.topic = basket_topic(store_id, till)
        # link changes land in a queue nobody reads: a bounded one, so it cannot grow
        self._client = make_client(f"{store_id}-{till}-basket", hub, _Drop())
        self._last: bytes | None = None

    def start(self) -> BasketPublisher:
        mqtt_start(self._client, self.hub)
        return self

    def publish(self, snap: Snapshot) -> None:
        body = snap.encode()
        self._last = body
        # QoS 0 and retained: only the newest basket matters, a display that (re)connects
        # gets it at once; paho queues it while the link is down
        self._client.publish(self.topic, body, qos=0, retain=True)

    def stop(self) -> None:
        mqtt_stop(self._client)


class BasketSubscriber:
    """At the display: calls ``on_snapshot(snapshot)`` from its own thread for each newer one."""

    def __init__(self, hub: HubConfig, store_id: str, me: str, till: str,
                 on_snapshot: Callable[[Snapshot], None]) -> None:  # fmt: skip
        self.hub = hub
        self.topic = basket_topic(store_id, till)
        self.on_snapshot = on_snapshot
        self._inbox: queue.Queue[Inbound] = queue.Queue()
        self._client = make_client(f"{store_id}-{me}-basket", hub, self._inbox,
                                   subscriptions=[self.topic])  # fmt: skip
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_seq = 0

    def start(self) -> BasketSubscriber:
        self._thread = threading.Thread(target=self._run, name="display-basket", daemon=True)
        self._thread.start()
        mqtt_start(self._client, self.hub)
        return self

    def stop(self) -> None:
        self._stop.set()
        mqtt_stop(self._client)
        if self._thread:
            self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                item = self._inbox.get(timeout=0.2)
            except queue.Empty:
                continue
            if item.kind != "msg":
                continue
            try:
                snap = Snapshot.decode(item.payload)
            except (ValueError, TypeError) as exc:
                _LOGGER.warning("ignored a bad basket message: %s", exc)
                continue
            # a retained message on (re)connect may be older than what we showed, unless the
            # till restarted (its seq begins at 1 again, and retained is its latest anyway)
            if snap.seq <= self.last_seq and not item.retain:
                continue
            self.last_seq = snap.seq
            try:
                self.on_snapshot(snap)
            except Exception:
                _LOGGER.exception("showing a basket failed")
