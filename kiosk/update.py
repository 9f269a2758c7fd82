"""App updates: a signed release from the hub, a fresh venv, an atomic switch, rollback.

    kiosk update keygen --private FILE --public FILE      once, on the owner's/vendor's PC
    kiosk update publish WHEEL... --to DIR --key FILE     on the hub: DIR is served as /updates/
    kiosk update check --from URL [--unit kiosk@till.service]   on a device (kiosk-update.timer)
    kiosk update install WHEEL [--wheelhouse DIR]         install a wheel you have at hand
    kiosk update rollback                                 back to the previous release
    kiosk update selftest                                 what a new release runs before it is used

Layout (``--root``, default /opt/kiosk)::

    releases/<version>-<stamp>/   one virtual environment per release, never changed again
    current -> releases/…         what the units run (/opt/kiosk/current/bin/kiosk)
    previous -> releases/…        what a rollback returns to
    wheelhouse/                   the wheels of every release (offline installs)

An update: verify the manifest's Ed25519 signature and every wheel's SHA-256 (a rogue machine
on the shop Wi-Fi must not be able to push code); install into a new venv from the wheelhouse
only (no index); run the new release's ``selftest`` (imports, migrations on a *copy* of the
database); back up the database; switch ``current`` with one ``rename``; restart the app and
wait until systemd reports it active (``Type=notify`` means READY=1 was sent) without a
restart. Anything else switches back, restores the database copy and restarts the old one.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from kiosk import backup as bk

_LOGGER = logging.getLogger(__name__)

DEFAULT_ROOT = Path(os.environ.get("KIOSK_ROOT", "/opt/kiosk"))
DEFAULT_PUBKEY = Path("/etc/kiosk/update-signing.pub")
MANIFEST = "latest.json"
DIST = "retail-kiosk"
_WHEEL_RE = re.compile(r"^(?P<name>[A-Za-z0-9_.]+)-(?P<version>[^-]+)-.+\.whl$")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.+-]+\.whl$")


class UpdateError(RuntimeError):
    """The update was not installed (or was rolled back); the message says why."""


# -- signing -----------------------------------------------------------------------------------
def keygen(private: Path, public: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))  # fmt: skip
    private.chmod(0o600)
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))  # fmt: skip


def _canonical(body: dict) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def sign_manifest(body: dict, private_key: Path) -> dict:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(private_key.read_bytes(), password=None)
    return {**body, "signature": base64.b64encode(key.sign(_canonical(body))).decode()}


def verify_manifest(manifest: dict, public_key: Path) -> dict:
    """Return the manifest without its signature, or raise UpdateError."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization

    body = {k: v for k, v in manifest.items() if k != "signature"}
    try:
        key = serialization.load_pem_public_key(public_key.read_bytes())
        key.verify(base64.b64decode(manifest.get("signature", "")), _canonical(body))
    except (InvalidSignature, ValueError, OSError) as exc:
        raise UpdateError(f"the release manifest is not signed by the update key ({exc!r})") from exc
    if not isinstance(body.get("files"), dict) or not isinstance(body.get("version"), str):
        raise UpdateError("the release manifest has no version or files")
    for name in body["files"]:
        if not _SAFE_NAME.match(name):
            raise UpdateError(f"refusing a file name in the manifest: {name!r}")
    return body


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def publish(wheels: list[Path], dest: Path, private_key: Path) -> Path:
    """Copy a release's wheels (the app and its dependencies) to ``dest`` and sign latest.json."""
    app = [w for w in wheels if _WHEEL_RE.match(w.name) and
           _WHEEL_RE.match(w.name)["name"].replace("_", "-").lower() == DIST]  # fmt: skip
    if len(app) != 1:
        raise UpdateError(f"give exactly one {DIST} wheel (found {len(app)})")
    dest.mkdir(parents=True, exist_ok=True)
    files = {}
    for wheel in wheels:
        shutil.copy2(wheel, dest / wheel.name)
        files[wheel.name] = sha256(dest / wheel.name)
    body = {
        "version": _WHEEL_RE.match(app[0].name)["version"],
        "app": app[0].name,
        "files": files,
        "published_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    manifest = dest / MANIFEST
    tmp = manifest.with_suffix(".tmp")
    tmp.write_text(json.dumps(sign_manifest(body, private_key), indent=1))
    os.replace(tmp, manifest)
    return manifest


# -- releases ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Layout:
    root: Path

    @property
    def releases(self) -> Path:
        return self.root / "releases"

    @property
    def wheelhouse(self) -> Path:
        return self.root / "wheelhouse"

    @property
    def current(self) -> Path:
        return self.root / "current"

    @property
    def previous(self) -> Path:
        return self.root / "previous"

    def target(self, link: Path) -> Path | None:
        return link.resolve() if link.is_symlink() else None


def _point(link: Path, target: Path) -> None:
    """Make ``link`` point at ``target`` atomically (symlink + rename)."""
    tmp = link.with_name(f".{link.name}.new")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(os.path.relpath(target, link.parent))
    os.replace(tmp, link)
    fd = os.open(link.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _run(cmd: list[str], *, timeout: float = 900, env: dict | None = None) -> subprocess.CompletedProcess:
    _LOGGER.info("running %s", " ".join(map(str, cmd)))
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout,
                          env=env)  # fmt: skip


def install_release(layout: Layout, wheel: Path, *, wheelhouse: Path | None = None,
                    python: str | None = None) -> Path:  # fmt: skip
    """Install ``wheel`` into a new venv under releases/ (offline) and return its path."""
    m = _WHEEL_RE.match(wheel.name)
    if not m or not wheel.is_file():
        raise UpdateError(f"not a wheel: {wheel}")
    layout.releases.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    # Installed in place (venv scripts hold absolute paths); until `current` points here the
    # directory is unused, and a failed install is removed.
    release = layout.releases / f"{m['version']}-{stamp}"
    res = _run([python or sys.executable, "-m", "venv", "--without-pip", release])
    if res.returncode:
        shutil.rmtree(release, ignore_errors=True)
        raise UpdateError(f"could not create a venv: {res.stderr.strip()}")
    links = [wheel.parent] + ([wheelhouse] if wheelhouse else [])
    cmd = [sys.executable, "-m", "pip", "--python", release / "bin/python", "install", "--quiet",
           "--no-index", "--disable-pip-version-check", "--no-compile"]  # fmt: skip
    for link in links:
        cmd += ["--find-links", link]
    res = _run([*cmd, wheel])
    if res.returncode:
        shutil.rmtree(release, ignore_errors=True)
        raise UpdateError(f"pip could not install {wheel.name}: {res.stderr.strip()[-2000:]}")
    _LOGGER.info("installed %s into %s", wheel.name, release)
    return release


def selftest_release(release: Path, config: Path | None) -> None:
    """Run the new release's own selftest (against a copy of the database)."""
    cmd = [release / "bin/kiosk"] + (["--config", config] if config else []) + ["update", "selftest"]
    res = _run(cmd, timeout=300)
    if res.returncode:
        raise UpdateError(f"the new release failed its self-test: {(res.stdout + res.stderr).strip()[-2000:]}")


def _unit_state(unit: str) -> tuple[str, int]:
    res = _run(["systemctl", "show", "--property=ActiveState,NRestarts", unit], timeout=30)
    props = dict(line.split("=", 1) for line in res.stdout.splitlines() if "=" in line)
    return props.get("ActiveState", "unknown"), int(props.get("NRestarts") or 0)


def unit_healthy(unit: str, *, settle: float = 60, timeout: float = 900) -> bool:
    """Restart ``unit`` and wait until it is active and has not restarted for ``settle`` s.

    ``timeout`` matches the start timeout the app asks for while migrating (kiosk/app.py).
    """
    if _run(["systemctl", "restart", "--no-block", unit], timeout=60).returncode:
        return False
    deadline = time.monotonic() + timeout
    since = None
    _state, restarts = _unit_state(unit)
    while time.monotonic() < deadline:
        state, now_restarts = _unit_state(unit)
        if state == "failed" or now_restarts != restarts:
            return False
        if state == "active":
            since = since or time.monotonic()
            if time.monotonic() - since >= settle:
                return True
        else:
            since = None
        time.sleep(2)
    return False


def apply(layout: Layout, wheel: Path, *, wheelhouse: Path | None = None, config: Path | None = None,
          db: Path | None = None, unit: str | None = None, health_cmd: list[str] | None = None,
          settle: float = 60) -> Path:  # fmt: skip
    """Install, self-test, switch, check health; roll back on any failure. Returns the release."""
    release = install_release(layout, wheel, wheelhouse=wheelhouse)
    try:
        selftest_release(release, config)
    except UpdateError:
        shutil.rmtree(release, ignore_errors=True)
        raise
    old = layout.target(layout.current)
    saved = bk.backup(db, layout.root / "db-before-update", keep=3) if db and db.exists() else None
    _point(layout.current, release)
    healthy = True
    if unit:
        healthy = unit_healthy(unit, settle=settle)
    if healthy and health_cmd:
        healthy = _run(health_cmd, timeout=300).returncode == 0
    if healthy:
        if old is not None:
            _point(layout.previous, old)
        _LOGGER.info("now running %s", release.name)
        _prune(layout)
        return release
    _LOGGER.error("%s is not healthy: rolling back to %s", release.name, old)
    if old is not None:
        _point(layout.current, old)
    else:
        layout.current.unlink()
    if unit:
        _run(["systemctl", "stop", unit], timeout=60)
    if saved is not None:
        bk.restore(saved, db, safety_dir=layout.root / "db-failed-update", force=True)
    if unit:
        _run(["systemctl", "start", "--no-block", unit], timeout=60)
    raise UpdateError(f"{release.name} did not report healthy; rolled back to "
                      f"{old.name if old else 'nothing'}")  # fmt: skip


def rollback(layout: Layout) -> Path:
    prev = layout.target(layout.previous)
    cur = layout.target(layout.current)
    if prev is None or not prev.is_dir():
        raise UpdateError("there is no previous release to go back to")
    _point(layout.current, prev)
    if cur is not None:
        _point(layout.previous, cur)
    return prev


def _prune(layout: Layout, keep: int = 3) -> None:
    """Delete old releases, never the current or previous one."""
    protect = {layout.target(layout.current), layout.target(layout.previous)}
    releases = sorted((p for p in layout.releases.iterdir() if p.is_dir()),
                      key=lambda p: p.stat().st_mtime)  # fmt: skip
    for old in releases[:-keep]:
        if old.resolve() not in protect:
            shutil.rmtree(old, ignore_errors=True)


def current_version(layout: Layout) -> str | None:
    target = layout.target(layout.current)
    return target.name.split("-")[0] if target else None


def fetch(base_url: str, layout: Layout, public_key: Path) -> tuple[dict, Path] | None:
    """Download and verify the hub's latest release; None when it is the one running."""
    if not base_url.endswith("/"):
        base_url += "/"
    try:
        with urllib.request.urlopen(urllib.parse.urljoin(base_url, MANIFEST), timeout=30) as resp:
            manifest = json.loads(resp.read(1 << 20))
    except (OSError, ValueError) as exc:
        raise UpdateError(f"no release manifest at {base_url}: {exc}") from exc
    body = verify_manifest(manifest, public_key)
    if body["version"] == current_version(layout):
        return None
    layout.wheelhouse.mkdir(parents=True, exist_ok=True)
    for name, digest in body["files"].items():
        path = layout.wheelhouse / name
        if path.exists() and sha256(path) == digest:
            continue
        tmp = path.with_name(path.name + ".part")
        try:
            with urllib.request.urlopen(urllib.parse.urljoin(base_url, urllib.parse.quote(name)),
                                        timeout=120) as resp, tmp.open("wb") as out:  # fmt: skip
                shutil.copyfileobj(resp, out)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise UpdateError(f"download of {name} failed: {exc}") from exc
        if sha256(tmp) != digest:
            tmp.unlink()
            raise UpdateError(f"{name} does not match the signed manifest; not installed")
        os.replace(tmp, path)
    return body, layout.wheelhouse / body["app"]


def selftest(config: Path | None) -> None:
    """Import everything the app needs and migrate a copy of the device's database."""
    import importlib

    for module in ("kiosk.engine", "kiosk.sync", "kiosk.drivers.registry", "kiosk.app"):
        importlib.import_module(module)
    if config is None or not Path(config).exists():
        return
    from kiosk.config import load
    from kiosk.engine.store import Store

    cfg = load(config)
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / cfg.db_path.name
        if cfg.db_path.exists():
            with bk._open(cfg.db_path) as src, bk._open(copy) as dst:
                src.backup(dst)
        Store(copy, cfg.identity).close()  # runs this release's migrations on the copy


# -- command line ------------------------------------------------------------------------------
def _cmd(args: argparse.Namespace) -> int:
    layout = Layout(Path(args.root))
    try:
        if args.action == "keygen":
            keygen(Path(args.private), Path(args.public))
        elif args.action == "publish":
            print(publish([Path(w) for w in args.wheels], Path(args.to), Path(args.key)))
        elif args.action == "selftest":
            selftest(Path(args.config) if args.config else None)
            print("ok")
        elif args.action == "rollback":
            print(f"now running {rollback(layout).name}")
        else:
            db = None
            config = Path(args.config) if args.config and Path(args.config).exists() else None
            if config is not None:
                from kiosk.config import load

                db = load(config).db_path
            if args.action == "check":
                found = fetch(args.source, layout, Path(args.public_key))
                if found is None:
                    print(f"up to date ({current_version(layout)})")
                    return 0
                wheel, wheelhouse = found[1], layout.wheelhouse
            else:
                wheel = Path(args.wheel)
                wheelhouse = Path(args.wheelhouse) if args.wheelhouse else None
            health = args.health_cmd.split() if getattr(args, "health_cmd", None) else None
            release = apply(layout, wheel, wheelhouse=wheelhouse, config=config, db=db,
                            unit=args.unit, health_cmd=health, settle=args.settle)  # fmt: skip
            print(f"now running {release.name}")
    except (UpdateError, bk.BackupError) as exc:
        print(f"kiosk update: {exc}", file=sys.stderr)
        return 1
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("update", help="install, check or roll back app releases")
    p.add_argument("--root", default=str(DEFAULT_ROOT), help="release directory (/opt/kiosk)")
    acts = p.add_subparsers(dest="action", required=True, metavar="action")
    k = acts.add_parser("keygen", help="make the release signing key pair")
    k.add_argument("--private", required=True)
    k.add_argument("--public", required=True)
    pub = acts.add_parser("publish", help="put a release where devices fetch it (on the hub)")
    pub.add_argument("wheels", nargs="+", help="the app wheel and its dependency wheels")
    pub.add_argument("--to", required=True)
    pub.add_argument("--key", required=True, help="private signing key")
    for name, helptext in (("check", "fetch and install the hub's release if it is new"),
                           ("install", "install a wheel into a fresh venv and switch to it")):  # fmt: skip
        a = acts.add_parser(name, help=helptext)
        if name == "check":
            a.add_argument("--from", dest="source", required=True, help="the hub's /updates/ URL")
            a.add_argument("--public-key", default=str(DEFAULT_PUBKEY))
        else:
            a.add_argument("wheel")
            a.add_argument("--wheelhouse", help="directory with the dependency wheels")
        a.add_argument("--unit", help="systemd unit to restart and watch, e.g. kiosk@till.service")
        a.add_argument("--health-cmd", help="command that must exit 0 after the switch")
        a.add_argument("--settle", type=float, default=60, help="seconds the unit must stay up")
    acts.add_parser("rollback", help="switch back to the previous release")
    acts.add_parser("selftest", help="check this release can run (imports, migrations on a copy)")
    p.set_defaults(func=_cmd)
