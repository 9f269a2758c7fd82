"""End to end: an edit in the dashboard reaches a till through the hub and a real Mosquitto.

Browser → dashboard (engine command on the hub's Store) → hub service sequences the event →
feed over MQTT → the till's SyncClient applies it. Nothing of this path is replaced.
"""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect
from storehub.dashboard import create_app, users
from storehub.hub import Hub

from kiosk.engine import customers, settings
from kiosk.engine.store import Identity, Store
from kiosk.sync import SyncClient
from tests.support.broker import device_config, hub_config, store_broker
from tests.support.dashboard import PASSWORD, chromium, login, serve

pytestmark = [pytest.mark.broker, pytest.mark.browser]
expect.set_options(timeout=15_000)

STORE = "teststore"


def wait_until(cond, timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("shop")
    broker = store_broker(tmp, STORE, ["till-1"]).start()
    hub_store = Store(tmp / "hub.db", Identity(STORE, "hub", 99))
    users.install(hub_store)
    users.set_user(hub_store, "owner", PASSWORD, "owner")
    hub = Hub(hub_store, hub_config(broker)).start()
    till_store = Store(tmp / "till-1.db", Identity(STORE, "till-1", 1))
    till = SyncClient(till_store, device_config(broker, "till-1").hub).start()
    app = create_app(hub_store.clone(), secret_key="test-secret")
    with serve(app) as url:
        yield {"url": url, "hub": hub_store, "till": till_store}
    app.state.pool.close()
    till.stop()
    hub.stop()
    broker.stop()
    till_store.close()
    hub_store.close()


@pytest.fixture(scope="module")
def page(shop):
    with chromium() as browser:
        pg = browser.new_context(base_url=shop["url"]).new_page()
        login(pg)
        yield pg


def test_loyalty_setting_reaches_the_till(page, shop):
    page.goto("/loyalty")
    page.fill("[name='loyalty.redeem_points']", "250")
    page.click("#save-settings")
    expect(page.locator(".flash.ok")).to_be_visible()
    wait_until(lambda: settings.get(shop["till"], "loyalty.redeem_points") == 250, 30,
               "the setting at the till")  # fmt: skip


def test_erasure_in_the_dashboard_reaches_the_till(page, shop):
    made = customers.create(shop["till"], {"first_name": "Gerd", "last_name": "Löschmich"})
    wait_until(lambda: shop["hub"].db.execute(
        "SELECT 1 FROM customers WHERE id = ?", [made["id"]]).fetchone() is not None, 30,
        "the new customer at the hub")  # fmt: skip
    page.goto(f"/customers/{made['id']}")
    page.check("#erase-confirm")
    page.click("#erase")
    page.wait_for_url("**/customers")
    wait_until(lambda: shop["till"].db.execute(
        "SELECT erased_at FROM customers WHERE id = ?", [made["id"]]).fetchone()[0] is not None,
        30, "the erasure at the till")  # fmt: skip
    row = shop["till"].db.execute(
        "SELECT last_name, first_name FROM customers WHERE id = ?", [made["id"]]).fetchone()
    assert row == (None, None)
