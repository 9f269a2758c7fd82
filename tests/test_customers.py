"""Customer records: validation, mandatory fields, duplicates, cards, merge, erasure."""

from __future__ import annotations

import datetime as dt

import pytest

from kiosk.engine import customers, events, groups, questions, settings
from kiosk.engine.store import Identity, Store

MAX = {
    "gender": "m", "first_name": "max", "last_name": "MUSTERMANN", "birth_date": "12.03.1980",
    "email": "Max.Mustermann@Example.de", "mobile": "0171 2345678", "phone": "0221 123456",
    "street": "Hohe Straße", "house_no": "12a", "postcode": "50667", "city": "köln",
    "delivery_street": "Ringstr.", "delivery_house_no": "3", "delivery_postcode": "50674",
    "delivery_city": "Köln", "id_card": "l01x00t47", "email_consent": True,
    "provenance": "Zeitungsanzeige", "grouping": "Schützenverein",
    "observation": "Keine Zahlung per Scheck", "notes": "mag Gold",
}  # fmt: skip


def event_count(store) -> int:
    return store.db.execute("SELECT count(*) FROM events").fetchone()[0]


def test_create_normalises_the_full_record(store):
    c = customers.create(store, MAX)
    assert (c["first_name"], c["last_name"], c["city"]) == ("Max", "Mustermann", "Köln")
    assert c["email"] == "Max.Mustermann@example.de"
    assert c["mobile"] == "+491712345678" and c["phone"] == "+49221123456"
    assert customers.format_phone(c["mobile"]) == "0171 2345678"
    assert c["birth_date"] == "1980-03-12" and c["country"] is None
    assert c["customer_no"] == "010000001"  # device 01, first number
    assert c["home_store"] == "teststore" and c["created_by"] == "till-1"
    assert c["email_consent"] is True and c["email_consent_source"] == "till"
    assert dt.datetime.fromisoformat(c["email_consent_at"]).tzinfo is not None
    assert c["sms_consent"] is False and c["sms_consent_at"] is None
    assert c["observation"] == "Keine Zahlung per Scheck"


def test_only_last_name_is_mandatory_by_default(store):
    with pytest.raises(customers.ValidationError) as err:
        customers.create(store, {"first_name": "Ohne"})
    assert err.value.errors == {"last_name": "Nachname ist ein Pflichtfeld."} or set(
        err.value.errors
    ) == {"last_name"}
    assert customers.create(store, {"last_name": "Nur"})["last_name"] == "Nur"


def test_mandatory_fields_are_configurable(store):
    settings.set(store, "customer.mandatory_fields", ["last_name", "email", "postcode"])
    with pytest.raises(customers.ValidationError) as err:
        customers.create(store, {"last_name": "Meier"})
    assert set(err.value.errors) == {"email", "postcode"}
    with pytest.raises(settings.SettingError):
        settings.set(store, "customer.mandatory_fields", ["shoe"])


@pytest.mark.parametrize(
    "field, value",
    [
        ("email", "max@"),
        ("email", "max mustermann@example.de"),
        ("phone", "12"),
        ("mobile", "0171 23"),
        ("postcode", "5066"),
        ("birth_date", "31.02.1980"),
        ("birth_date", "01.01.2999"),
        ("country", "Deutschland"),
        ("gender", "x"),
        ("id_card", "ab"),
        ("last_name", "x" * 101),
        ("notes", "bell\x07"),
        ("email_consent", "vielleicht"),
    ],
)
def test_bad_input_gets_a_message_and_changes_nothing(store, field, value):
    before = event_count(store)
    with pytest.raises(customers.ValidationError) as err:
        customers.create(store, {"last_name": "Test", field: value})
    assert field in err.value.errors and err.value.errors[field]
    assert event_count(store) == before and customers.count(store) == 0


def test_messages_are_german(store):
    with pytest.raises(customers.ValidationError) as err:
        customers.create(store, {"last_name": "T", "postcode": "123"})
    assert err.value.errors["postcode"] == "Eine deutsche Postleitzahl hat fünf Ziffern."


def test_foreign_postcode_and_phone(store):
    c = customers.create(
        store, {"last_name": "Dupont", "country": "fr", "postcode": "75017", "phone": "01 42 68 53 00"}
    )
    assert c["country"] == "FR" and c["phone"] == "+33142685300"


def test_unknown_fields_are_refused(store):
    with pytest.raises(customers.ValidationError) as err:
        customers.create(store, {"last_name": "T", "shoe": 42})
    assert "shoe" in err.value.errors


def test_id_card_number_is_encrypted_at_rest(file_store, tmp_path):
    c = customers.create(file_store, {"last_name": "Gold", "id_card": "L01X00T47"})
    assert c["id_card_masked"] == "••••••T47" and "L01X00T47" not in str(c)
    assert customers.reveal_id_card(file_store, c["id"]) == "L01X00T47"
    file_store.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    raw = (tmp_path / "device.db").read_bytes()
    assert b"L01X00T47" not in raw
    other = Store(tmp_path / "other.db", Identity("teststore", "till-2", 2), secret_key=b"k" * 43)
    [ev] = events.history(file_store)
    events.apply(other, ev)
    with pytest.raises(ValueError, match="wrong store key"):
        customers.reveal_id_card(other, c["id"])


def test_duplicate_warning_by_email_phone_and_sound_alike_name(store):
    customers.create(store, MAX)
    cases = [
        ({"last_name": "Anders", "email": "max.mustermann@example.de"}, "e-mail"),
        ({"last_name": "Anders", "phone": "+49 171 2345678"}, "phone"),
        ({"last_name": "Mustermann", "first_name": "Max", "postcode": "50667"}, "name"),
    ]
    for data, _why in cases:
        with pytest.raises(customers.PossibleDuplicates) as dup:
            customers.create(store, data)
        assert dup.value.candidates[0].customer_no == "010000001"
    # a namesake elsewhere is no duplicate; a different birth date neither
    customers.create(store, {"last_name": "Mustermann", "first_name": "Max", "postcode": "80331",
                             "birth_date": "1.1.1990"})  # fmt: skip
    customers.create(store, {"last_name": "Mustermann", "first_name": "Max", "postcode": "10115",
                             "birth_date": "2.2.1995"})  # fmt: skip
    assert customers.create(store, cases[0][0], force=True)["last_name"] == "Anders"


def test_meier_mayer_are_suspected_duplicates(store):
    customers.create(store, {"first_name": "Anna", "last_name": "Meier", "postcode": "80331"})
    with pytest.raises(customers.PossibleDuplicates) as dup:
        customers.create(store, {"first_name": "Anna", "last_name": "Mayer", "postcode": "80331"})
    assert dup.value.candidates[0].name == "Anna Meier"


def test_update_writes_only_changed_fields_and_checks_duplicates(store):
    a = customers.create(store, {"last_name": "Erste", "email": "a@example.de"})
    b = customers.create(store, {"last_name": "Zweite"})
    customers.update(store, b["id"], {"last_name": "Zweite", "city": "Bonn"})
    ev = events.history(store, "customer.updated")[0]
    assert ev.payload["fields"] == {"city": "Bonn"}
    n = event_count(store)
    assert customers.update(store, b["id"], {"city": "Bonn"})["city"] == "Bonn"
    assert event_count(store) == n  # nothing changed, no event
    with pytest.raises(customers.PossibleDuplicates):
        customers.update(store, b["id"], {"email": "A@example.de"})
    assert customers.get(store, a["id"])["email"] == "a@example.de"


def test_consent_change_records_date_and_source(store, frozen_clock):
    store.clock = frozen_clock
    c = customers.create(store, {"last_name": "Frei"})
    frozen_clock.advance(days=3)
    c = customers.update(store, c["id"], {"sms_consent": True}, source="clipad")
    assert c["sms_consent"] and c["sms_consent_source"] == "clipad"
    assert c["sms_consent_at"].startswith("2026-05-07T10:30")


def test_custom_questions(store):
    questions.define(store, "shoe_size", "Schuhgröße", "number")
    questions.define(store, "shirt_size", "Hemdgröße", "choice", ["S", "M", "L", "XL"],
                     mandatory=True)  # fmt: skip
    with pytest.raises(customers.ValidationError) as err:
        customers.create(store, {"last_name": "Fit", "answers": {"shoe_size": "43,5"}})
    assert set(err.value.errors) == {"answers.shirt_size"}
    with pytest.raises(customers.ValidationError) as err:
        customers.create(store, {"last_name": "Fit", "answers": {"shirt_size": "XXXL"}})
    assert "answers.shirt_size" in err.value.errors
    c = customers.create(store, {"last_name": "Fit", "answers": {"shoe_size": "43,5", "shirt_size": "L"}})
    assert c["answers"] == {"shoe_size": "43.5", "shirt_size": "L"}
    c = customers.update(store, c["id"], {"answers": {"shirt_size": "XL"}})
    assert c["answers"]["shirt_size"] == "XL"
    with pytest.raises(questions.AnswerError):
        questions.define(store, "Shoe Size", "x")


def test_cards_and_lookup_by_number(store):
    c = customers.create(store, {"last_name": "Karte"})
    customers.assign_card(store, c["id"], "2000000000015")
    other = customers.create(store, {"last_name": "Andere"})
    assert customers.by_number(store, "2000000000015")["id"] == c["id"]
    assert customers.by_number(store, c["customer_no"])["id"] == c["id"]
    assert customers.find(store, "2000000000015")[0].id == c["id"]
    with pytest.raises(customers.ValidationError):
        customers.assign_card(store, other["id"], "2000000000015")
    with pytest.raises(customers.NotFound):
        customers.by_number(store, "999")
    customers.set_card_status(store, "2000000000015", "blocked")
    assert customers.get(store, c["id"])["cards"][0]["status"] == "blocked"


def test_merge_moves_everything_to_the_survivor(store):
    vip = groups.save(store, "VIP", discount="10")
    keep = customers.create(store, {"first_name": "Eva", "last_name": "Schmidt", "postcode": "10115"})
    dup = customers.create(
        store,
        {"first_name": "Eva", "last_name": "Schmitt", "email": "eva@example.de", "mobile": "015112345678"},
        force=True,
    )
    customers.assign_card(store, dup["id"], "2000000000022")
    groups.assign(store, dup["id"], vip)
    merged = customers.merge(store, keep["id"], dup["id"])
    assert merged["email"] == "eva@example.de" and merged["postcode"] == "10115"
    assert [c["card_no"] for c in merged["cards"]] == ["2000000000022"]
    assert groups.of_customer(store, keep["id"]) == [vip]
    assert customers.get(store, dup["id"])["id"] == keep["id"]
    assert customers.by_number(store, dup["customer_no"])["id"] == keep["id"]
    assert [h.id for h in customers.find(store, "eva")] == [keep["id"]]
    with pytest.raises(customers.ValidationError):
        customers.merge(store, keep["id"], dup["id"])


def test_erasure_wipes_personal_data_everywhere(store):
    c = customers.create(store, MAX)
    customers.erase(store, c["id"])
    with pytest.raises(customers.NotFound):
        customers.get(store, c["id"])
    assert customers.find(store, "mustermann") == []
    row = store.db.execute("SELECT * FROM customers WHERE id = ?", [c["id"]]).fetchone()
    assert "Mustermann" not in str(row) and "L01X" not in str(row)
    logged = " ".join(e.payload.__repr__() for e in events.history(store))
    assert "Mustermann" not in logged and "example.de" not in logged
    # a late edit (e.g. from an offline till) cannot bring anything back
    future_ms = int(dt.datetime.now(dt.timezone.utc).timestamp() * 1000) + 3_600_000
    late = events.Event(
        id=events.new_id(), device="till-2", hlc=f"{future_ms:015d}.00000.till-2",
        type="customer.updated", v=1, payload={"id": c["id"], "fields": {"last_name": "Zurück"}},
        created_at="2026-11-23T10:00:00.000+00:00",
    )  # fmt: skip
    events.apply(store, late)
    row = store.db.execute("SELECT last_name, erased_at FROM customers WHERE id = ?", [c["id"]]).fetchone()
    assert row[0] is None and row[1]
