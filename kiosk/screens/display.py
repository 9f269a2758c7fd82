"""The customer display: the paired till's basket beside the shop's media; media only when idle.

The basket arrives as :class:`kiosk.engine.display.Snapshot` over MQTT
(:mod:`kiosk.display_link`); the media list is the ``display.media`` setting (images, videos
that loop, web pages shown as a QR code with their address, as the display has no browser).
"""

from __future__ import annotations

import io
import logging

import qrcode
from kivy.clock import Clock
from kivy.core.image import Image as CoreImage
from kivy.properties import (
    BooleanProperty,
    ColorProperty,
    ListProperty,
    ObjectProperty,
    StringProperty,
)
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.image import Image
from kivy.uix.label import Label

from kiosk.engine import settings
from kiosk.engine.display import Snapshot
from kiosk.engine.receipt import money
from kiosk.i18n import _
from kiosk.screens import theme
from kiosk.screens.base import KioskScreen

_LOGGER = logging.getLogger(__name__)


def qr_texture(data: str):
    """A Kivy texture of a QR code (sharp: no smoothing when scaled)."""
    img = qrcode.make(data, border=2, box_size=8)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    buf.seek(0)
    tex = CoreImage(buf, ext="png").texture
    tex.mag_filter = "nearest"
    return tex


class BasketLine(BoxLayout):
    name = StringProperty("")
    qty = StringProperty("")
    total = StringProperty("")
    discount = StringProperty("")


class QrBox(BoxLayout):
    caption = StringProperty("")
    texture = ObjectProperty(None, allownone=True)
    text_color = ColorProperty(theme.TEXT)


class DisplayScreen(KioskScreen):
    """Split screen (basket | media); the basket part disappears when the till is idle."""

    idle = BooleanProperty(True)
    greeting = StringProperty("")
    total_text = StringProperty("")
    discount_text = StringProperty("")
    points_text = StringProperty("")
    media_caption = StringProperty("")
    qr_captions = ListProperty([])
    line_names = ListProperty([])  # what is shown, for tests and the status page

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.snapshot: Snapshot | None = None
        self._media: list[dict] = []
        self._media_pos = -1
        self._media_ev = None

    # started and stopped with the app (a service): the media timer dies with it
    def start(self) -> None:
        self.next_medium()

    def stop(self) -> None:
        if self._media_ev is not None:
            self._media_ev.cancel()
            self._media_ev = None
        for child in list(self.ids.media.children):
            if hasattr(child, "unload"):
                child.state = "stop"
                child.unload()

    # -- basket ----------------------------------------------------------------------------
    def show_snapshot(self, snap: Snapshot) -> None:
        self.snapshot = snap
        self.idle = snap.idle
        box = self.ids.lines
        box.clear_widgets()
        for ln in snap.lines:
            box.add_widget(BasketLine(
                name=ln.name, qty=f"{ln.qty} ×", total=money(ln.total_cents),
                discount=f"−{money(ln.discount_cents)}" if ln.discount_cents else ""))  # fmt: skip
        self.line_names = [ln.name for ln in snap.lines]
        self.greeting = snap.greeting
        self.total_text = money(snap.total_cents) if snap.lines else ""
        self.discount_text = (_("You save {amount}").format(amount=money(snap.discount_cents))
                              if snap.discount_cents else "")  # fmt: skip
        parts = []
        if snap.points_to_earn:
            parts.append(_("+{n} points with this purchase").format(n=snap.points_to_earn))
        if snap.points_balance is not None:
            parts.append(_("Your points: {n}").format(n=snap.points_balance))
        self.points_text = "   ·   ".join(parts)
        qrs = self.ids.qrs
        qrs.clear_widgets()
        for caption, data in snap.qr:
            qrs.add_widget(QrBox(caption=caption, texture=qr_texture(data)))
        self.qr_captions = [c for c, _d in snap.qr]

    # -- media -----------------------------------------------------------------------------
    def refresh(self) -> None:
        media = settings.get(self.store, "display.media")
        if media != self._media or (not media and self.media_caption != settings.get(self.store, "shop.name")):
            self._media = media
            self._media_pos = -1
            self.next_medium()

    def next_medium(self, _dt=None) -> None:
        if self._media_ev is not None:
            self._media_ev.cancel()
            self._media_ev = None
        self._media = self._media or settings.get(self.store, "display.media")
        slot = self.ids.media
        for child in list(slot.children):
            if hasattr(child, "unload"):
                child.state = "stop"
                child.unload()
        slot.clear_widgets()
        if not self._media:
            self.media_caption = settings.get(self.store, "shop.name")
            slot.add_widget(Label(text=self.media_caption, font_size="48sp", bold=True,
                                  color=theme.HEADER_TEXT))  # fmt: skip
            return
        self._media_pos = (self._media_pos + 1) % len(self._media)
        item = self._media[self._media_pos]
        self.media_caption = item["src"]
        if item["kind"] == "image":
            slot.add_widget(Image(source=item["src"], fit_mode="contain"))
        elif item["kind"] == "video":
            from kivy.uix.video import Video

            video = Video(source=item["src"], state="play", options={"eos": "loop"}, volume=0)
            slot.add_widget(video)
        else:  # a web page: no browser on the display, its address as a QR code and text
            box = QrBox(caption=item["src"], texture=qr_texture(item["src"]),
                        text_color=theme.HEADER_TEXT)
            slot.add_widget(box)
        if len(self._media) > 1:
            self._media_ev = Clock.schedule_once(self.next_medium, item["seconds"])


def display_screens(app) -> list:
    """The display mode: one screen; the basket subscription runs as a service."""
    screen = DisplayScreen(name="display")
    app.services.append(screen)
    cfg = app.device_config
    if cfg.hub.host and cfg.ui.paired_till:
        from kiosk.display_link import BasketSubscriber

        app.services.append(BasketSubscriber(
            cfg.hub, cfg.identity.store_id, cfg.identity.device_id, cfg.ui.paired_till,
            lambda snap: app.post(screen.show_snapshot, snap)))  # fmt: skip
    return [screen]

