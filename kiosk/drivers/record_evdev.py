"""Record a real input device's events to JSON, for tests and for support cases.

    python -m kiosk.drivers.record_evdev --name Honeywell --seconds 20 scan.json
    kiosk drivers record --path /dev/input/by-id/usb-…-event-kbd scan.json

The file keeps every event exactly as the kernel delivered it (``[sec, usec, type, code,
value]``, including EV_MSC scan codes and EV_SYN), plus the device's identity, so a recording
replays through the same read path as the live device (``kiosk.drivers.evdev_replay``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import select
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMAT = "kiosk-evdev-recording"
VERSION = 1


@dataclass
class Recording:
    events: list[tuple[int, int, int, int, int]]
    device: dict[str, Any] = field(default_factory=dict)
    layout: str = ""
    note: str = ""
    expected: list[str] = field(default_factory=list)  # what a person saw typed, if noted
    recorded_at: str = ""

    def input_events(self) -> list[Any]:
        """Return the events as ``evdev.InputEvent`` objects."""
        from evdev import InputEvent

        return [InputEvent(*ev) for ev in self.events]

    def to_json(self) -> str:
        head = {
            "format": FORMAT,
            "version": VERSION,
            "recorded_at": self.recorded_at,
            "device": self.device,
            "layout": self.layout,
            "note": self.note,
            "expected": self.expected,
        }
        # One event per line: recordings stay readable and diff well.
        body = ",\n    ".join(json.dumps(list(ev)) for ev in self.events)
        text = json.dumps(head, indent=2, ensure_ascii=False)
        return text[:-2] + ',\n  "events": [\n    ' + body + "\n  ]\n}\n"

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Recording":
        if data.get("format") != FORMAT:
            raise ValueError(f"not an evdev recording (format {data.get('format')!r})")
        if data.get("version") != VERSION:
            raise ValueError(f"unsupported recording version {data.get('version')!r}")
        events = []
        for ev in data["events"]:
            if len(ev) != 5 or not all(isinstance(v, int) for v in ev):
                raise ValueError(f"bad event {ev!r}: expected [sec, usec, type, code, value]")
            events.append(tuple(ev))
        return cls(
            events=events,
            device=dict(data.get("device", {})),
            layout=str(data.get("layout", "")),
            note=str(data.get("note", "")),
            expected=list(data.get("expected", [])),
            recorded_at=str(data.get("recorded_at", "")),
        )

    @classmethod
    def load(cls, path: str | Path) -> "Recording":
        with Path(path).open(encoding="utf-8") as fh:
            return cls.from_dict(json.load(fh))


def device_info(device: Any) -> dict[str, Any]:
    """Identity of an evdev device as stored in recordings."""
    info = getattr(device, "info", None)
    return {
        "name": getattr(device, "name", ""),
        "path": getattr(device, "path", ""),
        "phys": getattr(device, "phys", "") or "",
        "vendor": getattr(info, "vendor", 0),
        "product": getattr(info, "product", 0),
        "bustype": getattr(info, "bustype", 0),
    }


def record(
    device: Any,
    *,
    seconds: float | None = None,
    grab: bool = True,
    on_event: Any = None,
    stop: Any = None,
    into: list[tuple[int, int, int, int, int]] | None = None,
) -> list[tuple[int, int, int, int, int]]:
    """Read events from an open device until ``seconds`` pass or ``stop()`` returns True."""
    events = into if into is not None else []
    deadline = None if seconds is None else time.monotonic() + seconds
    if grab:
        device.grab()
    try:
        while True:
            if stop is not None and stop():
                break
            timeout = 0.2 if deadline is None else max(0.0, min(0.2, deadline - time.monotonic()))
            if deadline is not None and time.monotonic() >= deadline:
                break
            ready, _, _ = select.select([device.fileno()], [], [], timeout)
            if not ready:
                continue
            batch = list(device.read())
            if not batch:
                break  # end of stream
            for ev in batch:
                row = (ev.sec, ev.usec, ev.type, ev.code, ev.value)
                events.append(row)
                if on_event is not None:
                    on_event(ev)
    except OSError:
        pass  # unplugged while recording: keep what we have
    finally:
        if grab:
            try:
                device.ungrab()
            except OSError:
                pass
    return events


def make_recording(
    device: Any, events: Iterable[tuple[int, int, int, int, int]], layout: str = "", note: str = ""
) -> Recording:
    return Recording(
        events=list(events),
        device=device_info(device),
        layout=layout,
        note=note,
        recorded_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("output", help="JSON file to write")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--path", help="/dev/input/eventN or a /dev/input/by-id/… link")
    where.add_argument("--name", help="part of the device name (see `kiosk drivers list`)")
    parser.add_argument("--seconds", type=float, default=None, help="stop after this long")
    parser.add_argument("--layout", default="de", help="layout to show decoded text (de, us)")
    parser.add_argument("--note", default="", help="what was scanned or typed")
    parser.add_argument("--no-grab", action="store_true", help="let keystrokes reach the desktop")


def run(args: argparse.Namespace) -> int:
    import evdev

    from kiosk.drivers.keymap import KeyDecoder

    if args.path:
        device = evdev.InputDevice(args.path)
    else:
        device = None
        for path in evdev.list_devices():
            candidate = evdev.InputDevice(path)
            if device is None and args.name.lower() in candidate.name.lower():
                device = candidate
            else:
                candidate.close()
        if device is None:
            print(f"no input device matching {args.name!r}", file=sys.stderr)
            return 1
    decoder = KeyDecoder(args.layout)

    def show(ev: Any) -> None:
        for key in decoder.feed(ev):
            sys.stdout.write("⏎\n" if key.char == "\n" else key.char)
            sys.stdout.flush()

    print(f"recording {device.path} ({device.name}); Ctrl-C to stop", file=sys.stderr)
    events: list[tuple[int, int, int, int, int]] = []
    try:
        record(device, seconds=args.seconds, grab=not args.no_grab, on_event=show, into=events)
    except KeyboardInterrupt:
        pass
    rec = make_recording(device, events, layout=args.layout, note=args.note)
    rec.save(args.output)
    print(f"\n{len(events)} events written to {args.output}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="record_evdev", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
