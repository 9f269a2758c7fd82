"""How engine values are shown to people: German dates, local times, labels of choices."""

from __future__ import annotations

import datetime as dt
from typing import Any

from kiosk.engine import customers
from kiosk.engine.clock import SHOP_TZ, parse_iso
from kiosk.i18n import N_, _

CONSENT_SOURCE_LABELS = {
    "till": N_("at the till"),
    "clipad": N_("on the clipad"),
    "web": N_("web form"),
    "paper": N_("paper form"),
    "import": N_("import"),
    "dashboard": N_("dashboard"),
    "unsubscribe": N_("unsubscribe link"),
    "merge": N_("merge"),
}


def date_text(iso_date: str | None) -> str:
    """``1980-05-01`` → ``01.05.1980``."""
    if not iso_date:
        return ""
    day = dt.date.fromisoformat(iso_date)
    return day.strftime("%d.%m.%Y")


def timestamp_text(iso_ts: str | None) -> str:
    """A stored UTC timestamp in shop-local time, ``04.05.2026 12:30``."""
    if not iso_ts:
        return ""
    return parse_iso(iso_ts).astimezone(SHOP_TZ).strftime("%d.%m.%Y %H:%M")


def percent_text(basis_points: int | None) -> str:
    """``1050`` → ``10,5 %``."""
    if not basis_points:
        return ""
    whole, rest = divmod(int(basis_points), 100)
    return f"{whole},{rest:02d}".rstrip("0").rstrip(",") + " %"


def choice_text(field_name: str, code: str | None) -> str:
    if not code:
        return ""
    labels = dict(customers.FIELD_BY_NAME[field_name].choices)
    return _(labels[code]) if code in labels else code


def field_text(record: dict[str, Any], name: str) -> str:
    """A customer field ready to show (translated choices, German dates, dialled phones)."""
    field = customers.FIELD_BY_NAME[name]
    if field.kind == "id_card":
        return record.get("id_card_masked") or ""
    value = record.get(name)
    if value in (None, ""):
        return ""
    if field.kind == "choice":
        return choice_text(name, value)
    if field.kind == "date":
        return date_text(value)
    if field.kind == "phone":
        return customers.format_phone(value)
    if field.kind == "bool":
        return _("Yes") if value else _("No")
    return str(value)


def consent_text(record: dict[str, Any], field_name: str) -> str:
    """``Yes, since 04.05.2026 12:30 (at the till)`` or ``No``."""
    given = bool(record.get(field_name))
    at = timestamp_text(record.get(f"{field_name}_at"))
    source = record.get(f"{field_name}_source") or ""
    source = _(CONSENT_SOURCE_LABELS[source]) if source in CONSENT_SOURCE_LABELS else source
    if given:
        text = _("Yes, since {when}").format(when=at) if at else _("Yes")
    else:
        text = _("No (as of {when})").format(when=at) if at else _("No")
    return f"{text} ({source})" if source and at else text
