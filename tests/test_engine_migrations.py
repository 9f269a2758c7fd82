"""Upgrading a till database written by an earlier release: the slimmer sale-commit layout
(clustered sale tables, one ledger index per account, the outbox read through
events_unsequenced) keeps every row and every query answer."""

from __future__ import annotations

import re

from kiosk.engine import customers, events, loyalty, sale, wallet
from kiosk.engine.store import Store, cluster_by_key
from tests.support.shop import card_type, make_shop, new_wallet, projection

# the first layout, as release 1 created it
_OLD_INDEXES = (
    "CREATE INDEX loyalty_points_customer ON loyalty_points(customer_id, at)",
    "CREATE INDEX loyalty_points_orig ON loyalty_points(orig_customer_id)",
    "CREATE INDEX loyalty_points_sum ON loyalty_points(customer_id, kind, points)",
    "CREATE INDEX wallet_entries_number ON wallet_entries(number, at)",
    "CREATE INDEX wallet_entries_sum ON wallet_entries(number, amount_cents)",
    "CREATE INDEX events_outbox ON events(device, acked) WHERE acked = 0",
)
_NEW = {"kiosk.sale": "m002_clustered_sales", "kiosk.loyalty": "m003_one_customer_index",
        "kiosk.wallet": "m003_one_number_index",
        "kiosk.replication": "m002_outbox_in_unsequenced"}  # fmt: skip
_CLUSTERED = ("sales", "sale_lines", "sale_payments", "sale_draft_lines", "sale_draft_payments")


def _unclustered(db, table: str) -> None:
    sql = db.execute("SELECT sql FROM sqlite_master WHERE name = ?", [table]).fetchone()[0]
    extras = [r[0] for r in db.execute(
        "SELECT sql FROM sqlite_master WHERE tbl_name = ? AND type = 'index' AND sql IS NOT NULL",
        [table])]  # fmt: skip
    db.execute(f"ALTER TABLE {table} RENAME TO {table}_v2")
    db.execute(re.sub(r"\s*WITHOUT ROWID\s*$", "", sql))
    db.execute(f"INSERT INTO {table} SELECT * FROM {table}_v2")
    db.execute(f"DROP TABLE {table}_v2")
    for stmt in extras:
        db.execute(stmt)


def _downgrade(store: Store) -> None:
    db = store.db
    with store.transaction():
        for table in _CLUSTERED:
            _unclustered(db, table)
        db.execute("DROP INDEX loyalty_points_customer")
        db.execute("DROP INDEX wallet_entries_number")
        for stmt in _OLD_INDEXES:
            db.execute(stmt)
        for mset, name in _NEW.items():
            db.execute("DELETE FROM _sqlite_migrations WHERE migration_set = ? AND name = ?",
                       [mset, name])  # fmt: skip


def _layout(db) -> dict[str, str]:
    return dict(db.execute(
        "SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%'"
    ).fetchall())  # fmt: skip


def test_an_old_till_database_is_upgraded_without_losing_a_row(file_store, identity):
    """GIVEN a till file of the first layout with completed sales, points, a wallet, an
    unsent outbox and an open basket WHEN the store opens THEN it has the new layout and
    the same rows, balances, outbox and basket, and a merge still moves the ledgers."""
    s = file_store
    shop = make_shop(s)
    anna, bert = shop.customer(), shop.customer()
    loyalty.issue_card(s, anna["id"], card_type(s))
    number = new_wallet(shop, anna["id"], 5000)
    for _ in range(3):
        d = shop.draft("Jeans", "Hemd", customer=anna["id"])
        sale.add_payment(s, d, "wallet", 1000, ref=number)
        sale.add_payment(s, d, "card", sale.quote(s, d, online=True).due_cents)
        sale.complete(s, d, online=True)
    open_basket = shop.draft("Bluse", customer=bert["id"])
    sale.add_payment(s, open_basket, "card", 100)
    new_layout = _layout(s.db)
    _downgrade(s)
    assert _layout(s.db) != new_layout
    before = projection(s)
    points, money = loyalty.balance(s, anna["id"]), wallet.balance(s, number)
    annas_sales = s.db.execute("SELECT count(*) FROM sales WHERE customer_id = ?",
                               [anna["id"]]).fetchone()[0]  # fmt: skip
    assert annas_sales == 4  # the wallet load and three sales
    outbox = [e.id for e in events.outbox(s)]
    assert outbox  # nothing was sent: the whole history waits for the hub
    path = s.path
    s.close()

    s = Store(path, identity)
    try:
        assert _layout(s.db) == new_layout
        assert projection(s) == before
        assert (loyalty.balance(s, anna["id"]), wallet.balance(s, number)) == (points, money)
        assert [e.id for e in events.outbox(s)] == outbox
        assert events.outbox_size(s) == len(outbox)
        q = sale.quote(s, open_basket, online=True)
        assert [ln.name for ln in q.lines] == ["Bluse"] and q.customer["id"] == bert["id"]
        plan = " ".join(r[-1] for r in s.db.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM events WHERE seq IS NULL AND device = ?"
            " AND acked = 0 ORDER BY id", [identity.device_id]))  # fmt: skip
        assert "events_unsequenced" in plan
        customers.merge(s, bert["id"], anna["id"])  # bert survives and takes anna's ledgers
        assert loyalty.balance(s, bert["id"]) == points
        assert loyalty.balance(s, anna["id"]) == points  # the loser's id resolves to bert
        assert s.db.execute("SELECT count(*) FROM sales WHERE customer_id = ?",
                            [bert["id"]]).fetchone()[0] == annas_sales  # fmt: skip
        assert s.db.execute("SELECT count(*) FROM loyalty_points WHERE customer_id = ?",
                            [anna["id"]]).fetchone()[0] == 0  # fmt: skip
    finally:
        s.close()


def test_clustering_keeps_rows_indexes_and_triggers_and_is_idempotent(store):
    db = store.db
    with store.transaction():
        db.execute("CREATE TABLE t (k TEXT PRIMARY KEY, n INTEGER, note TEXT)")
        db.execute("CREATE INDEX t_n ON t(n) WHERE n IS NOT NULL")
        db.execute("CREATE TABLE log (k TEXT)")
        db.execute("CREATE TRIGGER t_log AFTER INSERT ON t BEGIN INSERT INTO log VALUES (new.k); END")
        db.conn.executemany("INSERT INTO t VALUES (?, ?, ?)",
                            [(f"k{i:03d}", i if i % 2 else None, "ä" * i) for i in range(200)])  # fmt: skip
        rows = db.execute("SELECT * FROM t ORDER BY k").fetchall()
        cluster_by_key(db, "t")
        cluster_by_key(db, "t")  # a second run changes nothing
    sql = db.execute("SELECT sql FROM sqlite_master WHERE name = 't'").fetchone()[0]
    assert sql.rstrip().upper().endswith("WITHOUT ROWID")
    assert db.execute("SELECT * FROM t ORDER BY k").fetchall() == rows
    names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE tbl_name = 't'")}
    assert {"t_n", "t_log"} <= names
    with store.transaction():
        db.execute("INSERT INTO t VALUES ('new', 1, '')")
    assert db.execute("SELECT count(*) FROM log").fetchone()[0] == 201
    plan = " ".join(r[-1] for r in db.execute("EXPLAIN QUERY PLAN SELECT k FROM t WHERE n = 7"))
    assert "t_n" in plan
