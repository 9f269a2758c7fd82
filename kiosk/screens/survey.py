"""The in-store survey after a sale (Fastmag "In-Store-Umfrage") on the survey device.

The device polls ``surveys.sale_to_survey`` for its paired till (``ui.paired_till``): when the
cashier completed a sale there (the sale event reached this device through the hub), the
active survey is shown. The shopper answers or skips; either way one ``survey.answered``
event is written (linked to store, device, sale and customer) and the idle screen returns.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from kivy.clock import Clock
from kivy.metrics import dp
from kivy.properties import StringProperty
from kivy.uix.boxlayout import BoxLayout

from kiosk.engine import surveys
from kiosk.i18n import _
from kiosk.screens import widgets
from kiosk.screens.base import KioskScreen
from kiosk.screens.clipad import wake_sync

_LOGGER = logging.getLogger(__name__)

POLL_S = 1.0
THANKS_S = 4.0


class SurveyQuestion(widgets.Card):
    """One question: toggles for choice / multi / scale, a text box for text."""

    text = StringProperty("")
    error = StringProperty("")

    def __init__(self, question: surveys.Question, **kwargs):
        super().__init__(**kwargs)
        self.question = question
        self.text = question.text + ("  *" if question.required else "")
        self.toggles: list[widgets.TouchToggle] = []
        self.input = None
        if question.kind == "text":
            self.input = widgets.TouchTextInput(multiline=True)
            self.ids.slot.add_widget(self.input)
            return
        row = BoxLayout(size_hint_y=None, height=dp(64), spacing=dp(10))
        group = None if question.kind == "multi" else f"q-{self.uid}"
        for option in question.options:
            toggle = widgets.TouchToggle(text=option, group=group, height=dp(64), font_size="22sp")
            toggle.allow_no_selection = True
            toggle.option = option
            row.add_widget(toggle)
            self.toggles.append(toggle)
        self.ids.slot.add_widget(row)

    def value(self) -> Any:
        if self.input is not None:
            return self.input.text.strip()
        chosen = [t.option for t in self.toggles if t.state == "down"]
        if self.question.kind == "multi":
            return chosen
        return chosen[0] if chosen else None


class SurveyIdleScreen(KioskScreen):
    message = StringProperty("")

    _clear_ev = None

    def show_message(self, message: str) -> None:
        self.message = message
        self.cancel_timers()
        if message:
            self._clear_ev = Clock.schedule_once(lambda _dt: setattr(self, "message", ""), THANKS_S)

    def cancel_timers(self) -> None:
        if self._clear_ev is not None:
            self._clear_ev.cancel()
            self._clear_ev = None


class SurveyScreen(KioskScreen):
    title = StringProperty("")
    error = StringProperty("")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.offer: dict[str, Any] | None = None
        self.questions: list[SurveyQuestion] = []

    def prepare(self, offer: dict[str, Any] | None = None, **_kw) -> None:
        if offer is None:
            return
        self.offer = offer
        survey: surveys.Survey = offer["survey"]
        self.title = survey.title
        self.error = ""
        box = self.ids.questions
        box.clear_widgets()
        self.questions = [SurveyQuestion(q) for q in survey.questions]
        for w in self.questions:
            box.add_widget(w)
            for toggle in w.toggles:  # an answer given: the "please answer" banner goes
                toggle.bind(state=lambda *_a: setattr(self, "error", ""))
        self.ids.scroll.scroll_y = 1

    def _record(self, answers: dict[str, Any], skipped: bool) -> None:
        offer = self.offer
        surveys.answer(self.store, offer["survey"].id, answers, sale_id=offer["sale_id"],
                       customer_id=offer["customer_id"], skipped=skipped)  # fmt: skip
        wake_sync(self.app)

    def send(self) -> None:
        answers = {w.question.id: w.value() for w in self.questions}
        try:
            self._record(answers, skipped=False)
        except surveys.SurveyError as exc:
            self.error = str(exc)
            return
        self.app.survey_device.finish(_("Thank you for your answers!"))

    def skip(self) -> None:
        try:
            self._record({}, skipped=True)
        except surveys.SurveyError as exc:  # answered on another device meanwhile
            _LOGGER.info("survey not skipped: %s", exc)
        self.app.survey_device.finish("")

    def wipe(self) -> None:
        self.offer = None
        self.questions = []
        self.ids.questions.clear_widgets()
        self.error = ""


class SurveyDevice:
    """Offers the survey after each sale at the paired till; idle timeout counts as skip."""

    def __init__(self, app) -> None:
        self.app = app
        self.till = app.device_config.ui.paired_till or ""
        self.idle_timeout = app.device_config.ui.idle_timeout_s
        self.shown: str | None = None  # sale id on screen
        self.handled: set[str] = set()
        self.since = time.monotonic()
        self._ev = None

    def start(self) -> None:
        from kivy.core.window import Window

        Window.bind(on_touch_down=self._touched)
        self._ev = Clock.schedule_interval(self.poll, POLL_S)

    def stop(self) -> None:
        from kivy.core.window import Window

        Window.unbind(on_touch_down=self._touched)
        if self._ev is not None:
            self._ev.cancel()
        self.app.screen("survey_idle").cancel_timers()

    def _touched(self, *_a) -> None:
        self.since = time.monotonic()

    def poll(self, _dt=None) -> None:
        store = self.app.store
        if self.shown is not None:
            if time.monotonic() - self.since > self.idle_timeout:
                self.app.screen("survey").skip()
            return
        offer = surveys.sale_to_survey(store, self.till, store.clock())
        if offer is None or offer["sale_id"] in self.handled:
            return
        self.shown = offer["sale_id"]
        self.since = time.monotonic()
        self.app.show("survey", remember=False, offer=offer)

    def finish(self, message: str) -> None:
        if self.shown:
            self.handled.add(self.shown)
        self.shown = None
        self.app.screen("survey").wipe()
        if self.app.keyboard is not None and self.app.keyboard.target is not None:
            self.app.keyboard.target.focus = False
        self.app.show("survey_idle", remember=False).show_message(message)


def survey_screens(app) -> list:
    app.survey_device = SurveyDevice(app)
    app.services.append(app.survey_device)  # started and stopped with the app
    return [SurveyIdleScreen(name="survey_idle"), SurveyScreen(name="survey")]
