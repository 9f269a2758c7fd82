"""The devices in the till's header: one small chip per configured device (ready / not
connected / paper out …); tapping the strip opens a list with each device's full message and
"Reprint last receipt".

Filled by ``kiosk.hardware.Hardware`` (on the UI thread) with ``strip.show(statuses)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kivy.lang import Builder
from kivy.properties import ColorProperty, DictProperty, ObjectProperty, StringProperty
from kivy.uix.behaviors import ButtonBehavior
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.modalview import ModalView

from kiosk.drivers.base import DeviceStatus, State
from kiosk.screens import theme, widgets  # noqa: F401  (kv rules used below)

CHIP_CHARS = 20
DOT = {
    State.OK: theme.SUCCESS,
    State.WARNING: theme._rgb("#f2a20c"),
    State.ERROR: theme.DANGER,
    State.DISCONNECTED: theme.DANGER,
    State.STARTING: theme.MUTED,
    State.STOPPED: theme.MUTED,
}


def state_text(status: DeviceStatus) -> str:
    from kiosk.hardware import state_text as text

    return text(status)


def short(text: str, limit: int = CHIP_CHARS) -> str:
    """The header has room for a few words per device; the list has the whole message."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


class DeviceChip(BoxLayout):
    """One device in the header: coloured dot, name and a word or two."""

    device = StringProperty("")
    text = StringProperty("")
    dot = ColorProperty(theme.MUTED)


class DeviceStatusStrip(ButtonBehavior, BoxLayout):
    """The chips; ``texts`` maps device name -> shown text (tests read it)."""

    hardware = ObjectProperty(None)
    texts = DictProperty({})

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._chips: dict[str, DeviceChip] = {}
        self._statuses: list[DeviceStatus] = []
        self.popup: DeviceStatusPopup | None = None

    def show(self, statuses: list[DeviceStatus]) -> None:
        statuses = sorted(statuses, key=lambda s: (s.kind, s.driver))
        self._statuses = statuses
        names = [s.driver for s in statuses]
        if names != list(self._chips):
            self.clear_widgets()
            self._chips = {n: DeviceChip(device=n) for n in names}
            for chip in self._chips.values():
                self.add_widget(chip)
        texts = {}
        for s in statuses:
            chip = self._chips[s.driver]
            chip.text = f"{s.driver}: {short(state_text(s))}"
            chip.dot = DOT.get(s.state, theme.MUTED)
            texts[s.driver] = state_text(s)
        if texts != self.texts:
            self.texts = texts
        if self.popup is not None:
            self.popup.show(statuses)

    def on_release(self) -> None:
        self.open_details()

    def open_details(self) -> DeviceStatusPopup:
        if self.popup is None:
            self.popup = DeviceStatusPopup(hardware=self.hardware)
            self.popup.bind(on_dismiss=lambda *_a: setattr(self, "popup", None))
        self.popup.show(self._statuses)
        self.popup.open()
        return self.popup


class DeviceRow(BoxLayout):
    device = StringProperty("")
    state = StringProperty("")
    message = StringProperty("")
    dot = ColorProperty(theme.MUTED)


class DeviceStatusPopup(ModalView):
    hardware = ObjectProperty(None)

    def show(self, statuses: list[DeviceStatus]) -> None:
        box = self.ids.rows
        box.clear_widgets()
        for s in statuses:
            box.add_widget(DeviceRow(device=s.driver, state=state_text(s), message=s.message,
                                     dot=DOT.get(s.state, theme.MUTED)))  # fmt: skip

    def reprint(self) -> None:
        if self.hardware is not None:
            self.hardware.reprint_last()

    def open_drawer(self) -> None:
        if self.hardware is not None:
            self.hardware.open_drawer()


Builder.load_file(str(Path(__file__).with_suffix(".kv")))
