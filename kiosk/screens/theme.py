"""Colours and sizes shared by every screen (light theme, readable at 800x480 and 1280x800).

Used from ``.kv`` files with ``#:import theme kiosk.screens.theme``.
"""

from __future__ import annotations


def _rgb(hex_colour: str, alpha: float = 1.0) -> tuple[float, float, float, float]:
    h = hex_colour.lstrip("#")
    return (int(h[0:2], 16) / 255, int(h[2:4], 16) / 255, int(h[4:6], 16) / 255, alpha)


BACKGROUND = _rgb("#eef1f5")
SURFACE = _rgb("#ffffff")
SURFACE_ALT = _rgb("#f6f8fa")
BORDER = _rgb("#d5dbe3")
TEXT = _rgb("#1d2733")
MUTED = _rgb("#5d6b7a")
HEADER = _rgb("#17212e")
HEADER_TEXT = _rgb("#e8edf3")

PRIMARY = _rgb("#1565c0")
PRIMARY_DOWN = _rgb("#0d4a91")
SECONDARY = _rgb("#e3e8ef")
SECONDARY_DOWN = _rgb("#c9d2de")
DANGER = _rgb("#c62828")  # the customer's observation: red and bold
DANGER_DOWN = _rgb("#8e1b1b")
DANGER_BG = _rgb("#fdecea")
WARNING = _rgb("#8a5300")
WARNING_BG = _rgb("#fff4d6")
SUCCESS = _rgb("#2e7d32")
SUCCESS_BG = _rgb("#e7f4e8")
CHIP = _rgb("#e1ecfa")
CHIP_TEXT = _rgb("#0d47a1")
DISABLED = _rgb("#b7c0cc")

KEY = _rgb("#ffffff")
KEY_DOWN = _rgb("#bcd3f0")
KEY_SPECIAL = _rgb("#cfd6e0")
KEYBOARD_BG = _rgb("#c3cad5")

ROLES = {
    # role: (background, background when pressed, text)
    "primary": (PRIMARY, PRIMARY_DOWN, _rgb("#ffffff")),
    "secondary": (SECONDARY, SECONDARY_DOWN, TEXT),
    "danger": (DANGER, DANGER_DOWN, _rgb("#ffffff")),
    "success": (SUCCESS, _rgb("#1b5e20"), _rgb("#ffffff")),
    "chip": (CHIP, SECONDARY_DOWN, CHIP_TEXT),
    "chip_off": (SURFACE_ALT, SECONDARY_DOWN, MUTED),
    "key": (KEY, KEY_DOWN, TEXT),
    "key_special": (KEY_SPECIAL, KEY_DOWN, TEXT),
}

# sizes (strings for kv: dp/sp are resolved by Kivy)
BUTTON_HEIGHT = "56dp"
INPUT_HEIGHT = "52dp"
RADIUS = 8
FONT = "18sp"
FONT_SMALL = "15sp"
FONT_LARGE = "22sp"
FONT_TITLE = "26sp"
