"""``kiosk demo``: a whole demo store on one machine — hub, dashboard, till and display.

    kiosk demo                      data in ./demo-data, seeded on first start
    kiosk demo --data /tmp/demo     somewhere else
    kiosk demo --no-hub             the till (and display) alone, as when the network is down
    kiosk demo --seed-only          write configs and data, open no window

The first start writes one config per device into the data directory (``till.toml``,
``display.toml``, and ``hub.toml`` noting the hub's port) plus a shared data key, and seeds the
till's store once: shop settings, customer groups with discounts, alert rules, custom
questions and about two hundred customers (deterministic, so every demo looks the same).
Later starts reuse it all; delete the directory to start over.

Each part runs as its own process, as on real devices: ``storehub run --embedded`` (hub with
an embedded MQTT broker, nothing to install), ``storehub dashboard`` (the owner's web page,
user demo / password demo-store), ``kiosk --config till.toml`` and ``kiosk --config
display.toml``. The till never waits for the hub: if the hub cannot start, the demo goes on
without it. Ctrl-C (or closing the till window) stops everything.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

from kiosk.config import load
from kiosk.engine import alerts, customers, groups, questions, settings
from kiosk.engine.store import Store
from kiosk.i18n import _
from kiosk.sample_data import SampleCustomer, generate

_LOGGER = logging.getLogger(__name__)

SEEDED_KEY = "demo.seeded"
DEFAULT_DATA = Path("demo-data")
STORE_ID = "demo-laden"
KEY_FILE = "secret.key"
HUB_FILE = "hub.toml"

DEVICE_TEMPLATE = """\
# Demo {mode} written by `kiosk demo`. Edit freely; delete the directory to start over.
[device]
store_id = "{store_id}"
device_id = "{device_id}"
device_no = {device_no}
mode = "{mode}"
data_dir = "."
language = "de"
secret_key_file = "{key_file}"

[hub]
host = "127.0.0.1"
port = {port}

[ui]
fullscreen = false
width = {width}
height = {height}
keyboard = "{keyboard}"
paired_till = "{paired}"
"""
HUB_TEMPLATE = """\
# The demo hub: `storehub run --embedded` (MQTT on `port`) and `storehub dashboard`
# (http://127.0.0.1:<dashboard_port>/, user demo, password demo-store), both on loopback only.
store_id = "{store_id}"
port = {port}
dashboard_port = {dashboard_port}
db = "hub.db"
"""
DASHBOARD_USER = ("demo", "demo-store")
# device_id, mode, device_no, window size, keyboard
DEVICES = (("till-1", "till", 1, 1280, 800, "de"), ("display-1", "display", 2, 800, 480, "off"))

SHOP = {
    "shop.name": "Goldschmiede Rheinblick",
    "shop.address": "Hohe Straße 52\n50667 Köln",
    "shop.phone": "0221 2571430",
    "shop.email": "info@rheinblick.example.com",
    "shop.vat_id": "DE123456789",
}
GROUPS = (
    # name, description, discount %, also on special offers
    ("VIP", "Stammkunden mit persönlicher Betreuung", "10", True),
    ("Hochzeitskunden", "Trauringe und Hochzeitsschmuck", "5", False),
    ("Firmen", "Firmenkunden, Rechnung mit USt-IdNr.", "3", False),
    ("Rentner", "Seniorenrabatt", "5", False),
    ("Studenten", "Mit gültigem Studierendenausweis", "10", False),
)
ALERT_RULES = (
    ("email = ''", "Bitte E-Mail ergänzen"),
    ("mobile = '' and phone = ''", "Bitte Telefonnummer ergänzen"),
    ("email != '' and email_consent = nein", "Nach E-Mail-Einwilligung fragen"),
    ("has_card = nein", "Kundenkarte anbieten"),
)
QUESTIONS = (
    ("shirt_size", "Hemdgröße", "choice", ["XS", "S", "M", "L", "XL", "XXL"]),
    ("shoe_size", "Schuhgröße", "number", None),
)

OBSERVATIONS = (
    "Keine Zahlung per Scheck",
    "Nickelallergie – nur nickelfreien Schmuck anbieten",
    "Offene Reparatur: Armbanduhr, Abholung ausstehend",
    "Zahlt nur bar",
    "Hört schlecht – bitte deutlich sprechen",
    "Anzahlung 200 € auf Trauringe geleistet",
    "Rechnung immer an Firmenadresse",
    "Wünscht keine Werbung am Telefon",
)
PROVENANCE = ("Empfehlung", "Zeitungsanzeige", "Laufkundschaft", "Instagram", "Mailing", "Messe")


# A few fixed customers, so a demo can show each feature at once.
SHOWCASE: tuple[dict[str, Any], ...] = (
    {"gender": "f", "first_name": "Anna", "last_name": "Müller", "postcode": "50667",
     "city": "Köln", "street": "Severinstraße", "house_no": "12", "email": "anna.mueller@example.com",
     "mobile": "0171 3920045", "birth_date": "14.03.1978", "email_consent": True,
     "observation": "Keine Zahlung per Scheck", "_groups": ["VIP"], "_card": "2000000000015",
     "answers": {"shirt_size": "M", "shoe_size": "39"}},
    {"gender": "m", "first_name": "Jürgen", "last_name": "Schäfer", "postcode": "50823",
     "city": "Köln", "street": "Venloer Straße", "house_no": "301", "phone": "0221 5504711",
     "birth_date": "02.11.1949", "_groups": ["Rentner"],
     "observation": "Offene Reparatur: Armbanduhr, Abholung ausstehend"},
    {"gender": "f", "title": "Dr.", "first_name": "Katharina", "last_name": "Meier",
     "company": "Meier & Söhne GmbH", "postcode": "53111", "city": "Bonn",
     "street": "Am Markt", "house_no": "3", "email": "k.meier@example.org",
     "mobile": "0160 4455667", "_groups": ["Firmen"], "email_consent": True,
     "sms_consent": True, "delivery_name": "Meier & Söhne GmbH – Wareneingang",
     "delivery_street": "Industriestraße", "delivery_house_no": "8",
     "delivery_postcode": "53117", "delivery_city": "Bonn", "delivery_country": "DE"},
    {"gender": "m", "first_name": "Lukas", "last_name": "Mayer", "postcode": "50937",
     "city": "Köln", "email": "lukas.mayer@example.net", "mobile": "0176 2233445",
     "birth_date": "21.07.2002", "_groups": ["Studenten"], "_card": "2000000000022"},
    {"gender": "f", "first_name": "Sophie", "last_name": "Maier", "postcode": "50674",
     "city": "Köln", "mobile": "0152 77889901", "birth_date": "09.09.1991",
     "_groups": ["Hochzeitskunden"], "observation": "Anzahlung 200 € auf Trauringe geleistet",
     "id_card": "L01X00T47", "provenance": "Empfehlung"},
)  # fmt: skip


def _demo_customer(sample: SampleCustomer, rng: random.Random) -> dict[str, Any]:
    """A generated customer plus what a shop adds over time: notes, answers, an ID card."""
    data: dict[str, Any] = dict(sample.fields)
    if sample.card_no:
        data["_card"] = sample.card_no
    if rng.random() < 0.06:
        data["observation"] = rng.choice(OBSERVATIONS)
    if rng.random() < 0.3:
        data["provenance"] = rng.choice(PROVENANCE)
    if rng.random() < 0.05:
        data["id_card"] = "".join(rng.choice("CFGHJKLMNPRTVWXYZ0123456789") for _ in range(9))
    answers = {}
    if rng.random() < 0.3:
        answers["shirt_size"] = rng.choice(("S", "M", "L", "XL"))
    if rng.random() < 0.3:
        answers["shoe_size"] = str(rng.randint(36, 46))
    if answers:
        data["answers"] = answers
    return data


def seed(store: Store, customers_count: int = 200, *, rng_seed: int = 2026) -> bool:
    """Fill an empty demo store once; returns False when it was seeded before."""
    if store.get_meta(SEEDED_KEY):
        return False
    rng = random.Random(rng_seed)
    with store.transaction():
        for key, value in SHOP.items():
            settings.set(store, key, value)
        group_ids = {
            name: groups.save(
                store, name, description=desc, discount=pct, applies_to_specials=specials
            )
            for name, desc, pct, specials in GROUPS
        }
        for condition, message in ALERT_RULES:
            alerts.save_rule(store, condition, message)
        for key, label, kind, options in QUESTIONS:
            questions.define(store, key, label, kind, options)
        people = [dict(c) for c in SHOWCASE]
        extra = max(0, customers_count - len(people))
        people += [_demo_customer(sample, rng) for sample in generate(extra, seed=rng_seed)]
        for person in people:
            wanted_groups = person.pop("_groups", None)
            card = person.pop("_card", None)
            record = customers.create(store, person, source="import", force=True)
            if wanted_groups is None and rng.random() < 0.15:
                wanted_groups = [rng.choice(list(group_ids))]
            for name in wanted_groups or ():
                groups.assign(store, record["id"], group_ids[name])
            if card:
                customers.assign_card(store, record["id"], card, "Kundenkarte")
        store.set_meta(SEEDED_KEY, dt.datetime.now(dt.UTC).isoformat())
    _LOGGER.info("demo store seeded with %d customers", len(people))
    return True


def _free_port(preferred: int = 1883) -> int:
    """The MQTT port when free (another broker may run there), else any free port."""
    for port in (preferred, 0):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise OSError("no free TCP port")


def write_configs(data_dir: Path) -> dict[str, Path]:
    """Write the hub note, the data key and one config per device (each only once)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    hub_path = data_dir / HUB_FILE
    if not hub_path.exists():
        hub_path.write_text(HUB_TEMPLATE.format(
            store_id=STORE_ID, port=_free_port(1883), dashboard_port=_free_port(8080),
        ), encoding="utf-8")  # fmt: skip
    port = tomllib.loads(hub_path.read_text(encoding="utf-8"))["port"]
    key_path = data_dir / KEY_FILE
    if not key_path.exists():
        key_path.write_text(secrets.token_hex(32) + "\n", encoding="utf-8")
        key_path.chmod(0o600)
    paths = {"hub": hub_path}
    for device_id, mode, device_no, width, height, keyboard in DEVICES:
        path = data_dir / f"{mode}.toml"
        if not path.exists():
            path.write_text(DEVICE_TEMPLATE.format(
                mode=mode, store_id=STORE_ID, device_id=device_id, device_no=device_no,
                key_file=KEY_FILE, port=port, width=width, height=height, keyboard=keyboard,
                paired="till-1" if mode != "till" else "",
            ), encoding="utf-8")  # fmt: skip
        paths[mode] = path
    return paths


def prepare(data_dir: Path, customers_count: int = 200) -> dict[str, Path]:
    """Write the demo configs (once) and seed the till's store (once); return the paths."""
    paths = write_configs(data_dir)
    config = load(paths["till"])
    store = Store(config.db_path, config.identity, secret_key=config.secret_key())
    try:
        if seed(store, customers_count):
            print(_("Demo store created in {path}").format(path=config.db_path), flush=True)
    finally:
        store.close()
    return paths


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the demo process dies, however it dies (Linux)."""
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Processes:
    """The demo's child processes; stopped together, newest first."""

    def __init__(self) -> None:
        self.children: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, argv: list[str], cwd: Path) -> subprocess.Popen:
        # own process group: the terminal's Ctrl-C reaches us, and we stop children in order
        proc = subprocess.Popen(argv, cwd=cwd, start_new_session=True, preexec_fn=_die_with_parent)  # noqa: PLW1509 (no threads yet)
        self.children.append((name, proc))
        _LOGGER.info("%s started (pid %d)", name, proc.pid)
        return proc

    def stop(self, timeout: float = 10.0) -> None:
        # one after the other: the devices say goodbye to the hub before its broker goes
        for name, proc in reversed(self.children):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                _LOGGER.warning("%s did not stop in %.0f s: killed", name, timeout)
                proc.kill()
                proc.wait()


def _hub_argv(data_dir: Path, hub: dict[str, Any]) -> list[str]:
    return [sys.executable, "-m", "storehub.cli", "run", "--embedded", "--store", hub["store_id"],
            "--db", str(data_dir / hub["db"]), "--port", str(hub["port"]),
            "--secret-key-file", str(data_dir / KEY_FILE)]  # fmt: skip


def _dashboard_argv(data_dir: Path, hub: dict[str, Any], *extra: str) -> list[str]:
    return [sys.executable, "-m", "storehub.cli", "dashboard", "--db", str(data_dir / hub["db"]),
            "--store-id", hub["store_id"], "--secret-key-file", str(data_dir / KEY_FILE),
            "--port", str(hub["dashboard_port"]), *extra]  # fmt: skip


def _start_dashboard(procs: Processes, data_dir: Path, hub: dict[str, Any]) -> None:
    """The owner's dashboard on the hub's database, with a demo login made on first start."""
    marker = data_dir / ".dashboard-user"
    if not marker.exists():
        user, password = DASHBOARD_USER
        done = subprocess.run(_dashboard_argv(data_dir, hub, "--add-user", user),
                              env={**os.environ, "STOREHUB_PASSWORD": password},
                              capture_output=True, text=True, check=False)  # fmt: skip
        if done.returncode != 0:
            print(_("The dashboard is not available: {error}").format(error=done.stderr.strip()))
            return
        marker.touch()
    procs.start("dashboard", _dashboard_argv(data_dir, hub), data_dir)
    print(_("Dashboard: http://127.0.0.1:{port}/ (user demo, password demo-store)").format(
        port=hub["dashboard_port"]), flush=True)  # fmt: skip


def _wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 15.0) -> bool:
    """Wait until something listens on the port (tested by binding, so the broker never
    sees a connection that sends nothing)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return True
        time.sleep(0.2)
    return False


def main(args: argparse.Namespace) -> int:
    data_dir = args.data.resolve()
    paths = prepare(data_dir, args.customers)
    if args.seed_only:
        for path in paths.values():
            print(path)
        return 0
    procs = Processes()
    stop = {"signal": None}

    def on_signal(signum, _frame):
        stop["signal"] = signum

    old = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    env_shot = os.environ.get("KIOSK_SCREENSHOT")
    try:
        if not args.no_hub:
            hub = tomllib.loads(paths["hub"].read_text(encoding="utf-8"))
            proc = procs.start("hub", _hub_argv(data_dir, hub), data_dir)
            if _wait_for_port(hub["port"], proc):
                print(_("Store hub with embedded broker on port {port}").format(port=hub["port"]), flush=True)
                _start_dashboard(procs, data_dir, hub)
            else:
                print(_("The store hub did not start; the till works on without it."), flush=True)
        kiosk = [sys.executable, "-m", "kiosk.cli"]
        till = procs.start("till", [*kiosk, "--config", str(paths["till"])], data_dir)
        if not args.no_display:
            if env_shot:  # the display's picture next to the till's
                os.environ["KIOSK_SCREENSHOT"] = env_shot.replace("till", "display")
            procs.start("display", [*kiosk, "--config", str(paths["display"])], data_dir)
            if env_shot:
                os.environ["KIOSK_SCREENSHOT"] = env_shot
        print(_("Demo store running. Close the till window or press Ctrl-C to stop."), flush=True)
        while stop["signal"] is None and till.poll() is None:
            time.sleep(0.2)
    finally:
        procs.stop()
        for sig, handler in old.items():
            signal.signal(sig, handler)
    print(_("Demo store stopped."), flush=True)
    return 0


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run a demo store: hub, till and customer display (written on first start)",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="directory for the demo configs and databases (default: ./demo-data)")  # fmt: skip
    parser.add_argument("--customers", type=int, default=200,
                        help="number of demo customers on first start (default: 200)")  # fmt: skip
    parser.add_argument("--no-hub", action="store_true", help="run the till without the store hub")
    parser.add_argument("--no-display", action="store_true", help="no customer display window")
    parser.add_argument("--seed-only", action="store_true",
                        help="write configs and data, then exit without opening a window")  # fmt: skip
    parser.set_defaults(func=main)
