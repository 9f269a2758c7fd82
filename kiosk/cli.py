"""The ``kiosk`` command.

    kiosk --config /etc/kiosk/device.toml          run the app in the configured mode
    kiosk --config … --mode display                override the mode
    kiosk <command> …                              maintenance commands (see --help)

Each maintenance command lives next to what it operates on and registers itself through an
``add_parser(subparsers)`` function listed in ``_COMMAND_MODULES``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from kiosk import __version__
from kiosk.config import MODES, ConfigError, load

DEFAULT_CONFIG = os.environ.get("KIOSK_CONFIG", "/etc/kiosk/device.toml")

# modules with add_parser(subparsers); each sets ``func`` (args -> exit code) on its parsers
_COMMAND_MODULES: tuple[str, ...] = ("kiosk.customer_cli", "kiosk.demo", "kiosk.backup", "kiosk.drivers_cli",
                                      "kiosk.update")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kiosk", description="Retail kiosk device")
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="device config file (TOML)")
    parser.add_argument("--mode", choices=MODES, help="override the configured mode")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="command")
    for name in _COMMAND_MODULES:
        importlib.import_module(name).add_parser(sub)
    return parser


def run_app(args: argparse.Namespace) -> int:
    config = load(args.config)
    from kiosk.app import run  # Kivy is imported only when a window is wanted

    return run(config, mode=args.mode or config.mode)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        func = getattr(args, "func", None) or run_app
        return int(func(args) or 0)
    except ConfigError as exc:
        print(f"kiosk: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
