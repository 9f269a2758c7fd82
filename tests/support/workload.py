"""Random store work for sync tests and the chaos run: one call makes one operation.

A workload is a function ``(store, rng) -> str`` that runs one engine command (one
transaction) and returns what it did. The chaos test takes ``module:function``, so sales
with loyalty, gift cards and e-wallet plug in here as soon as the engine has them.
"""

from __future__ import annotations

import random

from kiosk.engine import customers, groups, settings
from kiosk.engine.store import Store

FIRST = ("Anna", "Jörg", "Öztürk", "Marie", "Lukas", "Zoë", "Hans-Peter", "Ana")
LAST = ("Müller", "Schmidt", "Weiß", "Meyer", "Nguyen", "Kowalski", "Becker", "Groß")
CITIES = ("Köln", "Bonn", "Düsseldorf", "Aachen")


def _some_customer(store: Store, rng: random.Random) -> str | None:
    n = store.db.execute(
        "SELECT count(*) FROM customers WHERE erased_at IS NULL AND merged_into IS NULL"
        " AND customer_no IS NOT NULL"
    ).fetchone()[0]
    if not n:
        return None
    row = store.db.execute(
        "SELECT id FROM customers WHERE erased_at IS NULL AND merged_into IS NULL"
        " AND customer_no IS NOT NULL ORDER BY id LIMIT 1 OFFSET ?",
        [rng.randrange(n)],
    ).fetchone()
    return row[0]


def _group(store: Store, rng: random.Random) -> str:
    rows = store.db.execute("SELECT id FROM customer_groups ORDER BY id").fetchall()
    if rows and rng.random() < 0.9:
        return rng.choice(rows)[0]
    return groups.save(store, f"Gruppe {store.identity.device_id} {rng.randrange(10**6)}",
                       discount=str(rng.randrange(0, 30)))  # fmt: skip


def customer_ops(store: Store, rng: random.Random) -> str:
    """Customers, cards, groups and settings: every merge rule except ledgers."""
    roll = rng.random()
    cid = _some_customer(store, rng)
    try:
        if cid is None or roll < 0.30:
            customers.create(
                store,
                {"first_name": rng.choice(FIRST), "last_name": rng.choice(LAST),
                 "city": rng.choice(CITIES), "email_consent": rng.random() < 0.5},
                force=True,
            )  # fmt: skip
            return "customer.create"
        if roll < 0.62:
            customers.update(
                store, cid,
                {rng.choice(("city", "last_name", "first_name")): rng.choice(CITIES + LAST),
                 "notes": f"note {rng.randrange(1000)}"},
                force=True,
            )  # fmt: skip
            return "customer.update"
        if roll < 0.72:
            customers.assign_card(store, cid, f"C{store.identity.device_no:02d}{rng.randrange(10**8):08d}")
            return "card.assign"
        if roll < 0.84:
            gid = _group(store, rng)
            (groups.assign if rng.random() < 0.7 else groups.remove)(store, cid, gid)
            return "group.member"
        if roll < 0.92:
            settings.set(store, "shop.phone", f"0221 {rng.randrange(10**6)}")
            return "setting"
        if roll < 0.96:
            other = _some_customer(store, rng)
            if other and other != cid:
                customers.merge(store, cid, other)
                return "customer.merge"
            return "noop"
        customers.erase(store, cid)
        return "customer.erase"
    except (customers.NotFound, customers.ValidationError, groups.GroupError):
        # the record changed under us (erased or merged by another device's event): fine
        return "skipped"



# -- sales with loyalty, gift cards and e-wallets ------------------------------------------------
def _setup_sales(store: Store) -> dict:
    """Products and a wallet type of this device (made once, found again after a restart)."""
    from kiosk.engine import catalog, wallet

    key = f"workload.{store.identity.device_id}"
    found = store.get_meta(key)
    if found:
        pid, tid = found.split(",")
        return {"products": pid.split(";"), "wallet_type": tid}
    with store.transaction():
        gid = catalog.save_group(store, f"Waren {store.identity.device_id}", family="Mode")
        pids = [catalog.save_product(store, f"Artikel {store.identity.device_id} {i}",
                                     500 + 700 * i, group_id=gid) for i in range(5)]  # fmt: skip
        tid = wallet.save_type(store, f"Wallet {store.identity.device_id}")
        store.set_meta(key, ";".join(pids) + "," + tid)
    return {"products": pids, "wallet_type": tid}


def _pick(store: Store, rng: random.Random, sql: str) -> str | None:
    rows = store.db.execute(sql).fetchall()
    return rng.choice(rows)[0] if rows else None


def sales(store: Store, rng: random.Random) -> str:
    """One completed sale (sometimes a customer op): loyalty points for attached customers,
    gift cards sold and redeemed, e-wallets loaded and spent. Offline, the per-card limits
    apply; a refused redemption falls back to card payment."""
    from kiosk.engine import sale, stored_value

    if rng.random() < 0.15:
        return customer_ops(store, rng)
    setup = _setup_sales(store)
    draft = sale.open_draft(store)
    kind = "sale"
    try:
        roll = rng.random()
        if rng.random() < 0.6:
            cid = _some_customer(store, rng)
            if cid:
                sale.attach_customer(store, draft, cid)
                kind += "+loyalty"
        if roll < 0.15:
            sale.sell_giftcard(store, draft, rng.choice((1000, 2000, 2500)))
            kind = "giftcard.sell"
        elif roll < 0.25 and sale.quote(store, draft).customer:
            sale.load_wallet(store, draft, setup["wallet_type"], amount_cents=rng.choice((1000, 3000)))
            kind = "wallet.load"
        else:
            for _ in range(rng.randint(1, 3)):
                sale.add_product(store, draft, rng.choice(setup["products"]), rng.randint(1, 2))
            if roll < 0.45:
                code = _pick(store, rng, "SELECT code FROM giftcard_entries GROUP BY code"
                             " HAVING sum(amount_cents) > 0")  # fmt: skip
                if code:
                    try:
                        sale.add_payment(store, draft, "giftcard", ref=code, forfeit_rest=True)
                        kind = "giftcard.redeem"
                    except (sale.SaleError, stored_value.RedemptionRefused):
                        pass
            elif roll < 0.6:
                number = _pick(store, rng, "SELECT number FROM wallet_entries GROUP BY number"
                               " HAVING sum(amount_cents) >= 500")  # fmt: skip
                if number:
                    try:
                        sale.add_payment(store, draft, "wallet", 500, ref=number)
                        kind = "wallet.pay"
                    except (sale.SaleError, stored_value.RedemptionRefused):
                        pass
        due = sale.quote(store, draft).due_cents
        if due > 0:
            sale.add_payment(store, draft, "card", due)
        sale.complete(store, draft)
        return kind
    except (sale.SaleError, stored_value.RedemptionRefused, customers.NotFound):
        sale.cancel(store, draft)
        return "skipped"


WORKLOADS = {"customer_ops": customer_ops, "sales": sales}


def sales_done(store: Store) -> int:
    return store.db.execute(
        "SELECT count(*) FROM events WHERE type = 'sale.completed' AND device = ?",
        [store.identity.device_id],
    ).fetchone()[0]


def _device_main(argv: list[str] | None = None) -> None:
    """A device process for chaos tests: sync client + workload until ``--sales`` own sales
    (counted from its database, so a restarted process carries on), then keep syncing."""
    import argparse
    import logging
    import signal
    import threading
    import time

    from kiosk.config import load
    from kiosk.sync import SyncClient

    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["device"])
    ap.add_argument("--config", required=True)
    ap.add_argument("--db", required=True)
    ap.add_argument("--workload", default="sales", choices=sorted(WORKLOADS))
    ap.add_argument("--ops", type=int, default=0, help="stop after this many operations")
    ap.add_argument("--sales", type=int, default=0, help="stop after this many own sales")
    ap.add_argument("--pace", type=float, default=0.0, help="seconds between operations")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--idle", action="store_true", help="only sync, make nothing")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    cfg = load(args.config)
    store = Store(args.db, cfg.identity, secret_key=cfg.secret_key())
    client = SyncClient(store, cfg.hub, mode=cfg.mode, ack_timeout=3.0).start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_a: done.set())
    rng = random.Random(args.seed)
    work = WORKLOADS[args.workload]
    n = 0
    while not done.is_set():
        if (args.idle or args.ops and n >= args.ops
                or args.sales and sales_done(store) >= args.sales):
            done.wait(0.2)
            continue
        work(store, rng)
        client.wake()
        n += 1
        if args.pace:
            time.sleep(args.pace)
    client.stop()
    store.close()


if __name__ == "__main__":
    _device_main()


def offline_events(store: Store, n: int, seed: int = 0, per_txn: int = 200) -> int:
    """Make about ``n`` customer events quickly (benchmarks): creates and edits, grouped
    in transactions of ``per_txn`` commands. Returns the number of events written."""
    rng = random.Random(seed)
    before = store.db.execute("SELECT count(*) FROM events").fetchone()[0]
    made = 0
    while made < n:
        with store.transaction():
            for _ in range(min(per_txn, n - made)):
                customer_ops(store, rng)
                made += 1
    return store.db.execute("SELECT count(*) FROM events").fetchone()[0] - before
