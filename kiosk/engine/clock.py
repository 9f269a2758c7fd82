"""Time sources: every timestamp the engine writes is timezone-aware UTC."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from zoneinfo import ZoneInfo

UTC = dt.timezone.utc
SHOP_TZ = ZoneInfo("Europe/Berlin")

Clock = Callable[[], dt.datetime]


def utcnow() -> dt.datetime:
    """Return the current time as an aware UTC datetime."""
    return dt.datetime.now(UTC)


def iso(ts: dt.datetime) -> str:
    """Format an aware datetime as ISO 8601 in UTC; naive datetimes are a bug."""
    if ts.tzinfo is None:
        raise ValueError("naive datetime: the engine only stores timezone-aware times")
    return ts.astimezone(UTC).isoformat(timespec="milliseconds")


def parse_iso(text: str) -> dt.datetime:
    """Parse an ISO timestamp written by `iso`."""
    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError(f"timestamp without timezone: {text!r}")
    return value


def local_date(ts: dt.datetime) -> dt.date:
    """Return the shop-local calendar date of an aware timestamp."""
    return ts.astimezone(SHOP_TZ).date()
