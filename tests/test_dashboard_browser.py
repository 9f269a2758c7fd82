"""The owner's dashboard through a real browser: uvicorn on loopback, Chromium, real SQLite.

The hub's database is a real file; the test keeps its own connection to it (as the hub
service would) and checks that dashboard edits arrive there as engine events.
"""

from __future__ import annotations

import io
import re
import urllib.error
import urllib.parse
import urllib.request

import pytest
from playwright.sync_api import expect
from pypdf import PdfReader
from storehub import db as hubdb
from storehub.dashboard import create_app, users

from kiosk.engine import (
    customers,
    directives,
    events,
    loyalty,
    questions,
    settings,
    surveys,
)
from kiosk.engine.store import Identity, Store
from tests.support.dashboard import PASSWORD, chromium, logged_in_state, login, serve, user_page

pytestmark = pytest.mark.browser
expect.set_options(timeout=15_000)  # a busy CI machine: argon2 and Chromium share 2 cores



@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    path = tmp_path_factory.mktemp("hub") / "hub.db"
    store = Store(path, Identity("teststore", "hub", 0))
    hubdb.open_hub_store(store)
    users.install(store)
    users.set_user(store, "owner", PASSWORD, "owner")
    users.set_user(store, "kasse", PASSWORD, "cashier")
    users.set_user(store, "victim", PASSWORD, "manager")
    questions.define(store, "shoe_size", "Shoe size", "choice", ["38", "39", "40"])
    seed = [("Anna", "Schröder", "10115", "39"), ("Bernd", "Müller", "20095", "40"),
            ("Clara", "Weber", "80331", "39"), ("Dieter", "Schneider", "50667", "38")]  # fmt: skip
    for first, last, postcode, size in seed:
        customers.create(store, {"first_name": first, "last_name": last, "postcode": postcode,
                                 "answers": {"shoe_size": size}}, force=True)  # fmt: skip
    hubdb.update_device(store, "till-1", state="ready", mode="till", version="0.1.0", backlog=3)
    yield store
    store.close()


@pytest.fixture(scope="module")
def broker_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("broker")


@pytest.fixture(scope="module")
def server(hub, broker_dir):
    app = create_app(hub.clone(), secret_key="test-secret", broker_dir=broker_dir)
    with serve(app) as url:
        yield url
    app.state.pool.close()


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser, server):
    with user_page(browser, server) as pg:
        yield pg


@pytest.fixture(scope="module")
def owner_state(browser, server):
    return logged_in_state(browser, server)


@pytest.fixture
def owner(browser, server, owner_state):
    with user_page(browser, server, owner_state) as pg:
        yield pg


def customer_id(store, last_name):
    return store.db.execute(
        "SELECT id FROM customers WHERE last_name = ? AND erased_at IS NULL", [last_name]
    ).fetchone()[0]


def test_login_wrong_password_then_logout(page, hub, artifacts_dir):
    page.goto("/customers")
    assert page.url.endswith("/login?next=/customers")  # anonymous users go to the login
    login(page, password="wrong password!", wait=False)
    expect(page.locator("#login-error")).to_be_visible()
    assert "/login" in page.url
    login(page)
    page.wait_for_url("**/")
    assert page.locator("#customer-count").inner_text() == "4"
    page.screenshot(path=str(artifacts_dir / "dashboard-overview.png"), full_page=True)
    cookies = page.context.cookies()
    page.click("#logout")
    page.wait_for_url("**/login")
    page.goto("/customers")
    assert "/login" in page.url
    page.context.add_cookies(cookies)  # a copied cookie is worthless after the logout
    page.goto("/customers")
    assert "/login" in page.url
    log = [(r["user"], r["action"]) for r in users.audit_log(hub)]
    assert ("owner", "login.failed") in log and ("owner", "login") in log


def test_every_menu_page_renders(owner):
    page = owner
    response = page.goto("/")
    assert "script-src 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    links = page.eval_on_selector_all("header nav a", "els => els.map(e => e.getAttribute('href'))")
    assert "/customers" in links and "/loyalty" in links and "/surveys" in links
    for href in links:
        response = page.goto(href)
        assert response.status == 200, href
        assert page.locator("h1").count() == 1, href


def test_cashier_cannot_reach_owner_pages(page):
    login(page, "kasse")
    page.wait_for_url("**/")
    links = page.eval_on_selector_all("header nav a", "els => els.map(e => e.getAttribute('href'))")
    assert "/customers" not in links and "/loyalty" not in links
    for href in ("/customers", "/loyalty", "/settings", "/users"):
        assert page.goto(href).status == 403


def test_login_is_throttled_after_repeated_failures(page):
    for _ in range(users.MAX_FAILURES):
        login(page, "victim", "guess-guess-guess", wait=False)
        expect(page.locator("#login-error")).to_be_visible()
    login(page, "victim", PASSWORD, wait=False)  # the right password no longer helps for a while
    expect(page.locator("#login-error")).to_be_visible()
    assert "/login" in page.url


def test_search_and_edit_customer_reaches_the_store(owner, hub, artifacts_dir):
    page = owner
    page.goto("/customers")
    page.fill("#q", "schroeder")
    page.click("#search")
    rows = page.locator("#customers tbody tr")
    assert rows.count() == 1 and "Schröder" in rows.inner_text()
    rows.locator("a").first.click()
    page.wait_for_url("**/customers/*")
    before = events.history(hub, "customer.updated", limit=1000)
    page.fill("#f-email", "anna.schroeder@example.org")
    page.fill("#f-city", "Berlin")
    page.click("#save")
    expect(page.locator(".flash.ok")).to_be_visible()
    page.screenshot(path=str(artifacts_dir / "dashboard-customer.png"), full_page=True)
    record = customers.get(hub, customer_id(hub, "Schröder"))
    assert record["email"] == "anna.schroeder@example.org" and record["city"] == "Berlin"
    after = events.history(hub, "customer.updated", limit=1000)
    assert len(after) == len(before) + 1
    assert after[0].device == "hub" and after[0].payload["source"] == "dashboard"
    assert ("owner", "customer.update") in [(r["user"], r["action"]) for r in users.audit_log(hub)]


def test_bad_customer_input_shows_message_and_changes_nothing(owner, hub):
    page = owner
    cid = customer_id(hub, "Müller")
    page.goto(f"/customers/{cid}")
    n_events = hub.db.execute("SELECT count(*) FROM events").fetchone()[0]
    page.fill("#f-email", "not-an-email")
    page.fill("#f-city", "Hamburg")
    page.click("#save")
    expect(page.locator("#form-error")).to_be_visible()
    expect(page.locator(".error[data-field=email]")).to_be_visible()
    assert page.locator("#f-city").input_value() == "Hamburg"  # what was typed is kept
    assert hub.db.execute("SELECT count(*) FROM events").fetchone()[0] == n_events
    assert customers.get(hub, cid)["city"] is None


def test_erase_customer(owner, hub):
    page = owner
    cid = customer_id(hub, "Schneider")
    page.goto(f"/customers/{cid}")
    page.click("#erase")  # without the confirmation tick nothing happens
    expect(page.locator(".flash.error")).to_be_visible()
    assert customers.get(hub, cid)["last_name"] == "Schneider"
    page.check("#erase-confirm")
    page.click("#erase")
    page.wait_for_url("**/customers")
    with pytest.raises(customers.NotFound):
        customers.get(hub, cid)
    ev = events.history(hub, "customer.erased", limit=1)[0]
    assert ev.payload["id"] == cid and ev.device == "hub"
    page.fill("#q", "Schneider")
    page.click("#search")
    assert "Schneider" not in page.locator("#customers").inner_text()


def test_loyalty_setting_change_emits_event(owner, hub):
    page = owner
    page.goto("/loyalty")
    page.fill("[name='loyalty.redeem_points']", "abc")  # bad input first: nothing changes
    page.click("#save-settings")
    expect(page.locator("#form-error")).to_be_visible()
    expect(page.locator(".error[data-field='loyalty.redeem_points']")).to_be_visible()
    assert settings.get(hub, "loyalty.redeem_points") == 10
    page.goto("/loyalty")
    page.check("[name='loyalty.enabled']")
    page.fill("[name='loyalty.redeem_points']", "250")
    page.click("#save-settings")
    expect(page.locator(".flash.ok")).to_be_visible()
    assert settings.get(hub, "loyalty.redeem_points") == 250
    assert settings.get(hub, "loyalty.enabled") is True
    changed = {e.payload["key"]: e.payload["value"]
               for e in events.history(hub, "setting.changed", limit=20)}  # fmt: skip
    assert changed["loyalty.redeem_points"] == 250 and changed["loyalty.enabled"] is True
    # the hub service ships unsequenced events: the dashboard's are waiting for it
    unsequenced = hub.db.execute(
        "SELECT count(*) FROM events WHERE type = 'setting.changed' AND seq IS NULL"
    ).fetchone()[0]
    assert unsequenced >= 2


def test_custom_question_chart_renders(owner):
    page = owner
    page.goto("/surveys")
    chart = page.locator("figure.question-chart svg.chart")
    assert chart.count() == 1
    bars = chart.locator("rect.bar")
    assert bars.count() == 3  # one per option of the shoe-size question
    widths = [float(bars.nth(i).get_attribute("width")) for i in range(3)]
    assert widths[1] == max(widths) and widths[1] > 0  # 39 was answered most often


def test_build_survey_and_see_chart_after_answers_arrive(owner, hub, tmp_path, artifacts_dir):
    page = owner
    page.goto("/surveys")
    page.fill("#survey-form [name=title]", "Zufriedenheit")
    page.fill("#survey-form [name=questions]",
              "Wie zufrieden waren Sie? | sehr; mittel; wenig\nWie haben Sie uns gefunden? | "
              "Werbung; Freunde")
    page.click("#survey-form button")
    expect(page.locator(".flash.ok")).to_be_visible()
    saved = events.history(hub, "survey.saved", limit=1)[0]
    # a survey device gets the survey through the feed, the shoppers answer, events come back
    device = Store(tmp_path / "survey.db", Identity("teststore", "survey-1", 7))
    try:
        events.apply(device, saved)
        for first, second in [("sehr", "Freunde"), ("sehr", "Werbung"), ("mittel", "Freunde")]:
            surveys.answer(device, saved.payload["id"], {"q1": first, "q2": second})
        surveys.answer(device, saved.payload["id"], {}, skipped=True)
        for ev in events.outbox(device):
            events.apply(hub, ev)
    finally:
        device.close()
    page.goto("/surveys")
    section = page.locator("section.survey", has_text="Zufriedenheit")
    expect(section).to_contain_text("3")
    charts = section.locator("figure.survey-chart svg.chart")
    assert charts.count() == 2
    first = charts.nth(0)
    assert first.locator("rect.bar").count() == 3
    assert "sehr: 2" in first.inner_html() and "mittel: 1" in first.inner_html()
    page.screenshot(path=str(artifacts_dir / "dashboard-surveys.png"), full_page=True)


def test_directive_published_to_tills(owner, hub):
    page = owner
    page.goto("/directives")
    page.fill("#directive-text", "")
    page.click("#add-directive")  # empty text: refused, nothing stored
    expect(page.locator(".error[data-field=directive]")).to_be_visible()
    assert directives.all_directives(hub) == []
    page.fill("#directive-text", "Heute Gutscheine anbieten!")
    page.click("#add-directive")
    expect(page.locator(".flash.ok")).to_be_visible()
    now = [d.text for d in directives.current(hub, store_id="teststore", cashier="anna")]
    assert now == ["Heute Gutscheine anbieten!"]
    page.click("#directives button.withdraw")
    expect(page.locator(".flash.ok")).to_be_visible()
    assert directives.current(hub, store_id="teststore") == []


def test_merge_duplicate_customers(owner, hub):
    keep = customers.create(hub, {"first_name": "Eva", "last_name": "Klein"}, force=True)
    dup = customers.create(hub, {"first_name": "Eva", "last_name": "Klein", "city": "Köln"},
                           force=True)  # fmt: skip
    page = owner
    page.goto(f"/customers/{keep['id']}")
    expect(page.locator("#duplicates")).to_contain_text(dup["customer_no"])
    page.fill("#merge-other", dup["customer_no"])
    page.click("#merge-form button")
    expect(page.locator(".flash.ok")).to_be_visible()
    assert customers.get(hub, dup["id"])["id"] == keep["id"]  # the duplicate leads to the survivor
    assert customers.get(hub, keep["id"])["city"] == "Köln"
    response = page.request.get(f"/customers/{keep['id']}/export.json")
    assert response.ok and response.json()["customer"]["city"] == "Köln"
    response = page.request.get(f"/customers/{keep['id']}/export.pdf")
    assert response.ok and response.headers["content-type"] == "application/pdf"
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(response.body())).pages)
    assert "Klein" in text and "Köln" in text and keep["customer_no"] in text


def test_post_without_csrf_token_is_refused(server, hub):
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())

    def post(path, fields):
        try:
            with opener.open(f"{server}{path}", data=urllib.parse.urlencode(fields).encode()) as r:
                return r.url
        except urllib.error.HTTPError as err:
            err.close()
            raise

    # anonymous: sent to the login page, nothing written
    before = hub.db.execute("SELECT count(*) FROM events").fetchone()[0]
    assert "/login" in post("/settings", {"shop.name": "Evil"})
    # a login form post without the page's token is refused
    with pytest.raises(urllib.error.HTTPError) as exc:
        post("/login", {"username": "owner", "password": PASSWORD})
    assert exc.value.code == 403
    with opener.open(f"{server}/login") as r:
        page = r.read().decode()
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    assert post("/login", {"username": "owner", "password": PASSWORD, "csrf": token}).endswith("/")
    # logged in, but a cross-site post carries the cookie and not the token
    for fields in ({"shop.name": "Evil"}, {"shop.name": "Evil", "csrf": "forged"}):
        with pytest.raises(urllib.error.HTTPError) as exc:
            post("/settings", fields)
        assert exc.value.code == 403
    assert hub.db.execute("SELECT count(*) FROM events").fetchone()[0] == before
    assert settings.get(hub, "shop.name") == "Mein Laden"


def test_device_health_and_enrolment(owner, broker_dir):
    page = owner
    page.goto("/devices")
    row = page.locator("#devices tr", has_text="till-1")
    expect(row.locator("[data-online='1']")).to_have_count(1)
    expect(row).to_contain_text("0.1.0")
    page.fill("#enrol-form [name=device]", "Till 2!")  # refused: not a device id
    page.click("#enrol-form button")
    expect(page.locator(".error[data-field=device]")).to_be_visible()
    assert not (broker_dir / "devices" / "till-2.toml").exists()
    page.fill("#enrol-form [name=device]", "till-2")
    page.select_option("#enrol-form [name=mode]", "clipad")
    page.click("#enrol-form button")
    expect(page.locator(".flash.ok")).to_contain_text("till-2")
    assert (broker_dir / "devices" / "till-2.toml").exists()
    expect(page.locator("#devices tr", has_text="till-2")).to_contain_text("clipad")


def test_customer_list_exports_to_excel(owner, tmp_path):
    from openpyxl import load_workbook

    page = owner
    page.goto("/customers?q=Weber")
    with page.expect_download() as info:
        page.click("#export-list")
    path = tmp_path / "export.xlsx"
    info.value.save_as(path)
    wb = load_workbook(path, read_only=True)  # read-only keeps the file open until close()
    try:
        rows = list(wb.active.iter_rows(values_only=True))
    finally:
        wb.close()
    assert len(rows) == 2 and "Weber" in rows[1]


def test_card_type_with_per_side_rules(owner, hub):
    page = owner
    page.goto("/loyalty")
    page.click("#new-card-type")
    page.fill("#card-type-form [name=description]", "Stammkunde")
    page.fill("#card-type-form [name=number]", "1")
    page.fill("[name='herren.redeem_type']", "7")  # no such type: refused, nothing stored
    page.click("#card-type-form #save")
    expect(page.locator(".error[data-field='herren.redeem_type']")).to_be_visible()
    assert loyalty.card_types(hub) == []
    page.fill("[name='herren.redeem_type']", "2")
    page.fill("[name='damen.bonus_sales_bp']", "500")
    page.click("#card-type-form #save")
    expect(page.locator("#card-types")).to_contain_text("Stammkunde")
    (ct,) = loyalty.card_types(hub)
    assert ct.herren.redeem_type == 2 and ct.damen.bonus_sales_bp == 500
    assert events.history(hub, "loyalty.card_type_upserted", limit=1)[0].device == "hub"


def test_every_page_refuses_anonymous_access(server, hub):
    cid = customer_id(hub, "Weber")
    paths = ["/", "/devices", "/customers", f"/customers/{cid}", f"/customers/{cid}/export.json",
             f"/customers/{cid}/export.pdf", "/customers/export.xlsx", "/loyalty",
             "/loyalty/card-types/new", "/groups", "/alerts", "/questions", "/surveys",
             "/traffic", "/campaigns", "/directives", "/settings", "/users", "/audit"]  # fmt: skip
    for path in paths:
        with urllib.request.urlopen(f"{server}{path}") as r:  # follows the redirect
            assert urllib.parse.urlparse(r.url).path == "/login", path
            assert b"Weber" not in r.read()
