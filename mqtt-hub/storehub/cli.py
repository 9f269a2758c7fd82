"""The ``storehub`` command: ``storehub run``, ``storehub init``, ``storehub enrol <device>``.

Every subcommand is a module function ``add_parser(subparsers)`` that adds its parser and sets
``func``; :data:`COMMANDS` lists them, so another command is one more line there.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
import threading
from pathlib import Path

COMMANDS = [
    "storehub.cli:add_run_parser",
    "storehub.cli:add_enrol_parser",
    "storehub.cli:add_init_parser",
    "storehub.messaging.service:add_parser",
    "storehub.dashboard.cli:add_parser",
]


def add_run_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run the store hub (and an embedded broker with --embedded)")
    p.add_argument("--store", required=True, help="store id, e.g. laden-koeln")
    p.add_argument("--db", type=Path, default=Path("/var/lib/storehub/hub.db"))
    p.add_argument("--host", default="127.0.0.1", help="broker host")
    p.add_argument("--port", type=int, default=1883, help="broker port")
    p.add_argument("--username", default=None)
    p.add_argument("--password-file", type=Path, default=None)
    p.add_argument("--secret-key-file", type=Path, default=None)
    p.add_argument("--embedded", action="store_true",
                   help="start an embedded amqtt broker on --host/--port (nothing to install)")
    p.add_argument("--messaging-interval", type=float, default=60.0,
                   help="seconds between automation runs and sending what is due (0: off)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from kiosk.config import HubConfig
    from kiosk.engine import search
    from kiosk.engine.store import Identity, Store
    from kiosk.sync_protocol import HUB
    from storehub.hub import Hub

    broker = None
    if args.embedded:
        from storehub.broker import EmbeddedBroker

        broker = EmbeddedBroker(args.host, args.port).start()
    args.db.parent.mkdir(parents=True, exist_ok=True)
    key = args.secret_key_file.read_bytes().strip() if args.secret_key_file else None
    store = Store(args.db, Identity(args.store, HUB, 99), secret_key=key)
    # WAL checkpoints off the ingest path; the dashboard's search index merged in small steps
    store.start_checkpointer(upkeep=[search.IndexUpkeep()])
    cfg = HubConfig(host=args.host, port=args.port, username=args.username,
                    password_file=args.password_file)  # fmt: skip
    hub = Hub(store, cfg)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_a: done.set())
    hub.start()
    messaging = None
    if args.messaging_interval > 0:
        from storehub.messaging.service import MessagingService

        messaging = MessagingService(store, args.messaging_interval)
        messaging.start()
    logging.getLogger(__name__).info("store hub %s running (epoch %s)", args.store, hub.epoch)
    try:
        done.wait()
    finally:
        if messaging:
            messaging.stop()
        hub.stop()
        store.close()
        if broker:
            broker.stop()
    return 0


def add_enrol_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("enrol", help="create a device's broker credentials, ACL entry and config")
    p.add_argument("device", help="device id, e.g. till-1")
    p.add_argument("--store", required=True)
    p.add_argument("--dir", type=Path, default=Path("/etc/storehub/mosquitto"),
                   help="broker config directory (passwd, acl, devices/)")
    p.add_argument("--mode", default="till")
    p.add_argument("--device-no", type=int, default=None)
    p.add_argument("--host", default="127.0.0.1", help="broker address the device connects to")
    p.add_argument("--port", type=int, default=1883)
    p.add_argument("--tls", action="store_true")
    p.add_argument("--ca-file", type=Path, default=None, help="CA the device trusts (TLS)")
    p.set_defaults(func=_enrol)


def _enrol(args: argparse.Namespace) -> int:
    from storehub.enrol import EnrolError, enrol

    try:
        res = enrol(args.dir, args.store, args.device, mode=args.mode, device_no=args.device_no,
                    host=args.host, port=args.port, tls=args.tls,
                    ca_file=args.ca_file)  # fmt: skip
    except EnrolError as exc:
        print(f"storehub enrol: {exc}", file=sys.stderr)
        return 2
    print(f"enrolled {res.device}: config {res.toml_path}, password {res.password_path}")
    print("reload the broker to pick up the new password and ACL: kill -HUP <mosquitto pid>")
    return 0


def add_init_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("init", help="write the store's Mosquitto config (TLS, passwords, ACL)")
    p.add_argument("--dir", type=Path, default=Path("/etc/storehub/mosquitto"))
    p.add_argument("--certfile", type=Path, required=True)
    p.add_argument("--keyfile", type=Path, required=True)
    p.add_argument("--tls-port", type=int, default=8883)
    p.add_argument("--local-port", type=int, default=1883)
    p.add_argument("--bind", default="0.0.0.0")
    p.add_argument("--store", help="store id (with --headoffice)")
    p.add_argument("--headoffice", metavar="HOST:PORT", help="bridge to a head-office broker")
    p.add_argument("--headoffice-user", default=None)
    p.add_argument("--headoffice-password-file", type=Path, default=None)
    p.set_defaults(func=_init)


def _init(args: argparse.Namespace) -> int:
    from storehub.enrol import init_broker, render_bridge

    bridge = ""
    if args.headoffice:
        if not (args.store and args.headoffice_user and args.headoffice_password_file):
            print("storehub init: --headoffice needs --store, --headoffice-user and "
                  "--headoffice-password-file", file=sys.stderr)  # fmt: skip
            return 2
        bridge = render_bridge(args.store, args.headoffice, args.headoffice_user,
                               args.headoffice_password_file.read_text().strip())  # fmt: skip
    path = init_broker(args.dir, tls_port=args.tls_port, local_port=args.local_port,
                       bind=args.bind, certfile=args.certfile, keyfile=args.keyfile,
                       bridge=bridge)  # fmt: skip
    print(f"wrote {path}; enrol devices with: storehub enrol <device> --dir {args.dir}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="storehub", description="Store hub")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    for ref in COMMANDS:
        module, func = ref.split(":")
        getattr(importlib.import_module(module), func)(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")  # fmt: skip
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
