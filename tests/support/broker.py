"""A real Mosquitto broker on a free loopback port, started and killed by tests."""

from __future__ import annotations

import getpass
import shutil
import signal
import subprocess
from pathlib import Path

from tests.support.net import LOOPBACK, free_port, wait_for_port


class Mosquitto:
    """One broker process with its own config and persistence directory.

    ``extra_conf`` is appended to the generated config (ACLs, password files, bridges).
    ``stop(kill=True)`` sends SIGKILL, as a power cut would; ``start()`` again reuses the port.
    """

    def __init__(self, workdir: Path, extra_conf: str = "", anonymous: bool = True,
                 port: int | None = None) -> None:  # fmt: skip
        if shutil.which("mosquitto") is None:
            raise RuntimeError("mosquitto is not installed: run ./run-tests (it installs it)")
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.host = LOOPBACK
        self.proc: subprocess.Popen | None = None
        self.conf = self.workdir / "mosquitto.conf"
        self.log = self.workdir / "mosquitto.log"
        self.conf.write_text(
            # as root, Mosquitto would switch to user "mosquitto" and lose our files
            f"user {getpass.getuser()}\n"
            f"listener {self.port} {LOOPBACK}\n"
            f"allow_anonymous {'true' if anonymous else 'false'}\n"
            f"persistence true\npersistence_location {self.workdir}/\n"
            "max_queued_messages 100000\nmax_inflight_messages 100\n"
            f"log_dest file {self.log}\nlog_type error\nlog_type warning\n"
            + extra_conf
        )

    def start(self) -> "Mosquitto":
        self.proc = subprocess.Popen(
            ["mosquitto", "-c", str(self.conf)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_for_port(self.port)
        except TimeoutError:
            self.stop(kill=True)
            raise RuntimeError(f"mosquitto did not start: {self.log.read_text() if self.log.exists() else ''}")
        return self

    def stop(self, kill: bool = False) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            self.proc.wait(timeout=10)
        self.proc = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def store_broker(workdir: Path, store: str, devices: list[str], *, extra_conf: str = "",
                 port: int | None = None) -> Mosquitto:  # fmt: skip
    """A store's Mosquitto with the production security: a password per device (made by
    ``storehub enrol``) and the generated ACL. ``broker.conf_dir`` holds the credentials."""
    from storehub.enrol import enrol, ensure_hub

    port = port or free_port()
    conf_dir = Path(workdir) / "conf"
    ensure_hub(conf_dir)
    for device in devices:
        enrol(conf_dir, store, device, port=port)
    broker = Mosquitto(
        Path(workdir) / "broker",
        extra_conf=f"password_file {conf_dir}/passwd\nacl_file {conf_dir}/acl\n" + extra_conf,
        anonymous=False,
        port=port,
    )
    broker.conf_dir = conf_dir
    return broker


def hub_config(broker: Mosquitto):
    from kiosk.config import HubConfig

    return HubConfig(host=broker.host, port=broker.port, username="hub",
                     password_file=broker.conf_dir / "hub.password")  # fmt: skip


def device_config(broker: Mosquitto, device: str):
    from kiosk.config import load

    return load(broker.conf_dir / "devices" / f"{device}.toml")
