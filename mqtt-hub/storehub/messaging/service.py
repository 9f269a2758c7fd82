"""The hub's messaging loop and the ``storehub messaging`` command.

Every ``interval`` seconds: run the scheduled automations (each idempotent), then send what is
due. Channels are built from the hub-local encrypted credentials, so changing a password needs
no restart. ``storehub messaging configure email --host … --password-file …`` stores them.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import threading
from pathlib import Path

from kiosk.engine import messaging
from kiosk.engine.store import Store
from storehub.messaging.channels import (
    Channel, EmailChannel, GsmModemChannel, HttpSmsChannel, WhatsAppCloudChannel,
)  # fmt: skip
from storehub.messaging.dispatch import Dispatcher, load_credentials, save_credentials

_LOGGER = logging.getLogger(__name__)

KINDS = {
    "email": (EmailChannel, "email"),
    "sms_modem": (GsmModemChannel, "sms"),
    "sms_http": (HttpSmsChannel, "sms"),
    "whatsapp": (WhatsAppCloudChannel, "whatsapp"),
}


def build_channels(store: Store) -> dict[str, Channel]:
    """Channels from stored credentials; an SMS modem wins over an HTTP gateway."""
    out: dict[str, Channel] = {}
    for kind in ("sms_http", "sms_modem", "email", "whatsapp"):
        conf = load_credentials(store, kind)
        if conf:
            cls, name = KINDS[kind]
            out[name] = cls(**conf)
    return out


class MessagingService(threading.Thread):
    def __init__(self, store: Store, interval_s: float = 60.0) -> None:
        super().__init__(name="messaging", daemon=True)
        self.store = store.clone()  # own connection: this runs on its own thread
        self.interval_s = interval_s
        self.stopping = threading.Event()

    def tick(self) -> dict[str, int]:
        counts = messaging.run_automations(self.store, self.store.clock())
        channels = build_channels(self.store)
        report = Dispatcher(self.store, channels).run_once()
        for ch in channels.values():
            getattr(ch, "close", lambda: None)()
        return {**counts, "sent": report.sent, "failed": report.failed,
                "bounced": report.bounced, "deferred": report.deferred}  # fmt: skip

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                counts = self.tick()
                if any(counts.values()):
                    _LOGGER.info("messaging: %s", counts)
            except Exception:  # a bad run must not end the loop; it is logged and retried
                _LOGGER.exception("messaging run failed")
            self.stopping.wait(self.interval_s)

    def stop(self) -> None:
        self.stopping.set()
        self.join(10)
        self.store.close()


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("messaging", help="configure message channels, send what is due")
    p.add_argument("--db", type=Path, default=Path("/var/lib/storehub/hub.db"))
    p.add_argument("--store", required=True)
    acts = p.add_subparsers(dest="messaging_action", required=True)
    conf = acts.add_parser("configure", help="store a channel's settings (encrypted)")
    conf.add_argument("kind", choices=sorted(KINDS))
    conf.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="e.g. host=mail.example.org port=587 sender=laden@example.org")
    conf.add_argument("--secret-file", type=Path,
                      help="file holding the password / token (read, never echoed)")
    acts.add_parser("run-once", help="run the automations and send what is due now")
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    from kiosk.engine.store import Identity
    from kiosk.sync_protocol import HUB

    store = Store(args.db, Identity(args.store, HUB, 99))
    try:
        if args.messaging_action == "configure":
            values: dict = {}
            for item in args.set:
                key, sep, value = item.partition("=")
                if not sep:
                    print(f"storehub: write KEY=VALUE, not {item!r}")
                    return 2
                values[key] = int(value) if value.isdigit() and key in ("port", "baudrate") else value
            secret_key = {"email": "password", "sms_http": "token", "whatsapp": "token"}.get(args.kind)
            if secret_key:
                values[secret_key] = (args.secret_file.read_text().strip() if args.secret_file
                                      else getpass.getpass(f"{secret_key}: "))  # fmt: skip
            cls, _name = KINDS[args.kind]
            try:
                cls(**values)
            except TypeError as exc:
                print(f"storehub: {exc}")
                return 2
            save_credentials(store, args.kind, values)
            print(f"{args.kind}: saved")
        else:
            print(MessagingService(store).tick())
        return 0
    finally:
        store.close()
