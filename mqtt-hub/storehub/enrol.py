"""Device enrolment: Mosquitto credentials, the store's ACL and the device's TOML.

Layout of the broker config directory (``storehub enrol --dir``)::

    passwd                      mosquitto password file (PBKDF2-SHA512, mosquitto_passwd "$7$")
    acl                         regenerated from acl.template + device.acl for every enrolled device
    hub.password                the hub's own broker password
    secret.key                  the store's data key (shared by hub and devices)
    devices/<device>.toml       the device's kiosk config
    devices/<device>.password   its broker password (copy it to the device with the TOML)

The password hash is computed here, the same way ``mosquitto_passwd`` does it, so enrolling
needs no Mosquitto tools on the hub machine.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path
from string import Template

from kiosk.sync_protocol import HUB

MOSQUITTO_DIR = Path(__file__).resolve().parent.parent / "mosquitto"
_ID = re.compile(r"^[a-z0-9-]{1,40}$")
MODES = ("till", "clipad", "survey", "display")
_ITERATIONS = 101  # mosquitto_passwd's default for "$7$"


class EnrolError(ValueError):
    pass


def password_hash(password: str, *, salt: bytes | None = None) -> str:
    """Return a mosquitto_passwd-compatible "$7$" (PBKDF2-SHA512) hash."""
    salt = salt or os.urandom(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, _ITERATIONS, 64)
    b64 = base64.b64encode
    return f"$7${_ITERATIONS}${b64(salt).decode()}${b64(digest).decode()}"


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def _read_passwd(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    out = {}
    for line in path.read_text().splitlines():
        if ":" in line and not line.startswith("#"):
            user, hashed = line.split(":", 1)
            out[user] = hashed
    return out


def set_password(conf_dir: Path, user: str, password: str) -> None:
    """Add or replace one user in the password file."""
    path = Path(conf_dir) / "passwd"
    users = _read_passwd(path)
    users[user] = password_hash(password)
    _write_private(path, "".join(f"{u}:{h}\n" for u, h in sorted(users.items())))


def render_acl(store: str, devices: list[str], hub_user: str = HUB) -> str:
    device_tpl = Template((MOSQUITTO_DIR / "device.acl").read_text())
    blocks = "\n".join(device_tpl.safe_substitute(store=store, device=d) for d in sorted(devices))
    return Template((MOSQUITTO_DIR / "acl.template").read_text()).safe_substitute(
        store=store, hub_user=hub_user, devices=blocks
    )


def enrolled(conf_dir: Path) -> list[str]:
    return sorted(p.stem for p in (Path(conf_dir) / "devices").glob("*.toml"))


@dataclass(frozen=True)
class Enrolment:
    device: str
    password: str
    toml_path: Path
    password_path: Path


def ensure_hub(conf_dir: Path) -> None:
    """Create the hub's broker password and the store's data key once."""
    conf_dir = Path(conf_dir)
    conf_dir.mkdir(parents=True, exist_ok=True)
    hub_pw = conf_dir / "hub.password"
    if not hub_pw.exists():
        password = secrets.token_urlsafe(24)
        _write_private(hub_pw, password + "\n")
        set_password(conf_dir, HUB, password)
    key = conf_dir / "secret.key"
    if not key.exists():
        _write_private(key, secrets.token_hex(32) + "\n")


def enrol(
    conf_dir: Path, store: str, device: str, *, mode: str = "till", device_no: int | None = None,
    host: str = "127.0.0.1", port: int = 1883, tls: bool = False, ca_file: Path | None = None,
) -> Enrolment:  # fmt: skip
    """Create (or renew) a device's credentials, ACL entry and kiosk TOML."""
    conf_dir = Path(conf_dir)
    if not _ID.match(store):
        raise EnrolError(f"store id {store!r}: use a-z, 0-9 and '-'")
    if not _ID.match(device) or device in (HUB, "headoffice"):
        raise EnrolError(f"device id {device!r}: use a-z, 0-9 and '-' (not 'hub' or 'headoffice')")
    if mode not in MODES:
        raise EnrolError(f"mode must be one of {', '.join(MODES)}")
    conf_dir.mkdir(parents=True, exist_ok=True)
    ensure_hub(conf_dir)
    devices_dir = conf_dir / "devices"
    toml_path = devices_dir / f"{device}.toml"
    if device_no is None:
        used = set()
        for other in devices_dir.glob("*.toml"):
            if other != toml_path:
                used.add(tomllib.loads(other.read_text())["device"]["device_no"])
        device_no = next(n for n in range(1, 100) if n not in used)
    if not 1 <= device_no <= 99:
        raise EnrolError("device_no must lie between 1 and 99")
    password = secrets.token_urlsafe(24)
    password_path = devices_dir / f"{device}.password"
    _write_private(password_path, password + "\n")
    set_password(conf_dir, device, password)
    _write_private(
        toml_path,
        f'[device]\nstore_id = "{store}"\ndevice_id = "{device}"\ndevice_no = {device_no}\n'
        f'mode = "{mode}"\nsecret_key_file = "../secret.key"\n\n'
        f'[hub]\nhost = "{host}"\nport = {port}\nusername = "{device}"\n'
        f'password_file = "{device}.password"\ntls = {"true" if tls else "false"}\n'
        + (f'ca_file = "{Path(ca_file).resolve()}"\n' if ca_file else ""),
    )
    _write_private(conf_dir / "acl", render_acl(store, enrolled(conf_dir)))
    return Enrolment(device, password, toml_path, password_path)


def render_bridge(store: str, address: str, username: str, password: str, *,
                  tls: str = "") -> str:  # fmt: skip
    """The store broker's bridge to head office (append to mosquitto.conf)."""
    return Template((MOSQUITTO_DIR / "bridge.conf").read_text()).safe_substitute(
        store=store, ho_address=address, ho_username=username, ho_password=password, ho_tls=tls
    )


def init_broker(
    conf_dir: Path, *, tls_port: int = 8883, local_port: int = 1883, bind: str = "0.0.0.0",
    certfile: Path, keyfile: Path, bridge: str = "",
) -> Path:  # fmt: skip
    """Write the store's mosquitto.conf (persistence, queues, TLS listener for devices, local
    listener for the hub, password file and ACL in ``conf_dir``) and the hub's credentials."""
    conf_dir = Path(conf_dir)
    ensure_hub(conf_dir)
    (conf_dir / "data").mkdir(exist_ok=True)
    if not (conf_dir / "acl").exists():
        _write_private(conf_dir / "acl", "")  # filled by the first enrolment
    text = Template((MOSQUITTO_DIR / "mosquitto.conf").read_text()).safe_substitute(
        dir=conf_dir, tls_port=tls_port, local_port=local_port, bind=bind, certfile=certfile,
        keyfile=keyfile, bridge=bridge,
    )  # fmt: skip
    path = conf_dir / "mosquitto.conf"
    path.write_text(text)
    return path
