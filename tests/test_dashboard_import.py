"""Excel import of customers through the dashboard: real uvicorn, Chromium, real SQLite.

Upload -> column mapping -> check in a background thread (progress) -> per-row errors and
duplicates -> all-or-nothing import. Broken and hostile files are refused with the engine's
message and nothing reaches the store.
"""

from __future__ import annotations

import io
import re
import zipfile

import openpyxl
import pytest
import requests
from playwright.sync_api import expect
from storehub import db as hubdb
from storehub.dashboard import create_app, users
from storehub.dashboard.app import make_templates
from storehub.dashboard.extras import ImportJob

from kiosk.engine import customer_import, customers, events
from kiosk.engine.store import Identity, Store
from tests.support.dashboard import PASSWORD, chromium, logged_in_state, login, serve, user_page

pytestmark = pytest.mark.browser
expect.set_options(timeout=15_000)



def xlsx(rows: list[list]) -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    for row in rows:
        ws.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def zip_bomb() -> bytes:
    """A real workbook plus one part that inflates 1000-fold (a few kB on the wire)."""
    buf = io.BytesIO(xlsx([["Nachname"], ["Bomb"]]))
    with zipfile.ZipFile(buf, "a", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("xl/media/padding.xml", b"\0" * (20 * 2**20))
    return buf.getvalue()


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    path = tmp_path_factory.mktemp("hub") / "hub.db"
    store = Store(path, Identity("teststore", "hub", 0))
    hubdb.open_hub_store(store)
    users.install(store)
    users.set_user(store, "owner", PASSWORD, "owner")
    users.set_user(store, "kasse", PASSWORD, "cashier")
    customers.create(store, {"first_name": "Anna", "last_name": "Schröder", "postcode": "10115"},
                     force=True)  # fmt: skip
    yield store
    store.close()


@pytest.fixture(scope="module")
def app(hub):
    app = create_app(hub.clone(), secret_key="test-secret")
    yield app
    app.state.pool.close()


@pytest.fixture(scope="module")
def server(app):
    with serve(app) as url:
        yield url


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


def upload(page, data: bytes, name: str = "kunden.xlsx") -> None:
    page.goto("/customers")
    page.click("#import-link")
    page.wait_for_url("**/import")
    page.set_input_files("#file", files=[{"name": name, "mimeType": "application/octet-stream",
                                          "buffer": data}])  # fmt: skip
    page.click("#upload")


def counts(store) -> tuple[int, int]:
    return (store.db.execute("SELECT count(*) FROM customers").fetchone()[0],
            store.db.execute("SELECT count(*) FROM events").fetchone()[0])  # fmt: skip


def test_import_maps_columns_shows_row_errors_then_imports_all(owner, hub, artifacts_dir):
    page = owner
    before = counts(hub)
    bad = xlsx([["Vorname", "Familie", "PLZ", "Notiz"],
                ["Eva", "Neumann", "20095", "x"],
                ["Max", "Kurz", "123", "y"]])  # fmt: skip
    upload(page, bad)
    page.wait_for_url(re.compile(r".*/import/[\w-]+$"))
    # "Familie" is not a known header: the proposal leaves it out, the owner maps it
    expect(page.locator("#mapping")).to_be_visible()  # after the reading page refreshed itself
    assert page.locator("#col-0").input_value() == "first_name"
    assert page.locator("#col-1").input_value() == ""
    page.select_option("#col-1", "last_name")
    page.click("#check")
    expect(page.locator("#row-errors")).to_be_visible()
    errors = page.locator("#row-errors tbody").inner_text()
    assert "3" in errors and "C (PLZ)" in errors
    expect(page.locator("#fix-file")).to_be_visible()
    assert page.locator("#commit").count() == 0  # all or nothing: no import with errors
    assert counts(hub) == before

    good = xlsx([["Vorname", "Nachname", "PLZ"],
                 ["Eva", "Neumann", "20095"],
                 ["Anna", "Schröder", "10115"],  # like the stored customer
                 ["Max", "Kurz", "80331"]])  # fmt: skip
    upload(page, good)
    page.wait_for_url(re.compile(r".*/import/[\w-]+$"))
    page.click("#check")
    expect(page.locator("#row-duplicates")).to_be_visible()
    assert "Schröder" in page.locator("#row-duplicates").inner_text()
    page.screenshot(path=str(artifacts_dir / "dashboard-import-check.png"), full_page=True)
    page.check("input[name=duplicates][value=skip]")
    page.click("#commit")
    expect(page.locator("#import-done")).to_be_visible()
    assert "2" in page.locator("#import-done").inner_text()
    progress = page.request.get(page.url + "/progress").json()
    assert progress["status"] == "done" and progress["created"] == 2 and progress["percent"] == 100
    names = {r[0] for r in hub.db.execute("SELECT last_name FROM customers")}
    assert {"Neumann", "Kurz"} <= names
    created = events.history(hub, "customer.created", limit=10)
    assert sum(1 for e in created if e.payload.get("source") == "import") == 2
    assert ("owner", "customers.import") in [(r["user"], r["action"]) for r in users.audit_log(hub)]


@pytest.mark.parametrize("data, message", [
    (b"Name;PLZ\nMeier;10115\n", "keine Excel-Arbeitsmappe"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600, ".xls"),
    (xlsx([["Nachname", "Ort"], ["Formel", "=HYPERLINK(\"http://x\",\"y\")"]]), "B2"),
    (None, "Zip-Bombe|zip bomb|200"),
])  # fmt: skip
def test_hostile_uploads_are_refused_and_nothing_is_imported(owner, hub, data, message):
    page = owner
    before = counts(hub)
    upload(page, zip_bomb() if data is None else data)
    refused = page.locator("#import-refused")
    expect(refused).to_be_visible()
    assert re.search(message, refused.inner_text()), refused.inner_text()
    assert counts(hub) == before


def test_a_huge_upload_is_refused_by_size(owner, hub, app):
    page = owner
    before = counts(hub)
    old = app.state.import_limits
    app.state.import_limits = customer_import.Limits(max_file_bytes=4_000)
    try:
        upload(page, xlsx([["Nachname", "Notiz"]] + [[f"Name {i}", f"Notiz {i * 7919}"] for i in range(2000)]))
        expect(page.locator("#import-refused")).to_be_visible()
        assert "kB" in page.locator("#import-refused").inner_text()
    finally:
        app.state.import_limits = old
    assert counts(hub) == before


def test_import_needs_a_manager_and_a_csrf_token(browser, server, hub):
    with user_page(browser, server, locale=None) as page:
        login(page, "kasse")
        assert page.goto("/import").status == 403
        assert "/import" not in page.eval_on_selector_all("header nav a",
                                                          "els => els.map(e => e.href)")  # fmt: skip
    anonymous = requests.get(f"{server}/import", allow_redirects=False, timeout=10)
    assert anonymous.status_code == 303 and "/login" in anonymous.headers["location"]
    # a forged post without the session's token changes nothing
    before = counts(hub)
    forged = requests.post(f"{server}/import", files={"file": ("k.xlsx", xlsx([["Nachname"], ["X"]]))},
                           data={"csrf": "guess"}, allow_redirects=False, timeout=10)  # fmt: skip
    assert forged.status_code in (303, 403) and counts(hub) == before


def test_a_logged_in_upload_without_the_csrf_token_is_refused(owner, hub):
    owner.goto("/import")
    before = counts(hub)
    response = owner.request.post("/import", multipart={
        "csrf": "not-the-token",
        "file": {"name": "k.xlsx", "mimeType": "application/octet-stream",
                 "buffer": xlsx([["Nachname"], ["Fremd"]])}})  # fmt: skip
    assert response.status == 403 and counts(hub) == before


def test_another_users_import_stays_private(owner, hub, browser, server):
    upload(owner, xlsx([["Nachname"], ["Privat"]]))
    owner.wait_for_url(re.compile(r".*/import/[\w-]+$"))
    url = owner.url
    users.set_user(hub, "chefin", PASSWORD, "manager")
    with user_page(browser, server, locale=None) as page:
        login(page, "chefin")
        assert page.goto(url).status == 404


def test_the_running_page_shows_a_progress_bar_and_refreshes_itself():
    table = customer_import.Table("Kunden", ("Kunden",), 1, ("Nachname",), ((2, ("A",)),))
    job = ImportJob("tok", "owner", "k.xlsx", table, {0: "last_name"}, status="importing")
    job.progress("import", 250, 1000)
    html = make_templates().env.get_template("import_job.html").render(
        job=job, stage_label="Importing", user={"name": "owner"}, menu=[], path="/import/tok",
        csrf="x", flashes=[], errors={}, form={})  # fmt: skip
    assert '<meta http-equiv="refresh" content="1">' in html
    assert 'value="25"' in html and "250 / 1000" in html
    job.status = "done"
    assert job.percent == 25 and not job.running
    failed = ImportJob("tok", "owner", "k.xlsx", table, {}, status="failed", error="Kaputt.")
    html = make_templates().env.get_template("import_job.html").render(
        job=failed, stage_label="", user={"name": "owner"}, menu=[], path="/import/tok",
        csrf="x", flashes=[], errors={}, form={})  # fmt: skip
    assert "Kaputt." in html and "refresh" not in html  # a crashed check has no report to show
