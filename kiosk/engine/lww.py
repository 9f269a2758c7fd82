"""Last-writer-wins registers per field, ordered by hybrid logical clock.

Rows of LWW tables carry a ``_clock`` JSON object ``{field: hlc}``. A field only changes when
the incoming event's HLC is newer than the one that last wrote it, so replicas that apply the
same events in any order end with the same row.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import msgspec
from sqlite_utils import Database

# sorted keys: the same clock must serialise the same on every replica
_encode = msgspec.json.Encoder(order="sorted").encode
_decode = msgspec.json.Decoder().decode


@lru_cache(maxsize=512)
def _select_sql(table: str, key: tuple[str, ...], frozen_if: str | None) -> str:
    where = " AND ".join(f"[{k}] = ?" for k in key)
    cols = "_clock" + (f", [{frozen_if}]" if frozen_if else "")
    return f"SELECT {cols} FROM [{table}] WHERE {where}"


@lru_cache(maxsize=1024)
def _insert_sql(table: str, columns: tuple[str, ...]) -> str:
    names = ", ".join(f"[{c}]" for c in columns)
    marks = ", ".join("?" for _ in columns)
    return f"INSERT INTO [{table}] ({names}) VALUES ({marks})"


@lru_cache(maxsize=1024)
def _update_sql(table: str, columns: tuple[str, ...], key: tuple[str, ...]) -> str:
    sets = ", ".join(f"[{c}] = ?" for c in columns)
    where = " AND ".join(f"[{k}] = ?" for k in key)
    return f"UPDATE [{table}] SET {sets}, _clock = ? WHERE {where}"


def upsert(
    db: Database,
    table: str,
    key: dict[str, Any],
    fields: dict[str, Any],
    hlc: str,
    *,
    frozen_if: str | None = None,
) -> dict[str, Any]:
    """Merge ``fields`` written at ``hlc`` into the row identified by ``key``.

    ``frozen_if`` names a tombstone column; when it is set on the row, nothing changes.
    Returns the fields that actually changed.
    """
    if not fields:
        return {}
    # Runs for every replicated event: SQL text is cached per shape and goes straight to the
    # connection (callers are always inside a transaction).
    conn = db.conn
    key_names = tuple(key)
    row = conn.execute(_select_sql(table, key_names, frozen_if), list(key.values())).fetchone()
    if row is None:
        values = {**key, **fields, "_clock": _encode({f: hlc for f in fields}).decode()}
        conn.execute(_insert_sql(table, tuple(values)), list(values.values()))
        return dict(fields)
    if frozen_if and row[1] is not None:
        return {}
    clock: dict[str, str] = _decode(row[0]) if row[0] else {}
    changed = {f: v for f, v in fields.items() if hlc > clock.get(f, "")}
    if not changed:
        return {}
    clock.update({f: hlc for f in changed})
    conn.execute(
        _update_sql(table, tuple(changed), key_names),
        [*changed.values(), _encode(clock).decode(), *key.values()],
    )
    return changed
