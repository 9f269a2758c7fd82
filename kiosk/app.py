"""The Kivy app: the one place that wires engine, drivers, sync and screens.

``run(config, mode)`` configures Kivy (window size, keyboard, no exit on Escape), opens the
device's Store and shows the screens of the mode. Screens reach shared things through the
running app: ``app.store``, ``app.session`` (the till session), ``app.show(name, **kw)``,
``app.notify(text)`` and ``app._(msgid)`` for translated texts in ``.kv`` files.

Other threads (scanner drivers, the sync client) never touch widgets: they call
``app.barcode_scanned(code)`` or ``app.store_changed()``, which hand the work to the UI thread
with ``Clock.schedule_once``. Long-running parts register in ``app.services`` (objects with
``start()`` and ``stop()``) and are started after the window is up.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

# The kiosk command owns argv; Kivy logs through `logging`; no probing for xclip/xsel.
if not logging.getLogger().isEnabledFor(logging.DEBUG):
    logging.getLogger("kivy").setLevel(logging.WARNING)  # Kivy's start-up chatter only with -v
os.environ.setdefault("KIVY_NO_ARGS", "1")
os.environ.setdefault("KIVY_LOG_MODE", "PYTHON")
os.environ.setdefault("KIVY_NO_FILELOG", "1")
os.environ.setdefault("KIVY_CLIPBOARD", "sdl2")
# Between frames the default clock sleeps until the next maxfps slot, deaf to work posted from
# other threads: a scan would wait up to 1/60 s before the UI thread even looked at it. The
# interrupt clock wakes the loop as soon as something is scheduled for the next frame.
os.environ.setdefault("KIVY_CLOCK", "interrupt")

from kivy.app import App  # noqa: E402
from kivy.clock import Clock  # noqa: E402

from kiosk.config import DeviceConfig, UiConfig  # noqa: E402
from kiosk.engine import customers, search, settings  # noqa: E402
from kiosk.engine.store import Store  # noqa: E402
from kiosk.i18n import _, set_language  # noqa: E402

_LOGGER = logging.getLogger(__name__)


def _quiet_kivy(record: logging.LogRecord) -> bool:
    # Kivy reports missing xclip/xsel as CRITICAL with a traceback; our clipboard is SDL2's
    return "Cutbuffer" not in str(record.msg)


logging.getLogger("kivy").addFilter(_quiet_kivy)

MODE_TITLES = {
    "till": "Till",
    "clipad": "Clipad",
    "survey": "Survey",
    "display": "Customer display",
}


def _till_screens(app: "KioskApp") -> list:
    """Screens and wiring of the till."""
    from kiosk.screens.customer_detail import CustomerDetailScreen
    from kiosk.screens.customer_form import CustomerFormScreen
    from kiosk.screens.customer_search import CustomerSearchScreen
    from kiosk.screens.sale import install as install_sale
    from kiosk.screens.session import TillSession
    from kiosk.screens.till import TillScreen

    app.session = TillSession(app.store)
    app.barcode_handlers.append(app.attach_customer_by_code)
    till = TillScreen(name="till")
    sale_screens = install_sale(app, till)  # basket in the till screen, payment screen, scan handler
    from kiosk.screens.ticker import install_till

    install_till(app, till)  # directive ticker, Clipad button, customer display feed
    return [
        till,
        *sale_screens,
        CustomerSearchScreen(name="customer_search"),
        CustomerDetailScreen(name="customer_detail"),
        CustomerFormScreen(name="customer_form"),
    ]


def _display_screens(app: "KioskApp") -> list:
    """The customer display: no keyboard; the paired till's basket beside the shop's media."""
    from kiosk.screens.display import display_screens

    app.keyboard.enabled = False
    return display_screens(app)


def _clipad_screens(app: "KioskApp") -> list:
    from kiosk.screens.clipad import tablet_screens

    return tablet_screens(app)


def _survey_screens(app: "KioskApp") -> list:
    from kiosk.screens.survey import survey_screens

    return survey_screens(app)


# mode -> function building its screens (the first one is the home screen)
MODE_SCREENS: dict[str, Callable[["KioskApp"], list]] = {
    "till": _till_screens,
    "display": _display_screens,
    "clipad": _clipad_screens,
    "survey": _survey_screens,
}

# When set, the app saves a picture of its window there (PNG) a few seconds after start
# (the demo test uses it).
SCREENSHOT_ENV = "KIOSK_SCREENSHOT"


class ModeUnavailable(RuntimeError):
    pass


def configure_kivy(ui: UiConfig) -> None:
    """Set Kivy's window and input options; call before the window exists."""
    from kivy.config import Config

    Config.set("graphics", "width", str(ui.width))
    Config.set("graphics", "height", str(ui.height))
    Config.set("graphics", "fullscreen", "auto" if ui.fullscreen else "0")
    Config.set("graphics", "show_cursor", "0" if ui.fullscreen else "1")
    Config.set("kivy", "exit_on_escape", "0")  # Escape means "back", never "quit the till"
    Config.set("kivy", "keyboard_mode", "system")  # our own keyboard is docked in the layout
    Config.set("input", "mouse", "mouse,multitouch_on_demand")  # no red dots on right click
    # flat UI, no curves worth smoothing: 2x multisampling doubles every frame's fill cost
    # (measured: the software renderer's swap 112 ms -> 45 ms at 1280x800)
    Config.set("graphics", "multisamples", "0")


class KioskApp(App):
    """The app of one kiosk device in one mode."""

    def __init__(
        self, device_config: DeviceConfig, mode: str, store: Store | None = None, **kwargs: Any
    ) -> None:
        if mode not in MODE_SCREENS:
            raise ModeUnavailable(mode)
        super().__init__(**kwargs)
        self.device_config = device_config
        self.mode = mode
        self.store = store
        self._owns_store = store is None
        self.session = None  # TillSession in till mode
        self.hardware = None  # kiosk.hardware.Hardware: drivers, built in build()
        self.shell = None
        self.keyboard = None  # the docked OnScreenKeyboard
        self.services: list[Any] = []  # drivers and sync: start() / stop()
        self.barcode_handlers: list[Callable[[str], bool]] = []  # first to return True wins
        self._history: list[str] = []
        self._refresh_trigger = Clock.create_trigger(self._refresh_after_change, 0.2)

    # -- translation for kv files -----------------------------------------------------------
    def _(self, message: str) -> str:
        """Translate a message id (kv files use ``app._('Search')``)."""
        return _(message)

    # -- lifecycle ----------------------------------------------------------------------------
    def build(self):
        from kivy.core.window import Window

        from kiosk.screens.shell import Shell

        cfg = self.device_config
        set_language(cfg.language)
        if self.store is None:
            from kiosk import sdnotify

            # Opening runs pending migrations; one that rebuilds the search index of a big
            # customer file takes minutes: tell systemd so the start timeout does not kill it.
            sdnotify.notify("EXTEND_TIMEOUT_USEC=900000000\nSTATUS=Opening the database")
            self.store = Store(cfg.db_path, cfg.identity, secret_key=cfg.secret_key())
            # WAL checkpoints off the sale's commit; the search index merged in small steps
            self.store.start_checkpointer(upkeep=[search.IndexUpkeep()])
        shop = settings.get(self.store, "shop.name")
        self.title = f"{shop} – {_(MODE_TITLES[self.mode])}"
        self.shell = Shell(
            title=shop,
            subtitle=f"{_(MODE_TITLES[self.mode])} · {cfg.identity.device_id}",
        )
        self.keyboard = self.shell.ids.keyboard
        self.keyboard.layout_name = cfg.ui.keyboard if cfg.ui.keyboard != "off" else "de"
        self.keyboard.enabled = cfg.ui.keyboard != "off"
        for screen in MODE_SCREENS[self.mode](self):
            self.shell.ids.screens.add_widget(screen)
        from kiosk.hardware import Hardware  # [drivers.*] of the device config: status strip too

        self.hardware = Hardware(cfg, self)
        self.services.append(self.hardware)
        if cfg.hub.host:
            self.services.append(self._sync_client())
        else:
            # alone in the shop: this till is the only replica, so its balances are the truth
            from kiosk.engine import stored_value

            stored_value.set_connectivity(self.store, True)
        Window.bind(on_keyboard=self._on_keyboard)
        return self.shell

    def _sync_client(self):
        """Outbox to the hub and the hub's feed back; the till works the same without it."""
        from kiosk.sync import SyncClient

        return SyncClient(
            self.store, self.device_config.hub, mode=self.mode,
            on_state=lambda *_a: self.store_changed(),
        )  # fmt: skip

    def on_start(self) -> None:
        for service in self.services:
            try:
                service.start()
            except Exception:  # a broken scanner must not keep the till from selling
                _LOGGER.exception("service %r did not start", service)
        from kiosk import sdnotify  # systemd: READY=1, then watchdog pings from this loop

        sdnotify.start(Clock.schedule_interval)
        shot = os.environ.get(SCREENSHOT_ENV)
        if shot:
            Clock.schedule_once(lambda _dt: self.save_screenshot(shot), 3)

    def save_screenshot(self, path: str) -> None:
        """Save the next drawn frame as PNG (read before the buffers flip, so never blank)."""
        from kivy.core.window import Window
        from kivy.graphics.opengl import GL_RGBA, GL_UNSIGNED_BYTE, glReadPixels
        from PIL import Image

        def grab(*_args):
            Window.unbind(on_flip=grab)
            w, h = Window.system_size
            data = glReadPixels(0, 0, w, h, GL_RGBA, GL_UNSIGNED_BYTE)
            image = Image.frombytes("RGBA", (w, h), data).transpose(Image.Transpose.FLIP_TOP_BOTTOM)
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            tmp = f"{path}.part"
            image.convert("RGB").save(tmp, format="PNG")
            os.replace(tmp, path)  # readers never see half a file

        Window.bind(on_flip=grab)
        Window.canvas.ask_update()

    def on_stop(self) -> None:
        from kivy.core.window import Window

        # App.stop() dispatches on_stop, and App.run() does again when the loop ends
        if getattr(self, "_stopped", False):
            return
        self._stopped = True
        Window.unbind(on_keyboard=self._on_keyboard)
        for service in reversed(self.services):
            try:
                service.stop()
            except Exception:
                _LOGGER.exception("service %r did not stop cleanly", service)
        if self._owns_store and self.store is not None:
            self.store.close()

    # -- navigation ---------------------------------------------------------------------------
    @property
    def screens(self):
        return self.shell.ids.screens

    def screen(self, name: str):
        return self.screens.get_screen(name)

    def show(self, name: str, *, remember: bool = True, **kwargs: Any):
        """Open a screen, handing it ``kwargs`` (see KioskScreen.prepare)."""
        screens = self.screens
        target = screens.get_screen(name)
        target.prepare(**kwargs)
        if screens.current == name:
            target.refresh()
            return target
        if remember and screens.current:
            self._history.append(screens.current)
        screens.current = name
        return target

    def home(self) -> None:
        """Go back to the first screen of the mode and forget the way there."""
        self._history.clear()
        self.show(self.screens.screen_names[0], remember=False)

    def back(self) -> None:
        """Leave the current screen for the one it was opened from."""
        current = self.screens.current_screen
        if current is not None and current.go_back():
            return
        if self._history:
            self.show(self._history.pop(), remember=False)
        else:
            self.home()

    def _on_keyboard(self, _window, key: int, *_args) -> bool:
        if key == 27:  # Escape / Android back: one step back, never quit
            if self.keyboard is not None and self.keyboard.target is not None:
                self.keyboard.target.focus = False
            else:
                self.back()
            return True
        return False

    def notify(self, text: str, kind: str = "info") -> None:
        """Show a short message to the cashier."""
        if self.shell is not None:
            self.shell.toast(text, kind)

    # -- calls from other threads -----------------------------------------------------------
    def post(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Run ``func`` on the UI thread (safe to call from any thread)."""
        Clock.schedule_once(lambda _dt: func(*args, **kwargs), 0)

    def barcode_scanned(self, code: str) -> None:
        """A scanner read a code (any thread): offer it to the mode's handlers."""
        if threading.current_thread() is not threading.main_thread():
            self.post(self.barcode_scanned, code)
            return
        code = code.strip()
        for handler in self.barcode_handlers:
            if handler(code):
                return
        self.notify(_("Unknown code: {code}").format(code=code), "warning")

    def store_changed(self) -> None:
        """The database changed behind the UI's back (sync): repaint soon (any thread)."""
        self.post(self._refresh_trigger)

    def _refresh_after_change(self, _dt=None) -> None:
        if self.session is not None:
            self.session.refresh()
        current = self.screens.current_screen
        if current is not None:
            current.refresh()

    # -- till actions shared by screens --------------------------------------------------------
    def attach_customer(self, customer_id: str) -> None:
        """Put a customer on the sale and return to the till."""
        view = self.session.attach(customer_id)
        self.home()
        self.notify(_("Customer {name} added to the sale").format(name=view.name), "success")

    def attach_customer_by_code(self, code: str) -> bool:
        """Barcode handler: a customer card or customer number attaches its customer."""
        try:
            customer = customers.by_number(self.store, code)
        except customers.NotFound:
            return False
        self.attach_customer(customer["id"])
        return True


def run(config: DeviceConfig, mode: str) -> int:
    """Run the app until the window closes; returns the process exit code."""
    if mode not in MODE_SCREENS:
        print(
            _("kiosk: the {mode} mode is not available in this version (available: {modes})").format(
                mode=mode, modes=", ".join(MODE_SCREENS)
            ),
            file=sys.stderr,
        )
        return 2
    configure_kivy(config.ui)
    app = KioskApp(config, mode)
    # SIGTERM (systemd, the demo) and Ctrl-C close the window the normal way: on_stop runs
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_a: Clock.schedule_once(lambda _dt: app.stop(), 0))
    app.run()
    return 0
