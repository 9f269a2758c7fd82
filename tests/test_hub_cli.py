"""The storehub command: `storehub run --embedded` (no broker installed) and `storehub enrol`."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from kiosk.config import HubConfig, load
from kiosk.engine import events
from kiosk.engine.store import Identity, Store
from kiosk.sync import SyncClient
from tests.support.broker import Mosquitto
from tests.support.net import free_port, wait_for_port
from tests.support.workload import customer_ops
from tests.test_sync_mqtt import wait_until

ROOT = Path(__file__).resolve().parent.parent


def _storehub_run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "storehub.cli", *args], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
                          text=True, timeout=60)  # fmt: skip


def _storehub(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "storehub.cli", *args], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, **kw)  # fmt: skip


def test_storehub_run_embedded_syncs_a_device_without_any_broker_installed(tmp_path):
    """GIVEN `storehub run --embedded` (amqtt inside the hub process)
    WHEN a device connects and writes events
    THEN the hub acknowledges every one, and SIGTERM stops the hub cleanly."""
    port = free_port()
    hub = _storehub("run", "--embedded", "--store", "demo", "--db", str(tmp_path / "hub.db"),
                    "--port", str(port))  # fmt: skip
    device = Store(tmp_path / "till.db", Identity("demo", "till-1", 1))
    client = None
    try:
        wait_for_port(port, timeout=30)
        rng = random.Random(8)
        for _ in range(30):
            customer_ops(device, rng)
        client = SyncClient(device, HubConfig(host="127.0.0.1", port=port)).start()
        wait_until(lambda: events.outbox_size(device) == 0, 60, "acks from the embedded hub")
        wait_until(lambda: client.state.in_sync, 30, "in sync")
    finally:
        if client:
            client.stop()
        hub.send_signal(signal.SIGTERM)
        assert hub.wait(30) == 0
        device.close()
    device = Store(tmp_path / "till.db", Identity("demo", "till-1", 1))
    hub_store = Store(tmp_path / "hub.db", Identity("demo", "hub", 99))
    ids = lambda s: {r[0] for r in s.db.execute("SELECT id FROM events")}  # noqa: E731
    assert ids(hub_store) == ids(device) and len(ids(device)) >= 30
    hub_store.close()
    device.close()


def _can_connect(port: int, user: str, password: str) -> bool:
    c = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id=user)
    c.username_pw_set(user, password)
    try:
        return c.connect("127.0.0.1", port) == 0 and c.loop(timeout=2) == 0 and c.is_connected()
    except OSError:
        return False
    finally:
        c.disconnect()


@pytest.mark.broker
def test_storehub_enrol_creates_credentials_acl_and_device_config(tmp_path):
    """GIVEN `storehub enrol till-9`
    THEN the device's TOML loads, Mosquitto accepts its password (and refuses a wrong one),
    the ACL has its branch; reserved or invalid ids are refused with a message."""
    conf = tmp_path / "conf"
    port = free_port()
    out = _storehub_run("enrol", "till-9", "--store", "laden-bonn", "--dir", str(conf),
                        "--port", str(port))  # fmt: skip
    assert out.returncode == 0, out.stderr
    cfg = load(conf / "devices" / "till-9.toml")
    assert (cfg.identity.store_id, cfg.identity.device_id, cfg.hub.username) == \
        ("laden-bonn", "till-9", "till-9")  # fmt: skip
    assert "topic write retail/v1/laden-bonn/till-9/#" in (conf / "acl").read_text()
    broker = Mosquitto(tmp_path / "broker", anonymous=False, port=port,
                       extra_conf=f"password_file {conf}/passwd\nacl_file {conf}/acl\n").start()
    try:
        assert _can_connect(port, "till-9", cfg.hub.password())
        assert not _can_connect(port, "till-9", "wrong")
        assert _can_connect(port, "hub", (conf / "hub.password").read_text().strip())
    finally:
        broker.stop()
    bad = _storehub_run("enrol", "hub", "--store", "laden-bonn", "--dir", str(conf))
    assert bad.returncode == 2 and "not 'hub'" in bad.stderr


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "storehub test")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))  # fmt: skip
    cert_path, key_path = tmp_path / "server.crt", tmp_path / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    return cert_path, key_path


@pytest.mark.broker
def test_storehub_init_production_mosquitto_with_tls_passwords_and_acl(tmp_path):
    """GIVEN `storehub init` (production config from mqtt-hub/mosquitto) and `storehub enrol --tls`
    WHEN Mosquitto runs that config and the device syncs over TLS, the hub on the local port
    THEN the device's events are acknowledged by the hub."""
    import getpass

    from storehub.hub import Hub

    cert, key = _self_signed(tmp_path)
    conf = tmp_path / "conf"
    tls_port, local_port = free_port(), free_port()
    r = _storehub_run("init", "--dir", str(conf), "--certfile", str(cert), "--keyfile", str(key),
                      "--tls-port", str(tls_port), "--local-port", str(local_port),
                      "--bind", "127.0.0.1")  # fmt: skip
    assert r.returncode == 0, r.stderr
    r = _storehub_run("enrol", "till-1", "--store", "laden-bonn", "--dir", str(conf),
                      "--port", str(tls_port), "--tls", "--ca-file", str(cert))  # fmt: skip
    assert r.returncode == 0, r.stderr
    conf_file = conf / "mosquitto.conf"
    # as root, Mosquitto would switch to user "mosquitto", which cannot read the test's files
    conf_file.write_text(conf_file.read_text() + f"\nuser {getpass.getuser()}\n")
    broker = subprocess.Popen(["mosquitto", "-c", str(conf_file)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    hub_store = Store(tmp_path / "hub.db", Identity("laden-bonn", "hub", 99))
    device = Store(tmp_path / "till.db", Identity("laden-bonn", "till-1", 1))
    hub = client = None
    try:
        wait_for_port(tls_port)
        wait_for_port(local_port)
        hub = Hub(hub_store, HubConfig(host="127.0.0.1", port=local_port, username="hub",
                                       password_file=conf / "hub.password")).start()  # fmt: skip
        customer_ops(device, random.Random(1))
        cfg = load(conf / "devices" / "till-1.toml")
        assert cfg.hub.tls and cfg.hub.port == tls_port
        client = SyncClient(device, cfg.hub).start()
        wait_until(lambda: events.outbox_size(device) == 0, 30, "acked over TLS")
    finally:
        if client:
            client.stop()
        if hub:
            hub.stop()
        broker.terminate()
        broker.wait(10)
        hub_store.close()
        device.close()
