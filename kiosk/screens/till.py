"""The till's main screen: the customer of the sale on top, the basket area below.

The basket arrives with the sale issue and goes into ``ids.basket``; this screen only
shows and changes who the sale is for.
"""

from __future__ import annotations

import logging

from kivy.properties import BooleanProperty, ObjectProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout

from kiosk.engine import customers
from kiosk.i18n import _
from kiosk.screens import widgets
from kiosk.screens.base import KioskScreen
from kiosk.screens.session import CustomerView

_LOGGER = logging.getLogger(__name__)


def customer_summary(record: dict) -> str:
    """One line with where a customer lives and how to reach them."""
    place = " ".join(p for p in (record.get("postcode"), record.get("city")) if p)
    phone = customers.format_phone(record.get("mobile") or record.get("phone"))
    return "  ·  ".join(p for p in (place, phone, record.get("email") or "") if p)


class CustomerBox(BoxLayout):
    """The attached customer: name, number, observation (red, bold), alerts and groups."""

    view = ObjectProperty(None, allownone=True)  # CustomerView or None
    has_customer = BooleanProperty(False)
    name = StringProperty("")
    number = StringProperty("")
    summary = StringProperty("")
    observation = StringProperty("")

    def on_view(self, _instance, view: CustomerView | None) -> None:
        self.has_customer = view is not None
        alerts_box, groups_box = self.ids.alerts, self.ids.groups
        alerts_box.clear_widgets()
        groups_box.clear_widgets()
        if view is None:
            self.name = self.number = self.summary = self.observation = ""
            return
        self.name = view.name
        self.number = _("Customer no. {number}").format(number=view.record["customer_no"])
        self.summary = customer_summary(view.record)
        self.observation = view.observation
        for message in view.alerts:
            alerts_box.add_widget(widgets.Banner(text=message, kind="warning"))
        for group in view.groups:
            text = group["name"]
            if group["discount_bp"]:
                text += f"  −{group['discount_bp'] / 100:g} %".replace(".", ",")
            groups_box.add_widget(widgets.Chip(text=text))


class TillScreen(KioskScreen):
    """Home screen of the till."""

    def on_kv_post(self, _base_widget) -> None:
        session = self.app.session
        session.bind(customer=self._on_customer)
        self._on_customer(session, session.customer)

    def _on_customer(self, _session, view: CustomerView | None) -> None:
        self.ids.customer_box.view = view

    def find_customer(self) -> None:
        self.app.show("customer_search", query="")

    def show_customer(self) -> None:
        view = self.app.session.customer
        if view is not None:
            self.app.show("customer_detail", customer_id=view.id)

    def remove_customer(self) -> None:
        view = self.app.session.customer
        self.app.session.detach()
        if view is not None:
            self.app.notify(_("{name} removed from the sale").format(name=view.name))

    def refresh(self) -> None:
        self.app.session.refresh()
