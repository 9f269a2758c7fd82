"""Everything about one customer, with group membership and the way to the sale.

The observation is shown red and bold (Fastmag's "Beobachtung"), the shop's alert rules as
warnings; the ID-card number only masked.
"""

from __future__ import annotations

import logging

from kivy.app import App
from kivy.properties import BooleanProperty, ObjectProperty, StringProperty
from kivy.uix.widget import Widget

from kiosk.engine import customers, groups, messaging, questions
from kiosk.i18n import N_, _
from kiosk.screens import formatting, theme, widgets
from kiosk.screens.base import KioskScreen
from kiosk.screens.ereceipt import greeting, open_whatsapp
from kiosk.screens.session import CustomerView

_LOGGER = logging.getLogger(__name__)

# (card title, fields) in reading order; empty cards are left out
SECTIONS = (
    (N_("Person"), ("gender", "title", "first_name", "last_name", "company", "birth_date",
                    "language")),
    (N_("Contact"), ("email", "phone", "mobile")),
    (N_("Address"), ("street", "house_no", "postcode", "city", "country")),
    (N_("Delivery address"), ("delivery_name", "delivery_street", "delivery_house_no",
                              "delivery_postcode", "delivery_city", "delivery_country")),
    (N_("Identity"), ("id_card",)),
    (N_("Internal"), ("provenance", "grouping", "notes")),
)  # fmt: skip
ALWAYS_SHOWN = {"Person", "Contact", "Address"}


class GroupToggle(widgets.TouchToggle):
    """Membership of the shown customer in one group."""

    group_id = StringProperty("")


class DetailCard(widgets.Card):
    """A titled card of label/value pairs."""

    title = StringProperty("")


class WhatsAppCard(widgets.Card):
    """A chat with the customer via the shop phone: the text, then its wa.me QR code."""

    record = ObjectProperty(None, allownone=True)
    number_text = StringProperty("")
    message = StringProperty("")

    def show_code(self) -> None:
        open_whatsapp(App.get_running_app(), self.record, self.ids.whatsapp_message.text)


class CustomerDetailScreen(KioskScreen):
    customer_id = StringProperty("")
    view = ObjectProperty(None, allownone=True)
    is_attached = BooleanProperty(False)

    def prepare(self, customer_id: str | None = None, **_kwargs) -> None:
        if customer_id:
            self.customer_id = customer_id

    def refresh(self) -> None:
        if not self.customer_id:
            return
        try:
            self.view = CustomerView.load(self.store, self.customer_id)
        except customers.NotFound:
            self.view = None
            self.app.notify(_("This customer no longer exists."), "warning")
            self.app.back()
            return
        self.customer_id = self.view.id  # a merged customer leads to the survivor
        attached = self.app.session.customer
        self.is_attached = attached is not None and attached.id == self.view.id
        self._render()

    # -- building the page ---------------------------------------------------------------
    def _render(self) -> None:
        view = self.view
        record = view.record
        left, right = self.ids.left, self.ids.right
        left.clear_widgets()
        right.clear_widgets()
        self.ids.title.text = view.name
        self.ids.subtitle.text = _("Customer no. {number}").format(number=record["customer_no"])

        # right column first: what the cashier must see at once
        if view.observation:
            right.add_widget(widgets.Banner(text=view.observation, kind="danger", bold=True))
        for message in view.alerts:
            right.add_widget(widgets.Banner(text=message, kind="warning"))
        right.add_widget(self._groups_card(record["id"]))
        right.add_widget(self._consent_card(record))
        right.add_widget(self._whatsapp_card(record))
        right.add_widget(self._cards_card(record))
        answers = self._answers_card(record)
        if answers is not None:
            right.add_widget(answers)

        for title, names in SECTIONS:
            pairs = [
                (_(customers.FIELD_BY_NAME[n].label), formatting.field_text(record, n)) for n in names
            ]
            if title not in ALWAYS_SHOWN and not any(v for _l, v in pairs):
                continue
            left.add_widget(self._card(_(title), pairs))
        left.add_widget(
            self._card(
                _("Record"),
                [
                    (_("Customer number"), record["customer_no"]),
                    (_("Created"), formatting.timestamp_text(record.get("created_at"))),
                    (_("Created on device"), record.get("created_by") or ""),
                    (_("Home store"), record.get("home_store") or ""),
                ],
            )
        )
        for column in (left, right):  # takes the spare height, so the cards start at the top
            column.add_widget(Widget())

    def _card(self, title: str, pairs: list[tuple[str, str]]) -> DetailCard:
        card = DetailCard(title=title)
        grid = card.ids.grid
        for label, value in pairs:
            grid.add_widget(widgets.FieldView(label=label, value=value))
        return card

    def _groups_card(self, customer_id: str) -> DetailCard:
        card = DetailCard(title=_("Customer groups"))
        grid = card.ids.grid
        grid.cols = 2
        member_of = set(groups.of_customer(self.store, customer_id))
        all_groups = groups.all_groups(self.store)
        if not all_groups:
            grid.add_widget(widgets.BodyLabel(text=_("No groups are set up."), color=theme.MUTED))
        for group in all_groups:
            text = group["name"]
            if group["discount_bp"]:
                text += f"  −{formatting.percent_text(group['discount_bp'])}"
            toggle = GroupToggle(
                text=text,
                group_id=group["id"],
                state="down" if group["id"] in member_of else "normal",
                role_off="chip_off",
            )
            toggle.bind(on_release=self._toggle_group)
            grid.add_widget(toggle)
        return card

    def _toggle_group(self, toggle: GroupToggle) -> None:
        name = toggle.text.split("  ")[0]
        try:
            if toggle.state == "down":
                groups.assign(self.store, self.customer_id, toggle.group_id)
                self.app.notify(_("Added to group {group}").format(group=name), "success")
            else:
                groups.remove(self.store, self.customer_id, toggle.group_id)
                self.app.notify(_("Removed from group {group}").format(group=name))
        except (groups.GroupError, customers.NotFound) as exc:
            self.app.notify(str(exc), "danger")
        self.app.session.refresh()
        self.refresh()

    def _consent_card(self, record: dict) -> DetailCard:
        return self._card(
            _("Marketing consent"),
            [
                (_("E-mail"), formatting.consent_text(record, "email_consent")),
                (_("SMS"), formatting.consent_text(record, "sms_consent")),
            ],
        )

    def _whatsapp_card(self, record: dict) -> WhatsAppCard:
        number = messaging.whatsapp_number(record)
        return WhatsAppCard(record=record, number_text=customers.format_phone(number) if number else "",
                            message=greeting(record))  # fmt: skip

    def _cards_card(self, record: dict) -> DetailCard:
        card = DetailCard(title=_("Loyalty cards"))
        grid = card.ids.grid
        if not record["cards"]:
            grid.add_widget(widgets.BodyLabel(text=_("No card yet."), color=theme.MUTED))
        status_labels = {"active": _("active"), "blocked": _("blocked"), "inactive": _("inactive")}
        for c in record["cards"]:
            details = [status_labels.get(c["status"], c["status"])]
            if c["card_type"]:
                details.insert(0, c["card_type"])
            if c["valid_until"]:
                until = formatting.date_text(c["valid_until"][:10])
                details.append(_("valid until {date}").format(date=until))
            grid.add_widget(widgets.FieldView(label=c["card_no"], value=", ".join(details)))
        return card

    def _answers_card(self, record: dict) -> DetailCard | None:
        asked = questions.all_questions(self.store)
        if not asked:
            return None
        pairs = []
        for q in asked:
            value = record["answers"].get(q["key"])
            if isinstance(value, bool):
                value = _("Yes") if value else _("No")
            if value is None:
                value = ""
            elif q["kind"] == "number":
                value = str(value).replace(".", ",")
            pairs.append((q["label"], str(value)))
        return self._card(_("Additional information"), pairs)

    # -- actions ---------------------------------------------------------------------------
    def attach(self) -> None:
        self.app.attach_customer(self.customer_id)

    def edit(self) -> None:
        self.app.show("customer_form", customer_id=self.customer_id)
