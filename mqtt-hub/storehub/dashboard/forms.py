"""Settings as data: one form field per declared setting, typed by the setting's default."""

from __future__ import annotations

from typing import Any

import msgspec

from kiosk.engine import settings
from kiosk.engine.store import Store
from kiosk.i18n import _


class FormError(ValueError):
    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


def kind_of(default: Any) -> str:
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, int):
        return "int"
    if isinstance(default, list):
        return "list"
    if isinstance(default, dict):
        return "json"
    if isinstance(default, str) and len(default) > 80:
        return "longtext"
    return "text"


def shown(value: Any, kind: str) -> Any:
    if kind == "list":
        return ", ".join(str(v) for v in value)
    if kind == "json":
        return msgspec.json.encode(value).decode()
    return value


def setting_rows(store: Store, keys: list[str]) -> list[dict[str, Any]]:
    defs = settings.definitions()
    rows = []
    for key in keys:
        d = defs[key]
        kind = kind_of(d.default)
        rows.append({"key": key, "kind": kind, "label": d.description or key,
                     "value": shown(settings.get(store, key), kind)})  # fmt: skip
    return rows


def parse_settings(form: dict[str, Any], keys: list[str]) -> dict[str, Any]:
    """Turn posted fields into checked values; raise FormError listing every bad field.

    Nothing is written here: the caller stores the values only when all of them are valid.
    """
    defs = settings.definitions()
    out, errors = {}, {}
    for key in keys:
        d = defs[key]
        kind = kind_of(d.default)
        raw = form.get(key)
        try:
            if kind == "bool":
                value: Any = raw == "1"
            elif raw is None:
                continue  # not on this form
            elif kind == "int":
                try:
                    value = int(str(raw).strip())
                except ValueError:
                    raise settings.SettingError(_("Expected a whole number.")) from None
            elif kind == "list":
                value = [p.strip() for p in str(raw).replace("\n", ",").split(",") if p.strip()]
            elif kind == "json":
                try:
                    value = msgspec.json.decode(str(raw).encode())
                except msgspec.DecodeError:
                    raise settings.SettingError(_("Unexpected value.")) from None
            else:
                value = str(raw).replace("\r\n", "\n")
            out[key] = d.check(value)
        except settings.SettingError as exc:
            errors[key] = str(exc)
    if errors:
        raise FormError(errors)
    return out
