"""The cheap parts of image-build/: shellcheck, first-boot settings, the data partition.

The full builds (image-build/build-rootfs.sh: debootstrap + install step + app start in the
chroot; build-pi-image.sh: pi-gen) need root, network and minutes to an hour: they are run by
hand or in a separate CI job, never here.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk.config import load

ROOT = Path(__file__).resolve().parents[1]
IMAGE = ROOT / "image-build"
FIRSTBOOT = IMAGE / "files/kiosk-firstboot"
SCRIPTS = sorted(
    [*IMAGE.rglob("*.sh"), IMAGE / "pi-gen/stage-kiosk/01-readonly/files/kiosk-grow-data"]
)


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(IMAGE)))
def test_shellcheck(script):
    res = subprocess.run(["shellcheck", "-x", "-s", "bash", str(script)], capture_output=True,
                         text=True, cwd=script.parent)  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.parametrize("script", [*SCRIPTS, FIRSTBOOT], ids=lambda p: p.name)
def test_scripts_are_executable(script):
    assert script.stat().st_mode & stat.S_IXUSR


def test_pi_gen_stage_layout():
    stage = IMAGE / "pi-gen/stage-kiosk"
    assert (stage / "EXPORT_IMAGE").exists() and (stage / "prerun.sh").exists()
    packages = (stage / "00-app/00-packages").read_text().split()
    assert {"python3-venv", "libgl1-mesa-dri", "network-manager"} <= set(packages)
    config = (IMAGE / "pi-gen/config").read_text()
    assert "RELEASE=bookworm" in config and "stage-kiosk" in config
    assert "FIRST_USER_PASS" not in config  # a password is passed in, never stored


BOOT_TOML = """\
# written by the shop owner on the boot partition
[device]
store_id = "laden-koeln"
device_id = "till-2"
device_no = 2
mode = "till"

[hub]
host = "192.168.1.10"
port = 8883
tls = true
web_url = "http://192.168.1.10:8080/"
password = "s3cret-mqtt"
store_key = "store-data-key"

[wifi]
ssid = "Laden WLAN"
psk = "wifi-passphrase"

[ui]
keyboard = "de"

[[drivers.scanner]]
type = "evdev"
name = "Honeywell"
"""


def firstboot(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(FIRSTBOOT), "--boot", str(tmp_path / "boot/kiosk.toml"),
         "--data", str(tmp_path / "data"), "--etc", str(tmp_path / "etc"), "--no-start", *extra],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


@pytest.fixture
def boot(tmp_path) -> Path:
    path = tmp_path / "boot/kiosk.toml"
    path.parent.mkdir()
    path.write_text(BOOT_TOML)
    return path


def test_first_boot_writes_the_device_config_and_moves_secrets(tmp_path, boot):
    res = firstboot(tmp_path)
    assert res.returncode == 0, res.stderr
    cfg = load(tmp_path / "etc/kiosk/device.toml")
    assert (cfg.identity.store_id, cfg.identity.device_id, cfg.identity.device_no) == (
        "laden-koeln", "till-2", 2)  # fmt: skip
    assert cfg.mode == "till" and cfg.data_dir == tmp_path / "data" and cfg.ui.fullscreen
    assert cfg.hub.host == "192.168.1.10" and cfg.hub.port == 8883 and cfg.hub.tls
    assert cfg.hub.username == "till-2" and cfg.hub.password() == "s3cret-mqtt"
    assert cfg.secret_key() == b"store-data-key"
    assert cfg.drivers == {"scanner": [{"type": "evdev", "name": "Honeywell"}]}
    # the FAT boot partition no longer holds any secret; the data partition does, 0600
    text = boot.read_text()
    assert "s3cret" not in text and "wifi-passphrase" not in text and "store-data-key" not in text
    assert 'ssid = "Laden WLAN"' in text
    for name in ("mqtt-password", "wifi.psk", "store.key"):
        assert stat.S_IMODE((tmp_path / "data/secrets" / name).stat().st_mode) == 0o600
    assert (tmp_path / "etc/default/kiosk-update").read_text().split() == [
        "KIOSK_UNIT=kiosk@till.service", "UPDATE_URL=http://192.168.1.10:8080/updates/"]
    wifi = tmp_path / "etc/NetworkManager/system-connections/kiosk-wifi.nmconnection"
    assert "ssid=Laden WLAN" in wifi.read_text() and "psk=wifi-passphrase" in wifi.read_text()
    assert stat.S_IMODE(wifi.stat().st_mode) == 0o600
    for path in (tmp_path / "etc").rglob("*"):  # nothing secret is left in the config itself
        if path.is_file() and path != wifi:
            assert "s3cret" not in path.read_text()

    # the next boot (overlay root: /etc is empty again) gives the same result
    shutil.rmtree(tmp_path / "etc")
    assert firstboot(tmp_path).returncode == 0
    again = load(tmp_path / "etc/kiosk/device.toml")
    assert again.hub.password() == "s3cret-mqtt" and again.identity == cfg.identity
    assert "psk=wifi-passphrase" in wifi.read_text()


def test_a_typo_on_the_card_keeps_the_last_good_settings(tmp_path, boot):
    assert firstboot(tmp_path).returncode == 0
    boot.write_text(boot.read_text().replace('mode = "till"', 'mode = "tll"'))
    shutil.rmtree(tmp_path / "etc")
    res = firstboot(tmp_path)
    assert res.returncode == 0 and "device.mode must be one of" in res.stderr
    assert "last good settings" in res.stderr
    assert load(tmp_path / "etc/kiosk/device.toml").mode == "till"


@pytest.mark.parametrize("bad, message", [
    ('store_id = "laden-koeln"', "store_id = \"Laden Köln\""),
    ("device_no = 2", "device_no = 200"),
    ('[wifi]\nssid = "Laden WLAN"', "[wifi]\nssid = \"\""),
])  # fmt: skip
def test_bad_first_settings_start_nothing(tmp_path, boot, bad, message):
    boot.write_text(BOOT_TOML.replace(bad, message))
    res = firstboot(tmp_path)
    assert res.returncode == 1 and "kiosk-firstboot:" in res.stderr
    assert not (tmp_path / "etc").exists()
    assert "s3cret-mqtt" in boot.read_text()  # nothing moved either


@pytest.mark.skipif(
    not all(shutil.which(t) for t in ("sfdisk", "mke2fs", "debugfs")),
    reason="sfdisk (package fdisk), mke2fs and debugfs are needed",
)
def test_data_partition_is_appended_to_an_image(tmp_path):
    img = tmp_path / "raspios.img"
    with img.open("wb") as fh:
        fh.truncate(48 << 20)
    layout = "label: dos\nstart=8192, size=16384, type=c\nstart=24576, size=65536, type=83\n"
    subprocess.run(["sfdisk", "--quiet", str(img)], input=layout, text=True, check=True)
    opt = tmp_path / "opt-kiosk"
    (opt / "current").mkdir(parents=True)
    (opt / "current/marker").write_text("release\n")
    script = IMAGE / "add-data-partition.sh"
    res = subprocess.run(["bash", str(script), str(img), "16", str(opt)], capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    assert res.returncode == 0, res.stderr
    dump = subprocess.run(["sfdisk", "--dump", str(img)], capture_output=True, text=True).stdout
    third = [line for line in dump.splitlines() if line.startswith(f"{img}3")]
    assert third and "size=       32768" in third[0] and "type=83" in third[0]
    start = int(third[0].split("start=")[1].split(",")[0])
    part = tmp_path / "p3.img"
    with img.open("rb") as src, part.open("wb") as dst:
        src.seek(start * 512)
        dst.write(src.read())
    env = {**os.environ, "LC_ALL": "C"}
    cat = subprocess.run(["debugfs", "-R", "cat /opt-kiosk/current/marker", str(part)],
                         capture_output=True, text=True, env=env)  # fmt: skip
    assert cat.stdout == "release\n"
    label = subprocess.run(["debugfs", "-R", "stats", str(part)], capture_output=True, text=True,
                           env=env).stdout  # fmt: skip
    assert "Filesystem volume name:   KIOSKDATA" in label
    again = subprocess.run(["bash", str(script), str(img), "16"], capture_output=True, text=True)
    assert again.returncode == 1  # never a second data partition
