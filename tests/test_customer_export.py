"""Customer export to Excel: what a shop owner gets, that it reads back in, and that shop text
cannot turn into formulas. Also ``kiosk customers export`` with its progress bar."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from openpyxl import load_workbook

from kiosk import cli
from kiosk.engine import customer_export, customers, groups, questions
from kiosk.engine import customer_import as ci
from kiosk.engine.store import Identity, Store
from kiosk.i18n import _


def _sheet(path: Path):
    wb = load_workbook(path)
    ws = wb.active
    rows = list(ws.iter_rows(values_only=True))
    return ws, rows[0], [dict(zip(rows[0], r)) for r in rows[1:]]


def _anna(store):
    questions.define(store, "shoe_size", "Schuhgröße", "choice", ["38", "39"])
    vip = groups.save(store, "VIP")
    anna = customers.create(
        store,
        {"first_name": "Anna", "last_name": "Müller", "birth_date": "12.03.1980",
         "email": "anna@example.org", "email_consent": True, "city": "Köln",
         "id_card": "L01X00T47", "answers": {"shoe_size": "39"}},
    )  # fmt: skip
    groups.assign(store, anna["id"], vip)
    customers.assign_card(store, anna["id"], "KC000123")
    return anna


def test_export_writes_typed_german_columns(store, tmp_path):
    anna = _anna(store)
    out = tmp_path / "kunden.xlsx"
    assert customer_export.export(store, out) == 1
    ws, header, rows = _sheet(out)
    assert ws.title == _("Customers") == "Kunden"
    assert header[0] == "Kundennummer" and "Schuhgröße" in header
    row = rows[0]
    assert row["Kundennummer"] == anna["customer_no"]
    assert row["Nachname"] == "Müller" and row["Ort"] == "Köln"
    assert row["Geburtsdatum"] == dt.datetime(1980, 3, 12)  # a real Excel date
    assert row["Schuhgröße"] == "39"
    assert row["Kundengruppen"] == "VIP" and row["Kartennummern"] == "KC000123"
    # the ID card number leaves the till only masked
    cells = " ".join(str(v) for v in row.values())
    assert "L01X00T47" not in cells and row["Ausweisnummer (maskiert)"].endswith("47")
    assert ws.freeze_panes == "A2" and ws.auto_filter.ref.startswith("A1:")


def test_export_reads_back_through_the_import(store, tmp_path, frozen_clock):
    _anna(store)
    customers.create(store, {"first_name": "Jörg", "last_name": "Weiß", "postcode": "50667"})
    out = tmp_path / "kunden.xlsx"
    customer_export.export(store, out)
    other = Store(tmp_path / "other.db", Identity("laden", "till-2", 2))
    questions.define(other, "shoe_size", "Schuhgröße", "choice", ["38", "39"])
    table = ci.read_workbook(out)
    mapping = ci.propose_mapping(other, table)
    report = ci.check(other, table, mapping)
    result = ci.commit(other, report)
    assert not result.skipped and customers.count(other) == 2
    anna = customers.find(other, "Müller Anna")[0]
    got = customers.get(other, anna.id)
    assert got["email"] == "anna@example.org" and got["answers"] == {"shoe_size": "39"}
    assert got["email_consent"] is True
    other.close()


def test_shop_text_never_becomes_a_formula(store, tmp_path):
    customers.create(store, {"last_name": "=HYPERLINK(\"http://evil\",\"x\")",
                             "notes": "+49 221 123", "city": "@SUM(A1)"}, force=True)  # fmt: skip
    out = tmp_path / "k.xlsx"
    customer_export.export(store, out)
    wb = load_workbook(out)
    for row in wb.active.iter_rows(min_row=2):
        for cell in row:
            assert cell.data_type != "f", cell.coordinate


def test_export_by_query_only_exports_matches(store, tmp_path):
    customers.create(store, {"last_name": "Meier", "city": "Bonn"})
    customers.create(store, {"last_name": "Schulz", "city": "Köln"})
    out = tmp_path / "k.xlsx"
    assert customer_export.export(store, out, query="Schulz") == 1
    assert [r["Nachname"] for r in _sheet(out)[2]] == ["Schulz"]


def test_cli_export_prints_the_count_and_a_progress_bar(tmp_path, capsys):
    config = tmp_path / "device.toml"
    config.write_text('[device]\nstore_id = "laden"\ndevice_id = "till-1"\ndevice_no = 1\n'
                      f'data_dir = "{tmp_path / "data"}"\n')  # fmt: skip
    store = Store(tmp_path / "data" / "till-1.db", Identity("laden", "till-1", 1))
    customers.create_many(store, [{"last_name": f"Kunde{i}"} for i in range(1200)])
    store.close()
    out = tmp_path / "export.xlsx"
    assert cli.main(["--config", str(config), "customers", "export", str(out)]) == 0
    captured = capsys.readouterr()
    assert "1200" in captured.out and "1200/1200" in captured.err
    assert len(_sheet(out)[2]) == 1200
