"""The basket of the till: scan or type EANs, lines with quantity and discount, the total, and
the attached customer's points (balance, redeemable value, the "minimum reached" hint) and
level gifts (all shown, only the reachable ones can be picked).

``SaleController`` holds the draft the till is ringing up (``kiosk.engine.sale``: every change
is committed before it is shown) and the last ``Quote``; ``SalePanel`` is the widget placed in
the till screen's ``basket`` area and repaints from the controller. ``install(app, till)``
wires both into the till (called from ``kiosk.app``)::

    scan / typed EAN --> controller.scan --> sale.scan + sale.quote --> quote --> panel repaint
    session.customer changes --> sale.attach_customer --> quote
    "Pay" --> payment screen (kiosk/screens/payment.py) --> sale.complete --> new draft
"""

from __future__ import annotations

import logging
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from kivy.app import App
from kivy.clock import Clock
from kivy.event import EventDispatcher
from kivy.lang import Builder
from kivy.metrics import dp
from kivy.properties import (
    BooleanProperty,
    ListProperty,
    NumericProperty,
    ObjectProperty,
    StringProperty,
)
from kivy.uix.behaviors import ButtonBehavior
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.relativelayout import RelativeLayout

from kiosk.engine import catalog, loyalty, sale
from kiosk.engine.stored_value import format_cents
from kiosk.i18n import _
from kiosk.screens import widgets  # noqa: F401  (kv rules used by sale.kv)
from kiosk.screens.formatting import percent_text
from kiosk.screens.widgets import QuietScrollView

_LOGGER = logging.getLogger(__name__)

Builder.load_file(str(Path(__file__).with_suffix(".kv")))


class AmountError(ValueError):
    """The cashier typed something that is not an amount."""


def parse_cents(text: str) -> int:
    """``12,50`` / ``12.50`` / ``12`` → 1250 cents; raises AmountError with a readable text."""
    raw = (text or "").strip().replace("€", "").replace(" ", "")
    if raw.count(",") == 1 and "." in raw:  # 1.234,56
        raw = raw.replace(".", "")
    raw = raw.replace(",", ".")
    try:
        value = Decimal(raw)
    except InvalidOperation as exc:
        raise AmountError(_("Enter an amount such as 12,50.")) from exc
    if not value.is_finite() or value < 0 or value != value.quantize(Decimal("0.01")):
        raise AmountError(_("Enter an amount such as 12,50."))
    if value > 100_000:
        raise AmountError(_("This amount is too large."))
    return int(value * 100)


def parse_percent_bp(text: str) -> int:
    """``10`` / ``12,5`` → basis points (1000 / 1250)."""
    try:
        cents = parse_cents(text.replace("%", ""))
    except AmountError as exc:
        raise AmountError(_("Enter a percentage such as 10.")) from exc
    if cents > 10_000:
        raise AmountError(_("A discount cannot exceed 100 %."))
    return cents


def line_texts(ln: Any) -> dict[str, Any]:
    """What one basket row shows (``ln`` is a ``promotions.Line`` from the quote)."""
    discount = ""
    if ln.discount_cents:
        discount = "  ".join(f"{d.label} −{format_cents(d.cents)}" for d in ln.discounts if d.cents)
    name = ln.name
    if ln.kind == "gift":
        name = _("Gift: {name}").format(name=ln.name)
    return {
        "line_pos": ln.pos,
        "kind": ln.kind,
        "name_text": name,
        "qty_text": str(ln.qty),
        "unit_text": format_cents(ln.unit_cents),
        "discount_text": discount,
        "total_text": format_cents(ln.total_cents),
    }


class SaleController(EventDispatcher):
    """The sale being rung up at this till, and its current quote."""

    quote = ObjectProperty(None, allownone=True)  # sale.Quote
    gifts = ListProperty([])  # loyalty.GiftOption, for the attached customer
    selected = NumericProperty(0)  # pos of the selected line (0: none)
    # bumped after each repaint of the quote, for whoever waits for "shown" (tests, bench)
    version = NumericProperty(0)

    def __init__(self, store, session, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.store = store
        self.session = session
        self._draft: str | None = None
        session.bind(customer=self._on_session_customer)

    # -- the draft ----------------------------------------------------------------------------
    @property
    def draft(self) -> str:
        """The open draft (after a restart: the basket that was being rung up)."""
        if self._draft is None:
            self._draft = sale.open_draft(self.store)
        return self._draft

    def recompute(self) -> sale.Quote:
        """Re-price the draft and re-read the customer's gifts (after every change)."""
        try:
            q = sale.quote(self.store, self.draft)
        except sale.SaleError:  # the draft went away (completed elsewhere, cancelled)
            self._draft = None
            q = sale.quote(self.store, self.draft)
        customer_id = q.customer["id"] if q.customer else None
        self.gifts = loyalty.gifts_for(self.store, customer_id) if customer_id else []
        self.quote = q
        if self.selected and not any(ln.pos == self.selected for ln in q.lines):
            self.selected = 0
        self.version += 1
        return q

    # -- commands (each raises sale.SaleError with the cashier's message) ------------------------
    def scan(self, code: str) -> sale.ScanResult:
        result = sale.scan(self.store, self.draft, code)
        if result.kind == "product":
            self.selected = result.pos or 0
        if result.kind in ("customer", "vip"):
            self._sync_session()
        self.recompute()
        return result

    def add_product(self, code: str) -> int:
        code = code.strip()
        if not code:
            raise sale.SaleError(_("Nothing was scanned."))
        try:
            pos = sale.add_product(self.store, self.draft, code)
        except catalog.UnknownProduct as exc:
            raise sale.SaleError(_("No product with the barcode {code}.").format(code=code)) from exc
        self.selected = pos
        self.recompute()
        return pos

    def set_quantity(self, pos: int, qty: int) -> None:
        if qty <= 0:
            sale.remove_line(self.store, self.draft, pos)
        else:
            sale.set_quantity(self.store, self.draft, pos, qty)
        self.recompute()

    def remove_line(self, pos: int) -> None:
        sale.remove_line(self.store, self.draft, pos)
        self.recompute()

    def set_line_discount(self, pos: int, percent_bp: int) -> None:
        sale.set_line_discount(self.store, self.draft, pos, percent_bp=percent_bp)
        self.recompute()

    def redeem_points(self, points: int | None = 0) -> None:
        """Redeem as many points as are useful (0), a number, or undo (None)."""
        sale.redeem_points(self.store, self.draft, points)
        self.recompute()

    def choose_gift(self, product_id: str | None) -> None:
        sale.choose_gift(self.store, self.draft, product_id)
        self.recompute()

    def add_payment(self, method: str, amount_cents: int = 0, ref: str | None = None) -> int:
        pos = sale.add_payment(self.store, self.draft, method, amount_cents, ref=ref)
        self.recompute()
        return pos

    def remove_payment(self, pos: int) -> None:
        if pos == 0:  # the points "payment" is the redemption
            sale.redeem_points(self.store, self.draft, None)
        else:
            sale.remove_payment(self.store, self.draft, pos)
        self.recompute()

    def cancel(self) -> None:
        """Throw the basket away and start a new one (no customer)."""
        sale.cancel(self.store, self.draft)
        self._draft = None
        self.selected = 0
        self.session.detach()
        self.recompute()

    def complete(self) -> sale.CompletedSale:
        done = sale.complete(self.store, self.draft)
        self._draft = None
        self.selected = 0
        self.session.detach()
        self.recompute()
        return done

    # -- keeping the draft's customer and the till session's customer the same ---------------
    def _on_session_customer(self, _session, view) -> None:
        wanted = view.id if view is not None else None
        q = self.quote
        have = q.customer["id"] if q is not None and q.customer else None
        if wanted == have and q is not None:
            return
        try:
            sale.attach_customer(self.store, self.draft, wanted)
        except sale.SaleError as exc:
            _LOGGER.warning("customer not put on the sale: %s", exc)
        self.recompute()

    def _sync_session(self) -> None:
        row = sale.quote(self.store, self.draft)
        if row.customer is not None and (
            self.session.customer is None or self.session.customer.id != row.customer["id"]
        ):
            self.quote = row  # so _on_session_customer sees the customer is already there
            self.session.attach(row.customer["id"])


class BasketRow(ButtonBehavior, RelativeLayout):
    """One line of the basket; tap to select it."""

    line_pos = NumericProperty(0)
    kind = StringProperty("product")
    name_text = StringProperty("")
    qty_text = StringProperty("")
    unit_text = StringProperty("")
    discount_text = StringProperty("")
    total_text = StringProperty("")
    selected = BooleanProperty(False)

    def on_release(self) -> None:
        panel = _panel_of(self)
        if panel is not None:
            panel.select(self.line_pos)


class BasketList(QuietScrollView):
    """The basket's lines, one ``BasketRow`` per line, kept from one quote to the next.

    A scan changes one line (or adds one at the end): only that row's texts change, so only
    its labels are rendered again. (A RecycleView re-binds every visible row to other data on
    any change of its data, and renders all their labels anew.) Rows of lines that went away
    are kept for the next ones, and spare rows are made ahead (at start, and while the till
    is idle), so a scan does not wait the few ms it takes to build one.
    """

    data = ListProperty([])  # the rows shown: line_texts() plus selected and height
    SPARE = 12  # rows made at start; kept at least 2 spare for longer baskets

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._rows: dict[int, BasketRow] = {}  # line pos -> its row
        self._spare = [BasketRow() for _ in range(self.SPARE)]
        self._fill_spare = Clock.create_trigger(self._make_spare, 0.5)

    def on_width(self, _list, width: float) -> None:
        # spare rows laid out ahead at the list's width: their labels are rendered once
        for row in self._spare:
            row.width = width

    @property
    def rows(self) -> list[BasketRow]:
        """The row widgets, top to bottom."""
        return list(reversed(self.ids.box.children))

    def set_rows(self, rows: list[dict[str, Any]]) -> None:
        box = self.ids.box
        wanted = {r["line_pos"] for r in rows}
        for pos in [p for p in self._rows if p not in wanted]:
            row = self._rows.pop(pos)
            box.remove_widget(row)
            self._spare.append(row)
        order = []
        for r in rows:
            row = self._rows.get(r["line_pos"])
            if row is None:
                row = self._rows[r["line_pos"]] = self._spare.pop() if self._spare else BasketRow()
            for key, value in r.items():
                setattr(row, key, value)  # an unchanged value changes nothing on screen
            order.append(row)
        shown = self.rows
        if shown != order:
            if order[: len(shown)] != shown:  # not just lines added at the end
                box.clear_widgets()
                shown = []
            for row in order[len(shown):]:
                box.add_widget(row)  # goes below the others in a vertical BoxLayout
        self.data = rows
        if len(self._spare) < 2:
            self._fill_spare()  # half a second later: between scans

    def select(self, pos: int) -> None:
        for r in self.data:
            r["selected"] = r["line_pos"] == pos
        for row in self._rows.values():
            row.selected = row.line_pos == pos

    def _make_spare(self, _dt=None) -> None:
        self._spare.append(BasketRow(width=self.width))
        if len(self._spare) < 2:
            self._fill_spare()


class GiftButton(BoxLayout):
    """A level gift: always listed, pickable only when the customer's points reach it."""

    product_id = StringProperty("")
    text = StringProperty("")
    reachable = BooleanProperty(False)
    chosen = BooleanProperty(False)

    def pick(self) -> None:
        panel = _panel_of(self)
        if panel is not None:
            panel.pick_gift(self.product_id)


def _panel_of(widget) -> SalePanel | None:
    node = widget.parent
    while node is not None and not isinstance(node, SalePanel):
        node = node.parent
    return node


class SalePanel(BoxLayout):
    """The basket area of the till screen."""

    controller = ObjectProperty(None)
    has_customer = BooleanProperty(False)
    has_lines = BooleanProperty(False)
    has_selection = BooleanProperty(False)
    redeeming = BooleanProperty(False)
    can_redeem = BooleanProperty(False)
    total_text = StringProperty("")
    summary_text = StringProperty("")
    points_text = StringProperty("")
    redeemable_text = StringProperty("")
    hint_text = StringProperty("")
    earn_text = StringProperty("")
    message = StringProperty("")

    def __init__(self, controller: SaleController, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.controller = controller
        controller.bind(quote=self._on_quote, gifts=self._on_gifts, selected=self._on_selected)
        self._shown_gifts: list[tuple] = []
        self._on_quote(controller, controller.quote)

    @property
    def app(self):
        return App.get_running_app()

    # -- repaint --------------------------------------------------------------------------------
    def _on_quote(self, _controller, q) -> None:
        if q is None:
            return
        selected = self.controller.selected
        rows = []
        for ln in q.lines:
            row = line_texts(ln)
            row["selected"] = ln.pos == selected
            row["height"] = dp(76) if row["discount_text"] else dp(56)
            rows.append(row)
        self.ids.lines.set_rows(rows)
        self._keep_in_sight(rows, selected)
        self.has_lines = bool(rows)
        self.has_selection = any(r["selected"] for r in rows)
        self.total_text = format_cents(q.total_cents)
        parts = [_("{n} items").format(n=sum(ln.qty for ln in q.lines if ln.kind == "product"))]
        if q.discount_cents:
            parts.append(_("discount {amount}").format(amount=format_cents(q.discount_cents)))
        self.summary_text = "  ·  ".join(parts)
        info = q.loyalty
        self.has_customer = q.customer is not None
        self.redeeming = q.redemption is not None
        if q.customer is not None and info.enabled:
            points = _("{points} points").format(points=info.balance)
            if info.card_no:
                points += "  ·  " + _("card {number}").format(number=info.card_no)
            self.points_text = points  # set once: each change renders the label again
            if info.can_redeem and info.redeemable_cents:
                self.redeemable_text = _("Redeemable: {points} points = {amount}").format(
                    points=info.redeemable_points, amount=format_cents(info.redeemable_cents))
            elif info.can_redeem:
                self.redeemable_text = _("Redeemable: {points} points").format(
                    points=info.redeemable_points)
            elif info.min_points:
                self.redeemable_text = _("Redeemable from {points} points").format(
                    points=info.min_points)
            else:
                self.redeemable_text = ""
            self.hint_text = info.hint
            self.can_redeem = info.can_redeem and q.total_cents > 0
            if q.redemption is not None:
                value = q.redemption.value_cents or sum(
                    d.cents for ln in q.lines for d in ln.discounts if d.source == "loyalty_direct")
                self.redeemable_text = _("Redeeming {points} points = {amount}").format(
                    points=q.redemption.points, amount=format_cents(value))
            self.earn_text = (_("This sale earns {points} points").format(points=q.points_to_earn)
                              if q.points_to_earn > 0 else "")  # fmt: skip
        else:
            self.points_text = self.redeemable_text = self.hint_text = self.earn_text = ""
            self.can_redeem = False
        self.message = "  ".join(q.problems)
        self._on_gifts(self.controller, self.controller.gifts)

    def _keep_in_sight(self, rows: list[dict[str, Any]], pos: int) -> None:
        """Scroll so the line just scanned or changed is visible in this very frame (the row
        heights are known here, before the layout has placed the rows)."""
        view = self.ids.lines
        content = sum(r["height"] for r in rows)
        spare = content - view.height
        if spare <= 0:
            view.scroll_y = 1
            return
        top = 0.0
        for r in rows:
            if r["line_pos"] == pos:
                break
            top += r["height"]
        else:  # nothing selected: the end of the basket
            view.scroll_y = 0
            return
        bottom = top + next(r["height"] for r in rows if r["line_pos"] == pos)
        shown_top = (1 - view.scroll_y) * spare
        if top < shown_top:
            shown_top = top
        elif bottom > shown_top + view.height:
            shown_top = bottom - view.height
        view.scroll_y = 1 - min(max(shown_top, 0), spare) / spare

    def on_has_selection(self, _panel, selected: bool) -> None:
        if not selected:
            # the line actions are hidden: a discount typed there is moot, and a focused field
            # would keep the keyboard up and its hidden cursor blinking (a repaint each time)
            self.ids.discount_input.focus = False

    def _on_gifts(self, _controller, gifts) -> None:
        q = self.controller.quote
        chosen = next((ln.product_id for ln in q.lines if ln.kind == "gift"), None) if q else None
        shown = [(g.product.id, g.reachable, g.product.id == chosen) for g in gifts]
        if shown == self._shown_gifts:
            return  # unchanged: keep the widgets (a scan must stay cheap)
        self._shown_gifts = shown
        box = self.ids.gifts
        box.clear_widgets()
        for g in gifts:
            box.add_widget(GiftButton(
                product_id=g.product.id, reachable=g.reachable, chosen=g.product.id == chosen,
                text=_("{name} · {level} · {points} points").format(
                    name=g.product.name, level=g.level_name, points=g.points),
            ))  # fmt: skip

    def _on_selected(self, _controller, pos: int) -> None:
        # A scan selects its line before the quote with that line arrives (same frame): the
        # line actions stay shown rather than flicker off and on (each time re-rendering them).
        self.ids.lines.select(pos)
        self.has_selection = bool(pos)

    # -- actions ---------------------------------------------------------------------------------
    def _run(self, func, *args) -> bool:
        """Run a controller command; a refusal is shown to the cashier and changes nothing."""
        try:
            func(*args)
        except (sale.SaleError, AmountError) as exc:
            self.app.notify(str(exc), "warning")
            return False
        return True

    def scan_typed(self, field) -> None:
        """The EAN field was confirmed (Enter): ring up what was typed."""
        code = field.text.strip()
        field.text = ""
        if code:
            self.handle_code(code)

    def handle_code(self, code: str) -> bool:
        """A scanned or typed code: product, customer card, VIP card, gift card …"""
        if self.app.screens.current == "payment":
            return self.app.screen("payment").handle_code(code)
        try:
            result = self.controller.scan(code)
        except sale.SaleError as exc:
            self.app.notify(str(exc), "warning")
            return True
        if result.kind in ("giftcard", "voucher", "wallet"):
            from kiosk.engine import giftcards, wallet

            if result.kind == "wallet":
                amount = wallet.balance(self.controller.store, result.card.number)
            else:
                amount = giftcards.balance(self.controller.store, result.card.code)
            self.app.notify(_("Balance: {amount}. Use it on the payment screen.").format(
                amount=format_cents(amount)))  # fmt: skip
        return True

    def select(self, pos: int) -> None:
        self.controller.selected = 0 if self.controller.selected == pos else pos

    def _selected_line(self):
        q = self.controller.quote
        return next((ln for ln in q.lines if ln.pos == self.controller.selected), None) if q else None

    def change_qty(self, delta: int) -> None:
        ln = self._selected_line()
        if ln is not None:
            self._run(self.controller.set_quantity, ln.pos, ln.qty + delta)

    def remove_selected(self) -> None:
        ln = self._selected_line()
        if ln is not None:
            self._run(self.controller.remove_line, ln.pos)

    def discount_selected(self, field) -> None:
        ln = self._selected_line()
        if ln is None:
            return
        try:
            bp = parse_percent_bp(field.text)
        except AmountError as exc:
            self.app.notify(str(exc), "warning")
            return
        if self._run(self.controller.set_line_discount, ln.pos, bp):
            field.text = ""
            field.focus = False
            if bp:
                self.app.notify(_("Discount {percent} on {name}").format(
                    percent=percent_text(bp), name=ln.name))  # fmt: skip

    def toggle_redeem(self) -> None:
        self._run(self.controller.redeem_points, None if self.redeeming else 0)

    def pick_gift(self, product_id: str) -> None:
        q = self.controller.quote
        chosen = next((ln.product_id for ln in q.lines if ln.kind == "gift"), None)
        self._run(self.controller.choose_gift, None if chosen == product_id else product_id)

    def pay(self) -> None:
        if self.controller.quote is None or not self.controller.quote.lines:
            self.app.notify(_("The basket is empty."), "warning")
            return
        from kiosk.screens.ticker import before_payment  # "Kundendatensatz anlegen?"

        before_payment(self.app, lambda: self.app.show("payment"))

    def cancel_sale(self) -> None:
        self._run(self.controller.cancel)


def install(app, till_screen) -> list:
    """Put the basket into the till screen and return the sale's other screens."""
    from kiosk.screens.payment import PaymentScreen

    controller = SaleController(app.store, app.session)
    app.sale = controller
    panel = SalePanel(controller)
    till_screen.ids.basket.add_widget(panel)
    app.barcode_handlers.append(panel.handle_code)
    controller.recompute()
    return [PaymentScreen(name="payment")]
