"""systemd readiness and watchdog notifications (the sd_notify protocol, no libsystemd needed).

The kiosk unit is ``Type=notify`` with ``WatchdogSec``: the app sends ``READY=1`` once its
window is up and then ``WATCHDOG=1`` from the Kivy main loop. A UI thread that hangs stops
the pings and systemd restarts the app. Outside systemd (no ``NOTIFY_SOCKET``) every call is a
no-op, so development and tests run unchanged.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from typing import Any

_LOGGER = logging.getLogger(__name__)


def notify(state: str, env: dict[str, str] | None = None) -> bool:
    """Send ``state`` (e.g. ``"READY=1"``) to systemd; False when not run by systemd."""
    env = os.environ if env is None else env
    address = env.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # abstract namespace socket
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError as exc:
        _LOGGER.warning("sd_notify %s failed: %s", state, exc)
        return False
    return True


def watchdog_interval(env: dict[str, str] | None = None) -> float | None:
    """Seconds between watchdog pings (half the unit's WatchdogSec), or None if none is set."""
    env = os.environ if env is None else env
    usec = env.get("WATCHDOG_USEC")
    pid = env.get("WATCHDOG_PID")
    if not usec or (pid and int(pid) != os.getpid()):
        return None
    return int(usec) / 2_000_000


def start(schedule_interval: Callable[[Callable[[Any], Any], float], Any],
          env: dict[str, str] | None = None) -> Any:  # fmt: skip
    """Report readiness and ping the watchdog through the UI loop's ``schedule_interval``.

    Pings come from the main loop on purpose: a worker thread would keep pinging while the
    window is frozen.
    """
    notify("READY=1", env)
    interval = watchdog_interval(env)
    if interval is None:
        return None
    return schedule_interval(lambda _dt: notify("WATCHDOG=1", env), interval)
