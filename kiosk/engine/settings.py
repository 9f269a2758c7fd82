"""Shop settings: named values the owner edits (mandatory fields, texts, policies).

Settings are replicated like everything else: ``setting.changed`` events, last writer wins
by HLC. Each known setting declares its default and a validator, so a bad value from the
dashboard or the wire is refused with a clear message instead of breaking a till.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
from sqlite_utils import Migrations

from kiosk.engine import events, lww
from kiosk.engine.store import Store, register_migrations
from kiosk.i18n import _

migrations = register_migrations(Migrations("kiosk.settings"))


@migrations()
def m001_settings(db) -> None:
    db.execute("CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT, _clock TEXT)")


class SettingError(ValueError):
    pass


@dataclass(frozen=True)
class Setting:
    key: str
    default: Any
    check: Callable[[Any], Any]  # returns the normalised value or raises SettingError
    description: str = ""


_SETTINGS: dict[str, Setting] = {}


def define(key: str, default: Any, check: Callable[[Any], Any], description: str = "") -> Setting:
    """Declare a setting (domain modules declare theirs at import time)."""
    setting = Setting(key, default, check, description)
    _SETTINGS[key] = setting
    return setting


def definitions() -> dict[str, Setting]:
    return dict(_SETTINGS)


# -- validators reused by domain modules ------------------------------------------------
def check_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise SettingError(_("Expected yes or no."))


def check_text(max_len: int = 500) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise SettingError(_("Expected a text."))
        if len(value) > max_len:
            raise SettingError(_("Text is longer than {n} characters.").format(n=max_len))
        return value

    return check


def check_int(lo: int, hi: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SettingError(_("Expected a whole number."))
        if not lo <= value <= hi:
            raise SettingError(_("Expected a number from {lo} to {hi}.").format(lo=lo, hi=hi))
        return value

    return check


def check_choice(*choices: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in choices:
            raise SettingError(_("Expected one of: {choices}.").format(choices=", ".join(choices)))
        return value

    return check


# -- access -------------------------------------------------------------------------------
def get(store: Store, key: str) -> Any:
    setting = _SETTINGS.get(key)
    if setting is None:
        raise KeyError(f"unknown setting {key}")
    row = store.db.execute("SELECT value FROM settings WHERE key = ?", [key]).fetchone()
    if row is None or row[0] is None:
        return setting.default
    return msgspec.json.decode(row[0])


def get_all(store: Store) -> dict[str, Any]:
    return {key: get(store, key) for key in sorted(_SETTINGS)}


def set(store: Store, key: str, value: Any) -> None:  # noqa: A001 - mirrors get()
    """Validate and store a setting; raises SettingError with a readable reason."""
    setting = _SETTINGS.get(key)
    if setting is None:
        raise SettingError(_("Unknown setting: {key}").format(key=key))
    value = setting.check(value)
    if get(store, key) == value:
        return
    events.emit(store, "setting.changed", {"key": key, "value": value})


@events.handler("setting.changed")
def _apply_setting(store: Store, ev: events.Event) -> None:
    key, value = ev.payload["key"], ev.payload["value"]
    setting = _SETTINGS.get(key)
    if setting is not None:
        setting.check(value)  # refuse a bad value from the wire before it reaches the db
    lww.upsert(
        store.db, "settings", {"key": key}, {"value": msgspec.json.encode(value).decode()}, ev.hlc
    )


# -- the shop's identity and texts, used on receipts, forms and consent screens -------------
define("shop.name", "Mein Laden", check_text(80), "Shop name on receipts and forms")
define("shop.address", "", check_text(300), "Postal address, one line per row")
define("shop.phone", "", check_text(40), "Phone number shown on receipts and forms")
define("shop.email", "", check_text(254), "Contact e-mail shown on receipts and forms")
define("shop.vat_id", "", check_text(30), "USt-IdNr. printed on receipts")
define(
    "consent.email_text",
    "Ich bin damit einverstanden, dass mich das Geschäft per E-Mail über Angebote, Aktionen "
    "und Neuigkeiten informiert. Meine Einwilligung kann ich jederzeit widerrufen, z. B. über "
    "den Abmeldelink in jeder E-Mail oder an der Kasse.",
    check_text(2000),
    "Full consent text for e-mail marketing (shown on clipad, web form and paper form)",
)
define(
    "consent.sms_text",
    "Ich bin damit einverstanden, dass mich das Geschäft per SMS über Angebote und Aktionen "
    "informiert. Meine Einwilligung kann ich jederzeit widerrufen, z. B. mit der Antwort STOP.",
    check_text(2000),
    "Full consent text for SMS marketing",
)
