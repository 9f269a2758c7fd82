"""Form rows for records: label (``*`` when mandatory), input, validation message below.

``get_value()`` returns what the engine command expects (text, choice code, bool or None);
``error`` shows a message from ``ValidationError.errors`` right under the input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kivy.lang import Builder
from kivy.metrics import dp
from kivy.properties import BooleanProperty, ListProperty, ObjectProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout

from kiosk.screens import widgets

# field kinds that want the number pad
NUMERIC_KINDS = frozenset({"phone", "postcode", "date", "number"})


class FormField(BoxLayout):
    """One labelled input with its validation message."""

    name = StringProperty("")
    label = StringProperty("")
    mandatory = BooleanProperty(False)
    error = StringProperty("")
    full_width = BooleanProperty(False)

    def get_value(self) -> Any:
        raise NotImplementedError

    def set_value(self, value: Any) -> None:
        raise NotImplementedError

    def focus_input(self) -> None:
        """Put the cursor into this field, if it has a text input."""


class TextField(FormField):
    """A text input; ``kind`` picks the keyboard and the hint."""

    kind = StringProperty("text")
    hint = StringProperty("")
    input = ObjectProperty(None)

    def on_kv_post(self, _base) -> None:
        multiline = self.kind == "longtext"
        self.input = widgets.TouchTextInput(
            multiline=multiline,
            hint_text=self.hint,
            keyboard_layout="numeric" if self.kind in NUMERIC_KINDS else "text",
            input_type="number" if self.kind in NUMERIC_KINDS else "text",
        )
        self.input.bind(text=self._clear_error)
        self.fbind("error", lambda *_a: setattr(self.input, "has_error", bool(self.error)))
        self.ids.slot.add_widget(self.input)
        if multiline:
            self.full_width = True

    def _clear_error(self, *_args) -> None:
        self.error = ""

    def get_value(self) -> str:
        return self.input.text.strip()

    def set_value(self, value: Any) -> None:
        self.input.text = "" if value is None else str(value)

    def focus_input(self) -> None:
        self.input.focus = True


class ChoiceField(FormField):
    """Pick one of a few options with big toggle buttons (none is allowed)."""

    choices = ListProperty([])  # [(code, label)]
    toggles = ListProperty([])

    def on_kv_post(self, _base) -> None:
        row = BoxLayout(size_hint_y=None, height=dp(52), spacing=dp(8))
        group = f"choice-{self.uid}"
        self.toggles = []
        for code, label in self.choices:
            toggle = widgets.TouchToggle(text=label, group=group, height=dp(52))
            toggle.code = code
            toggle.bind(state=lambda *_a: setattr(self, "error", ""))
            row.add_widget(toggle)
            self.toggles.append(toggle)
        self.ids.slot.add_widget(row)

    def get_value(self) -> str | None:
        for toggle in self.toggles:
            if toggle.state == "down":
                return toggle.code
        return None

    def set_value(self, value: Any) -> None:
        for toggle in self.toggles:
            toggle.state = "down" if toggle.code == value else "normal"


class BoolRow(BoxLayout):
    """The toggle of a BoolField with the text it agrees to and the recorded status."""

    text = StringProperty("")
    status = StringProperty("")


class BoolField(FormField):
    """A yes/no answer as a toggle; ``text`` explains what is agreed to (consent texts)."""

    text = StringProperty("")
    status = StringProperty("")  # e.g. "Yes, since … (at the till)"
    row = ObjectProperty(None)

    def on_kv_post(self, _base) -> None:
        self.full_width = bool(self.text)
        self.row = BoolRow(text=self.text, status=self.status)
        self.fbind("status", lambda *_a: setattr(self.row, "status", self.status))
        self.row.ids.toggle.bind(state=lambda *_a: setattr(self, "error", ""))
        self.ids.slot.add_widget(self.row)

    @property
    def toggle(self):
        return self.row.ids.toggle

    def get_value(self) -> bool:
        return self.toggle.state == "down"

    def set_value(self, value: Any) -> None:
        self.toggle.state = "down" if value else "normal"


Builder.load_file(str(Path(__file__).with_suffix(".kv")))
