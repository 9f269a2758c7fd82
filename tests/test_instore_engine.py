"""Engine side of the clipad, the in-store survey, directives and the customer display."""

from __future__ import annotations

import datetime as dt

import pytest

from kiosk.engine import catalog, clipad, customers, directives, display, events, sale, surveys
from kiosk.engine.store import Identity, Store

UTC = dt.timezone.utc


def _replica(tmp_path, name, no):
    return Store(tmp_path / f"{name}.db", Identity("teststore", name, no))


def _sync(src, dst):
    for ev in events.history(src, limit=10**6):
        events.apply(dst, ev)


# -- clipad ------------------------------------------------------------------------------------
def test_clipad_round_trip_between_till_and_tablet(store, tmp_path):
    till = store
    tablet = _replica(tmp_path, "clipad-1", 5)
    other = customers.create(till, {"last_name": "Fremd", "email": "fremd@example.org"})
    anna = customers.create(till, {"first_name": "Anna", "last_name": "Kunde", "city": "Köln"})
    sid = clipad.request(till, "clipad-1", customer_id=anna["id"],
                         prefill={"first_name": "Anna", "last_name": "Kunde", "notes": "secret"})
    assert clipad.waiting(tablet, "clipad-1") is None  # nothing has reached the tablet yet
    _sync(till, tablet)
    session = clipad.waiting(tablet, "clipad-1")
    assert session.id == sid and session.prefill == {"first_name": "Anna", "last_name": "Kunde"}
    assert clipad.waiting(tablet, "clipad-2") is None
    with pytest.raises(customers.ValidationError) as exc:
        clipad.submit(tablet, sid, {"email": "anna(at)example"})
    assert "email" in exc.value.errors and clipad.get(tablet, sid).status == "requested"
    clipad.submit(tablet, sid, {"email": "anna@example.org", "email_consent": True,
                                "mobile": "0171 2345678"})
    with pytest.raises(clipad.ClipadError):
        clipad.submit(tablet, sid, {"email": "x@example.org"})
    assert clipad.waiting(tablet, "clipad-1") is None  # cleared after validation
    _sync(tablet, till)
    (done,) = clipad.finished_for_till(till, "till-1")
    assert done.customer_id == anna["id"]
    got = customers.get(till, anna["id"])
    assert got["email"] == "anna@example.org" and got["email_consent"] is True
    assert got["email_consent_source"] == "clipad" and got["mobile"] == "+491712345678"
    assert customers.get(till, other["id"])["email"] == "fremd@example.org"
    tablet.close()


def test_clipad_cancel_and_expiry_write_nothing(store, frozen_clock):
    store.clock = frozen_clock
    before = customers.count(store)
    sid = clipad.request(store, "clipad-1")
    clipad.cancel(store, sid)
    assert clipad.waiting(store, "clipad-1") is None and customers.count(store) == before
    clipad.request(store, "clipad-1")
    frozen_clock.advance(minutes=11)
    assert clipad.waiting(store, "clipad-1") is None
    new = clipad.request(store, "clipad-1")
    record = clipad.submit(store, new, {"last_name": "Neu", "first_name": "Nina"})
    assert record["created_by"] == "till-1" and customers.count(store) == before + 1


# -- surveys -----------------------------------------------------------------------------------
QUESTIONS = [
    {"id": "how", "text": "Wie haben Sie von uns erfahren?", "kind": "choice",
     "options": ["Zeitung", "Freunde", "Internet"], "required": True},
    {"id": "stars", "text": "Wie zufrieden sind Sie?", "kind": "scale"},
    {"id": "what", "text": "Was fehlt?", "kind": "multi", "options": ["Uhren", "Ketten", "Ringe"]},
    {"id": "note", "text": "Anmerkung", "kind": "text"},
]


def test_survey_definition_is_checked(store):
    with pytest.raises(surveys.SurveyError):
        surveys.save(store, "", QUESTIONS)
    with pytest.raises(surveys.SurveyError):
        surveys.save(store, "Umfrage", [{"text": "Nur eine Antwort?", "kind": "choice", "options": ["Ja"]}])
    with pytest.raises(surveys.SurveyError):
        surveys.save(store, "Umfrage", [{"text": "x", "kind": "essay"}])
    assert surveys.all_surveys(store) == []


def test_survey_runs_per_store_answers_skips_and_results(store, tmp_path):
    old = surveys.save(store, "Alt", QUESTIONS[:1])
    sid = surveys.save(store, "Herbst", QUESTIONS, stores=["teststore"])
    surveys.save(store, "Anderswo", QUESTIONS[:1], stores=["bonn"])
    assert surveys.active_for(store, "teststore").id == sid
    surveys.save(store, "Herbst", QUESTIONS, stores=["teststore"], active=False, survey_id=sid)
    assert surveys.active_for(store, "teststore").id == old
    surveys.save(store, "Herbst", QUESTIONS, stores=["teststore"], survey_id=sid)

    with pytest.raises(surveys.SurveyError):
        surveys.answer(store, sid, {"stars": "4"})  # "how" is required
    with pytest.raises(surveys.SurveyError):
        surveys.answer(store, sid, {"how": "Radio"})
    surveys.answer(store, sid, {"how": "Zeitung", "stars": "5", "what": ["Ringe", "Uhren"]}, sale_id="s1")
    surveys.answer(store, sid, {"how": "Freunde", "stars": "4", "note": " mehr  Parkplätze "}, sale_id="s2")
    surveys.answer(store, sid, {}, skipped=True, sale_id="s3")
    with pytest.raises(surveys.SurveyError):
        surveys.answer(store, sid, {"how": "Zeitung"}, sale_id="s1")
    res = surveys.results(store, sid)
    assert (res["answered"], res["skipped"]) == (2, 1)
    assert res["counts"]["how"] == {"Zeitung": 1, "Freunde": 1, "Internet": 0}
    assert res["counts"]["stars"]["5"] == 1 and res["counts"]["what"]["Uhren"] == 1
    assert res["texts"]["note"] == ["mehr Parkplätze"]

    # a second device answered s4 offline too: every replica keeps the same single answer
    survey_dev = _replica(tmp_path, "survey-1", 6)
    _sync(store, survey_dev)
    surveys.answer(survey_dev, sid, {"how": "Internet"}, sale_id="s4")
    surveys.answer(store, sid, {"how": "Zeitung"}, sale_id="s4")
    _sync(survey_dev, store)
    _sync(store, survey_dev)
    rows = lambda s: s.db.execute("SELECT event_id, answers FROM survey_answers WHERE sale_id = 's4'").fetchall()  # noqa: E731
    assert rows(store) == rows(survey_dev) and len(rows(store)) == 1
    survey_dev.close()


def test_survey_device_offers_the_paired_tills_latest_sale(store, frozen_clock):
    store.clock = frozen_clock
    sid = surveys.save(store, "Kurz", QUESTIONS[:1])
    pid = catalog.save_product(store, "Kette", 3000)
    draft = sale.open_draft(store)
    sale.add_product(store, draft, pid)
    sale.add_payment(store, draft, "cash", 5000)
    sold = sale.complete(store, draft)
    offer = surveys.sale_to_survey(store, "till-1", frozen_clock())
    assert offer["sale_id"] == sold.id and offer["survey"].id == sid
    assert surveys.sale_to_survey(store, "till-2", frozen_clock()) is None
    surveys.answer(store, sid, {}, skipped=True, sale_id=sold.id)
    assert surveys.sale_to_survey(store, "till-1", frozen_clock()) is None
    frozen_clock.advance(minutes=6)
    assert surveys.sale_to_survey(store, "till-1", frozen_clock()) is None


# -- directives and the nudge -----------------------------------------------------------------
def test_directives_by_store_cashier_and_time(store, frozen_clock):
    from kiosk.engine import settings

    store.clock = frozen_clock
    now = frozen_clock()
    everyone = directives.publish(store, "Heute 20 % auf Uhren", priority=1)
    directives.publish(store, "Nur Köln", store_id="koeln")
    directives.publish(store, "Maria: bitte Kasse zählen", store_id="teststore", cashier="maria", priority=5)
    directives.publish(store, "Ab morgen", valid_from=now + dt.timedelta(days=1))
    expired = directives.publish(store, "Vorbei", valid_from=now - dt.timedelta(days=2),
                                 valid_until=now - dt.timedelta(days=1))
    texts = lambda **kw: [d.text for d in directives.current(store, store_id="teststore", **kw)]  # noqa: E731
    assert texts() == ["Heute 20 % auf Uhren"]
    assert texts(cashier="maria") == ["Maria: bitte Kasse zählen", "Heute 20 % auf Uhren"]
    directives.withdraw(store, everyone)
    assert texts() == []
    assert expired and texts(now=now + dt.timedelta(days=1, hours=1)) == ["Ab morgen"]
    with pytest.raises(directives.DirectiveError):
        directives.publish(store, " ")
    with pytest.raises(directives.DirectiveError):
        directives.publish(store, "x", valid_until=now - dt.timedelta(hours=1))
    assert directives.nudge(store, customer_attached=False) == "Kundendatensatz anlegen?"
    assert directives.nudge(store, customer_attached=True) is None
    settings.set(store, "till.nudge_no_customer", False)
    assert directives.nudge(store, customer_attached=False) is None


# -- customer display -------------------------------------------------------------------------
def test_display_snapshot_mirrors_the_quote_and_round_trips(store):
    from kiosk.engine import settings

    anna = customers.create(store, {"first_name": "Anna", "last_name": "Display"})
    pid = catalog.save_product(store, "Uhr", 12_900)
    draft = sale.open_draft(store)
    sale.add_product(store, draft, pid, 2)
    sale.attach_customer(store, draft, anna["id"])
    snap = display.snapshot(store, sale.quote(store, draft), 7, qr=[("Formular", "http://hub/f/1")])
    assert snap.lines[0].name == "Uhr" and snap.lines[0].qty == 2 and snap.total_cents == 25_800
    assert snap.greeting == "Hallo Anna" and snap.points_balance is not None
    assert display.Snapshot.decode(snap.encode()) == snap
    settings.set(store, "display.show_points", False)
    assert display.snapshot(store, sale.quote(store, draft), 8).points_balance is None
    assert display.snapshot(store, None, 9).idle
    for garbage in (b"[]", b"{}", b"not json", b'{"till": "t", "seq": 1, "bogus": 1}'):
        with pytest.raises((ValueError, TypeError)):
            display.Snapshot.decode(garbage)
    with pytest.raises(settings.SettingError):
        settings.set(store, "display.media", [{"kind": "flash", "src": "x.swf"}])
    settings.set(store, "display.media", [{"kind": "video", "src": "/media/loop.mp4", "seconds": 30}])
