"""Customer import from Excel: mapping, preview, row errors, duplicates, all-or-nothing, hostile
files, and the ``kiosk customers import`` command. Workbooks are written by each test."""

from __future__ import annotations

import datetime as dt
import io
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from openpyxl import Workbook

from kiosk import cli
from kiosk.engine import customer_import as ci
from kiosk.engine import customers, events, groups, questions, settings
from kiosk.engine.store import Identity, Store
from kiosk.i18n import _

HEADER = ["Kd-Nr.", "Anrede", "Vorname", "Nachname", "Geburtsdatum", "E-Mail", "Handy",
          "Straße", "Nr.", "PLZ", "Ort", "Newsletter", "Kundenkarte", "Kundengruppe"]  # fmt: skip
ANNA = ["K-1", "Frau", "anna", "MÜLLER", dt.datetime(1980, 3, 12), "anna@example.org",
        "0171 1234567", "Hauptstr.", 5, "01067", "Dresden", "ja", "KC0001", "VIP"]  # fmt: skip
BERND = ["K-2", "Herr", "Bernd", "Schmidt", "01.02.1975", "bernd@example.org", None, "Weg",
         "2a", "50667", "Köln", "nein", None, "VIP; Firmen"]  # fmt: skip


def write_xlsx(path: Path, rows: list[list], title: str = "Kunden") -> Path:
    wb = Workbook()
    ws = wb.active
    ws.title = title
    for row in rows:
        ws.append(row)
    wb.save(path)
    return path


def event_count(store) -> int:
    return store.db.execute("SELECT count(*) FROM events").fetchone()[0]


def load(store, path, **overrides):
    table = ci.read_workbook(path)
    mapping = ci.propose_mapping(store, table)
    if overrides:
        mapping = ci.override_mapping(store, table, mapping, overrides)
    return table, mapping


# -- mapping -------------------------------------------------------------------------------
def test_header_row_is_found_below_a_title_and_german_names_are_mapped(store, tmp_path):
    """GIVEN a list with a title line, an empty line and German headers
    WHEN it is read THEN the header row is row 3 and every known column is mapped."""
    path = write_xlsx(tmp_path / "k.xlsx", [["Kundenliste 2024"], [], HEADER + ["Fax"], ANNA])
    table, mapping = load(store, path)
    assert table.header_row == 3 and table.sheet == "Kunden"
    assert [r for r, _v in table.rows] == [4]
    named = {table.headers[i]: t for i, t in mapping.items()}
    assert named == {
        "Kd-Nr.": "customer_no", "Anrede": "gender", "Vorname": "first_name",
        "Nachname": "last_name", "Geburtsdatum": "birth_date", "E-Mail": "email",
        "Handy": "mobile", "Straße": "street", "Nr.": "house_no", "PLZ": "postcode",
        "Ort": "city", "Newsletter": "email_consent", "Kundenkarte": "card_no",
        "Kundengruppe": "groups",
    }  # fmt: skip
    assert 14 not in mapping  # "Fax" stays unmapped


def test_english_french_and_free_form_headers_are_mapped(store, tmp_path):
    questions.define(store, "shoe_size", "Schuhgröße", "choice", ["38", "39", "40"])
    headers = ["Last name", "Prénom", "Telefon privat", "Geburtsdatum (TT.MM.JJJJ)",
               "Code postal", "Ville", "Observation", "Provenienz", "Gruppierung",
               "SMS-Einwilligung", "Bemerkung", "Titel", "Firma", "Land", "Kartennummer",
               "Kundennummer", "Schuhgröße", "Mobil"]  # fmt: skip
    path = write_xlsx(tmp_path / "k.xlsx", [headers, ["Dupont"] + [None] * 17])
    table, mapping = load(store, path)
    assert [mapping.get(i) for i in range(len(headers))] == [
        "last_name", "first_name", "phone", "birth_date", "postcode", "city", "observation",
        "provenance", "grouping", "sms_consent", "notes", "title", "company", "country",
        "card_no", "customer_no", "answers.shoe_size", "mobile",
    ]  # fmt: skip


def test_mapping_can_be_overridden_by_header_or_letter(store, tmp_path):
    path = write_xlsx(tmp_path / "k.xlsx", [["Nachname", "Info", "Fax"], ["Muster", "x", "1"]])
    table, mapping = load(store, path)
    assert mapping == {0: "last_name"}
    mapping = ci.override_mapping(store, table, mapping, {"info": "notes", "C": "phone"})
    assert mapping == {0: "last_name", 1: "notes", 2: "phone"}
    mapping = ci.override_mapping(store, table, mapping, {"Fax": ""})
    assert mapping == {0: "last_name", 1: "notes"}
    # mapping a field that another column had moves it
    mapping = ci.override_mapping(store, table, mapping, {"Info": "last_name"})
    assert mapping == {1: "last_name"}
    with pytest.raises(ci.MappingError, match="shoe"):
        ci.override_mapping(store, table, mapping, {"Info": "shoe"})
    with pytest.raises(ci.MappingError, match="Telefax"):
        ci.override_mapping(store, table, mapping, {"Telefax": "phone"})
    assert ci.parse_overrides(["Kd-Nr=customer_no", " Fax = "]) == {
        "Kd-Nr": "customer_no", "Fax": ""}  # fmt: skip
    with pytest.raises(ci.MappingError):
        ci.parse_overrides(["customer_no"])


# -- preview and row errors ----------------------------------------------------------------
def test_preview_shows_first_rows_normalised_with_their_errors(store, tmp_path):
    bad = list(BERND)
    bad[5] = "bernd@"  # no domain
    path = write_xlsx(tmp_path / "k.xlsx", [HEADER, ANNA, bad] + [
        ["K-%d" % i, None, "Vorname", "Name%d" % i] for i in range(3, 30)
    ])  # fmt: skip
    table, mapping = load(store, path)
    pv = ci.preview(store, table, mapping, n=2)
    assert pv.total_rows == 29 and len(pv.rows) == 2
    assert ("D (Nachname)", "last_name") in pv.mapping
    first = pv.rows[0]
    assert first.row == 2 and not first.errors
    assert first.values["mobile"] == "+491711234567" and first.values["last_name"] == "Müller"
    assert first.values["birth_date"] == "1980-03-12" and first.values["gender"] == "f"
    assert first.cards == ["KC0001"] and first.groups == ["VIP"] and first.customer_no == "K-1"
    assert [(e.row, e.column, e.field) for e in pv.rows[1].errors] == [
        (3, "F (E-Mail)", "email")]  # fmt: skip
    assert sorted(pv.new_groups) == ["Firmen", "VIP"]
    assert customers.count(store) == 0 and event_count(store) == 0


def test_every_row_error_names_excel_row_and_column(store, tmp_path):
    settings.set(store, "customer.mandatory_fields", ["last_name", "city"])
    rows = [
        ["Nachname", "Vorname", "Geburtsdatum", "PLZ", "E-Mail", "Telefon", "Ort"],
        ["Gut", "Anna", "12.03.1980", "50667", "a@example.org", "0221 123456", "Köln"],
        ["Datum", dt.date(2020, 1, 1), "31.02.1980", "5066", "kein", "12", "Köln"],
        ["Fehler", "=x", "#N/A", None, None, None, None],
        [True, "Ohne", 1985, None, 42, None, "Bonn"],
    ]
    wb = Workbook()
    ws = wb.active
    for row in rows:
        ws.append(row)
    ws["C4"].value = "#N/A"  # openpyxl stores Excel's error codes as error cells
    ws["B4"].data_type = "s"  # text that merely starts with "=", not a formula
    wb.save(tmp_path / "k.xlsx")
    table, mapping = load(store, tmp_path / "k.xlsx")
    report = ci.check(store, table, mapping)
    found = {(e.row, e.column) for e in report.errors}
    assert found == {
        (3, "B (Vorname)"), (3, "C (Geburtsdatum)"), (3, "D (PLZ)"), (3, "E (E-Mail)"),
        (3, "F (Telefon)"),
        (4, "C (Geburtsdatum)"), (4, "G (Ort)"),
        (5, "A (Nachname)"), (5, "C (Geburtsdatum)"), (5, "E (E-Mail)"),
    }  # fmt: skip
    by_cell = {(e.row, e.column): e.message for e in report.errors}
    assert "01.01.2020" in by_cell[(3, "B (Vorname)")]  # a date where a name belongs
    assert "#N/A" in by_cell[(4, "C (Geburtsdatum)")]
    assert by_cell[(4, "G (Ort)")] == _("{field} is required.").format(
        field=_("City"))  # fmt: skip
    assert str(report.errors[0]).startswith(_("row {row}").format(row=3))
    assert report.error_rows == 3 and len(report.rows) == 4
    assert report.rows[0].values["phone"] == "+49221123456"


def test_a_mandatory_field_without_a_column_is_reported_for_every_row(store, tmp_path):
    settings.set(store, "customer.mandatory_fields", ["last_name", "email"])
    path = write_xlsx(tmp_path / "k.xlsx", [["Nachname"], ["A"], ["B"]])
    table, mapping = load(store, path)
    report = ci.check(store, table, mapping)
    assert [(e.row, e.column, e.field) for e in report.errors] == [
        (2, "", "email"), (3, "", "email")]  # fmt: skip


def test_excel_number_quirks_are_undone(store, tmp_path):
    """Phone numbers and postcodes stored as numbers lost their leading 0; dates may be serials."""
    rows = [
        ["Nachname", "Handy", "Telefon", "PLZ", "Geburtsdatum", "Land", "Newsletter", "Nr."],
        ["A", 1711234567, 493012345678, 1067, 29292, "Deutschland", 1, 12.0],
        ["B", None, None, 1010, None, "Österreich", "X", None],
        ["C", None, None, None, 1980, None, "vielleicht", None],
    ]
    table, mapping = load(store, write_xlsx(tmp_path / "k.xlsx", rows))
    report = ci.check(store, table, mapping)
    a, b, c = report.rows
    assert a.values["mobile"] == "+491711234567" and a.values["phone"] == "+493012345678"
    assert a.values["postcode"] == "01067" and a.values["birth_date"] == "1980-03-12"
    assert a.values["country"] == "DE" and a.values["email_consent"] is True
    assert a.values["house_no"] == "12"
    assert b.values["postcode"] == "1010" and b.values["country"] == "AT"  # no padding in AT
    assert {e.column for e in c.errors} == {"E (Geburtsdatum)", "G (Newsletter)"}


# -- duplicates --------------------------------------------------------------------------
def test_duplicates_within_the_file_and_against_the_database(store, tmp_path):
    existing = customers.create(store, {"first_name": "Carla", "last_name": "Klein",
                                        "email": "carla@example.org"})  # fmt: skip
    rows = [
        ["Vorname", "Nachname", "E-Mail", "PLZ"],
        ["Anna", "Meier", "anna@example.org", "50667"],
        ["Ben", "Berg", "ANNA@example.org", None],  # same e-mail as row 2
        ["Anna", "Mayer", None, "50667"],  # sounds like row 2, same postcode
        ["Carl", "Other", "carla@example.org", None],  # e-mail of a stored customer
        ["Dora", "Neu", "dora@example.org", None],
    ]
    table, mapping = load(store, write_xlsx(tmp_path / "k.xlsx", rows))
    report = ci.check(store, table, mapping)
    dups = {d.row: d for d in report.duplicates}
    assert set(dups) == {3, 4, 5}
    assert dups[3].other_row == 2 and dups[4].other_row == 2
    assert dups[5].customer_id == existing["id"] and dups[5].customer_no == existing["customer_no"]
    before = event_count(store)

    with pytest.raises(ci.ImportRejected):
        ci.commit(store, report)  # default: refuse
    assert customers.count(store) == 1 and event_count(store) == before

    result = ci.commit(store, report, duplicates="skip")
    assert [r for r, _id in result.created] == [2, 6]
    assert [s.row for s in result.skipped] == [3, 4, 5]
    assert customers.count(store) == 3


def test_duplicates_can_be_imported_on_purpose(store, tmp_path):
    customers.create(store, {"last_name": "Klein", "email": "carla@example.org"})
    rows = [["Nachname", "E-Mail"], ["Klein", "carla@example.org"]]
    table, mapping = load(store, write_xlsx(tmp_path / "k.xlsx", rows))
    result = ci.commit(store, ci.check(store, table, mapping), duplicates="import")
    assert len(result.created) == 1 and customers.count(store) == 2


# -- commit -----------------------------------------------------------------------------------
def test_import_keeps_numbers_cards_consent_and_groups_as_normal_events(store, tmp_path):
    groups.save(store, "vip")  # matched case-insensitively
    questions.define(store, "shoe_size", "Schuhgröße", "choice", ["38", "39", "40"])
    questions.define(store, "events", "Einladungen", "bool")
    rows = [
        HEADER + ["E-Mail-Einwilligung am", "Schuhgröße", "Einladungen"],
        ANNA + [dt.datetime(2023, 5, 1, 9, 30), "39", "ja"],
        BERND + [None, None, "nein"],
    ]
    table, mapping = load(store, write_xlsx(tmp_path / "k.xlsx", rows))
    before = event_count(store)
    seen = []
    result = ci.commit(store, ci.check(store, table, mapping),
                       progress=lambda *a: seen.append(a))  # fmt: skip
    assert result.groups_created == ["Firmen"] and not result.skipped
    anna = customers.by_number(store, "K-1")
    assert customers.by_number(store, "KC0001")["id"] == anna["id"]
    assert anna["email_consent"] is True and anna["email_consent_source"] == "import"
    assert anna["email_consent_at"] == "2023-05-01T07:30:00.000+00:00"  # Berlin summer time
    assert anna["answers"] == {"shoe_size": "39", "events": True}
    assert [g["name"] for g in groups.groups_of(store, anna["id"])] == ["vip"]
    bernd = customers.by_number(store, "K-2")
    assert bernd["email_consent"] is False and bernd["email_consent_source"] == "import"
    assert bernd["email_consent_at"] is not None  # the refusal is recorded as of the import
    assert sorted(g["name"] for g in groups.groups_of(store, bernd["id"])) == ["Firmen", "vip"]
    created = events.history(store, "customer.created")
    assert {e.payload["source"] for e in created} == {"import"} and len(created) == 2
    # 2 customers, 1 card, 3 memberships, 1 new group
    assert event_count(store) - before == 7
    assert seen[-1] == ("import", 2, 2)
    # the till still hands out its own numbers afterwards
    assert customers.create(store, {"last_name": "Neu"})["customer_no"] == "010000001"


def test_kept_numbers_must_be_unique_in_file_and_store(store, tmp_path):
    other = customers.create(store, {"last_name": "Alt"})
    customers.assign_card(store, other["id"], "CARD-1")
    rows = [
        ["Kundennummer", "Nachname", "Kundenkarte"],
        [other["customer_no"], "A", None],
        ["X-1", "B", "CARD-1"],
        ["X-2", "C", "CARD-2, CARD-3"],
        ["X-2", "D", "CARD-3"],
        ["bad number!", "E", "no"],
    ]
    table, mapping = load(store, write_xlsx(tmp_path / "k.xlsx", rows))
    errors = {(e.row, e.field) for e in ci.check(store, table, mapping).errors}
    assert errors == {(2, "customer_no"), (3, "card_no"), (5, "customer_no"), (5, "card_no"),
                      (6, "customer_no"), (6, "card_no")}  # fmt: skip


def test_a_kept_number_in_the_tills_own_format_is_skipped_by_the_till(store, tmp_path):
    rows = [["Kundennummer", "Nachname"], ["010000001", "Importiert"]]
    table, mapping = load(store, write_xlsx(tmp_path / "k.xlsx", rows))
    ci.commit(store, ci.check(store, table, mapping))
    assert customers.create(store, {"last_name": "Neu"})["customer_no"] == "010000002"


def test_one_bad_row_means_nothing_is_imported(store, tmp_path):
    rows = [["Nachname", "E-Mail"]] + [[f"Name{i}", f"n{i}@example.org"] for i in range(50)]
    rows[40][1] = "kaputt"
    table, mapping = load(store, write_xlsx(tmp_path / "k.xlsx", rows))
    report = ci.check(store, table, mapping)
    before = event_count(store)
    with pytest.raises(ci.ImportRejected) as err:
        ci.commit(store, report)
    assert "41" in str(err.value) and err.value.report is report
    assert customers.count(store) == 0 and event_count(store) == before
    result = ci.commit(store, report, skip_errors=True)
    assert len(result.created) == 49 and [s.row for s in result.skipped] == [41]


def test_a_clash_that_appears_after_the_check_rolls_back_everything(file_store, tmp_path):
    """GIVEN a checked file WHEN a till takes one of its card numbers before the commit
    THEN the commit fails and not one customer or event of the file is stored."""
    rows = [["Nachname", "Kundenkarte"]] + [[f"N{i}", f"CARD-{i}"] for i in range(30)]
    table, mapping = load(file_store, write_xlsx(tmp_path / "k.xlsx", rows))
    report = ci.check(file_store, table, mapping)
    till = file_store.clone()
    someone = customers.create(till, {"last_name": "Schneller"})
    customers.assign_card(till, someone["id"], "CARD-20")
    till.close()
    before = event_count(file_store)
    with pytest.raises(ci.ImportRejected, match="22"):  # row 22 holds CARD-20
        ci.commit(file_store, report)
    assert customers.count(file_store) == 1 and event_count(file_store) == before
    assert customers.by_number(file_store, "CARD-20")["id"] == someone["id"]


def test_unknown_groups_can_be_refused(store, tmp_path):
    rows = [["Nachname", "Kundengruppe"], ["A", "Neu"]]
    table, mapping = load(store, write_xlsx(tmp_path / "k.xlsx", rows))
    report = ci.check(store, table, mapping, create_groups=False)
    assert [(e.row, e.field) for e in report.errors] == [(2, "groups")]


# -- hostile and broken files -----------------------------------------------------------------
def assert_refused(store, source, pattern, **kwargs):
    before = event_count(store)
    with pytest.raises(ci.FileRefused, match=pattern):
        ci.import_file(store, source, **kwargs)
    assert customers.count(store) == 0 and event_count(store) == before


def test_a_formula_cell_refuses_the_file_and_names_the_cell(store, tmp_path):
    path = write_xlsx(tmp_path / "k.xlsx", [["Nachname", "Ort"], ["A", "Köln"],
                                            ["B", '=HYPERLINK("http://x","Köln")']])  # fmt: skip
    assert_refused(store, path, r"B3")


def test_files_that_are_not_xlsx_are_refused(store, tmp_path):
    text = tmp_path / "liste.xlsx"
    text.write_text("Nachname;Vorname\nMuster;Max\n")
    not_xlsx = re.escape(_("This is not an Excel workbook (.xlsx). Save the list in Excel as .xlsx."))
    assert_refused(store, text, not_xlsx)
    old_xls = re.escape(_("This is an old Excel file (.xls) or a password-protected workbook."
                          " Open it in Excel and save it as an Excel workbook (.xlsx) without a"
                          " password."))  # fmt: skip
    assert_refused(store, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600), old_xls)
    assert_refused(store, tmp_path / "missing.xlsx", "missing.xlsx")
    other_zip = io.BytesIO()
    with zipfile.ZipFile(other_zip, "w") as zf:
        zf.writestr("readme.txt", "hello")
    assert_refused(store, other_zip.getvalue(), not_xlsx)
    # a real workbook cut short
    good = write_xlsx(tmp_path / "g.xlsx", [["Nachname"], ["A"]]).read_bytes()
    assert_refused(store, good[: len(good) // 2], not_xlsx)


def _rewrite_member(data: bytes, name: str, content: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(
        out, "w", zipfile.ZIP_DEFLATED
    ) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, content if info.filename == name else src.read(info))
    return out.getvalue()


def test_a_zip_bomb_is_refused_before_parsing(store, tmp_path):
    good = write_xlsx(tmp_path / "g.xlsx", [["Nachname"], ["A"]]).read_bytes()
    sheet = zipfile.ZipFile(io.BytesIO(good)).read("xl/worksheets/sheet1.xml")
    # 60 MB of whitespace inside the sheet packs into ~60 kB
    bomb = _rewrite_member(good, "xl/worksheets/sheet1.xml",
                           sheet.replace(b"<sheetData>", b"<sheetData>" + b" " * 60_000_000))
    assert len(bomb) < 200_000
    assert_refused(store, bomb, "sheet1.xml")
    assert_refused(store, bomb, "10.0 MB", limits=ci.Limits(max_unpacked_bytes=10 * 2**20))


def test_entity_expansion_is_refused(store, tmp_path):
    """The billion-laughs attack inside the sheet XML is stopped by defusedxml."""
    good = write_xlsx(tmp_path / "g.xlsx", [["Nachname"], ["A"]]).read_bytes()
    sheet = zipfile.ZipFile(io.BytesIO(good)).read("xl/worksheets/sheet1.xml")
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE worksheet [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
        + sheet.replace(b"<t>A</t>", b"<t>&lol2;</t>")
    )
    assert b"&lol2;" in laughs
    assert_refused(store, _rewrite_member(good, "xl/worksheets/sheet1.xml", laughs),
                   "EntitiesForbidden")


def test_too_many_rows_or_columns_are_refused(store, tmp_path):
    rows = [["Nachname"]] + [[f"N{i}"] for i in range(60)]
    path = write_xlsx(tmp_path / "rows.xlsx", rows)
    assert_refused(store, path, "50", limits=ci.Limits(max_rows=50))
    wide = write_xlsx(tmp_path / "wide.xlsx", [["Nachname"] + [f"c{i}" for i in range(12)]])
    assert_refused(store, wide, r"\b10\b", limits=ci.Limits(max_columns=10))
    assert_refused(store, path, "1 kB", limits=ci.Limits(max_file_bytes=1024))


def test_a_lying_dimension_tag_does_not_size_the_read(store, tmp_path):
    good = write_xlsx(tmp_path / "g.xlsx", [["Nachname"], ["A"]]).read_bytes()
    sheet = zipfile.ZipFile(io.BytesIO(good)).read("xl/worksheets/sheet1.xml")
    lying = _rewrite_member(good, "xl/worksheets/sheet1.xml",
                            sheet.replace(b'<dimension ref="A1:A2" />',
                                          b'<dimension ref="A1:XFD1048576" />'))  # fmt: skip
    assert b"XFD1048576" in zipfile.ZipFile(io.BytesIO(lying)).read("xl/worksheets/sheet1.xml")
    result = ci.import_file(store, lying)
    assert len(result.created) == 1


def test_wrong_types_are_row_errors_and_nothing_is_imported(store, tmp_path):
    rows = [["Nachname", "E-Mail", "Geburtsdatum", "Newsletter"],
            ["Gut", "gut@example.org", "01.01.1990", "ja"],
            [dt.datetime(2020, 5, 1), True, "gestern", 7]]  # fmt: skip
    before = event_count(store)
    with pytest.raises(ci.ImportRejected):
        ci.import_file(store, write_xlsx(tmp_path / "k.xlsx", rows))
    assert customers.count(store) == 0 and event_count(store) == before


def test_unknown_sheet_and_empty_sheet_are_refused(store, tmp_path):
    path = write_xlsx(tmp_path / "k.xlsx", [["Nachname"], ["A"]])
    assert_refused(store, path, "Kunden", sheet="Tabelle2")
    empty = re.escape(_("The sheet {name!r} is empty.").format(name="Kunden"))
    assert_refused(store, write_xlsx(tmp_path / "e.xlsx", []), empty)


# -- the command ---------------------------------------------------------------------------
@pytest.fixture
def config(tmp_path) -> Path:
    path = tmp_path / "device.toml"
    path.write_text(
        '[device]\nstore_id = "laden"\ndevice_id = "till-1"\ndevice_no = 1\n'
        f'data_dir = "{tmp_path / "data"}"\n'
    )
    return path


def open_device_store(config: Path) -> Store:
    return Store(config.parent / "data" / "till-1.db", Identity("laden", "till-1", 1))


def test_cli_import_dry_run_then_import_with_progress(config, tmp_path, capsys):
    rows = [["Kunde", "Nachname", "E-Mail", "Fax"]] + [
        [f"A{i}", f"Name{i}", f"n{i}@example.org", "0"] for i in range(600)
    ]
    path = write_xlsx(tmp_path / "liste.xlsx", rows)
    args = ["--config", str(config), "customers", "import", str(path), "--map", "Kunde=customer_no"]
    assert cli.main(args + ["--dry-run"]) == 0
    out = capsys.readouterr()
    assert "A (Kunde)" in out.out and "customer_no" in out.out and "600" in out.out
    store = open_device_store(config)
    assert customers.count(store) == 0
    store.close()

    assert cli.main(args) == 0
    out = capsys.readouterr()
    assert "600/600" in out.err  # the tqdm bars
    assert "600" in out.out
    store = open_device_store(config)
    assert customers.count(store) == 600 and customers.by_number(store, "A599")
    store.close()

    # the same file again: every number exists now, nothing is imported
    assert cli.main(args) == 1
    out = capsys.readouterr()
    assert "A0" in out.out and "kiosk:" in out.err
    store = open_device_store(config)
    assert customers.count(store) == 600
    store.close()


def test_cli_refuses_a_hostile_file_with_a_message(config, tmp_path, capsys):
    path = write_xlsx(tmp_path / "k.xlsx", [["Nachname"], ["=1+1"]])
    assert cli.main(["--config", str(config), "customers", "import", str(path)]) == 1
    assert "A2" in capsys.readouterr().err


def test_kiosk_command_runs_as_a_program(config, tmp_path):
    path = write_xlsx(tmp_path / "k.xlsx", [["Nachname", "Ort"], ["Muster", "Köln"]])
    proc = subprocess.run(
        [sys.executable, "-m", "kiosk", "--config", str(config), "customers", "import",
         str(path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    store = open_device_store(config)
    assert customers.count(store) == 1
    store.close()
