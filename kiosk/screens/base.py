"""The base class of every screen: loads its own ``.kv`` and refreshes when shown."""

from __future__ import annotations

import inspect
import logging
from pathlib import Path
from typing import Any

from kivy.app import App
from kivy.lang import Builder
from kivy.uix.screenmanager import Screen

from kiosk.screens import keyboard, widgets  # noqa: F401  (their kv rules are used by screens)

_LOGGER = logging.getLogger(__name__)

_LOADED: set[Path] = set()


def load_kv_once(path: Path) -> None:
    """Load a ``.kv`` file's rules once per process (screens, popups, widgets made late)."""
    if path not in _LOADED and path.exists():
        Builder.load_file(str(path))
        _LOADED.add(path)


class KioskScreen(Screen):
    """A screen whose rules live in ``<module>.kv`` next to its module.

    ``prepare(**kwargs)`` receives what the caller hands over when it opens the screen
    (``app.show("customer_detail", customer_id=…)``); ``refresh()`` re-reads from the engine
    every time the screen is entered, so what is shown is never stale.
    """

    def __init__(self, **kwargs: Any) -> None:
        self.load_kv()
        super().__init__(**kwargs)

    @classmethod
    def load_kv(cls) -> None:
        """Load the rules of this screen class once per process."""
        load_kv_once(Path(inspect.getfile(cls)).with_suffix(".kv"))

    @property
    def app(self):
        return App.get_running_app()

    @property
    def store(self):
        return self.app.store

    def prepare(self, **kwargs: Any) -> None:
        """Take the arguments the screen is opened with (before it is shown)."""

    def refresh(self) -> None:
        """Re-read what the screen shows from the engine."""

    def on_pre_enter(self, *_args) -> None:
        self.refresh()

    def go_back(self) -> bool:
        """Handle the back action (button or Escape); False lets the app decide."""
        return False
