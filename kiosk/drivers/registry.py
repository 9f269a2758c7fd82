"""Driver registry: the config's ``type`` string picks the implementation.

Each driver module registers its types with :func:`register`, giving a msgspec Struct that
validates the config table (unknown keys, wrong types and missing keys are refused with the
table's place in the file) and a factory. Stand-ins for hardware (``escpos-dummy``,
``evdev-replay``) are registered types like any other, never a testing branch.

    [[drivers.scanner]]             kind "scanner", index 0
    type = "evdev"                  -> the registered ("scanner", "evdev") entry
    match_name = "Honeywell"
"""

from __future__ import annotations

import importlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from kiosk.drivers.base import Callbacks, Driver
from kiosk.i18n import _

_LOGGER = logging.getLogger(__name__)

KINDS = ("scanner", "printer", "drawer", "display", "counter")
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")

# Modules that register the built-in types; imported on first use so that a missing optional
# library only matters for the driver that needs it.
_BUILTIN_MODULES = (
    "kiosk.drivers.scanner_evdev",
    "kiosk.drivers.evdev_replay",
    "kiosk.drivers.scanner_serial",
    "kiosk.drivers.printer",
    "kiosk.drivers.drawer",
    "kiosk.drivers.pole_display",
    "kiosk.drivers.people_counter",
)


class DriverConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Keys every driver table has."""

    type: str
    name: str = ""  # how the till names the device; default: the kind (printer, scanner-2)
    enabled: bool = True


class DriverConfigError(ValueError):
    """A ``[drivers.*]`` table is wrong; the message names the table and the key."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where
        self.message = message


@dataclass
class DriverContext:
    """What a factory may use besides its own config table."""

    data_dir: Path
    device_id: str = "device"
    callbacks: Callbacks = field(default_factory=Callbacks)
    drivers: dict[str, Driver] = field(default_factory=dict)  # built so far, by name


Factory = Callable[[Any, str, DriverContext], Driver]


@dataclass(frozen=True)
class DriverType:
    kind: str
    type: str
    config: type[DriverConfig]
    factory: Factory
    description: str


_REGISTRY: dict[tuple[str, str], DriverType] = {}
_loaded = False


def register(
    kind: str, type_name: str, config: type[DriverConfig], description: str = ""
) -> Callable[[Factory], Factory]:
    """Register a factory ``(config, name, context) -> driver`` for ``[drivers.<kind>] type``."""
    if kind not in KINDS:
        raise ValueError(f"unknown driver kind {kind!r}")

    def decorate(factory: Factory) -> Factory:
        key = (kind, type_name)
        if key in _REGISTRY and _REGISTRY[key].factory is not factory:
            raise ValueError(f"driver type {kind}/{type_name} registered twice")
        _REGISTRY[key] = DriverType(kind, type_name, config, factory, description)
        return factory

    return decorate


def load_builtin() -> None:
    """Import the modules that register the built-in driver types."""
    global _loaded
    if _loaded:
        return
    for module in _BUILTIN_MODULES:
        try:
            importlib.import_module(module)
        except ImportError as exc:  # e.g. python-evdev off Linux: only its types are missing
            _LOGGER.warning("driver module %s not available: %s", module, exc)
    _loaded = True


def types(kind: str | None = None) -> list[DriverType]:
    load_builtin()
    return sorted(
        (t for t in _REGISTRY.values() if kind is None or t.kind == kind),
        key=lambda t: (t.kind, t.type),
    )


def default_name(kind: str, index: int) -> str:
    return kind if index == 0 else f"{kind}-{index + 1}"


def parse(kind: str, index: int, table: Any) -> tuple[DriverType, DriverConfig]:
    """Validate one config table; raise DriverConfigError naming the table and the key."""
    load_builtin()
    where = f"drivers.{kind}[{index}]"
    if kind not in KINDS:
        raise DriverConfigError(
            f"drivers.{kind}",
            _("unknown device kind {kind!r} (known: {known})").format(
                kind=kind, known=", ".join(KINDS)
            ),
        )
    if not isinstance(table, dict):
        raise DriverConfigError(where, _("must be a table"))
    type_name = table.get("type")
    if not type_name:
        raise DriverConfigError(where, _("missing key 'type'"))
    entry = _REGISTRY.get((kind, str(type_name)))
    if entry is None:
        known = ", ".join(t.type for t in types(kind))
        raise DriverConfigError(
            where,
            _("unknown type {type!r} (known: {known})").format(type=type_name, known=known),
        )
    try:
        config = msgspec.convert(table, entry.config)
    except msgspec.ValidationError as exc:
        raise DriverConfigError(where, _humanise(str(exc), where)) from exc
    name = config.name or default_name(kind, index)
    if not NAME_RE.match(name):
        raise DriverConfigError(
            where, _("name must be lowercase letters, digits and '-': {name!r}").format(name=name)
        )
    return entry, msgspec.structs.replace(config, name=name)


def _humanise(message: str, where: str) -> str:
    """Turn msgspec's '... - at `$.baudrate`' into '... (key baudrate)'."""
    match = re.match(r"^(.*) - at `\$\.?(.*)`$", message)
    if match:
        text, path = match.groups()
        return _("{problem} (key {key})").format(problem=text, key=path or where)
    return message


def create(entry: DriverType, config: DriverConfig, context: DriverContext) -> Driver:
    """Build the driver; the factory must not touch hardware (that happens in ``start``)."""
    driver = entry.factory(config, config.name, context)
    context.drivers[config.name] = driver
    return driver


@dataclass
class Built:
    """Drivers built from a config, plus the tables that could not be used (as statuses)."""

    drivers: dict[str, Driver]
    problems: list[Any]  # DeviceStatus for each refused table: shown, never raised


def build_all(tables: dict[str, list[dict[str, Any]]], context: DriverContext) -> Built:
    """Build every enabled driver; a bad table becomes an ERROR status, not an exception.

    Kinds are built in ``KINDS`` order so a drawer finds the printer it kicks through.
    """
    from kiosk.drivers.base import DeviceStatus, State

    problems: list[Any] = []
    for kind in sorted(tables, key=lambda k: KINDS.index(k) if k in KINDS else len(KINDS)):
        for index, table in enumerate(tables[kind]):
            try:
                entry, config = parse(kind, index, table)
                if not config.enabled:
                    continue
                create(entry, config, context)
            except DriverConfigError as exc:
                name = table.get("name") if isinstance(table, dict) else None
                problems.append(
                    DeviceStatus(
                        str(name or default_name(kind, index)),
                        kind,
                        State.ERROR,
                        _("configuration: {error}").format(error=exc),
                    )
                )
            except Exception as exc:  # noqa: BLE001 - a broken driver must not stop the till
                _LOGGER.exception("cannot set up drivers.%s[%d]", kind, index)
                problems.append(
                    DeviceStatus(
                        default_name(kind, index), kind, State.ERROR,
                        _("cannot set up: {error}").format(error=exc),
                    )
                )
    return Built(context.drivers, problems)
