"""An embedded MQTT broker (amqtt) for a single machine: the demo needs nothing installed.

Production stores run Mosquitto with the files in mqtt-hub/mosquitto/ (TLS, one password per
device, ACL). The embedded broker listens on loopback by default, accepts anonymous clients
and keeps nothing on disk; that is fine because the protocol never relies on the broker
keeping messages.
"""

from __future__ import annotations

import asyncio
import logging
import threading

_LOGGER = logging.getLogger(__name__)


class EmbeddedBroker:
    """Run amqtt's broker in a background thread with its own event loop."""

    def __init__(self, host: str = "127.0.0.1", port: int = 1883) -> None:
        self.host = host
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._broker = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None

    def config(self) -> dict:
        return {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }

    def start(self, timeout: float = 15.0) -> "EmbeddedBroker":
        self._thread = threading.Thread(target=self._main, name="amqtt", daemon=True)
        self._thread.start()
        if not self._started.wait(timeout):
            raise RuntimeError("the embedded broker did not start")
        if self._error:
            raise RuntimeError(f"the embedded broker did not start: {self._error}") from self._error
        _LOGGER.info("embedded MQTT broker listening on %s:%s", self.host, self.port)
        return self

    def _main(self) -> None:
        from amqtt.broker import Broker

        loop = self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            self._broker = Broker(self.config(), loop=loop)
            loop.run_until_complete(self._broker.start())
        except BaseException as exc:  # reported to start()
            self._error = exc
            self._started.set()
            loop.close()
            return
        self._started.set()
        loop.run_forever()
        try:
            loop.run_until_complete(self._broker.shutdown())
        finally:
            # client handlers still running would be torn down by the garbage collector after
            # the loop is closed (ResourceWarnings); end them while the loop still runs
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def stop(self) -> None:
        if self._loop and self._thread and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(15)
