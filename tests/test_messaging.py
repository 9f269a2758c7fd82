"""Who may get what: consent, audiences, campaigns, unsubscribe, idempotent automations."""

from __future__ import annotations

import datetime as dt

import pytest

from kiosk.engine import customers, events, groups, messages_outbox, messaging, settings
from kiosk.engine.messaging import Filter
from kiosk.engine.store import Identity, Store
from tests.support.shop import sell


def _customer(store, last, *, email=True, sms=False, **more):
    data = {"last_name": last, "first_name": more.pop("first_name", "Anna"),
            "email": f"{last.lower()}@example.org", "mobile": more.pop("mobile", None),
            "email_consent": email, "sms_consent": sms, **more}  # fmt: skip
    return customers.create(store, {k: v for k, v in data.items() if v is not None}, force=True)


def _pending(store):
    return messages_outbox.pending(store, limit=10_000)


def test_marketing_needs_consent_transactional_does_not(store):
    yes = _customer(store, "Yes", email=True)
    no = _customer(store, "No", email=False)
    assert messaging.send_to_customer(store, no["id"], "email", "promotion", "Hallo").reason == "no_consent"
    assert messaging.send_to_customer(store, no["id"], "email", "repair_ready", "Fertig").message_id
    assert messaging.send_to_customer(store, yes["id"], "email", "promotion", "Hallo {first_name}").message_id
    bodies = sorted(m.body for m in _pending(store))
    assert bodies == ["Fertig", "Hallo Anna"]
    with pytest.raises(messaging.MessagingError):
        messaging.send_to_customer(store, yes["id"], "email", "spam", "x")


def test_audience_combines_filters_and_consent(store):
    vip = groups.save(store, "VIP")
    a = _customer(store, "Alpha", city="Köln", birth_date="12.03.1980")
    b = _customer(store, "Beta", city="Köln", email=False)
    c = _customer(store, "Gamma", city="Bonn")
    groups.assign(store, a["id"], vip)
    groups.assign(store, c["id"], vip)
    koeln = [Filter("city", "=", "Köln")]
    assert messaging.audience(store, koeln, "email") == [a["id"]]  # Beta has no consent
    assert set(messaging.audience(store, [Filter("group", "=", "vip")], "email")) == {a["id"], c["id"]}
    assert messaging.audience(store, [Filter("birth_month", "=", "3"), *koeln], "email") == [a["id"]]
    assert messaging.audience(store, [Filter("group", "!=", "VIP")], "email") == []
    assert b["id"] not in messaging.audience(store, [], "email")
    for filters in ([], koeln, [Filter("group", "=", "vip")], [Filter("group", "!=", "VIP")]):
        ids = messaging.audience(store, filters, "email")
        assert messaging.audience_count(store, filters, "email") == len(ids)
        # the preview's reader: the first by number, by sorting or by walking the number index
        for count in (len(ids), 50_000):
            assert messaging.first_of_audience(store, filters, "email", count) == (
                ids[0] if ids else None)
    with pytest.raises(messaging.MessagingError):
        messaging.audience(store, [Filter("city", "=", "x")] * 6, "email")
    with pytest.raises(messaging.MessagingError):
        messaging.audience(store, [Filter("id_card_enc", "=", "x")], "email")
    with pytest.raises(messaging.MessagingError):
        messaging.audience(store, [Filter("city", "; DROP TABLE customers", "x")], "email")


def test_campaign_preview_then_send_twice_queues_once(store):
    for i in range(30):
        _customer(store, f"Kunde{i:02d}", email=i % 3 != 0)
    cid = messaging.create_campaign(store, "Sommer", "email", [Filter("last_name", "starts", "Kunde")],
                                    "Hallo {first_name} {last_name}", subject="Sommerangebote")
    count, text = messaging.preview(store, cid)
    assert count == 20 and text == "Hallo Anna Kunde01"
    assert messaging.send_campaign(store, cid) == 20
    assert messaging.send_campaign(store, cid) == 0  # a restart never sends twice
    assert len(_pending(store)) == 20


def test_sms_campaign_is_short_and_carries_the_sender(store):
    settings.set(store, "messaging.sender_name", "Goldschmied")
    _customer(store, "Lang", sms=True, mobile="0171 2345678")
    cid = messaging.create_campaign(store, "SMS", "sms", [], "x" * 400)
    assert messaging.send_campaign(store, cid) == 1
    (msg,) = _pending(store)
    assert msg.channel == "sms" and msg.recipient == "+491712345678"
    assert msg.body.startswith("Goldschmied: ") and len(msg.body) == messaging.SMS_CAMPAIGN_MAX


def test_campaign_input_is_checked_before_anything_is_written(store):
    before = len(events.history(store, limit=10**6))
    for bad in [dict(name="", channel="email", subject="s"), dict(name="x", channel="fax", subject="s"),
                dict(name="x", channel="email", subject="")]:
        with pytest.raises(messaging.MessagingError):
            messaging.create_campaign(store, bad["name"], bad["channel"], [], "Text", subject=bad["subject"])
    assert len(events.history(store, limit=10**6)) == before


def test_unsubscribe_link_and_stop_reply_withdraw_consent(store):
    a = _customer(store, "Link", sms=True, mobile="0171 1111111")
    token = messaging.unsubscribe_token(store, a["id"], "email")
    with pytest.raises(messaging.MessagingError):
        messaging.unsubscribe(store, token[:-1] + ("0" if token[-1] != "0" else "1"))
    got = messaging.unsubscribe(store, token)
    assert got["email_consent"] is False and got["email_consent_source"] == "unsubscribe"
    assert messaging.inbound_sms(store, "+49 171 1111111", "Hallo") == []
    assert messaging.inbound_sms(store, "+49 171 1111111", " STOP ") == [a["id"]]
    assert customers.get(store, a["id"])["sms_consent"] is False


def test_birthday_run_is_idempotent_and_issues_a_gift_card(store, frozen_clock):
    store.clock = frozen_clock  # 2026-05-04 12:30 Berlin
    settings.set(store, "automation.birthday", {"active": True, "channel": "email", "hour": 9,
                                                "giftcard_cents": 1000, "giftcard_days": 30,
                                                "text": "Alles Gute, {first_name}! Code {code}"})
    bday = _customer(store, "Geburtstag", birth_date="04.05.1990")
    _customer(store, "Ohne", birth_date="04.05.1991", email=False)
    _customer(store, "Andermal", birth_date="05.05.1990")
    first = messaging.run_birthdays(store, frozen_clock())
    assert len(first) == 1
    (msg,) = _pending(store)
    assert msg.recipient == bday["email"] and msg.body.startswith("Alles Gute, Anna! Code 8")
    assert messaging.run_birthdays(store, frozen_clock()) == []  # second run: nothing new
    assert store.db.execute("SELECT count(*) FROM giftcards").fetchone()[0] == 1


def test_birthday_run_waits_for_the_send_hour(store, frozen_clock):
    frozen_clock.now = dt.datetime(2026, 5, 4, 5, 0, tzinfo=dt.timezone.utc)  # 07:00 Berlin
    store.clock = frozen_clock
    settings.set(store, "automation.birthday", {"active": True, "channel": "email", "hour": 9,
                                                "giftcard_cents": 0, "text": "Hallo"})
    _customer(store, "Frueh", birth_date="04.05.1990")
    assert messaging.run_birthdays(store, frozen_clock()) == []
    frozen_clock.advance(hours=2)
    assert len(messaging.run_birthdays(store, frozen_clock())) == 1


@pytest.mark.parametrize(("mode", "channels"), [
    ("email", ["email"]), ("sms", ["sms"]), ("email_then_sms", ["email"]),
    ("sms_then_email", ["sms"]), ("both", ["email", "sms"]),
])
def test_giftcard_reminder_modes(store, frozen_clock, mode, channels):
    store.clock = frozen_clock
    settings.set(store, "automation.giftcard_reminder",
                 {"active": True, "mode": mode, "days_before": 14, "text": "Gutschein {code} bis {date}"})
    a = _customer(store, "Karte", sms=True, mobile="0171 2222222")
    cards = [("9000001", a["id"], "2026-05-10"), ("9000002", a["id"], "2026-08-01")]
    sent = messaging.run_giftcard_reminders(store, frozen_clock(), cards)
    assert sorted(m.channel for m in _pending(store)) == sorted(channels) and len(sent) == len(channels)
    assert all("9000001 bis 10.05.2026" in m.body for m in _pending(store))
    assert messaging.run_giftcard_reminders(store, frozen_clock(), cards) == []


def test_fallback_channel_when_first_has_no_address(store, frozen_clock):
    store.clock = frozen_clock
    settings.set(store, "automation.giftcard_reminder",
                 {"active": True, "mode": "email_then_sms", "days_before": 14, "text": "{code}"})
    a = customers.create(store, {"last_name": "NurHandy", "mobile": "0171 3333333"}, force=True)
    messaging.run_giftcard_reminders(store, frozen_clock(), [("9000003", a["id"], "2026-05-06")])
    assert [m.channel for m in _pending(store)] == ["sms"]


def test_message_events_replicate_without_duplicates(store, tmp_path):
    a = _customer(store, "Replika")
    messaging.send_to_customer(store, a["id"], "email", "promotion", "Hi", key="k1")
    hub = Store(tmp_path / "hub.db", Identity("teststore", "hub", 99))
    for ev in events.history(store, limit=10**6) * 2:
        events.apply(hub, ev)
    assert messaging.already_queued(hub, "k1")
    assert len(messages_outbox.pending(hub)) == 1
    hub.close()


# -- runs that issue vouchers -------------------------------------------------------------------


def test_gift_voucher_run_preview_then_confirm_once(store, frozen_clock):
    store.clock = frozen_clock
    big = _customer(store, "Viel")
    small = _customer(store, "Wenig")
    for _day in range(3):
        sell(store, big["id"], 20_000)
        frozen_clock.advance(days=1)
    sell(store, small["id"], 1_000)
    start, end = dt.date(2026, 5, 1), dt.date(2026, 5, 31)
    cands = messaging.voucher_run_preview(store, start, end, min_turnover_cents=10_000, min_visits=2)
    assert [(c.customer_id, c.turnover_cents, c.visits) for c in cands] == [(big["id"], 60_000, 3)]
    sent = messaging.run_gift_vouchers(store, "mai", cands, channel="email",
                                       text="Danke! Gutschein {code} über {amount}", percent_bp=500)
    assert len(sent) == 1
    (msg,) = _pending(store)
    assert "über 30,00 €" in msg.body
    assert messaging.run_gift_vouchers(store, "mai", cands, channel="email", text="x", percent_bp=500) == []
    assert store.db.execute("SELECT count(*) FROM giftcards").fetchone()[0] == 1
    with pytest.raises(messaging.MessagingError):
        messaging.run_gift_vouchers(store, "x", cands, channel="email", text="x")


def test_signup_voucher_and_credit_note_reminder_are_sent_once(store, frozen_clock):
    store.clock = frozen_clock
    settings.set(store, "automation.signup_voucher",
                 {"active": True, "cents": 500, "days": 60, "text": "Willkommen {code}"})
    settings.set(store, "automation.credit_note_reminder",
                 {"active": True, "days_after": 30, "text": "Guthaben {code}"})
    new = _customer(store, "Neu")
    _customer(store, "OhneEinwilligung", email=False)
    counts = messaging.run_automations(store, frozen_clock())
    assert counts["signup_voucher"] == 1 and counts["credit_note"] == 0
    assert messaging.run_automations(store, frozen_clock())["signup_voucher"] == 0
    frozen_clock.advance(days=31)  # the sign-up voucher is unused: remind once
    assert messaging.run_automations(store, frozen_clock())["credit_note"] == 1
    assert messaging.run_automations(store, frozen_clock())["credit_note"] == 0
    bodies = [m.body for m in _pending(store)]
    assert bodies[0].startswith("Willkommen 8") and bodies[1].startswith("Guthaben 8")
    assert {m.recipient for m in _pending(store)} == {new["email"]}


def test_expiring_cards_feed_the_reminder(store, frozen_clock):
    from kiosk.engine import giftcards

    store.clock = frozen_clock
    owner = _customer(store, "Inhaber")
    soon = giftcards.issue(store, 2500, kind="giftcard", valid_days=5, customer_id=owner["id"])
    giftcards.issue(store, 2500, kind="giftcard", valid_days=200, customer_id=owner["id"])
    giftcards.issue(store, 2500, kind="giftcard", valid_days=5)  # nobody to tell
    assert [c[0] for c in messaging.expiring_cards(store, dt.date(2026, 5, 4), 14)] == [soon]
    settings.set(store, "automation.giftcard_reminder",
                 {"active": True, "mode": "email", "days_before": 14, "text": "{code} bis {date}"})
    assert messaging.run_automations(store, frozen_clock())["giftcard_reminder"] == 1


def test_campaign_audience_exports_to_excel(store, tmp_path):
    from openpyxl import load_workbook

    for i in range(5):
        _customer(store, f"Export{i}", email=i != 2, city="Köln" if i < 4 else "Bonn")
    cid = messaging.create_campaign(store, "Köln", "email", [Filter("city", "=", "Köln")], "Hallo",
                                    subject="Hallo")
    assert messaging.export_audience(store, cid, tmp_path / "a.xlsx") == 3
    rows = list(load_workbook(tmp_path / "a.xlsx").active.iter_rows(values_only=True))
    names = sorted(r[rows[0].index("Nachname")] for r in rows[1:])
    assert names == ["Export0", "Export1", "Export3"]
