"""Customer records: fields, validation, duplicates, cards, merge and GDPR erasure.

Commands (``create``, ``update``, ``merge``, ``erase``, ``assign_card``…) validate, then emit an
event; the handlers below turn events into rows. Field values merge last-writer-wins per
field by HLC; an erasure is a tombstone that wins over any edit, earlier or later; a merge
redirects the merged customer to the survivor so ledgers and card look-ups follow it.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import email_validator
import msgspec
import phonenumbers
from sqlite_utils import Migrations

from kiosk.engine import events, lww, search, secretbox, settings
from kiosk.engine.clock import iso, local_date, parse_iso
from kiosk.engine.store import Store, dicts, register_migrations
from kiosk.i18n import N_, _

migrations = register_migrations(Migrations("kiosk.customers"))
register_migrations(search.migrations)  # the search index is built from customer rows

DEFAULT_REGION = "DE"


# -- the record ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Field:
    name: str
    label: str  # English msgid; translate with _() when shown
    kind: str = "text"  # text, longtext, choice, date, email, phone, postcode, country, bool, id_card
    section: str = "person"
    max_len: int = 100
    choices: tuple[tuple[str, str], ...] = ()


GENDERS = (("f", N_("Ms")), ("m", N_("Mr")), ("d", N_("Diverse")))
LANGUAGES = (("de", N_("German")), ("fr", N_("French")), ("en", N_("English")))

FIELDS: tuple[Field, ...] = (
    Field("gender", N_("Salutation"), "choice", choices=GENDERS),
    Field("title", N_("Title"), max_len=40),
    Field("first_name", N_("First name")),
    Field("last_name", N_("Last name")),
    Field("company", N_("Company")),
    Field("birth_date", N_("Birth date"), "date"),
    Field("email", N_("E-mail"), "email", "contact", max_len=254),
    Field("phone", N_("Phone"), "phone", "contact", max_len=40),
    Field("mobile", N_("Mobile"), "phone", "contact", max_len=40),
    Field("language", N_("Language"), "choice", "contact", choices=LANGUAGES),
    Field("street", N_("Street"), section="address"),
    Field("house_no", N_("House number"), section="address", max_len=20),
    Field("postcode", N_("Postcode"), "postcode", "address", max_len=12),
    Field("city", N_("City"), section="address"),
    Field("country", N_("Country"), "country", "address", max_len=2),
    Field("delivery_name", N_("Delivery name"), section="delivery"),
    Field("delivery_street", N_("Delivery street"), section="delivery"),
    Field("delivery_house_no", N_("Delivery house number"), section="delivery", max_len=20),
    Field("delivery_postcode", N_("Delivery postcode"), "postcode", "delivery", max_len=12),
    Field("delivery_city", N_("Delivery city"), section="delivery"),
    Field("delivery_country", N_("Delivery country"), "country", "delivery", max_len=2),
    Field("id_card", N_("ID card number"), "id_card", "identity", max_len=30),
    Field("email_consent", N_("E-mail marketing consent"), "bool", "consent"),
    Field("sms_consent", N_("SMS marketing consent"), "bool", "consent"),
    Field("provenance", N_("Provenance"), section="internal"),
    Field("grouping", N_("Grouping"), section="internal"),
    Field("observation", N_("Observation"), "longtext", "internal", max_len=500),
    Field("notes", N_("Notes"), "longtext", "internal", max_len=4000),
)
FIELD_BY_NAME = {f.name: f for f in FIELDS}
CONSENT_FIELDS = ("email_consent", "sms_consent")
CONSENT_SOURCES = ("till", "clipad", "web", "paper", "import", "dashboard", "unsubscribe")

# Columns wiped by a GDPR erasure and never written again afterwards.
PERSONAL_COLUMNS = (
    "gender", "title", "first_name", "last_name", "company", "birth_date", "email", "phone",
    "mobile", "language", "street", "house_no", "postcode", "city", "country", "delivery_name",
    "delivery_street", "delivery_house_no", "delivery_postcode", "delivery_city",
    "delivery_country", "id_card_enc", "id_card_masked", "email_consent", "email_consent_at",
    "email_consent_source", "sms_consent", "sms_consent_at", "sms_consent_source",
    "provenance", "grouping", "observation", "notes",
)  # fmt: skip

# Columns an event may write (the id_card field is stored as ciphertext + mask).
WRITABLE = (
    frozenset(f.name for f in FIELDS if f.kind != "id_card")
    | {"id_card_enc", "id_card_masked", "customer_no", "home_store", "created_at", "created_by"}
    | {f"{c}_at" for c in CONSENT_FIELDS}
    | {f"{c}_source" for c in CONSENT_FIELDS}
)

settings.define(
    "customer.mandatory_fields",
    ["last_name"],
    lambda value: _check_mandatory(value),
    "Fields a new customer record must have (Pflichtfelder)",
)


def _check_mandatory(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise settings.SettingError(_("Expected a list of field names."))
    unknown = [v for v in value if v not in FIELD_BY_NAME]
    if unknown:
        raise settings.SettingError(_("Unknown fields: {names}").format(names=", ".join(unknown)))
    return list(dict.fromkeys(value))


# -- schema -----------------------------------------------------------------------------------
@migrations()
def m001_customers(db) -> None:
    personal = ",\n".join(f"    {c} TEXT" for c in PERSONAL_COLUMNS)
    db.execute(
        f"""
        CREATE TABLE customers (
            id TEXT PRIMARY KEY,
            customer_no TEXT,
            home_store TEXT,
            created_at TEXT,
            created_by TEXT,
        {personal},
            ln_phon TEXT,        -- Kölner Phonetik of the last name (duplicate check)
            fn_phon TEXT,
            email_key TEXT,      -- lower-cased e-mail
            merged_into TEXT,    -- set when merged: the surviving customer
            erased_at TEXT,      -- GDPR tombstone
            _clock TEXT
        )
        """
    )
    db.execute("CREATE UNIQUE INDEX customers_no ON customers(customer_no)")
    db.execute("CREATE INDEX customers_phon ON customers(ln_phon, fn_phon)")
    db.execute("CREATE INDEX customers_email ON customers(email_key) WHERE email_key IS NOT NULL")
    db.execute("CREATE INDEX customers_phone ON customers(phone) WHERE phone IS NOT NULL")
    db.execute("CREATE INDEX customers_mobile ON customers(mobile) WHERE mobile IS NOT NULL")
    db.execute(search.FTS_SCHEMA)
    db.execute(
        """
        CREATE TABLE customer_cards (
            card_no TEXT PRIMARY KEY,
            customer_id TEXT,
            card_type TEXT,
            status TEXT NOT NULL DEFAULT 'active',  -- active, blocked, inactive
            issued_at TEXT,
            valid_until TEXT,
            _clock TEXT
        )
        """
    )
    db.execute("CREATE INDEX customer_cards_customer ON customer_cards(customer_id)")
    db.execute(
        """
        CREATE TABLE customer_answers (
            customer_id TEXT NOT NULL,
            question TEXT NOT NULL,
            value TEXT,
            _clock TEXT,
            PRIMARY KEY (customer_id, question)
        )
        """
    )
    # Every merge ever made (a set, so replicas agree); customer_redirects is derived from it.
    db.execute(
        """
        CREATE TABLE customer_merges (
            event_id TEXT PRIMARY KEY, loser TEXT NOT NULL, survivor TEXT NOT NULL,
            hlc TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE TABLE customer_redirects (loser TEXT PRIMARY KEY, survivor TEXT NOT NULL)")


@migrations()
def m002_events_by_customer(db) -> None:
    # Lets an erasure find (and scrub) the events that carried the customer's personal data.
    db.execute(
        f"CREATE INDEX events_customer ON events(json_extract(payload, '$.id')) {_RECORD_EVENTS}"
    )


_RECORD_EVENTS = "WHERE type IN ('customer.created', 'customer.updated')"


# Ledger tables with (customer_id, orig_customer_id): a merge re-points their rows.
_CUSTOMER_REFS: list[str] = []


def register_customer_ref(table: str) -> None:
    """Declare a ledger table whose ``customer_id`` follows merges (see ``resolve``)."""
    if table not in _CUSTOMER_REFS:
        _CUSTOMER_REFS.append(table)


# -- errors --------------------------------------------------------------------------------------
class ValidationError(ValueError):
    """One or more fields are invalid; ``errors`` maps field name to a readable message."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


class PossibleDuplicates(Exception):
    """Similar customers exist; the caller shows them and may retry with ``force=True``."""

    def __init__(self, candidates: list["Duplicate"]):
        self.candidates = candidates
        super().__init__(f"{len(candidates)} possible duplicate(s)")


class NotFound(LookupError):
    pass


@dataclass(frozen=True)
class Duplicate:
    id: str
    customer_no: str
    name: str
    postcode: str | None
    city: str | None
    birth_date: str | None
    reason: str


# -- validation and normalisation --------------------------------------------------------------
_DATE_FORMATS = ("%d.%m.%Y", "%Y-%m-%d", "%d.%m.%y", "%d/%m/%Y")
_ID_CARD_RE = re.compile(r"^[A-Z0-9]{6,20}$")


def _tidy_name(value: str) -> str:
    value = " ".join(value.split())
    # Only fix text typed all in one case; keep "McDonald" or "von der Heide" as typed.
    if value.islower() or value.isupper():
        value = "-".join(part.capitalize() for part in value.title().split("-"))
    return value


def normalise_phone(value: str, region: str = DEFAULT_REGION) -> str:
    """Return a phone number in E.164; raise ValueError with a readable message."""
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(_("This is not a phone number.")) from exc
    if not phonenumbers.is_valid_number(number):
        raise ValueError(_("This phone number is not valid."))
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def format_phone(e164: str | None) -> str:
    """Show a stored number the way it is dialled in Germany."""
    if not e164:
        return ""
    number = phonenumbers.parse(e164, DEFAULT_REGION)
    fmt = (
        phonenumbers.PhoneNumberFormat.NATIONAL
        if number.country_code == 49
        else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    )
    return phonenumbers.format_number(number, fmt)


def parse_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValueError(_("Enter the date as DD.MM.YYYY."))


def _normalise_value(field: Field, value: Any, today: dt.date, country: str) -> Any:
    """Normalise one field value; raise ValueError with a readable message."""
    if field.kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, (int, str)) and str(value).strip().lower() in {
            "1", "0", "ja", "nein", "yes", "no", "true", "false", "x", "",
        }:  # fmt: skip
            return str(value).strip().lower() in {"1", "ja", "yes", "true", "x"}
        raise ValueError(_("Expected yes or no."))
    if value is None:
        return None
    if not isinstance(value, (str, int, dt.date)):
        raise ValueError(_("Unexpected value."))
    if field.kind == "date":
        if isinstance(value, str) and not value.strip():
            return None
        day = parse_date(value)
        if not dt.date(1900, 1, 1) <= day <= today:
            raise ValueError(_("The date must lie between 1900 and today."))
        return day.isoformat()
    text = str(value).strip()
    if not text:
        return None
    if len(text) > field.max_len:
        raise ValueError(_("At most {n} characters.").format(n=field.max_len))
    if any(ord(c) < 32 and c not in "\n\t" for c in text):
        raise ValueError(_("Contains control characters."))
    if field.kind == "email":
        try:
            return email_validator.validate_email(text, check_deliverability=False).normalized
        except email_validator.EmailNotValidError as exc:
            # the library's reason is English prose; the cashier gets a short German hint
            if "@" not in text:
                raise ValueError(_("An e-mail address needs an @, e.g. name@example.de.")) from exc
            raise ValueError(_("This e-mail address is not valid, e.g. name@example.de.")) from exc
    if field.kind == "phone":
        return normalise_phone(text, country or DEFAULT_REGION)
    if field.kind == "postcode":
        if country == "DE" and not re.fullmatch(r"\d{5}", text):
            raise ValueError(_("A German postcode has five digits."))
        return text.upper()
    if field.kind == "country":
        text = text.upper()
        if not re.fullmatch(r"[A-Z]{2}", text):
            raise ValueError(_("Use the two-letter country code, e.g. DE."))
        return text
    if field.kind == "choice":
        allowed = [c for c, _label in field.choices]
        if text not in allowed:
            raise ValueError(_("Choose one of: {choices}.").format(choices=", ".join(allowed)))
        return text
    if field.kind == "id_card":
        text = text.upper().replace(" ", "")
        if not _ID_CARD_RE.match(text):
            raise ValueError(_("An ID card number has 6 to 20 letters and digits."))
        return text
    if field.name in ("first_name", "last_name", "city", "delivery_city"):
        return _tidy_name(text)
    if field.kind == "text":
        return " ".join(text.split())
    return text


def normalise(
    store: Store, data: dict[str, Any], current: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Validate and normalise submitted fields; raise ValidationError listing every problem.

    ``data`` uses the field names of FIELDS, plus ``answers`` (custom questions). Mandatory
    fields are checked against the record as it will be after the change.
    """
    from kiosk.engine import questions  # questions imports this module's FIELD names

    errors: dict[str, str] = {}
    out: dict[str, Any] = {}
    today = local_date(store.clock())
    unknown = [k for k in data if k not in FIELD_BY_NAME and k != "answers"]
    for key in unknown:
        errors[key] = _("Unknown field.")
    country = str(data.get("country") or (current or {}).get("country") or DEFAULT_REGION)
    country = country.strip().upper() or DEFAULT_REGION
    for name, value in data.items():
        field = FIELD_BY_NAME.get(name)
        if field is None:
            continue
        field_country = country
        if name == "delivery_postcode":
            field_country = str(
                data.get("delivery_country") or (current or {}).get("delivery_country") or country
            ).upper()
        try:
            out[name] = _normalise_value(field, value, today, field_country)
        except ValueError as exc:
            errors[name] = str(exc)
    if "answers" in data:
        try:
            out["answers"] = questions.normalise_answers(store, data["answers"])
        except questions.AnswerError as exc:
            errors.update({f"answers.{k}": v for k, v in exc.errors.items()})
    merged = {**(current or {}), **out}
    if merged.get("id_card_masked") and "id_card" not in merged:
        merged["id_card"] = merged["id_card_masked"]
    for name in settings.get(store, "customer.mandatory_fields"):
        if name not in errors and merged.get(name) in (None, "", False):
            errors[name] = _("{field} is required.").format(field=_(FIELD_BY_NAME[name].label))
    if current is None or "answers" in data:
        errors.update(questions.missing_mandatory(store, merged.get("answers") or {}))
    if errors:
        raise ValidationError(errors)
    return out


def _to_columns(store: Store, values: dict[str, Any], source: str) -> dict[str, Any]:
    """Turn normalised form values into stored columns (encryption, consent stamps)."""
    cols = {k: v for k, v in values.items() if k not in ("id_card", "answers")}
    if "id_card" in values:
        card = values["id_card"]
        cols["id_card_enc"] = secretbox.encrypt(store.secret_key, card) if card else None
        cols["id_card_masked"] = secretbox.mask(card) if card else None
    now = iso(store.clock())
    for consent in CONSENT_FIELDS:
        if consent in cols:
            cols[f"{consent}_at"] = now
            cols[f"{consent}_source"] = source
    return cols


# -- duplicates ------------------------------------------------------------------------------------
def possible_duplicates(
    store: Store, values: dict[str, Any], exclude_id: str | None = None, limit: int = 10
) -> list[Duplicate]:
    """Find records that probably describe the same person (e-mail, phone or sound-alike name)."""
    db = store.db
    found: dict[str, Duplicate] = {}

    def add(rows, reason: str) -> None:
        for row in rows:
            if row["id"] != exclude_id and row["id"] not in found and len(found) < limit:
                name = " ".join(p for p in (row["first_name"], row["last_name"]) if p)
                found[row["id"]] = Duplicate(
                    row["id"], row["customer_no"], name or (row["company"] or ""),
                    row["postcode"], row["city"], row["birth_date"], reason,
                )  # fmt: skip

    base = (
        "SELECT id, customer_no, first_name, last_name, company, postcode, city, birth_date"
        " FROM customers WHERE merged_into IS NULL AND erased_at IS NULL AND "
    )
    db_rows = lambda sql, args: db.query(base + sql + " LIMIT 20", args)  # noqa: E731
    if values.get("email"):
        add(db_rows("email_key = ?", [values["email"].lower()]), _("same e-mail address"))
    for key in ("mobile", "phone"):
        if values.get(key):
            number = values[key]
            add(db_rows("(phone = ? OR mobile = ?)", [number, number]), _("same phone number"))
    last = values.get("last_name")
    if last:
        ln = search.phonetic(last)
        fn = search.phonetic(values.get("first_name") or "")
        rows = list(db_rows("ln_phon = ?", [ln]) if not fn else db_rows(
            "ln_phon = ? AND (fn_phon = ? OR fn_phon IS NULL OR fn_phon = '')", [ln, fn]
        ))  # fmt: skip
        birth, postcode = values.get("birth_date"), values.get("postcode")
        for row in rows:
            # A common name alone is no evidence; require that nothing known contradicts it.
            if birth and row["birth_date"] and birth != row["birth_date"]:
                continue
            if postcode and row["postcode"] and postcode != row["postcode"]:
                continue
            if not (birth or postcode or fn):
                continue
            add([row], _("similar name"))
    return list(found.values())


# -- commands -----------------------------------------------------------------------------------------
def _new_customer_no(store: Store) -> str:
    while True:
        seq = store.next_counter("customer_no")
        number = f"{store.identity.device_no:02d}{seq:07d}"
        # an imported list may hold this number already (create(customer_no=...))
        if not store.db.execute(
            "SELECT 1 FROM customers WHERE customer_no = ?", [number]
        ).fetchone():
            return number


# Numbers kept from an imported customer list (letters, digits and - _ . /).
CUSTOMER_NO_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9\-_./]{0,31}$")


def _check_kept(store: Store, customer_no: str | None, consent_at: dict[str, str] | None) -> None:
    errors = {}
    if customer_no is not None:
        if not isinstance(customer_no, str) or not CUSTOMER_NO_RE.match(customer_no):
            errors["customer_no"] = _("A customer number has 1 to 32 letters and digits.")
        elif store.db.execute(
            "SELECT 1 FROM customers WHERE customer_no = ?", [customer_no]
        ).fetchone():
            errors["customer_no"] = _("This customer number is taken already.")
    for consent, at in (consent_at or {}).items():
        try:
            if consent not in CONSENT_FIELDS:
                raise ValueError(consent)
            parse_iso(at)
        except (TypeError, ValueError):
            errors[f"{consent}_at"] = _("Expected a date and time.")
    if errors:
        raise ValidationError(errors)


def create(
    store: Store,
    data: dict[str, Any],
    *,
    source: str = "till",
    force: bool = False,
    customer_no: str | None = None,
    consent_at: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Create a customer after searching for duplicates; returns the stored record.

    Raises ValidationError for bad input and PossibleDuplicates unless ``force`` is set.
    ``customer_no`` keeps a number from an imported list (it must be free); ``consent_at``
    keeps the recorded time of a consent (``{"email_consent": iso}``) instead of now.
    """
    values = normalise(store, data)
    if not force:
        dups = possible_duplicates(store, values)
        if dups:
            raise PossibleDuplicates(dups)
    with store.transaction():
        _check_kept(store, customer_no, consent_at)
        customer_id = events.new_id()
        cols = _to_columns(store, values, source)
        for consent, at in (consent_at or {}).items():
            if consent in cols:
                cols[f"{consent}_at"] = at
        cols.update(
            customer_no=customer_no or _new_customer_no(store),
            home_store=store.identity.store_id,
            created_at=iso(store.clock()),
            created_by=store.identity.device_id,
        )
        events.emit(
            store,
            "customer.created",
            {"id": customer_id, "fields": cols, "answers": values.get("answers", {}),
             "source": source},
        )  # fmt: skip
    return get(store, customer_id)


def create_many(
    store: Store, records: list[dict[str, Any]], *, source: str = "import"
) -> list[str]:
    """Create many customers at once (bulk loads, demo data, benchmarks); returns their ids.

    Every record is validated like ``create`` and becomes its own ``customer.created`` event
    (plus ``card.assigned`` when it carries a ``card_no``), all in one transaction: nothing is
    written when any record is invalid. Only the per-record duplicate search is skipped, so
    the caller vouches for the data; call it with batches of a few thousand records.
    """
    prepared, errors = [], {}
    batch_cards: set[str] = set()
    for i, record in enumerate(records, 1):
        data = dict(record)
        card_no = str(data.pop("card_no", None) or "").strip() or None
        try:
            values = normalise(store, data)
        except ValidationError as exc:
            errors.update({f"{i}.{k}": v for k, v in exc.errors.items()})
            continue
        if card_no and (
            not re.fullmatch(r"[A-Za-z0-9#\-]{4,32}", card_no)
            or card_no in batch_cards
            or store.db.execute(
                "SELECT 1 FROM customer_cards WHERE card_no = ?", [card_no]
            ).fetchone()
        ):
            errors[f"{i}.card_no"] = _("This card number is invalid or already taken.")
            continue
        if card_no:
            batch_cards.add(card_no)
        prepared.append((values, card_no))
    if errors:
        raise ValidationError(errors)
    ids = []
    with store.transaction():
        for values, card_no in prepared:
            customer_id = events.new_id()
            cols = _to_columns(store, values, source)
            now = iso(store.clock())
            cols.update(
                customer_no=_new_customer_no(store),
                home_store=store.identity.store_id,
                created_at=now,
                created_by=store.identity.device_id,
            )
            events.emit(
                store,
                "customer.created",
                {"id": customer_id, "fields": cols, "answers": values.get("answers", {}),
                 "source": source},
            )  # fmt: skip
            if card_no:
                events.emit(
                    store,
                    "card.assigned",
                    {"card_no": card_no, "customer_id": customer_id, "card_type": None,
                     "issued_at": now, "valid_until": None},
                )  # fmt: skip
            ids.append(customer_id)
    return ids


def update(
    store: Store,
    customer_id: str,
    data: dict[str, Any],
    *,
    source: str = "till",
    force: bool = False,
) -> dict[str, Any]:
    """Change some fields of a customer; only fields that differ become part of the event."""
    current = get(store, customer_id)
    values = normalise(store, data, current)
    changed = {
        k: v
        for k, v in values.items()
        if k == "answers" or (k == "id_card" and v) or current.get(k) != v
    }
    if "answers" in changed:
        changed["answers"] = {
            q: a for q, a in changed["answers"].items() if current["answers"].get(q) != a
        }
        if not changed["answers"]:
            del changed["answers"]
    if not changed:
        return current
    identity_keys = {"first_name", "last_name", "email", "phone", "mobile", "birth_date"}
    if not force and identity_keys & changed.keys():
        dups = possible_duplicates(store, {**current, **values}, exclude_id=current["id"])
        if dups:
            raise PossibleDuplicates(dups)
    events.emit(
        store,
        "customer.updated",
        {"id": current["id"], "fields": _to_columns(store, changed, source),
         "answers": changed.get("answers", {}), "source": source},
    )  # fmt: skip
    return get(store, current["id"])


def assign_card(
    store: Store, customer_id: str, card_no: str, card_type: str | None = None,
    valid_until: str | None = None,
) -> None:  # fmt: skip
    """Link a loyalty card number (scanned or generated) to a customer."""
    card_no = card_no.strip()
    if not re.fullmatch(r"[A-Za-z0-9#\-]{4,32}", card_no):
        raise ValidationError({"card_no": _("A card number has 4 to 32 letters and digits.")})
    customer = get(store, customer_id)
    owner = store.db.execute(
        "SELECT customer_id FROM customer_cards WHERE card_no = ?", [card_no]
    ).fetchone()
    if owner and owner[0] and resolve(store.db, owner[0]) != customer["id"]:
        raise ValidationError({"card_no": _("This card belongs to another customer.")})
    events.emit(
        store,
        "card.assigned",
        {"card_no": card_no, "customer_id": customer["id"], "card_type": card_type,
         "issued_at": iso(store.clock()), "valid_until": valid_until},
    )  # fmt: skip


def set_card_status(store: Store, card_no: str, status: str) -> None:
    if status not in ("active", "blocked", "inactive"):
        raise ValidationError({"status": _("Unknown card status.")})
    if not store.db.execute("SELECT 1 FROM customer_cards WHERE card_no = ?", [card_no]).fetchone():
        raise NotFound(card_no)
    events.emit(store, "card.status", {"card_no": card_no, "status": status})


def merge(store: Store, survivor_id: str, loser_id: str) -> dict[str, Any]:
    """Merge a duplicate into the survivor: empty fields, answers, groups and cards move over;
    history and points follow through the redirect."""
    from kiosk.engine import groups

    survivor, loser = get(store, survivor_id), get(store, loser_id)
    if survivor["id"] == loser["id"]:
        raise ValidationError({"merge": _("A customer cannot be merged with itself.")})
    fill = {
        col: loser[col]
        for col in PERSONAL_COLUMNS
        if loser.get(col) not in (None, "") and survivor.get(col) in (None, "")
    }
    answers = {q: a for q, a in loser["answers"].items() if q not in survivor["answers"]}
    with store.transaction():
        if fill or answers:
            events.emit(
                store,
                "customer.updated",
                {"id": survivor["id"], "fields": fill, "answers": answers, "source": "merge"},
            )
        for group_id in groups.of_customer(store, loser["id"]):
            groups.assign(store, survivor["id"], group_id)
        for card in loser["cards"]:
            events.emit(
                store,
                "card.assigned",
                {"card_no": card["card_no"], "customer_id": survivor["id"],
                 "card_type": card["card_type"], "issued_at": card["issued_at"],
                 "valid_until": card["valid_until"]},
            )  # fmt: skip
        events.emit(store, "customer.merged", {"survivor": survivor["id"], "loser": loser["id"]})
    return get(store, survivor["id"])


def erase(store: Store, customer_id: str, reason: str = "gdpr") -> None:
    """GDPR erasure: personal data is wiped on every replica and can never come back."""
    customer = get(store, customer_id, resolve_merged=False, include_erased=True)
    if customer["erased_at"]:
        return
    events.emit(store, "customer.erased", {"id": customer["id"], "reason": reason[:200]})


# -- queries ----------------------------------------------------------------------------------------------
def resolve(db, customer_id: str) -> str:
    """Follow merge redirects to the customer that now stands for ``customer_id``."""
    row = db.execute(
        "SELECT survivor FROM customer_redirects WHERE loser = ?", [customer_id]
    ).fetchone()
    return row[0] if row else customer_id


def get(
    store: Store, customer_id: str, *, resolve_merged: bool = True, include_erased: bool = False
) -> dict[str, Any]:
    """Return a customer record with cards and answers; merged ids lead to the survivor."""
    if resolve_merged:
        customer_id = resolve(store.db, customer_id)
    rows = dicts(store.db, "SELECT * FROM customers WHERE id = ?", [customer_id])
    if not rows or (rows[0]["erased_at"] and not include_erased):
        raise NotFound(customer_id)
    record = rows[0]
    record.pop("_clock", None)
    record["cards"] = dicts(
        store.db,
        "SELECT card_no, card_type, status, issued_at, valid_until FROM customer_cards"
        " WHERE customer_id = ? ORDER BY issued_at",
        [customer_id],
    )
    record["answers"] = {
        question: msgspec.json.decode(value)
        for question, value in store.db.conn.execute(
            "SELECT question, value FROM customer_answers WHERE customer_id = ?", [customer_id]
        )
        if value is not None
    }
    for consent in CONSENT_FIELDS:
        # the TEXT column holds a stored False as "0", which bool() would read as consent
        record[consent] = record[consent] in (1, "1")
    return record


def by_number(store: Store, number: str) -> dict[str, Any]:
    """Find a customer by customer number or card number (a scan at the till)."""
    number = number.strip()
    row = store.db.execute(
        "SELECT id FROM customers WHERE customer_no = ? AND erased_at IS NULL", [number]
    ).fetchone() or store.db.execute(
        "SELECT customer_id FROM customer_cards WHERE card_no = ?", [number]
    ).fetchone()
    if not row or not row[0]:
        raise NotFound(number)
    return get(store, row[0])


def find(store: Store, text: str, limit: int = 20) -> list[search.Hit]:
    """Search as you type (see kiosk.engine.search)."""
    return search.run(store.db, text, limit)


def reveal_id_card(store: Store, customer_id: str) -> str | None:
    """Decrypt the ID-card number (for the gold purchase record); never shown in lists."""
    token = get(store, customer_id)["id_card_enc"]
    return secretbox.decrypt(store.secret_key, token) if token else None


def display_name(record: dict[str, Any]) -> str:
    name = " ".join(p for p in (record.get("title"), record.get("first_name"),
                                record.get("last_name")) if p)  # fmt: skip
    return name or record.get("company") or record.get("customer_no") or ""


def count(store: Store) -> int:
    return store.db.execute(
        "SELECT count(*) FROM customers WHERE merged_into IS NULL AND erased_at IS NULL"
    ).fetchone()[0]


# -- handlers (the only code that writes customer rows) ---------------------------------------------
def _reindex(store: Store, customer_id: str) -> None:
    """Recompute a customer's derived columns and search entry from its current row.

    Derived state depends only on the row and the redirects, never on the order in which
    events arrived, so every replica computes the same.
    """
    db = store.db
    conn = db.conn  # raw connection: this runs for most replicated customer events
    if store.is_deferring:  # a batch of replicated events: once, at its end
        rowid = conn.execute("SELECT rowid FROM customers WHERE id = ?", [customer_id]).fetchone()
        if rowid is not None:
            store.defer(("customers.reindex", rowid[0]), lambda: _reindex(store, customer_id))
        return
    rows = dicts(db, "SELECT rowid, * FROM customers WHERE id = ?", [customer_id])
    if not rows:
        return
    row = rows[0]
    survivor = resolve(db, customer_id)
    derived = (
        search.phonetic(row["last_name"] or "") or None,
        search.phonetic(row["first_name"] or "") or None,
        row["email"].lower() if row["email"] else None,
        survivor if survivor != customer_id else None,
    )
    if derived != (row["ln_phon"], row["fn_phon"], row["email_key"], row["merged_into"]):
        conn.execute(
            "UPDATE customers SET ln_phon = ?, fn_phon = ?, email_key = ?, merged_into = ?"
            " WHERE id = ?",
            [*derived, customer_id],
        )
    if row["erased_at"] or survivor != customer_id:
        search.unindex(db, row["rowid"])
        return
    cards = [
        r[0]
        for r in conn.execute(
            "SELECT card_no FROM customer_cards WHERE customer_id = ? ORDER BY card_no",
            [customer_id],
        )
    ]
    search.index(db, row["rowid"], row, cards)


def _apply_fields(store: Store, ev: events.Event) -> None:
    payload = ev.payload
    customer_id = payload["id"]
    fields = {k: v for k, v in payload.get("fields", {}).items() if k in WRITABLE}
    erased = store.db.conn.execute(
        "SELECT erased_at FROM customers WHERE id = ?", [customer_id]
    ).fetchone()
    if erased and erased[0]:
        # The tombstone wins: keep only the non-personal bookkeeping columns.
        fields = {k: v for k, v in fields.items() if k not in PERSONAL_COLUMNS}
        _scrub_events(store.db, customer_id)  # this event's logged copy too (arrived late)
    changed = lww.upsert(store.db, "customers", {"id": customer_id}, fields, ev.hlc)
    if not (erased and erased[0]):
        for question, value in (payload.get("answers") or {}).items():
            lww.upsert(
                store.db,
                "customer_answers",
                {"customer_id": customer_id, "question": question},
                {"value": msgspec.json.encode(value).decode()},
                ev.hlc,
            )
    # An edit of fields outside the search index and the derived keys (consents, notes,
    # answers…) leaves them as they are; a new row is always derived (merges may predate it).
    if changed and (erased is None or not _INDEXED.isdisjoint(changed)):
        _reindex(store, customer_id)


# The columns search.document and _reindex derive from.
_INDEXED = frozenset(
    {"first_name", "last_name", "company", "postcode", "city", "email", "phone", "mobile",
     "customer_no"}
)  # fmt: skip

events.handler("customer.created")(_apply_fields)
events.handler("customer.updated")(_apply_fields)


@events.handler("customer.erased")
def _apply_erased(store: Store, ev: events.Event) -> None:
    customer_id = ev.payload["id"]
    db = store.db
    row = db.execute("SELECT _clock, erased_at FROM customers WHERE id = ?", [customer_id]).fetchone()
    if row is None:
        db.execute(
            "INSERT INTO customers (id, erased_at, _clock) VALUES (?, ?, '{}')",
            [customer_id, ev.created_at],
        )
        return
    clock = {
        k: v
        for k, v in (msgspec.json.decode(row[0]) if row[0] else {}).items()
        if k not in PERSONAL_COLUMNS
    }
    # Of several erasures the earliest timestamp is kept, so every replica agrees.
    erased_at = min(ev.created_at, row[1]) if row[1] else ev.created_at
    sets = ", ".join(f"{c} = NULL" for c in PERSONAL_COLUMNS)
    db.execute(
        f"UPDATE customers SET {sets}, ln_phon = NULL, fn_phon = NULL, email_key = NULL,"
        " erased_at = ?, _clock = ? WHERE id = ?",
        [erased_at, msgspec.json.encode(clock).decode(), customer_id],
    )
    db.execute("DELETE FROM customer_answers WHERE customer_id = ?", [customer_id])
    _reindex(store, customer_id)  # erased: leaves the search index
    _scrub_events(db, customer_id)


def _scrub_events(db, customer_id: str) -> None:
    """Remove personal data from the logged events of an erased customer.

    The log is history, but GDPR erasure covers it too; replaying the scrubbed events plus
    the erasure still yields the same (erased) record on any replica.
    """
    rows = db.execute(
        f"SELECT id, payload FROM events {_RECORD_EVENTS}"
        " AND json_extract(payload, '$.id') = ?",
        [customer_id],
    ).fetchall()
    for event_id, payload_json in rows:
        payload = msgspec.json.decode(payload_json)
        payload["fields"] = {
            k: v for k, v in payload.get("fields", {}).items() if k not in PERSONAL_COLUMNS
        }
        payload["answers"] = {}
        db.execute(
            "UPDATE events SET payload = ? WHERE id = ?",
            [msgspec.json.encode(payload).decode(), event_id],
        )


@events.handler("card.assigned")
def _apply_card(store: Store, ev: events.Event) -> None:
    p = ev.payload
    before = store.db.execute(
        "SELECT customer_id FROM customer_cards WHERE card_no = ?", [p["card_no"]]
    ).fetchone()
    lww.upsert(
        store.db,
        "customer_cards",
        {"card_no": p["card_no"]},
        {"customer_id": p["customer_id"], "card_type": p.get("card_type"),
         "issued_at": p.get("issued_at"), "valid_until": p.get("valid_until")},
        ev.hlc,
    )  # fmt: skip
    for cid in {p["customer_id"], before[0] if before else None} - {None}:
        _reindex(store, cid)


@events.handler("card.status")
def _apply_card_status(store: Store, ev: events.Event) -> None:
    lww.upsert(
        store.db,
        "customer_cards",
        {"card_no": ev.payload["card_no"]},
        {"status": ev.payload["status"]},
        ev.hlc,
    )


def _redirects(db) -> dict[str, str]:
    """Derive loser → survivor from every merge, in HLC order, so all replicas agree.

    The first merge of a customer wins; a merge that would close a cycle is ignored.
    """
    direct: dict[str, str] = {}

    def root(cid: str) -> str:
        seen = set()
        while cid in direct and cid not in seen:
            seen.add(cid)
            cid = direct[cid]
        return cid

    for loser, survivor in db.execute(
        "SELECT loser, survivor FROM customer_merges ORDER BY hlc, event_id"
    ):
        if loser in direct or root(survivor) == loser:
            continue
        direct[loser] = survivor
    return {loser: root(loser) for loser in direct}


@events.handler("customer.merged")
def _apply_merged(store: Store, ev: events.Event) -> None:
    db = store.db
    db.execute(
        "INSERT OR IGNORE INTO customer_merges (event_id, loser, survivor, hlc) VALUES (?, ?, ?, ?)",
        [ev.id, ev.payload["loser"], ev.payload["survivor"], ev.hlc],
    )
    new = _redirects(db)
    old = dict(db.execute("SELECT loser, survivor FROM customer_redirects"))
    if new == old:
        return
    touched = {k for k in old.keys() | new.keys() if old.get(k) != new.get(k)}
    # only the redirects that changed are written (a merge usually adds one)
    db.conn.executemany(
        "DELETE FROM customer_redirects WHERE loser = ?", [(k,) for k in touched if k not in new]
    )
    db.conn.executemany(
        "INSERT INTO customer_redirects VALUES (?, ?)"
        " ON CONFLICT(loser) DO UPDATE SET survivor = excluded.survivor",
        [(k, new[k]) for k in sorted(touched) if k in new],
    )
    for cid in touched:
        _reindex(store, cid)
    # A ledger row's customer_id is always its orig_customer_id's redirect (written through
    # resolve, kept by this loop), so the rows to re-point are found by the customer_id index
    # every ledger has; no second index on orig_customer_id is kept up to date at each sale.
    for table in _CUSTOMER_REFS:
        for cid in touched:
            db.execute(
                f"UPDATE [{table}] SET customer_id = ?"
                " WHERE customer_id = ? AND orig_customer_id = ?",
                [new.get(cid, cid), old.get(cid, cid), cid],
            )
