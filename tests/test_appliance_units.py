"""The systemd units in systemd/: `systemd-analyze verify` on each, plus the hardening policy.

verify runs against a throw-away root (``--root``) holding a copy of the host's unit tree and
stub executables at the paths our units name, so it checks our files without installing
anything on this machine. Every warning counts as a failure (verify exits 0 on unknown keys).
"""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UNITS = ROOT / "systemd"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
HOST_UNITS = Path("/usr/lib/systemd/system")

SERVICES = sorted(p.name for p in UNITS.glob("*.service"))
TIMERS = sorted(p.name for p in UNITS.glob("*.timer"))
MODES = ("till", "clipad", "survey", "display")

needs_systemd = pytest.mark.skipif(
    SYSTEMD_ANALYZE is None or not HOST_UNITS.is_dir(),
    reason="systemd-analyze not installed (scripts/setup.sh test installs systemd)",
)


def _read_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """Parse a unit file keeping repeated keys (configparser alone would keep the last)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def _executables(paths: list[Path]) -> set[str]:
    found = set()
    for path in paths:
        for key, values in _read_unit(path).get("Service", {}).items():
            if key.startswith("Exec"):
                for value in values:
                    if value:
                        found.add(value.lstrip("-@:+!").split()[0])
    return found


@pytest.fixture(scope="module")
def fake_root(tmp_path_factory) -> Path:
    """A root with the host's units, our units and stubs for every executable they run."""
    root = tmp_path_factory.mktemp("root")
    (root / "usr/lib/systemd").mkdir(parents=True)
    shutil.copytree(HOST_UNITS, root / "usr/lib/systemd/system", symlinks=True)
    etc = root / "etc/systemd/system"
    etc.mkdir(parents=True)
    unit_files = [*UNITS.glob("*.service"), *UNITS.glob("*.timer")]
    for path in unit_files:
        shutil.copy(path, etc / path.name)
    shutil.copytree(UNITS / "mosquitto.service.d", etc / "mosquitto.service.d")
    mosquitto = HOST_UNITS / "mosquitto.service"
    if not mosquitto.exists():  # the Debian unit, as it is when the package is installed
        (etc / "mosquitto.service").write_text(
            "[Unit]\nDescription=Mosquitto\n[Service]\nType=notify\n"
            "ExecStart=/usr/sbin/mosquitto -c /etc/mosquitto/mosquitto.conf\n"
            "[Install]\nWantedBy=multi-user.target\n"
        )
        unit_files.append(etc / "mosquitto.service")
    else:
        unit_files.append(mosquitto)
    for exe in _executables(unit_files):
        stub = root / exe.lstrip("/")
        stub.parent.mkdir(parents=True, exist_ok=True)
        stub.write_text("#!/bin/sh\nexit 0\n")
        stub.chmod(0o755)
    return root


def _verify(root: Path, unit: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SYSTEMD_LOG_LEVEL": "notice", "SYSTEMD_LOG_COLOR": "0"}
    return subprocess.run(
        [SYSTEMD_ANALYZE, "verify", f"--root={root}", unit],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip


def _verify_clean(root: Path, unit: str) -> None:
    res = _verify(root, unit)
    assert res.returncode == 0 and not res.stderr.strip() and not res.stdout.strip(), (
        f"{unit}: {res.stdout}{res.stderr}"
    )


@needs_systemd
@pytest.mark.parametrize(
    "unit",
    [*(f"kiosk@{m}.service" for m in MODES), *(s for s in SERVICES if "@" not in s), *TIMERS],
)
def test_systemd_analyze_verify(fake_root, unit):
    _verify_clean(fake_root, unit)


@needs_systemd
def test_mosquitto_drop_in_verifies(fake_root):
    _verify_clean(fake_root, "mosquitto.service")


@needs_systemd
def test_verify_catches_a_broken_unit(fake_root, tmp_path):
    """The check above can fail: a misspelt key in a copy of our unit is reported."""
    etc = fake_root / "etc/systemd/system"
    broken = etc / "broken-kiosk.service"
    broken.write_text((UNITS / "storehub.service").read_text().replace("NoNewPrivileges", "NoNewPrivilege"))
    try:
        res = _verify(fake_root, "broken-kiosk.service")
    finally:
        broken.unlink()
    assert "Unknown key" in res.stderr + res.stdout


HARDENING = {
    "ProtectSystem": {"strict", "full"},
    "NoNewPrivileges": {"yes"},
    "PrivateTmp": {"yes"},
    "ProtectHome": {"yes"},
}


@pytest.mark.parametrize("name", SERVICES)
def test_every_service_is_hardened(name):
    service = _read_unit(UNITS / name)["Service"]
    for key, allowed in HARDENING.items():
        if name == "kiosk-firstboot.service" and key == "ProtectSystem":
            continue  # it writes /etc (the overlay) by design
        assert service.get(key, [""])[-1] in allowed, f"{name}: {key}"


@pytest.mark.parametrize("name", ["kiosk@.service", "storehub.service", "storehub-dashboard.service"])
def test_long_running_services_use_dedicated_users_and_restart(name):
    service = _read_unit(UNITS / name)["Service"]
    assert service["User"][-1] in {"kiosk", "storehub"}
    assert service["Restart"][-1] == "always"
    assert service["CapabilityBoundingSet"] == [""]  # no capabilities at all
    assert "ReadWritePaths" in service


def test_kiosk_unit_has_watchdog_and_device_allow_list():
    service = _read_unit(UNITS / "kiosk@.service")["Service"]
    assert service["Type"] == ["notify"] and int(service["WatchdogSec"][0]) > 0
    assert service["DevicePolicy"] == ["closed"]
    assert "--mode %i" in service["ExecStart"][0]


def test_sysusers_and_udev_agree_on_groups():
    """The groups the udev rules hand out are exactly the ones the kiosk user is put into."""
    sysusers = (UNITS / "sysusers.d/kiosk.conf").read_text().splitlines()
    member_of = {line.split()[2] for line in sysusers if line.startswith("m kiosk ")}
    rules = (UNITS / "udev/70-kiosk-devices.rules").read_text()
    granted = {part.split('"')[1] for part in rules.split("GROUP=")[1:]}
    assert granted <= member_of
    kiosk = _read_unit(UNITS / "kiosk@.service")["Service"]
    assert set(kiosk["SupplementaryGroups"][0].split()) == member_of


def test_timer_units_parse():
    for name in TIMERS:
        parser = configparser.ConfigParser(strict=False)
        parser.read(UNITS / name)
        assert parser.has_section("Timer") and parser.has_section("Install")


def _exec_argv(name: str, env: dict[str, str]) -> list[str]:
    """ExecStart of a unit as argv, with ${VAR}/$VAR from the given environment."""
    import re
    import shlex

    line = _read_unit(UNITS / name)["Service"]["ExecStart"][-1]
    line = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: env[m.group(1) or m.group(2)], line)
    return shlex.split(line.replace("%i", "till"))


def _defaults(name: str) -> dict[str, str]:
    pairs = [line.split("=", 1) for line in (UNITS / "default" / name).read_text().splitlines()
             if line and not line.startswith("#")]  # fmt: skip
    return dict(pairs)


@pytest.mark.parametrize("unit, env", [
    ("kiosk@.service", {}),
    ("kiosk-backup.service", _defaults("kiosk-backup")),
    ("kiosk-update.service", _defaults("kiosk-update")),
])  # fmt: skip
def test_kiosk_command_lines_parse(unit, env):
    """The units call the kiosk command with options it really has."""
    from kiosk.cli import build_parser

    argv = _exec_argv(unit, env)
    assert argv[0] == "/opt/kiosk/current/bin/kiosk"
    build_parser().parse_args(argv[1:])  # SystemExit(2) on an unknown option


@pytest.mark.parametrize("unit", ["storehub.service", "storehub-dashboard.service",
                                  "storehub-messaging.service"])
def test_storehub_command_lines_parse(unit):
    from storehub.cli import build_parser

    env = {**_defaults("storehub"), "CREDENTIALS_DIRECTORY": "/run/credentials/storehub.service"}
    argv = _exec_argv(unit, env)
    assert argv[0] == "/opt/kiosk/current/bin/storehub"
    args = build_parser().parse_args(argv[1:])
    assert str(args.db) == "/var/lib/storehub/hub.db"
