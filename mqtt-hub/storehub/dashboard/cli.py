"""``storehub dashboard``: serve the dashboard, or add a user (``--add-user``)."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("dashboard", help="serve the owner's web dashboard")
    configure(p)
    return p


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", type=Path, default=Path("/var/lib/storehub/hub.db"),
                   help="the hub's SQLite file (as for storehub run)")
    p.add_argument("--store-id", help="only needed before the hub service first ran")
    creds = os.environ.get("CREDENTIALS_DIRECTORY")  # systemd LoadCredential=secret.key:…
    default_key = Path(creds) / "secret.key" if creds else None
    p.add_argument("--secret-key-file", type=Path, default=default_key,
                   help="the store's data key, the same file the hub service uses")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--https-only", action="store_true",
                   help="mark the session cookie Secure (behind a TLS proxy)")
    p.add_argument("--broker-dir", type=Path, default=None,
                   help="broker config directory (as for storehub enrol): enrol devices from the page")
    p.add_argument("--broker-host", default="127.0.0.1", help="broker address devices connect to")
    p.add_argument("--broker-port", type=int, default=1883)
    p.add_argument("--add-user", metavar="NAME",
                   help="create a user or set its password (read from STOREHUB_PASSWORD or asked)")
    p.add_argument("--role", default="owner", choices=("cashier", "manager", "owner"))
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from storehub.dashboard import app as dashboard
    from storehub.dashboard import users

    key = args.secret_key_file.read_bytes().strip() if args.secret_key_file else None
    if key is None:
        print("storehub dashboard: no --secret-key-file; ID-card numbers typed here are encrypted"
              " with this database's local key, not the store's key the hub uses", file=sys.stderr)
    store = dashboard.open_hub(args.db, args.store_id, secret_key=key)
    users.install(store)
    if args.add_user:
        password = os.environ.get("STOREHUB_PASSWORD") or getpass.getpass("Password: ")
        try:
            users.set_user(store, args.add_user, password, args.role)
        except users.UserError as exc:
            print(exc, file=sys.stderr)
            return 2
        users.audit(store, None, "user.save", args.add_user, f"{args.role} (command line)")
        print(f"user {args.add_user} ({args.role}) saved")
        return 0
    import uvicorn

    app = dashboard.create_app(store, https_only=args.https_only, broker_dir=args.broker_dir,
                               broker_host=args.broker_host, broker_port=args.broker_port,
                               close_store=True)  # fmt: skip
    uvicorn.run(app, host=args.host, port=args.port, log_level="info", workers=1)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m storehub.dashboard")
    configure(parser)
    args = parser.parse_args(argv)
    return args.func(args)
