"""Alerts shown when a customer is recalled at the till (Fastmag "Benachrichtigungen").

The shop writes rules such as ``email = ''`` → "Bitte E-Mail ergänzen" or
``totalCA >= '1000'`` → "Stammkunde". Conditions are parsed by the small grammar below into a
tree and evaluated against the customer's fields and aggregates; user text is never eval'd.

    condition  := or_expr
    or_expr    := and_expr (("or" | "oder" | "||") and_expr)*
    and_expr   := not_expr (("and" | "und" | "&&" | ";") not_expr)*
    not_expr   := ("not" | "nicht") not_expr | "(" or_expr ")" | comparison
    comparison := NAME OP literal        OP: = == != <> < <= > >=
    literal    := 'text' | "text" | number | true | false | ja | nein
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlite_utils import Migrations

from kiosk.engine import customers, events, groups, lww
from kiosk.engine.clock import local_date
from kiosk.engine.store import Store, register_migrations
from kiosk.i18n import _

migrations = register_migrations(Migrations("kiosk.alerts"))


@migrations()
def m001_alert_rules(db) -> None:
    db.execute(
        """
        CREATE TABLE alert_rules (
            id TEXT PRIMARY KEY,
            position INTEGER,
            condition TEXT,
            message TEXT,
            active INTEGER,
            _clock TEXT
        )
        """
    )


class ConditionError(ValueError):
    """The condition text cannot be parsed or names something unknown."""


# -- variables ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Variable:
    name: str
    kind: str  # text, number, date, bool
    value: Callable[[Store, dict[str, Any]], Any]


_VARIABLES: dict[str, Variable] = {}
_ALIASES: dict[str, str] = {}


def register_variable(
    name: str, kind: str, value: Callable[[Store, dict[str, Any]], Any], aliases: tuple = ()
) -> None:
    """Offer a value to conditions (domain modules add aggregates such as total revenue)."""
    _VARIABLES[name] = Variable(name, kind, value)
    for alias in (name, *aliases):
        _ALIASES[alias.lower()] = name


def variables() -> dict[str, str]:
    """Names usable in conditions with their kinds (for the editor's help text)."""
    return {name: var.kind for name, var in sorted(_VARIABLES.items())}


def _field_getter(name: str) -> Callable[[Store, dict[str, Any]], Any]:
    return lambda store, customer: customer.get(name)


_FIELD_ALIASES = {
    "last_name": ("name", "nachname", "nom"),
    "first_name": ("vorname", "firstname", "prenom"),
    "postcode": ("plz", "cp", "zip"),
    "city": ("ort", "stadt", "ville"),
    "mobile": ("handy", "portable"),
    "phone": ("telefon", "tel"),
    "birth_date": ("geburtsdatum", "birthday"),
    "gender": ("geschlecht", "sexe"),
    "company": ("firma",),
}
for _f in customers.FIELDS:
    if _f.kind == "id_card":
        continue  # never a condition on an ID-card number
    _kind = {"date": "date", "bool": "bool"}.get(_f.kind, "text")
    register_variable(_f.name, _kind, _field_getter(_f.name), _FIELD_ALIASES.get(_f.name, ()))


def _age(store: Store, customer: dict[str, Any]) -> int | None:
    if not customer.get("birth_date"):
        return None
    born = dt.date.fromisoformat(customer["birth_date"])
    today = local_date(store.clock())
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


register_variable("age", "number", _age, ("alter",))
register_variable(
    "birth_year",
    "number",
    lambda s, c: int(c["birth_date"][:4]) if c.get("birth_date") else None,
    ("jahrgeburt", "geburtsjahr"),
)
register_variable("has_card", "bool", lambda s, c: bool(c.get("cards")), ("karte", "hascard"))
register_variable(
    "group",
    "group",
    lambda s, c: {g["name"].lower() for g in groups.groups_of(s, c["id"])},
    ("gruppe", "kategorie"),
)


# -- parser ------------------------------------------------------------------------------------
_TOKEN_RE = re.compile(
    r"""\s*(?:
        (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      | (?P<num>-?\d+(?:[.,]\d+)?)
      | (?P<op>==|!=|<>|<=|>=|=|<|>|\(|\)|;|&&|\|\|)
      | (?P<name>[A-Za-z_][A-Za-z0-9_.]*)
    )""",
    re.VERBOSE,
)
_OPS = {"=": "==", "==": "==", "!=": "!=", "<>": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_AND = {"and", "und", "&&", ";"}
_OR = {"or", "oder", "||"}
_NOT = {"not", "nicht"}
_TRUE = {"true", "ja", "yes", "wahr"}
_FALSE = {"false", "nein", "no", "falsch"}
MAX_CONDITION_LEN = 1000


@dataclass(frozen=True)
class Compare:
    variable: str
    op: str
    literal: Any


@dataclass(frozen=True)
class BoolOp:
    op: str  # and, or, not
    items: tuple


def _tokenize(text: str) -> list[tuple[str, str]]:
    pos, out = 0, []
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if not m or m.end() == pos:
            raise ConditionError(
                _("Cannot read the condition at position {pos}: {rest!r}").format(
                    pos=pos + 1, rest=text[pos : pos + 15]
                )
            )
        kind = m.lastgroup
        value = m.group(kind)
        if kind == "name" and value.lower() in _AND | _OR | _NOT:
            kind = "op"
            value = value.lower()
        out.append((kind, value))
        pos = m.end()
    return out


def _coerce(kind: str, raw: tuple[str, str], variable: str) -> Any:
    token_kind, text = raw
    if token_kind == "str":
        text = re.sub(r"\\(.)", r"\1", text[1:-1])
    elif token_kind == "name":
        low = text.lower()
        if low in _TRUE:
            text = "true"
        elif low in _FALSE:
            text = "false"
        else:
            raise ConditionError(_("Put the text {text!r} in quotes.").format(text=text))
    if kind in ("text", "group"):
        return text.lower() if kind == "group" else text
    if text == "":
        return None  # "is empty" for numbers, dates and flags
    if kind == "number":
        try:
            return Decimal(text.replace(",", "."))
        except InvalidOperation as exc:
            raise ConditionError(
                _("{name} needs a number, not {text!r}.").format(name=variable, text=text)
            ) from exc
    if kind == "date":
        try:
            return customers.parse_date(text).isoformat()
        except ValueError as exc:
            raise ConditionError(
                _("{name} needs a date, not {text!r}.").format(name=variable, text=text)
            ) from exc
    if kind == "bool":
        if text.lower() in _TRUE | {"1"}:
            return True
        if text.lower() in _FALSE | {"0"}:
            return False
        raise ConditionError(_("{name} needs yes or no.").format(name=variable))
    raise ConditionError(f"unknown kind {kind}")


def parse(text: str):
    """Parse a condition into a tree; raise ConditionError with a readable message."""
    if not isinstance(text, str) or not text.strip():
        raise ConditionError(_("The condition is empty."))
    if len(text) > MAX_CONDITION_LEN:
        raise ConditionError(_("The condition is too long."))
    tokens = _tokenize(text)
    pos = 0

    def peek():
        return tokens[pos] if pos < len(tokens) else (None, None)

    def take():
        nonlocal pos
        tok = peek()
        pos += 1
        return tok

    def or_expr(depth: int):
        items = [and_expr(depth)]
        while peek()[1] in _OR:
            take()
            items.append(and_expr(depth))
        return items[0] if len(items) == 1 else BoolOp("or", tuple(items))

    def and_expr(depth: int):
        items = [not_expr(depth)]
        while peek()[1] in _AND:
            take()
            if peek()[0] is None:  # a trailing ';' as in Fastmag examples
                break
            items.append(not_expr(depth))
        return items[0] if len(items) == 1 else BoolOp("and", tuple(items))

    def not_expr(depth: int):
        if depth > 20:
            raise ConditionError(_("The condition is nested too deeply."))
        kind, value = peek()
        if value in _NOT:
            take()
            return BoolOp("not", (not_expr(depth + 1),))
        if value == "(":
            take()
            node = or_expr(depth + 1)
            if take()[1] != ")":
                raise ConditionError(_("A closing bracket is missing."))
            return node
        return comparison()

    def comparison():
        kind, name = take()
        if kind != "name":
            raise ConditionError(_("Expected a field name, found {token!r}.").format(token=name))
        variable = _ALIASES.get(name.lower())
        if variable is None:
            raise ConditionError(_("Unknown field {name!r}.").format(name=name))
        op_kind, op = take()
        if op not in _OPS:
            raise ConditionError(_("Expected =, !=, <, <=, > or >= after {name}.").format(name=name))
        lit = take()
        if lit[0] not in ("str", "num", "name"):
            raise ConditionError(_("Expected a value after {op}.").format(op=op))
        kind = _VARIABLES[variable].kind
        op = _OPS[op]
        if kind in ("group", "bool") and op not in ("==", "!="):
            raise ConditionError(_("{name} can only be compared with = or !=.").format(name=name))
        return Compare(variable, op, _coerce(kind, lit, name))

    tree = or_expr(0)
    if pos != len(tokens):
        raise ConditionError(
            _("Unexpected {token!r} in the condition.").format(token=tokens[pos][1])
        )
    return tree


def _compare(actual: Any, op: str, expected: Any, kind: str) -> bool:
    if kind == "group":
        inside = expected in actual
        return inside if op == "==" else not inside
    empty_actual = actual in (None, "")
    if expected in (None, ""):
        return empty_actual if op == "==" else (not empty_actual if op == "!=" else False)
    if empty_actual:
        return op == "!="
    if kind == "number":
        actual = Decimal(str(actual))
    elif kind == "text":
        actual, expected = str(actual).lower(), str(expected).lower()
    return {
        "==": actual == expected,
        "!=": actual != expected,
        "<": actual < expected,
        "<=": actual <= expected,
        ">": actual > expected,
        ">=": actual >= expected,
    }[op]


def evaluate(tree, store: Store, customer: dict[str, Any], cache: dict | None = None) -> bool:
    cache = {} if cache is None else cache
    if isinstance(tree, BoolOp):
        if tree.op == "not":
            return not evaluate(tree.items[0], store, customer, cache)
        results = (evaluate(item, store, customer, cache) for item in tree.items)
        return all(results) if tree.op == "and" else any(results)
    var = _VARIABLES[tree.variable]
    if tree.variable not in cache:
        cache[tree.variable] = var.value(store, customer)
    return _compare(cache[tree.variable], tree.op, tree.literal, var.kind)


# -- rules --------------------------------------------------------------------------------------
def save_rule(
    store: Store,
    condition: str,
    message: str,
    *,
    position: int | None = None,
    active: bool = True,
    rule_id: str | None = None,
) -> str:
    """Create or change an alert rule after checking that its condition parses."""
    parse(condition)
    message = (message or "").strip()
    if not message or len(message) > 200:
        raise ConditionError(_("Enter a message of at most 200 characters."))
    if position is None:
        position = store.db.execute(
            "SELECT coalesce(max(position), 0) + 10 FROM alert_rules"
        ).fetchone()[0]
    rid = rule_id or events.new_id()
    events.emit(
        store,
        "alert.upserted",
        {"id": rid, "fields": {"condition": condition, "message": message,
                               "position": int(position), "active": bool(active)}},
    )  # fmt: skip
    return rid


@events.handler("alert.upserted")
def _apply_rule(store: Store, ev: events.Event) -> None:
    fields = dict(ev.payload["fields"])
    if "active" in fields:
        fields["active"] = int(bool(fields["active"]))
    lww.upsert(store.db, "alert_rules", {"id": ev.payload["id"]}, fields, ev.hlc)


def rules(store: Store, *, active_only: bool = True) -> list[dict[str, Any]]:
    where = "WHERE active = 1" if active_only else ""
    return list(
        store.db.query(
            f"SELECT id, position, condition, message, active FROM alert_rules {where}"
            " ORDER BY position, id"
        )
    )


def alerts_for(store: Store, customer: dict[str, Any]) -> list[str]:
    """Messages of the rules that hold for this customer, in the shop's order."""
    out, cache = [], {}
    for rule in rules(store):
        try:
            tree = parse(rule["condition"])
        except ConditionError:
            continue  # a rule that no longer parses (renamed field) must not block the till
        if evaluate(tree, store, customer, cache):
            out.append(rule["message"])
    return out
