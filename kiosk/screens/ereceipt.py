"""After the sale: the receipt by e-mail, and WhatsApp click-to-chat shown as a QR code.

The e-receipt prompt sits in the payment screen's "done" panel and follows
``messaging.ereceipt_offer`` (the ``ereceipt.*`` settings)::

    sale completed --"never"--> hidden
                   --"send" (always, e-mail known)--> queued at once --> done ("goes to …")
                   --"ask"--> ask: "Receipt by e-mail?" with the customer's address, or a field
    ask --Yes, address valid--> queued (a typed address is added to the customer) --> done
    ask --Yes, address bad or empty--> message under the field, nothing changes --> ask
    ask --No / "Next customer"--> hidden

The printed receipt is not affected: it is printed before any of this. Sending happens on the
hub (``storehub.messaging``: the PDF is attached there); the till only queues the message.

WhatsApp without the Cloud API: :func:`open_whatsapp` shows a ``wa.me`` link with the text
filled in as a QR code; the cashier's phone scans it and opens the chat with the customer.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from kivy.app import App
from kivy.metrics import dp
from kivy.properties import BooleanProperty, OptionProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.modalview import ModalView

from kiosk.engine import customers, messaging, settings
from kiosk.engine.stored_value import format_cents
from kiosk.i18n import _
from kiosk.screens import widgets  # noqa: F401  (kv rules used by ereceipt.kv)
from kiosk.screens.base import load_kv_once

_LOGGER = logging.getLogger(__name__)

_KV = Path(__file__).with_suffix(".kv")


def load_kv() -> None:
    load_kv_once(_KV)


def _customer(store, customer_id: str | None) -> dict[str, Any] | None:
    if not customer_id:
        return None
    try:
        return customers.get(store, customer_id)
    except customers.NotFound:
        return None


class EReceiptPrompt(BoxLayout):
    """The e-receipt part of the payment screen's "done" panel (see the module docstring)."""

    state = OptionProperty("hidden", options=["hidden", "ask", "done"])
    question = StringProperty("")
    address = StringProperty("")  # the customer's known e-mail; "" shows a field instead
    message = StringProperty("")  # what happened, or why nothing did
    error = BooleanProperty(False)

    def __init__(self, **kwargs: Any) -> None:
        load_kv()
        super().__init__(**kwargs)
        self.store = None
        self.sale_id: str | None = None
        self.kind = "sale"

    @property
    def app(self):
        return App.get_running_app()

    def reset(self) -> None:
        self.state = "hidden"
        self.question = self.address = self.message = ""
        self.error = False
        self.sale_id = None
        field = self.ids.email_input
        field.text, field.has_error, field.focus = "", False, False

    def offer(self, store, completed) -> str:
        """Right after ``sale.complete``: send, ask or do nothing; returns the offer."""
        self.reset()
        payload = completed.payload
        self.store, self.sale_id, self.kind = store, completed.id, messaging.document_type(payload)
        record = _customer(store, payload.get("customer_id"))
        offer = messaging.ereceipt_offer(store, self.kind, record)
        if offer == "send":
            self._send(None, record["email"])
        elif offer == "ask":
            self.address = (record or {}).get("email") or ""
            if self.address:
                self.question = _("Receipt by e-mail to {email}?").format(email=self.address)
            elif settings.get(store, "ereceipt.mode") == "always":
                self.question = _("E-mail address for the receipt?")
            else:
                self.question = _("Receipt by e-mail?")
            self.state = "ask"
        return offer

    def accept(self) -> None:
        """ "Yes": queue the e-receipt (to the known address, or the one typed)."""
        if self.state != "ask":
            return
        if self.address:
            self._send(None, self.address)
            return
        field = self.ids.email_input
        typed = field.text.strip()
        if not typed:
            self._refuse(_("Enter an e-mail address."))
            return
        self._send(typed, typed)

    def decline(self) -> None:
        """ "No": no e-mail; the printed receipt is all."""
        self.reset()

    def _refuse(self, text: str) -> None:
        self.message, self.error = text, True
        self.ids.email_input.has_error = not self.address

    def _send(self, typed: str | None, shown: str) -> None:
        try:
            result = messaging.send_ereceipt(self.store, self.sale_id, email=typed, kind=self.kind)
        except customers.ValidationError as exc:
            self._refuse(exc.errors.get("email") or str(exc))
            return
        except (messaging.MessagingError, customers.NotFound) as exc:
            self._refuse(str(exc))
            return
        if result.message_id is None:
            reasons = {
                "duplicate": _("This receipt was already sent by e-mail."),
                "no_address": _("Enter an e-mail address."),
            }
            self._refuse(reasons.get(result.reason, _("E-receipts are switched off for this sale.")))
            return
        field = self.ids.email_input
        field.has_error, field.focus = False, False
        self.state, self.error = "done", False
        self.message = _("The receipt goes by e-mail to {email}.").format(email=shown)


# -- WhatsApp click-to-chat ---------------------------------------------------------------------
def greeting(record: dict[str, Any]) -> str:
    """The text a chat with a customer starts with (the cashier may change it)."""
    return _("Hello {first_name},").format(first_name=record.get("first_name") or "").replace(" ,", ",")


def receipt_summary(store, completed) -> str:
    """A chat text about a completed sale: receipt number, total and the shop."""
    payload = completed.payload
    record = _customer(store, payload.get("customer_id")) or {}
    shop = settings.get(store, "shop.name")
    text = _("Your receipt {receipt}: {total}. Thank you for your visit!").format(
        receipt=completed.receipt_no, total=format_cents(completed.total_cents))  # fmt: skip
    lines = [greeting(record), text]
    if shop:
        lines.append(shop)
    return "\n".join(lines)


class WhatsAppPopup(ModalView):
    """The QR code of a wa.me link, for the cashier's phone to scan."""

    title = StringProperty("")
    number_text = StringProperty("")
    text = StringProperty("")
    url = StringProperty("")

    def __init__(self, **kwargs: Any) -> None:
        load_kv()
        super().__init__(size_hint=(None, None), size=(dp(620), dp(640)), auto_dismiss=False, **kwargs)

    def show_code(self) -> None:
        from kiosk.screens.display import qr_texture

        self.ids.qr.texture = qr_texture(self.url)


def open_whatsapp(app, record: dict[str, Any], text: str) -> WhatsAppPopup | None:
    """Show the QR code of a chat with this customer; a clear message when there is no number."""
    name = customers.display_name(record)
    number = messaging.whatsapp_number(record)
    if not number:
        app.notify(_("{name} has no mobile number. Add one with Edit first.").format(name=name),
                   "warning")  # fmt: skip
        return None
    if not text.strip():
        app.notify(_("Write the message first."), "warning")
        return None
    try:
        url = messaging.click_to_chat(number, text.strip())
    except messaging.MessagingError as exc:
        app.notify(str(exc), "warning")
        return None
    popup = WhatsAppPopup(title=_("WhatsApp to {name}").format(name=name),
                          number_text=customers.format_phone(number), text=text.strip(), url=url)  # fmt: skip
    popup.show_code()
    popup.open()
    app.whatsapp_popup = popup
    return popup
