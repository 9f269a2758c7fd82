"""Paying the sale: cash, card, gift card / voucher (scanned or typed), e-wallet, points;
what is still due or the change; completion; the receipt goes to the printer.

State diagram::

    paying --add/remove payment--> paying (due recomputed)
    paying --complete (due 0)--> done (change shown, receipt queued) --"Next customer"--> till
    done: the e-receipt is sent or offered (kiosk/screens/ereceipt.py), WhatsApp for the customer
    paying --"Back to basket"--> till (draft and payments kept)

Every payment is committed to the draft at once (``kiosk.engine.sale``), so a crash while
paying loses nothing. The receipt is built from the recorded sale (``kiosk.engine.receipt``)
and goes to ``app.hardware.print_receipt`` (rendered with the printer's layout into the print
queue, on a worker thread: printing never blocks the till); ``app.hardware.sale_completed``
opens the drawer for cash. A python-escpos printer set as ``app.receipt_printer`` (tests, demos)
is written directly instead.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from kivy.properties import BooleanProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout

from kiosk.engine import giftcards, receipt, sale, wallet
from kiosk.engine.stored_value import format_cents
from kiosk.i18n import _
from kiosk.screens.base import KioskScreen
from kiosk.screens.ereceipt import open_whatsapp, receipt_summary  # EReceiptPrompt: kv
from kiosk.screens.sale import AmountError, parse_cents

_LOGGER = logging.getLogger(__name__)


def receipt_printer(app) -> Any:
    """A python-escpos printer set as ``app.receipt_printer`` (tests, demos), else None: the
    till then prints through ``app.hardware`` (kiosk/hardware.py: print queue, layout)."""
    return getattr(app, "receipt_printer", None)


def render_receipt(model) -> bytes:
    """The ESC/POS bytes of a receipt model (rendered into a Dummy printer)."""
    from escpos.printer import Dummy

    from kiosk.drivers.receipt_escpos import render

    dummy = Dummy()
    render(model, dummy)
    return dummy.output


def send_to_printer(printer, data: bytes, ref: str) -> None:
    """Queue (EscposPrinter.submit) or write (a python-escpos printer) the bytes."""
    if hasattr(printer, "submit"):
        printer.submit(data, "receipt", ref)
    else:
        printer._raw(data)


class PaymentRow(BoxLayout):
    """One payment of the sale with a button to take it back."""

    pay_pos = StringProperty("")
    label = StringProperty("")
    amount_text = StringProperty("")

    def remove(self) -> None:
        screen = self.parent
        while screen is not None and not isinstance(screen, PaymentScreen):
            screen = screen.parent
        if screen is not None:
            screen.remove_payment(int(self.pay_pos))


class PaymentScreen(KioskScreen):
    total_text = StringProperty("")
    paid_text = StringProperty("")
    due_label = StringProperty("")
    due_text = StringProperty("")
    customer_text = StringProperty("")
    points_text = StringProperty("")
    message = StringProperty("")
    done = BooleanProperty(False)
    ready = BooleanProperty(False)
    redeeming = BooleanProperty(False)
    can_redeem = BooleanProperty(False)
    change_text = StringProperty("")
    done_text = StringProperty("")
    last_receipt_no = StringProperty("")
    printed = BooleanProperty(False)  # the receipt bytes went to the printer (tests wait on it)
    sale_has_customer = BooleanProperty(False)  # the finished sale's customer: WhatsApp offered

    @property
    def controller(self):
        return self.app.sale

    def on_kv_post(self, _base_widget) -> None:
        self._active = False
        self.completed: sale.CompletedSale | None = None
        self.app.sale.bind(quote=self._on_quote)

    def on_pre_enter(self, *_args) -> None:
        self._active = True  # repaint only while shown: scans at the till stay cheap
        super().on_pre_enter()

    def on_leave(self, *_args) -> None:
        self._active = False

    def prepare(self, **_kwargs: Any) -> None:
        self.done = False
        self.ids.ereceipt.reset()
        self.message = ""
        self.ids.code_input.text = ""

    def refresh(self) -> None:
        if not self.done:
            # an unchanged quote compares equal and dispatches nothing: paint it anyway
            self._on_quote(self.controller, self.controller.recompute())

    def go_back(self) -> bool:
        if self.done:
            self.next_customer()
            return True
        return False

    # -- repaint ----------------------------------------------------------------------------------
    def _on_quote(self, _controller, q) -> None:
        if q is None or self.done or not self._active:
            return
        self.total_text = format_cents(q.total_cents)
        self.paid_text = format_cents(q.paid_cents)
        if q.due_cents >= 0:
            self.due_label, self.due_text = _("Due"), format_cents(q.due_cents)
        else:
            self.due_label, self.due_text = _("To pay out"), format_cents(-q.due_cents)
        self.change_text = format_cents(q.change_cents) if q.change_cents else ""
        self.ready = q.ready
        self.redeeming = q.redemption is not None
        self.can_redeem = bool(q.loyalty.can_redeem) and q.total_cents > 0
        self.message = "  ".join(q.problems)
        if q.customer is not None:
            from kiosk.engine import customers

            self.customer_text = customers.display_name(q.customer)
            self.points_text = (_("{points} points, redeemable {amount}").format(
                points=q.loyalty.balance, amount=format_cents(q.loyalty.redeemable_cents))
                if q.loyalty.enabled else "")  # fmt: skip
        else:
            self.customer_text = self.points_text = ""
        box = self.ids.payments
        box.clear_widgets()
        for p in q.payments:
            label = p.label
            if p.method == "points":
                label = _("Points ({points})").format(points=p.points)
            elif p.ref:
                label = f"{p.label} {p.ref}"
            amount = p.tendered_cents if p.method == "cash" and p.tendered_cents else p.amount_cents
            box.add_widget(PaymentRow(pay_pos=str(p.pos), label=label,
                                      amount_text=format_cents(amount)))  # fmt: skip
        amount_input = self.ids.amount_input
        if not amount_input.focus:
            amount_input.text = _cents_text(max(q.due_cents, 0)) if q.due_cents > 0 else ""

    # -- actions ------------------------------------------------------------------------------------
    def _run(self, func, *args) -> bool:
        try:
            func(*args)
        except (sale.SaleError, AmountError) as exc:
            self.app.notify(str(exc), "warning")
            return False
        return True

    def _amount(self) -> int | None:
        field = self.ids.amount_input
        try:
            cents = parse_cents(field.text)
        except AmountError as exc:
            self.app.notify(str(exc), "warning")
            field.has_error = True
            return None
        field.has_error = False
        if cents <= 0:
            self.app.notify(_("Enter the amount."), "warning")
            return None
        return cents

    def pay_cash(self) -> None:
        cents = self._amount()
        if cents is not None:
            self._run(self.controller.add_payment, "cash", cents)

    def pay_card(self) -> None:
        cents = self._amount()
        if cents is not None:
            self._run(self.controller.add_payment, "card", cents)

    def pay_wallet(self) -> None:
        code = self.ids.code_input.text.strip()
        if not code:
            self.app.notify(_("Scan or type the card number."), "warning")
            return
        cents = self._amount()
        if cents is not None and self._run(self.controller.add_payment, "wallet", cents, code):
            self.ids.code_input.text = ""

    def pay_stored(self, method: str) -> None:
        """A gift card or voucher typed into the code field: its amount is computed."""
        code = self.ids.code_input.text.strip()
        if not code:
            self.app.notify(_("Scan or type the card number."), "warning")
            return
        if self._run(self.controller.add_payment, method, 0, code):
            self.ids.code_input.text = ""

    def toggle_points(self) -> None:
        self._run(self.controller.redeem_points, None if self.redeeming else 0)

    def remove_payment(self, pos: int) -> None:
        self._run(self.controller.remove_payment, pos)

    def handle_code(self, code: str) -> bool:
        """A card scanned while paying: gift card, voucher or e-wallet pays (what is due)."""
        store = self.controller.store
        q = self.controller.quote
        try:
            card = giftcards.lookup(store, code)
        except giftcards.GiftCardError:
            card = None
        if card is not None:
            self._run(self.controller.add_payment, card.kind if card.kind == "voucher"
                      else "giftcard", 0, card.code)  # fmt: skip
            return True
        try:
            purse = wallet.lookup(store, code)
        except wallet.WalletError:
            self.app.notify(_("Unknown code {code}.").format(code=code), "warning")
            return True
        amount = min(purse.balance_cents, max(q.due_cents, 0) if q else 0)
        if amount <= 0:
            self.app.notify(_("Nothing is due that this card could pay."), "warning")
            return True
        self._run(self.controller.add_payment, "wallet", amount, purse.number)
        return True

    def complete(self) -> None:
        self.done = True  # first: the next (empty) basket must not repaint the finished sale
        try:
            done = self.controller.complete()
        except sale.SaleError as exc:
            self.done = False
            self.app.notify(str(exc), "warning")
            return
        self.printed = False
        self.last_receipt_no = done.receipt_no
        self.change_text = format_cents(done.change_cents)
        self.done_text = _("Sale {receipt} completed.").format(receipt=done.receipt_no)
        self.print_receipt(done.id, done.receipt_no)
        hardware = getattr(self.app, "hardware", None)
        if hardware is not None:
            hardware.sale_completed(done)  # drawer for cash, total on the pole display
        self.completed = done
        self.sale_has_customer = bool(done.payload.get("customer_id"))
        self.offer_ereceipt(done)

    def offer_ereceipt(self, done: sale.CompletedSale) -> None:
        """Send the receipt by e-mail, or ask, as the shop set it (never blocks the sale)."""
        try:
            self.ids.ereceipt.offer(self.controller.store, done)
        except Exception:  # the sale is done and printed; an e-mail problem must not undo that
            _LOGGER.exception("e-receipt for %s not offered", done.receipt_no)
            self.app.notify(_("The receipt could not be offered by e-mail."), "warning")

    def whatsapp(self) -> None:
        """The finished sale as a WhatsApp message to its customer (QR code for the shop phone)."""
        done = self.completed
        customer_id = done.payload.get("customer_id") if done is not None else None
        if not customer_id:
            return
        from kiosk.engine import customers

        try:
            record = customers.get(self.controller.store, customer_id)
        except customers.NotFound:
            self.app.notify(_("This customer no longer exists."), "warning")
            return
        open_whatsapp(self.app, record, receipt_summary(self.controller.store, done))

    def print_receipt(self, sale_id: str, receipt_no: str) -> None:
        """Build the receipt now (a read); render and send it on a worker thread."""
        model = receipt.build(self.controller.store, sale_id)
        printer = receipt_printer(self.app)
        if printer is None:
            hardware = getattr(self.app, "hardware", None)
            if hardware is None or not hardware.print_receipt(
                model, receipt_no, on_queued=lambda: setattr(self, "printed", True)
            ):
                self.app.notify(_("No receipt printer: receipt {no} was not printed.").format(
                    no=receipt_no), "warning")  # fmt: skip
            return

        def work() -> None:
            try:
                send_to_printer(printer, render_receipt(model), receipt_no)
            except Exception as exc:
                _LOGGER.exception("receipt %s not printed", receipt_no)
                self.app.post(self.app.notify, _("Receipt not printed: {error}").format(
                    error=exc), "danger")  # fmt: skip
                return
            self.app.post(setattr, self, "printed", True)

        threading.Thread(target=work, name=f"receipt-{receipt_no}", daemon=True).start()

    def next_customer(self) -> None:
        self.done = False
        self.sale_has_customer = False
        self.ids.ereceipt.reset()
        self.app.home()


def _cents_text(cents: int) -> str:
    return f"{cents // 100},{cents % 100:02d}"
