"""Barcode validation: symbology, check digits and the characters a scan may contain.

EAN-13, EAN-8, UPC-A, UPC-E and ITF-14 carry a GS1 mod-10 check digit that is transmitted,
so it is checked here. Code 128 and Code 39 check characters are verified by the scanner and
never transmitted: for them only length and the character whitelist can be checked. The
whitelist matters: a keyboard-wedge scanner "types" control characters, and a layout mismatch
turns "-" into "ß" ("BadBarcode") — both are refused here with a clear reason.

A scanner set to send AIM symbology identifiers (``]E0`` EAN/UPC, ``]E4`` EAN-8, ``]C0``
Code 128, ``]C1`` GS1-128, ``]I1`` ITF, ``]A0`` Code 39) is understood; without them the
symbology is inferred from length and digits.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from kiosk.i18n import _

SYMBOLOGIES = ("ean13", "ean8", "upca", "upce", "itf14", "code128", "gs1-128", "code39")
DEFAULT_SYMBOLOGIES = ("ean13", "ean8", "upca", "upce", "code128")
MAX_LENGTH = 80
GS = "\x1d"  # FNC1 separator in GS1-128, typed as Ctrl+] or Alt+029

_AIM = {
    "]E0": "ean-upc",
    "]E3": "ean-upc",  # with add-on
    "]E4": "ean8",
    "]C0": "code128",
    "]C1": "gs1-128",
    "]I1": "itf14",
    "]A0": "code39",
}
_CODE39_CHARS = set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-. $/+%")
# Characters a German layout produces where a US-set scanner meant something else.
_LAYOUT_HINT = set("ßäöüÄÖÜ´`^°§²³µ€")


class BarcodeError(ValueError):
    """A scan is not an acceptable barcode; ``code`` for programs, the text for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Barcode:
    text: str  # the code without AIM identifier
    symbology: str
    gtin: str | None = None  # GTIN-14 for EAN/UPC/ITF (leading zeros): one lookup key for all


def gs1_check_digit(body: str) -> int:
    """Return the GS1 mod-10 check digit for the digits before it."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        total += int(ch) * (3 if i % 2 == 0 else 1)
    return (10 - total % 10) % 10


def has_valid_check_digit(code: str) -> bool:
    return code.isascii() and code.isdigit() and len(code) >= 2 and (
        gs1_check_digit(code[:-1]) == int(code[-1])
    )


def upce_to_upca(code: str) -> str:
    """Expand an 8-digit UPC-E (number system, 6 digits, check) to its 12-digit UPC-A."""
    if len(code) != 8 or not code.isdigit() or code[0] not in "01":
        raise BarcodeError("length", _("A UPC-E code has 8 digits starting with 0 or 1."))
    ns, d, check = code[0], code[1:7], code[7]
    last = d[5]
    if last in "012":
        body = d[0:2] + last + "0000" + d[2:5]
    elif last == "3":
        body = d[0:3] + "00000" + d[3:5]
    elif last == "4":
        body = d[0:4] + "00000" + d[4]
    else:
        body = d[0:5] + "0000" + last
    return ns + body + check


def _check(code: str, name: str) -> None:
    expected = gs1_check_digit(code[:-1])
    if int(code[-1]) != expected:
        raise BarcodeError(
            "check_digit",
            _("{symbology}: check digit is {got}, expected {expected} – misread, scan again.").format(
                symbology=name, got=code[-1], expected=expected
            ),
        )


def _numeric(code: str, allowed: set[str], hint: str | None) -> Barcode:
    """Identify an all-digit code by its length; check digits must be right."""
    n = len(code)
    if n == 13 and "ean13" in allowed and hint in (None, "ean-upc"):
        _check(code, "EAN-13")
        return Barcode(code, "ean13", code.zfill(14))
    if n == 12 and "upca" in allowed and hint in (None, "ean-upc"):
        _check(code, "UPC-A")
        return Barcode(code, "upca", code.zfill(14))
    if n == 8 and hint in (None, "ean8", "ean-upc") and allowed & {"ean8", "upce"}:
        if "ean8" in allowed and hint != "ean-upc" and has_valid_check_digit(code):
            return Barcode(code, "ean8", code.zfill(14))
        if "upce" in allowed and code[0] in "01" and hint != "ean8":
            upca = upce_to_upca(code)
            if has_valid_check_digit(upca):
                return Barcode(code, "upce", upca.zfill(14))
        if "ean8" in allowed:
            _check(code, "EAN-8")
        raise BarcodeError(
            "check_digit", _("8-digit code with a wrong check digit – misread, scan again.")
        )
    if n == 14 and "itf14" in allowed and hint in (None, "itf14"):
        _check(code, "ITF-14")
        return Barcode(code, "itf14", code)
    if hint in ("ean-upc", "ean8", "itf14"):
        raise BarcodeError(
            "length",
            _("{n} digits is not a valid length for this symbology.").format(n=n),
        )
    if "code128" in allowed:
        return Barcode(code, "code128")
    raise BarcodeError(
        "symbology",
        _("A {n}-digit code is not an EAN/UPC and other symbologies are switched off.").format(
            n=n
        ),
    )


def _charset(code: str, allowed_gs: bool) -> None:
    for ch in code:
        if ch == GS and allowed_gs:
            continue
        if not (" " <= ch <= "~"):
            if ch in _LAYOUT_HINT:
                raise BarcodeError(
                    "charset",
                    _(
                        "Unexpected character {char!r}: the scanner's keyboard layout does not"
                        " match the one configured."
                    ).format(char=ch),
                )
            raise BarcodeError(
                "charset",
                _("Unexpected character {char!r} in the scan; barcode refused.").format(
                    char=ch  # !r shows control characters as '\x07'
                ),
            )


def identify(text: str, allowed: Iterable[str] = DEFAULT_SYMBOLOGIES) -> Barcode:
    """Return the validated barcode, or raise BarcodeError saying what is wrong with it."""
    allowed_set = set(allowed)
    code = text.strip(" ")
    if not code:
        raise BarcodeError("length", _("Empty scan."))
    if len(code) > MAX_LENGTH:
        raise BarcodeError(
            "length", _("Scan is longer than {n} characters.").format(n=MAX_LENGTH)
        )
    hint = None
    if code.startswith("]") and len(code) >= 3:
        hint = _AIM.get(code[:3])
        if hint is None:
            raise BarcodeError(
                "symbology",
                _("Unknown symbology identifier {aim!r}.").format(aim=code[:3]),
            )
        code = code[3:]
        if not code:
            raise BarcodeError("length", _("Empty scan."))
    if hint and hint not in ("ean-upc",) and hint not in allowed_set:
        raise BarcodeError(
            "symbology", _("Symbology {name} is switched off.").format(name=hint)
        )
    _charset(code, allowed_gs=hint == "gs1-128" or (hint is None and "gs1-128" in allowed_set))
    if hint == "gs1-128":
        return Barcode(code, "gs1-128")
    if hint == "code39":
        if not set(code) <= _CODE39_CHARS:
            raise BarcodeError("charset", _("Character not allowed in Code 39."))
        return Barcode(code, "code39")
    if code.isdigit() and hint != "code128":
        return _numeric(code, allowed_set, hint)
    if hint in ("ean-upc", "ean8", "itf14"):
        raise BarcodeError("charset", _("EAN/UPC codes contain digits only."))
    if GS in code:
        return Barcode(code, "gs1-128")
    if "code128" in allowed_set:
        return Barcode(code, "code128")
    if "code39" in allowed_set and set(code) <= _CODE39_CHARS:
        return Barcode(code, "code39")
    raise BarcodeError(
        "symbology", _("Only numeric EAN/UPC codes are accepted by this scanner setting.")
    )
