"""Synthesize evdev recordings (same file format as ``record_evdev``) from text.

For test data and benchmarks when no scanner is at hand: the text is turned back into the key
presses a USB HID keyboard would produce in the given layout, frame by frame as the kernel
reports them (EV_MSC scan code, EV_KEY, EV_SYN), with a scanner's millisecond bursts or a
person's irregular pace. Every file says in its ``note`` that it was synthesized.

    python -m kiosk.drivers.evdev_synth --layout de --style scanner out.json 4006381333931
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Iterable
from dataclasses import dataclass

from evdev import ecodes as e

from kiosk.drivers.keymap import LAYOUTS, Dead, Key
from kiosk.drivers.record_evdev import Recording

Row = tuple[int, int, int, int, int]

# HID usage ids (page 7) the kernel reports as MSC_SCAN 0x700xx before each key event.
_HID = {
    **{getattr(e, f"KEY_{c}"): 0x04 + i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZ")},
    **{getattr(e, f"KEY_{d}"): 0x1E + i for i, d in enumerate("1234567890")},
    e.KEY_ENTER: 0x28, e.KEY_ESC: 0x29, e.KEY_BACKSPACE: 0x2A, e.KEY_TAB: 0x2B,
    e.KEY_SPACE: 0x2C, e.KEY_MINUS: 0x2D, e.KEY_EQUAL: 0x2E, e.KEY_LEFTBRACE: 0x2F,
    e.KEY_RIGHTBRACE: 0x30, e.KEY_BACKSLASH: 0x32, e.KEY_SEMICOLON: 0x33,
    e.KEY_APOSTROPHE: 0x34, e.KEY_GRAVE: 0x35, e.KEY_COMMA: 0x36, e.KEY_DOT: 0x37,
    e.KEY_SLASH: 0x38, e.KEY_CAPSLOCK: 0x39, e.KEY_KPSLASH: 0x54, e.KEY_KPASTERISK: 0x55,
    e.KEY_KPMINUS: 0x56, e.KEY_KPPLUS: 0x57, e.KEY_KPENTER: 0x58,
    **{getattr(e, f"KEY_KP{d}"): 0x59 + i for i, d in enumerate("123456789")},
    e.KEY_KP0: 0x62, e.KEY_KPDOT: 0x63, e.KEY_102ND: 0x64,
    e.KEY_LEFTCTRL: 0xE0, e.KEY_LEFTSHIFT: 0xE1, e.KEY_LEFTALT: 0xE2,
    e.KEY_RIGHTCTRL: 0xE4, e.KEY_RIGHTSHIFT: 0xE5, e.KEY_RIGHTALT: 0xE6,
}  # fmt: skip

_KEYPAD = {str(i): getattr(e, f"KEY_KP{i}") for i in range(10)}


@dataclass(frozen=True)
class Stroke:
    """Keys pressed one after another while ``modifiers`` are held."""

    modifiers: tuple[int, ...]
    keys: tuple[int, ...]


def strokes_for(char: str, layout: str) -> list[Stroke]:
    """Return the key presses that type ``char`` (Ctrl+] for GS, Alt+numpad as last resort)."""
    keys = LAYOUTS[layout]
    for code, key in sorted(keys.items()):
        for level, mods in _levels(key, layout):
            if level == char:
                return [Stroke(mods, (code,))]
    for code, key in sorted(keys.items()):  # dead keys: the accent, then a space
        for level, mods in _levels(key, layout):
            if isinstance(level, Dead) and level.spacing == char:
                return [Stroke(mods, (code,)), Stroke((), (e.KEY_SPACE,))]
    if char == "\x1d" and layout == "us":
        return [Stroke((e.KEY_LEFTCTRL,), (e.KEY_RIGHTBRACE,))]
    # Alt + keypad digits (Alt+0nnn in Windows-1252), as scanners do for anything else.
    try:
        value = char.encode("cp1252")[0]
    except UnicodeEncodeError as exc:
        raise ValueError(f"cannot type {char!r} on a {layout} keyboard") from exc
    return [Stroke((e.KEY_LEFTALT,), tuple(_KEYPAD[d] for d in f"0{value:03d}"))]


def _levels(key: Key, layout: str) -> Iterable[tuple[object, tuple[int, ...]]]:
    yield key.normal, ()
    yield key.shift, (e.KEY_LEFTSHIFT,)
    if layout != "us":
        yield key.altgr, (e.KEY_RIGHTALT,)


class _Writer:
    def __init__(self, start: float) -> None:
        self.t = start
        self.rows: list[Row] = []

    def frame(self, changes: list[tuple[int, int]]) -> None:
        """One HID report: scan code + key event for each change, then SYN_REPORT."""
        sec, usec = int(self.t), int(round((self.t - int(self.t)) * 1e6))
        if usec >= 1_000_000:
            sec, usec = sec + 1, usec - 1_000_000
        for code, value in changes:
            self.rows.append((sec, usec, e.EV_MSC, e.MSC_SCAN, 0x70000 + _HID.get(code, 0)))
            self.rows.append((sec, usec, e.EV_KEY, code, value))
        self.rows.append((sec, usec, e.EV_SYN, e.SYN_REPORT, 0))

    def wait(self, seconds: float) -> None:
        self.t += seconds


def scanner_burst(
    w: _Writer, text: str, layout: str, rng: random.Random, char_ms: float = 3.0
) -> None:
    """A scanner types: modifier and key in one report, release in the next, ~ms apart."""
    for char in text:
        for stroke in strokes_for(char, layout):
            # Modifiers go down with the first key and up with the last, in the same reports.
            for i, key in enumerate(stroke.keys):
                press = [(m, 1) for m in stroke.modifiers] if i == 0 else []
                w.frame(press + [(key, 1)])
                w.wait(rng.uniform(0.0008, 0.0015))
                release = [(m, 0) for m in stroke.modifiers] if i == len(stroke.keys) - 1 else []
                w.frame([(key, 0)] + release)
                if i < len(stroke.keys) - 1:
                    w.wait(rng.uniform(0.0008, 0.0015))
            w.wait(rng.uniform(char_ms * 0.6, char_ms * 1.4) / 1000)


def human_typing(w: _Writer, text: str, layout: str, rng: random.Random) -> None:
    """A person types: 90-350 ms between keys, modifiers pressed first, keys held ~80 ms."""
    for char in text:
        for stroke in strokes_for(char, layout):
            for m in stroke.modifiers:
                w.frame([(m, 1)])
                w.wait(rng.uniform(0.04, 0.12))
            for key in stroke.keys:
                w.frame([(key, 1)])
                w.wait(rng.uniform(0.05, 0.11))
                w.frame([(key, 0)])
                w.wait(rng.uniform(0.03, 0.08))
            for m in stroke.modifiers:
                w.wait(rng.uniform(0.02, 0.06))
                w.frame([(m, 0)])
            w.wait(rng.uniform(0.04, 0.26))


def synthesize(
    parts: list[tuple[str, str]],
    layout: str,
    *,
    seed: int = 1,
    start: float = 1_795_000_000.0,
    pause_s: float = 1.5,
    device_name: str = "Synthetic HID scanner",
    vendor: int = 0x0C2E,
    product: int = 0x0B61,
    note: str = "",
) -> Recording:
    """Build a recording from (style, text) parts; style is "scanner" or "human"."""
    rng = random.Random(seed)
    w = _Writer(start)
    for style, text in parts:
        if style == "scanner":
            scanner_burst(w, text, layout, rng)
        elif style == "human":
            human_typing(w, text, layout, rng)
        else:
            raise ValueError(f"unknown style {style!r}")
        w.wait(pause_s)
    return Recording(
        events=w.rows,
        device={
            "name": device_name,
            "path": "/dev/input/event-synthetic",
            "phys": "",
            "vendor": vendor,
            "product": product,
            "bustype": 3,
        },
        layout=layout,
        note=("synthesized by kiosk.drivers.evdev_synth (seed %d). " % seed) + note,
        expected=[text for _, text in parts],
        recorded_at="",
    )


# The sample set in tests/data/evdev (also handy for `evdev-replay` demos).
_SCANS = [
    "4006381333931",  # EAN-13
    "96385074",  # EAN-8
    "036000291452",  # UPC-A
    "04252614",  # UPC-E
    "ART-4711/Gr.XL",  # Code 128 with shifted characters
    "LAGER@B{7}[3]\\x|~",  # Code 128 with AltGr characters on de
    "Zy-Yz_QWERTZ",  # letters that move between QWERTY and QWERTZ
    "4006381333932",  # EAN-13 with a wrong check digit
]
SAMPLES: dict[str, dict] = {
    "scanner_de.json": dict(
        parts=[("scanner", t + "\n") for t in _SCANS], layout="de",
        note="Keyboard-wedge scanner set to German layout, Enter suffix.",
    ),
    "scanner_us.json": dict(
        parts=[("scanner", t + "\n") for t in _SCANS], layout="us", seed=2,
        device_name="Synthetic HID scanner (US)",
        note="Keyboard-wedge scanner set to US layout, Enter suffix.",
    ),
    "human_de.json": dict(
        parts=[("human", "Müller\n"), ("human", "4006381333931\n"), ("human", "Größe 42\n")],
        layout="de", seed=3, device_name="Synthetic USB keyboard",
        note="A person typing on a German keyboard, including an EAN typed by hand.",
    ),
    "mixed_de.json": dict(
        parts=[("human", "12"), ("scanner", "4006381333931\n"), ("human", "x\n")],
        layout="de", seed=4, pause_s=0.15,
        note="POS keyboard with scanner port: typing, a scan 150 ms later, typing again.",
    ),
    "gs1_de.json": dict(
        parts=[("scanner", "0104012345123456\x1d10LOT42\n")], layout="de", seed=5,
        note="GS1-128 with FNC1 sent as Alt+0029 (German layout has no Ctrl+]).",
    ),
    "gs1_us.json": dict(
        parts=[("scanner", "0104012345123456\x1d10LOT42\n")], layout="us", seed=6,
        note="GS1-128 with FNC1 sent as Ctrl+].",
    ),
    "no_suffix_de.json": dict(
        parts=[("scanner", "4006381333931"), ("scanner", "96385074")], layout="de", seed=7,
        pause_s=1.0, note="Scanner without suffix: scans end when the scanner goes quiet.",
    ),
    "prefixed_de.json": dict(
        parts=[("scanner", "#S4006381333931#E\n"), ("human", "abc\n")], layout="de", seed=8,
        note="Scanner with prefix #S and suffix #E; then someone types on the same device.",
    ),
}


def write_samples(directory: str) -> list[str]:
    """Write the sample recordings into ``directory``; return the file names."""
    from pathlib import Path

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    for name, spec in SAMPLES.items():
        synthesize(**spec).save(out / name)
    return sorted(SAMPLES)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="evdev_synth", description=__doc__.splitlines()[0])
    parser.add_argument("output", help="JSON file, or the directory for --samples")
    parser.add_argument("texts", nargs="*", help="each text is typed and followed by Enter")
    parser.add_argument("--samples", action="store_true", help="write the sample set")
    parser.add_argument("--layout", default="de", choices=sorted(LAYOUTS))
    parser.add_argument("--style", default="scanner", choices=("scanner", "human"))
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if args.samples:
        print("\n".join(write_samples(args.output)))
        return 0
    if not args.texts:
        parser.error("give texts to type, or --samples")
    rec = synthesize([(args.style, t + "\n") for t in args.texts], args.layout, seed=args.seed)
    rec.save(args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
