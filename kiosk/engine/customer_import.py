"""Import an existing customer list from an Excel workbook (.xlsx), all or nothing.

The steps are separate so the CLI and the dashboard can show each one::

    table = read_workbook(source)            refuse broken or hostile files before parsing
    mapping = propose_mapping(store, table)  header names (de/en/fr) -> customer fields
    mapping = override_mapping(table, mapping, {"Spalte": "field"})
    preview(store, table, mapping, 10)       first rows normalised, with their errors
    report = check(store, table, mapping)    every row validated, duplicates found
    result = commit(store, report)           one transaction; any error -> nothing imported

Rows are validated with ``customers.normalise`` (the till's rules), so the import accepts
exactly what a cashier could type. Every imported customer is an ordinary
``customer.created`` event with source ``import``.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import os
import re
import unicodedata
import warnings
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import IO, Any

import defusedxml
import openpyxl
from openpyxl.utils import get_column_letter
from openpyxl.utils.datetime import from_excel
from openpyxl.utils.exceptions import InvalidFileException

from kiosk.engine import customers, groups, questions, search
from kiosk.engine.clock import SHOP_TZ, iso
from kiosk.engine.store import Store
from kiosk.i18n import N_, _, ngettext

_LOGGER = logging.getLogger(__name__)

Source = str | os.PathLike | bytes | IO[bytes]
# progress(stage, done, total): stage is "read", "check" or "import"; total 0 = unknown
Progress = Callable[[str, int, int], None]

_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # .xls and password-protected .xlsx
_CARD_NO_RE = re.compile(r"^[A-Za-z0-9#\-]{4,32}$")  # as customers.assign_card accepts
_PROGRESS_EVERY = 250
DUPLICATE_POLICIES = ("refuse", "skip", "import")


@dataclass(frozen=True)
class Limits:
    """What a workbook may hold before it is refused unread (uploads are untrusted)."""

    max_file_bytes: int = 50 * 2**20
    max_unpacked_bytes: int = 400 * 2**20
    max_ratio: int = 200  # a bigger member packed tighter than this is a zip bomb
    max_members: int = 500
    max_rows: int = 100_000
    max_columns: int = 100
    header_scan_rows: int = 20


class FileRefused(ValueError):
    """The file as a whole cannot be imported; the message says why and what to do."""


class MappingError(ValueError):
    """A column mapping names an unknown column or field."""


class ImportRejected(ValueError):
    """The import was not carried out (errors or duplicates); nothing was written."""

    def __init__(self, message: str, report: "Report | None" = None):
        self.report = report
        super().__init__(message)


class ExcelError(str):
    """An error value Excel stored in a cell (#N/A, #DIV/0! …)."""


# -- reading --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Table:
    """The rows of one worksheet below its header row, as plain cell values."""

    sheet: str
    sheets: tuple[str, ...]
    header_row: int  # Excel row number of the header (1-based)
    headers: tuple[str, ...]
    rows: tuple[tuple[int, tuple[Any, ...]], ...]  # (Excel row number, values)

    def column_name(self, index: int) -> str:
        """Name a column as a person sees it: letter and header, e.g. ``D (PLZ)``."""
        letter = get_column_letter(index + 1)
        header = self.headers[index] if index < len(self.headers) else ""
        return f"{letter} ({header})" if header else letter


def _open_bytes(source: Source) -> IO[bytes]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return io.BytesIO(bytes(source))
    if isinstance(source, (str, os.PathLike)):
        try:
            return open(source, "rb")  # noqa: SIM115 - closed by the caller
        except FileNotFoundError as exc:
            raise FileRefused(_("File not found: {path}").format(path=source)) from exc
        except OSError as exc:
            raise FileRefused(_("Cannot open the file: {reason}").format(reason=exc)) from exc
    return source


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{max(n // 1024, 1)} kB"


def _check_container(fh: IO[bytes], limits: Limits) -> None:
    """Refuse what is not a sane .xlsx zip before openpyxl parses a single byte of XML."""
    fh.seek(0, io.SEEK_END)
    size = fh.tell()
    fh.seek(0)
    if size > limits.max_file_bytes:
        raise FileRefused(
            _("The file is {size}; at most {limit} can be imported.").format(
                size=_size(size), limit=_size(limits.max_file_bytes)
            )
        )
    head = fh.read(8)
    fh.seek(0)
    if head == _OLE2_MAGIC:
        raise FileRefused(
            _(
                "This is an old Excel file (.xls) or a password-protected workbook. Open it in"
                " Excel and save it as an Excel workbook (.xlsx) without a password."
            )
        )
    not_xlsx = _("This is not an Excel workbook (.xlsx). Save the list in Excel as .xlsx.")
    if not zipfile.is_zipfile(fh):
        raise FileRefused(not_xlsx)
    fh.seek(0)
    try:
        with zipfile.ZipFile(fh) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
        raise FileRefused(not_xlsx) from exc
    finally:
        fh.seek(0)
    if len(infos) > limits.max_members:
        raise FileRefused(
            _("The workbook holds {n} parts; at most {limit} are allowed.").format(
                n=len(infos), limit=limits.max_members
            )
        )
    names = {info.filename for info in infos}
    if "[Content_Types].xml" not in names or not any(n.startswith("xl/") for n in names):
        raise FileRefused(not_xlsx)
    if any(info.flag_bits & 0x1 for info in infos):
        raise FileRefused(_("The workbook is encrypted. Save it without a password."))
    # Declared sizes bound what zipfile will ever inflate (it stops there and checks the CRC),
    # so checking them refuses zip bombs without unpacking anything.
    unpacked = sum(info.file_size for info in infos)
    if unpacked > limits.max_unpacked_bytes:
        raise FileRefused(
            _(
                "The workbook unpacks to {size}, more than the {limit} allowed."
                " Split the list into smaller files."
            ).format(size=_size(unpacked), limit=_size(limits.max_unpacked_bytes))
        )
    for info in infos:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > 2**20 and ratio > limits.max_ratio:
            raise FileRefused(
                _(
                    "The workbook part {part} is packed {ratio}-fold: this looks like a zip"
                    " bomb and is not opened."
                ).format(part=info.filename, ratio=int(ratio))
            )


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return " ".join(str(value).split())


def read_workbook(
    source: Source,
    *,
    sheet: str | None = None,
    limits: Limits = Limits(),
    progress: Progress | None = None,
) -> Table:
    """Read one worksheet of an .xlsx safely; raise FileRefused with a clear message.

    Refused: files that are not .xlsx, damaged or encrypted, zip bombs, more rows or columns
    than ``limits`` allow, and any formula cell (its result could be anything; the message
    names the cell). XML is parsed with defusedxml (no entity expansion).
    """
    if not openpyxl.DEFUSEDXML:
        raise RuntimeError("defusedxml is required to read uploaded workbooks safely")
    fh = _open_bytes(source)
    try:
        _check_container(fh, limits)
        with warnings.catch_warnings():
            # openpyxl warns about styles and extensions it drops; irrelevant for reading values
            warnings.simplefilter("ignore")
            return _read_sheet(fh, sheet, limits, progress)
    except FileRefused:
        raise
    except (
        zipfile.BadZipFile, InvalidFileException, KeyError, ValueError, TypeError, IndexError,
        AttributeError, EOFError, OSError, ET.ParseError, defusedxml.DefusedXmlException,
    ) as exc:  # fmt: skip
        root = exc
        while root.__cause__ is not None:  # openpyxl wraps the XML parser's error
            root = root.__cause__
        _LOGGER.info("workbook refused: %r", root)
        raise FileRefused(
            _("The workbook is damaged and cannot be read ({reason}).").format(
                reason=type(root).__name__
            )
        ) from exc
    finally:
        if fh is not source:
            fh.close()


def _read_sheet(
    fh: IO[bytes], sheet: str | None, limits: Limits, progress: Progress | None
) -> Table:
    wb = openpyxl.load_workbook(fh, read_only=True, data_only=False, keep_links=False)
    try:
        names = tuple(wb.sheetnames)
        if sheet is not None:
            if sheet not in names:
                raise FileRefused(
                    _("The workbook has no sheet {name!r}; it has: {names}.").format(
                        name=sheet, names=", ".join(names)
                    )
                )
            ws = wb[sheet]
        else:
            ws = wb.active if wb.active is not None else wb.worksheets[0]
        if not hasattr(ws, "iter_rows"):
            raise FileRefused(_("The sheet {name!r} holds no table.").format(name=ws.title))
        declared_rows = ws.max_row or 0
        # The <dimension> tag is written by the sender: never let it size anything.
        ws.reset_dimensions()
        raw: list[tuple[int, tuple[Any, ...]]] = []
        width = limits.max_columns + 1  # one column more than allowed, to notice it is used
        for row_no, cells in enumerate(ws.iter_rows(max_col=width), start=1):
            values = []
            for cell in cells:
                kind = cell.data_type
                if kind == "f":
                    raise FileRefused(
                        _(
                            "The sheet {sheet!r} contains formulas (first in cell {cell}). Save a"
                            " copy with values only (Paste Special → Values) and import that."
                        ).format(sheet=ws.title, cell=cell.coordinate)
                    )
                value = cell.value
                if kind == "e" and value is not None:
                    value = ExcelError(value)
                elif isinstance(value, str) and not value.strip():
                    value = None
                values.append(value)
            while values and values[-1] is None:
                values.pop()
            if not values:
                continue
            if len(values) > limits.max_columns:
                raise FileRefused(
                    _("Row {row} uses more than {limit} columns; that many cannot be imported.")
                    .format(row=row_no, limit=limits.max_columns)
                )  # fmt: skip
            raw.append((row_no, tuple(values)))
            if len(raw) > limits.max_rows + limits.header_scan_rows:
                raise FileRefused(
                    _("The sheet has more than {limit} rows. Split the list into smaller files.")
                    .format(limit=limits.max_rows)
                )  # fmt: skip
            if progress and len(raw) % _PROGRESS_EVERY == 0:
                progress("read", len(raw), declared_rows)
    finally:
        wb.close()
    if not raw:
        raise FileRefused(_("The sheet {name!r} is empty.").format(name=ws.title))
    header_at = _find_header(raw[: limits.header_scan_rows])
    header_no, header_values = raw[header_at]
    rows = tuple(raw[header_at + 1 :])
    if len(rows) > limits.max_rows:
        raise FileRefused(
            _("The sheet has more than {limit} rows. Split the list into smaller files.").format(
                limit=limits.max_rows
            )
        )
    if progress:
        progress("read", len(raw), len(raw))
    return Table(
        sheet=ws.title,
        sheets=names,
        header_row=header_no,
        headers=tuple(_cell_text(v) for v in header_values),
        rows=rows,
    )


def _find_header(candidates: list[tuple[int, tuple[Any, ...]]]) -> int:
    """Return the index of the row that looks most like a header (most known names)."""
    best, best_score = 0, 0
    for i, (_row_no, values) in enumerate(candidates):
        score = sum(1 for v in values if isinstance(v, str) and _match_alias(_key(v)))
        if score > best_score:
            best, best_score = i, score
    return best


# -- mapping ---------------------------------------------------------------------------------
# Extra import targets besides the customer fields.
EXTRA_TARGETS: dict[str, str] = {
    "customer_no": N_("Customer number"),
    "card_no": N_("Card numbers"),
    "groups": N_("Customer groups"),
    "email_consent_at": N_("E-mail consent given on"),
    "sms_consent_at": N_("SMS consent given on"),
}

# Header names as shops write them (folded: lower case, umlauts as ae/oe/ue, only a-z0-9).
_ALIASES: dict[str, tuple[str, ...]] = {
    "gender": ("anrede", "geschlecht", "salutation", "gender", "civilite", "sexe"),
    "title": ("titel", "title", "akadtitel", "titre"),
    "first_name": ("vorname", "vornamen", "firstname", "givenname", "prenom"),
    "last_name": ("nachname", "name", "familienname", "lastname", "surname", "nom",
                  "nomdefamille"),
    "company": ("firma", "firmenname", "unternehmen", "company", "societe", "entreprise"),
    "birth_date": ("geburtsdatum", "gebdatum", "geburtstag", "birthdate", "dateofbirth",
                   "birthday", "dob", "datedenaissance", "naissance"),
    "email": ("email", "emailadresse", "mail", "mailadresse", "epost", "courriel",
              "adresseemail", "emailaddress"),
    "phone": ("telefon", "tel", "telefonnummer", "telnr", "festnetz", "telefonprivat", "phone",
              "telephone", "phonenumber", "telephonefixe", "fixe"),
    "mobile": ("handy", "handynummer", "mobil", "mobilnummer", "mobiltelefon", "telefonmobil",
               "mobile", "mobilephone", "cell", "cellphone", "portable", "telephoneportable"),
    "language": ("sprache", "language", "langue"),
    "street": ("strasse", "str", "strassehausnummer", "strassenr", "adresse", "anschrift",
               "street", "address", "rue"),
    "house_no": ("hausnummer", "hausnr", "nr", "housenumber", "houseno", "numero", "no"),
    "postcode": ("plz", "postleitzahl", "postcode", "zip", "zipcode", "postalcode",
                 "codepostal", "cp"),
    "city": ("ort", "stadt", "wohnort", "city", "town", "ville"),
    "country": ("land", "country", "pays", "staat"),
    "delivery_name": ("liefername", "lieferadressename", "empfaenger", "deliveryname"),
    "delivery_street": ("lieferstrasse", "lieferadresse", "deliverystreet",
                        "deliveryaddress"),
    "delivery_house_no": ("lieferhausnummer", "lieferhausnr", "deliveryhousenumber"),
    "delivery_postcode": ("lieferplz", "lieferpostleitzahl", "deliverypostcode"),
    "delivery_city": ("lieferort", "lieferstadt", "deliverycity"),
    "delivery_country": ("lieferland", "deliverycountry"),
    "id_card": ("ausweisnummer", "personalausweisnummer", "personalausweis", "ausweis",
                "ausweisnr", "idcard", "idcardnumber", "idnumber", "passnummer"),
    "email_consent": ("newsletter", "emaileinwilligung", "einwilligungemail", "emailwerbung",
                      "emailmarketing", "emailoptin", "optin", "emailconsent",
                      "consentementemail", "newsletteroptin"),
    "sms_consent": ("smseinwilligung", "einwilligungsms", "sms", "smswerbung", "smsmarketing",
                    "smsoptin", "smsconsent", "consentementsms"),
    "provenance": ("herkunft", "provenienz", "quelle", "provenance", "source", "origine",
                   "wieaufmerksam"),
    "grouping": ("gruppierung", "verein", "verband", "grouping", "regroupement"),
    "observation": ("beobachtung", "hinweis", "warnung", "achtung", "observation"),
    "notes": ("bemerkung", "bemerkungen", "notiz", "notizen", "anmerkung", "anmerkungen",
              "kommentar", "notes", "note", "remarks", "comment", "commentaire", "remarque"),
    "customer_no": ("kundennummer", "kundennr", "kdnr", "kundenid", "customerno",
                    "customernumber", "customerid", "numeroclient", "nclient", "codeclient"),
    "card_no": ("kartennummer", "kartennr", "kundenkarte", "kundenkartennummer", "karte",
                "treuekarte", "kundenkarten", "cardno", "cardnumber", "loyaltycard",
                "cartefidelite", "numerocarte"),
    "groups": ("kundengruppe", "kundengruppen", "gruppe", "gruppen", "kategorie",
               "customergroup", "customergroups", "groups", "group", "groupe", "categorie"),
    "email_consent_at": ("emaileinwilligungam", "emaileinwilligungdatum",
                         "einwilligungsdatumemail", "emailconsentdate", "newsletterseit"),
    "sms_consent_at": ("smseinwilligungam", "smseinwilligungdatum", "einwilligungsdatumsms",
                       "smsconsentdate"),
}  # fmt: skip

_FOLD = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"})
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")


def _key(text: str) -> str:
    """Fold a header for matching: ``E-Mail-Adresse`` -> ``emailadresse``."""
    text = unicodedata.normalize("NFKD", str(text).lower().translate(_FOLD))
    text = "".join(c for c in text if not unicodedata.combining(c))
    return _NOT_ALNUM.sub("", text.replace("*", ""))


def _static_aliases() -> dict[str, str]:
    out: dict[str, str] = {}
    for target, names in _ALIASES.items():
        for name in names:
            out.setdefault(name, target)
    return out


_ALIAS_TO_TARGET = _static_aliases()


def targets(store: Store) -> dict[str, str]:
    """Every field a column can be mapped to, with its translated label."""
    out = {f.name: _(f.label) for f in customers.FIELDS}
    out.update({name: _(label) for name, label in EXTRA_TARGETS.items()})
    for question in questions.all_questions(store):
        out[f"answers.{question['key']}"] = question["label"]
    return out


def _label_aliases(store: Store) -> dict[str, str | None]:
    """Header names taken from labels (English ids, their translation, export headers)."""
    out: dict[str, str | None] = {}
    from kiosk.engine import customer_export  # the export's headers must map back

    for label, target in customer_export.header_targets():
        # None marks export-only columns (masked ID card, consent source): never imported
        out.setdefault(_key(label), target)
        out.setdefault(_key(_(label)), target)
    for f in customers.FIELDS:
        out.setdefault(_key(f.label), f.name)
        out.setdefault(_key(_(f.label)), f.name)
    for question in questions.all_questions(store):
        target = f"answers.{question['key']}"
        out[_key(question["label"])] = target
        out[_key(question["key"])] = target
    return out


def _match_alias(key: str, extra: dict[str, str | None] | None = None) -> str | None:
    if not key:
        return None
    if extra and key in extra:
        return extra[key]
    if key in _ALIAS_TO_TARGET:
        return _ALIAS_TO_TARGET[key]
    # "Telefon privat", "Geburtsdatum (TT.MM.JJJJ)": the longest known name it starts with
    best = None
    for alias, target in _ALIAS_TO_TARGET.items():
        if len(alias) >= 5 and key.startswith(alias) and (best is None or len(alias) > best[0]):
            best = (len(alias), target)
    return best[1] if best else None


def propose_mapping(store: Store, table: Table) -> dict[int, str]:
    """Guess column index -> target from the header names; each target is used once."""
    extra = _label_aliases(store)
    mapping: dict[int, str] = {}
    used: set[str] = set()
    for index, header in enumerate(table.headers):
        target = _match_alias(_key(header), extra)
        if target and target not in used:
            mapping[index] = target
            used.add(target)
    return mapping


def _column_index(table: Table, column: str) -> int:
    wanted = _key(column)
    for index, header in enumerate(table.headers):
        if header and _key(header) == wanted:
            return index
    if re.fullmatch(r"[A-Za-z]{1,3}", column.strip()):
        from openpyxl.utils import column_index_from_string

        return column_index_from_string(column.strip().upper()) - 1
    raise MappingError(
        _("The sheet has no column {column!r}. Columns: {names}").format(
            column=column, names=", ".join(h for h in table.headers if h)
        )
    )


def override_mapping(
    store: Store, table: Table, mapping: dict[int, str], overrides: dict[str, str | None]
) -> dict[int, str]:
    """Apply ``{"column header or letter": "field"}``; an empty field leaves a column out."""
    known = targets(store)
    out = dict(mapping)
    for column, target in overrides.items():
        index = _column_index(table, column)
        target = (target or "").strip()
        if target in ("", "-"):
            out.pop(index, None)
            continue
        if target not in known:
            raise MappingError(
                _("Unknown field {field!r}. Fields: {names}").format(
                    field=target, names=", ".join(known)
                )
            )
        for other, other_target in list(out.items()):
            if other_target == target and other != index:
                del out[other]
        out[index] = target
    return out


def parse_overrides(items: Iterable[str]) -> dict[str, str]:
    """Parse ``"Spalte=field"`` strings as given on the command line."""
    out: dict[str, str] = {}
    for item in items:
        column, sep, target = item.partition("=")
        if not sep or not column.strip():
            raise MappingError(
                _("Write a mapping as \"Column=field\", not {item!r}.").format(item=item)
            )
        out[column.strip()] = target.strip()
    return out


# -- converting cells into what the engine accepts --------------------------------------------
_GENDER_WORDS = {
    "f": "f", "frau": "f", "fr": "f", "w": "f", "weiblich": "f", "ms": "f", "mrs": "f",
    "miss": "f", "female": "f", "madame": "f", "mme": "f",
    "m": "m", "herr": "m", "hr": "m", "mann": "m", "maennlich": "m", "mr": "m", "male": "m",
    "monsieur": "m",
    "d": "d", "divers": "d", "diverse": "d", "x": "d",
}  # fmt: skip
_LANGUAGE_WORDS = {
    "de": "de", "deutsch": "de", "german": "de", "allemand": "de",
    "fr": "fr", "franzoesisch": "fr", "french": "fr", "francais": "fr",
    "en": "en", "englisch": "en", "english": "en", "anglais": "en",
}  # fmt: skip
_COUNTRY_WORDS = {
    "d": "DE", "deutschland": "DE", "germany": "DE", "allemagne": "DE", "brd": "DE",
    "a": "AT", "oesterreich": "AT", "austria": "AT", "autriche": "AT",
    "schweiz": "CH", "switzerland": "CH", "suisse": "CH",
    "frankreich": "FR", "france": "FR", "niederlande": "NL", "netherlands": "NL",
    "holland": "NL", "paysbas": "NL", "belgien": "BE", "belgium": "BE", "belgique": "BE",
    "luxemburg": "LU", "luxembourg": "LU", "italien": "IT", "italy": "IT", "italie": "IT",
    "spanien": "ES", "spain": "ES", "espagne": "ES", "polen": "PL", "poland": "PL",
    "pologne": "PL", "daenemark": "DK", "denmark": "DK", "danemark": "DK",
    "tschechien": "CZ", "czechia": "CZ", "tchequie": "CZ", "liechtenstein": "LI",
    "grossbritannien": "GB", "vereinigteskoenigreich": "GB", "unitedkingdom": "GB", "uk": "GB",
    "royaumeuni": "GB", "usa": "US", "vereinigtestaaten": "US", "unitedstates": "US",
    "etatsunis": "US",
}  # fmt: skip
_YES = {"1", "ja", "j", "yes", "y", "true", "wahr", "x", "oui", "o", "vrai", "✓", "✔"}
_NO = {"0", "nein", "n", "no", "false", "falsch", "non", "faux", "-"}


class CellError(ValueError):
    pass


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in _YES or text == _("yes").lower():
        return True
    if text in _NO or text == _("no").lower():
        return False
    raise CellError(_("Expected yes or no."))


def _as_text(value: Any) -> str:
    """A cell for a text field: refuse what Excel turned into something else."""
    if isinstance(value, bool):
        raise CellError(_("Expected text, found a yes/no value."))
    if isinstance(value, (dt.datetime, dt.date)):
        raise CellError(
            _("Expected text, found the date {date}.").format(date=value.strftime("%d.%m.%Y"))
        )
    if isinstance(value, (dt.time, dt.timedelta)):
        raise CellError(_("Expected text, found a time."))
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value).strip()


def _as_date(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date)):
        return value
    if isinstance(value, bool):
        raise CellError(_("Enter the date as DD.MM.YYYY."))
    if isinstance(value, (int, float)):
        if 1800 <= value <= 2100 and float(value).is_integer():
            raise CellError(_("Only a year is given; enter the full date (DD.MM.YYYY)."))
        if 0 < value < 2958466:
            return from_excel(value).date()  # a date serial number without date format
        raise CellError(_("Enter the date as DD.MM.YYYY."))
    return _as_text(value)


def _as_phone(value: Any, region: str) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if isinstance(value, float) and not value.is_integer():
            raise CellError(_("This is not a phone number."))
        digits = str(int(value))
        # Excel stored the number as a number and dropped the leading 0 or +
        tries = ("+" + digits, "0" + digits) if len(digits) >= 11 else ("0" + digits, "+" + digits)
        for candidate in tries:
            try:
                return customers.normalise_phone(candidate, region)
            except ValueError:
                continue
        return digits
    return _as_text(value)


def _as_postcode(value: Any, country: str) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if isinstance(value, float) and not value.is_integer():
            raise CellError(_("A German postcode has five digits."))
        number = int(value)
        # Excel drops the leading zero of Dresden's 01067
        if country == "DE" and 1000 <= number <= 9999:
            return f"{number:05d}"
        return str(number)
    return _as_text(value)


def _as_consent_time(value: Any, now: dt.datetime) -> str:
    if isinstance(value, dt.datetime):
        stamp = value if value.tzinfo else value.replace(tzinfo=SHOP_TZ)
    else:
        day = _as_date(value)
        if isinstance(day, str):
            try:
                stamp = dt.datetime.fromisoformat(day)
                stamp = stamp if stamp.tzinfo else stamp.replace(tzinfo=SHOP_TZ)
            except ValueError:
                day = customers.parse_date(day)
                stamp = dt.datetime.combine(day, dt.time(), SHOP_TZ)
        else:
            stamp = dt.datetime.combine(day, dt.time(), SHOP_TZ)
    if stamp > now:
        raise CellError(_("The date lies in the future."))
    return iso(stamp)


def _split_words(value: Any, pattern: str) -> list[str]:
    text = _as_text(value)
    out = []
    for part in re.split(pattern, text):
        part = " ".join(part.split())
        if part and part not in out:
            out.append(part)
    return out


@dataclass
class Row:
    """One row of the sheet, validated: values for customers.create and what goes with it."""

    row: int  # Excel row number
    values: dict[str, Any] = field(default_factory=dict)  # normalised customer fields
    customer_no: str | None = None
    cards: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    consent_at: dict[str, str] = field(default_factory=dict)
    errors: list["RowError"] = field(default_factory=list)
    duplicates: list["DuplicateHit"] = field(default_factory=list)


@dataclass(frozen=True)
class RowError:
    row: int
    column: str  # "D (PLZ)", or "" when the field has no column (a missing mandatory field)
    field: str
    message: str

    def __str__(self) -> str:
        where = _("row {row}").format(row=self.row)
        if self.column:
            where += ", " + _("column {column}").format(column=self.column)
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class DuplicateHit:
    row: int
    reason: str
    other_row: int | None = None  # the earlier row in the file, or
    customer_id: str | None = None  # the stored customer it resembles
    customer_no: str | None = None
    name: str = ""

    def __str__(self) -> str:
        where = _("row {row}").format(row=self.row)
        if self.other_row is not None:
            like = _("like row {row}").format(row=self.other_row)
        else:
            like = _("like customer {number} {name}").format(number=self.customer_no, name=self.name)
        return f"{where}: {like} ({self.reason})"


def _convert_row(
    store: Store, table: Table, mapping: dict[int, str], row_no: int, cells: tuple[Any, ...],
    question_kinds: dict[str, dict[str, Any]], now: dt.datetime,
) -> tuple[dict[str, Any], Row]:  # fmt: skip
    """Turn cell values into input for customers.normalise; cell-level problems become errors."""
    result = Row(row=row_no)
    data: dict[str, Any] = {}
    answers: dict[str, Any] = {}
    by_target = {t: i for i, t in mapping.items()}

    def cell(target: str) -> Any:
        index = by_target.get(target)
        return cells[index] if index is not None and index < len(cells) else None

    country_cell = cell("country")
    country = customers.DEFAULT_REGION
    if isinstance(country_cell, str):
        country = _COUNTRY_WORDS.get(_key(country_cell), country_cell.strip().upper()) or country
    for index, target in sorted(mapping.items()):
        value = cells[index] if index < len(cells) else None
        if value is None:
            continue
        try:
            if isinstance(value, ExcelError):
                raise CellError(_("The cell holds the Excel error {code}.").format(code=value))
            _convert_cell(target, value, data, answers, result, question_kinds, country, now)
        except (CellError, ValueError) as exc:
            result.errors.append(RowError(row_no, table.column_name(index), target, str(exc)))
    if answers:
        data["answers"] = answers
    return data, result


def _convert_cell(
    target: str, value: Any, data: dict[str, Any], answers: dict[str, Any], result: Row,
    question_kinds: dict[str, dict[str, Any]], country: str, now: dt.datetime,
) -> None:  # fmt: skip
    if target.startswith("answers."):
        key = target.removeprefix("answers.")
        question = question_kinds[key]
        if question["kind"] == "bool":
            answers[key] = _as_bool(value)
        elif question["kind"] == "choice":
            text = _as_text(value)
            folded = {o.casefold(): o for o in question["options"]}
            answers[key] = folded.get(text.casefold(), text)
        elif question["kind"] == "number":
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                raise CellError(_("Expected a number."))
            answers[key] = str(Decimal(repr(value))) if isinstance(value, float) else value
        else:
            answers[key] = _as_text(value)
        return
    if target == "customer_no":
        number = _as_text(value)
        if not customers.CUSTOMER_NO_RE.match(number):
            raise CellError(_("A customer number has 1 to 32 letters and digits."))
        result.customer_no = number
        return
    if target == "card_no":
        cards = _split_words(value, r"[,;\s]+")
        for card in cards:
            if not _CARD_NO_RE.match(card):
                raise CellError(_("A card number has 4 to 32 letters and digits."))
        result.cards = cards
        return
    if target == "groups":
        names = _split_words(value, r"[;,]")
        if any(len(n) > 60 for n in names):
            raise CellError(_("Enter a group name of at most 60 characters."))
        result.groups = names
        return
    if target in ("email_consent_at", "sms_consent_at"):
        result.consent_at[target.removesuffix("_at")] = _as_consent_time(value, now)
        return
    spec = customers.FIELD_BY_NAME[target]
    if spec.kind == "bool":
        data[target] = _as_bool(value)
    elif spec.kind == "date":
        data[target] = _as_date(value)
    elif spec.kind == "phone":
        data[target] = _as_phone(value, country)
    elif spec.kind == "postcode":
        data[target] = _as_postcode(value, country)
    elif spec.name == "gender":
        text = _as_text(value)
        data[target] = _GENDER_WORDS.get(_key(text), text)
    elif spec.name == "language":
        text = _as_text(value)
        data[target] = _LANGUAGE_WORDS.get(_key(text), text)
    elif spec.kind == "country":
        text = _as_text(value)
        data[target] = _COUNTRY_WORDS.get(_key(text), text)
    else:
        data[target] = _as_text(value)


# -- checking ----------------------------------------------------------------------------------
@dataclass
class Report:
    """Every row of a sheet validated against the rules and the database."""

    table: Table
    mapping: dict[int, str]
    rows: list[Row]
    new_groups: list[str]  # group names in the file that do not exist yet

    @property
    def errors(self) -> list[RowError]:
        return [e for r in self.rows for e in r.errors]

    @property
    def duplicates(self) -> list[DuplicateHit]:
        return [d for r in self.rows for d in r.duplicates]

    @property
    def error_rows(self) -> int:
        return sum(1 for r in self.rows if r.errors)

    @property
    def duplicate_rows(self) -> int:
        return sum(1 for r in self.rows if r.duplicates and not r.errors)

    def mapped_columns(self) -> list[tuple[str, str]]:
        """(column name, target) of every mapped column, in sheet order."""
        return [(self.table.column_name(i), t) for i, t in sorted(self.mapping.items())]


def _field_column(table: Table, mapping: dict[int, str], name: str) -> str:
    for index, target in mapping.items():
        if target == name:
            return table.column_name(index)
    return ""


class _InFile:
    """Finds rows of the same file that describe the same person (the DB rules, in memory)."""

    def __init__(self) -> None:
        self.emails: dict[str, int] = {}
        self.phones: dict[str, int] = {}
        self.names: dict[str, list[tuple[int, str, str | None, str | None]]] = {}
        self.numbers: dict[str, int] = {}
        self.cards: dict[str, int] = {}

    def duplicates(self, row: Row) -> list[DuplicateHit]:
        v, hits = row.values, []
        email = (v.get("email") or "").lower()
        if email:
            if email in self.emails:
                hits.append(DuplicateHit(row.row, _("same e-mail address"), self.emails[email]))
            self.emails.setdefault(email, row.row)
        for key in ("phone", "mobile"):
            number = v.get(key)
            if number:
                if number in self.phones and not hits:
                    hits.append(DuplicateHit(row.row, _("same phone number"), self.phones[number]))
                self.phones.setdefault(number, row.row)
        last = v.get("last_name")
        if last:
            ln = search.phonetic(last)
            fn = search.phonetic(v.get("first_name") or "")
            birth, postcode = v.get("birth_date"), v.get("postcode")
            bucket = self.names.setdefault(ln, [])
            if not hits and (birth or postcode or fn):
                for other_row, other_fn, other_birth, other_pc in bucket:
                    if fn and other_fn and fn != other_fn:
                        continue
                    if birth and other_birth and birth != other_birth:
                        continue
                    if postcode and other_pc and postcode != other_pc:
                        continue
                    hits.append(DuplicateHit(row.row, _("similar name"), other_row))
                    break
            bucket.append((row.row, fn, birth, postcode))
        return hits


def check(
    store: Store,
    table: Table,
    mapping: dict[int, str],
    *,
    limit: int | None = None,
    create_groups: bool = True,
    progress: Progress | None = None,
) -> Report:
    """Validate every row (or the first ``limit``) and find duplicates; writes nothing."""
    unknown = set(mapping.values()) - set(targets(store))
    if unknown:
        raise MappingError(_("Unknown field {field!r}.").format(field=sorted(unknown)[0]))
    if not mapping:
        raise MappingError(_("No column is mapped to a customer field."))
    rows = table.rows if limit is None else table.rows[:limit]
    question_kinds = {q["key"]: q for q in questions.all_questions(store)}
    existing_groups = {g["name"].casefold(): g["name"] for g in groups.all_groups(store)}
    new_groups: dict[str, str] = {}
    now = store.clock()
    in_file = _InFile()
    checked: list[Row] = []
    total = len(rows)
    for done, (row_no, cells) in enumerate(rows, start=1):
        data, row = _convert_row(store, table, mapping, row_no, cells, question_kinds, now)
        bad_cells = {e.field for e in row.errors}
        try:
            row.values = customers.normalise(store, data)
        except customers.ValidationError as exc:
            for name, message in exc.errors.items():
                if name not in bad_cells:
                    row.errors.append(
                        RowError(row_no, _field_column(table, mapping, name), name, message)
                    )
        _check_numbers(store, table, mapping, row, in_file)
        for name in row.groups:
            folded = name.casefold()
            if folded not in existing_groups:
                if not create_groups:
                    row.errors.append(
                        RowError(row_no, _field_column(table, mapping, "groups"), "groups",
                                 _("Unknown group {name!r}.").format(name=name))
                    )  # fmt: skip
                else:
                    new_groups.setdefault(folded, name)
        if not row.errors:
            row.duplicates = in_file.duplicates(row) or [
                DuplicateHit(row_no, d.reason, customer_id=d.id, customer_no=d.customer_no,
                             name=d.name)
                for d in customers.possible_duplicates(store, row.values)
            ]  # fmt: skip
        checked.append(row)
        if progress and (done % _PROGRESS_EVERY == 0 or done == total):
            progress("check", done, total)
    return Report(table, dict(mapping), checked, list(new_groups.values()))


def _check_numbers(
    store: Store, table: Table, mapping: dict[int, str], row: Row, in_file: _InFile
) -> None:
    """Kept customer and card numbers must be unique in the file and in the database."""
    if row.customer_no:
        column = _field_column(table, mapping, "customer_no")
        if row.customer_no in in_file.numbers:
            row.errors.append(RowError(
                row.row, column, "customer_no",
                _("The customer number {number} is also in row {other}.").format(
                    number=row.customer_no, other=in_file.numbers[row.customer_no]),
            ))  # fmt: skip
        else:
            in_file.numbers[row.customer_no] = row.row
            if store.db.execute(
                "SELECT 1 FROM customers WHERE customer_no = ?", [row.customer_no]
            ).fetchone():
                row.errors.append(RowError(
                    row.row, column, "customer_no",
                    _("The customer number {number} exists already.").format(
                        number=row.customer_no),
                ))  # fmt: skip
    for card in row.cards:
        column = _field_column(table, mapping, "card_no")
        if card in in_file.cards:
            row.errors.append(RowError(
                row.row, column, "card_no",
                _("The card {number} is also in row {other}.").format(
                    number=card, other=in_file.cards[card]),
            ))  # fmt: skip
            continue
        in_file.cards[card] = row.row
        if store.db.execute("SELECT 1 FROM customer_cards WHERE card_no = ?", [card]).fetchone():
            row.errors.append(RowError(
                row.row, column, "card_no",
                _("The card {number} belongs to another customer.").format(number=card),
            ))  # fmt: skip


@dataclass(frozen=True)
class Preview:
    mapping: list[tuple[str, str | None]]  # (column name, target or None) for every column
    rows: list[Row]
    total_rows: int
    new_groups: list[str]


def preview(store: Store, table: Table, mapping: dict[int, str], n: int = 10) -> Preview:
    """The proposed mapping with the first ``n`` rows normalised and their problems."""
    report = check(store, table, mapping, limit=n)
    columns = [(table.column_name(i), mapping.get(i)) for i in range(len(table.headers))]
    return Preview(columns, report.rows, len(table.rows), report.new_groups)


# -- committing ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Skipped:
    row: int
    reason: str


@dataclass(frozen=True)
class Result:
    created: list[tuple[int, str]]  # (Excel row, customer id)
    skipped: list[Skipped]
    groups_created: list[str]


def commit(
    store: Store,
    report: Report,
    *,
    skip_errors: bool = False,
    duplicates: str = "refuse",
    progress: Progress | None = None,
) -> Result:
    """Import the checked rows in one transaction: any failure leaves the store unchanged.

    Rows with errors stop the import unless ``skip_errors``; rows that resemble another row
    or a stored customer stop it when ``duplicates`` is "refuse", are left out with "skip"
    and imported anyway with "import". Left-out rows are listed in the result.
    """
    if duplicates not in DUPLICATE_POLICIES:
        raise ValueError(f"duplicates must be one of {DUPLICATE_POLICIES}")
    if report.error_rows and not skip_errors:
        raise ImportRejected(
            ngettext(
                "{n} row has errors; nothing was imported. First: {first}",
                "{n} rows have errors; nothing was imported. First: {first}",
                report.error_rows,
            ).format(n=report.error_rows, first=report.errors[0]),
            report,
        )
    if report.duplicate_rows and duplicates == "refuse":
        raise ImportRejected(
            ngettext(
                "{n} row looks like a customer that exists already; nothing was imported."
                " First: {first}",
                "{n} rows look like customers that exist already; nothing was imported."
                " First: {first}",
                report.duplicate_rows,
            ).format(n=report.duplicate_rows, first=report.duplicates[0]),
            report,
        )  # fmt: skip
    todo: list[Row] = []
    skipped: list[Skipped] = []
    for row in report.rows:
        if row.errors:
            skipped.append(Skipped(row.row, "; ".join(e.message for e in row.errors)))
        elif row.duplicates and duplicates == "skip":
            skipped.append(Skipped(row.row, str(row.duplicates[0])))
        else:
            todo.append(row)
    created: list[tuple[int, str]] = []
    total = len(todo)
    with store.transaction():
        group_ids, made = _ensure_groups(store, report.new_groups, todo)
        for done, row in enumerate(todo, start=1):
            try:
                record = customers.create(
                    store, row.values, source="import", force=True,
                    customer_no=row.customer_no, consent_at=row.consent_at or None,
                )  # fmt: skip
                for card in row.cards:
                    _claim_card(store, card)
                    customers.assign_card(store, record["id"], card)
                for name in row.groups:
                    groups.assign(store, record["id"], group_ids[name.casefold()])
            except (customers.ValidationError, groups.GroupError) as exc:
                # the store changed since the check (a till took the number or card)
                raise ImportRejected(
                    _("Row {row}: {reason}. Nothing was imported.").format(
                        row=row.row, reason=exc
                    ),
                    report,
                ) from exc
            created.append((row.row, record["id"]))
            if progress and (done % _PROGRESS_EVERY == 0 or done == total):
                progress("import", done, total)
    _LOGGER.info("imported %d customers (%d rows skipped)", len(created), len(skipped))
    return Result(created, skipped, made)


def _claim_card(store: Store, card: str) -> None:
    # assign_card would move a card someone else got since the check: refuse that instead
    if store.db.execute("SELECT 1 FROM customer_cards WHERE card_no = ?", [card]).fetchone():
        raise customers.ValidationError(
            {"card_no": _("The card {number} belongs to another customer.").format(number=card)}
        )


def _ensure_groups(
    store: Store, new_groups: list[str], rows: list[Row]
) -> tuple[dict[str, str], list[str]]:
    """Create the groups the imported rows need; return folded name -> id, and new names."""
    wanted = {g.casefold() for r in rows for g in r.groups}
    ids = {g["name"].casefold(): g["id"] for g in groups.all_groups(store)}
    made = []
    for name in new_groups:
        folded = name.casefold()
        if folded in wanted and folded not in ids:
            ids[folded] = groups.save(store, name)
            made.append(name)
    return ids, made


def import_file(
    store: Store,
    source: Source,
    *,
    overrides: dict[str, str | None] | None = None,
    sheet: str | None = None,
    skip_errors: bool = False,
    duplicates: str = "refuse",
    create_groups: bool = True,
    limits: Limits = Limits(),
    progress: Progress | None = None,
) -> Result:
    """Read, map, check and commit in one call (the proposed mapping plus ``overrides``)."""
    table = read_workbook(source, sheet=sheet, limits=limits, progress=progress)
    mapping = propose_mapping(store, table)
    if overrides:
        mapping = override_mapping(store, table, mapping, overrides)
    report = check(store, table, mapping, create_groups=create_groups, progress=progress)
    return commit(store, report, skip_errors=skip_errors, duplicates=duplicates, progress=progress)
