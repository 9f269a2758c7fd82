"""Turn evdev key events into text, for German (de, pc105) and US keyboard layouts.

A keyboard-wedge scanner "types" its barcode as key presses, in whatever layout it is set
to. This module is pure: :func:`decode` takes a list of ``InputEvent`` (recorded or live) and
returns keystrokes with their kernel timestamps; the device loop only reads and hands over.

Handled: Shift (either), AltGr (right Alt; Ctrl+Alt counts as AltGr on de as Windows does),
Caps Lock (letters incl. umlauts), Num Lock (keypad digits), dead keys (de ``^ ´ ```),
Ctrl+letter control characters (Ctrl+] = GS, the GS1 separator), and Alt+numpad codes
(Alt+0029 = GS) that scanners use for characters the layout cannot type.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from evdev import ecodes as e

ENTER = "\n"
TAB = "\t"
BACKSPACE = "\b"
ESCAPE = "\x1b"


class EventLike(Protocol):
    sec: int
    usec: int
    type: int
    code: int
    value: int


@dataclass(frozen=True)
class Dead:
    """A dead key: shows ``spacing`` alone, or combines ``combining`` with the next letter."""

    spacing: str
    combining: str


Level = str | Dead | None


@dataclass(frozen=True)
class Key:
    normal: Level
    shift: Level = None
    altgr: Level = None
    caps: bool = False  # Caps Lock swaps normal/shift (letters, including umlauts)


@dataclass(frozen=True)
class Keystroke:
    char: str  # one character; ENTER/TAB/BACKSPACE/ESCAPE for those keys
    time: float  # event timestamp, seconds (kernel clock)
    code: int  # the key that produced it (for diagnostics)


Layout = dict[int, Key]

_LETTER_CODES = {
    ch: getattr(e, f"KEY_{ch.upper()}") for ch in "abcdefghijklmnopqrstuvwxyz"
}
_DIGIT_CODES = [e.KEY_1, e.KEY_2, e.KEY_3, e.KEY_4, e.KEY_5, e.KEY_6, e.KEY_7, e.KEY_8, e.KEY_9, e.KEY_0]

# Keys that mean the same in every layout.
_COMMON: Layout = {
    e.KEY_SPACE: Key(" ", " ", " "),
    e.KEY_ENTER: Key(ENTER, ENTER, ENTER),
    e.KEY_KPENTER: Key(ENTER, ENTER, ENTER),
    e.KEY_TAB: Key(TAB, TAB, TAB),
    e.KEY_BACKSPACE: Key(BACKSPACE, BACKSPACE, BACKSPACE),
    e.KEY_ESC: Key(ESCAPE, ESCAPE, ESCAPE),
    e.KEY_KPSLASH: Key("/", "/"),
    e.KEY_KPASTERISK: Key("*", "*"),
    e.KEY_KPMINUS: Key("-", "-"),
    e.KEY_KPPLUS: Key("+", "+"),
}

_KEYPAD_DIGITS = {
    e.KEY_KP0: "0", e.KEY_KP1: "1", e.KEY_KP2: "2", e.KEY_KP3: "3", e.KEY_KP4: "4",
    e.KEY_KP5: "5", e.KEY_KP6: "6", e.KEY_KP7: "7", e.KEY_KP8: "8", e.KEY_KP9: "9",
}  # fmt: skip


def _letters(swap: dict[str, str] | None = None, altgr: dict[str, str] | None = None) -> Layout:
    swap, altgr = swap or {}, altgr or {}
    layout = {}
    for ch, code in _LETTER_CODES.items():
        out = swap.get(ch, ch)
        layout[code] = Key(out, out.upper(), altgr.get(ch), caps=True)
    return layout


def _us() -> Layout:
    layout = dict(_COMMON)
    layout.update(_letters())
    for code, (plain, shifted) in zip(_DIGIT_CODES, ["1!", "2@", "3#", "4$", "5%", "6^", "7&", "8*", "9(", "0)"]):
        layout[code] = Key(plain, shifted)
    for code, pair in {
        e.KEY_MINUS: "-_", e.KEY_EQUAL: "=+", e.KEY_LEFTBRACE: "[{", e.KEY_RIGHTBRACE: "]}",
        e.KEY_SEMICOLON: ";:", e.KEY_APOSTROPHE: "'\"", e.KEY_GRAVE: "`~",
        e.KEY_BACKSLASH: "\\|", e.KEY_102ND: "\\|", e.KEY_COMMA: ",<", e.KEY_DOT: ".>",
        e.KEY_SLASH: "/?",
    }.items():  # fmt: skip
        layout[code] = Key(pair[0], pair[1])
    layout[e.KEY_KPDOT] = Key(".", ".")
    layout[e.KEY_KPCOMMA] = Key(",", ",")
    return layout


def _de() -> Layout:
    layout = dict(_COMMON)
    # QWERTZ: Y and Z swap places; AltGr+Q = @, AltGr+E = €, AltGr+M = µ.
    layout.update(_letters({"y": "z", "z": "y"}, {"q": "@", "e": "€", "m": "µ"}))
    digits = [("1", "!", None), ("2", '"', "²"), ("3", "§", "³"), ("4", "$", None),
              ("5", "%", None), ("6", "&", None), ("7", "/", "{"), ("8", "(", "["),
              ("9", ")", "]"), ("0", "=", "}")]  # fmt: skip
    for code, (plain, shifted, alt) in zip(_DIGIT_CODES, digits):
        layout[code] = Key(plain, shifted, alt)
    layout.update(
        {
            e.KEY_MINUS: Key("ß", "?", "\\"),
            e.KEY_EQUAL: Key(Dead("´", "\u0301"), Dead("`", "\u0300")),
            e.KEY_GRAVE: Key(Dead("^", "\u0302"), "°"),
            e.KEY_LEFTBRACE: Key("ü", "Ü", caps=True),
            e.KEY_RIGHTBRACE: Key("+", "*", "~"),
            e.KEY_SEMICOLON: Key("ö", "Ö", caps=True),
            e.KEY_APOSTROPHE: Key("ä", "Ä", caps=True),
            e.KEY_BACKSLASH: Key("#", "'"),
            e.KEY_102ND: Key("<", ">", "|"),
            e.KEY_COMMA: Key(",", ";"),
            e.KEY_DOT: Key(".", ":"),
            e.KEY_SLASH: Key("-", "_"),
            e.KEY_KPDOT: Key(",", ","),  # the German keypad has a decimal comma
            e.KEY_KPCOMMA: Key(",", ","),
        }
    )
    return layout


LAYOUTS: dict[str, Layout] = {"us": _us(), "de": _de()}

_SHIFT = {e.KEY_LEFTSHIFT, e.KEY_RIGHTSHIFT}
_CTRL = {e.KEY_LEFTCTRL, e.KEY_RIGHTCTRL}
_CONTROL_PUNCT = set("@[\\]^_")


class KeyDecoder:
    """Stateful decoder for one device: feed events in order, get keystrokes out."""

    def __init__(self, layout: str = "de") -> None:
        if layout not in LAYOUTS:
            raise ValueError(f"unknown keyboard layout {layout!r} (known: {', '.join(LAYOUTS)})")
        self.layout_name = layout
        self._keys = LAYOUTS[layout]
        self._altgr_layout = layout != "us"  # US has no AltGr: right Alt is plain Alt
        self.reset()

    def reset(self) -> None:
        """Forget held modifiers (after a reconnect the device starts with all keys up)."""
        self._down: set[int] = set()
        self._caps = False
        self._numlock = True  # scanners type keypad digits assuming Num Lock on
        self._dead: Dead | None = None
        self._alt_digits = ""

    # -- modifiers ------------------------------------------------------------------------
    @property
    def _shift(self) -> bool:
        return bool(self._down & _SHIFT)

    @property
    def _ctrl(self) -> bool:
        return bool(self._down & _CTRL)

    @property
    def _left_alt(self) -> bool:
        return e.KEY_LEFTALT in self._down or (
            not self._altgr_layout and e.KEY_RIGHTALT in self._down
        )

    @property
    def _altgr(self) -> bool:
        if not self._altgr_layout:
            return False
        return e.KEY_RIGHTALT in self._down or (self._ctrl and e.KEY_LEFTALT in self._down)

    # -- decoding -------------------------------------------------------------------------
    def feed(self, event: EventLike) -> list[Keystroke]:
        """Take one event; return the keystrokes it completes (usually zero or one)."""
        if event.type != e.EV_KEY:
            return []  # EV_SYN, EV_MSC (scan codes) and LEDs carry no text
        code, value = event.code, event.value
        when = event.sec + event.usec / 1_000_000
        if value == 0:  # release
            self._down.discard(code)
            if code in (e.KEY_LEFTALT, e.KEY_RIGHTALT) and self._alt_digits:
                return self._finish_alt_code(when, code)
            return []
        if value == 1:
            self._down.add(code)
        if code == e.KEY_CAPSLOCK:
            if value == 1:
                self._caps = not self._caps
            return []
        if code == e.KEY_NUMLOCK:
            if value == 1:
                self._numlock = not self._numlock
            return []
        if code in _KEYPAD_DIGITS:
            if self._left_alt and not self._altgr:
                self._alt_digits += _KEYPAD_DIGITS[code]
                return []
            if not self._numlock:
                return []  # keypad navigation keys
            return self._emit(_KEYPAD_DIGITS[code], when, code)
        key = self._keys.get(code)
        if key is None:
            return []  # modifiers, function keys, anything without text
        level = self._level(key)
        if level is None:
            return []
        if self._ctrl and not self._altgr:
            return self._control(level, when, code)
        if self._left_alt and not self._altgr:
            return []  # Alt+key is a hotkey, not text
        if isinstance(level, Dead):
            if self._dead is not None:  # two dead keys: the first shows as itself
                pending, self._dead = self._dead, level
                return [Keystroke(pending.spacing, when, code)]
            self._dead = level
            return []
        return self._emit(level, when, code)

    def _level(self, key: Key) -> Level:
        if self._altgr:
            return key.altgr
        shifted = self._shift
        if key.caps and self._caps:
            shifted = not shifted
        return key.shift if shifted else key.normal

    def _emit(self, char: str, when: float, code: int) -> list[Keystroke]:
        if self._dead is None:
            return [Keystroke(char, when, code)]
        dead, self._dead = self._dead, None
        if char == " ":
            return [Keystroke(dead.spacing, when, code)]
        combined = unicodedata.normalize("NFC", char + dead.combining)
        if len(combined) == 1:
            return [Keystroke(combined, when, code)]
        return [Keystroke(dead.spacing, when, code), Keystroke(char, when, code)]

    def _control(self, level: Level, when: float, code: int) -> list[Keystroke]:
        char = level.spacing if isinstance(level, Dead) else level
        if char is None or len(char) != 1:
            return []
        upper = char.upper()
        if "A" <= upper <= "Z" or upper in _CONTROL_PUNCT:
            return [Keystroke(chr(ord(upper) & 0x1F), when, code)]
        return []

    def _finish_alt_code(self, when: float, code: int) -> list[Keystroke]:
        digits, self._alt_digits = self._alt_digits, ""
        value = int(digits) % 256
        # Windows convention: Alt+0nnn is the ANSI code page, Alt+nnn the OEM one.
        codec = "cp1252" if digits.startswith("0") else "cp437"
        if value < 32:
            char = chr(value)  # control characters are the same in both
        else:
            char = bytes([value]).decode(codec, errors="replace")
        return [Keystroke(char, when, code)]


def decode(events: Iterable[EventLike], layout: str = "de") -> list[Keystroke]:
    """Decode a list of events into keystrokes (pure: a fresh decoder per call)."""
    decoder = KeyDecoder(layout)
    out: list[Keystroke] = []
    for event in events:
        out.extend(decoder.feed(event))
    return out


def text(events: Iterable[EventLike], layout: str = "de") -> str:
    """Decode events into the text they type."""
    return "".join(k.char for k in decode(events, layout))
