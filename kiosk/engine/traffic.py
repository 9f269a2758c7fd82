"""Shop traffic from door counters: people counted per shop-local hour, as events.

A counter driver hands out deltas ("7 people in between 10:00 and 11:00, flush f-123"); each is
recorded with :func:`record` as a ``traffic.counted`` event. The projection is a ledger keyed
by the flush id, so a delta recorded twice (a retry, a replayed event at the hub) counts once,
and counts from several devices or counters simply add up.

Visits per hour: ``in`` counts one visit each, ``out`` none, and a direction-less beam's
``pass`` counts ``1 / per_visit`` (a beam crossed on the way in and out: per_visit = 2).
The hub divides sales by visits for the conversion rate.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Migrations

from kiosk.engine import events
from kiosk.engine.clock import SHOP_TZ, iso, parse_iso
from kiosk.engine.store import Store, register_migrations
from kiosk.i18n import _

migrations = register_migrations(Migrations("kiosk.traffic"))

DIRECTIONS = ("in", "out", "pass")
_COUNTER_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")


@migrations()
def m001_traffic_counts(db) -> None:
    db.execute(
        """
        CREATE TABLE traffic_counts (
            flush_id TEXT PRIMARY KEY,
            event_id TEXT NOT NULL,
            device TEXT NOT NULL,
            counter TEXT NOT NULL,
            hour_start TEXT NOT NULL,
            local_date TEXT NOT NULL,
            local_hour INTEGER NOT NULL,
            direction TEXT NOT NULL,
            count INTEGER NOT NULL,
            per_visit INTEGER NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX traffic_counts_date ON traffic_counts(local_date, local_hour)")


class TrafficError(ValueError):
    """A count is malformed; nothing was recorded."""


@dataclass(frozen=True)
class HourTraffic:
    hour_start: dt.datetime  # shop-local, aware
    entered: int  # "in"
    left: int  # "out"
    passes: int  # direction-less beam crossings
    visits: int


def _check(counter: str, hour_start: dt.datetime, direction: str, count: int, per_visit: int,
           flush_id: str) -> None:
    if not isinstance(counter, str) or not _COUNTER_RE.match(counter):
        raise TrafficError(_("counter name must be lowercase letters, digits and '-'"))
    if not isinstance(hour_start, dt.datetime) or hour_start.tzinfo is None:
        raise TrafficError(_("hour_start must be a timezone-aware time"))
    local = hour_start.astimezone(SHOP_TZ)
    if (local.minute, local.second, local.microsecond) != (0, 0, 0):
        raise TrafficError(_("hour_start must be the start of an hour"))
    if direction not in DIRECTIONS:
        raise TrafficError(_("direction must be in, out or pass"))
    if isinstance(count, bool) or not isinstance(count, int) or not 0 < count <= 100_000:
        raise TrafficError(_("count must be a positive whole number"))
    if isinstance(per_visit, bool) or not isinstance(per_visit, int) or not 1 <= per_visit <= 10:
        raise TrafficError(_("per_visit must be 1–10"))
    if not isinstance(flush_id, str) or not 8 <= len(flush_id) <= 64:
        raise TrafficError(_("flush_id is missing"))


def record(
    store: Store,
    *,
    counter: str,
    hour_start: dt.datetime,
    direction: str,
    count: int,
    per_visit: int = 1,
    flush_id: str,
) -> events.Event | None:
    """Record counted people; returns None (and writes nothing) when the flush is known."""
    _check(counter, hour_start, direction, count, per_visit, flush_id)
    with store.transaction():
        known = store.db.execute(
            "SELECT 1 FROM traffic_counts WHERE flush_id = ?", [flush_id]
        ).fetchone()
        if known:
            return None
        return events.emit(
            store,
            "traffic.counted",
            {
                "counter": counter,
                "hour_start": iso(hour_start),
                "direction": direction,
                "count": count,
                "per_visit": per_visit,
                "flush_id": flush_id,
            },
        )


def record_delta(store: Store, delta: Any) -> events.Event | None:
    """Record a driver's CountDelta (duck-typed: the engine does not import drivers)."""
    return record(
        store,
        counter=delta.counter,
        hour_start=delta.hour_start,
        direction=delta.direction,
        count=delta.count,
        per_visit=delta.per_visit,
        flush_id=delta.flush_id,
    )


@events.handler("traffic.counted")
def _apply_counted(store: Store, ev: events.Event) -> None:
    p = ev.payload
    local = parse_iso(p["hour_start"]).astimezone(SHOP_TZ)
    store.db.execute(
        "INSERT OR IGNORE INTO traffic_counts (flush_id, event_id, device, counter, hour_start,"
        " local_date, local_hour, direction, count, per_visit)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            p["flush_id"], ev.id, ev.device, p["counter"], p["hour_start"],
            local.date().isoformat(), local.hour, p["direction"], int(p["count"]),
            int(p.get("per_visit", 1)),
        ],
    )


def hourly(store: Store, day: dt.date) -> list[HourTraffic]:
    """Counted people per shop-local hour of ``day`` (only hours with counts)."""
    rows = store.db.execute(
        "SELECT hour_start, direction, per_visit, SUM(count) FROM traffic_counts"
        " WHERE local_date = ? GROUP BY hour_start, direction, per_visit ORDER BY hour_start",
        [day.isoformat()],
    ).fetchall()
    hours: dict[dt.datetime, dict[str, int]] = {}
    for hour_text, direction, per_visit, total in rows:
        # keyed in UTC: the two local 02:00 hours of the autumn DST night compare equal
        hour = parse_iso(hour_text).astimezone(dt.timezone.utc)
        acc = hours.setdefault(hour, {"in": 0, "out": 0, "pass": 0, "visits": 0})
        acc[direction] += total
        if direction == "in":
            acc["visits"] += total
        elif direction == "pass":
            acc["visits"] += total // per_visit
    return [
        HourTraffic(h.astimezone(SHOP_TZ), a["in"], a["out"], a["pass"], a["visits"])
        for h, a in sorted(hours.items())
    ]


def visits(store: Store, day: dt.date) -> int:
    return sum(h.visits for h in hourly(store, day))
