"""``kiosk drivers …``: see what hardware is there and try it without starting the till.

    kiosk drivers list                   configured drivers with their status, then the input
                                         devices, serial ports and USB printers found
    kiosk drivers types                  driver types and their config keys
    kiosk drivers test-print [--printer NAME] [--wait S]   queue a test page and wait for it
    kiosk drivers kick [--drawer NAME]   open the cash drawer
    kiosk drivers display "line 1" "line 2" [--display NAME]
    kiosk drivers record OUT.json (--path P | --name N) [--seconds S]   record a scanner

All commands read the device config named by ``--config`` (``list`` also works without one).
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import time
from typing import Any

import msgspec

from kiosk.config import ConfigError, load
from kiosk.drivers import registry
from kiosk.drivers.base import Callbacks, DeviceStatus, State


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("drivers", help="list devices, print a test page, record a scanner")
    actions = parser.add_subparsers(dest="drivers_action", metavar="action", required=True)

    lst = actions.add_parser("list", help="configured drivers and detected devices")
    lst.add_argument("--wait", type=float, default=1.5,
                     help="seconds to let drivers connect before showing their status")  # fmt: skip
    lst.set_defaults(func=run_list)

    actions.add_parser("types", help="driver types and their config keys").set_defaults(
        func=run_types
    )

    tp = actions.add_parser("test-print", help="print a test page")
    tp.add_argument("--printer", default="", help="printer name (default: the first)")
    tp.add_argument("--wait", type=float, default=15.0, help="seconds to wait for the printer")
    tp.set_defaults(func=run_test_print)

    kick = actions.add_parser("kick", help="open the cash drawer")
    kick.add_argument("--drawer", default="", help="drawer name (default: the first)")
    kick.set_defaults(func=run_kick)

    disp = actions.add_parser("display", help="show two lines on the pole display")
    disp.add_argument("line1")
    disp.add_argument("line2", nargs="?", default="")
    disp.add_argument("--display", default="", help="display name (default: the first)")
    disp.set_defaults(func=run_display)

    rec = actions.add_parser("record", help="record an input device's events to JSON")
    from kiosk.drivers.record_evdev import add_arguments

    add_arguments(rec)
    rec.set_defaults(func=run_record)


# -- helpers -------------------------------------------------------------------------------
def _config(args: argparse.Namespace, required: bool = True) -> Any:
    try:
        return load(args.config)
    except (ConfigError, OSError) as exc:
        if required:
            raise ConfigError(str(exc)) from exc
        return None


def _build(config: Any, kinds: tuple[str, ...] | None = None, callbacks: Callbacks | None = None):
    tables = {k: v for k, v in config.drivers.items() if kinds is None or k in kinds}
    context = registry.DriverContext(
        data_dir=config.data_dir,
        device_id=config.identity.device_id,
        callbacks=callbacks or Callbacks(),
    )
    return registry.build_all(tables, context)


def _pick(built: Any, kind: str, name: str) -> Any:
    for driver in built.drivers.values():
        if driver.kind == kind and (not name or driver.name == name):
            return driver
    return None


def _line(status: DeviceStatus) -> str:
    return f"  {status.kind:<8} {status.driver:<14} {str(status.state):<13} {status.message}"


def _stop_all(drivers: dict[str, Any]) -> None:
    for driver in drivers.values():
        try:
            driver.stop(2.0)
        finally:
            queue = getattr(driver, "queue", None)
            if queue is not None:
                queue.close()


# -- commands ------------------------------------------------------------------------------
def run_list(args: argparse.Namespace) -> int:
    config = _config(args, required=False)
    if config is not None:
        print(f"configured ({config.source or args.config}):")
        built = _build(config)
        for driver in built.drivers.values():
            driver.start()
        deadline = time.monotonic() + args.wait
        while time.monotonic() < deadline and any(
            d.status.state is State.STARTING for d in built.drivers.values()
        ):
            time.sleep(0.05)
        statuses = [d.status for d in built.drivers.values()] + built.problems
        for status in sorted(statuses, key=lambda s: (s.kind, s.driver)):
            print(_line(status))
        if not statuses:
            print("  (no [drivers.*] tables)")
        _stop_all(built.drivers)
    else:
        print(f"no device config at {args.config}: showing detected devices only")
    print("input devices:")
    for line in detected_input_devices() or ["  (none readable)"]:
        print(line)
    print("serial ports:")
    for line in detected_serial_ports() or ["  (none)"]:
        print(line)
    print("USB printers:")
    for line in detected_usb_printers() or ["  (none)"]:
        print(line)
    return 0


def detected_input_devices(input_dir: str = "/dev/input") -> list[str]:
    try:
        import evdev
        from evdev import ecodes
    except ImportError:
        return ["  (python-evdev not installed)"]
    links: dict[str, str] = {}
    for link in glob.glob(os.path.join(input_dir, "by-id", "*")):
        links[os.path.realpath(link)] = link
    out = []
    denied = 0
    for path in evdev.list_devices(input_dir):
        try:
            device = evdev.InputDevice(path)
        except PermissionError:
            denied += 1
            continue
        except OSError:
            continue
        with device:
            keys = set(device.capabilities().get(ecodes.EV_KEY, []))
            kind = "keyboard/scanner" if ecodes.KEY_ENTER in keys and ecodes.KEY_1 in keys else "input"
            out.append(
                f"  {path:<20} {device.info.vendor:04x}:{device.info.product:04x}"
                f" {kind:<16} {device.name!r} {links.get(path, '')}"
            )
    if denied:
        out.append(f"  ({denied} devices not readable: add this user to the 'input' group)")
    return out


def detected_serial_ports() -> list[str]:
    from serial.tools import list_ports

    out = []
    for port in sorted(list_ports.comports(), key=lambda p: p.device):
        ids = f"{port.vid:04x}:{port.pid:04x}" if port.vid is not None else "         "
        out.append(f"  {port.device:<20} {ids} {port.description}")
    for link in sorted(glob.glob("/dev/serial/by-id/*")):
        out.append(f"  {link}")
    return out


def detected_usb_printers() -> list[str]:
    try:
        import usb.core
    except ImportError:
        return ["  (pyusb not installed)"]
    try:
        devices = list(usb.core.find(find_all=True))
    except Exception as exc:  # noqa: BLE001 - no libusb backend, no permission
        return [f"  (cannot list USB devices: {exc})"]
    out = []
    for dev in devices:
        try:
            classes = {intf.bInterfaceClass for cfg in dev for intf in cfg}
        except Exception:  # noqa: BLE001
            classes = set()
        if 7 in classes:  # USB printer class
            out.append(f"  USB {dev.idVendor:04x}:{dev.idProduct:04x} bus {dev.bus} address {dev.address}")
    return out


def run_types(args: argparse.Namespace) -> int:
    for entry in registry.types():
        print(f"[[drivers.{entry.kind}]] type = \"{entry.type}\"  – {entry.description}")
        for field in msgspec.structs.fields(entry.config):
            if field.name == "type":
                continue
            if field.required:
                print(f"    {field.name}  (required)")
            else:
                default = field.default if field.default is not msgspec.NODEFAULT else field.default_factory()
                print(f"    {field.name} = {default!r}")
    return 0


def run_test_print(args: argparse.Namespace) -> int:
    from kiosk.drivers.printer import EscposPrinter, render_test_page

    config = _config(args)
    built = _build(config, ("printer",))
    for problem in built.problems:
        print(_line(problem), file=sys.stderr)
    printer = _pick(built, "printer", args.printer)
    if not isinstance(printer, EscposPrinter):
        print("kiosk: no such printer configured", file=sys.stderr)
        _stop_all(built.drivers)
        return 1
    try:
        printer.start()
        job = printer.submit(
            render_test_page(config.identity.device_id, printer.name), kind="test", ref="cli"
        )
        if printer.wait_idle(args.wait):
            print(f"test page printed on {printer.name} (job {job})")
            return 0
        print(
            f"kiosk: not printed yet – {printer.status.message}; the job stays queued",
            file=sys.stderr,
        )
        return 1
    finally:
        _stop_all(built.drivers)


def run_kick(args: argparse.Namespace) -> int:
    from kiosk.drivers.drawer import PrinterDrawer

    config = _config(args)
    done: list[Any] = []
    built = _build(config, ("printer", "drawer"), Callbacks(job=done.append))
    drawer = _pick(built, "drawer", args.drawer)
    if not isinstance(drawer, PrinterDrawer) or drawer.printer is None:
        print("kiosk: no usable drawer configured", file=sys.stderr)
        _stop_all(built.drivers)
        return 1
    try:
        drawer.printer.start()
        drawer.open()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(j.kind == "drawer" for j in done):
            time.sleep(0.02)
        result = [j for j in done if j.kind == "drawer"]
        if result and result[0].state == "done":
            print("drawer opened")
            return 0
        print(f"kiosk: drawer not opened – {drawer.status.message}", file=sys.stderr)
        return 1
    finally:
        _stop_all(built.drivers)


def run_display(args: argparse.Namespace) -> int:
    from kiosk.drivers.pole_display import PoleDisplay

    config = _config(args)
    built = _build(config, ("display",))
    display = _pick(built, "display", args.display)
    if not isinstance(display, PoleDisplay):
        print("kiosk: no pole display configured", file=sys.stderr)
        return 1
    try:
        display.start()
        display.show(args.line1, args.line2)
        if display.wait_written(5.0):
            return 0
        print(f"kiosk: display not reached – {display.status.message}", file=sys.stderr)
        return 1
    finally:
        _stop_all(built.drivers)


def run_record(args: argparse.Namespace) -> int:
    from kiosk.drivers.record_evdev import run

    return run(args)

