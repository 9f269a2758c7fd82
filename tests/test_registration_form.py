"""The printable paper registration form (PDF): shop header, the shop's mandatory fields,
consent boxes and custom questions, German text with umlauts."""

from __future__ import annotations

import io

from pypdf import PdfReader

from kiosk import cli
from kiosk.engine import questions, registration_form, settings


def _text(data: bytes) -> str:
    reader = PdfReader(io.BytesIO(data))
    return "\n".join(page.extract_text() for page in reader.pages)


def test_form_shows_shop_mandatory_fields_and_questions(store):
    settings.set(store, "shop.name", "Juwelier Größner")
    settings.set(store, "shop.address", "Hohe Straße 1\n50667 Köln")
    settings.set(store, "customer.mandatory_fields", ["last_name", "email"])
    questions.define(store, "shoe_size", "Schuhgröße", "choice", ["38", "39", "40"])
    data = registration_form.render(store)
    assert data.startswith(b"%PDF")
    text = _text(data)
    assert "Juwelier Größner" in text and "50667 Köln" in text
    assert "Kundenanmeldung" in text and "Schuhgröße" in text
    assert "Nachname *" in text and "E-Mail *" in text
    assert "Vorname *" not in text  # only the configured fields are starred
    assert "Werbung per E-Mail" in text and "Unterschrift" in text


def test_changing_mandatory_fields_changes_the_form(store):
    before = _text(registration_form.render(store))
    settings.set(store, "customer.mandatory_fields", ["last_name", "first_name"])
    after = _text(registration_form.render(store))
    assert "Vorname *" not in before and "Vorname *" in after


def test_cli_writes_the_form(tmp_path, capsys):
    config = tmp_path / "device.toml"
    config.write_text('[device]\nstore_id = "laden"\ndevice_id = "till-1"\ndevice_no = 1\n'
                      f'data_dir = "{tmp_path / "data"}"\n')  # fmt: skip
    out = tmp_path / "anmeldung.pdf"
    assert cli.main(["--config", str(config), "customers", "form", str(out)]) == 0
    assert out.read_bytes().startswith(b"%PDF") and str(out) in capsys.readouterr().out
