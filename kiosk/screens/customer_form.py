"""Create or edit a customer: sections, mandatory fields marked ``*``, custom questions,
the shop's consent texts, validation messages next to each field and the duplicate check.

The form holds no rules of its own: it hands everything to ``customers.create`` /
``customers.update`` and shows what they answer (ValidationError, PossibleDuplicates).
"""

from __future__ import annotations

import logging
from typing import Any

from kivy.clock import Clock
from kivy.properties import BooleanProperty, StringProperty

from kiosk.engine import customers, questions, settings
from kiosk.i18n import N_, _
from kiosk.screens import formatting, widgets
from kiosk.screens.base import KioskScreen
from kiosk.screens.duplicates import DuplicatePopup
from kiosk.screens.form_fields import BoolField, ChoiceField, FormField, TextField

_LOGGER = logging.getLogger(__name__)

QUESTIONS_SECTION = "answers"
FORM_SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (N_("Person"), ("gender", "title", "first_name", "last_name", "company", "birth_date")),
    (N_("Contact"), ("email", "mobile", "phone", "language")),
    (N_("Address"), ("street", "house_no", "postcode", "city", "country")),
    (N_("Marketing consent"), ("email_consent", "sms_consent")),
    (N_("Additional questions"), (QUESTIONS_SECTION,)),
    (N_("Delivery address"), ("delivery_name", "delivery_street", "delivery_house_no",
                              "delivery_postcode", "delivery_city", "delivery_country")),
    (N_("Identity"), ("id_card",)),
    (N_("Internal"), ("provenance", "grouping", "observation", "notes")),
)  # fmt: skip

HINTS = {
    "birth_date": N_("DD.MM.YYYY"),
    "email": N_("name@example.de"),
    "country": N_("DE"),
    "delivery_country": N_("DE"),
    "observation": N_("Shown red and bold at the till whenever the customer is recalled"),
    "provenance": N_("Where the customer comes from, e.g. newspaper ad, mailing"),
    "grouping": N_("e.g. club or association"),
}
CONSENT_TEXT_SETTINGS = {"email_consent": "consent.email_text", "sms_consent": "consent.sms_text"}


class FormSection(widgets.Card):
    """A titled card holding a grid of fields and full-width fields below it."""

    title = StringProperty("")

    def add_field(self, field: FormField) -> None:
        (self.ids.wide if field.full_width else self.ids.grid).add_widget(field)


class CustomerFormScreen(KioskScreen):
    customer_id = StringProperty("", allownone=True)
    editing = BooleanProperty(False)
    form_error = StringProperty("")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.fields: dict[str, FormField] = {}
        self.record: dict[str, Any] | None = None
        self._prefill: dict[str, Any] = {}
        self._fresh = False
        self.popup: DuplicatePopup | None = None

    # -- opening ----------------------------------------------------------------------------
    def prepare(self, customer_id: str | None = None, prefill: dict | None = None, **_kw) -> None:
        self.customer_id = customer_id or ""
        self.editing = bool(customer_id)
        self._prefill = dict(prefill or {})
        self._fresh = True

    def refresh(self) -> None:
        if not self._fresh:
            return  # coming back from a popup or the keyboard: keep what was typed
        self._fresh = False
        self.record = customers.get(self.store, self.customer_id) if self.editing else None
        self._build()
        self.ids.scroll.scroll_y = 1

    def on_enter(self, *_args) -> None:
        if not self.editing:
            first = next((f for f in self.fields.values() if isinstance(f, TextField)
                          and not f.get_value() and f.name in ("last_name", "first_name")), None)  # fmt: skip
            if first is not None:
                first.focus_input()

    # -- building the form ----------------------------------------------------------------
    def _build(self) -> None:
        store = self.store
        record = self.record or {}
        mandatory = set(settings.get(store, "customer.mandatory_fields"))
        asked = questions.all_questions(store)
        container = self.ids.sections
        container.clear_widgets()
        self.fields = {}
        self.form_error = ""
        for title, names in FORM_SECTIONS:
            section = FormSection(title=_(title))
            for name in names:
                if name == QUESTIONS_SECTION:
                    for q in asked:
                        field = self._question_field(q, record.get("answers", {}).get(q["key"]))
                        section.add_field(field)
                    continue
                field = self._record_field(name, name in mandatory, record)
                section.add_field(field)
            if section.ids.grid.children or section.ids.wide.children:
                container.add_widget(section)
        for name, value in self._prefill.items():
            if name in self.fields and value:
                self.fields[name].set_value(value)

    def _record_field(self, name: str, mandatory: bool, record: dict[str, Any]) -> FormField:
        spec = customers.FIELD_BY_NAME[name]
        label = _(spec.label)
        if spec.kind == "choice":
            field = ChoiceField(
                name=name, label=label, mandatory=mandatory,
                choices=[(code, _(text)) for code, text in spec.choices],
            )  # fmt: skip
            field.set_value(record.get(name))
        elif spec.kind == "bool":
            text = settings.get(self.store, CONSENT_TEXT_SETTINGS[name]) if name in CONSENT_TEXT_SETTINGS else ""
            status = formatting.consent_text(record, name) if record else ""
            field = BoolField(name=name, label=label, mandatory=mandatory, text=text, status=status)
            field.set_value(record.get(name))
        else:
            hint = _(HINTS[name]) if name in HINTS else ""
            if spec.kind == "id_card" and record.get("id_card_masked"):
                hint = _("{masked} – type a new number to replace it").format(
                    masked=record["id_card_masked"]
                )
            field = TextField(name=name, label=label, mandatory=mandatory, kind=spec.kind, hint=hint)
            if spec.kind != "id_card":
                field.set_value(formatting.field_text(record, name) if record else "")
        self.fields[name] = field
        return field

    def _question_field(self, q: dict[str, Any], value: Any) -> FormField:
        name = f"answers.{q['key']}"
        if q["kind"] == "choice":
            field = ChoiceField(name=name, label=q["label"], mandatory=q["mandatory"],
                                choices=[(o, o) for o in q["options"]])  # fmt: skip
        elif q["kind"] == "bool":
            field = BoolField(name=name, label=q["label"], mandatory=q["mandatory"])
        else:
            field = TextField(name=name, label=q["label"], mandatory=q["mandatory"],
                              kind="number" if q["kind"] == "number" else "text")  # fmt: skip
            if q["kind"] == "number" and value is not None:
                value = str(value).replace(".", ",")
        if value is not None:
            field.set_value(value)
        self.fields[name] = field
        return field

    # -- saving ---------------------------------------------------------------------------------
    def collect(self) -> dict[str, Any]:
        """The form's values in the shape customers.create / update take."""
        data: dict[str, Any] = {}
        answers: dict[str, Any] = {}
        for name, field in self.fields.items():
            value = field.get_value()
            if name.startswith("answers."):
                if isinstance(field, BoolField) and not value and not self.editing:
                    continue
                if value not in (None, "") or self.editing:
                    answers[name.split(".", 1)[1]] = value if value != "" else None
                continue
            if name == "id_card" and not value:
                continue  # empty means "keep the stored number"
            if not self.editing and value in (None, ""):
                continue
            data[name] = value if value != "" else None
        if answers or not self.editing:
            data["answers"] = answers
        return data

    def save(self, force: bool = False) -> None:
        """Validate and store; show messages next to the fields or the duplicate warning."""
        for field in self.fields.values():
            field.error = ""
        self.form_error = ""
        data = self.collect()
        try:
            if self.editing:
                record = customers.update(self.store, self.customer_id, data, source="till", force=force)
            else:
                record = customers.create(self.store, data, source="till", force=force)
        except customers.ValidationError as exc:
            self.show_errors(exc.errors)
            return
        except customers.PossibleDuplicates as exc:
            self.popup = DuplicatePopup(
                exc.candidates,
                editing=self.editing,
                on_use=self.use_existing,
                on_force=lambda: self.save(force=True),
            )
            self.popup.open()
            return
        except customers.NotFound:
            self.app.notify(_("This customer no longer exists."), "danger")
            self.app.home()
            return
        self.app.session.refresh()
        if self.editing:
            self.app.notify(_("Changes saved"), "success")
            self.app.back()
        else:
            self.app.attach_customer(record["id"])
            self.app.notify(
                _("Customer {name} created and added to the sale").format(
                    name=customers.display_name(record)
                ),
                "success",
            )

    def show_errors(self, errors: dict[str, str]) -> None:
        """Put each message under its field; the rest goes into the banner on top."""
        unplaced = []
        first = None
        for key, message in errors.items():
            field = self.fields.get(key)
            if field is None:
                unplaced.append(message)
                continue
            field.error = message
            first = first or field
        count = len(errors)
        summary = _("Please check the marked field.") if count == 1 else _(
            "Please check the {n} marked fields."
        ).format(n=count)
        self.form_error = "\n".join([summary, *unplaced])
        if first is not None:
            Clock.schedule_once(lambda _dt: self.ids.scroll.scroll_to(first, padding=60, animate=False), 0)

    def use_existing(self, customer_id: str) -> None:
        """The cashier picked a known customer in the duplicate warning."""
        self.app.attach_customer(customer_id)

    def cancel(self) -> None:
        self.app.back()
