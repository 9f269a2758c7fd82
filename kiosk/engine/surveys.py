"""In-store surveys (Fastmag "In-Store-Umfrage"): defined on the hub, answered after a sale.

A survey is a record (LWW per field) with its questions, their order and answer options, and
the stores it runs in; several may exist, the newest active one for a store is shown. An
answer (or a skip) is an ``survey.answered`` event linked to store, device, sale and customer,
so it syncs like everything else and is counted once however often it arrives.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import msgspec
from sqlite_utils import Migrations

from kiosk.engine import customers, events, lww
from kiosk.engine.clock import iso, parse_iso
from kiosk.engine.store import Store, register_migrations
from kiosk.i18n import _

migrations = register_migrations(Migrations("kiosk.surveys"))

KINDS = ("choice", "multi", "scale", "text")
MAX_QUESTIONS = 12
MAX_OPTIONS = 10
PROMPT_WINDOW = dt.timedelta(minutes=5)  # a survey is offered this long after a sale


@migrations()
def m001_surveys(db) -> None:
    db.execute(
        "CREATE TABLE surveys (id TEXT PRIMARY KEY, title TEXT, questions TEXT, stores TEXT,"
        " active INTEGER, saved_at TEXT, _clock TEXT)"
    )
    db.execute(
        """
        CREATE TABLE survey_answers (
            event_id TEXT PRIMARY KEY, survey_id TEXT NOT NULL, store_id TEXT NOT NULL,
            device TEXT NOT NULL, sale_id TEXT, customer_id TEXT, orig_customer_id TEXT,
            skipped INTEGER NOT NULL, answers TEXT NOT NULL, at TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX survey_answers_survey ON survey_answers(survey_id, at)")
    db.execute("CREATE UNIQUE INDEX survey_answers_sale ON survey_answers(survey_id, sale_id)"
               " WHERE sale_id IS NOT NULL")  # fmt: skip


customers.register_customer_ref("survey_answers")


class SurveyError(ValueError):
    pass


@dataclass(frozen=True)
class Question:
    id: str
    text: str
    kind: str = "choice"
    options: tuple[str, ...] = ()
    required: bool = False


@dataclass(frozen=True)
class Survey:
    id: str
    title: str
    questions: tuple[Question, ...]
    stores: tuple[str, ...]  # empty: every store
    active: bool


def _check_questions(questions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not questions or len(questions) > MAX_QUESTIONS:
        raise SurveyError(_("A survey has 1 to {n} questions.").format(n=MAX_QUESTIONS))
    out, seen = [], set()
    for i, q in enumerate(questions, start=1):
        qid = str(q.get("id") or f"q{i}")
        text = " ".join(str(q.get("text") or "").split())
        kind = q.get("kind", "choice")
        options = [" ".join(str(o).split()) for o in q.get("options") or [] if str(o).strip()]
        if not text or len(text) > 200:
            raise SurveyError(_("Question {n}: enter a text of at most 200 characters.").format(n=i))
        if kind not in KINDS:
            raise SurveyError(_("Question {n}: unknown kind.").format(n=i))
        if kind in ("choice", "multi") and not 2 <= len(options) <= MAX_OPTIONS:
            raise SurveyError(_("Question {n}: give 2 to {m} answers.").format(n=i, m=MAX_OPTIONS))
        if kind == "scale":
            options = [str(k) for k in range(1, 6)]
        if qid in seen:
            raise SurveyError(_("Question {n}: the id is used twice.").format(n=i))
        seen.add(qid)
        out.append({"id": qid, "text": text, "kind": kind, "options": options,
                    "required": bool(q.get("required"))})  # fmt: skip
    return out


def save(store: Store, title: str, questions: list[dict[str, Any]], *, stores: list[str] = (),
         active: bool = True, survey_id: str | None = None) -> str:  # fmt: skip
    title = " ".join((title or "").split())
    if not title or len(title) > 80:
        raise SurveyError(_("Enter a title of at most 80 characters."))
    checked = _check_questions(list(questions))
    sid = survey_id or events.new_id()
    events.emit(store, "survey.saved", {"id": sid, "fields": {
        "title": title, "questions": checked, "stores": sorted(set(stores)), "active": bool(active)}})
    return sid


@events.handler("survey.saved")
def _apply_saved(store: Store, ev: events.Event) -> None:
    f = ev.payload["fields"]
    fields = {k: msgspec.json.encode(v).decode() if isinstance(v, list) else v for k, v in f.items()}
    lww.upsert(store.db, "surveys", {"id": ev.payload["id"]}, {**fields, "saved_at": ev.hlc}, ev.hlc)


def _row(row: dict[str, Any]) -> Survey:
    qs = tuple(Question(q["id"], q["text"], q["kind"], tuple(q["options"]), q["required"])
               for q in msgspec.json.decode(row["questions"]))  # fmt: skip
    return Survey(row["id"], row["title"], qs, tuple(msgspec.json.decode(row["stores"] or "[]")),
                  bool(row["active"]))  # fmt: skip


def get(store: Store, survey_id: str) -> Survey:
    rows = list(store.db.query("SELECT * FROM surveys WHERE id = ?", [survey_id]))
    if not rows:
        raise SurveyError(_("Unknown survey."))
    return _row(rows[0])


def all_surveys(store: Store) -> list[Survey]:
    return [_row(r) for r in store.db.query("SELECT * FROM surveys ORDER BY saved_at DESC")]


def active_for(store: Store, store_id: str) -> Survey | None:
    """The survey this store shows now: the most recently saved active one that runs here."""
    for s in all_surveys(store):
        if s.active and (not s.stores or store_id in s.stores):
            return s
    return None


def answer(store: Store, survey_id: str, answers: dict[str, Any], *, sale_id: str | None = None,
           customer_id: str | None = None, skipped: bool = False) -> str:  # fmt: skip
    """Record the shopper's answers (or that they skipped); returns the event id."""
    survey = get(store, survey_id)
    clean: dict[str, Any] = {}
    if not skipped:
        for q in survey.questions:
            value = answers.get(q.id)
            if value in (None, "", []):
                if q.required:
                    raise SurveyError(_("Please answer: {q}").format(q=q.text))
                continue
            if q.kind == "multi":
                values = value if isinstance(value, list) else [value]
                if not values or any(v not in q.options for v in values):
                    raise SurveyError(_("Unknown answer to: {q}").format(q=q.text))
                clean[q.id] = sorted(set(values), key=q.options.index)
            elif q.kind == "text":
                clean[q.id] = " ".join(str(value).split())[:500]
            else:
                if str(value) not in q.options:
                    raise SurveyError(_("Unknown answer to: {q}").format(q=q.text))
                clean[q.id] = str(value)
        unknown = set(answers) - {q.id for q in survey.questions}
        if unknown:
            raise SurveyError(_("Unknown question {q}.").format(q=sorted(unknown)[0]))
    if sale_id and store.db.execute(
        "SELECT 1 FROM survey_answers WHERE survey_id = ? AND sale_id = ?", [survey_id, sale_id]
    ).fetchone():
        raise SurveyError(_("This sale's survey was answered already."))
    ev = events.emit(store, "survey.answered", {
        "survey_id": survey_id, "store_id": store.identity.store_id, "sale_id": sale_id,
        "customer_id": customer_id, "skipped": skipped, "answers": clean})
    return ev.id


@events.handler("survey.answered")
def _apply_answered(store: Store, ev: events.Event) -> None:
    p = ev.payload
    if p.get("sale_id"):
        # two devices may answer for the same sale offline: the first event (by id) counts,
        # whatever order they arrive in
        row = store.db.execute(
            "SELECT event_id FROM survey_answers WHERE survey_id = ? AND sale_id = ?",
            [p["survey_id"], p["sale_id"]],
        ).fetchone()
        if row and row[0] <= ev.id:
            return
        if row:
            store.db.execute("DELETE FROM survey_answers WHERE event_id = ?", [row[0]])
    cid = customers.resolve(store.db, p["customer_id"]) if p.get("customer_id") else None
    store.db.execute(
        "INSERT OR IGNORE INTO survey_answers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [ev.id, p["survey_id"], p["store_id"], ev.device, p.get("sale_id"), cid,
         p.get("customer_id"), int(bool(p.get("skipped"))),
         msgspec.json.encode(p.get("answers") or {}).decode(), ev.created_at],
    )  # fmt: skip


def results(store: Store, survey_id: str, *, store_id: str | None = None) -> dict[str, Any]:
    """Counts per answer option (for charts), number answered and skipped, text answers."""
    survey = get(store, survey_id)
    where, args = ("AND store_id = ?", [store_id]) if store_id else ("", [])
    rows = store.db.execute(
        f"SELECT skipped, answers FROM survey_answers WHERE survey_id = ? {where}",
        [survey_id, *args],
    ).fetchall()
    counts = {q.id: {o: 0 for o in q.options} for q in survey.questions}
    texts: dict[str, list[str]] = {q.id: [] for q in survey.questions if q.kind == "text"}
    answered = skipped = 0
    for skip, raw in rows:
        if skip:
            skipped += 1
            continue
        answered += 1
        for qid, value in msgspec.json.decode(raw).items():
            if qid in texts:
                texts[qid].append(value)
            elif qid in counts:
                for v in value if isinstance(value, list) else [value]:
                    if v in counts[qid]:
                        counts[qid][v] += 1
    return {"survey": survey, "answered": answered, "skipped": skipped, "counts": counts,
            "texts": texts}  # fmt: skip


def sale_to_survey(store: Store, till: str, now: dt.datetime) -> dict[str, Any] | None:
    """The paired till's latest sale, if recent and not surveyed yet (what a survey device
    offers the shopper after the cashier validated the sale)."""
    row = store.db.execute(
        "SELECT id, customer_id, completed_at FROM sales WHERE device = ? AND kind = 'sale'"
        " ORDER BY completed_at DESC LIMIT 1", [till]).fetchone()  # fmt: skip
    if row is None or now - parse_iso(row[2]) > PROMPT_WINDOW:
        return None
    survey = active_for(store, store.identity.store_id)
    if survey is None or store.db.execute(
        "SELECT 1 FROM survey_answers WHERE survey_id = ? AND sale_id = ?", [survey.id, row[0]]
    ).fetchone():
        return None
    return {"survey": survey, "sale_id": row[0], "customer_id": row[1], "at": iso(parse_iso(row[2]))}
