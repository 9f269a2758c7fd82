"""One device's SQLite database: connection settings, migrations, transactions, identity.

Each device keeps exactly one file. WAL lets the UI read while the sync thread writes, and
``synchronous=FULL`` makes every committed sale survive a power cut (NORMAL may lose the last
commits). Writers use ``BEGIN IMMEDIATE`` so two connections never dead-lock on a lock upgrade.
"""

from __future__ import annotations

import contextlib
import logging
import re
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlite_utils import Database, Migrations

from kiosk.engine.clock import Clock, utcnow
from kiosk.engine.hlc import HybridClock

_LOGGER = logging.getLogger(__name__)

ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")

# Migration sets, applied in this order at every start-up. Each domain module owns its
# schema in its own named set; the order only matters for foreign keys between sets.
_MIGRATION_SETS: list[Migrations] = []


def register_migrations(migrations: Migrations) -> Migrations:
    """Add a domain module's migration set to those applied when a store opens."""
    if all(m.name != migrations.name for m in _MIGRATION_SETS):
        _MIGRATION_SETS.append(migrations)
    return migrations


class IdentityMismatch(RuntimeError):
    """The database file belongs to another device."""


@dataclass(frozen=True)
class Identity:
    """Who writes into this database: ids are lowercase ``[a-z0-9-]`` (MQTT topic safe)."""

    store_id: str
    device_id: str
    device_no: int = 1  # 1..99, prefixes customer numbers so devices never collide offline

    def __post_init__(self) -> None:
        for name in ("store_id", "device_id"):
            if not ID_RE.match(getattr(self, name)):
                raise ValueError(f"{name} must match [a-z0-9-]: {getattr(self, name)!r}")
        if not 0 <= self.device_no <= 99:
            raise ValueError("device_no must be between 0 and 99")


def connect(path: str | Path | None) -> Database:
    """Open a database with the settings every connection of this product uses."""
    if path is None or str(path) == ":memory:":
        conn = sqlite3.connect(":memory:", check_same_thread=False, cached_statements=512)
    else:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            str(path), timeout=10, check_same_thread=False, cached_statements=512
        )
    # Autocommit at the driver level: every transaction in this product is an explicit
    # BEGIN IMMEDIATE (Store.transaction), never one the sqlite3 module opens behind our back.
    conn.isolation_level = None
    db = Database(conn)
    if path is not None and str(path) != ":memory:":
        db.enable_wal()
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=10000")
    conn.execute("PRAGMA temp_store=MEMORY")
    conn.execute("PRAGMA cache_size=-32000")  # 32 MB page cache: the search index stays hot
    conn.execute("PRAGMA mmap_size=268435456")
    # after a burst the WAL file is cut back when it starts over (an SD card is small)
    conn.execute("PRAGMA journal_size_limit=33554432")
    return db


core = register_migrations(Migrations("kiosk.core"))


@core()
def m001_meta_and_events(db: Database) -> None:
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    # The event log is also the outbox: own events with acked=0 are still to be shipped.
    db.execute(
        """
        CREATE TABLE events (
            id TEXT PRIMARY KEY,          -- UUIDv7: unique and time-sortable
            device TEXT NOT NULL,         -- device that made the change
            hlc TEXT NOT NULL,            -- hybrid logical clock of the change
            type TEXT NOT NULL,
            v INTEGER NOT NULL,           -- payload schema version
            payload TEXT NOT NULL,        -- JSON
            created_at TEXT NOT NULL,     -- aware ISO 8601 (UTC)
            seq INTEGER,                  -- store sequence number given by the hub
            acked INTEGER NOT NULL DEFAULT 0
        )
        """
    )
    db.execute("CREATE INDEX events_hlc ON events(hlc)")
    db.execute("CREATE INDEX events_outbox ON events(device, acked) WHERE acked = 0")
    db.execute("CREATE UNIQUE INDEX events_seq ON events(seq) WHERE seq IS NOT NULL")


def dicts(db: Database, sql: str, params: list | tuple = ()) -> list[dict]:
    """Rows as dicts, read straight from the connection.

    ``Database.query`` wraps every read in a savepoint (two more statements); the till's
    quote reads a handful of rows per scan, so its hot reads use this instead.
    """
    cur = db.conn.execute(sql, params)
    cols = [c[0] for c in cur.description]
    return [dict(zip(cols, row)) for row in cur]


def cluster_by_key(db: Database, table: str) -> None:
    """Rebuild ``table`` as a WITHOUT ROWID table (for migrations).

    A table whose primary key is text otherwise keeps two B-trees, the rows and the key
    index, and every insert writes a page of each; clustered, it writes one. Only for tables
    that no foreign key points at (dropping a parent would cascade) and whose rows are small.
    """
    sql = db.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", [table]
    ).fetchone()[0]
    if re.search(r"WITHOUT\s+ROWID\s*$", sql, re.I):
        return
    extras = [r[0] for r in db.execute(
        "SELECT sql FROM sqlite_master WHERE tbl_name = ? AND type IN ('index', 'trigger')"
        " AND sql IS NOT NULL", [table])]  # fmt: skip
    new = f"{table}__clustered"
    create = re.sub(r"^CREATE TABLE\s+\[?\"?" + re.escape(table) + r"\]?\"?",
                    f"CREATE TABLE [{new}]", sql.strip(), count=1, flags=re.I)  # fmt: skip
    db.execute(f"{create} WITHOUT ROWID")
    db.execute(f"INSERT INTO [{new}] SELECT * FROM [{table}]")
    db.execute(f"DROP TABLE [{table}]")
    db.execute(f"ALTER TABLE [{new}] RENAME TO [{table}]")
    for stmt in extras:
        db.execute(stmt)


class Store:
    """A device database with its identity, clock and event-writing transaction."""

    def __init__(
        self,
        path: str | Path | None,
        identity: Identity,
        *,
        clock: Clock = utcnow,
        hlc: HybridClock | None = None,
        secret_key: bytes | None = None,
    ) -> None:
        self.path = None if path is None else Path(path)
        self.identity = identity
        self.clock = clock
        self.db = connect(path)
        self._lock = threading.RLock()
        self._depth = 0
        self.migrate()
        self._check_identity()
        last = self.db.execute("SELECT max(hlc) FROM events").fetchone()[0]
        self.hlc = hlc or HybridClock(identity.device_id, last)
        if last and hlc is None:
            self.hlc.observe(last)
        self.secret_key = secret_key or self._local_secret()

    # -- lifecycle ---------------------------------------------------------------------
    def migrate(self) -> None:
        """Apply pending migrations of every registered set (safe to call repeatedly)."""
        import kiosk.engine  # noqa: F401  (registers every domain module's migrations)

        for migrations in _MIGRATION_SETS:
            migrations.apply(self.db)

    def clone(self) -> "Store":
        """Open a second connection for another thread, sharing identity and clock."""
        if self.path is None:
            raise ValueError("an in-memory store cannot be shared between connections")
        return Store(
            self.path, self.identity, clock=self.clock, hlc=self.hlc, secret_key=self.secret_key
        )

    def close(self) -> None:
        self.stop_checkpointer()
        self.db.close()

    # -- WAL checkpoints off the hot path ----------------------------------------------------
    _checkpointer: threading.Thread | None = None
    _checkpoint_stop: threading.Event | None = None

    def start_checkpointer(
        self,
        every_s: float = 0.5,
        restart_bytes: int = 16 << 20,
        upkeep: Iterable[Callable[[sqlite3.Connection], None]] = (),
    ) -> None:
        """Checkpoint the WAL from a background thread instead of inside commits.

        SQLite's automatic checkpoint runs in whichever commit crosses 1000 pages, which makes
        that one sale slow. Long-running processes (the app, the hub) call this: this
        connection stops auto-checkpointing and a thread with its own connection runs PASSIVE
        checkpoints (they never block writers) every ``every_s`` seconds.

        Under a steady stream of commits a PASSIVE checkpoint never catches up with the last
        frames, so the WAL would never start over: it grows without end, and every commit
        then also grows the file, which costs the fsync about twice as much as overwriting.
        Once the WAL is larger than ``restart_bytes`` the thread therefore follows with a
        RESTART checkpoint: it copies the few frames the PASSIVE one left (writers wait for
        that moment) and the next commit writes the WAL from its start again.

        Each ``upkeep`` task is called with the thread's connection (autocommit) after every
        checkpoint round: housekeeping that writes in small steps off the UI thread, such as
        merging the search index (search.IndexUpkeep). A task that fails is logged and
        called again next round.
        """
        if self.path is None or self._checkpointer is not None:
            return
        self.db.execute("PRAGMA wal_autocheckpoint=0")
        stop = threading.Event()
        path = self.path
        page_size = self.db.execute("PRAGMA page_size").fetchone()[0]

        tasks = list(upkeep)

        def run() -> None:
            con = sqlite3.connect(str(path), timeout=10, isolation_level=None)
            try:
                while not stop.wait(every_s):
                    try:
                        _busy, frames, _done = con.execute(
                            "PRAGMA wal_checkpoint(PASSIVE)").fetchone()  # fmt: skip
                        if frames * page_size > restart_bytes:
                            con.execute("PRAGMA wal_checkpoint(RESTART)")
                    except sqlite3.Error:  # busy or closing: the next round tries again
                        pass
                    for task in tasks:
                        if stop.is_set():
                            break
                        try:
                            task(con)
                        except Exception:
                            _LOGGER.exception("upkeep task %r failed", task)
                con.execute("PRAGMA wal_checkpoint(PASSIVE)")
            finally:
                con.close()

        self._checkpoint_stop = stop
        self._checkpointer = threading.Thread(target=run, name="wal-checkpoint", daemon=True)
        self._checkpointer.start()

    def stop_checkpointer(self) -> None:
        if self._checkpointer is None:
            return
        self._checkpoint_stop.set()
        self._checkpointer.join(10)
        self._checkpointer = None
        self.db.execute("PRAGMA wal_autocheckpoint=1000")

    def _check_identity(self) -> None:
        ident = self.identity
        with self.transaction():
            stored = dict(self.db.execute("SELECT key, value FROM meta WHERE key LIKE 'identity.%'"))
            if not stored:
                self.db.execute(
                    "INSERT INTO meta VALUES ('identity.store_id', ?), ('identity.device_id', ?),"
                    " ('identity.device_no', ?)",
                    [ident.store_id, ident.device_id, str(ident.device_no)],
                )
            elif (stored["identity.store_id"], stored["identity.device_id"]) != (
                ident.store_id,
                ident.device_id,
            ):
                raise IdentityMismatch(
                    f"{self.path} belongs to {stored['identity.store_id']}/"
                    f"{stored['identity.device_id']}, not {ident.store_id}/{ident.device_id}"
                )

    def _local_secret(self) -> bytes:
        """Return this database's data key when none is provisioned (demo, tests)."""
        value = self.get_meta("secret.local_key")
        if value is None:
            value = secrets.token_urlsafe(32)
            with self.transaction():
                self.set_meta("secret.local_key", value)
        return value.encode()

    # -- transactions --------------------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self) -> Iterator[Database]:
        """Run a block atomically; nested blocks become savepoints."""
        with self._lock:
            if self._depth:
                # A savepoint named after its depth: the SQL text repeats, so the sqlite3
                # statement cache reuses it (replicated events open one or two per event).
                conn = self.db.conn
                name = f"sp{self._depth}"
                self._depth += 1
                conn.execute(f"SAVEPOINT {name}")
                try:
                    yield self.db
                except BaseException:
                    # an error such as RAISE(ROLLBACK) may have ended the whole transaction
                    if conn.in_transaction:
                        conn.execute(f"ROLLBACK TO {name}")
                        conn.execute(f"RELEASE {name}")
                    raise
                else:
                    conn.execute(f"RELEASE {name}")
                finally:
                    self._depth -= 1
                return
            self.db.conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self.db
            except BaseException:
                if self.db.conn.in_transaction:
                    self.db.conn.execute("ROLLBACK")
                raise
            else:
                self.db.conn.execute("COMMIT")
            finally:
                self._depth = 0

    @property
    def in_transaction(self) -> bool:
        return self._depth > 0

    # -- work deferred to the end of a batch of replicated events -------------------------
    _deferred: dict | None = None

    @contextlib.contextmanager
    def deferring(self) -> Iterator[None]:
        """Run the work handlers :meth:`defer` once each, in key order, when the block ends.

        For batches of replicated events, inside the batch's savepoint: a customer edited
        three times is re-indexed once, and FTS5 gets its rows in rowid order, which lets it
        write one index segment for the batch instead of one per event. When the block
        fails the deferred work is dropped with the rolled-back changes. Nested blocks join
        the outer one.
        """
        if self._deferred is not None:
            yield
            return
        self._deferred = {}
        try:
            yield
            work, self._deferred = self._deferred, None
            for key in sorted(work):
                work[key]()
        finally:
            self._deferred = None

    @property
    def is_deferring(self) -> bool:
        return self._deferred is not None

    def defer(self, key: tuple, fn: Callable[[], None]) -> bool:
        """Queue ``fn`` under ``key`` (the last one queued wins) when a deferring block is
        open; returns False when none is, and the caller does the work now."""
        if self._deferred is None:
            return False
        self._deferred[key] = fn
        return True

    # -- small key/value helpers ----------------------------------------------------------
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute(
            "INSERT INTO meta(key, value) VALUES (?, ?)"
            " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [key, value],
        )

    def next_counter(self, name: str) -> int:
        """Return the next value of a local counter (call inside a transaction)."""
        if not self.in_transaction:
            raise RuntimeError("next_counter must run inside a transaction")
        key = f"counter.{name}"
        current = int(self.get_meta(key, "0"))
        self.set_meta(key, str(current + 1))
        return current + 1
