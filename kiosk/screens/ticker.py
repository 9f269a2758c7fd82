"""The till's in-store extras: the scrolling directives, the no-customer nudge, the Clipad
button and the basket feed of the customer display. ``install_till(app, till_screen)`` adds
them to the till screen; the sale screens call :func:`before_payment`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from kivy.animation import Animation
from kivy.clock import Clock
from kivy.metrics import dp
from kivy.properties import BooleanProperty, StringProperty
from kivy.uix.modalview import ModalView
from kivy.uix.stencilview import StencilView

from kiosk.engine import directives
from kiosk.engine import display as display_engine
from kiosk.screens.base import load_kv_once

_LOGGER = logging.getLogger(__name__)

REFRESH_S = 5.0  # directives change rarely; a synced change shows within this
SPEED_DP_S = 90.0  # scrolling speed
SEPARATOR = "     +++     "


class DirectiveTicker(StencilView):
    """One line that scrolls right to left; hidden when there is nothing to say."""

    text = StringProperty("")
    shown = BooleanProperty(False)

    def __init__(self, **kwargs):
        load_kv()
        super().__init__(**kwargs)
        self._anim: Animation | None = None
        self.bind(text=self._restart, width=self._restart)

    def halt(self) -> None:
        self.unbind(text=self._restart, width=self._restart)
        if self._anim is not None:
            self._anim.unbind(on_complete=self._again)
            self._anim.cancel(self.ids.label)
            self._anim = None

    def _again(self, *_a) -> None:
        Clock.schedule_once(self._restart, 0)

    def set_messages(self, texts: list[str]) -> None:
        self.shown = bool(texts)
        self.text = SEPARATOR.join(texts)

    def _restart(self, *_a) -> None:
        label = self.ids.label
        if self._anim is not None:
            self._anim.cancel(label)
        label.texture_update()
        if not self.text:
            return
        label.x = self.right
        distance = self.width + label.texture_size[0]
        self._anim = Animation(x=self.x - label.texture_size[0], duration=distance / dp(SPEED_DP_S))
        self._anim.bind(on_complete=self._again)
        self._anim.start(label)


_KV = Path(__file__).with_suffix(".kv")


def load_kv() -> None:
    load_kv_once(_KV)


class NudgePopup(ModalView):
    """ "Kundendatensatz anlegen?" before payment when the sale has no customer."""

    text = StringProperty("")

    def __init__(self, text: str, app, proceed: Callable[[], None], **kwargs):
        super().__init__(size_hint=(None, None), size=(dp(560), dp(300)), auto_dismiss=False, **kwargs)
        self.text, self.app, self.proceed = text, app, proceed

    def find(self) -> None:
        self.dismiss()
        self.app.show("customer_search", query="")

    def new(self) -> None:
        self.dismiss()
        self.app.show("customer_form")

    def clipad(self) -> None:
        self.dismiss()
        self.app.till_clipad.choose()

    def go_on(self) -> None:
        self.dismiss()
        self.proceed()


def before_payment(app, proceed: Callable[[], None]) -> None:
    """Ask the nudge question when the sale has no customer, else go straight on."""
    attached = app.session is not None and app.session.customer is not None
    text = directives.nudge(app.store, attached)
    if text is None:
        proceed()
        return
    load_kv()
    app.nudge_popup = NudgePopup(text, app, proceed)
    app.nudge_popup.open()


class TillExtras:
    """Keeps the ticker current and mirrors the basket to the customer display."""

    def __init__(self, app, ticker: DirectiveTicker) -> None:
        self.app = app
        self.ticker = ticker
        self.seq = 0
        self.publisher = None
        cfg = app.device_config
        if cfg.hub.host:
            from kiosk.display_link import BasketPublisher

            self.publisher = BasketPublisher(cfg.hub, cfg.identity.store_id, cfg.identity.device_id)
            app.services.append(self.publisher)
        self._ev = None
        sale = getattr(app, "sale", None)
        if sale is not None:
            sale.bind(quote=lambda *_a: self.publish())

    def start(self) -> None:
        self._ev = Clock.schedule_interval(self.refresh_directives, REFRESH_S)
        self.refresh_directives()
        self.publish()

    def stop(self) -> None:
        if self._ev is not None:
            self._ev.cancel()
        self.ticker.halt()

    def refresh_directives(self, _dt=None) -> None:
        store = self.app.store
        cashier = getattr(self.app, "cashier", None)
        found = directives.current(store, store_id=store.identity.store_id, cashier=cashier)
        texts = [d.text for d in found]
        if SEPARATOR.join(texts) != self.ticker.text:
            self.ticker.set_messages(texts)

    def snapshot(self) -> display_engine.Snapshot:
        sale = getattr(self.app, "sale", None)
        quote = sale.quote if sale is not None else None
        qr = getattr(getattr(self.app, "till_clipad", None), "qr", [])
        self.seq += 1
        return display_engine.snapshot(self.app.store, quote, self.seq, qr=qr)

    def publish(self) -> None:
        if self.publisher is not None:
            self.publisher.publish(self.snapshot())


def install_till(app, till_screen) -> None:
    """Add the ticker on top of the till screen, the Clipad button and the display feed."""
    from kiosk.screens.clipad import till_button

    ticker = DirectiveTicker()
    root = till_screen.children[0]
    root.add_widget(ticker, index=len(root.children))  # first row
    till_button(app, till_screen)
    app.till_extras = TillExtras(app, ticker)
    app.services.append(app.till_extras)
    app.display_changed = app.till_extras.publish
