"""The on-screen keyboard docked at the bottom of the window.

Layouts are JSON files in Kivy's VKeyboard format (``cols``, ``rows`` and rows named
``normal_1``, ``shift_1``, ``special_1`` … of ``[label, text, keycode, width]`` keys) in
``kiosk/screens/keyboards``. Kivy's own VKeyboard is not used: its shift and symbol keys
only act while held down, which needs two fingers — many till touch panels report one.
Here shift is one-shot (tap twice for caps lock) and ``?123`` toggles the symbol layer.

The keyboard is part of the window layout, not an overlay: when it opens the screen above
shrinks and the focused field scrolls into view. A physical keyboard or a keyboard-wedge
scanner keeps working alongside it.
"""

from __future__ import annotations

import json
import logging
from functools import lru_cache
from pathlib import Path
from typing import Any

from kivy.clock import Clock
from kivy.lang import Builder
from kivy.metrics import dp
from kivy.properties import BooleanProperty, ObjectProperty, OptionProperty, StringProperty
from kivy.uix.behaviors import FocusBehavior
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.widget import Widget

from kiosk.screens import widgets

_LOGGER = logging.getLogger(__name__)

LAYOUT_DIR = Path(__file__).parent / "keyboards"
COMMANDS = frozenset(
    {"backspace", "enter", "tab", "shift", "capslock", "special", "escape", "layout"}
)
_REPEAT_DELAY_S = 0.5
_REPEAT_INTERVAL_S = 0.06


class LayoutError(ValueError):
    pass


@lru_cache(maxsize=8)
def load_layout(name: str) -> dict[str, Any]:
    """Read and check a layout file by name (``de``) or path."""
    path = Path(name) if name.endswith(".json") else LAYOUT_DIR / f"{name}.json"
    try:
        layout = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise LayoutError(f"cannot read keyboard layout {path}: {exc}") from exc
    for key in ("cols", "rows", "normal_1"):
        if key not in layout:
            raise LayoutError(f"keyboard layout {path} has no {key!r}")
    for row in range(1, layout["rows"] + 1):
        for keys in (layout.get(f"{mode}_{row}") for mode in ("normal", "shift", "special")):
            if keys is not None and any(len(k) != 4 for k in keys):
                raise LayoutError(f"keyboard layout {path}: every key needs 4 entries")
    return layout


class KeyButton(widgets.TouchButton):
    """One key; ``key`` is the layout entry ``[label, text, keycode, width]``."""

    key = ObjectProperty(None)


class OnScreenKeyboard(BoxLayout):
    """Types into the focused TouchTextInput; hidden while no field has the focus."""

    target = ObjectProperty(None, allownone=True)
    layout_name = StringProperty("de")
    active_layout = StringProperty("de")
    mode = OptionProperty("normal", options=["normal", "shift", "special"])
    caps_lock = BooleanProperty(False)
    visible = BooleanProperty(False)
    enabled = BooleanProperty(True)  # False: a physical keyboard only (config ui.keyboard = "off")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.keys: dict[str, KeyButton] = {}  # label -> button of the shown layer
        self._hide_ev = None
        self._repeat_ev = None
        self._built_for: tuple[str, str] | None = None

    # -- focus handling ------------------------------------------------------------------
    def attach(self, text_input) -> None:
        """Show the keyboard for a field that just got the focus."""
        if not self.enabled:
            return
        if self._hide_ev is not None:
            self._hide_ev.cancel()
            self._hide_ev = None
        self.target = text_input
        wanted = "numeric" if getattr(text_input, "keyboard_layout", "") == "numeric" else self.layout_name
        if wanted != self.active_layout:
            self.mode, self.caps_lock = "normal", False
        self.active_layout = wanted
        self.visible = True
        self._build()

    def detach(self, text_input) -> None:
        """Hide the keyboard unless another field takes the focus right away."""
        if text_input is not self.target:
            return
        if self._hide_ev is not None:
            self._hide_ev.cancel()
        self._hide_ev = Clock.schedule_once(self._hide, 0.1)

    def _hide(self, _dt=None) -> None:
        self._hide_ev = None
        if self.target is not None and self.target.focus:
            return
        self.target = None
        self.visible = False
        self.mode, self.caps_lock = "normal", False

    def on_touch_down(self, touch):
        if self.visible and self.collide_point(*touch.pos):
            # keep the field focused: a touch on the keyboard is not a touch "elsewhere"
            FocusBehavior.ignored_touch.append(touch)
        return super().on_touch_down(touch)

    # -- drawing ----------------------------------------------------------------------------
    def on_mode(self, *_args) -> None:
        self._build()

    def _rows(self) -> list[list[list[Any]]]:
        layout = load_layout(self.active_layout)
        mode = self.mode if f"{self.mode}_1" in layout else "normal"
        return [layout[f"{mode}_{row}"] for row in range(1, layout["rows"] + 1)]

    def _build(self) -> None:
        if not self.visible:
            return
        layout = load_layout(self.active_layout)
        rows = self._rows()
        grid = self.ids.rows
        signature = (self.active_layout, self.mode)
        if self._built_for == signature:
            self._refresh_states()
            return
        same_shape = self._built_for is not None and self._built_for[0] == self.active_layout
        if same_shape:
            # shift / symbol layers share the geometry: relabel the keys in place
            for row_widget, keys in zip(reversed(grid.children), rows):
                buttons = [c for c in reversed(row_widget.children) if isinstance(c, KeyButton)]
                if len(buttons) != len(keys):
                    same_shape = False
                    break
                for button, key in zip(buttons, keys):
                    self._setup_key(button, key)
        if not same_shape:
            grid.clear_widgets()
            for keys in rows:
                row_widget = BoxLayout(spacing=dp(6))
                for key in keys:
                    button = KeyButton(size_hint_x=key[3])
                    button.bind(on_press=self._on_key_press, on_release=self._on_key_release)
                    self._setup_key(button, key)
                    row_widget.add_widget(button)
                filler = layout["cols"] - sum(k[3] for k in keys)
                if filler > 0.01:
                    row_widget.add_widget(Widget(size_hint_x=filler))
                grid.add_widget(row_widget)
        self.keys = {}
        for row_widget in grid.children:
            for button in row_widget.children:
                if isinstance(button, KeyButton):
                    self.keys.setdefault(button.key[0], button)
        self._built_for = signature
        self.ids.rows.max_width = dp(layout.get("max_width", 100000))
        self._refresh_states()

    def _setup_key(self, button: KeyButton, key: list[Any]) -> None:
        button.key = key
        button.text = key[0]
        button.size_hint_x = key[3]

    def _refresh_states(self) -> None:
        for row_widget in self.ids.rows.children:
            for button in row_widget.children:
                if not isinstance(button, KeyButton):
                    continue
                command = button.key[2] if button.key[1] is None else None
                active = (command == "shift" and self.mode == "shift") or (
                    command == "special" and self.mode == "special"
                )
                if command == "shift" and self.caps_lock:
                    button.text = "\u21ea"
                elif command == "shift":
                    button.text = button.key[0]
                button.role = "primary" if active else ("key_special" if command else "key")

    # -- typing -------------------------------------------------------------------------------
    def _on_key_press(self, button: KeyButton) -> None:
        self.press(button.key)
        if button.key[2] == "backspace":
            self._repeat_ev = Clock.schedule_once(lambda _dt: self._start_repeat(button), _REPEAT_DELAY_S)

    def _start_repeat(self, button: KeyButton) -> None:
        self._repeat_ev = Clock.schedule_interval(lambda _dt: self.press(button.key), _REPEAT_INTERVAL_S)

    def _on_key_release(self, _button: KeyButton) -> None:
        if self._repeat_ev is not None:
            self._repeat_ev.cancel()
            self._repeat_ev = None

    def press(self, key: list[Any]) -> None:
        """Act on one key of the layout (text is inserted, commands are carried out)."""
        _label, text, code, _width = key
        target = self.target
        command = code if text is None and code in COMMANDS else None
        if command == "shift":
            if self.caps_lock:
                self.caps_lock, self.mode = False, "normal"
            elif self.mode == "shift":
                self.caps_lock = True  # second tap: caps lock
            else:
                self.mode = "shift"
            self._refresh_states()
            return
        if command == "capslock":
            self.caps_lock = not self.caps_lock
            self.mode = "shift" if self.caps_lock else "normal"
            return
        if command == "special":
            self.caps_lock = False
            self.mode = "normal" if self.mode == "special" else "special"
            return
        if command == "layout":
            self.active_layout = self.layout_name if self.active_layout == "numeric" else "numeric"
            self.mode = "normal"
            self._build()
            return
        if target is None:
            return
        if command == "backspace":
            target.do_backspace()
        elif command == "enter":
            if target.multiline:
                target.insert_text("\n")
            else:
                target.dispatch("on_text_validate")
                self._focus_next(target)
        elif command == "tab":
            self._focus_next(target)
        elif command == "escape":
            target.focus = False
        elif text:
            target.insert_text(text)
            if self.mode == "shift" and not self.caps_lock:
                self.mode = "normal"

    def _focus_next(self, target) -> None:
        nxt = target.get_focus_next()
        if nxt is not None and nxt is not target and getattr(nxt, "keyboard_layout", None):
            nxt.focus = True
        else:
            target.focus = False


Builder.load_file(str(Path(__file__).with_suffix(".kv")))
