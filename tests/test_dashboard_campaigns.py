"""The campaign builder, single messages and voucher runs through a real browser.

uvicorn on loopback, Chromium, the hub's database as a real SQLite file; the AI drafting
endpoint is a loopback HTTP server speaking the OpenAI chat API.
"""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pytest
from openpyxl import load_workbook
from playwright.sync_api import expect
from storehub import db as hubdb
from storehub.dashboard import create_app, users

from kiosk.engine import customers, groups, settings
from kiosk.engine.store import Identity, Store
from tests.support.dashboard import PASSWORD, chromium, logged_in_state, serve, user_page
from tests.support.shop import sell
from tests.test_messaging_channels import Peer

pytestmark = pytest.mark.browser
expect.set_options(timeout=15_000)

SALE_DAYS = (dt.datetime(2026, 3, 10, 11, tzinfo=dt.UTC),
             dt.datetime(2026, 3, 12, 11, tzinfo=dt.UTC))  # fmt: skip


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    path = tmp_path_factory.mktemp("hub") / "hub.db"
    store = Store(path, Identity("teststore", "hub", 0))
    hubdb.open_hub_store(store)
    users.install(store)
    users.set_user(store, "owner", PASSWORD, "owner")
    settings.set(store, "shop.name", "Testladen")
    settings.set(store, "messaging.sender_name", "Testladen")
    seed = [  # last name, city, e-mail consent, mobile, SMS consent
        ("Adler", "Köln", True, None, False), ("Berger", "Köln", False, None, False),
        ("Conrad", "Köln", True, "+49 171 1234567", True), ("Dorn", "Bonn", True, None, False),
    ]  # fmt: skip
    ids = {}
    for last, city, email_ok, mobile, sms_ok in seed:
        data = {"first_name": {"Adler": "Anna", "Berger": "Bernd", "Conrad": "Clara",
                               "Dorn": "Dieter"}[last], "last_name": last, "city": city,
                "email": f"{last.lower()}@example.org", "email_consent": email_ok,
                "sms_consent": sms_ok, **({"mobile": mobile} if mobile else {})}  # fmt: skip
        ids[last] = customers.create(store, data, force=True)["id"]
    vip = groups.save(store, "VIP")
    for last in ("Adler", "Dorn"):
        groups.assign(store, ids[last], vip)
    real_clock = store.clock
    for i, day in enumerate(SALE_DAYS):  # two visits in March for Adler and Berger, one for Dorn
        store.clock = lambda day=day: day
        sell(store, ids["Adler"], 15_000)
        sell(store, ids["Berger"], 9_000)
        if i == 0:
            sell(store, ids["Dorn"], 50_000)
    store.clock = real_clock
    store.ids = ids
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


def _count(store, sql, args=()):
    return store.db.execute(sql, list(args)).fetchone()[0]


def _filter(page, i, field, op, value=""):
    page.select_option(f"#f{i}-field", field)
    page.select_option(f"#f{i}-op", op)
    page.fill(f"#f{i}-value", value)


def test_live_count_follows_filters_consent_and_channel(owner, server, artifacts_dir):
    """GIVEN four customers, one of the three in Köln without e-mail consent
    WHEN the owner types filter rows THEN the count updates live and respects consent."""
    page = owner
    response = page.goto("/campaigns")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    expect(page.locator("#live-count")).to_have_text("3")  # everyone with e-mail consent
    _filter(page, 0, "city", "=", "Köln")
    expect(page.locator("#live-count")).to_have_text("2")  # Berger has no consent
    _filter(page, 1, "group", "=", "vip")
    expect(page.locator("#live-count")).to_have_text("1")
    page.select_option("#f1-field", "")
    page.fill("#f1-value", "")
    expect(page.locator("#live-count")).to_have_text("2")
    page.fill("#c-body", "Hallo {first_name}, neue Ware bei {shop}!")
    expect(page.locator("#preview-text")).to_have_text("Hallo Anna, neue Ware bei Testladen!")
    expect(page.locator("#sms-info")).to_be_hidden()
    page.select_option("#c-channel", "sms")
    expect(page.locator("#live-count")).to_have_text("1")  # only Conrad: mobile and SMS consent
    expect(page.locator("#sms-info")).to_be_visible()
    expect(page.locator("#sms-sender")).to_have_text("Testladen")
    text = "Testladen: Hallo Clara, neue Ware bei Testladen!"
    expect(page.locator("#preview-text")).to_have_text(text)
    expect(page.locator("#sms-counter")).to_have_text(str(len(text)))
    page.fill("#c-body", "x" * 150)
    expect(page.locator("#sms-too-long")).to_be_visible()
    page.screenshot(path=str(artifacts_dir / "dashboard-campaign-builder.png"), full_page=True)
    # the JSON endpoint wants the form's CSRF token like every form
    assert page.request.post(f"{server}/campaigns/count", form={"channel": "email"}).status == 403


def test_count_without_javascript(browser, server, owner_state):
    with user_page(browser, server, owner_state, java_script_enabled=False) as page:
        page.goto("/campaigns")
        _filter(page, 0, "last_name", "starts", "Do")
        page.fill("#c-body", "Guten Tag {last_name}")
        page.click("#count")
        expect(page.locator("#live-count")).to_have_text("1")
        expect(page.locator("#preview-text")).to_have_text("Guten Tag Dorn")
        assert page.input_value("#f0-value") == "Do"  # the form keeps what was typed


def test_suggestion_from_ai_endpoint_and_template_fallback(owner, hub):
    page = owner
    page.goto("/campaigns")
    page.select_option("#c-purpose", "birthday")
    page.click("#draft")
    expect(page.locator("#draft-note")).to_contain_text("Vorlage")
    assert page.input_value("#c-body") == (
        "Liebe/r {first_name}, das Team von Testladen wünscht Ihnen alles Gute zum Geburtstag!")

    peer = Peer(lambda path, body: (200, {"choices": [{"message": {
        "content": "Hallo {first_name}, herzlichen Glückwunsch von Testladen!"}}]}))
    try:
        page.fill("#ai-url", peer.url + "/v1")
        page.fill("#ai-model", "llama3")
        page.fill("#ai-key", "geheim")
        page.click("#ai-save")
        expect(page.locator("#ai-status")).to_contain_text("llama3")
        page.fill("#c-name", "Geburtstag")
        page.select_option("#c-channel", "sms")
        page.select_option("#c-purpose", "birthday")
        page.click("#draft")
        expect(page.locator("#draft-note")).to_contain_text("KI")
        assert page.input_value("#c-body") == "Hallo {first_name}, herzlichen Glückwunsch von Testladen!"
        assert page.input_value("#c-name") == "Geburtstag"  # the rest of the form stays
        ((path, headers, body),) = peer.requests
        assert path == "/v1/chat/completions" and body["model"] == "llama3"
        assert headers["Authorization"] == "Bearer geheim"
        assert "Adler" not in str(body) and "Anna" not in str(body)  # no customer data for a campaign
        assert "139 Zeichen" in body["messages"][0]["content"]  # 150 minus "Testladen: "
    finally:
        peer.close()
    page.click("#ai-remove")
    expect(page.locator("#ai-status")).to_contain_text("Vorlagen")
    assert _count(hub, "SELECT count(*) FROM messaging_credentials WHERE channel = 'ai'") == 0


def test_send_queues_once_and_exports_the_audience(owner, hub, artifacts_dir):
    """GIVEN a campaign to Köln by e-mail WHEN it is sent, the form resubmitted and sent again
    THEN each recipient has exactly one message, and the Excel list holds the same people."""
    page = owner
    page.goto("/campaigns")
    page.fill("#c-name", "Sommer")
    _filter(page, 0, "city", "=", "Köln")
    page.fill("#c-subject", "Sommer bei {shop}")
    page.fill("#c-body", "Hallo {first_name}, der Sommer ist da.")
    typed = page.eval_on_selector("#campaign-form", "f => Object.fromEntries(new FormData(f))")
    page.click("#save")
    page.wait_for_url("**/campaigns/*")
    campaign_url = page.url
    again = page.request.post("/campaigns", form={**typed, "action": "save"})  # sent twice
    assert again.url == campaign_url  # the same campaign, not a second one
    expect(page.locator("#campaign-count")).to_have_text("2")
    expect(page.locator("#preview-text")).to_have_text("Hallo Anna, der Sommer ist da.")
    expect(page.locator("#preview-subject")).to_have_text("Sommer bei Testladen")
    page.click("#send")  # not confirmed: nothing happens
    expect(page.locator(".flash.error")).to_be_visible()
    assert _count(hub, "SELECT count(*) FROM message_addressed WHERE purpose = 'campaign'") == 0
    stale = page.context.new_page()  # a second tab with the same confirm form
    stale.goto(campaign_url)
    page.goto(campaign_url)
    page.check("#send-confirm")
    page.click("#send")
    expect(page.locator(".flash.ok")).to_contain_text("2")
    expect(page.locator("#campaign-queued")).to_have_text("2")
    page.screenshot(path=str(artifacts_dir / "dashboard-campaign-sent.png"), full_page=True)
    stale.check("#send-confirm")
    stale.click("#send")
    expect(stale.locator(".flash.warn")).to_be_visible()
    cid = campaign_url.rsplit("/", 1)[1]
    assert _count(hub, "SELECT count(*) FROM campaigns WHERE name = 'Sommer'") == 1
    rows = hub.db.execute(
        "SELECT o.recipient, o.subject, o.body FROM message_addressed a JOIN messages_outbox o"
        " ON o.id = a.message_id WHERE a.campaign_id = ? ORDER BY o.recipient", [cid]).fetchall()
    assert rows == [("adler@example.org", "Sommer bei Testladen", "Hallo Anna, der Sommer ist da."),
                    ("conrad@example.org", "Sommer bei Testladen", "Hallo Clara, der Sommer ist da.")]

    with page.expect_download() as info:
        page.click("#export-audience")
    sheet = load_workbook(io.BytesIO(Path(info.value.path()).read_bytes())).active
    table = list(sheet.iter_rows(values_only=True))
    names = sorted(r[table[0].index("Nachname")] for r in table[1:])
    assert names == ["Adler", "Conrad"]
    page.goto("/campaigns")
    expect(page.locator("#campaigns")).to_contain_text("Sommer")


def test_bad_filter_value_explains_and_creates_nothing(owner, hub):
    page = owner
    page.goto("/campaigns")
    before = _count(hub, "SELECT count(*) FROM campaigns")
    page.fill("#c-name", "Falsch")
    page.fill("#c-subject", "Betreff")
    page.fill("#c-body", "Text")
    _filter(page, 0, "birth_month", "=", "13")
    expect(page.locator("#count-error")).to_contain_text("1 bis 12")  # live, before saving
    expect(page.locator("#live-count")).to_have_text("–")
    _filter(page, 1, "group", "=", "Gibtsnicht")
    _filter(page, 2, "birth_date", "<", "31.02.1990")
    page.click("#save")
    expect(page.locator("#form-error")).to_be_visible()
    expect(page.locator(".error[data-field='f0']")).to_contain_text("1 bis 12")
    expect(page.locator(".error[data-field='f1']")).to_contain_text("Gibtsnicht")
    expect(page.locator(".error[data-field='f2']")).to_contain_text("TT.MM.JJJJ")
    assert page.input_value("#f0-value") == "13"
    assert _count(hub, "SELECT count(*) FROM campaigns") == before


def test_single_message_respects_consent(owner, hub):
    """GIVEN Berger without e-mail consent WHEN advertising is sent THEN it is refused with a
    reason; a "repair ready" message needs no consent and is queued once."""
    page = owner
    cid = hub.ids["Berger"]
    page.goto(f"/customers/{cid}")
    page.select_option("#m-purpose", "single")
    page.fill("#m-body", "Hallo Bernd, kommen Sie vorbei!")
    page.click("#m-send")
    expect(page.locator("#message-error")).to_contain_text("nicht zugestimmt")
    assert page.input_value("#m-body") == "Hallo Bernd, kommen Sie vorbei!"
    assert _count(hub, "SELECT count(*) FROM message_addressed WHERE customer_id = ?", [cid]) == 0

    page.select_option("#m-purpose", "repair_ready")
    page.click("#m-draft")
    expect(page.locator("#m-draft-note")).to_be_visible()
    assert page.input_value("#m-body").startswith("Guten Tag Bernd Berger, Ihre Reparatur ist fertig")
    page.fill("#m-subject", "Ihre Uhr")
    page.click("#m-send")
    page.wait_for_url(f"**/customers/{cid}")
    expect(page.locator(".flash.ok")).to_be_visible()
    rows = hub.db.execute(
        "SELECT o.channel, o.recipient, o.subject, o.reason FROM message_addressed a"
        " JOIN messages_outbox o ON o.id = a.message_id WHERE a.customer_id = ?", [cid]).fetchall()
    assert rows == [("email", "berger@example.org", "Ihre Uhr", "repair_ready")]


def _voucher_preview(page, value="10"):
    page.goto("/campaigns/automations")
    page.fill("#v-start", "2026-03-01")
    page.fill("#v-end", "2026-03-31")
    page.fill("#v-turnover", "100")
    page.fill("#v-visits", "2")
    page.fill("#v-value", value)
    page.click("#v-preview")


def test_voucher_run_preview_then_confirm_twice_gives_one_set(owner, hub, artifacts_dir):
    """GIVEN March sales WHEN the run is previewed and confirmed from two tabs THEN one voucher
    is issued and sent; a customer without consent is listed but gets none."""
    page = owner
    _voucher_preview(page)
    rows = page.locator("#voucher-candidates tbody tr")
    expect(rows).to_have_count(2)  # Dorn: one visit only
    expect(page.locator("tr.state-ok")).to_contain_text("Adler")
    expect(page.locator("tr.state-no_consent")).to_contain_text("Berger")
    expect(page.locator("#v-run")).to_contain_text("1")
    page.screenshot(path=str(artifacts_dir / "dashboard-voucher-run.png"), full_page=True)
    twin = page.context.new_page()  # the same confirmation open twice (a double submit)
    _voucher_preview(twin)
    page.click("#v-run")
    expect(page.locator(".flash.ok")).to_contain_text("1")
    twin.click("#v-run")
    expect(twin.locator(".flash.warn")).to_be_visible()
    expect(twin.locator("#voucher-runs")).to_contain_text("2026-03-01..2026-03-31")
    expect(twin.locator("#auto-gift_voucher")).to_contain_text("1")
    # the message log speaks German, not the stored codes
    expect(twin.locator("#messages tbody tr").first).to_contain_text("Geschenkgutschein")
    expect(twin.locator("#messages tbody tr").first).to_contain_text("wartend")
    twin.close()
    adler = hub.ids["Adler"]
    assert _count(hub, "SELECT count(*) FROM giftcards WHERE customer_id = ?", [adler]) == 1
    assert _count(hub, "SELECT count(*) FROM giftcards") == 1
    (body,) = hub.db.execute("SELECT body FROM messages_outbox WHERE reason = 'gift_voucher'").fetchone()
    assert "Anna" in body and "10,00 €" in body
    _voucher_preview(page)
    expect(page.locator("tr.state-done")).to_contain_text("Adler")
    expect(page.locator("#v-nothing")).to_be_visible()
    _voucher_preview(page, value="zehn")
    expect(page.locator(".error[data-field='value']")).to_be_visible()
    assert _count(hub, "SELECT count(*) FROM giftcards") == 1
