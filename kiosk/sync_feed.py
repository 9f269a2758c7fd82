"""Following the hub's feed: apply sequenced events, spot gaps, ask for replays.

Used by devices (kiosk.sync) and by head office (one follower per store). No MQTT here: the
follower gets decoded messages and a ``request`` function that sends a replay request.

    live feed ──> apply ──> cursor advances over contiguous seqs
                                │ cursor < hub head (gap, lost tail, after reconnect)
                                v
                      cmd/replay from cursor+1 ──> res/replay ──> apply ──> (repeat)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from kiosk.engine import replication
from kiosk.engine.store import Store
from kiosk.sync_protocol import SCHEMA, Feed, Head, ReplayRequest, ReplayResponse

_LOGGER = logging.getLogger(__name__)

REPLAY_LIMIT = 2000
REPLAY_TIMEOUT_S = 10.0
IDLE_RETRY_S = 3.0  # ask again after a reply that brought nothing new


class FeedFollower:
    """Keep one replica's copy of the store's sequenced events complete."""

    def __init__(
        self,
        store: Store,
        request: Callable[[ReplayRequest], None],
        *,
        now: Callable[[], float] = time.monotonic,
        new_id: Callable[[], str] | None = None,
    ) -> None:
        from kiosk.engine.events import new_id as _new_id

        self.store = store
        self._request = request
        self._now = now
        self._new_id = new_id or _new_id
        self.head = 0
        self.cursor = replication.cursor(store)
        self.pending: tuple[str, float] | None = None
        self._last_request = -1e9
        self._quiet_until = 0.0
        self.applied = 0

    @property
    def caught_up(self) -> bool:
        return self.pending is None and self.cursor >= self.head

    def reset(self) -> None:
        """Forget a pending request (the link went down)."""
        self.pending = None
        self._quiet_until = 0.0

    def _epoch(self, epoch: str) -> None:
        if replication.adopt_epoch(self.store, epoch):
            self.cursor = 0
            self.head = 0
            self.pending = None

    def on_head(self, msg: Head) -> None:
        self._epoch(msg.epoch)
        self.head = max(self.head, msg.head)
        self.tick()

    def on_feed(self, msg: Feed) -> None:
        self._epoch(msg.epoch)
        applied, self.cursor = replication.apply_sequenced(
            self.store, [e.to_event() for e in msg.events]
        )
        self.applied += applied
        self.head = max(self.head, msg.head, self.cursor)
        if self.cursor < self.head:
            self.tick()

    def on_replay(self, msg: ReplayResponse) -> None:
        self._epoch(msg.epoch)
        before = self.cursor
        applied, self.cursor = replication.apply_sequenced(
            self.store, [e.to_event() for e in msg.events]
        )
        self.applied += applied
        self.head = max(self.head, msg.head)
        if self.pending and self.pending[0] == msg.transaction:
            self.pending = None
            if self.cursor == before and self.cursor < self.head:
                # nothing usable came back (e.g. an event this version cannot apply)
                self._quiet_until = self._now() + IDLE_RETRY_S
        self.tick()

    def tick(self, force: bool = False) -> None:
        """Send a replay request when behind (or ``force``) and none is outstanding."""
        now = self._now()
        if self.pending and now - self.pending[1] > REPLAY_TIMEOUT_S:
            _LOGGER.info("replay request %s timed out", self.pending[0])
            self.pending = None
        if self.pending:
            return
        if not force and (self.cursor >= self.head or now < self._quiet_until):
            return
        txn = self._new_id()
        self.pending = (txn, now)
        self._last_request = now
        self._request(ReplayRequest(SCHEMA, txn, self.cursor + 1, REPLAY_LIMIT))

    def request_now(self) -> None:
        """Ask for everything above the cursor (after a reconnect the head is unknown)."""
        self._quiet_until = 0.0
        self.tick(force=True)
