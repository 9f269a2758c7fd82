"""Hybrid logical clock: orders events across devices whose wall clocks disagree.

A timestamp is the string ``<wall ms, 15 digits>.<counter, 5 digits>.<node>``; the fixed widths
make string order equal to clock order, so SQLite can compare them directly.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from kiosk.engine.clock import utcnow

MAX_DRIFT_MS = 24 * 3600 * 1000  # a remote clock this far ahead is refused, not adopted


@dataclass(frozen=True, order=True)
class Timestamp:
    wall_ms: int
    counter: int
    node: str

    def __str__(self) -> str:
        return f"{self.wall_ms:015d}.{self.counter:05d}.{self.node}"

    @classmethod
    def parse(cls, text: str) -> "Timestamp":
        try:
            wall, counter, node = text.split(".", 2)
            return cls(int(wall), int(counter), node)
        except ValueError as exc:
            raise ValueError(f"not a hybrid logical clock timestamp: {text!r}") from exc


def _wall_ms() -> int:
    return int(utcnow().timestamp() * 1000)


class HybridClock:
    """Thread-safe HLC for one node (device or hub)."""

    def __init__(self, node: str, last: str | None = None, wall: Callable[[], int] = _wall_ms):
        self.node = node
        self._wall = wall
        self._lock = threading.Lock()
        self._last = Timestamp.parse(last) if last else Timestamp(0, 0, node)

    def now(self) -> str:
        """Return a new timestamp greater than every one seen so far."""
        with self._lock:
            wall = self._wall()
            if wall > self._last.wall_ms:
                self._last = Timestamp(wall, 0, self.node)
            else:
                self._last = Timestamp(self._last.wall_ms, self._last.counter + 1, self.node)
            return str(self._last)

    def observe(self, remote: str) -> None:
        """Advance past a timestamp received from another node."""
        ts = Timestamp.parse(remote)
        with self._lock:
            wall = self._wall()
            if ts.wall_ms - wall > MAX_DRIFT_MS:
                raise ValueError(f"remote clock {remote} is more than a day ahead of ours")
            if ts.wall_ms > self._last.wall_ms or (
                ts.wall_ms == self._last.wall_ms and ts.counter > self._last.counter
            ):
                self._last = Timestamp(ts.wall_ms, ts.counter, self.node)
