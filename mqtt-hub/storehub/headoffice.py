"""Head office: follow every store's feed through the bridged broker, one replica per store.

Each store's Mosquitto bridges ``hub/feed``, ``hub/head`` and the replay responses addressed to
``headoffice`` out to the head-office broker, and lets ``headoffice/cmd/#`` in (see
mosquitto/bridge.conf). Here a :class:`~kiosk.sync_feed.FeedFollower` per store applies the
sequenced events idempotently into ``<data_dir>/<store>.db`` and asks that store's hub to
replay whatever the bridge lost (bridges drop messages after long outages).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from pathlib import Path

from kiosk.config import HubConfig
from kiosk.engine.store import Identity, Store
from kiosk.sync_feed import FeedFollower
from kiosk.sync_mqtt import Inbound, make_client, matches
from kiosk.sync_mqtt import start as mqtt_start
from kiosk.sync_mqtt import stop as mqtt_stop
from kiosk.sync_protocol import (
    HEADOFFICE, Feed, Head, ProtocolError, ReplayResponse, Topics, decode, encode,
)  # fmt: skip

_LOGGER = logging.getLogger(__name__)


class HeadOffice:
    """A read-only replica of several stores, fed over the head-office broker."""

    def __init__(self, data_dir: Path, broker: HubConfig, stores: list[str]) -> None:
        self.broker = broker
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.stores: dict[str, Store] = {}
        self.followers: dict[str, FeedFollower] = {}
        self.topics = {s: Topics(s) for s in stores}
        self._inbox: queue.Queue[Inbound] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client = None
        self._connected = False
        self.stats = {"bad": 0}
        self._routes: list[tuple[str, str, str]] = []
        for s, t in self.topics.items():
            self._routes += [(t.feed, s, "feed"), (t.head, s, "head"),
                             (t.hub_res(HEADOFFICE, "replay"), s, "replay")]  # fmt: skip

    def start(self) -> "HeadOffice":
        for s, t in self.topics.items():
            self.stores[s] = Store(self.data_dir / f"{s}.db", Identity(s, HEADOFFICE, 98))
            self.followers[s] = FeedFollower(self.stores[s], self._requester(s))
        self._client = make_client(f"{HEADOFFICE}-consumer", self.broker, self._inbox,
                                   subscriptions=[r[0] for r in self._routes])  # fmt: skip
        self._thread = threading.Thread(target=self._run, name="headoffice", daemon=True)
        self._thread.start()
        mqtt_start(self._client, self.broker)
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(10)
        if self._client is not None:
            mqtt_stop(self._client)
        for s in self.stores.values():
            s.close()

    def _requester(self, store_id: str):
        topic = self.topics[store_id].cmd(HEADOFFICE, "replay")

        def request(req) -> None:
            if self._connected:
                self._client.publish(topic, encode(req), qos=1)
            else:
                self.followers[store_id].pending = None

        return request

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                item = self._inbox.get(timeout=0.2)
            except queue.Empty:
                item = None
            try:
                if item is not None:
                    self._handle(item)
                if self._connected:
                    for f in self.followers.values():
                        f.tick()
            except Exception:  # keep following: one bad step must not stop the consumer
                _LOGGER.exception("head office step failed")
                time.sleep(0.5)

    def _handle(self, item: Inbound) -> None:
        if item.kind == "up":
            self._connected = True
            for f in self.followers.values():
                f.request_now()
            return
        if item.kind == "down":
            self._connected = False
            for f in self.followers.values():
                f.reset()
            return
        for sub, store_id, kind in self._routes:
            if not matches(sub, item.topic):
                continue
            f = self.followers[store_id]
            try:
                if kind == "feed":
                    f.on_feed(decode(item.payload, Feed))
                elif kind == "head":
                    f.on_head(decode(item.payload, Head))
                else:
                    f.on_replay(decode(item.payload, ReplayResponse))
            except ProtocolError as exc:
                self.stats["bad"] += 1
                _LOGGER.warning("ignored message on %s: %s", item.topic, exc)
            return
