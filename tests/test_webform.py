"""The clipad form on the customer's phone: served by the hub, answered like the tablet's.

A real Mosquitto, the hub and a till (engine + sync client) share the store key; the till
makes a "web" session and its signed link; the dashboard app (uvicorn on a loopback port)
serves the form; the answer is stored on the hub and reaches the till through the feed.
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from storehub import webform
from storehub.dashboard import create_app
from storehub.hub import Hub

from kiosk.engine import clipad, customers, questions, settings
from kiosk.engine.store import Identity, Store
from kiosk.i18n import _
from kiosk.sync import SyncClient
from tests.support.broker import device_config, hub_config, store_broker
from tests.support.net import LOOPBACK, free_port, wait_for_port

pytestmark = pytest.mark.broker

STORE = "teststore"


def wait_for(cond, timeout: float = 30.0, what: str = ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def shop(tmp_path):
    broker = store_broker(tmp_path, STORE, ["till-1"]).start()
    key = (broker.conf_dir / "secret.key").read_bytes().strip()
    hub_store = Store(tmp_path / "hub.db", Identity(STORE, "hub", 99), secret_key=key)
    with hub_store.transaction():
        settings.set(hub_store, "shop.name", "Modehaus Lindner")
        settings.set(hub_store, "customer.mandatory_fields", ["last_name", "email"])
        questions.define(hub_store, "style", "Favourite style", "choice", ["Casual", "Classic"])
    hub = Hub(hub_store, hub_config(broker)).start()
    cfg = device_config(broker, "till-1")
    till_store = Store(tmp_path / "till-1.db", cfg.identity, secret_key=cfg.secret_key())
    till = SyncClient(till_store, cfg.hub).start()
    app = create_app(hub_store.clone(), secret_key="test-secret")
    import uvicorn

    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host=LOOPBACK, port=port, log_level="warning",
                                        lifespan="off"))  # fmt: skip
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    wait_for_port(port)
    yield {"url": f"http://{LOOPBACK}:{port}", "hub": hub_store, "till": till_store, "sync": till}
    srv.should_exit = True
    thread.join(10)
    app.state.pool.close()
    till.stop()
    hub.stop()
    broker.stop()
    till_store.close()
    hub_store.close()


def fetch(url: str, form: dict | None = None) -> tuple[int, str]:
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    try:
        with urllib.request.urlopen(url, data=data, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_phone_form_lands_on_the_till(shop):
    """GIVEN a till that asked for the phone form for a new customer
    WHEN the customer opens the QR link, first forgets a mandatory field, then sends the form
    THEN the customer is stored on the hub with source "clipad" and the e-mail consent, and the
    till sees the session submitted with that customer; the link cannot be used again."""
    till = shop["till"]
    with till.transaction():
        sid = clipad.request(till, "web",
                             prefill={"first_name": "Jörg"})  # fmt: skip
    shop["sync"].wake()
    url = webform.form_url(shop["url"], webform.make_token(till.secret_key, sid))
    wait_for(lambda: fetch(url)[0] == 200, what="session at the hub")
    status, html = fetch(url)
    assert "Modehaus Lindner" in html and 'value="Jörg"' in html
    assert settings.get(shop["hub"], "consent.email_text") in html  # the full consent text
    assert "Favourite style" in html and 'name="answers.style"' in html

    form = {"first_name": "Jörg", "last_name": "Müller", "email_consent": "on",
            "answers.style": "Classic", "confirmed": "on"}  # fmt: skip
    status, html = fetch(url, form)
    assert status == 400 and _("Please fill in this field.") in html  # e-mail is mandatory here
    assert clipad.get(shop["hub"], sid).status == "requested"

    status, html = fetch(url, {**form, "email": "joerg@example.de"})
    assert status == 200 and _("Thank you! Your details were saved.") in html
    done = wait_for(lambda: clipad.finished_for_till(till, "till-1"), what="session at the till")
    record = customers.get(till, done[0].customer_id)
    assert (record["last_name"], record["email"], record["email_consent"], record["sms_consent"]) == (
        "Müller", "joerg@example.de", True, False)
    assert record["answers"] == {"style": "Classic"}
    assert record["email_consent_source"] == "clipad" and record["email_consent_at"]

    status, html = fetch(url, {**form, "email": "other@example.de"})
    assert status == 404 and _("This form was closed already.") in html


def test_forged_and_expired_links_are_refused(shop):
    till = shop["till"]
    status, html = fetch(f"{shop['url']}/f/not-a-token")
    assert status == 404 and _("This link is not valid.") in html
    other_key = webform.make_token(b"another-store-key", "01ABC")
    assert fetch(f"{shop['url']}/f/{other_key}")[0] == 404
    token = webform.make_token(till.secret_key, "01ABC")
    assert webform.read_token(till.secret_key, token) == "01ABC"
    with pytest.raises(clipad.ClipadError, match=_("This link has expired. Please ask at the till for a new one.")[:12]):
        webform.read_token(till.secret_key, token, max_age=-1)


def test_collect_keeps_only_what_was_filled_in(shop):
    spec = webform.form_spec(shop["hub"])
    names = [f.name for s in spec for f in s.fields]
    assert names[:3] == ["gender", "first_name", "last_name"]
    assert names[-2:] == ["email_consent", "sms_consent"]
    data = webform.collect(spec, {"first_name": " Eva ", "last_name": "", "sms_consent": "on"})
    assert data == {"first_name": "Eva", "email_consent": False, "sms_consent": True}
