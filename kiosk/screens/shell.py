"""The window frame every mode shares: header bar, screen area, keyboard dock and toasts."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from kivy.animation import Animation
from kivy.clock import Clock
from kivy.lang import Builder
from kivy.properties import StringProperty
from kivy.uix.floatlayout import FloatLayout

from kiosk.engine.clock import SHOP_TZ
from kiosk.screens import keyboard, theme, widgets  # noqa: F401  (kv rules used below)

TOAST_SECONDS = 3.5


class Shell(FloatLayout):
    """Root widget: ``ids.screens`` is the ScreenManager, ``ids.keyboard`` the keyboard."""

    title = StringProperty("")
    subtitle = StringProperty("")
    time_text = StringProperty("")

    def __init__(self, **kwargs):
        from kivy.core.window import Window

        super().__init__(**kwargs)
        # The frame is cleared to the background colour anyway; a full-window rectangle on top
        # costs a fill of every pixel per frame (about a fifth of a frame with software GL).
        Window.clearcolor = theme.BACKGROUND
        self._tick()
        self._clock_ev = Clock.schedule_interval(self._tick, 10)

    def _tick(self, _dt=None) -> None:
        now = dt.datetime.now(SHOP_TZ)
        self.time_text = now.strftime("%d.%m.%Y  %H:%M")

    def toast(self, text: str, kind: str = "info") -> widgets.Toast:
        """Show a short message above the bottom edge for a few seconds."""
        for old in [c for c in self.children if isinstance(c, widgets.Toast)]:
            self.remove_widget(old)
        toast = widgets.Toast(text=text, kind=kind)
        toast.pos_hint = {"center_x": 0.5}
        toast.y = self.ids.keyboard.top + 24
        self.add_widget(toast)
        Clock.schedule_once(lambda _dt: self._fade(toast), TOAST_SECONDS)
        return toast

    def _fade(self, toast: widgets.Toast) -> None:
        anim = Animation(opacity=0, duration=0.4)
        anim.bind(on_complete=lambda *_a: self.remove_widget(toast))
        anim.start(toast)


Builder.load_file(str(Path(__file__).with_suffix(".kv")))
