"""The store hub service: apply device events, sequence them, acknowledge, feed the store.

Ingest is a declarative table of topic filter -> payload type -> handler. Event batches are
applied in one transaction per round (group commit): each event idempotently by id (a repeat
is acknowledged again with its sequence number, never applied twice), then the new ones get
the next store sequence numbers in the same transaction. Acks and the feed go out only after
the commit, so an ack is proof that the event is on the hub's disk.

What the hub refuses (malformed, oversized, unknown schema, forged device id, invalid or
conflicting events) is logged, counted in ``hub_counters`` and listed in ``hub_rejects``;
nothing of such a message is applied.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from kiosk.config import HubConfig
from kiosk.engine import events, replication
from kiosk.engine.store import Store
from kiosk.sync_mqtt import Inbound, make_client, matches
from kiosk.sync_mqtt import start as mqtt_start
from kiosk.sync_mqtt import stop as mqtt_stop
from kiosk.sync_protocol import (
    HUB, MAX_MESSAGE_BYTES, SCHEMA, Ack, DeviceMeta, DeviceStatus, EventBatch, Feed, Head,
    ProtocolError, ReplayRequest, ReplayResponse, Topics, WireEvent, chunks, decode, encode,
)  # fmt: skip
from storehub import db as hubdb

_LOGGER = logging.getLogger(__name__)

HEAD_EVERY_S = 1.0
OWN_EVENTS_EVERY_S = 0.5
MAX_ROUND_MESSAGES = 50  # event batches applied in one transaction
REPLAY_MAX = 5000


class _Redo(Exception):
    """An event of a round failed: redo the round with a savepoint per event."""


@dataclass(frozen=True)
class Route:
    """One line of the ingest table."""

    topic: str  # filter relative to retail/v1/<store>/
    kind: type | None  # payload struct (None: raw bytes)
    handler: str  # Hub method name


ROUTES = (
    Route("+/evt/+", EventBatch, "_ingest"),  # batched: one transaction per round
    Route("+/cmd/replay", ReplayRequest, "_on_replay"),
    Route("+/$state", None, "_on_device_state"),
    Route("+/$meta", DeviceMeta, "_on_device_meta"),
    Route("+/status", DeviceStatus, "_on_device_status"),
)


class Hub:
    """One store's hub: a replica with its own Store (identity ``<store>/hub``)."""

    def __init__(
        self,
        store: Store,
        broker: HubConfig,
        *,
        on_applied: Callable[[int], None] | None = None,
    ) -> None:
        if store.identity.device_id != HUB:
            raise ValueError(f"the hub's store must have device id {HUB!r}")
        self.store = store
        self.broker = broker
        self.topics = Topics(store.identity.store_id)
        self.epoch = hubdb.open_hub_store(store)
        self.on_applied = on_applied
        self._inbox: queue.Queue[Inbound] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client = None
        self._connected = False
        self._head_sent = (-1, 0.0)
        self._own_check = 0.0
        self.ready = threading.Event()
        self._routes = [
            (f"{self.topics.base}/{r.topic}", r.kind, getattr(self, r.handler)) for r in ROUTES
        ]

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> "Hub":
        self._client = make_client(
            f"{self.topics.store_id}-{HUB}",
            self.broker,
            self._inbox,
            will=(self.topics.state(HUB), b"lost"),
            subscriptions=[sub for sub, _k, _h in self._routes],
            max_inflight=200,
        )
        self._thread = threading.Thread(target=self._run, name="storehub", daemon=True)
        self._thread.start()
        mqtt_start(self._client, self.broker)
        return self

    def stop(self) -> None:
        if self._client is not None and self._connected:
            info = self._client.publish(self.topics.state(HUB), b"disconnected", qos=1, retain=True)
            info.wait_for_publish(timeout=2)
        self._stop.set()
        if self._thread:
            self._thread.join(10)
        if self._client is not None:
            mqtt_stop(self._client)

    def run_forever(self) -> None:
        self.start()
        try:
            while not self._stop.wait(1):
                pass
        finally:
            self.stop()

    # -- the worker thread -------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                first = self._inbox.get(timeout=0.1)
            except queue.Empty:
                first = None
            items = [first] if first else []
            while len(items) < 500:
                try:
                    items.append(self._inbox.get_nowait())
                except queue.Empty:
                    break
            try:
                self._round(items)
                self._periodic()
            except Exception:  # a bug in one round must not stop the hub
                _LOGGER.exception("hub round failed")
                time.sleep(0.5)

    def _round(self, items: list[Inbound]) -> None:
        batches: list[tuple[str, str, EventBatch]] = []
        later: list[Callable[[], None]] = []
        for item in items:
            if item.kind == "up":
                self._connected = True
                _LOGGER.info("hub connected to %s:%s", self.broker.host, self.broker.port)
                self._publish_head(force=True)
                self._publish(self.topics.state(HUB), b"ready", retain=True)
                self.ready.set()
                continue
            if item.kind == "down":
                self._connected = False
                self.ready.clear()
                continue
            if item.kind != "msg":
                continue
            for sub, kind, handler in self._routes:
                if not matches(sub, item.topic):
                    continue
                device = self.topics.device_of(item.topic)
                if device == HUB:
                    break
                try:
                    msg = item.payload if kind is None else decode(item.payload, kind)
                except ProtocolError as exc:
                    self._reject(item, device, exc.reason, exc.detail)
                    break
                if kind is EventBatch:
                    if self._check_batch(item, device, msg):
                        batches.append((device, item.topic, msg))
                        if len(batches) >= MAX_ROUND_MESSAGES:
                            self._ingest(batches)
                            batches = []
                else:
                    later.append(lambda h=handler, d=device, m=msg: h(d, m))
                break
        if batches:
            self._ingest(batches)
        for call in later:
            call()

    def _periodic(self) -> None:
        now = time.monotonic()
        if now - self._own_check > OWN_EVENTS_EVERY_S:
            self._own_check = now
            self._sequence_own()
        self._publish_head()

    def _publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        if self._connected:
            self._client.publish(topic, payload, qos=1, retain=retain)

    def _publish_head(self, force: bool = False) -> None:
        head = replication.head(self.store)
        last, at = self._head_sent
        now = time.monotonic()
        if force or (head != last and now - at > HEAD_EVERY_S):
            self._publish(self.topics.head, encode(Head(SCHEMA, self.epoch, head)), retain=True)
            self._head_sent = (head, now)

    # -- events ---------------------------------------------------------------------------------
    def _reject(self, item: Inbound, device: str | None, reason: str, detail: str) -> None:
        hubdb.record_reject(self.store, item.topic, device, reason, detail, len(item.payload))

    def _check_batch(self, item: Inbound, device: str, batch: EventBatch) -> bool:
        """Refuse a batch whose device id does not match the sender's topic (credentials)."""
        forged = [e.device for e in batch.events if e.device != device]
        if batch.device != device or forged:
            claimed = batch.device if batch.device != device else forged[0]
            self._reject(item, device, "forged", f"claims device {claimed!r}")
            return False
        return True

    def _ingest(self, batches: list[tuple[str, str, EventBatch]]) -> None:
        store = self.store
        with store.transaction():
            known = self._known([we.id for _d, _t, b in batches for we in b.events])
            try:
                # One savepoint for the round instead of one per event; when an event
                # fails, the round is rolled back and redone event by event.
                with store.transaction(), store.deferring():
                    acks, errors, new, rejects, duplicates = self._apply_round(
                        batches, dict(known), strict=True
                    )
            except _Redo:
                acks, errors, new, rejects, duplicates = self._apply_round(
                    batches, known, strict=False
                )
            seqs = dict(replication.assign_seq(store, [we.id for we in new]))
            if duplicates:
                hubdb.count(store, "duplicates", duplicates)
            if new:
                hubdb.count(store, "applied", len(new))
        for we in new:
            acks[we.device].append((we.id, seqs[we.id]))
        for topic, device, reason, detail in rejects:
            hubdb.record_reject(store, topic, device, reason, detail, 0)
        head = replication.head(store)
        for device in set(acks) | set(errors):
            ack = Ack(SCHEMA, self.epoch, head, acks.get(device, []), errors.get(device, []))
            self._publish(self.topics.ack(device), encode(ack))
        if new:
            sequenced = [msgspec.structs.replace(we, seq=seqs[we.id]) for we in new]
            self._publish_feed(sequenced, head)
            if self.on_applied:
                self.on_applied(len(new))

    def _apply_round(
        self, batches: list[tuple[str, str, EventBatch]], known: dict[str, tuple], *, strict: bool
    ) -> tuple:
        """Apply a round's events; ``strict``: without per-event savepoints, raise _Redo on
        the first event that fails (the caller rolls back and calls again, not strict)."""
        acks: dict[str, list[tuple[str, int]]] = defaultdict(list)
        errors: dict[str, list[tuple[str, str]]] = defaultdict(list)
        new: list[WireEvent] = []
        rejects: list[tuple[str, str, str, str]] = []
        duplicates = 0
        store = self.store
        apply = events.apply_in_batch if strict else events.apply
        for device, topic, batch in batches:
            for we in batch.events:
                row = known.get(we.id)
                if row is not None:
                    # The envelope decides: a payload may legitimately differ once a
                    # GDPR erasure has scrubbed the logged copy on one side.
                    if row[:4] == (we.device, we.hlc, we.type, we.v) and row[5] == we.created_at:
                        duplicates += 1
                        if row[6] is not None:
                            acks[device].append((we.id, row[6]))
                    else:
                        rejects.append((topic, device, "conflict", f"event {we.id} differs"))
                        errors[device].append((we.id, "conflict"))
                    continue
                try:
                    apply(store, we.to_event())
                except events.EventError as exc:
                    if strict:
                        raise _Redo from exc
                    reason = "unsupported" if "support" in str(exc) or "unknown" in str(exc) else "invalid"
                    rejects.append((topic, device, reason, f"{we.id}: {exc}"))
                    if reason == "invalid":
                        errors[device].append((we.id, reason))
                    continue  # unsupported: not acked, the device keeps it for a newer hub
                except ValueError as exc:  # e.g. a clock a day ahead
                    if strict:
                        raise _Redo from exc
                    rejects.append((topic, device, "invalid", f"{we.id}: {exc}"))
                    errors[device].append((we.id, "invalid"))
                    continue
                # a copy later in this round is a duplicate (acked once, with this one)
                known[we.id] = (we.device, we.hlc, we.type, we.v, we.id, we.created_at, None)
                new.append(we)
        return acks, errors, new, rejects, duplicates

    def _known(self, ids: list[str]) -> dict[str, tuple]:
        """Envelope and seq of the events this hub already holds, in one query per 500 ids."""
        out: dict[str, tuple] = {}
        for i in range(0, len(ids), 500):
            part = ids[i : i + 500]
            for row in self.store.db.execute(
                "SELECT device, hlc, type, v, id, created_at, seq FROM events WHERE id IN"
                f" ({','.join('?' * len(part))})",
                part,
            ):
                out[row[4]] = row
        return out

    def _publish_feed(self, sequenced: list[WireEvent], head: int) -> None:
        for part in chunks(sequenced):
            self._publish(self.topics.feed, encode(Feed(SCHEMA, self.epoch, head, part)))

    def _sequence_own(self) -> None:
        """Sequence events written straight into the hub's database (dashboard edits)."""
        ids = replication.unsequenced(self.store)
        if not ids:
            return
        with self.store.transaction():
            seqs = replication.assign_seq(self.store, ids)
        sequenced = [WireEvent.of(events.get(self.store, i), seq) for i, seq in seqs]
        self._publish_feed(sequenced, replication.head(self.store))

    # -- requests and presence ------------------------------------------------------------------
    def _on_replay(self, device: str, req: ReplayRequest) -> None:
        limit = max(1, min(req.limit, REPLAY_MAX))
        found = replication.since(self.store, max(1, req.from_seq), limit)
        part = chunks([WireEvent.of(e) for e in found], max_events=limit,
                      max_bytes=MAX_MESSAGE_BYTES - 32 * 1024)[:1]  # fmt: skip
        sent = part[0] if part else []
        next_seq = sent[-1].seq + 1 if sent else max(1, req.from_seq)
        res = ReplayResponse(SCHEMA, req.transaction, self.epoch, replication.head(self.store),
                             next_seq, sent)  # fmt: skip
        self._publish(self.topics.hub_res(device, "replay"), encode(res))

    def _on_device_state(self, device: str, payload: bytes) -> None:
        hubdb.update_device(self.store, device, state=payload.decode(errors="replace")[:20])

    def _on_device_meta(self, device: str, meta: DeviceMeta) -> None:
        hubdb.update_device(self.store, device, mode=meta.mode, version=meta.version,
                            device_no=meta.device_no)  # fmt: skip

    def _on_device_status(self, device: str, st: DeviceStatus) -> None:
        hubdb.update_device(self.store, device, backlog=st.backlog, feed_seq=st.feed_seq,
                            in_sync=int(st.in_sync), status_at=st.at)  # fmt: skip

    # -- config down -------------------------------------------------------------------------------
    def publish_config(self, name: str, value: Any) -> None:
        """Publish a retained config document (loyalty rules, surveys, directives, media)."""
        self._publish(self.topics.config(name), msgspec.json.encode(value), retain=True)
