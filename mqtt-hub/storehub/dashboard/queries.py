"""Read-only queries behind the dashboard's lists, health page and charts.

Nothing here writes: changes go through engine commands (events). Lists page with LIMIT/OFFSET
on indexed orders, and counts stop at COUNT_CAP so a million customers stay quick.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any

import msgspec

from kiosk.engine import search
from kiosk.engine.clock import SHOP_TZ, local_date, parse_iso
from kiosk.engine.store import Store
from kiosk.i18n import _

PAGE_SIZE = 50
COUNT_CAP = 2_000  # beyond this the list says "more than"; ?count=all counts exactly
SORTS = {
    "no": "c.customer_no",
    "name": "c.last_name COLLATE NOCASE, c.first_name COLLATE NOCASE",
    "created": "c.created_at DESC",
    "postcode": "c.postcode",
}
ONLINE_STATES = ("init", "ready")  # init: connected, still catching up with the feed


@dataclass
class CustomerFilter:
    q: str = ""
    card: str = ""  # "", "yes", "no"
    email: str = ""
    phone: str = ""
    postcode: str = ""
    group: str = ""
    store: str = ""
    sort: str = "no"
    page: int = 1
    min_revenue: int | None = None  # euros
    min_visits: int | None = None
    bought_since: str = ""  # ISO date
    age_min: int | None = None
    age_max: int | None = None
    exact: bool = False  # count every match (slow on a million customers, asked for)
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_query(cls, params: Any) -> CustomerFilter:
        """Read the list's query string; a bad number or date is reported, not guessed."""
        f = cls()
        for name in ("q", "card", "email", "phone", "postcode", "group", "store", "sort"):
            setattr(f, name, str(params.get(name, "") or "").strip()[:100])
        if f.sort not in SORTS:
            f.sort = "no"
        for name in ("card", "email", "phone"):
            if getattr(f, name) not in ("", "yes", "no"):
                setattr(f, name, "")
        for name, hi in (("min_revenue", 10**7), ("min_visits", 10**5), ("age_min", 150),
                         ("age_max", 150)):  # fmt: skip
            raw = str(params.get(name, "") or "").strip()
            if raw:
                if raw.isdigit() and int(raw) <= hi:
                    setattr(f, name, int(raw))
                else:
                    f.errors[name] = _("Expected a whole number from 0 to {n}.").format(n=hi)
        f.exact = params.get("count") == "all"
        raw = str(params.get("bought_since", "") or "").strip()
        if raw:
            try:
                f.bought_since = dt.date.fromisoformat(raw).isoformat()
            except ValueError:
                f.errors["bought_since"] = _("Expected a date.")
        try:
            f.page = max(1, min(100_000, int(params.get("page", 1) or 1)))
        except ValueError:
            f.page = 1
        return f


@dataclass
class Page:
    rows: list[dict[str, Any]]
    total: int  # COUNT_CAP + 1 when capped
    page: int
    pages: int
    capped: bool = False  # counting stopped at COUNT_CAP: "more than"


def _where(store: Store, f: CustomerFilter) -> tuple[str, list[Any]] | None:
    """SQL condition for the filter (None: the text search found nobody)."""
    where = ["c.merged_into IS NULL", "c.erased_at IS NULL"]
    args: list[Any] = []
    if f.q:
        hits = search.run(store.db, f.q, limit=500)
        if not hits:
            return None
        where.append(f"c.id IN ({', '.join('?' for _ in hits)})")
        args += [h.id for h in hits]
    has_card = "EXISTS (SELECT 1 FROM customer_cards k WHERE k.customer_id = c.id)"
    if f.card:
        where.append(has_card if f.card == "yes" else f"NOT {has_card}")
    if f.email:
        where.append("c.email IS NOT NULL AND c.email != ''" if f.email == "yes"
                     else "(c.email IS NULL OR c.email = '')")  # fmt: skip
    if f.phone:
        where.append(
            "(coalesce(c.phone, '') != '' OR coalesce(c.mobile, '') != '')"
            if f.phone == "yes"
            else "(coalesce(c.phone, '') = '' AND coalesce(c.mobile, '') = '')"
        )
    if f.postcode:
        where.append("c.postcode LIKE ? ESCAPE '\\'")
        args.append(f.postcode.replace("%", r"\%").replace("_", r"\_") + "%")
    if f.group:
        where.append(
            "EXISTS (SELECT 1 FROM customer_group_members m WHERE m.customer_id = c.id"
            " AND m.group_id = ? AND m.member = 1)"
        )
        args.append(f.group)
    if f.store:
        where.append("c.home_store = ?")
        args.append(f.store)
    # Purchase history comes from the sales projection through its (customer_id, date) index.
    if f.min_revenue is not None:
        where.append("(SELECT coalesce(sum(s.total_cents), 0) FROM sales s"
                     " WHERE s.customer_id = c.id) >= ?")  # fmt: skip
        args.append(f.min_revenue * 100)
    if f.min_visits is not None:
        where.append("(SELECT count(*) FROM sales s WHERE s.customer_id = c.id"
                     " AND s.kind = 'sale') >= ?")  # fmt: skip
        args.append(f.min_visits)
    if f.bought_since:
        where.append("EXISTS (SELECT 1 FROM sales s WHERE s.customer_id = c.id"
                     " AND s.local_date >= ?)")  # fmt: skip
        args.append(f.bought_since)
    if f.age_min is not None or f.age_max is not None:
        today = local_date(store.clock())
        if f.age_min is not None:  # born on or before today minus age_min years
            where.append("c.birth_date <= ?")
            args.append(_years_before(today, f.age_min).isoformat())
        if f.age_max is not None:  # younger than age_max + 1
            where.append("c.birth_date > ?")
            args.append(_years_before(today, f.age_max + 1).isoformat())
    return " AND ".join(where), args


def _years_before(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def customer_ids(store: Store, f: CustomerFilter, limit: int) -> list[str]:
    """Every id the filter selects, in its order (for an export of the whole list)."""
    found = _where(store, f)
    if found is None:
        return []
    sql_where, args = found
    return [r[0] for r in store.db.execute(
        f"SELECT c.id FROM customers c WHERE {sql_where} ORDER BY {SORTS[f.sort]} LIMIT ?",
        [*args, limit],
    )]  # fmt: skip


def customer_page(store: Store, f: CustomerFilter) -> Page:
    found = _where(store, f)
    if found is None:
        return Page([], 0, 1, 1)
    sql_where, args = found
    # Counting reads rows in table order (sequential pages) unless a text search picked the
    # ids; it stops after COUNT_CAP, so "more than 2,000" costs the same on any size.
    hint = "" if f.q else "NOT INDEXED"
    cap = -1 if f.exact else COUNT_CAP + 1
    total = store.db.execute(
        f"SELECT count(*) FROM (SELECT 1 FROM customers c {hint} WHERE {sql_where} LIMIT ?)",
        [*args, cap],
    ).fetchone()[0]
    capped = total > COUNT_CAP and not f.exact
    pages = max(1, -(-total // PAGE_SIZE))
    page = f.page if capped else min(f.page, pages)
    rows = list(
        store.db.query(
            f"SELECT c.id, c.customer_no, c.first_name, c.last_name, c.company, c.postcode,"
            f" c.city, c.email, coalesce(c.mobile, c.phone) AS phone, c.home_store,"
            f" (SELECT group_concat(card_no, ', ') FROM customer_cards k"
            f"  WHERE k.customer_id = c.id) AS cards"
            f" FROM customers c WHERE {sql_where} ORDER BY {SORTS[f.sort]} LIMIT ? OFFSET ?",
            [*args, PAGE_SIZE, (page - 1) * PAGE_SIZE],
        )
    )
    if capped:  # the real end is unknown: offer a next page while pages are full
        pages = page + 1 if len(rows) == PAGE_SIZE else page
    return Page(rows, total, page, pages, capped)


def home_stores(store: Store) -> list[str]:
    # a loose index scan: one index seek per distinct store instead of reading every customer
    return [r[0] for r in store.db.execute(
        "WITH RECURSIVE s(x) AS (SELECT min(home_store) FROM customers UNION ALL"
        " SELECT (SELECT min(home_store) FROM customers WHERE home_store > s.x) FROM s"
        " WHERE s.x IS NOT NULL) SELECT x FROM s WHERE x IS NOT NULL LIMIT 50"
    )]  # fmt: skip


def customer_sales(store: Store, customer_id: str, limit: int = 20) -> list[dict[str, Any]]:
    return list(store.db.query(
        "SELECT receipt_no, device, kind, completed_at, total_cents, points_earned,"
        " points_redeemed FROM sales WHERE customer_id = ? ORDER BY completed_at DESC LIMIT ?",
        [customer_id, limit],
    ))  # fmt: skip


def customer_points(store: Store, customer_id: str, limit: int = 50) -> list[dict[str, Any]]:
    return list(store.db.query(
        "SELECT * FROM loyalty_points WHERE customer_id = ? ORDER BY at DESC, event_id DESC,"
        " n DESC LIMIT ?",
        [customer_id, limit],
    ))  # fmt: skip


def _table_exists(store: Store, name: str) -> bool:
    return store.db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", [name]
    ).fetchone() is not None


# -- devices ---------------------------------------------------------------------------------------
def devices(store: Store) -> list[dict[str, Any]]:
    """Every device the hub heard of or enrolled, with a derived ``online`` flag."""
    by_id: dict[str, dict[str, Any]] = {}
    if _table_exists(store, "hub_enrolled"):
        for row in store.db.query("SELECT device, mode, device_no, enrolled_at FROM hub_enrolled"):
            by_id[row["device"]] = {**row, "state": None, "seen_at": None}
    if _table_exists(store, "hub_devices"):
        for row in store.db.query("SELECT * FROM hub_devices"):
            merged = {**by_id.get(row["device"], {})}
            merged.update({k: v for k, v in row.items() if v is not None or k not in merged})
            by_id[row["device"]] = merged
    # The device's retained $state is authoritative: the broker's last will turns it into
    # "lost" when the connection drops, so an idle device that sends nothing is still online.
    out = []
    for _device, row in sorted(by_id.items()):
        row["online"] = row.get("state") in ONLINE_STATES
        out.append(row)
    return out


def hub_counters(store: Store) -> dict[str, int]:
    if not _table_exists(store, "hub_counters"):
        return {}
    return dict(store.db.execute("SELECT name, n FROM hub_counters ORDER BY name").fetchall())


def hub_rejects(store: Store, limit: int = 20) -> list[dict[str, Any]]:
    if not _table_exists(store, "hub_rejects"):
        return []
    return list(store.db.query("SELECT * FROM hub_rejects ORDER BY id DESC LIMIT ?", [limit]))


_OVERVIEW_CACHE: dict[str, tuple[float, Any]] = {}
OVERVIEW_TTL_S = 30.0


def overview(store: Store) -> dict[str, Any]:
    """Tiles of the start page; counting a million customers is cached for half a minute."""
    key = str(store.path)
    hit = _OVERVIEW_CACHE.get(key)
    now = time.monotonic()
    if hit and now - hit[0] < OVERVIEW_TTL_S:
        return hit[1]
    value = _overview(store)
    _OVERVIEW_CACHE[key] = (now, value)
    return value


def invalidate_overview(store: Store) -> None:
    _OVERVIEW_CACHE.pop(str(store.path), None)


def _overview(store: Store) -> dict[str, Any]:
    db = store.db
    today = local_date(store.clock()).isoformat()
    return {
        "customers": db.execute(
            "SELECT count(*) FROM customers WHERE merged_into IS NULL AND erased_at IS NULL"
        ).fetchone()[0],
        "sales_today": db.execute(
            "SELECT count(*), coalesce(sum(total_cents), 0) FROM sales WHERE local_date = ?",
            [today],
        ).fetchone(),
        "events": db.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0],
    }


# -- survey results and answers ------------------------------------------------------------------------
def answer_counts(store: Store, question: dict[str, Any]) -> list[tuple[str, int]]:
    """How often each option of a choice/yes-no question was answered (live customers)."""
    rows = store.db.execute(
        "SELECT a.value, count(*) FROM customer_answers a JOIN customers c ON c.id = a.customer_id"
        " WHERE a.question = ? AND a.value IS NOT NULL AND c.erased_at IS NULL"
        " AND c.merged_into IS NULL GROUP BY a.value",
        [question["key"]],
    ).fetchall()
    counts: dict[str, int] = {}
    for raw, n in rows:
        value = msgspec.json.decode(raw)
        counts[str(value)] = counts.get(str(value), 0) + n
    if question["kind"] == "choice":
        ordered = [(o, counts.pop(o, 0)) for o in question["options"]]
        return ordered + sorted(counts.items())
    return sorted(counts.items(), key=lambda kv: -kv[1])


def survey_stores(store: Store) -> list[str]:
    return [r[0] for r in store.db.execute(
        "SELECT DISTINCT store_id FROM survey_answers ORDER BY 1 LIMIT 100")]  # fmt: skip


def survey_answers_per_day(store: Store, survey_id: str, store_id: str = "",
                           days: int = 30) -> list[tuple[str, int]]:  # fmt: skip
    where, args = ("AND store_id = ?", [store_id]) if store_id else ("", [])
    today = local_date(store.clock())
    start = today - dt.timedelta(days=days - 1)
    found = dict(store.db.execute(
        f"SELECT substr(at, 1, 10) AS d, count(*) FROM survey_answers WHERE survey_id = ?"
        f" AND skipped = 0 AND at >= ? {where} GROUP BY d",
        [survey_id, start.isoformat(), *args],
    ).fetchall())  # fmt: skip
    return [((start + dt.timedelta(days=i)).strftime("%d.%m."),
             found.get((start + dt.timedelta(days=i)).isoformat(), 0)) for i in range(days)]  # fmt: skip


def per_day(store: Store, sql: str, days: int = 30) -> list[tuple[str, int]]:
    """Fill a ``local day -> count`` query into one entry per day of the last ``days``."""
    today = local_date(store.clock())
    start = today - dt.timedelta(days=days - 1)
    found = dict(store.db.execute(sql, [start.isoformat()]).fetchall())
    return [
        ((start + dt.timedelta(days=i)).strftime("%d.%m."),
         found.get((start + dt.timedelta(days=i)).isoformat(), 0))
        for i in range(days)
    ]  # fmt: skip


def sales_per_day(store: Store, days: int = 30) -> list[tuple[str, int]]:
    return per_day(
        store,
        "SELECT local_date, count(*) FROM sales WHERE local_date >= ? GROUP BY local_date",
        days,
    )


# -- campaigns and messages ------------------------------------------------------------------------------
AUTOMATION_REASONS = ("birthday", "giftcard_reminder", "signup_voucher", "credit_note", "gift_voucher")


def campaigns(store: Store) -> list[dict[str, Any]]:
    """Campaigns, newest first, with how many messages each queued and when it first went out."""
    return list(store.db.query(
        "SELECT c.id, c.name, c.channel, c.subject, c.created_at,"
        " coalesce(c.sent_at, (SELECT min(o.queued_at) FROM message_addressed a"
        "   JOIN messages_outbox o ON o.id = a.message_id WHERE a.campaign_id = c.id)) AS sent_at,"
        " (SELECT count(*) FROM message_addressed a WHERE a.campaign_id = c.id) AS recipients"
        " FROM campaigns c ORDER BY c.created_at DESC LIMIT 200"
    ))  # fmt: skip


def campaign_status(store: Store, campaign_id: str) -> dict[str, int]:
    """How the campaign's messages stand: status -> count (queued, sent, failed, bounced)."""
    return dict(store.db.execute(
        "SELECT coalesce(o.status, 'queued'), count(*) FROM message_addressed a"
        " LEFT JOIN messages_outbox o ON o.id = a.message_id WHERE a.campaign_id = ? GROUP BY 1",
        [campaign_id]).fetchall())  # fmt: skip


def message_summary(store: Store) -> list[dict[str, Any]]:
    return list(store.db.query(
        "SELECT coalesce(reason, '') AS reason, coalesce(channel, '') AS channel,"
        " coalesce(status, '') AS status, count(*) AS n, max(queued_at) AS last"
        " FROM messages_outbox GROUP BY 1, 2, 3 ORDER BY last DESC LIMIT 200"
    ))  # fmt: skip


def automation_summary(store: Store) -> dict[str, dict[str, Any]]:
    """Per automation reason: messages by status and the newest one (its last run that sent)."""
    out: dict[str, dict[str, Any]] = {
        r: {"total": 0, "queued": 0, "sent": 0, "failed": 0, "last": None} for r in AUTOMATION_REASONS
    }  # fmt: skip
    marks = ", ".join("?" for _r in AUTOMATION_REASONS)
    for reason, status, n, last in store.db.execute(
        f"SELECT reason, coalesce(status, 'queued'), count(*), max(queued_at) FROM messages_outbox"
        f" WHERE reason IN ({marks}) GROUP BY 1, 2", AUTOMATION_REASONS,
    ):  # fmt: skip
        row = out[reason]
        row["total"] += n
        key = status if status in ("queued", "sent") else "failed"
        row[key] += n
        row["last"] = max(filter(None, (row["last"], last)), default=None)
    return out


def recent_messages(store: Store, limit: int = 50) -> list[dict[str, Any]]:
    return list(store.db.query(
        "SELECT o.queued_at, o.reason, o.channel, o.recipient, o.status, o.detail, a.customer_id"
        " FROM messages_outbox o LEFT JOIN message_addressed a ON a.message_id = o.id"
        " ORDER BY o.queued_at DESC, o.id DESC LIMIT ?", [limit]))  # fmt: skip


def voucher_runs(store: Store, limit: int = 50) -> list[dict[str, Any]]:
    """Gift-voucher runs (keys ``voucher-run:<run>:<customer>``): messages per run, first and last."""
    runs: dict[str, dict[str, Any]] = {}
    for key, status, at in store.db.execute(
        "SELECT a.key, coalesce(o.status, 'queued'), o.queued_at FROM message_addressed a"
        " LEFT JOIN messages_outbox o ON o.id = a.message_id WHERE a.key LIKE 'voucher-run:%'"
    ):  # fmt: skip
        run_id = key.split(":", 1)[1].rsplit(":", 1)[0]
        row = runs.setdefault(run_id, {"run": run_id, "n": 0, "sent": 0, "first": at, "last": at})
        row["n"] += 1
        row["sent"] += status == "sent"
        if at:
            row["first"] = min(filter(None, (row["first"], at)))
            row["last"] = max(filter(None, (row["last"], at)))
    return sorted(runs.values(), key=lambda r: r["last"] or "", reverse=True)[:limit]


# -- traffic (people counter) and conversion ---------------------------------------------------------
@dataclass(frozen=True)
class TrafficHour:
    hour: int
    visits: int
    sales: int


def traffic_day(store: Store, day: dt.date) -> list[TrafficHour]:
    """Visits and sales per shop-local hour of ``day`` (hours with either)."""
    from kiosk.engine import traffic

    visits = {h.hour_start.hour: h.visits for h in traffic.hourly(store, day)}
    sales: dict[int, int] = {}
    for (at,) in store.db.execute(
        "SELECT completed_at FROM sales WHERE local_date = ? AND kind = 'sale'", [day.isoformat()]
    ):
        hour = parse_iso(at).astimezone(SHOP_TZ).hour
        sales[hour] = sales.get(hour, 0) + 1
    return [TrafficHour(h, visits.get(h, 0), sales.get(h, 0)) for h in sorted(set(visits) | set(sales))]


def visits_per_day(store: Store, days: int = 30) -> list[tuple[str, int]]:
    return per_day(
        store,
        "SELECT local_date, sum(CASE direction WHEN 'in' THEN count WHEN 'pass'"
        " THEN count / per_visit ELSE 0 END) FROM traffic_counts WHERE local_date >= ?"
        " GROUP BY local_date",
        days,
    )


# -- a customer's stored value and survey answers ------------------------------------------------------
def customer_wallets(store: Store, customer_id: str) -> list[dict[str, Any]]:
    return list(store.db.query(
        "SELECT w.number, t.name AS type, (SELECT coalesce(sum(amount_cents), 0)"
        " FROM wallet_entries e WHERE e.number = w.number) AS balance_cents"
        " FROM wallets w LEFT JOIN wallet_types t ON t.id = w.type_id"
        " WHERE w.customer_id = ? ORDER BY w.created_at", [customer_id],
    ))  # fmt: skip


def customer_giftcards(store: Store, customer_id: str) -> list[dict[str, Any]]:
    return list(store.db.query(
        "SELECT g.code, g.kind, g.valid_until, (SELECT coalesce(sum(amount_cents), 0)"
        " FROM giftcard_entries e WHERE e.code = g.code) AS balance_cents"
        " FROM giftcards g WHERE g.customer_id = ? ORDER BY g.issued_at DESC", [customer_id],
    ))  # fmt: skip


def customer_survey_answers(store: Store, customer_id: str, limit: int = 20) -> list[dict[str, Any]]:
    """The customer's survey answers with the question texts of each survey."""
    out = []
    for row in store.db.query(
        "SELECT a.at, a.answers, s.title, s.questions FROM survey_answers a"
        " LEFT JOIN surveys s ON s.id = a.survey_id WHERE a.customer_id = ? AND a.skipped = 0"
        " ORDER BY a.at DESC LIMIT ?", [customer_id, limit],
    ):  # fmt: skip
        texts = {q["id"]: q["text"] for q in msgspec.json.decode(row["questions"] or "[]")}
        answers = msgspec.json.decode(row["answers"])
        out.append({"at": row["at"], "title": row["title"] or "",
                    "answers": [(texts.get(k, k), ", ".join(v) if isinstance(v, list) else v)
                                for k, v in answers.items()]})  # fmt: skip
    return out


# -- promotions, gift cards / vouchers, wallets -------------------------------------------------------
STORED_VALUE_STATES = ("", "open", "empty", "expired")


def _paged(store: Store, select: str, count_sql: str, args: list[Any], page: int) -> Page:
    """One page of a plain list; lists of stored value are small enough to count exactly.

    ``select`` has a ``{page}`` placeholder for the keys of the page: balances are summed
    for those 50 rows only, not for every row the offset skips.
    """
    total = store.db.execute(count_sql, args).fetchone()[0]
    pages = max(1, -(-total // PAGE_SIZE))
    page = max(1, min(page, pages))
    rows = list(store.db.query(select.format(page="LIMIT ? OFFSET ?"),
                               [*args, PAGE_SIZE, (page - 1) * PAGE_SIZE]))  # fmt: skip
    return Page(rows, total, page, pages)


def promotions(store: Store) -> list[dict[str, Any]]:
    """Every promotion rule, current ones first, with whether it applies today."""
    today = local_date(store.clock()).isoformat()
    rows = []
    for row in store.db.query(
        "SELECT id, name, kind, coalesce(bp, 0) AS bp, coalesce(n, 0) AS n,"
        " coalesce(price_cents, 0) AS price_cents, product_ids, group_ids, starts, ends,"
        " coalesce(active, 1) AS active FROM promotions ORDER BY name COLLATE NOCASE, id"
    ):
        row["product_ids"] = msgspec.json.decode(row["product_ids"] or "[]")
        row["group_ids"] = msgspec.json.decode(row["group_ids"] or "[]")
        row["current"] = bool(row["active"]) and (row["starts"] or "") <= today and (
            row["ends"] is None or today <= row["ends"])
        rows.append(row)
    return rows


def giftcard_page(store: Store, kind: str = "", state: str = "", q: str = "",
                  page: int = 1) -> Page:  # fmt: skip
    """Gift cards and vouchers with their balance (sum of the ledger) and expiry."""
    today = local_date(store.clock()).isoformat()
    balance = "(SELECT coalesce(sum(e.amount_cents), 0) FROM giftcard_entries e WHERE e.code = g.code)"
    where, args = ["1"], []
    if kind:
        where.append("g.kind = ?")
        args.append(kind)
    if q:
        where.append("g.code LIKE ? ESCAPE '\\'")
        args.append(q.replace("%", r"\%").replace("_", r"\_") + "%")
    if state == "expired":
        where.append("g.valid_until < ?")
        args.append(today)
    elif state == "open":
        where.append(f"coalesce(g.valid_until, '9999') >= ? AND {balance} > 0")
        args.append(today)
    elif state == "empty":
        where.append(f"{balance} <= 0")
    cond = " AND ".join(where)
    order = "g.issued_at DESC, g.code DESC"
    page_ = _paged(
        store,
        f"SELECT g.code, g.kind, g.valid_until, g.issued_at, g.customer_id, {balance} AS balance_cents,"
        f" (SELECT coalesce(sum(e.amount_cents), 0) FROM giftcard_entries e WHERE e.code = g.code"
        f"  AND e.kind = 'issue') AS issued_cents, c.customer_no, c.first_name, c.last_name"
        f" FROM (SELECT g.code FROM giftcards g WHERE {cond} ORDER BY {order} {{page}}) p"
        f" JOIN giftcards g ON g.code = p.code LEFT JOIN customers c ON c.id = g.customer_id"
        f" ORDER BY {order}",
        f"SELECT count(*) FROM giftcards g WHERE {cond}", args, page,
    )  # fmt: skip
    for row in page_.rows:
        row["expired"] = bool(row["valid_until"]) and row["valid_until"] < today
    return page_


def giftcard_totals(store: Store) -> dict[str, Any]:
    """Outstanding stored value per kind (what the shop still owes its customers)."""
    today = local_date(store.clock()).isoformat()
    out = {}
    for kind, n, open_cents in store.db.execute(
        "SELECT g.kind, count(*), coalesce(sum(CASE WHEN coalesce(g.valid_until, '9999') >= ?"
        " THEN (SELECT sum(e.amount_cents) FROM giftcard_entries e WHERE e.code = g.code)"
        " ELSE 0 END), 0) FROM giftcards g GROUP BY g.kind", [today],
    ):  # fmt: skip
        out[kind] = {"count": n, "open_cents": open_cents}
    return out


def wallet_page(store: Store, q: str = "", page: int = 1) -> Page:
    balance = "(SELECT coalesce(sum(e.amount_cents), 0) FROM wallet_entries e WHERE e.number = w.number)"
    where, args = "1", []
    if q:
        where, args = "w.number LIKE ? ESCAPE '\\'", [q.replace("%", r"\%").replace("_", r"\_") + "%"]
    order = "w.created_at DESC, w.number DESC"
    return _paged(
        store,
        f"SELECT w.number, w.created_at, w.customer_id, t.name AS type, t.family,"
        f" {balance} AS balance_cents, c.customer_no, c.first_name, c.last_name"
        f" FROM (SELECT w.number FROM wallets w WHERE {where} ORDER BY {order} {{page}}) p"
        f" JOIN wallets w ON w.number = p.number LEFT JOIN wallet_types t ON t.id = w.type_id"
        f" LEFT JOIN customers c ON c.id = w.customer_id ORDER BY {order}",
        f"SELECT count(*) FROM wallets w WHERE {where}", args, page,
    )  # fmt: skip


def wallet_types(store: Store) -> list[dict[str, Any]]:
    return list(store.db.query(
        "SELECT id, name, family, load_cents, pay_cents, coalesce(active, 1) AS active"
        " FROM wallet_types ORDER BY name COLLATE NOCASE"))  # fmt: skip


def vip_cards(store: Store, limit: int = 200) -> list[dict[str, Any]]:
    cols = [r[1] for r in store.db.execute("PRAGMA table_info(vip_cards)")]
    if not cols:
        return []
    order = "valid_until DESC" if "valid_until" in cols else "rowid DESC"
    return list(store.db.query(
        f"SELECT v.*, c.customer_no, c.first_name, c.last_name FROM vip_cards v"
        f" LEFT JOIN customers c ON c.id = v.customer_id ORDER BY v.{order} LIMIT ?", [limit]))
