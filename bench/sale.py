"""Benchmark: complete durable till sales (SQLite file, WAL, ``synchronous=FULL``).

    .venv/bin/python bench/sale.py                # 1000 sales after 50 warm-up sales
    .venv/bin/python bench/sale.py --sales 300 --dir /tmp

Every sale is what the issue asks for: a 10-line basket (10 EAN scans of different
articles), a customer attached by scanning the loyalty card (card type with % bonus,
birth-month, return-visit and direct points), points earned, 5 € paid from the customer's
e-wallet and the rest by card. The sales rotate over ``--customers`` regulars, so each
ledger grows as in a shop. Four figures are printed:

* ``complete``  – ``sale.complete()`` on the rung-up basket: the one transaction that writes
  the sale, its payments, loyalty, wallet and event rows and commits them with an fsync.
  This is the "complete durable sale"; goal ≥ 500 sales/s and p95 ≤ 5 ms.
* ``ring-up``   – the 13 commands before it (scans, payments), each its own committed
  transaction, as the till screen issues them;
* ``whole sale`` – both, i.e. the cashier's view from the first scan to the receipt.

For context, ``fsync floor`` is one tiny committed write on the same file system: no sale
can be durable faster than that; ``no-fsync`` repeats ``complete`` with ``synchronous=OFF``
to show the engine's own (CPU) share. Wallet top-ups (outside the timed sales) keep the
wallets funded.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kiosk.engine import (
    catalog,
    customers,
    loyalty,
    sale,
    settings,
    stored_value,
    wallet,
)
from kiosk.engine.store import Identity, Store


def ean(n: int) -> str:
    body = f"400{n:09d}"
    return body + catalog.ean_check_digit(body)


def setup(store: Store, n_customers: int) -> list[dict]:
    settings.set(store, "loyalty.enabled", True)
    stored_value.set_connectivity(store, True)
    groups = [
        catalog.save_group(store, "Damenhosen", gender="damen", family="Hose"),
        catalog.save_group(store, "Herrenhemden", gender="herren", family="Hemd"),
        catalog.save_group(store, "Änderungen", kind="service"),
    ]
    for i in range(40):
        catalog.save_product(store, f"Artikel {i}", 995 + 250 * i, group_id=groups[i % 3],
                             eans=[ean(i)])  # fmt: skip
    tid = loyalty.save_card_type(store, {
        "description": "Treuekarte", "new_customer_points": 100, "birth_month_points": 20,
        "damen": {"bonus_sales_bp": 500, "bonus_service_bp": 1000, "return_weeks": 4,
                  "return_points": 50, "direct_points": 5, "redeem_min": 500},
        "herren": {"bonus_sales_bp": 300},
    })  # fmt: skip
    wtype = wallet.save_type(store, "KMU")
    people = []
    for i in range(n_customers):
        c = customers.create(store, {"first_name": f"Anna{i}", "last_name": "Muster",
                                     "gender": "fm"[i % 2], "birth_date": "1985-03-12"},
                             force=True)  # fmt: skip
        ctx = {"customer": c["id"], "card": loyalty.issue_card(store, c["id"], tid),
               "wtype": wtype, "wallet": None}  # fmt: skip
        top_up(store, ctx)
        people.append(ctx)
    return people


def top_up(store: Store, ctx: dict) -> None:
    """Load the customer's wallet back to the cap in a sale of its own (not timed)."""
    have = wallet.balance(store, ctx["wallet"]) if ctx["wallet"] else 0
    d = sale.open_draft(store)
    sale.attach_customer(store, d, ctx["customer"])
    sale.load_wallet(store, d, ctx["wtype"], amount_cents=15000 - have, number=ctx["wallet"])
    sale.add_payment(store, d, "cash", 15000 - have)
    done = sale.complete(store, d, online=True)
    ctx["wallet"] = done.payload["wallet"][0]["number"]


def ring_up(store: Store, ctx: dict, k: int) -> str:
    d = sale.open_draft(store)
    for i in range(10):
        sale.scan(store, d, ean((k * 7 + i) % 40))
    sale.scan(store, d, ctx["card"])
    sale.add_payment(store, d, "wallet", 500, ref=ctx["wallet"])
    q = sale.quote(store, d, online=True)
    sale.add_payment(store, d, "card", q.due_cents)
    return d


def pct(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1]


def fsync_floor(path: Path, n: int = 200) -> list[float]:
    s = Store(path, Identity("bench", "floor"))
    out = []
    for i in range(n):
        t = time.perf_counter()
        with s.transaction():
            s.set_meta("floor", str(i))
        out.append(time.perf_counter() - t)
    s.close()
    return out


def line(name: str, values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    rate = len(values) / sum(values)
    return (f"{name:<12} {rate:8.0f} sales/s   p50 {pct(ms, 50):6.2f} ms   "
            f"p95 {pct(ms, 95):6.2f} ms   p99 {pct(ms, 99):6.2f} ms   max {max(ms):6.2f} ms")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sales", type=int, default=1000)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--customers", type=int, default=100,
                    help="regulars the sales rotate over (1: one customer's ever-growing ledger)")
    ap.add_argument("--dir", default=None, help="directory for the database (default: bench/out)")
    args = ap.parse_args()
    base = Path(args.dir) if args.dir else Path(__file__).resolve().parent / "out"
    base.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=base) as tmp:
        path = Path(tmp) / "sale.db"
        store = Store(path, Identity("bench", "till-1", 1))
        store.start_checkpointer()  # as the app does: no checkpoint inside a sale's commit
        sync = store.db.execute("PRAGMA synchronous").fetchone()[0]
        journal = store.db.execute("PRAGMA journal_mode").fetchone()[0]
        people = setup(store, args.customers)
        ringup, complete, cpu_full = [], [], []
        lines = points = 0
        for k in range(args.warmup + args.sales):
            ctx = people[k % len(people)]
            if wallet.balance(store, ctx["wallet"]) < 500:
                top_up(store, ctx)
            t0 = time.perf_counter()
            d = ring_up(store, ctx, k)
            t1, c1 = time.perf_counter(), time.thread_time()
            done = sale.complete(store, d, online=True)
            t2, c2 = time.perf_counter(), time.thread_time()
            if k >= args.warmup:
                ringup.append(t1 - t0)
                complete.append(t2 - t1)
                cpu_full.append(c2 - c1)
                lines += len(done.payload["lines"])
                points += sum(e["points"] for e in done.payload["points"])
        # the engine's own cost: the same sales without waiting for the disk
        store.db.execute("PRAGMA synchronous=OFF")
        cpu = []
        for k in range(min(args.sales, 300)):
            ctx = people[k % len(people)]
            if wallet.balance(store, ctx["wallet"]) < 500:
                top_up(store, ctx)
            d = ring_up(store, ctx, k)
            t1 = time.perf_counter()
            sale.complete(store, d, online=True)
            cpu.append(time.perf_counter() - t1)
        store.db.execute("PRAGMA synchronous=FULL")
        floor = fsync_floor(Path(tmp) / "floor.db")
        n_sales = store.db.execute("SELECT count(*) FROM sales").fetchone()[0]
        store.close()
    print(f"bench/sale.py: {args.sales} sales (+{args.warmup} warm-up), {lines / args.sales:.0f}"
          f" lines each, {args.customers} customers with card, wallet + card payment;"
          f" journal={journal},"
          f" synchronous={'FULL' if sync == 2 else sync}; {n_sales} sales in the file")  # fmt: skip
    print(line("complete", complete))
    print(line("ring-up", ringup))
    print(line("whole sale", [a + b for a, b in zip(ringup, complete)]))
    print(line("fsync floor", floor).replace("sales/s", "commit/s"))
    print(line("no-fsync", cpu) + "   (complete with synchronous=OFF: engine CPU only)")
    print(f"complete: CPU time of this thread p50 {pct(cpu_full, 50) * 1000:.2f} ms,"
          f" p95 {pct(cpu_full, 95) * 1000:.2f} ms (the rest is waiting for the disk or a core);"
          f" load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"points earned per sale: {points / args.sales:.1f}")
    ok = len(complete) / sum(complete) >= 500 and pct([c * 1000 for c in complete], 95) <= 5
    print(f"goal (complete: >= 500 sales/s, p95 <= 5 ms): {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
