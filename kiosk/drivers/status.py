"""Status reporting: each driver publishes changes; the board keeps the latest of each.

Drivers publish only when what they would say changes, so a printer polled every few seconds
does not flood the UI (or, later, the hub's device-health topic).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from kiosk.drivers.base import Callbacks, DeviceStatus, State


class StatusReporter:
    """Mixin for drivers: remembers the last status and publishes changes through callbacks."""

    name: str
    kind: str
    callbacks: Callbacks

    def _init_status(self, message: str) -> None:
        self._status_lock = threading.Lock()
        self._status = DeviceStatus(self.name, self.kind, State.STARTING, message)

    @property
    def status(self) -> DeviceStatus:
        return self._status

    def _publish(self, state: State, message: str, **details: Any) -> DeviceStatus:
        """Set the status; call the status callback only when it changed."""
        new = DeviceStatus(self.name, self.kind, state, message, details)
        with self._status_lock:
            if new.same_as(self._status):
                return self._status
            self._status = new
        self.callbacks.call("status", new)
        return new


class StatusBoard:
    """Latest status of every configured device, for the status bar and ``kiosk drivers``."""

    def __init__(self, on_change: Callable[[DeviceStatus], None] | None = None) -> None:
        self._lock = threading.Lock()
        self._latest: dict[str, DeviceStatus] = {}
        self._on_change = on_change

    def update(self, status: DeviceStatus) -> None:
        with self._lock:
            self._latest[status.driver] = status
        if self._on_change is not None:
            self._on_change(status)

    def get(self, driver: str) -> DeviceStatus | None:
        with self._lock:
            return self._latest.get(driver)

    def snapshot(self) -> list[DeviceStatus]:
        with self._lock:
            return sorted(self._latest.values(), key=lambda s: (s.kind, s.driver))

    def problems(self) -> list[DeviceStatus]:
        """Devices that need attention (for a red/amber badge on the till)."""
        return [s for s in self.snapshot() if s.state not in (State.OK, State.STOPPED)]
