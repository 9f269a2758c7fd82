"""Custom "add-in" questions the shop asks its customers (shirt size, shoe size, …).

Questions are shop data (``question.upserted`` events, LWW per field); the answers live per
customer in ``customer_answers`` and travel inside customer events.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec
from sqlite_utils import Migrations

from kiosk.engine import events, lww
from kiosk.engine.store import Store, register_migrations
from kiosk.i18n import _

migrations = register_migrations(Migrations("kiosk.questions"))

KINDS = ("text", "choice", "number", "bool")
_KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


@migrations()
def m001_questions(db) -> None:
    db.execute(
        """
        CREATE TABLE custom_questions (
            id TEXT PRIMARY KEY,
            key TEXT,
            label TEXT,
            kind TEXT,
            options TEXT,       -- JSON list for kind = choice
            position INTEGER,
            mandatory INTEGER,
            active INTEGER,
            _clock TEXT
        )
        """
    )


class AnswerError(ValueError):
    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


def all_questions(store: Store, *, active_only: bool = True) -> list[dict[str, Any]]:
    where = "WHERE active = 1" if active_only else ""
    rows = list(
        store.db.query(
            f"SELECT id, key, label, kind, options, position, mandatory, active"
            f" FROM custom_questions {where} ORDER BY position, label"
        )
    )
    for row in rows:
        row["options"] = msgspec.json.decode(row["options"]) if row["options"] else []
        row["mandatory"], row["active"] = bool(row["mandatory"]), bool(row["active"])
    return rows


def define(
    store: Store,
    key: str,
    label: str,
    kind: str = "text",
    options: list[str] | None = None,
    *,
    mandatory: bool = False,
    position: int | None = None,
    active: bool = True,
    question_id: str | None = None,
) -> str:
    """Create or change a question; returns its id."""
    errors = {}
    if not _KEY_RE.match(key or ""):
        errors["key"] = _("Use lowercase letters, digits and _ (e.g. shoe_size).")
    if not label or len(label) > 120:
        errors["label"] = _("Enter a label of at most 120 characters.")
    if kind not in KINDS:
        errors["kind"] = _("Choose one of: {choices}.").format(choices=", ".join(KINDS))
    options = [o.strip() for o in (options or []) if o.strip()]
    if kind == "choice" and not options:
        errors["options"] = _("A choice question needs at least one option.")
    same_key = store.db.execute(
        "SELECT id FROM custom_questions WHERE key = ? AND active = 1", [key]
    ).fetchone()
    if same_key and same_key[0] != question_id:
        errors["key"] = _("Another question already uses this key.")
    if errors:
        raise AnswerError(errors)
    if position is None:
        position = store.db.execute(
            "SELECT coalesce(max(position), 0) + 10 FROM custom_questions"
        ).fetchone()[0]
    qid = question_id or events.new_id()
    events.emit(
        store,
        "question.upserted",
        {"id": qid, "fields": {"key": key, "label": label, "kind": kind, "options": options,
                               "position": position, "mandatory": mandatory, "active": active}},
    )  # fmt: skip
    return qid


@events.handler("question.upserted")
def _apply_question(store: Store, ev: events.Event) -> None:
    fields = dict(ev.payload["fields"])
    if "options" in fields:
        fields["options"] = msgspec.json.encode(fields["options"]).decode()
    for flag in ("mandatory", "active"):
        if flag in fields:
            fields[flag] = int(bool(fields[flag]))
    lww.upsert(store.db, "custom_questions", {"id": ev.payload["id"]}, fields, ev.hlc)


def _normalise_answer(question: dict[str, Any], value: Any) -> Any:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    kind = question["kind"]
    if kind == "choice":
        if value not in question["options"]:
            raise ValueError(
                _("Choose one of: {choices}.").format(choices=", ".join(question["options"]))
            )
        return value
    if kind == "number":
        try:
            number = Decimal(str(value).replace(",", "."))
        except InvalidOperation as exc:
            raise ValueError(_("Expected a number.")) from exc
        if not number.is_finite():
            raise ValueError(_("Expected a number."))
        return str(number)
    if kind == "bool":
        if isinstance(value, bool):
            return value
        raise ValueError(_("Expected yes or no."))
    text = str(value).strip()
    if len(text) > 200:
        raise ValueError(_("At most {n} characters.").format(n=200))
    return text


def normalise_answers(store: Store, answers: Any) -> dict[str, Any]:
    if not isinstance(answers, dict):
        raise AnswerError({"answers": _("Unexpected value.")})
    by_key = {q["key"]: q for q in all_questions(store)}
    out, errors = {}, {}
    for key, value in answers.items():
        question = by_key.get(key)
        if question is None:
            errors[key] = _("Unknown question.")
            continue
        try:
            out[key] = _normalise_answer(question, value)
        except ValueError as exc:
            errors[key] = str(exc)
    if errors:
        raise AnswerError(errors)
    return out


def missing_mandatory(store: Store, answers: dict[str, Any]) -> dict[str, str]:
    return {
        f"answers.{q['key']}": _("{field} is required.").format(field=q["label"])
        for q in all_questions(store)
        if q["mandatory"] and answers.get(q["key"]) in (None, "")
    }
