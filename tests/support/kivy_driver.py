"""Drive a real Kivy app in the test process: pump the event loop, find widgets, touch, type,
take screenshots.

Kivy creates one window per process, so the window lives for the whole test session and
apps run in it one after another::

    driver = KivyDriver.start(app)      # builds the app in the shared window, runs on_start
    driver.tap(driver.find("find_customer"))
    driver.type_text("Müller")           # through the window's keyboard events, as SDL does
    driver.wait_until(lambda: ..., what="results shown")
    driver.screenshot(artifacts_dir / "search.png")
    driver.stop()                        # on_stop, widgets removed; the window stays

Touches are real MotionEvents fed through the event loop's input queue (post-processing,
focus handling and grabs happen as with a finger); keys go through ``Window.dispatch`` like
the SDL2 provider does. Call ``start`` only after the ``xdisplay`` fixture has set DISPLAY
and Kivy's environment (``KIVY_NO_ARGS`` etc., see tests/conftest.py).
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

DEFAULT_SIZE = (1280, 800)
KEYCODES = {"enter": 13, "backspace": 8, "tab": 9, "escape": 27, "delete": 127,
            "left": 276, "right": 275, "up": 273, "down": 274, "home": 278, "end": 279}  # fmt: skip

_touch_ids = itertools.count(1000)


class DriverError(AssertionError):
    """A widget was not found, not usable, or a condition never came true."""


def _make_touch_class():
    from kivy.input.motionevent import MotionEvent

    class DriverTouch(MotionEvent):
        """A single finger, positioned in window pixels."""

        def __init__(self, x: float, y: float) -> None:
            from kivy.base import EventLoop

            win = EventLoop.window
            super().__init__(
                "kivy-driver", next(_touch_ids), self._args(x, y, win),
                is_touch=True, type_id="touch",
            )  # fmt: skip
            self.profile = ["pos"]

        @staticmethod
        def _args(x, y, win) -> dict[str, float]:
            return {"x": x / (win.width - 1.0), "y": y / (win.height - 1.0)}

        def depack(self, args):
            self.sx, self.sy = args["x"], args["y"]
            super().depack(args)

    return DriverTouch


class KivyDriver:
    """A running app plus helpers to use it the way a person at the till would."""

    def __init__(self, app) -> None:
        self.app = app
        self._touch_cls = _make_touch_class()

    # -- lifecycle -------------------------------------------------------------------------
    @classmethod
    def start(cls, app, size: tuple[int, int] = DEFAULT_SIZE) -> KivyDriver:
        """Build ``app`` into the (shared) window and run its on_start."""
        from kivy.base import EventLoop, _runTouchApp_prepare
        from kivy.config import Config

        Config.set("graphics", "width", str(size[0]))
        Config.set("graphics", "height", str(size[1]))
        from kivy.core.window import Window  # creates the window on first use

        if tuple(Window.size) != tuple(size):
            Window.size = size
        app._run_prepare()
        from kivy.clock import Clock

        Clock._max_fps = 0  # no waiting for the next 60 Hz slot: tests pump as fast as they can
        if EventLoop.status != "started":
            _runTouchApp_prepare()  # input providers, post-processing, event loop start
        driver = cls(app)
        driver.pump(5)
        return driver

    def stop(self) -> None:
        """Stop the app (on_stop) but keep the window and event loop for the next one."""
        from kivy.app import App
        from kivy.core.window import Window

        app = self.app
        app.dispatch("on_stop")
        for child in list(Window.children):
            Window.remove_widget(child)
        App._running_app = None
        self.pump(2)

    # -- the event loop ------------------------------------------------------------------------
    def pump(self, frames: int = 1) -> None:
        """Run ``frames`` iterations of the Kivy loop (clock, input, layout, drawing)."""
        from kivy.base import EventLoop

        for _ in range(frames):
            EventLoop.idle()

    def sleep(self, seconds: float) -> None:
        """Keep the loop running for a while (debounce timers, animations)."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.pump()

    def wait_until(self, predicate: Callable[[], Any], timeout: float = 5.0, what: str = "") -> Any:
        """Pump until ``predicate()`` is truthy and return its value; fail after ``timeout``."""
        end = time.monotonic() + timeout
        while True:
            self.pump()
            value = predicate()
            if value:
                return value
            if time.monotonic() > end:
                raise DriverError(f"timed out after {timeout} s waiting for {what or predicate}")

    # -- finding widgets --------------------------------------------------------------------
    @property
    def window(self):
        from kivy.core.window import Window

        return Window

    def walk(self, root=None) -> Iterator[Any]:
        """Every widget shown in the window (popups included), front to back."""
        roots = [root] if root is not None else list(self.window.children)
        for top in roots:
            yield from top.walk(restrict=True)

    def find(self, widget_id: str, root=None):
        """The one shown widget with this kv ``id`` (fails when none or several match)."""
        found = []
        for widget in self.walk(root):
            ids = getattr(widget, "ids", None)
            if ids and widget_id in ids:
                target = ids[widget_id]
                if target not in found and self._is_shown(target):
                    found.append(target)
        if len(found) != 1:
            raise DriverError(f"expected one shown widget with id {widget_id!r}, found {len(found)}")
        return found[0]

    def find_all(self, cls=None, text: str | None = None, root=None, contains: bool = False) -> list:
        """Shown widgets of a class and/or with a text (exact, or substring with contains)."""
        out = []
        for widget in self.walk(root):
            if cls is not None and not isinstance(widget, cls):
                continue
            if text is not None:
                value = getattr(widget, "text", None)
                if not isinstance(value, str):
                    continue
                if (text not in value) if contains else (value != text):
                    continue
            if self._is_shown(widget):
                out.append(widget)
        return out

    def find_button(self, text: str, root=None):
        """The one shown, enabled button with exactly this text."""
        from kivy.uix.behaviors import ButtonBehavior

        matches = [w for w in self.find_all(ButtonBehavior, text=text, root=root) if not w.disabled]
        if len(matches) != 1:
            raise DriverError(f"expected one enabled button {text!r}, found {len(matches)}")
        return matches[0]

    def texts(self, root=None) -> list[str]:
        """Every shown text (labels, buttons, inputs), for assertions and failure messages."""
        return [w.text for w in self.walk(root) if isinstance(getattr(w, "text", None), str)
                and w.text and self._is_shown(w)]  # fmt: skip

    def _is_shown(self, widget) -> bool:
        window = self.window
        node = widget
        while node is not None:
            if node is window:
                return True
            if getattr(node, "opacity", 1) == 0:
                return False
            node = node.parent
        return False

    # -- touching and typing ------------------------------------------------------------------
    def tap_at(self, x: float, y: float, hold: float = 0.0) -> None:
        """Put a finger down at window pixel (x, y) and lift it."""
        from kivy.base import EventLoop

        touch = self._touch_cls(x, y)
        EventLoop._dispatch_input("begin", touch)
        self.pump(2)
        if hold:
            self.sleep(hold)
        EventLoop._dispatch_input("end", touch)
        self.pump(3)

    def scroll_into_view(self, widget) -> None:
        """Scroll the enclosing ScrollView(s) until the widget is inside their visible area,
        as a person would swipe before tapping."""
        from kivy.uix.scrollview import ScrollView

        node = widget.parent
        while node is not None and node.parent is not node:
            if isinstance(node, ScrollView):
                x, y = widget.to_window(*widget.pos)
                sx, sy = node.to_window(*node.pos)
                inside = sy <= y and y + widget.height <= sy + node.height and sx <= x
                if not inside:
                    node.scroll_to(widget, padding=20, animate=False)
                    self.pump(3)
            node = node.parent

    def settle(self, widget, frames: int = 3, limit: int = 60) -> None:
        """Pump until the widget has not moved for ``frames`` frames: a person taps what they
        see once it stops moving (a docked keyboard hiding shifts the whole layout, and a
        touch that ends elsewhere than it began is no tap)."""
        last, still = None, 0
        for _ in range(limit):
            pos = (*widget.to_window(*widget.pos), widget.width, widget.height)
            still = still + 1 if pos == last else 0
            if still >= frames:
                return
            last = pos
            self.pump()

    def _wait_for_fading_popups(self, timeout: float = 2.0) -> None:
        """Pump while a popup fades in or out (0.1 s): a dismissed one still takes the touches
        until it is gone, and a person does not tap through it either."""
        from kivy.uix.modalview import ModalView

        self.wait_until(
            lambda: not any(isinstance(w, ModalView) and w._anim_alpha < 1
                            for w in self.window.children),  # fmt: skip
            timeout, "a popup to finish fading",
        )

    def tap(self, widget, hold: float = 0.0) -> None:
        """Tap the middle of a widget (it must be shown and enabled; scrolled to if needed)."""
        if not self._is_shown(widget):
            raise DriverError(f"{widget!r} is not shown")
        if getattr(widget, "disabled", False):
            raise DriverError(f"{widget!r} is disabled")
        self.scroll_into_view(widget)
        self.settle(widget)
        self._wait_for_fading_popups()
        x, y = widget.to_window(*widget.center)
        width, height = self.window.size
        if not (0 <= x < width and 0 <= y < height):
            raise DriverError(f"{widget!r} is outside the window at {(x, y)}")
        self.tap_at(x, y, hold)

    def tap_until(self, find: Callable[[], Any], predicate: Callable[[], Any], what: str = "",
                  attempts: int = 3, timeout: float = 2.0) -> Any:  # fmt: skip
        """Tap the widget ``find()`` returns until ``predicate`` holds, as a person taps again
        when nothing happened: a list rebuilt between finger down and up (a late quote
        refresh) swallows the first tap. Only for taps whose effect the predicate shows."""
        for attempt in range(attempts):
            self.tap(find())
            try:
                return self.wait_until(predicate, timeout, what)
            except DriverError:
                if attempt == attempts - 1:
                    raise
        return None

    def type_text(self, text: str, into=None, per_key_frames: int = 1) -> None:
        """Type on the physical keyboard: focus ``into`` by tapping it, then key by key."""
        if into is not None:
            if not into.focus:
                self.tap(into)
            if not into.focus:
                raise DriverError(f"{into!r} did not take the focus")
        for char in text:
            self.window.dispatch("on_textinput", char)
            self.pump(per_key_frames)

    def press_key(self, name: str) -> None:
        """Press and release a special key (enter, backspace, escape, tab, arrows …)."""
        code = KEYCODES[name]
        win = self.window
        if not win.dispatch("on_key_down", code, 0, None, []):
            win.dispatch("on_keyboard", code, 0, None, [])
        win.dispatch("on_key_up", code, 0)
        self.pump(2)

    # -- the window --------------------------------------------------------------------------
    def resize(self, width: int, height: int) -> None:
        """Change the window size (e.g. the 800x480 panel) and let the layout settle."""
        self.window.size = (width, height)
        self.wait_until(lambda: tuple(self.window.size) == (width, height), what="window resized")
        self.pump(5)

    def screenshot(self, path: str | Path) -> Path:
        """Save what the window shows as a PNG (read from the frame before it is flipped)."""
        from kivy.graphics.opengl import GL_RGBA, GL_UNSIGNED_BYTE, glReadPixels
        from PIL import Image

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        win = self.window
        frames: list[tuple[int, int, bytes]] = []

        def grab(*_args):
            w, h = win.system_size
            frames.append((w, h, glReadPixels(0, 0, w, h, GL_RGBA, GL_UNSIGNED_BYTE)))

        win.bind(on_flip=grab)
        try:
            win.canvas.ask_update()
            self.wait_until(lambda: frames, timeout=5, what="a frame to be drawn")
        finally:
            win.unbind(on_flip=grab)
        w, h, data = frames[-1]
        image = Image.frombytes("RGBA", (w, h), data).transpose(Image.Transpose.FLIP_TOP_BOTTOM)
        image.convert("RGB").save(path)
        return path


@contextlib.contextmanager
def running_till(data_dir: Path, seed: Callable[[Any], Any], *, language: str = "de",
                 printer: Any = None) -> Iterator[KivyDriver]:  # fmt: skip
    """The till app in the test process over a real SQLite file that ``seed(store)`` filled;
    the driver's ``ids`` hold what ``seed`` returned."""
    from kiosk.app import KioskApp, configure_kivy
    from kiosk.config import DeviceConfig, UiConfig
    from kiosk.engine.store import Identity, Store

    config = DeviceConfig(
        identity=Identity(store_id="teststore", device_id="till-1", device_no=1),
        data_dir=data_dir,
        language=language,
        ui=UiConfig(fullscreen=False, width=1280, height=800, keyboard="de"),
    )
    store = Store(config.db_path, config.identity)
    ids = seed(store)
    store.close()
    configure_kivy(config.ui)
    app = KioskApp(config, "till")
    if printer is not None:
        app.receipt_printer = printer
    driver = KivyDriver.start(app)
    driver.ids = ids
    try:
        yield driver
    finally:
        driver.stop()
        app.store.close()
