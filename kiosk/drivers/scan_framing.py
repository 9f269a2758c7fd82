"""Cut a stream of keystrokes into scans, and tell a scanner's burst from a person typing.

A scanner types a whole code in a few milliseconds per character and ends it with Enter (or
Tab); a person needs 80 ms or more between keys. A *burst* is a run of keystrokes whose
gaps are all at most ``max_gap_ms`` (kernel timestamps, so the decision does not depend on
how late the loop reads). A burst of at least ``min_length`` characters ended by the
terminator is a scan; anything slower or shorter is people typing and goes to ``keys``.

    keystroke ──> [burst buffer] ──terminator──> long enough? ──yes──> strip prefix/suffix
                        │                             │                 └─> barcodes.identify
                        └─gap > max_gap──> flush      └─no──> HumanKeys
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from kiosk.drivers import barcodes
from kiosk.drivers.base import Rejected, Scan
from kiosk.drivers.keymap import ENTER, TAB, EventLike, KeyDecoder, Keystroke
from kiosk.i18n import _

TERMINATORS = {"enter": ENTER, "tab": TAB, "none": None}


@dataclass(frozen=True)
class FramingConfig:
    max_gap_ms: float = 50.0
    min_length: int = 4
    terminator: Literal["enter", "tab", "none"] = "enter"
    prefix: str = ""
    suffix: str = ""
    require_prefix: bool = False
    symbologies: tuple[str, ...] = barcodes.DEFAULT_SYMBOLOGIES


@dataclass(frozen=True)
class Burst:
    """A run of fast keystrokes, before validation."""

    text: str
    first: float
    last: float
    terminated: bool


@dataclass(frozen=True)
class HumanKeys:
    """Keystrokes too slow or too few for a scanner: someone typing on this device."""

    text: str


Output = Scan | Rejected | HumanKeys


class ScanFramer:
    """Pure framing over keystrokes; ``flush`` closes a burst when the device goes quiet."""

    def __init__(self, config: FramingConfig, source: str = "scanner") -> None:
        self.config = config
        self.source = source
        self._buf: list[Keystroke] = []
        self._terminator = TERMINATORS[config.terminator]

    @property
    def pending(self) -> bool:
        return bool(self._buf)

    def feed(self, key: Keystroke) -> list[Output]:
        out: list[Output] = []
        gap_s = self.config.max_gap_ms / 1000
        if self._buf and key.time - self._buf[-1].time > gap_s:
            out.extend(self._close(terminated=False))
        if self._terminator is not None and key.char == self._terminator:
            if self._buf:
                out.extend(self._close(terminated=True, end=key.time))
            else:
                out.append(HumanKeys(key.char))
            return out
        self._buf.append(key)
        return out

    def flush(self) -> list[Output]:
        """Close the current burst (the device has been quiet for ``max_gap_ms``)."""
        return self._close(terminated=False) if self._buf else []

    def _close(self, terminated: bool, end: float | None = None) -> list[Output]:
        keys, self._buf = self._buf, []
        burst = Burst(
            "".join(k.char for k in keys),
            keys[0].time,
            end if end is not None else keys[-1].time,
            terminated,
        )
        return [self.classify(burst)]

    def classify(self, burst: Burst) -> Output:
        cfg = self.config
        if len(burst.text) < cfg.min_length:
            suffix = self._terminator if burst.terminated and self._terminator else ""
            return HumanKeys(burst.text + suffix)
        if not burst.terminated and self._terminator is not None:
            return Rejected(
                burst.text,
                _("Scan without its end mark ({terminator}) – check the scanner's suffix.").format(
                    terminator=cfg.terminator
                ),
                "unterminated",
                self.source,
            )
        return validate(burst.text, cfg, self.source, burst.first, burst.last)


def strip_affixes(text: str, cfg: FramingConfig, source: str) -> str | Rejected:
    """Remove the configured prefix/suffix; refuse a scan without a required prefix."""
    if cfg.prefix:
        if text.startswith(cfg.prefix):
            text = text[len(cfg.prefix) :]
        elif cfg.require_prefix:
            return Rejected(
                text,
                _("Input without the scanner prefix was ignored."),
                "prefix",
                source,
            )
    if cfg.suffix and text.endswith(cfg.suffix):
        text = text[: -len(cfg.suffix)]
    return text


def validate(text: str, cfg: FramingConfig, source: str, first: float, last: float) -> Scan | Rejected:
    """Strip affixes and check the barcode; return the Scan or why it was refused."""
    stripped = strip_affixes(text, cfg, source)
    if isinstance(stripped, Rejected):
        return stripped
    try:
        code = barcodes.identify(stripped, cfg.symbologies)
    except barcodes.BarcodeError as exc:
        return Rejected(stripped, str(exc), exc.code, source)
    return Scan(
        text=code.text,
        symbology=code.symbology,
        source=source,
        gtin=code.gtin,
        first_key_at=first,
        done_at=last,
    )


class KeyboardScanDecoder:
    """Events in, scans out: keymap + framing for one keyboard-wedge scanner."""

    def __init__(self, layout: str, config: FramingConfig, source: str = "scanner") -> None:
        self.keys = KeyDecoder(layout)
        self.framer = ScanFramer(config, source)

    def feed(self, event: EventLike) -> list[Output]:
        out: list[Output] = []
        for key in self.keys.feed(event):
            out.extend(self.framer.feed(key))
        return out

    def feed_all(self, events: Iterable[EventLike]) -> list[Output]:
        out: list[Output] = []
        for event in events:
            out.extend(self.feed(event))
        return out

    def flush(self) -> list[Output]:
        return self.framer.flush()

    def reset(self) -> None:
        self.keys.reset()
        self.framer.flush()


def decode_stream(
    events: Iterable[EventLike], layout: str, config: FramingConfig, source: str = "scanner"
) -> list[Output]:
    """Decode a complete recorded stream (pure): all outputs including the final flush."""
    decoder = KeyboardScanDecoder(layout, config, source)
    out = decoder.feed_all(events)
    out.extend(decoder.flush())
    return out


def now() -> float:
    """Epoch seconds, the clock evdev stamps events with by default."""
    return time.time()
