"""Dashboard accounts, login throttling and the audit log: hub-local tables, never replicated.

Passwords are argon2 hashes. Failed logins are counted per user name and per client address
in a sliding window, so guessing is slow even across user names.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlite_utils import Migrations

from kiosk.engine import replication
from kiosk.engine.clock import iso
from kiosk.engine.store import Store
from kiosk.i18n import N_, _

ROLES = ("cashier", "manager", "owner")
ROLE_LABELS = {"cashier": N_("Cashier"), "manager": N_("Manager"), "owner": N_("Owner")}
RANK = {role: i for i, role in enumerate(ROLES, start=1)}
MAX_FAILURES = 5
WINDOW = dt.timedelta(minutes=15)
MIN_PASSWORD = 10
_NAME_RE = re.compile(r"^[a-z0-9._-]{2,40}$")

_hasher = PasswordHasher()
# Verified when a user name is unknown, so the answer takes as long as for a real account.
_DUMMY_HASH = _hasher.hash("not-a-real-password")

migrations = Migrations("storehub.dashboard")
for _table in ("dash_users", "dash_login_failures", "dash_audit", "dash_sessions"):
    replication.local_table(_table)


@migrations()
def m001_users(db) -> None:
    db.execute(
        "CREATE TABLE dash_users (name TEXT PRIMARY KEY, role TEXT NOT NULL,"
        " password_hash TEXT NOT NULL, active INTEGER NOT NULL DEFAULT 1, created_at TEXT)"
    )
    db.execute("CREATE TABLE dash_login_failures (key TEXT NOT NULL, at TEXT NOT NULL)")
    db.execute("CREATE INDEX dash_login_failures_key ON dash_login_failures(key, at)")
    db.execute(
        "CREATE TABLE dash_audit (id INTEGER PRIMARY KEY, at TEXT NOT NULL, user TEXT,"
        " action TEXT NOT NULL, target TEXT, detail TEXT)"
    )


@migrations()
def m002_list_indexes(db) -> None:
    # Hub-only indexes for the customer list: partial on live customers, so a page deep in
    # a million-row list skips index entries instead of table rows.
    live = "WHERE merged_into IS NULL AND erased_at IS NULL"
    db.execute(f"CREATE INDEX IF NOT EXISTS dash_customers_no ON customers(customer_no) {live}")
    db.execute(
        "CREATE INDEX IF NOT EXISTS dash_customers_name ON customers(last_name COLLATE NOCASE,"
        f" first_name COLLATE NOCASE) {live}"
    )
    db.execute(f"CREATE INDEX IF NOT EXISTS dash_customers_created ON customers(created_at) {live}")
    db.execute(f"CREATE INDEX IF NOT EXISTS dash_customers_postcode ON customers(postcode) {live}")


@migrations()
def m003_home_store_index(db) -> None:
    db.execute("CREATE INDEX IF NOT EXISTS dash_customers_home ON customers(home_store)")


@migrations()
def m004_sessions(db) -> None:
    db.execute(
        "CREATE TABLE dash_sessions (id TEXT PRIMARY KEY, user TEXT NOT NULL,"
        " created_at TEXT NOT NULL)"
    )


@migrations()
def m005_stored_value_indexes(db) -> None:
    # newest first on the gift card and wallet lists: an index walk instead of a sort
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "giftcards" in tables:
        db.execute("CREATE INDEX IF NOT EXISTS dash_giftcards_issued ON giftcards(issued_at, code)")
    if "wallets" in tables:
        db.execute("CREATE INDEX IF NOT EXISTS dash_wallets_created ON wallets(created_at, number)")


class UserError(ValueError):
    pass


def install(store: Store) -> None:
    with store.transaction():  # the store's lock: another thread may share the connection
        migrations.apply(store.db)


def set_user(store: Store, name: str, password: str, role: str) -> None:
    """Create a user or change its password and role."""
    name = (name or "").strip().lower()
    if not _NAME_RE.match(name):
        raise UserError(_("A user name has 2 to 40 lowercase letters, digits, . _ or -."))
    if role not in ROLES:
        raise UserError(_("Choose one of: {choices}.").format(choices=", ".join(ROLES)))
    if len(password or "") < MIN_PASSWORD:
        raise UserError(_("A password has at least {n} characters.").format(n=MIN_PASSWORD))
    with store.transaction():
        store.db.execute("DELETE FROM dash_sessions WHERE user = ?", [name])  # log out everywhere
        store.db.execute(
            "INSERT INTO dash_users (name, role, password_hash, active, created_at)"
            " VALUES (?, ?, ?, 1, ?) ON CONFLICT(name) DO UPDATE SET role = excluded.role,"
            " password_hash = excluded.password_hash, active = 1",
            [name, role, _hasher.hash(password), iso(store.clock())],
        )


def users(store: Store) -> list[dict[str, Any]]:
    return list(store.db.query("SELECT name, role, active, created_at FROM dash_users ORDER BY name"))


def _failures(store: Store, key: str) -> int:
    since = iso(store.clock() - WINDOW)
    return store.db.execute(
        "SELECT count(*) FROM dash_login_failures WHERE key = ? AND at > ?", [key, since]
    ).fetchone()[0]


def throttled(store: Store, name: str, client: str) -> bool:
    return (
        _failures(store, f"user:{name}") >= MAX_FAILURES
        or _failures(store, f"ip:{client}") >= MAX_FAILURES * 4
    )


def authenticate(store: Store, name: str, password: str, client: str) -> dict[str, Any] | None:
    """Return the user when the password matches; count a failure otherwise."""
    name = (name or "").strip().lower()
    row = store.db.execute(
        "SELECT name, role, password_hash FROM dash_users WHERE name = ? AND active = 1", [name]
    ).fetchone()
    try:
        ok = _hasher.verify(row[2] if row else _DUMMY_HASH, password or "") and row is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        ok = False
    now = iso(store.clock())
    with store.transaction():
        if ok:
            store.db.execute("DELETE FROM dash_login_failures WHERE key = ?", [f"user:{name}"])
        else:
            store.db.execute(
                "INSERT INTO dash_login_failures VALUES (?, ?), (?, ?)",
                [f"user:{name}", now, f"ip:{client}", now],
            )
            store.db.execute(
                "DELETE FROM dash_login_failures WHERE at < ?", [iso(store.clock() - WINDOW * 4)]
            )
    if ok and _hasher.check_needs_rehash(row[2]):
        with store.transaction():
            store.db.execute(
                "UPDATE dash_users SET password_hash = ? WHERE name = ?",
                [_hasher.hash(password), name],
            )
    return {"name": row[0], "role": row[1]} if ok else None


# -- server-side sessions: the signed cookie carries only an id, so logging out, a new password
# or a changed role take effect at once ------------------------------------------------------
SESSION_TTL = dt.timedelta(hours=8)


def open_session(store: Store, name: str) -> str:
    sid = secrets.token_urlsafe(32)
    with store.transaction():
        store.db.execute("INSERT INTO dash_sessions VALUES (?, ?, ?)",
                         [sid, name, iso(store.clock())])  # fmt: skip
        store.db.execute("DELETE FROM dash_sessions WHERE created_at < ?",
                         [iso(store.clock() - SESSION_TTL)])  # fmt: skip
    return sid


def session_user(store: Store, sid: str | None) -> dict[str, Any] | None:
    if not sid:
        return None
    row = store.db.execute(
        "SELECT u.name, u.role FROM dash_sessions s JOIN dash_users u ON u.name = s.user"
        " WHERE s.id = ? AND s.created_at >= ? AND u.active = 1",
        [sid, iso(store.clock() - SESSION_TTL)],
    ).fetchone()
    return {"name": row[0], "role": row[1]} if row else None


def close_session(store: Store, sid: str | None) -> None:
    if sid:
        with store.transaction():
            store.db.execute("DELETE FROM dash_sessions WHERE id = ?", [sid])


def audit(store: Store, user: str | None, action: str, target: str = "", detail: str = "") -> None:
    with store.transaction():
        store.db.execute(
            "INSERT INTO dash_audit (at, user, action, target, detail) VALUES (?, ?, ?, ?, ?)",
            [iso(store.clock()), user, action, target[:200], detail[:1000]],
        )


def audit_log(store: Store, limit: int = 200) -> list[dict[str, Any]]:
    return list(store.db.query("SELECT * FROM dash_audit ORDER BY id DESC LIMIT ?", [limit]))
