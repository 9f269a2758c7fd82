"""Benchmark: dashboard page times on a hub with 1,000,000 customers and 5,000,000 sale lines.

    .venv/bin/python bench/dashboard.py                       # 1M customers, 5M lines
    .venv/bin/python bench/dashboard.py --customers 100000 --lines 500000

The hub database is built once and cached under bench/out/. Customers come through the
engine's write path: the 1M-customer database of bench/customer_search.py is reused (copied
and re-labelled as the hub) when it exists, else they are made with ``customers.create_many``.
Sale lines are bulk-inserted into the sales projection tables (what a hub holds after years of
sync; making them through events would only measure the event path, bench/sale.py does that).

Then the real dashboard runs under uvicorn in its own process; a logged-in client requests
each page repeatedly over HTTP on loopback and the p50/p95 per page are printed.
Goal: p95 ≤ 100 ms per page.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.cookiejar
import os
import random
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "mqtt-hub")]

from tqdm import tqdm  # noqa: E402

from kiosk.engine import customers  # noqa: E402
from kiosk.engine.store import Identity, Store  # noqa: E402
from kiosk.sample_data import generate  # noqa: E402
from tests.support.net import LOOPBACK, free_port, wait_for_port  # noqa: E402

OUT = ROOT / "bench" / "out"
HUB = Identity("bench", "hub", 99)


def _relabel(path: Path) -> None:
    con = sqlite3.connect(path)
    with con:
        con.execute("UPDATE meta SET value = 'hub' WHERE key = 'identity.device_id'")
        con.execute("UPDATE meta SET value = '99' WHERE key = 'identity.device_no'")
    con.close()


def build(n_customers: int, n_lines: int) -> Path:
    path = OUT / f"hub-{n_customers}-{n_lines}.db"
    if path.exists():
        return path
    OUT.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".building")
    for p in OUT.glob(tmp.name + "*"):
        p.unlink()
    source = OUT / f"customers-{n_customers}.db"
    t0 = time.perf_counter()
    if source.exists():
        print(f"reusing {source.name} (built by bench/customer_search.py)")
        src = sqlite3.connect(source)
        dst = sqlite3.connect(tmp)
        src.backup(dst)
        src.close()
        dst.close()
        _relabel(tmp)
        store = Store(tmp, HUB)
    else:
        store = Store(tmp, HUB)
        people = generate(n_customers, seed=7)
        with tqdm(total=n_customers, desc="customers", unit="") as bar:
            batch: list[dict] = []
            for person in people:
                batch.append({**person.fields, "card_no": person.card_no} if person.card_no else person.fields)
                if len(batch) == 5000:
                    customers.create_many(store, batch, source="import")
                    bar.update(len(batch))
                    batch = []
            if batch:
                customers.create_many(store, batch, source="import")
                bar.update(len(batch))
    print(f"customers ready in {time.perf_counter() - t0:.0f} s")
    ids = [r[0] for r in store.db.execute("SELECT id FROM customers")]
    rng = random.Random(11)
    start = dt.date.today() - dt.timedelta(days=730)
    n_sales = n_lines // 4
    t1 = time.perf_counter()
    db = store.db.conn
    db.execute("PRAGMA synchronous = OFF")  # a one-off bulk load; the bench reads afterwards
    with tqdm(total=n_lines, desc="sale lines", unit="") as bar:
        for base in range(0, n_sales, 20_000):
            sales, lines, pays = [], [], []
            for i in range(base, min(base + 20_000, n_sales)):
                sid = f"s{i:09d}"
                day = start + dt.timedelta(days=rng.randrange(730))
                at = f"{day.isoformat()}T{rng.randrange(8, 19):02d}:{rng.randrange(60):02d}:00.000+00:00"
                cid = rng.choice(ids) if rng.random() < 0.7 else None
                total = 0
                for pos in range(4):
                    gross = rng.randrange(199, 19_900)
                    disc = gross // 10 if rng.random() < 0.2 else 0
                    total += gross - disc
                    lines.append((sid, pos, "product", f"p{rng.randrange(5000)}",
                                  f"g{rng.randrange(40)}", 1, gross, disc, gross - disc, None))  # fmt: skip
                sales.append((sid, sid, f"{i:08d}", f"till-{rng.randrange(1, 4)}", "sale", "pos",
                              at, day.isoformat(), cid, cid, None, total, 0, total // 100, 0, 0))  # fmt: skip
                pays.append((sid, 0, rng.choice(("cash", "card")), total, None))
            with store.transaction():
                db.executemany(f"INSERT INTO sales VALUES ({','.join('?' * 16)})", sales)
                db.executemany(f"INSERT INTO sale_lines VALUES ({','.join('?' * 10)})", lines)
                db.executemany("INSERT INTO sale_payments VALUES (?, ?, ?, ?, ?)", pays)
            bar.update(len(lines))
    db.execute("ANALYZE")
    print(f"sale lines ready in {time.perf_counter() - t1:.0f} s")
    store.close()
    os.replace(tmp, path)
    for suffix in ("-wal", "-shm"):
        Path(str(tmp) + suffix).unlink(missing_ok=True)
    return path


class Client:
    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def get(self, path: str) -> tuple[int, bytes]:
        with self.opener.open(self.base + path, timeout=60) as r:
            return r.status, r.read()

    def post(self, path: str, fields: dict[str, str]) -> tuple[int, bytes]:
        data = urllib.parse.urlencode(fields).encode()
        with self.opener.open(self.base + path, data=data, timeout=60) as r:
            return r.status, r.read()

    def login(self, user: str, password: str) -> None:
        _, page = self.get("/login")
        csrf = re.search(rb'name="csrf" value="([^"]+)"', page).group(1).decode()
        data = urllib.parse.urlencode({"csrf": csrf, "next": "/", "username": user,
                                       "password": password}).encode()  # fmt: skip
        with self.opener.open(self.base + "/login", data=data, timeout=60) as r:
            if b"login-error" in r.read():
                raise SystemExit("login failed")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--lines", type=int, default=5_000_000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    path = build(args.customers, args.lines)
    print(f"hub database {path.name}: {path.stat().st_size / 2**20:,.0f} MiB")

    work = OUT / "dashboard-run.db"
    shutil.copyfile(path, work)  # the run adds a user and sessions; keep the cache clean
    env = {**os.environ, "STOREHUB_PASSWORD": "bench-password-1"}
    dash = [sys.executable, "-m", "storehub.dashboard", "--db", str(work)]
    subprocess.run([*dash, "--add-user", "owner", "--role", "owner"], env=env, check=True,
                   cwd=ROOT, capture_output=True)  # fmt: skip
    port = free_port()
    server = subprocess.Popen([*dash, "--host", LOOPBACK, "--port", str(port)], cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_for_port(port, timeout=60)
        client = Client(f"http://{LOOPBACK}:{port}")
        client.login("owner", "bench-password-1")
        con = sqlite3.connect(work)
        some = [r[0] for r in con.execute(
            "SELECT customer_id FROM sales WHERE customer_id IS NOT NULL LIMIT 200")]  # fmt: skip
        con.close()
        pages = {
            "overview /": lambda i: "/",
            "devices": lambda i: "/devices",
            "customers (first page)": lambda i: "/customers",
            "customers page 2,000": lambda i: "/customers?page=2000",
            "customers sorted by name": lambda i: "/customers?sort=name&page=40",
            "customers search 'mül'": lambda i: "/customers?q=m%C3%BCl",
            "customers with card + e-mail": lambda i: "/customers?card=yes&email=yes",
            "customers postcode 50": lambda i: "/customers?postcode=50",
            "customer detail": lambda i: f"/customers/{some[i % len(some)]}",
            "loyalty": lambda i: "/loyalty",
            "surveys": lambda i: "/surveys",
            "campaigns": lambda i: "/campaigns",
            "automations": lambda i: "/campaigns/automations",
            "directives": lambda i: "/directives",
            "groups": lambda i: "/groups",
            "alerts": lambda i: "/alerts",
            "questions": lambda i: "/questions",
            "traffic": lambda i: "/traffic",
            "promotions": lambda i: "/promotions",
            "gift cards": lambda i: "/giftcards",
            "e-wallets": lambda i: "/wallets",
            "customer display": lambda i: "/display",
            "settings": lambda i: "/settings",
            "users": lambda i: "/users",
            "audit": lambda i: "/audit",
        }
        _status, page = client.get("/campaigns")
        csrf = re.search(rb'name="csrf" value="([^"]+)"', page).group(1).decode()
        # Requests the pages make while the owner works (not pages): timed, not in the goal.
        requests = {
            "campaign live count (all, e-mail)": {"csrf": csrf, "channel": "email", "body": "Hallo"},
            "campaign live count (city = Köln)": {"csrf": csrf, "channel": "sms", "body": "Hallo",
                                                  "f0-field": "city", "f0-op": "=", "f0-value": "Köln"},
        }  # fmt: skip
        print(f"\n{'page':32} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
        worst = 0.0
        for name, url in pages.items():
            times = []
            try:
                client.get(url(0))  # warm the page's caches once
                for i in range(args.repeat):
                    t = time.perf_counter()
                    status, _body = client.get(url(i))
                    times.append((time.perf_counter() - t) * 1000)
            except urllib.error.HTTPError as exc:
                print(f"{name:32} HTTP {exc.code}")
                continue
            times.sort()
            p95 = times[int(0.95 * (len(times) - 1))]
            worst = max(worst, p95)
            print(f"{name:32} {statistics.median(times):8.1f} {p95:8.1f} {times[-1]:8.1f}")
        print(f"\nworst page p95: {worst:.1f} ms (goal ≤ 100 ms)")
        for name, fields in requests.items():
            times = []
            for _i in range(max(5, args.repeat // 3)):
                t = time.perf_counter()
                client.post("/campaigns/count", fields)
                times.append((time.perf_counter() - t) * 1000)
            times.sort()
            print(f"{name:32} p50 {statistics.median(times):8.1f} ms   max {times[-1]:8.1f} ms")
    finally:
        server.terminate()
        server.wait(10)
        work.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
