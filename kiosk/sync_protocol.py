"""The wire protocol between devices, the store hub and head office (see mqtt-hub/PROTOCOL.md).

Topics live under ``retail/v1/<store>/<device>/…``; everything the hub publishes lives under
the hub's own device id ``hub``. Payloads are msgspec structs encoded as JSON: decoding checks
every field's type, and :func:`decode` refuses oversized messages and unknown schema versions
before anything reaches the database.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from kiosk.engine import events

ROOT = "retail/v1"
SCHEMA = 1  # version of the envelopes below; events carry their own payload version ``v``
HUB = "hub"  # the hub's device id: its topics are the store's downlink
HEADOFFICE = "headoffice"  # head office follows every store's feed like a read-only device

MAX_MESSAGE_BYTES = 512 * 1024  # refused above this, before decoding
BATCH_BYTES = 192 * 1024  # senders cut batches well below the limit
BATCH_EVENTS = 200

# Homie lifecycle states (retained ``$state``); the Last Will sets ``lost``.
STATES = ("init", "ready", "sleeping", "disconnected", "lost", "alert")


class ProtocolError(ValueError):
    """A message is malformed, oversized or of an unsupported schema; ``reason`` is a code."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


class WireEvent(msgspec.Struct, frozen=True):
    """One event as it travels: the event log row, ``seq`` once the hub has sequenced it."""

    id: str
    device: str
    hlc: str
    type: str
    v: int
    payload: dict[str, Any]
    created_at: str
    seq: int | None = None

    @classmethod
    def of(cls, ev: events.Event, seq: int | None = None) -> "WireEvent":
        return cls(ev.id, ev.device, ev.hlc, ev.type, ev.v, ev.payload, ev.created_at,
                   ev.seq if seq is None else seq)  # fmt: skip

    def to_event(self) -> events.Event:
        return events.Event(self.id, self.device, self.hlc, self.type, self.v,
                            self.payload, self.created_at, self.seq)  # fmt: skip


class EventBatch(msgspec.Struct, frozen=True):
    """Device → hub (``<device>/evt/batch``): unacknowledged events from the outbox."""

    schema: int
    device: str
    events: list[WireEvent]


class Ack(msgspec.Struct, frozen=True):
    """Hub → device (``hub/ack/<device>``): ``[event id, seq]`` per stored event; refused ones
    come back in ``errors`` as ``[event id, reason]`` so the device stops re-sending them."""

    schema: int
    epoch: str
    head: int
    acks: list[tuple[str, int]]
    errors: list[tuple[str, str]] = []


class Feed(msgspec.Struct, frozen=True):
    """Hub → store (``hub/feed``): events accepted by the hub with their store sequence."""

    schema: int
    epoch: str
    head: int
    events: list[WireEvent]


class Head(msgspec.Struct, frozen=True):
    """Hub → store (``hub/head``, retained): the newest sequence number, to spot a lost tail."""

    schema: int
    epoch: str
    head: int


class ReplayRequest(msgspec.Struct, frozen=True):
    """Device → hub (``<device>/cmd/replay``): send sequenced events from ``from_seq`` on."""

    schema: int
    transaction: str
    from_seq: int
    limit: int = 1000


class ReplayResponse(msgspec.Struct, frozen=True):
    """Hub → device (``hub/res/<device>/replay``); ``next_seq`` is where to continue."""

    schema: int
    transaction: str
    epoch: str
    head: int
    next_seq: int
    events: list[WireEvent]


class Command(msgspec.Struct, frozen=True):
    """Hub → device (``hub/cmd/<device>/<name>``): e.g. ``resync`` or ``resend``."""

    schema: int
    transaction: str
    args: dict[str, Any] = {}


class CommandResult(msgspec.Struct, frozen=True):
    """Device → hub (``<device>/res/<name>``), echoing the command's transaction id."""

    schema: int
    transaction: str
    ok: bool
    detail: str = ""


class DeviceMeta(msgspec.Struct, frozen=True):
    """Device → all (``<device>/$meta``, retained)."""

    schema: int
    mode: str
    version: str
    device_no: int = 0


class DeviceStatus(msgspec.Struct, frozen=True):
    """Device → all (``<device>/status``, retained): the sync view the dashboard shows."""

    schema: int
    backlog: int
    feed_seq: int
    hub_seq: int
    in_sync: bool
    at: str


_encoder = msgspec.json.Encoder()
encode = _encoder.encode

T = TypeVar("T")
_decoders: dict[type, msgspec.json.Decoder] = {}


def decode(data: bytes, kind: type[T]) -> T:
    """Decode and type-check one message; raise ProtocolError naming the reason."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise ProtocolError("oversized", f"{len(data)} bytes")
    decoder = _decoders.get(kind)
    if decoder is None:
        decoder = _decoders[kind] = msgspec.json.Decoder(kind)
    try:
        msg = decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise ProtocolError("malformed", str(exc)) from exc
    except msgspec.DecodeError as exc:
        raise ProtocolError("malformed", str(exc)) from exc
    if getattr(msg, "schema", SCHEMA) != SCHEMA:
        raise ProtocolError("schema", f"schema {msg.schema} is not supported")  # type: ignore[attr-defined]
    return msg


def chunks(items: list[WireEvent], max_events: int = BATCH_EVENTS,
           max_bytes: int = BATCH_BYTES) -> list[list[WireEvent]]:  # fmt: skip
    """Split events into lists that each encode below ``max_bytes``."""
    out: list[list[WireEvent]] = []
    current: list[WireEvent] = []
    size = 0
    for item in items:
        n = len(encode(item)) + 1
        if current and (len(current) >= max_events or size + n > max_bytes):
            out.append(current)
            current, size = [], 0
        current.append(item)
        size += n
    if current:
        out.append(current)
    return out


class Topics:
    """Topic names of one store."""

    def __init__(self, store_id: str) -> None:
        self.store_id = store_id
        self.base = f"{ROOT}/{store_id}"

    # device → hub (under the device's own branch; the ACL lets it write nowhere else)
    def events(self, device: str) -> str:
        return f"{self.base}/{device}/evt/batch"

    def state(self, device: str) -> str:
        return f"{self.base}/{device}/$state"

    def meta(self, device: str) -> str:
        return f"{self.base}/{device}/$meta"

    def status(self, device: str) -> str:
        return f"{self.base}/{device}/status"

    def cmd(self, device: str, name: str) -> str:
        return f"{self.base}/{device}/cmd/{name}"

    def res(self, device: str, name: str) -> str:
        return f"{self.base}/{device}/res/{name}"

    # hub → devices (the store's downlink)
    @property
    def feed(self) -> str:
        return f"{self.base}/{HUB}/feed"

    @property
    def head(self) -> str:
        return f"{self.base}/{HUB}/head"

    def ack(self, device: str) -> str:
        return f"{self.base}/{HUB}/ack/{device}"

    def hub_res(self, device: str, name: str) -> str:
        return f"{self.base}/{HUB}/res/{device}/{name}"

    def hub_cmd(self, device: str, name: str) -> str:
        return f"{self.base}/{HUB}/cmd/{device}/{name}"

    def config(self, name: str) -> str:
        return f"{self.base}/{HUB}/config/{name}"

    def device_of(self, topic: str) -> str:
        """Return the device id of a topic under this store."""
        return topic[len(self.base) + 1 :].split("/", 1)[0]
