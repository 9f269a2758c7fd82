"""Clipad: the customer types their own details on a tablet paired with a till.

Tablet side (mode ``clipad``): :class:`ClipadTablet` polls ``clipad.waiting`` for a request
sent to this tablet (``device_id``) or to "the tablet paired with till X" (``@X``, for a
tablet whose ``ui.paired_till`` is X). The form shows only what the cashier sent
(``prefill``), the shop's mandatory fields, the custom questions and both consents with their
full texts; a confirmation step lists what will be stored. Validation writes the customer
with ``clipad.submit``; cancel, a cancel from the till and the idle timeout end the session
with nothing written. In every case the form is emptied and the idle screen comes back.

Till side: :class:`TillClipad` sends the request (to the tablet, or as a QR code that opens
the hub's web form on the customer's phone) and attaches the customer once the session comes
back "submitted" through the hub.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

from kivy.clock import Clock
from kivy.metrics import dp
from kivy.properties import BooleanProperty, ListProperty, StringProperty
from kivy.uix.modalview import ModalView

from kiosk.engine import clipad, customers, questions, settings
from kiosk.i18n import _
from kiosk.screens import widgets
from kiosk.screens.base import KioskScreen
from kiosk.screens.form_fields import BoolField, ChoiceField, FormField, TextField

_LOGGER = logging.getLogger(__name__)

POLL_S = 0.05  # cheap indexed query; keeps "request at the till -> form on the tablet" snappy
THANKS_S = 4.0
CONSENTS = ("email_consent", "sms_consent")
WEB = "web"  # the "tablet" of a session answered in the hub's web form


def wake_sync(app) -> None:
    """Ship a change at once instead of at the sync thread's next poll."""
    for service in getattr(app, "services", []):
        wake = getattr(service, "wake", None)
        if wake is not None:
            wake()


def paired_name(till: str) -> str:
    """The address a till uses for "the tablet paired with me" (no tablet id needed)."""
    return f"@{till}"


# -- tablet ------------------------------------------------------------------------------------
class ClipadTablet:
    """The tablet's state: which session it shows; polling, idle timeout and clearing."""

    def __init__(self, app) -> None:
        self.app = app
        self.me = app.device_config.identity.device_id
        self.paired = app.device_config.ui.paired_till
        self.idle_timeout = app.device_config.ui.idle_timeout_s
        self.session: clipad.Session | None = None
        self._done: set[str] = set()  # sessions this tablet finished: never shown again
        self.last_activity = time.monotonic()
        self._ev = None

    def start(self) -> None:
        from kivy.core.window import Window

        Window.bind(on_touch_down=self._touched, on_key_down=self._touched, on_textinput=self._touched)
        self._ev = Clock.schedule_interval(self.poll, POLL_S)

    def stop(self) -> None:
        from kivy.core.window import Window

        Window.unbind(on_touch_down=self._touched, on_key_down=self._touched, on_textinput=self._touched)
        if self._ev is not None:
            self._ev.cancel()
        self.app.screen("clipad_idle").cancel_timers()

    def _touched(self, *_args) -> None:
        self.last_activity = time.monotonic()

    def _waiting(self) -> clipad.Session | None:
        found = [s for s in (clipad.waiting(self.app.store, self.me),
                             clipad.waiting(self.app.store, paired_name(self.paired)) if self.paired else None)
                 if s is not None and s.id not in self._done]  # fmt: skip
        return max(found, key=lambda s: s.requested_at) if found else None

    def poll(self, _dt=None) -> None:
        store = self.app.store
        if self.session is not None:
            try:
                status = clipad.get(store, self.session.id).status
            except clipad.ClipadError:
                status = "cancelled"
            if status != "requested":  # cancelled at the till, or validated elsewhere
                self.clear(_("The form was closed at the till."))
                return
            if time.monotonic() - self.last_activity > self.idle_timeout:
                self.cancel(_("The form was closed after a while without input."))
                return
        new = self._waiting()
        if new is not None and (self.session is None or new.id != self.session.id):
            if self.session is not None:  # a newer request supersedes the open one
                self._done.add(self.session.id)
            self.open(new)

    def open(self, session: clipad.Session) -> None:
        self.session = session
        self.app.show("clipad", remember=False, session=session)
        self.last_activity = time.monotonic()  # the timeout counts from when the form is shown

    def submit(self, data: dict[str, Any]) -> dict[str, Any]:
        """Store the customer's entries (raises customers.ValidationError / ClipadError)."""
        record = clipad.submit(self.app.store, self.session.id, data)
        wake_sync(self.app)
        self.clear(_("Thank you! Your details were saved."), "success")
        return record

    def cancel(self, message: str = "") -> None:
        if self.session is not None:
            try:
                clipad.cancel(self.app.store, self.session.id)
            except clipad.ClipadError:
                pass
            wake_sync(self.app)
        self.clear(message or _("The form was cancelled."))

    def clear(self, message: str = "", kind: str = "info") -> None:
        """Forget everything typed and show the shop's idle screen."""
        if self.session is not None:
            self._done.add(self.session.id)
        self.session = None
        for name in ("clipad", "clipad_confirm"):
            self.app.screen(name).wipe()
        if self.app.keyboard is not None and self.app.keyboard.target is not None:
            self.app.keyboard.target.focus = False
        idle = self.app.show("clipad_idle", remember=False)
        idle.show_message(message, kind)


class ClipadIdleScreen(KioskScreen):
    """The shop's idle screen on the tablet: nothing of any customer."""

    shop_name = StringProperty("")
    message = StringProperty("")
    kind = StringProperty("info")

    def refresh(self) -> None:
        self.shop_name = settings.get(self.store, "shop.name")

    _clear_ev = None

    def show_message(self, message: str, kind: str = "info") -> None:
        self.message, self.kind = message, kind
        self.cancel_timers()
        if message:
            self._clear_ev = Clock.schedule_once(lambda _dt: setattr(self, "message", ""), THANKS_S)

    def cancel_timers(self) -> None:
        if self._clear_ev is not None:
            self._clear_ev.cancel()
            self._clear_ev = None


class ClipadSection(widgets.Card):
    title = StringProperty("")


def build_fields(store, prefill: dict[str, Any]) -> list[tuple[str, list[FormField]]]:
    """The form's sections (the same as the phone's web form), with the cashier's prefill only."""
    from storehub.webform import form_spec

    out = []
    for section in form_spec(store):
        fields: list[FormField] = []
        for f in section.fields:
            if f.kind == "choice":
                field = ChoiceField(name=f.name, label=f.label, mandatory=f.mandatory,
                                    choices=list(f.choices))  # fmt: skip
            elif f.kind == "bool":
                field = BoolField(name=f.name, label=f.label, mandatory=f.mandatory, text=f.text)
            else:
                field = TextField(name=f.name, label=f.label, mandatory=f.mandatory, kind=f.kind,
                                  hint=f.hint)  # fmt: skip
            if prefill.get(f.name) not in (None, ""):
                field.set_value(prefill[f.name])
            fields.append(field)
        out.append((section.title, fields))
    return out


def collect(fields: dict[str, FormField]) -> dict[str, Any]:
    """Only what was typed: an empty box never erases what the shop knows already."""
    data: dict[str, Any] = {}
    answers: dict[str, Any] = {}
    for name, field in fields.items():
        value = field.get_value()
        if value in (None, ""):
            continue
        if name.startswith("answers."):
            if isinstance(field, BoolField) and not value:
                continue
            answers[name.split(".", 1)[1]] = value
        else:
            data[name] = value
    for name in CONSENTS:  # the consents are always answered, "no" included
        if name in fields:
            data[name] = bool(fields[name].get_value())
    if answers:
        data["answers"] = answers
    return data


class ClipadFormScreen(KioskScreen):
    """The form on the tablet: large fields, the docked keyboard, then the confirmation."""

    form_error = StringProperty("")
    greeting = StringProperty("")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.fields: dict[str, FormField] = {}
        self.session: clipad.Session | None = None

    def prepare(self, session: clipad.Session | None = None, **_kw) -> None:
        if session is not None and (self.session is None or session.id != self.session.id):
            self.session = session
            self._build(session)

    def _build(self, session: clipad.Session) -> None:
        self.wipe()
        self.session = session
        first = session.prefill.get("first_name") or ""
        self.greeting = (_("Hello {name}, please check and complete your details.").format(name=first)
                         if first else _("Please enter your details."))  # fmt: skip
        for title, fields in build_fields(self.store, session.prefill):
            section = ClipadSection(title=title)
            for field in fields:
                if isinstance(field, TextField):  # big enough for a finger, readable standing
                    field.input.height = dp(64)
                    field.input.font_size = "22sp"
                section.ids.body.add_widget(field)
                self.fields[field.name] = field
            self.ids.sections.add_widget(section)
        self.ids.scroll.scroll_y = 1

    def wipe(self) -> None:
        """Drop every widget holding what was typed (nothing stays in memory for the next)."""
        self.session = None
        self.fields = {}
        self.form_error = ""
        self.greeting = ""
        self.ids.sections.clear_widgets()

    def data(self) -> dict[str, Any]:
        return collect(self.fields)

    def check(self) -> None:
        """Validate without writing (the engine's own rules), then show the confirmation."""
        for field in self.fields.values():
            field.error = ""
        self.form_error = ""
        data = self.data()
        errors: dict[str, str] = {}
        try:
            customers.normalise(self.store, data)
        except customers.ValidationError as exc:
            errors.update(exc.errors)
        except TypeError:
            pass
        mandatory = set(settings.get(self.store, "customer.mandatory_fields"))
        for name in mandatory:
            if name in self.fields and self.fields[name].get_value() in (None, "") and not (
                self.session and self.session.prefill.get(name)
            ):
                errors.setdefault(name, _("Please fill in this field."))
        missing = questions.missing_mandatory(self.store, data.get("answers", {}))
        errors.update({f"answers.{k}": v for k, v in missing.items()})
        if errors:
            self.show_errors(errors)
            return
        self.app.show("clipad_confirm", data=data, labels={n: f.label for n, f in self.fields.items()})

    def show_errors(self, errors: dict[str, str]) -> None:
        first = None
        rest = []
        for key, message in errors.items():
            field = self.fields.get(key)
            if field is None:
                rest.append(message)
                continue
            field.error = message
            first = first or field
        self.form_error = "\n".join([_("Please check the marked fields."), *rest])
        if first is not None:
            Clock.schedule_once(lambda _dt: self.ids.scroll.scroll_to(first, padding=60, animate=False), 0)

    def cancel(self) -> None:
        self.app.clipad_tablet.cancel()


class ClipadConfirmScreen(KioskScreen):
    """The confirmation step: what will be stored, then "Confirm" or "Change"."""

    lines = ListProperty([])  # [(label, value)]

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.data: dict[str, Any] = {}

    def prepare(self, data: dict[str, Any] | None = None, labels: dict[str, str] | None = None,
                **_kw) -> None:  # fmt: skip
        self.data = dict(data or {})
        labels = labels or {}
        out = []
        for name, value in self.data.items():
            if name == "answers":
                out += [(labels.get(f"answers.{k}", k), _fmt(v)) for k, v in value.items()]
            else:
                out.append((labels.get(name, name), _fmt(value)))
        self.lines = out
        box = self.ids.summary
        box.clear_widgets()
        for label, value in out:
            box.add_widget(widgets.FieldView(label=label, value=value))

    def wipe(self) -> None:
        self.data = {}
        self.lines = []
        self.ids.summary.clear_widgets()

    def confirm(self) -> None:
        form = self.app.screen("clipad")
        try:
            self.app.clipad_tablet.submit(self.data)
        except customers.ValidationError as exc:
            self.app.show("clipad", remember=False)
            form.show_errors(exc.errors)
        except clipad.ClipadError as exc:
            self.app.clipad_tablet.clear(str(exc), "warning")

    def change(self) -> None:
        self.app.show("clipad", remember=False)


def _fmt(value: Any) -> str:
    if value is True:
        return _("Yes")
    if value is False:
        return _("No")
    if isinstance(value, dt.date):
        return value.strftime("%d.%m.%Y")
    return str(value)


def tablet_screens(app) -> list:
    app.clipad_tablet = ClipadTablet(app)
    app.services.append(app.clipad_tablet)  # started and stopped with the app
    return [ClipadIdleScreen(name="clipad_idle"), ClipadFormScreen(name="clipad"),
            ClipadConfirmScreen(name="clipad_confirm")]  # fmt: skip


# -- till ----------------------------------------------------------------------------------------
class TillClipad:
    """At the till: send the form, and put the customer on the sale when it comes back."""

    def __init__(self, app) -> None:
        self.app = app
        self.till = app.store.identity.device_id
        self.open: set[str] = set()  # sessions this till waits for
        self.since = ""
        self.qr: list[tuple[str, str]] = []  # shown on the customer display while open
        self._ev = None

    def start(self) -> None:
        done = clipad.finished_for_till(self.app.store, self.till)
        self.since = done[-1].id if done else ""  # older ones were handled before a restart
        self._ev = Clock.schedule_interval(self.poll, POLL_S)

    def stop(self) -> None:
        if self._ev is not None:
            self._ev.cancel()

    def prefill(self) -> tuple[str | None, dict[str, Any]]:
        view = self.app.session.customer
        if view is None:
            return None, {}
        rec = view.record
        return view.id, {k: rec.get(k) for k in clipad.PREFILL_FIELDS if rec.get(k)}

    def send_to_tablet(self) -> str:
        customer_id, prefill = self.prefill()
        with self.app.store.transaction():
            sid = clipad.request(self.app.store, paired_name(self.till), customer_id=customer_id,
                                 prefill=prefill)  # fmt: skip
        self.open.add(sid)
        wake_sync(self.app)
        return sid

    def send_to_phone(self) -> tuple[str, str]:
        """A session answered in the hub's web form; returns (session id, URL for the QR)."""
        from storehub.webform import form_url, make_token

        customer_id, prefill = self.prefill()
        with self.app.store.transaction():
            sid = clipad.request(self.app.store, WEB, customer_id=customer_id, prefill=prefill)
        self.open.add(sid)
        wake_sync(self.app)
        url = form_url(self.app.device_config.hub.web_url, make_token(self.app.store.secret_key, sid))
        self.qr = [(_("Your details on your phone"), url)]
        getattr(self.app, "display_changed", lambda: None)()
        return sid, url

    def cancel_all(self) -> None:
        for sid in list(self.open):
            try:
                clipad.cancel(self.app.store, sid)
            except clipad.ClipadError:
                pass
        self.open.clear()
        self._clear_qr()
        wake_sync(self.app)

    def _clear_qr(self) -> None:
        if self.qr:
            self.qr = []
            getattr(self.app, "display_changed", lambda: None)()

    def poll(self, _dt=None) -> None:
        store = self.app.store
        # every submitted session of this till since start-up: sent from this screen or not
        # (a restart while the customer typed), the customer goes on the sale
        for s in clipad.finished_for_till(store, self.till, self.since):
            self.since = max(self.since, s.id)
            self.open.discard(s.id)
            self._clear_qr()
            try:
                self.app.attach_customer(s.customer_id)
            except customers.NotFound:
                continue
            self.app.notify(_("The customer's details arrived from the form."), "success")
            self._close_popup()
        for sid in list(self.open):
            try:
                status = clipad.get(store, sid).status
            except clipad.ClipadError:
                continue
            if status == "cancelled":
                self.open.discard(sid)
                self._clear_qr()
                self.app.notify(_("The customer cancelled the form."), "warning")
                self._close_popup()

    def _close_popup(self) -> None:
        if not self.open and self.popup is not None:
            self.popup.dismiss()
            self.popup = None

    popup: ModalView | None = None

    def choose(self) -> None:
        """The "Clipad" button: tablet or phone."""
        self.popup = ClipadPopup(self)
        self.popup.open()


class ClipadPopup(ModalView):
    """Send the form to the tablet, or show the QR code of the web form."""

    text = StringProperty("")
    url = StringProperty("")
    waiting = BooleanProperty(False)

    def __init__(self, owner: TillClipad, **kwargs):
        self.owner = owner
        super().__init__(size_hint=(None, None), size=(dp(620), dp(520)), auto_dismiss=False, **kwargs)
        view = owner.app.session.customer
        self.text = (_("Form for {name}").format(name=view.name) if view is not None
                     else _("Form for a new customer"))  # fmt: skip

    def tablet(self) -> None:
        self.owner.send_to_tablet()
        self.waiting = True
        self.text = _("The form is on the tablet. Waiting for the customer…")

    def phone(self) -> None:
        from kiosk.screens.display import qr_texture

        _sid, self.url = self.owner.send_to_phone()
        self.ids.qr.texture = qr_texture(self.url)
        self.waiting = True
        self.text = _("Scan the code with your phone.")

    def close(self) -> None:
        if self.waiting:
            self.owner.cancel_all()
        self.dismiss()


def till_button(app, till_screen) -> widgets.TouchButton:
    """Put the "Clipad" button next to the till's customer buttons."""
    ClipadFormScreen.load_kv()  # the popup's rules live in clipad.kv
    app.till_clipad = TillClipad(app)
    app.services.append(app.till_clipad)
    button = widgets.TouchButton(text=_("Clipad"), size_hint_x=None, width=dp(140))
    button.bind(on_release=lambda *_a: app.till_clipad.choose())
    actions = till_screen.ids.get("actions")
    if actions is not None:  # the vertical column of customer buttons
        button.size_hint_x = 1
        actions.add_widget(button, index=len(actions.children) - 1)  # below "Find customer"
    return button
