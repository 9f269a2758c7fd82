"""Device sync: the durable outbox goes up to the hub, the hub's feed comes down.

The App starts one :class:`SyncClient` per device. It runs in its own thread with its own
Store connection (``store.clone()``); paho's network thread only queues what arrives.

Device lifecycle (retained ``retail/v1/<store>/<device>/$state``)::

    init ──(connected, caught up with the feed)──> ready
      ^                                              │ link lost
      └───────────── reconnect ──────── lost (Last Will) / disconnected (clean stop)

Sending (transactional outbox): own events with ``acked = 0`` are published in batches
(QoS 1) within a bounded window of unacknowledged events. Only the hub's ack (or the event
coming back in the feed with its sequence number) marks them acknowledged; after
``ack_timeout`` without an ack, on reconnect and when the hub comes back, every
unacknowledged event is sent again. The hub applies by event id, so repeats change nothing.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import msgspec

from kiosk import __version__
from kiosk.config import HubConfig
from kiosk.engine import events, replication, stored_value
from kiosk.engine.clock import iso
from kiosk.engine.store import Store
from kiosk.sync_feed import FeedFollower
from kiosk.sync_mqtt import Inbound, make_client, matches
from kiosk.sync_mqtt import start as mqtt_start
from kiosk.sync_mqtt import stop as mqtt_stop
from kiosk.sync_protocol import (
    SCHEMA, Ack, Command, CommandResult, DeviceMeta, DeviceStatus, EventBatch, Feed, Head,
    ProtocolError, ReplayRequest, ReplayResponse, Topics, WireEvent, chunks, decode, encode,
)  # fmt: skip

_LOGGER = logging.getLogger(__name__)

ACK_TIMEOUT_S = 10.0
WINDOW_EVENTS = 1000  # unacknowledged events in flight at most (backpressure, not paho's queue)
STATUS_EVERY_S = 5.0

StateCallback = Callable[[replication.SyncState], None]
ConfigCallback = Callable[[str, Any], None]


class SyncClient:
    """Ship the outbox, follow the feed, report the link state.

    ``on_state`` and ``on_config`` are called from the sync thread: the App forwards them to
    the UI thread with ``Clock.schedule_once``.
    """

    def __init__(
        self,
        store: Store,
        hub: HubConfig,
        *,
        mode: str = "till",
        on_state: StateCallback | None = None,
        on_config: ConfigCallback | None = None,
        ack_timeout: float = ACK_TIMEOUT_S,
        window: int = WINDOW_EVENTS,
        connectivity: replication.Connectivity | None = None,
    ) -> None:
        self._main_store = store
        self.hub = hub
        self.mode = mode
        self.identity = store.identity
        self.topics = Topics(store.identity.store_id)
        self.on_state = on_state
        self.on_config = on_config
        self.ack_timeout = ack_timeout
        self.window = window
        self.connectivity = connectivity or replication.Connectivity()
        self._inbox: queue.Queue[Inbound] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.store: Store | None = None
        self.follower: FeedFollower | None = None
        self._client = None
        self._connected = False
        self._hub_ready = False
        self._inflight: dict[str, float] = {}
        self._sent: deque[tuple[float, list[str]]] = deque()
        self._send_after = ""
        self._last_status = 0.0
        self._status_sent: DeviceStatus | None = None
        self._announced_ready = False
        self._online_told: bool | None = None
        self._last_ack = 0.0
        self.stats = {"sent": 0, "resent_rounds": 0, "acked": 0, "rejected": 0, "bad": 0}
        me = self.identity.device_id
        t = self.topics
        # Inbound routes: topic filter -> handler (payload bytes, topic, retained flag).
        self._routes: list[tuple[str, Callable[[bytes, str], None]]] = [
            (t.ack(me), self._on_ack),
            (t.feed, self._on_feed),
            (t.head, self._on_head),
            (t.hub_res(me, "replay"), self._on_replay),
            (t.state("hub"), self._on_hub_state),
            (t.hub_cmd(me, "+"), self._on_command),
            (t.config("#"), self._on_config),
        ]

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> "SyncClient":
        """Connect in the background and start the sync thread."""
        self.store = self._main_store.clone() if self._main_store.path else self._main_store
        self.follower = FeedFollower(self.store, self._send_replay_request)
        me = self.identity.device_id
        self._client = make_client(
            f"{self.identity.store_id}-{me}",
            self.hub,
            self._inbox,
            will=(self.topics.state(me), b"lost"),
            subscriptions=[sub for sub, _h in self._routes],
        )
        self._update_state()
        self._thread = threading.Thread(target=self._run, name=f"sync-{me}", daemon=True)
        self._thread.start()
        mqtt_start(self._client, self.hub)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Say goodbye (retained ``disconnected``) and stop the threads."""
        if self._client is not None and self._connected:
            info = self._client.publish(
                self.topics.state(self.identity.device_id), b"disconnected", qos=1, retain=True
            )
            info.wait_for_publish(timeout=2)
        self._stop.set()
        if self._thread:
            self._thread.join(timeout)
        if self._client is not None:
            mqtt_stop(self._client)
        if self.store is not None:
            stored_value.set_connectivity(self.store, False)  # offline rules from now on
            if self.store is not self._main_store:
                self.store.close()

    def wake(self) -> None:
        """Tell the sync thread that new events wait in the outbox (optional: it also polls)."""
        self._inbox.put(Inbound("wake"))

    @property
    def state(self) -> replication.SyncState:
        return self.connectivity.state

    # -- the sync thread ------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                item: Inbound | None = self._inbox.get(timeout=0.1)
            except queue.Empty:
                item = None
            batch = [item] if item else []
            while len(batch) < 200:
                try:
                    batch.append(self._inbox.get_nowait())
                except queue.Empty:
                    break
            try:
                for it in batch:
                    self._handle(it)
                self._pump()
                self._tick()
            except Exception:  # keep syncing: one bad step must not stop the thread
                _LOGGER.exception("sync step failed")
                time.sleep(0.5)

    def _handle(self, item: Inbound) -> None:
        if item.kind == "up":
            _LOGGER.info("connected to %s:%s", self.hub.host, self.hub.port)
            self._connected = True
            self._announced_ready = False
            self._reset_window()
            me = self.identity.device_id
            self._publish(self.topics.state(me), b"init", retain=True)
            meta = DeviceMeta(SCHEMA, self.mode, __version__, self.identity.device_no)
            self._publish(self.topics.meta(me), encode(meta), retain=True)
            self.follower.request_now()
        elif item.kind == "down":
            if self._connected:
                _LOGGER.warning("disconnected from the broker (%s)", item.payload.decode())
            self._connected = False
            self._hub_ready = False
            self._reset_window()
            self.follower.reset()
        elif item.kind == "msg":
            for sub, handler in self._routes:
                if matches(sub, item.topic):
                    try:
                        handler(item.payload, item.topic)
                    except ProtocolError as exc:
                        self.stats["bad"] += 1
                        _LOGGER.warning("ignored message on %s: %s", item.topic, exc)
                    break

    def _publish(self, topic: str, payload: bytes, *, retain: bool = False) -> bool:
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        return info.rc == 0

    # -- outbox -------------------------------------------------------------------------------------
    def _reset_window(self) -> None:
        """Forget what is in flight: everything unacknowledged goes out again."""
        if self._inflight:
            self.stats["resent_rounds"] += 1
        self._inflight.clear()
        self._sent.clear()
        self._send_after = ""

    def _pump(self) -> None:
        if not (self._connected and self._hub_ready):
            return
        topic = self.topics.events(self.identity.device_id)
        while len(self._inflight) < self.window:
            room = min(self.window - len(self._inflight), 500)
            pending = replication.outbox_after(self.store, self._send_after, room)
            if not pending:
                return
            self._send_after = pending[-1].id
            for part in chunks([WireEvent.of(ev) for ev in pending]):
                body = encode(EventBatch(SCHEMA, self.identity.device_id, part))
                if not self._publish(topic, body):
                    self._reset_window()
                    return
                now = time.monotonic()
                ids = [e.id for e in part]
                for event_id in ids:
                    self._inflight[event_id] = now
                self._sent.append((now, ids))
                self.stats["sent"] += len(ids)

    def _on_ack(self, payload: bytes, _topic: str) -> None:
        ack = decode(payload, Ack)
        self.follower._epoch(ack.epoch)
        events.mark_acked(self.store, ack.acks)
        if ack.errors:
            _LOGGER.error("the hub refused %d event(s): %s", len(ack.errors), ack.errors[:3])
            replication.reject(self.store, ack.errors)
        for event_id, _ in ack.acks:
            self._inflight.pop(event_id, None)
        for event_id, _ in ack.errors:
            self._inflight.pop(event_id, None)
        self._last_ack = time.monotonic()
        self.stats["acked"] += len(ack.acks)
        self.stats["rejected"] += len(ack.errors)
        self.follower.head = max(self.follower.head, ack.head)

    # -- feed -----------------------------------------------------------------------------------------
    def _on_feed(self, payload: bytes, _topic: str) -> None:
        feed = decode(payload, Feed)
        self.follower.on_feed(feed)
        me = self.identity.device_id
        for e in feed.events:
            if e.device == me:
                self._inflight.pop(e.id, None)  # coming back sequenced is as good as an ack

    def _on_head(self, payload: bytes, _topic: str) -> None:
        self.follower.on_head(decode(payload, Head))

    def _on_replay(self, payload: bytes, _topic: str) -> None:
        self.follower.on_replay(decode(payload, ReplayResponse))

    def _send_replay_request(self, req: ReplayRequest) -> None:
        if self._connected:
            self._publish(self.topics.cmd(self.identity.device_id, "replay"), encode(req))
        else:
            self.follower.pending = None

    def _on_hub_state(self, payload: bytes, _topic: str) -> None:
        ready = payload == b"ready"
        if ready and not self._hub_ready:
            _LOGGER.info("the hub is ready")
            self._reset_window()  # whatever was in flight may have died with the old hub
            self.follower.request_now()
        self._hub_ready = ready

    # -- commands and config ---------------------------------------------------------------------------
    def _on_command(self, payload: bytes, topic: str) -> None:
        name = topic.rsplit("/", 1)[1]
        cmd = decode(payload, Command)
        ok, detail = True, ""
        if name == "resync":
            with self.store.transaction():
                self.store.set_meta("sync.feed_seq", "0")
            self.follower.cursor = 0
            self.follower.request_now()
        elif name == "resend":
            detail = f"{replication.resend_all(self.store)} events"
            self._reset_window()
        elif name != "ping":
            ok, detail = False, f"unknown command {name}"
        result = CommandResult(SCHEMA, cmd.transaction, ok, detail)
        self._publish(self.topics.res(self.identity.device_id, name), encode(result))

    def _on_config(self, payload: bytes, topic: str) -> None:
        name = topic.split("/config/", 1)[1]
        value = msgspec.json.decode(payload) if payload else None
        with self.store.transaction():
            self.store.set_meta(f"config.{name}", payload.decode() if payload else "null")
        if self.on_config:
            self.on_config(name, value)

    # -- timers and state ------------------------------------------------------------------------------
    def _tick(self) -> None:
        now = time.monotonic()
        while self._sent and not any(i in self._inflight for i in self._sent[0][1]):
            self._sent.popleft()
        # time out only when acks stopped coming: a slow but working hub is not resent to
        if self._sent and now - max(self._sent[0][0], self._last_ack) > self.ack_timeout:
            _LOGGER.info("no ack for %.0f s: sending the unacknowledged events again",
                         now - self._sent[0][0])  # fmt: skip
            self._reset_window()
        if self._connected:
            self.follower.tick()
        state = self._update_state()
        if self._connected:
            if state.in_sync and not self._announced_ready:
                self._announced_ready = True
                self._publish(self.topics.state(self.identity.device_id), b"ready", retain=True)
            if now - self._last_status > STATUS_EVERY_S:
                self._last_status = now
                status = DeviceStatus(SCHEMA, state.backlog, state.feed_seq, state.hub_seq,
                                      state.in_sync, iso(self.store.clock()))  # fmt: skip
                self._publish(self.topics.status(self.identity.device_id), encode(status),
                              retain=True)  # fmt: skip

    def _update_state(self) -> replication.SyncState:
        f = self.follower
        state, changed = self.connectivity.update(
            iso(self.store.clock()),
            connected=self._connected,
            hub_ready=self._hub_ready,
            feed_seq=f.cursor,
            hub_seq=f.head,
            backlog=events.outbox_size(self.store),
            replaying=f.pending is not None,
        )
        if changed or self._online_told is None:
            if state.in_sync != self._online_told:
                # redemption commands choose between online rules and the offline policy
                self._online_told = state.in_sync
                stored_value.set_connectivity(self.store, state.in_sync)
            if changed and self.on_state:
                self.on_state(state)
        return state
