"""Dashboard parts without a browser: charts, settings forms, accounts, lists on a real file."""

from __future__ import annotations

import datetime as dt

import pytest

from kiosk.engine import customers, settings, traffic
from kiosk.engine.clock import SHOP_TZ
from kiosk.engine.store import Identity, Store
from storehub.dashboard import charts, queries, users
from storehub.dashboard.forms import FormError, parse_settings


@pytest.fixture
def hub(tmp_path, frozen_clock):
    store = Store(tmp_path / "hub.db", Identity("teststore", "hub", 99), clock=frozen_clock)
    users.install(store)
    yield store
    store.close()


def test_bar_chart_scales_to_the_largest_and_escapes_labels():
    svg = str(charts.bars([("<b>", 1), ("zwei", 4), ("null", 0)], title="T"))
    assert svg.startswith("<svg") and "&lt;b&gt;" in svg and "<b>" not in svg
    widths = [int(part.split('"')[0]) for part in svg.split('class="bar"')[1:]
              for part in [part.split('width="')[1]]]  # fmt: skip
    assert widths[1] > widths[0] > widths[2] == 0
    assert "4 (80 %)" in svg


def test_column_chart_has_one_column_per_day():
    svg = str(charts.columns([(f"{d:02d}.05.", d % 3) for d in range(1, 31)]))
    assert svg.count('class="bar"') == 30


def test_settings_form_refuses_bad_values_and_keeps_the_rest_unwritten(hub):
    keys = ["loyalty.enabled", "loyalty.redeem_points", "loyalty.validity", "shop.name"]
    form = {"loyalty.redeem_points": "zehn", "loyalty.validity": '{"n": 5, "unit": "weeks"}',
            "shop.name": "Laden"}  # fmt: skip
    with pytest.raises(FormError) as exc:
        parse_settings(form, keys)
    assert set(exc.value.errors) == {"loyalty.redeem_points", "loyalty.validity"}
    values = parse_settings({"loyalty.enabled": "1", "loyalty.redeem_points": " 20 ",
                             "loyalty.validity": '{"n": 6, "unit": "months"}'}, keys)  # fmt: skip
    assert values == {"loyalty.enabled": True, "loyalty.redeem_points": 20,
                      "loyalty.validity": {"n": 6, "unit": "months"}}  # fmt: skip
    assert settings.get(hub, "loyalty.redeem_points") == 10  # parsing writes nothing


def test_passwords_are_argon2_hashes_and_failures_throttle(hub, frozen_clock):
    users.set_user(hub, "Chef", "a long password", "owner")
    stored = hub.db.execute("SELECT password_hash FROM dash_users WHERE name = 'chef'").fetchone()
    assert stored[0].startswith("$argon2id$") and "a long password" not in stored[0]
    with pytest.raises(users.UserError):
        users.set_user(hub, "x", "short", "owner")
    with pytest.raises(users.UserError):
        users.set_user(hub, "anna", "a long password", "king")
    assert users.authenticate(hub, "chef", "a long password", "10.0.0.1") == {
        "name": "chef", "role": "owner"}  # fmt: skip
    for _ in range(users.MAX_FAILURES):
        assert users.authenticate(hub, "chef", "wrong", "10.0.0.1") is None
    assert users.throttled(hub, "chef", "10.0.0.2")
    assert not users.throttled(hub, "other", "10.0.0.2")
    frozen_clock.advance(minutes=16)  # the window slides: the owner may try again
    assert not users.throttled(hub, "chef", "10.0.0.1")


def test_customer_list_filters_sorts_and_pages(hub, monkeypatch):
    records = [{"first_name": f"Kunde{i:03d}", "last_name": f"Name{i % 7}",
                "postcode": "10115" if i % 2 else "80331",
                "email": f"k{i}@example.org" if i % 3 == 0 else ""} for i in range(120)]  # fmt: skip
    customers.create_many(hub, records)
    page = queries.customer_page(hub, queries.CustomerFilter())
    assert page.total == 120 and page.pages == 3 and len(page.rows) == queries.PAGE_SIZE
    last = queries.customer_page(hub, queries.CustomerFilter(page=3))
    assert len(last.rows) == 20
    f = queries.CustomerFilter.from_query({"postcode": "803", "email": "yes", "sort": "name"})
    rows = queries.customer_page(hub, f).rows
    assert rows and all(r["postcode"] == "80331" and r["email"] for r in rows)
    assert [r["last_name"] for r in rows] == sorted(r["last_name"] for r in rows)
    monkeypatch.setattr(queries, "COUNT_CAP", 100)  # counting stops early on big lists
    capped = queries.customer_page(hub, queries.CustomerFilter(page=2))
    assert capped.capped and capped.total == 101 and capped.pages == 3  # "next" while full
    exact = queries.customer_page(hub, queries.CustomerFilter.from_query({"count": "all"}))
    assert not exact.capped and exact.total == 120
    f = queries.CustomerFilter.from_query({"q": "Kunde007", "sort": "'; DROP TABLE x"})
    assert f.sort == "no" and [r["first_name"] for r in queries.customer_page(hub, f).rows] == [
        "Kunde007"]  # fmt: skip


def test_traffic_day_counts_visits_and_sales_per_hour(hub, frozen_clock):
    day = frozen_clock.now.astimezone(SHOP_TZ).date()
    ten = dt.datetime.combine(day, dt.time(10), SHOP_TZ)
    traffic.record(hub, counter="door", hour_start=ten, direction="in", count=12, flush_id="flush-001")
    traffic.record(hub, counter="door", hour_start=ten, direction="pass", count=8, per_visit=2,
                   flush_id="flush-002")  # fmt: skip
    hours = queries.traffic_day(hub, day)
    assert [(h.hour, h.visits, h.sales) for h in hours] == [(10, 16, 0)]
    assert dict(queries.visits_per_day(hub))[day.strftime("%d.%m.")] == 16


def test_sessions_end_on_logout_new_password_and_expiry(hub, frozen_clock):
    users.set_user(hub, "anna", "a long password", "manager")
    first, second = users.open_session(hub, "anna"), users.open_session(hub, "anna")
    assert users.session_user(hub, first) == {"name": "anna", "role": "manager"}
    users.close_session(hub, first)
    assert users.session_user(hub, first) is None
    assert users.session_user(hub, second) is not None
    users.set_user(hub, "anna", "another long password", "cashier")  # new password: all out
    assert users.session_user(hub, second) is None
    third = users.open_session(hub, "anna")
    frozen_clock.advance(hours=9)
    assert users.session_user(hub, third) is None
    assert users.session_user(hub, "forged") is None


def test_customer_list_filters_by_age_revenue_visits_and_last_purchase(hub, frozen_clock):
    ids = customers.create_many(hub, [
        {"last_name": "Jung", "birth_date": "2000-05-05"},  # 25 on 4 May 2026
        {"last_name": "Mittel", "birth_date": "1986-05-04"},  # 40 today
        {"last_name": "Alt", "birth_date": "1950-01-01"},
    ])  # fmt: skip
    # purchase history as the sales projection holds it after sync (bulk-loaded like bench/)
    for i, (cid, day, cents) in enumerate([(ids[0], "2026-05-01", 5000),
                                           (ids[0], "2026-04-01", 7000),
                                           (ids[2], "2025-01-10", 90000)]):  # fmt: skip
        hub.db.execute(
            "INSERT INTO sales VALUES (?, ?, ?, 'till-1', 'sale', 'pos', ?, ?, ?, ?, NULL, ?, 0,"
            " 0, 0, 0)", [f"s{i}", f"e{i}", f"{i}", f"{day}T10:00:00+00:00", day, cid, cid, cents])

    def names(**params):
        f = queries.CustomerFilter.from_query({k: str(v) for k, v in params.items()})
        assert not f.errors
        return sorted(r["last_name"] for r in queries.customer_page(hub, f).rows)

    assert names(age_min=40) == ["Alt", "Mittel"]
    assert names(age_min=25, age_max=39) == ["Jung"]
    assert names(min_revenue=100) == ["Alt", "Jung"]
    assert names(min_revenue=121) == ["Alt"]
    assert names(min_visits=2) == ["Jung"]
    assert names(bought_since="2026-01-01") == ["Jung"]
    bad = queries.CustomerFilter.from_query({"min_revenue": "viel", "bought_since": "gestern"})
    assert set(bad.errors) == {"min_revenue", "bought_since"}


def test_device_online_follows_the_retained_state(hub):
    from storehub import db as hubdb

    hubdb.open_hub_store(hub)
    hubdb.update_device(hub, "till-1", state="ready", mode="till", version="1.2.0")
    hubdb.update_device(hub, "till-2", state="lost", mode="till")
    hubdb.update_device(hub, "till-1", backlog=4, in_sync=0)
    devices = {d["device"]: d for d in queries.devices(hub)}
    assert devices["till-1"]["online"] and devices["till-1"]["backlog"] == 4
    assert devices["till-1"]["version"] == "1.2.0"
    assert not devices["till-2"]["online"]
