"""Find a customer as you type: name (any order), postcode, phone, e-mail, number, card.

Best practice at the till (Citrus-Lime, Prismanote): always search first — usually by
postcode or name — and create a new record only when nobody matches; the new record starts
with what was typed. Typing is debounced so the list follows the fingers without stutter.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from kivy.clock import Clock
from kivy.properties import BooleanProperty, StringProperty
from kivy.uix.behaviors import ButtonBehavior
from kivy.uix.boxlayout import BoxLayout

from kiosk.engine import customers, search
from kiosk.i18n import _, ngettext
from kiosk.screens.base import KioskScreen
from kiosk.screens.till import customer_summary

_LOGGER = logging.getLogger(__name__)

SEARCH_DEBOUNCE_S = 0.15
RESULT_LIMIT = 30

_POSTCODE_RE = re.compile(r"^\d{5}$")
_PHONE_RE = re.compile(r"^\+?[\d /()-]{6,}$")


def prefill_from_query(text: str) -> dict[str, str]:
    """Turn what was typed into the search box into fields of a new customer.

    ``"Anna Müller 50667"`` gives first name, last name and postcode; an address with ``@``
    becomes the e-mail, a long run of digits the phone number.
    """
    out: dict[str, str] = {}
    text = " ".join(text.split())
    if not text:
        return out
    if _PHONE_RE.match(text) and len(re.sub(r"\D", "", text)) >= 6 and not _POSTCODE_RE.match(text):
        digits = re.sub(r"[^\d+]", "", text)
        out["mobile" if digits.lstrip("+").lstrip("0").startswith(("1", "491")) else "phone"] = text
        return out
    names = []
    for word in text.split():
        if "@" in word:
            out["email"] = word
        elif _POSTCODE_RE.match(word):
            out["postcode"] = word
        elif any(c.isalpha() for c in word):
            names.append(word)
    if len(names) == 1:
        out["last_name"] = names[0]
    elif names:
        out["first_name"] = " ".join(names[:-1])
        out["last_name"] = names[-1]
    return out


class CustomerRow(ButtonBehavior, BoxLayout):
    """One search hit; a tap opens the customer."""

    customer_id = StringProperty("")
    name = StringProperty("")
    number = StringProperty("")
    summary = StringProperty("")
    observation = StringProperty("")
    fuzzy = BooleanProperty(False)


def hit_row(hit: search.Hit) -> dict[str, Any]:
    """The RecycleView data of one hit."""
    record = {
        "postcode": hit.postcode, "city": hit.city, "mobile": hit.mobile, "phone": hit.phone,
        "email": hit.email,
    }  # fmt: skip
    summary = customer_summary(record)
    if hit.birth_date:
        y, m, d = hit.birth_date.split("-")
        summary = "  ·  ".join(p for p in (summary, _("born {date}").format(date=f"{d}.{m}.{y}")) if p)
    return {
        "customer_id": hit.id,
        "name": hit.display_name,
        "number": hit.customer_no,
        "summary": summary,
        "observation": (hit.observation or "").strip(),
        "fuzzy": hit.fuzzy,
    }


class CustomerSearchScreen(KioskScreen):
    """Search box, live results and the way to a new record."""

    status = StringProperty("")
    searched = StringProperty("")  # the text the shown results belong to

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._search_ev = Clock.create_trigger(self.run_search, SEARCH_DEBOUNCE_S)

    def prepare(self, query: str | None = None, **_kwargs) -> None:
        if query is not None:
            self.ids.query.text = query
            self.run_search()

    def on_enter(self, *_args) -> None:
        self.ids.query.focus = True

    def on_query_text(self, _text: str) -> None:
        # debounce: every keystroke restarts the wait
        self._search_ev.cancel()
        self._search_ev()

    def run_search(self, _dt=None) -> None:
        """Search now for what is in the box and show the hits."""
        self._search_ev.cancel()
        text = self.ids.query.text.strip()
        hits = customers.find(self.store, text, limit=RESULT_LIMIT) if text else []
        self.ids.results.data = [hit_row(h) for h in hits]
        self.ids.results.scroll_y = 1
        self.searched = text
        if not text:
            self.status = _("Search first: type a postcode, a name, a phone number or an e-mail address.")
        elif not hits:
            self.status = _("No customer found for “{text}”.").format(text=text)
        else:
            self.status = ngettext("{n} customer found", "{n} customers found", len(hits)).format(
                n=len(hits)
            )

    def on_validate(self) -> None:
        """Enter in the search box: run at once; a single hit opens directly."""
        self.run_search()
        data = self.ids.results.data
        if len(data) == 1:
            self.open_customer(data[0]["customer_id"])

    def open_customer(self, customer_id: str) -> None:
        self.app.show("customer_detail", customer_id=customer_id)

    def new_customer(self) -> None:
        self.app.show("customer_form", customer_id=None, prefill=prefill_from_query(self.ids.query.text))

    def refresh(self) -> None:
        if self.ids.query.text.strip():
            self.run_search()
        elif not self.status:
            self.run_search()
