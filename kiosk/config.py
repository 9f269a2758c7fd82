"""Device configuration: one TOML file per device, read into typed dataclasses.

Example (``/etc/kiosk/device.toml``)::

    [device]
    store_id = "laden-koeln"
    device_id = "till-1"
    device_no = 1
    mode = "till"                 # till | clipad | survey | display
    data_dir = "/var/lib/kiosk"
    language = "de"

    [hub]
    host = "192.168.1.10"
    port = 8883
    username = "till-1"
    password_file = "/etc/kiosk/mqtt-password"
    tls = true
    ca_file = "/etc/kiosk/ca.crt"

    [ui]
    fullscreen = true

    [[drivers.scanner]]
    type = "evdev"
    name = "Honeywell"

Driver tables stay plain dicts here: ``kiosk.drivers`` picks the implementation by ``type``
and validates the rest.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiosk.engine.store import Identity

MODES = ("till", "clipad", "survey", "display")


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class HubConfig:
    host: str = ""  # empty: no hub configured, the device works alone
    port: int = 1883
    username: str | None = None
    password_file: Path | None = None
    tls: bool = False
    ca_file: Path | None = None
    web_url: str = ""  # dashboard / clipad web form, e.g. http://hub.local:8080

    def password(self) -> str | None:
        if self.password_file is None:
            return None
        return self.password_file.read_text().strip()


@dataclass(frozen=True)
class UiConfig:
    fullscreen: bool = False
    width: int = 1280
    height: int = 800
    keyboard: str = "de"
    idle_timeout_s: int = 90
    paired_till: str = ""  # clipad / survey / display: the till they serve


@dataclass(frozen=True)
class DeviceConfig:
    identity: Identity
    mode: str = "till"
    data_dir: Path = Path("/var/lib/kiosk")
    language: str = "de"
    secret_key_file: Path | None = None
    hub: HubConfig = field(default_factory=HubConfig)
    ui: UiConfig = field(default_factory=UiConfig)
    drivers: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    source: Path | None = None

    @property
    def db_path(self) -> Path:
        return self.data_dir / f"{self.identity.device_id}.db"

    def secret_key(self) -> bytes | None:
        """The store's data key (shared with the hub); None lets the store make a local one."""
        if self.secret_key_file is None or not self.secret_key_file.exists():
            return None
        return self.secret_key_file.read_bytes().strip()


def _path(value: Any, base: Path) -> Path | None:
    if value in (None, ""):
        return None
    path = Path(str(value))
    return path if path.is_absolute() else base / path


def parse(data: dict[str, Any], base: Path = Path(".")) -> DeviceConfig:
    """Build a DeviceConfig from parsed TOML; raise ConfigError naming the bad key."""
    try:
        dev = data.get("device", {})
        identity = Identity(
            store_id=str(dev["store_id"]),
            device_id=str(dev["device_id"]),
            device_no=int(dev.get("device_no", 1)),
        )
        mode = str(dev.get("mode", "till"))
        if mode not in MODES:
            raise ConfigError(f"device.mode must be one of {', '.join(MODES)}, not {mode!r}")
        hub = data.get("hub", {})
        ui = data.get("ui", {})
        drivers = data.get("drivers", {})
        for kind, entries in drivers.items():
            if isinstance(entries, dict):
                drivers[kind] = [entries]
            elif not isinstance(entries, list):
                raise ConfigError(f"drivers.{kind} must be a table or an array of tables")
        return DeviceConfig(
            identity=identity,
            mode=mode,
            data_dir=_path(dev.get("data_dir", "data"), base),
            language=str(dev.get("language", "de")),
            secret_key_file=_path(dev.get("secret_key_file"), base),
            hub=HubConfig(
                host=str(hub.get("host", "")),
                port=int(hub.get("port", 1883)),
                username=hub.get("username"),
                password_file=_path(hub.get("password_file"), base),
                tls=bool(hub.get("tls", False)),
                ca_file=_path(hub.get("ca_file"), base),
                web_url=str(hub.get("web_url", "")),
            ),
            ui=UiConfig(**{k: ui[k] for k in ui if k in UiConfig.__dataclass_fields__}),
            drivers=drivers,
        )
    except KeyError as exc:
        raise ConfigError(f"missing setting {exc.args[0]!r} in [device]") from exc
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(str(exc)) from exc


def load(path: str | Path) -> DeviceConfig:
    path = Path(path)
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    cfg = parse(data, path.parent)
    return DeviceConfig(**{**cfg.__dict__, "source": path})
