"""Touch widgets shared by the screens: buttons, inputs, cards, chips and a toast banner.

Targets are at least 48 dp high; inputs tell the on-screen keyboard which layout they want.
"""

from __future__ import annotations

import logging
from pathlib import Path

from kivy.app import App
from kivy.clock import Clock
from kivy.lang import Builder
from kivy.properties import (
    BooleanProperty,
    ColorProperty,
    ListProperty,
    NumericProperty,
    OptionProperty,
    StringProperty,
)
from kivy.uix.behaviors import ToggleButtonBehavior
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.button import Button
from kivy.uix.label import Label
from kivy.uix.scrollview import ScrollView
from kivy.uix.textinput import TextInput

from kiosk.screens import theme

_LOGGER = logging.getLogger(__name__)


class TouchButton(Button):
    """A flat, rounded button; ``role`` picks its colours from the theme."""

    role = OptionProperty("secondary", options=list(theme.ROLES))
    bg = ColorProperty(theme.SECONDARY)
    bg_down = ColorProperty(theme.SECONDARY_DOWN)
    radius = NumericProperty(theme.RADIUS)

    def __init__(self, **kwargs):
        # A tap that moves a text field out of focus hides the docked keyboard, and the layout
        # shifts under the finger before it lifts: the press still counts as this button's.
        kwargs.setdefault("always_release", True)
        super().__init__(**kwargs)
        self._apply_role()
        self.fbind("role", self._apply_role)

    def _apply_role(self, *_args) -> None:
        self.bg, self.bg_down, self.color = theme.ROLES[self.role]


class TouchToggle(ToggleButtonBehavior, TouchButton):
    """A toggle button (choices, group membership); pressed state shows as ``primary``."""

    role_on = StringProperty("primary")
    role_off = StringProperty("secondary")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.fbind("state", self._apply_state)
        self.fbind("role_on", self._apply_state)
        self.fbind("role_off", self._apply_state)
        self._apply_state()

    def _apply_state(self, *_args) -> None:
        self.role = self.role_on if self.state == "down" else self.role_off


class TouchTextInput(TextInput):
    """A text field for touch: big, clear, and docked to the on-screen keyboard when focused.

    ``keyboard_layout`` names the layout the keyboard shows (``text`` or ``numeric``);
    ``has_error`` draws the frame red while a validation message is shown for the field.
    """

    keyboard_layout = StringProperty("text")
    has_error = BooleanProperty(False)

    def on_focus(self, _instance, focused: bool) -> None:
        # Kivy starts the cursor's 0.5 s blink timer when the text or cursor changes just
        # before the field loses focus (clearing the scan field on Enter): it then blinks on,
        # invisibly, and repaints the whole window twice a second for good. No blink unless
        # focused.
        self.cursor_blink = focused
        app = App.get_running_app()
        dock = getattr(app, "keyboard", None)
        if dock is None:
            return
        if focused:
            dock.attach(self)
            Clock.schedule_once(self._scroll_into_view, 0.05)
        else:
            dock.detach(self)

    def _scroll_into_view(self, _dt=None) -> None:
        parent = self.parent
        # the Window is its own parent: stop there
        while parent is not None and not isinstance(parent, ScrollView) and parent.parent is not parent:
            parent = parent.parent
        if isinstance(parent, ScrollView) and self.focus:
            parent.scroll_to(self, padding=40, animate=False)


class QuietScrollView(ScrollView):
    """A ScrollView whose bar does not fade.

    Kivy fades the bar for half a second, starting half a second after every scroll or change
    of the content's size (each new basket line): every step of that animation repaints the
    whole window (even between equal colours: the steps are not exact), which with software GL
    keeps the till busy for ~15 frames at the moment the next article is scanned. Here the bar
    takes ``bar_inactive_color`` in one step; the kv rule makes that the colour it already
    has, so no frame is drawn at all.
    """

    def _bind_inactive_bar_color(self, *_args) -> None:
        # replaces ScrollView's method of that name, which starts the fade animation
        self.funbind("bar_color", self._change_bar_color)
        self.fbind("bar_inactive_color", self._change_bar_color)
        if list(self._bar_color) != list(self.bar_inactive_color):
            self._bar_color = self.bar_inactive_color


class Card(BoxLayout):
    """A white panel with rounded corners that groups related content."""

    bg = ColorProperty(theme.SURFACE)
    border = ColorProperty(theme.BORDER)


class BodyLabel(Label):
    """A label that wraps its text and grows to the height it needs."""


class Chip(Label):
    """A small rounded badge (customer groups, tags)."""

    bg = ColorProperty(theme.CHIP)


class FieldView(BoxLayout):
    """One labelled value on a detail page (label above, value below)."""

    label = StringProperty("")
    value = StringProperty("")
    value_color = ColorProperty(theme.TEXT)
    bold = BooleanProperty(False)


class Banner(BoxLayout):
    """A coloured message box: ``kind`` is info, warning, danger or success."""

    text = StringProperty("")
    kind = OptionProperty("info", options=["info", "warning", "danger", "success"])
    bold = BooleanProperty(False)
    colours = ListProperty([theme.CHIP, theme.CHIP_TEXT])

    def on_kind(self, *_args) -> None:
        self.colours = {
            "info": [theme.CHIP, theme.CHIP_TEXT],
            "warning": [theme.WARNING_BG, theme.WARNING],
            "danger": [theme.DANGER_BG, theme.DANGER],
            "success": [theme.SUCCESS_BG, theme.SUCCESS],
        }[self.kind]


class Toast(Label):
    """A short message at the bottom of the screen that disappears by itself."""

    kind = OptionProperty("info", options=["info", "warning", "danger", "success"])


Builder.load_file(str(Path(__file__).with_suffix(".kv")))
