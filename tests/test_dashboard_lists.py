"""Dashboard lists and forms added for issue 7: promotions (list + rules), gift cards and
vouchers with balances and expiry (paged), wallets, and the customer display's media.

Browser tests drive Chromium against uvicorn on a real hub file; unit tests check the form
parsing and the list queries on a real SQLite file with a frozen clock.
"""

from __future__ import annotations

import datetime as dt

import pytest
from playwright.sync_api import expect
from storehub import db as hubdb
from storehub.dashboard import create_app, queries, users
from storehub.dashboard.extras import media_rows, parse_cents

from kiosk.engine import (
    customers,
    events,
    giftcards,
    promotions,
    settings,
    vouchers,
    wallet,
)
from kiosk.engine.store import Identity, Store
from tests.support.dashboard import PASSWORD, chromium, logged_in_state, login, serve, user_page

expect.set_options(timeout=15_000)


# -- units ----------------------------------------------------------------------------------------
def test_amounts_and_percentages_are_parsed_exactly():
    assert parse_cents("12,50") == 1250 and parse_cents("12.5") == 1250
    assert parse_cents("1.234,56 €") == 123456 and parse_cents("30") == 3000
    for bad in ("abc", "-1", "1,234", "nan", "inf", ""):
        assert parse_cents(bad) is None, bad


def test_media_rows_skip_empty_and_removed_rows_and_report_bad_seconds():
    form = {"media-kind-0": "image", "media-src-0": " a.png ", "media-seconds-0": "8",
            "media-kind-1": "url", "media-src-1": "", "media-seconds-1": "10",
            "media-kind-2": "video", "media-src-2": "b.mp4", "media-seconds-2": "10",
            "media-remove-2": "1",
            "media-kind-10": "video", "media-src-10": "c.mp4", "media-seconds-10": "30"}  # fmt: skip
    media, errors = media_rows(form)
    assert errors == {}
    assert media == [{"kind": "image", "src": "a.png", "seconds": 8},
                     {"kind": "video", "src": "c.mp4", "seconds": 30}]  # fmt: skip
    media, errors = media_rows({"media-kind-0": "image", "media-src-0": "a.png",
                                "media-seconds-0": "zehn", "media-kind-1": "gif",
                                "media-src-1": "b.gif"})  # fmt: skip
    assert set(errors) == {"media-0", "media-1"}
    assert [m["src"] for m in media] == ["a.png", "b.gif"]  # shown again as typed


@pytest.fixture
def unit_hub(tmp_path, frozen_clock):
    store = Store(tmp_path / "hub.db", Identity("teststore", "hub", 99), clock=frozen_clock)
    hubdb.open_hub_store(store)
    yield store
    store.close()


def test_giftcard_list_balances_expiry_filters_and_paging(unit_hub, frozen_clock):
    st = unit_hub
    anna = customers.create(st, {"first_name": "Anna", "last_name": "Alt"}, force=True)
    old = giftcards.issue(st, 2000, kind="voucher", valid_days=10, customer_id=anna["id"])
    for i in range(queries.PAGE_SIZE + 2):
        giftcards.issue(st, 1000 + i, kind="giftcard", valid_days=365)
    frozen_clock.advance(days=30)
    fresh = giftcards.issue(st, 500, kind="voucher", valid_days=90)
    first = queries.giftcard_page(st)
    assert first.total == queries.PAGE_SIZE + 4 and len(first.rows) == queries.PAGE_SIZE
    assert first.pages == 2 and len(queries.giftcard_page(st, page=2).rows) == 4
    expired = queries.giftcard_page(st, state="expired")
    assert [r["code"] for r in expired.rows] == [old]
    row = expired.rows[0]
    assert row["expired"] and row["balance_cents"] == 2000 and row["last_name"] == "Alt"
    vouchers_open = queries.giftcard_page(st, kind="voucher", state="open")
    assert [r["code"] for r in vouchers_open.rows] == [fresh]
    assert queries.giftcard_page(st, q=fresh[:-1]).total >= 1
    totals = queries.giftcard_totals(st)
    assert totals["voucher"] == {"count": 2, "open_cents": 500}  # the expired one owes nothing
    assert totals["giftcard"]["open_cents"] == sum(1000 + i for i in range(queries.PAGE_SIZE + 2))


def test_promotion_list_marks_current_rules(unit_hub, frozen_clock):
    st = unit_hub
    today = frozen_clock().date()
    promotions.save_rule(st, "Sommer", "sale_percent", bp=3000)
    promotions.save_rule(st, "Später", "nth_item", bp=5000, n=2,
                         starts=today + dt.timedelta(days=5))  # fmt: skip
    promotions.save_rule(st, "Aus", "sale_percent", bp=1000, active=False)
    rows = {r["name"]: r for r in queries.promotions(st)}
    assert rows["Sommer"]["current"] and not rows["Später"]["current"]
    assert not rows["Aus"]["current"] and rows["Später"]["n"] == 2


# -- browser ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    path = tmp_path_factory.mktemp("hub") / "hub.db"
    store = Store(path, Identity("teststore", "hub", 0))
    hubdb.open_hub_store(store)
    users.install(store)
    users.set_user(store, "owner", PASSWORD, "owner")
    users.set_user(store, "kasse", PASSWORD, "cashier")
    anna = customers.create(store, {"first_name": "Anna", "last_name": "Schröder"}, force=True)
    for i in range(queries.PAGE_SIZE + 5):
        giftcards.issue(store, 1000 + i, kind="giftcard", valid_days=365)
    giftcards.issue(store, 2500, kind="voucher", customer_id=anna["id"])
    vouchers.save_vip(store, "#VIP#ANNA", anna["id"], 1500)
    wallet.save_type(store, "Kaffeekarte", load_cents=5000, pay_cents=4500)
    promotions.save_rule(store, "Winterschluss", "sale_percent", bp=3000)
    yield store
    store.close()


@pytest.fixture(scope="module")
def server(hub):
    app = create_app(hub.clone(), secret_key="test-secret")
    with serve(app) as url:
        yield url
    app.state.pool.close()


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def owner_state(browser, server):
    return logged_in_state(browser, server)


@pytest.fixture
def owner(browser, server, owner_state):
    with user_page(browser, server, owner_state) as pg:
        yield pg


NEW_PAGES = ("/promotions", "/giftcards", "/wallets", "/display")


@pytest.mark.browser
def test_new_pages_are_in_the_menu_and_closed_to_cashiers(owner, browser, server):
    owner.goto("/")
    links = owner.eval_on_selector_all("header nav a", "els => els.map(e => e.getAttribute('href'))")
    for href in NEW_PAGES:
        assert href in links, href
        assert owner.goto(href).status == 200, href
        assert owner.locator("h1").count() == 1
    with user_page(browser, server, locale=None) as page:
        login(page, "kasse")
        for href in NEW_PAGES:
            assert page.goto(href).status == 403, href


@pytest.mark.browser
def test_giftcards_list_pages_and_filters(owner, artifacts_dir):
    page = owner
    page.goto("/giftcards")
    assert page.locator("#giftcards tbody tr").count() == queries.PAGE_SIZE
    page.screenshot(path=str(artifacts_dir / "dashboard-giftcards.png"), full_page=True)
    page.click("#next-page")
    expect(page.locator("#giftcards tbody tr")).to_have_count(6)
    page.select_option("#kind", "voucher")
    page.click("#search")
    rows = page.locator("#giftcards tbody tr")
    expect(rows).to_have_count(1)
    assert "25,00 €" in rows.inner_text() and "Schröder" in rows.inner_text()
    assert "#VIP#ANNA" in page.locator("#vip-cards").inner_text()
    assert "15 %" in page.locator("#vip-cards").inner_text()
    page.goto("/wallets")
    assert "Kaffeekarte" in page.locator("#wallet-types").inner_text()


@pytest.mark.browser
def test_promotion_rules_are_edited_as_events(owner, hub):
    page = owner
    page.goto("/promotions")
    assert "Winterschluss" in page.locator("#promotions").inner_text()
    n_events = hub.db.execute("SELECT count(*) FROM events").fetchone()[0]
    page.fill("#p-name", "Zweites Paar")
    page.select_option("#p-kind", "nth_item")
    page.fill("#p-percent", "abc")  # bad input: message, nothing saved
    page.fill("#p-n", "2")
    page.click("#save")
    expect(page.locator("#form-error")).to_be_visible()
    expect(page.locator(".error[data-field=percent]")).to_be_visible()
    assert page.locator("#p-name").input_value() == "Zweites Paar"
    assert hub.db.execute("SELECT count(*) FROM events").fetchone()[0] == n_events
    page.fill("#p-percent", "12,5")
    page.click("#save")
    expect(page.locator(".flash.ok")).to_be_visible()
    rule = next(r for r in promotions.rules(hub) if r.name == "Zweites Paar")
    assert (rule.kind, rule.bp, rule.n) == ("nth_item", 1250, 2)
    ev = events.history(hub, "promotion.upserted", limit=1)[0]
    assert ev.device == "hub" and ev.payload["id"] == rule.id
    # edit the existing rule: same id, new percentage and an end date
    page.locator(f"#promotions tr[data-id='{rule.id}'] a").click()
    assert page.locator("#p-percent").input_value() == "12,50"
    page.fill("#p-percent", "50")
    page.fill("#p-ends", "2031-12-31")
    page.click("#save")
    expect(page.locator(".flash.ok")).to_be_visible()
    again = next(r for r in promotions.rules(hub) if r.id == rule.id)
    assert again.bp == 5000 and again.ends == "2031-12-31"
    assert ("owner", "promotion.save") in [(r["user"], r["action"]) for r in users.audit_log(hub)]


@pytest.mark.browser
def test_display_media_form_saves_a_checked_list(owner, hub, artifacts_dir):
    page = owner
    page.goto("/display")
    page.select_option("#media-kind-0", "image")
    page.fill("#media-src-0", "sommer.png")
    page.fill("#media-seconds-0", "abc")  # bad input first
    page.click("#save")
    expect(page.locator("#form-error")).to_be_visible()
    assert settings.get(hub, "display.media") == []
    page.fill("#media-seconds-0", "8")
    page.select_option("#media-kind-1", "url")
    page.fill("#media-src-1", "https://example.org/angebote")
    page.fill("#media-seconds-1", "30")
    page.click("#save")
    expect(page.locator(".flash.ok")).to_be_visible()
    assert settings.get(hub, "display.media") == [
        {"kind": "image", "src": "sommer.png", "seconds": 8},
        {"kind": "url", "src": "https://example.org/angebote", "seconds": 30},
    ]
    page.screenshot(path=str(artifacts_dir / "dashboard-display-media.png"), full_page=True)
    page.check("#media-remove-0")
    page.click("#save")
    expect(page.locator(".flash.ok")).to_be_visible()
    assert [m["src"] for m in settings.get(hub, "display.media")] == ["https://example.org/angebote"]
    changed = events.history(hub, "setting.changed", limit=5)
    assert any(e.payload["key"] == "display.media" for e in changed)
    page.goto("/settings")  # no second, raw-JSON copy of the same setting
    assert page.locator("[name='display.media']").count() == 0
