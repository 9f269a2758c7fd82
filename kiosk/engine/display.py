"""The customer display: what it mirrors of the till's basket, and the shop's media.

The till turns its current quote into a :class:`Snapshot` (plain data, no personal details
beyond the first name and points) and publishes it to its display over MQTT after every
change; the display only renders snapshots. Media (images, a looping video, or a web page URL)
are a shop setting edited on the hub.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import msgspec

from kiosk.engine import settings
from kiosk.i18n import N_, _

MEDIA_KINDS = ("image", "video", "url")


def _check_media(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or len(value) > 50:
        raise settings.SettingError(_("Expected a list of at most 50 media."))
    out = []
    for item in value:
        if not isinstance(item, dict) or item.get("kind") not in MEDIA_KINDS:
            raise settings.SettingError(_("Each medium is an image, a video or a web page."))
        src = str(item.get("src") or "").strip()
        if not src or len(src) > 500:
            raise settings.SettingError(_("Each medium needs a file or address."))
        seconds = int(item.get("seconds", 10))
        if not 1 <= seconds <= 3600:
            raise settings.SettingError(_("Show each medium for 1 to 3600 seconds."))
        out.append({"kind": item["kind"], "src": src, "seconds": seconds})
    return out


settings.define("display.media", [], _check_media,
                N_("Images, videos or a web page the customer display shows"))  # fmt: skip
settings.define("display.show_points", True, settings.check_bool,
                N_("Show the customer's points on the customer display"))  # fmt: skip


@dataclass(frozen=True)
class SnapshotLine:
    name: str
    qty: int
    total_cents: int
    discount_cents: int = 0


@dataclass(frozen=True)
class Snapshot:
    till: str
    seq: int  # increases with every change: the display drops older ones
    lines: tuple[SnapshotLine, ...] = ()
    discount_cents: int = 0
    total_cents: int = 0
    due_cents: int = 0
    change_cents: int = 0
    greeting: str = ""  # "Hallo Anna" when a customer is attached
    points_balance: int | None = None
    points_to_earn: int | None = None
    qr: tuple[tuple[str, str], ...] = field(default=())  # (caption, data) e.g. clipad web form
    idle: bool = False

    def encode(self) -> bytes:
        return msgspec.json.encode(asdict(self))

    @classmethod
    def decode(cls, data: bytes) -> "Snapshot":
        raw = msgspec.json.decode(data)
        if not isinstance(raw, dict) or not isinstance(raw.get("till"), str):
            raise ValueError("not a basket snapshot")
        raw["lines"] = tuple(SnapshotLine(**ln) for ln in raw.get("lines") or ())
        raw["qr"] = tuple(tuple(q) for q in raw.get("qr") or ())
        return cls(**raw)


def snapshot(store, quote, seq: int, *, qr: list[tuple[str, str]] = ()) -> Snapshot:
    """The display's view of a sale quote (``sale.quote(...)``); ``None`` quote = idle."""
    if quote is None or not quote.lines:
        return Snapshot(store.identity.device_id, seq, qr=tuple(qr), idle=not qr)
    lines = tuple(SnapshotLine(ln.name, ln.qty, ln.total_cents, ln.discount_cents)
                  for ln in quote.lines)  # fmt: skip
    show_points = settings.get(store, "display.show_points") and quote.customer is not None
    first = (quote.customer or {}).get("first_name") or ""
    return Snapshot(
        store.identity.device_id, seq, lines, quote.discount_cents, quote.total_cents,
        quote.due_cents, quote.change_cents,
        greeting=_("Hello {name}").format(name=first) if first else "",
        points_balance=quote.loyalty.balance if show_points else None,
        points_to_earn=quote.points_to_earn if show_points else None,
        qr=tuple(qr),
    )  # fmt: skip
