"""Export customers to an Excel workbook (.xlsx): everyone, a search result or chosen ids.

Headers are the translated field labels; dates are real Excel dates; consent comes with its
date and source; groups and card numbers are listed. The workbook is written in openpyxl's
write-only mode so 100,000 customers stream through in constant memory. Text that Excel
could take for a formula (= + - @ …) is written as a text cell with a quote prefix, and the
ID-card number leaves the store only masked.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import msgspec
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from kiosk.engine import customers, questions, search
from kiosk.engine.clock import SHOP_TZ, parse_iso
from kiosk.engine.store import Store
from kiosk.i18n import N_, _

_LOGGER = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]  # ("export", done, total)

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_BATCH = 500
_PROGRESS_EVERY = 250
DATE_FORMAT = "DD.MM.YYYY"
DATETIME_FORMAT = "DD.MM.YYYY HH:MM"

CONSENT_SOURCE_LABELS = {
    "till": N_("Till"),
    "clipad": N_("Clipad"),
    "web": N_("Web form"),
    "paper": N_("Paper form"),
    "import": N_("Import"),
    "dashboard": N_("Dashboard"),
    "unsubscribe": N_("Unsubscribe link"),
}


@dataclass(frozen=True)
class Column:
    key: str  # key in the exported record
    label: str  # English msgid of the header
    target: str | None  # import target that reads the column back (None: export only)
    kind: str = "text"  # text, date, datetime, bool, choice, source


def _static_columns() -> list[Column]:
    cols = [Column("customer_no", N_("Customer number"), "customer_no")]
    for f in customers.FIELDS:
        if f.kind == "id_card":
            cols.append(Column("id_card_masked", N_("ID card number (masked)"), None))
        elif f.name in customers.CONSENT_FIELDS:
            cols.append(Column(f.name, f.label, f.name, "bool"))
            at_label = (
                N_("E-mail consent given on") if f.name == "email_consent"
                else N_("SMS consent given on")
            )  # fmt: skip
            source_label = (
                N_("E-mail consent source") if f.name == "email_consent"
                else N_("SMS consent source")
            )  # fmt: skip
            cols.append(Column(f"{f.name}_at", at_label, f"{f.name}_at", "datetime"))
            cols.append(Column(f"{f.name}_source", source_label, None, "source"))
        elif f.kind == "date":
            cols.append(Column(f.name, f.label, f.name, "date"))
        elif f.kind == "phone":
            cols.append(Column(f.name, f.label, f.name, "phone"))
        elif f.kind == "choice":
            cols.append(Column(f.name, f.label, f.name, "choice"))
        else:
            cols.append(Column(f.name, f.label, f.name))
    cols.append(Column("groups", N_("Customer groups"), "groups"))
    cols.append(Column("cards", N_("Card numbers"), "card_no"))
    cols.append(Column("created_at", N_("Customer since"), None, "datetime"))
    return cols


STATIC_COLUMNS: tuple[Column, ...] = tuple(_static_columns())


def header_targets() -> list[tuple[str, str | None]]:
    """(header msgid, import target or None) of every fixed column, for the import's mapping."""
    return [(c.label, c.target) for c in STATIC_COLUMNS]


def columns(store: Store) -> list[Column]:
    """The exported columns: the fixed ones, then one per custom question."""
    out = list(STATIC_COLUMNS)
    for q in questions.all_questions(store):
        kind = {"bool": "bool", "number": "number"}.get(q["kind"], "text")
        out.append(Column(f"answers.{q['key']}", q["label"], f"answers.{q['key']}", kind))
    return out


# -- selection ----------------------------------------------------------------------------------
def _select_ids(store: Store, query: str | None, ids: Iterable[str] | None) -> list[str]:
    db = store.db
    if ids is not None:
        out: list[str] = []
        for customer_id in ids:
            resolved = customers.resolve(db, customer_id)
            row = db.execute(
                "SELECT 1 FROM customers WHERE id = ? AND erased_at IS NULL", [resolved]
            ).fetchone()
            if row is None:
                raise customers.NotFound(customer_id)
            if resolved not in out:
                out.append(resolved)
        return out
    if query is not None and query.strip():
        limit = customers.count(store) or 1
        return [hit.id for hit in search.run(db, query, limit=limit, candidates=limit)]
    return [
        r[0]
        for r in db.execute(
            "SELECT id FROM customers WHERE merged_into IS NULL AND erased_at IS NULL"
            " ORDER BY customer_no"
        )
    ]


def _batched(items: list[str], n: int) -> Iterator[list[str]]:
    for start in range(0, len(items), n):
        yield items[start : start + n]


def records(store: Store, ids: list[str]) -> Iterator[dict[str, Any]]:
    """Yield full customer records (cards, groups, answers) in the order of ``ids``."""
    db = store.db
    for chunk in _batched(ids, _BATCH):
        marks = ", ".join("?" for _i in chunk)
        rows = {r["id"]: r for r in db.query(f"SELECT * FROM customers WHERE id IN ({marks})", chunk)}
        cards: dict[str, list[str]] = {}
        for cid, card_no in db.execute(
            f"SELECT customer_id, card_no FROM customer_cards WHERE customer_id IN ({marks})"
            " ORDER BY issued_at, card_no",
            chunk,
        ):
            cards.setdefault(cid, []).append(card_no)
        member_of: dict[str, list[str]] = {}
        for cid, name in db.execute(
            "SELECT m.customer_id, g.name FROM customer_group_members m"
            " JOIN customer_groups g ON g.id = m.group_id"
            f" WHERE m.customer_id IN ({marks}) AND m.member = 1 AND g.active = 1"
            " ORDER BY g.name",
            chunk,
        ):
            member_of.setdefault(cid, []).append(name)
        answers: dict[str, dict[str, Any]] = {}
        for cid, question, value in db.execute(
            f"SELECT customer_id, question, value FROM customer_answers"
            f" WHERE customer_id IN ({marks}) AND value IS NOT NULL",
            chunk,
        ):
            answers.setdefault(cid, {})[question] = msgspec.json.decode(value)
        for cid in chunk:
            row = rows.get(cid)
            if row is None:
                continue
            row["cards"] = cards.get(cid, [])
            row["groups"] = member_of.get(cid, [])
            for key, value in answers.get(cid, {}).items():
                row[f"answers.{key}"] = value
            yield row


# -- cells ------------------------------------------------------------------------------------
def _local_naive(text: str | None) -> dt.datetime | None:
    """Excel has no time zones: write the shop's local wall-clock time."""
    if not text:
        return None
    return parse_iso(text).astimezone(SHOP_TZ).replace(tzinfo=None, microsecond=0)


def _value(column: Column, record: dict[str, Any]) -> Any:
    value = record.get(column.key)
    if column.key in ("groups", "cards"):
        return "; ".join(value) if value else None
    if value is None or value == "":
        return None
    if column.kind == "date":
        return dt.date.fromisoformat(value)
    if column.kind == "datetime":
        return _local_naive(value)
    if column.kind == "bool":
        # consent columns are TEXT: a refusal is stored as "0"
        return _("yes") if value in (True, 1, "1") else _("no")
    if column.kind == "source":
        label = CONSENT_SOURCE_LABELS.get(value)
        return _(label) if label else value
    if column.kind == "phone":
        return customers.format_phone(value)
    if column.kind == "number":
        return Decimal(str(value))
    if column.kind == "choice":
        spec = customers.FIELD_BY_NAME[column.key]
        labels = dict(spec.choices)
        return _(labels[value]) if value in labels else value
    return value


def _cell(ws, value: Any) -> Any:
    """Wrap values that need a format or must not become formulas; pass the rest through."""
    if isinstance(value, dt.datetime):
        cell = WriteOnlyCell(ws, value)
        cell.number_format = DATETIME_FORMAT
        return cell
    if isinstance(value, dt.date):
        cell = WriteOnlyCell(ws, value)
        cell.number_format = DATE_FORMAT
        return cell
    if isinstance(value, str):
        value = ILLEGAL_CHARACTERS_RE.sub("", value)
        if value.startswith(_FORMULA_STARTS):
            cell = WriteOnlyCell(ws, value)
            cell.data_type = "s"  # openpyxl would make "=…" a formula
            cell.quotePrefix = True  # and Excel keeps it text even when the cell is edited
            return cell
    return value


# -- writing ------------------------------------------------------------------------------------
def export(
    store: Store,
    dest: str | os.PathLike | IO[bytes],
    *,
    query: str | None = None,
    ids: Iterable[str] | None = None,
    progress: Progress | None = None,
) -> int:
    """Write customers to an .xlsx (all, those matching ``query``, or ``ids``); return the count."""
    selected = _select_ids(store, query, ids)
    cols = columns(store)
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(_("Customers"))
    ws.freeze_panes = "A2"
    for index, column in enumerate(cols, start=1):
        width = 14 if column.kind in ("date", "bool") else 18 if column.kind == "datetime" else 20
        ws.column_dimensions[get_column_letter(index)].width = width
    bold = Font(bold=True)
    header = []
    for column in cols:
        cell = WriteOnlyCell(ws, ILLEGAL_CHARACTERS_RE.sub("", _(column.label)))
        cell.font = bold
        if cell.value.startswith(_FORMULA_STARTS):  # a custom question's label is shop text
            cell.data_type = "s"
            cell.quotePrefix = True
        header.append(cell)
    ws.append(header)
    total = len(selected)
    done = 0
    for done, record in enumerate(records(store, selected), start=1):
        ws.append([_cell(ws, _value(c, record)) for c in cols])
        if progress and done % _PROGRESS_EVERY == 0:
            progress("export", done, total)
    if selected:
        ws.auto_filter.ref = f"A1:{get_column_letter(len(cols))}{done + 1}"
    _save(wb, dest)
    if progress:
        progress("export", done, total)
    _LOGGER.info("exported %d customers", done)
    return done


def _save(wb: Workbook, dest: str | os.PathLike | IO[bytes]) -> None:
    if not isinstance(dest, (str, os.PathLike)):
        wb.save(dest)
        return
    path = Path(dest)
    # never leave a half-written workbook under the real name
    fd, tmp = tempfile.mkstemp(prefix=".export-", suffix=".xlsx", dir=path.parent or ".")
    os.close(fd)
    try:
        wb.save(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
