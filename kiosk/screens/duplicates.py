"""The possible-duplicate warning shown before a customer is created or changed.

Lists the similar records with the reason (same e-mail, same phone, similar name); the
cashier takes one of them for the sale, goes back to the form, or saves anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from kivy.lang import Builder
from kivy.properties import BooleanProperty, ObjectProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.modalview import ModalView

from kiosk.engine import customers
from kiosk.i18n import _
from kiosk.screens import formatting, widgets  # noqa: F401  (kv rules)


class DuplicateRow(BoxLayout):
    """One candidate with its reason and a button to take it."""

    customer_id = StringProperty("")
    name = StringProperty("")
    details = StringProperty("")
    reason = StringProperty("")
    popup = ObjectProperty(None)


class DuplicatePopup(ModalView):
    """Modal list of possible duplicates; calls ``on_use(id)`` or ``on_force()``."""

    editing = BooleanProperty(False)

    def __init__(
        self,
        candidates: list[customers.Duplicate],
        *,
        on_use: Callable[[str], None],
        on_force: Callable[[], None],
        editing: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.editing = editing
        self._on_use, self._on_force = on_use, on_force
        box = self.ids.candidates
        for dup in candidates:
            details = [
                _("Customer no. {number}").format(number=dup.customer_no),
                " ".join(p for p in (dup.postcode, dup.city) if p),
            ]
            if dup.birth_date:
                details.append(_("born {date}").format(date=formatting.date_text(dup.birth_date)))
            box.add_widget(
                DuplicateRow(
                    customer_id=dup.id,
                    name=dup.name,
                    details="  ·  ".join(d for d in details if d),
                    reason=dup.reason,
                    popup=self,
                )
            )

    def use(self, customer_id: str) -> None:
        self.dismiss()
        self._on_use(customer_id)

    def force(self) -> None:
        self.dismiss()
        self._on_force()


Builder.load_file(str(Path(__file__).with_suffix(".kv")))
