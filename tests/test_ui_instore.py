"""Clipad, customer display, survey and the till's directives with two apps and a real broker.

Two Kivy apps cannot share one process (one window), so one device runs in this process,
driven through its widgets, and the other runs as ``python -m kiosk --config … --mode …`` on
its own Xvfb display. They meet only through Mosquitto and the hub, as in the shop.
Screenshots of every mode go to tests/artifacts/ (and docs/screenshots/).
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from storehub.hub import Hub

from kiosk.config import load
from kiosk.display_link import basket_topic
from kiosk.engine import (
    catalog,
    clipad,
    customers,
    directives,
    events,
    loyalty,
    questions,
    sale,
    settings,
    surveys,
)
from kiosk.engine.display import Snapshot
from kiosk.engine.store import Identity, Store
from tests.support.broker import hub_config, store_broker

pytestmark = [pytest.mark.display, pytest.mark.broker]

STORE = "teststore"
DEVICES = ["till-1", "clipad-1", "display-1", "survey-1"]
ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "screenshots"
UPDATE_DOCS = bool(os.environ.get("KIOSK_UPDATE_DOCS"))  # README pictures only when asked
SCARF = "2000000000015"


def wait_for(cond, timeout: float = 30.0, what: str = ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or cond}")


def shot(driver, artifacts_dir, name: str) -> None:
    path = driver.screenshot(artifacts_dir / f"{name}.png")
    if UPDATE_DOCS:
        DOCS.mkdir(parents=True, exist_ok=True)
        (DOCS / path.name).write_bytes(path.read_bytes())


class Shop:
    """Broker with per-device passwords and ACL, the hub, and the shop's data on the hub."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.broker = store_broker(tmp, STORE, DEVICES).start()
        key = (self.broker.conf_dir / "secret.key").read_bytes().strip()
        self.hub_store = Store(tmp / "hub.db", Identity(STORE, "hub", 99), secret_key=key)
        st = self.hub_store
        with st.transaction():
            settings.set(st, "shop.name", "Modehaus Lindner")
            settings.set(st, "customer.mandatory_fields", ["last_name", "email"])
            settings.set(st, "loyalty.enabled", True)
            questions.define(st, "style", "Favourite style", "choice", ["Casual", "Classic"])
            group = catalog.save_group(st, "Accessories", kind="goods")
            catalog.save_product(st, "Wool scarf", 2995, group_id=group, eans=[SCARF])
            anna = customers.create(st, {"first_name": "Anna", "last_name": "Berger",
                                         "email": "anna@example.de"}, force=True)  # fmt: skip
            loyalty.adjust(st, anna["id"], 30, "welcome")
        self.anna = anna
        self.hub = Hub(self.hub_store, hub_config(self.broker)).start()
        self.states: dict[str, bytes] = {}
        self.probe = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
                                 client_id="probe-states")  # fmt: skip
        self.probe.username_pw_set("hub", (self.broker.conf_dir / "hub.password").read_text().strip())
        self.probe.on_message = lambda _c, _u, m: self.states.__setitem__(m.topic.split("/")[3], m.payload)
        self.probe.on_connect = lambda c, *_a: c.subscribe(f"retail/v1/{STORE}/+/$state")
        self.probe.connect(self.broker.host, self.broker.port)
        self.probe.loop_start()

    def state_of(self, device: str) -> bytes | None:
        return self.states.get(device)

    def config(self, device: str, mode: str, *, paired_till: str = "", idle_timeout_s: int = 90):
        """The device's enrolled TOML with a data dir, language and pairing added."""
        src = self.broker.conf_dir / "devices" / f"{device}.toml"
        data_dir = self.tmp / device
        data_dir.mkdir(exist_ok=True)
        text = src.read_text().replace(
            "[device]\n", f'[device]\ndata_dir = "{data_dir}"\nlanguage = "de"\n', 1)
        text = text.replace('mode = "till"', f'mode = "{mode}"')
        text += (f'\n[ui]\npaired_till = "{paired_till}"\nidle_timeout_s = {idle_timeout_s}\n'
                 'width = 1280\nheight = 800\n')  # fmt: skip
        path = src.with_name(f"{device}-test.toml")
        path.write_text(text)
        return path

    def close(self) -> None:
        self.probe.disconnect()
        self.probe.loop_stop()
        self.hub.stop()
        self.broker.stop()
        self.hub_store.close()


@pytest.fixture
def shop(tmp_path):
    s = Shop(tmp_path)
    yield s
    s.close()


class OtherApp:
    """A kiosk app in a subprocess on its own X display (screenshots through Pillow)."""

    def __init__(self, config: Path, mode: str, tmp: Path) -> None:
        from tests.support.xvfb import Xvfb

        self.x = Xvfb()
        self.display = self.x.start()
        env = dict(os.environ, DISPLAY=self.display, KIVY_HOME=str(tmp / f"kivy-{mode}"))
        self.log = (tmp / f"{mode}.log").open("w")
        self.proc = subprocess.Popen([sys.executable, "-m", "kiosk", "--config", str(config),
                                      "--mode", mode], env=env, cwd=ROOT,
                                     stdout=self.log, stderr=subprocess.STDOUT)  # fmt: skip

    def grab(self, path: Path):
        from PIL import ImageGrab

        image = ImageGrab.grab(xdisplay=self.display)
        image.save(path)
        if UPDATE_DOCS:
            DOCS.mkdir(parents=True, exist_ok=True)
            image.save(DOCS / path.name)
        return image

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()
        self.x.stop()


def start_app(config_path: Path, mode: str):
    from kiosk.app import KioskApp, configure_kivy
    from tests.support.kivy_driver import KivyDriver

    cfg = load(config_path)
    cfg = dataclasses.replace(cfg, ui=dataclasses.replace(cfg.ui, fullscreen=False))
    configure_kivy(cfg.ui)
    store = Store(cfg.db_path, cfg.identity, secret_key=cfg.secret_key())
    return KivyDriver.start(KioskApp(cfg, mode, store=store))


def stop_app(ui) -> None:
    """Stop the app, drop its pending repaint (it would run in the next test), close its DB."""
    app = ui.app
    app.store_changed = lambda: None  # the sync thread's "repaint" must not outlive the app
    ui.pump(3)
    app._refresh_trigger.cancel()
    ui.stop()
    app._refresh_trigger.cancel()
    app.store.close()


def synced(driver, store_of, cond, what: str, timeout: float = 30):
    """Pump the UI until a condition on the app's store holds (sync runs in its thread)."""
    return driver.wait_until(lambda: cond(store_of()), timeout=timeout, what=what)


def test_clipad_form_from_the_till_lands_on_the_till(shop, tmp_path, artifacts_dir):
    """GIVEN a till (subprocess) and its paired clipad tablet (this process) online
    WHEN the cashier sends the form for a new customer and the customer fills it in with the
    on-screen keyboard (umlaut, @), agrees to e-mail advertising and confirms
    THEN the customer exists with source "clipad" and consent, the till's sale carries it, and
    the tablet is empty and idle again; an idle timeout also clears the tablet."""
    till = OtherApp(shop.config("till-1", "till"), "till", tmp_path)
    ui = start_app(shop.config("clipad-1", "clipad", paired_till="till-1", idle_timeout_s=120),
                   "clipad")  # fmt: skip
    app = ui.app
    try:
        synced(ui, lambda: app.store, lambda st: questions.all_questions(st), "questions synced")
        ui.wait_until(lambda: app.screens.current == "clipad_idle", what="idle screen")
        shot(ui, artifacts_dir, "clipad-idle")
        till_db = tmp_path / "till-1" / "till-1.db"
        # the cashier's "Clipad" button, written into the till's own database (its app sends it)
        # (only once the till is up: a second connection must not race its migrations)
        wait_for(lambda: shop.state_of("till-1") == b"ready", what="till online")
        till_store = wait_for(lambda: open_store(till_db, "till-1"), what="till started")
        try:
            wait_for(lambda: open_draft_customer(till_store) is not None, what="till ready")
            with till_store.transaction():
                sid = clipad.request(till_store, "@till-1", prefill={"first_name": "Jörg"})
        finally:
            till_store.close()

        ui.wait_until(lambda: app.screens.current == "clipad", timeout=30, what="form on the tablet")
        form = app.screen("clipad")
        assert form.fields["first_name"].get_value() == "Jörg"
        assert form.fields["last_name"].mandatory and form.fields["email"].mandatory
        consent = form.fields["email_consent"]
        assert consent.text == settings.get(app.store, "consent.email_text") and consent.text
        # nothing typed: the mandatory fields are refused, nothing is written
        ui.tap(ui.find("next"))
        assert form.fields["last_name"].error and form.fields["email"].error
        ui.type_text("M", into=form.fields["last_name"].input)
        ui.tap(ui.find_button("ü"))  # the German keyboard's umlaut key
        ui.type_text("ller", into=None)
        email = form.fields["email"].input
        ui.type_text("joerg", into=email)
        ui.tap(ui.find_button("@"))
        ui.type_text("example.de", into=None)
        ui.tap(consent.toggle)
        ui.tap(form.fields["answers.style"].toggles[1])
        shot(ui, artifacts_dir, "clipad")
        ui.tap(ui.find("next"))
        ui.wait_until(lambda: app.screens.current == "clipad_confirm", what="confirmation step")
        texts = ui.texts()
        assert "Müller" in texts and "joerg@example.de" in texts and "Classic" in texts
        shot(ui, artifacts_dir, "clipad-confirm")
        ui.tap(ui.find("confirm"))
        ui.wait_until(lambda: app.screens.current == "clipad_idle", what="idle after validation")
        assert app.screen("clipad").fields == {} and app.screen("clipad_confirm").data == {}
        assert not any("Müller" in t or "joerg" in t for t in ui.texts())

        # the till attaches the customer to its open sale
        def till_sale_customer():
            st = open_store(till_db, "till-1")
            if st is None:
                return None
            try:
                s = clipad.get(st, sid)
                if s.status != "submitted":
                    return None
                return open_draft_customer(st) == (s.customer_id,) and s.customer_id
            except clipad.ClipadError:
                return None
            finally:
                st.close()

        cid = wait_for(till_sale_customer, what="customer on the till's sale")
        record = customers.get(app.store, cid)
        assert (record["last_name"], record["email"], record["email_consent"]) == (
            "Müller", "joerg@example.de", True)
        assert record["answers"] == {"style": "Classic"}
        assert record["email_consent_source"] == "clipad" and record["email_consent_at"]
        time.sleep(1.0)  # the till repaints its customer box
        till.grab(artifacts_dir / "clipad-till.png")

        # a second request, then nobody touches the tablet: it cancels and clears itself
        app.clipad_tablet.idle_timeout = 3  # (ui.idle_timeout_s; long above for slow CI frames)
        with app.store.transaction():
            sid2 = clipad.request(app.store, "@till-1", prefill={"first_name": "Eva"})
        ui.wait_until(lambda: app.screens.current == "clipad", what="second form")
        ui.wait_until(lambda: app.screens.current == "clipad_idle", timeout=30, what="idle timeout")
        assert clipad.get(app.store, sid2).status == "cancelled"
        assert app.screen("clipad").fields == {}
    finally:
        stop_app(ui)
        till.stop()


def open_store(path: Path, device: str) -> Store | None:
    """A second connection to another process's database (None while it is being set up)."""
    import sqlite3

    if not path.exists():
        return None
    try:
        return Store(path, Identity(STORE, device, 1))
    except sqlite3.OperationalError:
        return None


def open_draft_customer(store: Store) -> tuple | None:
    """(customer_id,) of the till's open sale, None before the till opened one."""
    import sqlite3

    try:
        return store.db.execute("SELECT customer_id FROM sale_drafts WHERE status = 'open'"
                                " ORDER BY updated_at DESC LIMIT 1").fetchone()  # fmt: skip
    except sqlite3.OperationalError:  # the till has not created its tables yet
        return None


def test_display_mirrors_the_till_basket(shop, tmp_path, artifacts_dir):
    """GIVEN a till (this process) and its customer display (subprocess) online, a directive
    WHEN the cashier scans an article, attaches a customer and asks for the phone form
    THEN the display shows the basket, points and QR code; the till scrolls the directive and
    asks "Kundendatensatz anlegen?" before payment when the sale has no customer."""
    with shop.hub_store.transaction():
        directives.publish(shop.hub_store, "Heute: Schals 2 für 1 – bitte ansprechen!")
    display = OtherApp(shop.config("display-1", "display", paired_till="till-1"), "display", tmp_path)
    ui = start_app(shop.config("till-1", "till"), "till")
    app = ui.app
    probe = _basket_probe(shop)
    try:
        synced(ui, lambda: app.store, lambda st: catalog_ready(st), "catalog synced")
        ticker = app.till_extras.ticker
        ui.wait_until(lambda: "Schals" in ticker.text, timeout=10, what="directive scrolls")

        # without a customer, "Pay" asks first
        app.barcode_scanned(SCARF)
        ui.wait_until(lambda: app.sale.quote and app.sale.quote.lines, what="line")
        ui.tap(ui.find("pay"))
        ui.wait_until(lambda: getattr(app, "nudge_popup", None) and app.nudge_popup.parent,
                      what="nudge")  # fmt: skip
        assert app.nudge_popup.text == "Kundendatensatz anlegen?"
        shot(ui, artifacts_dir, "till-nudge")
        ui.tap(app.nudge_popup.ids.go_on)
        ui.wait_until(lambda: app.screens.current == "payment", what="payment after the nudge")
        app.home()

        app.attach_customer(shop.anna["id"])
        ui.wait_until(lambda: probe.last and probe.last.greeting, what="snapshot with customer")
        # the phone alternative: the QR code goes to the display too
        app.till_clipad.choose()
        ui.pump(3)
        ui.tap(app.till_clipad.popup.ids.to_phone)
        ui.wait_until(lambda: probe.last and probe.last.qr, what="QR on the display")
        snap = probe.last
        assert [ln.name for ln in snap.lines] == ["Wool scarf"]
        assert snap.total_cents == 2995 and snap.greeting.endswith("Anna")
        assert snap.points_balance == 30 and snap.points_to_earn == 2
        assert "/f/" in snap.qr[0][1]
        shot(ui, artifacts_dir, "till-clipad-qr")
        time.sleep(1.5)
        image = display.grab(artifacts_dir / "display.png")
        # the basket half is white (shown), the media half dark
        w, h = image.size
        assert image.getpixel((w // 10, h // 2))[:3] == (255, 255, 255)
        assert sum(image.getpixel((w * 9 // 10, h // 2))[:3]) < 200
        ui.tap(app.till_clipad.popup.ids.close)
        ui.wait_until(lambda: not probe.last.qr, what="QR gone")
    finally:
        probe.disconnect()
        probe.loop_stop()
        stop_app(ui)
        display.stop()


def catalog_ready(st: Store) -> bool:
    try:
        catalog.by_ean(st, SCARF)
    except catalog.UnknownProduct:
        return False
    return bool(st.db.execute("SELECT 1 FROM directives").fetchone()) and bool(
        customers.count(st))


def _basket_probe(shop: Shop) -> mqtt.Client:
    """Subscribe to the till's basket with the display's own credentials (the ACL allows it)."""
    password = (shop.broker.conf_dir / "devices" / "display-1.password").read_text().strip()
    cl = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id="probe-display-1")
    cl.username_pw_set("display-1", password)
    cl.last = None

    def on_message(_c, _u, msg):
        cl.last = Snapshot.decode(msg.payload)

    cl.on_message = on_message
    cl.on_connect = lambda c, *_a: c.subscribe(basket_topic(STORE, "till-1"), qos=0)
    cl.connect(shop.broker.host, shop.broker.port)
    cl.loop_start()
    return cl


def test_survey_after_a_sale(shop, tmp_path, artifacts_dir):
    """GIVEN an active survey and a survey device paired with till-1
    WHEN a sale is completed at till-1 and reaches the device through the hub
    THEN the survey shows; the answer is stored with the sale and reaches the hub."""
    from kiosk.sync import SyncClient
    from tests.support.broker import device_config

    with shop.hub_store.transaction():
        sv = surveys.save(shop.hub_store, "Wie zufrieden waren Sie?", [
            {"text": "Beratung", "kind": "scale", "required": True},
            {"text": "Wie haben Sie uns gefunden?", "kind": "choice",
             "options": ["Empfehlung", "Internet", "Schaufenster"]}])  # fmt: skip
    ui = start_app(shop.config("survey-1", "survey", paired_till="till-1"), "survey")
    app = ui.app
    till_store = Store(tmp_path / "till-engine.db", Identity(STORE, "till-1", 1))
    till = SyncClient(till_store, device_config(shop.broker, "till-1").hub).start()
    try:
        wait_for(lambda: catalog_ready_basic(till_store), what="till catalog")
        with till_store.transaction():
            draft = sale.open_draft(till_store)
            sale.add_product(till_store, draft, SCARF)
            sale.add_payment(till_store, draft, "cash", 2995)
            done = sale.complete(till_store, draft)
        till.wake()
        ui.wait_until(lambda: app.screens.current == "survey", timeout=30, what="survey shown")
        screen = app.screen("survey")
        ui.tap(ui.find("send"))  # the first question is required
        assert "Beratung" in screen.error
        ui.tap(screen.questions[0].toggles[4])
        ui.tap(screen.questions[1].toggles[2])
        shot(ui, artifacts_dir, "survey")
        ui.tap(ui.find("send"))
        ui.wait_until(lambda: app.screens.current == "survey_idle", what="thanks")
        res = wait_for(lambda: (r := surveys.results(shop.hub_store, sv))["answered"] and r,
                       what="answer at the hub")  # fmt: skip
        assert res["counts"]["q1"]["5"] == 1 and res["counts"]["q2"]["Schaufenster"] == 1
        row = shop.hub_store.db.execute("SELECT sale_id, device FROM survey_answers").fetchone()
        assert row == (done.id, "survey-1")
    finally:
        stop_app(ui)
        till.stop()
        till_store.close()


def catalog_ready_basic(st: Store) -> bool:
    try:
        catalog.by_ean(st, SCARF)
        return True
    except catalog.UnknownProduct:
        return False


def test_display_idle_shows_media_only(shop, tmp_path, artifacts_dir):
    """The display alone: with the till idle it shows only the shop's media, in turn: an image,
    then a web page as a QR code with its address (the display has no browser)."""
    from PIL import Image

    poster = tmp_path / "poster.png"
    Image.new("RGB", (640, 360), (200, 40, 40)).save(poster)
    with shop.hub_store.transaction():
        settings.set(shop.hub_store, "display.media", [
            {"kind": "image", "src": str(poster), "seconds": 1},
            {"kind": "url", "src": "https://modehaus-lindner.de/herbst", "seconds": 1}])  # fmt: skip
    ui = start_app(shop.config("display-1", "display", paired_till="till-1"), "display")
    app = ui.app
    try:
        synced(ui, lambda: app.store, lambda st: settings.get(st, "display.media"), "media synced")
        screen = app.screen("display")
        ui.wait_until(lambda: screen.media_caption == str(poster), what="image medium")
        assert [w.source for w in screen.ids.media.children] == [str(poster)]
        ui.wait_until(lambda: screen.media_caption.startswith("https://"), what="url medium")
        assert screen.idle and screen.ids.basket.opacity == 0
        shot(ui, artifacts_dir, "display-idle")
        screen.show_snapshot(Snapshot("till-1", 1, lines=(), total_cents=0, idle=True))
        assert screen.idle
    finally:
        stop_app(ui)


_ = events  # the engine modules register their handlers on import
