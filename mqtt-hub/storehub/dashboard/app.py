"""The owner's web dashboard: a FastAPI app with server-rendered Jinja2 pages.

It works on the hub's Store (a connection per worker thread) and changes data only through
engine commands, so every edit is an event that the hub service sequences and ships to the
devices. It never talks MQTT itself.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hmac
import io
import secrets
import threading
import tomllib
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jinja2
import msgspec
from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.middleware.sessions import SessionMiddleware

from kiosk import i18n
from kiosk.engine import alerts, customer_export, customers, directives, groups, loyalty, questions
from kiosk.engine import settings, surveys
from kiosk.engine.clock import SHOP_TZ, iso, local_date, parse_iso
from kiosk.engine.store import Identity, Store
from kiosk.i18n import N_, _
from storehub import db as hubdb
from storehub import webform
from storehub.dashboard import campaigns, charts, extras, gdpr_pdf, queries, users
from storehub.dashboard.forms import FormError, parse_settings, setting_rows

HERE = Path(__file__).parent
SESSION_MAX_AGE = 8 * 3600

# Menu: (path, label msgid, role needed)
MENU = (  # labels are msgids, translated when the page is drawn
    ("/", N_("Overview"), "cashier"),
    ("/devices", N_("Devices"), "cashier"),
    ("/customers", N_("Customers"), "manager"),
    ("/loyalty", N_("Loyalty"), "owner"),
    ("/groups", N_("Groups"), "manager"),
    ("/alerts", N_("Alerts"), "manager"),
    ("/questions", N_("Questions"), "manager"),
    ("/surveys", N_("Surveys"), "manager"),
    ("/traffic", N_("Traffic"), "manager"),
    ("/campaigns", N_("Campaigns"), "manager"),
    ("/promotions", N_("Promotions"), "manager"),
    ("/giftcards", N_("Gift cards"), "manager"),
    ("/wallets", N_("Wallets"), "manager"),
    ("/directives", N_("Directives"), "manager"),
    ("/display", N_("Customer display"), "manager"),
    ("/settings", N_("Settings"), "owner"),
    ("/users", N_("Users"), "owner"),
    ("/audit", N_("Audit log"), "owner"),
)
LOYALTY_PREFIX = "loyalty."
EXPORT_MAX = 200_000
# Pages carry no script and no third-party resource: the policy says so.
CSP = "default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# The per-side rules of a card type, with their types (form parsing) and labels.
SIDE_FIELDS = [(f.name, f.type) for f in msgspec.structs.fields(loyalty.SideRules)]
SIDE_LABELS = {
    "bonus_service_bp": N_("Bonus on services (basis points)"),
    "bonus_sales_bp": N_("Bonus on goods (basis points)"),
    "return_weeks": N_("Second visit within weeks"),
    "return_points": N_("… earns points"),
    "redeem_factor": N_("Redemption factor"),
    "redeem_type": N_("Redemption type (1 amount, 2 points, 3 direct %, 4 discount on points)"),
    "redeem_min": N_("Points needed to redeem"),
    "redeem_max": N_("Most points per redemption (0 = no limit)"),
    "redeem_discount_service_bp": N_("Type 4: fewer points for services (basis points)"),
    "redeem_discount_sales_bp": N_("Type 4: fewer points for goods (basis points)"),
    "direct_service_bp": N_("Type 3: direct discount on services (basis points)"),
    "direct_sales_bp": N_("Type 3: direct discount on goods (basis points)"),
    "direct_points": N_("Fixed points per visit"),
    "visit_promo": N_("Show the promotion hint"),
    "visit_promo_text": N_("Promotion hint text"),
}
NUDGE_SETTINGS = ["till.nudge_no_customer", "till.nudge_text"]


class LoginRequired(Exception):
    pass


class Forbidden(Exception):
    pass


class CsrfFailed(Exception):
    pass


def open_hub(path: str | Path, store_id: str | None = None, *,
             secret_key: bytes | None = None) -> Store:  # fmt: skip
    """Open the hub's database (identity ``<store>/hub``) for the dashboard.

    Identity comes from the file when the hub service created it; ``secret_key`` must be the
    store's data key the hub uses (ID-card numbers are encrypted with it).
    """
    import sqlite3

    meta: dict[str, str] = {}
    if Path(path).exists():
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            meta = dict(con.execute("SELECT key, value FROM meta WHERE key LIKE 'identity.%'"))
        except sqlite3.Error:
            pass
        finally:
            con.close()
    store_id = store_id or meta.get("identity.store_id")
    if not store_id:
        raise SystemExit(f"{path} is not a hub database yet; pass --store-id")
    device_no = int(meta.get("identity.device_no", 99))
    # Same database identity as the hub service, but its own clock node: two processes writing
    # as "hub" could otherwise stamp two events with the very same HLC (an LWW tie).
    import sqlite3 as _sqlite3

    from kiosk.engine.hlc import HybridClock

    last = None
    if Path(path).exists():
        con = _sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            last = con.execute("SELECT max(hlc) FROM events").fetchone()[0]
        except _sqlite3.Error:
            pass
        finally:
            con.close()
    clock = HybridClock("hub-dashboard")
    if last:
        clock.observe(last)
    return Store(path, Identity(store_id, "hub", device_no), secret_key=secret_key, hlc=clock)


class StorePool:
    """One connection per worker thread (SQLite connections are not shared across threads)."""

    def __init__(self, base: Store) -> None:
        self.base = base
        self._local = threading.local()
        self._all: list[Store] = []
        self._lock = threading.Lock()

    def get(self) -> Store:
        st = getattr(self._local, "store", None)
        if st is None:
            st = self.base.clone()
            self._local.store = st
            with self._lock:
                self._all.append(st)
        return st

    def close(self) -> None:
        with self._lock:
            stores, self._all = self._all, []
        for st in stores:
            st.close()


def command(st: Store, user: dict, action: str, target: str, fn: Callable[[], Any],
            detail: str = "") -> Any:  # fmt: skip
    """Run an engine command and its audit row in one transaction.

    The hub service writes with the same device id from another connection (maybe another
    process): observing the newest stored clock first keeps our HLC ahead of its events.
    """
    with st.transaction():
        last = st.db.execute("SELECT max(hlc) FROM events").fetchone()[0]
        if last:
            st.hlc.observe(last)
        result = fn()
        users.audit(st, user["name"], action, target, detail)
    queries.invalidate_overview(st)
    return result


# -- template helpers --------------------------------------------------------------------------------
def _fmt_dt(value: str | None) -> str:
    if not value:
        return ""
    try:
        return parse_iso(value).astimezone(SHOP_TZ).strftime("%d.%m.%Y %H:%M")
    except (ValueError, TypeError):
        return str(value)


def _fmt_date(value: str | None) -> str:
    if not value:
        return ""
    try:
        return dt.date.fromisoformat(str(value)[:10]).strftime("%d.%m.%Y")
    except ValueError:
        return str(value)


def _money(cents: int | None) -> str:
    if cents is None:
        return ""
    sign = "-" if cents < 0 else ""
    euros, rest = divmod(abs(int(cents)), 100)
    return f"{sign}{euros:,}".replace(",", ".") + f",{rest:02d} €"


def _percent(bp: int | None) -> str:
    bp = int(bp or 0)
    return f"{bp // 100},{bp % 100:02d} %".replace(",00 %", " %")


def make_templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        extensions=["jinja2.ext.i18n"],
    )
    env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=lambda s: i18n._(s), ngettext=lambda s, p, n: i18n.ngettext(s, p, n), newstyle=False
    )
    env.filters.update(dt=_fmt_dt, date=_fmt_date, money=_money, percent=_percent)
    return Jinja2Templates(env=env)


# -- the app -------------------------------------------------------------------------------------------
def create_app(
    store: Store | str | Path,
    *,
    secret_key: str | None = None,
    https_only: bool = False,
    broker_dir: str | Path | None = None,
    broker_host: str = "127.0.0.1",
    broker_port: int = 1883,
    broker_tls: bool = False,
    close_store: bool = False,
) -> FastAPI:
    """The dashboard on the hub's Store; ``broker_dir`` enables enrolling devices."""
    base = open_hub(store) if isinstance(store, (str, Path)) else store
    hubdb.migrations.apply(base.db)
    users.install(base)
    if secret_key is None:  # kept in the hub's local meta so sessions survive a restart
        secret_key = base.get_meta("dashboard.secret")
        if secret_key is None:
            secret_key = secrets.token_urlsafe(32)
            with base.transaction():
                base.set_meta("dashboard.secret", secret_key)
    pool = StorePool(base)
    templates = make_templates()

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        # The last connection to close checkpoints and removes the WAL file. uvicorn re-raises
        # SIGTERM after this, so code after uvicorn.run() would never run.
        pool.close()
        if close_store or isinstance(store, (str, Path)):
            base.close()

    app = FastAPI(title="Store hub dashboard", docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=lifespan)
    app.add_middleware(
        SessionMiddleware, secret_key=secret_key, session_cookie="storehub_session",
        max_age=SESSION_MAX_AGE, same_site="strict", https_only=https_only,
    )  # fmt: skip
    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        if request.url.path != "/static" and not request.url.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"  # personal data stays off disk caches
        return response

    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.state.pool = pool

    # -- plumbing -------------------------------------------------------------------------------
    def csrf_token(request: Request) -> str:
        token = request.session.get("csrf")
        if not token:
            token = request.session["csrf"] = secrets.token_urlsafe(24)
        return token

    def flash(request: Request, message: str, kind: str = "ok") -> None:
        request.session.setdefault("flash", []).append([kind, message])
        request.session["flash"] = request.session["flash"]

    def render(request: Request, name: str, ctx: dict[str, Any] | None = None,
               status: int = 200) -> HTMLResponse:  # fmt: skip
        user = current_user(request)
        rank = users.RANK.get(user["role"], 0) if user else 0
        menu = [(p, label) for p, label, role in MENU if rank >= users.RANK[role]]
        context = {
            "user": user, "menu": menu, "path": request.url.path, "csrf": csrf_token(request),
            "flashes": request.session.pop("flash", []), "errors": {}, "form": {},
        }  # fmt: skip
        context.update(ctx or {})
        return templates.TemplateResponse(request, name, context, status_code=status)

    def current_user(request: Request) -> dict | None:
        """The session's user, looked up on every request (revoked sessions end at once)."""
        try:
            return request.state.user
        except AttributeError:
            request.state.user = users.session_user(pool.get(), request.session.get("sid"))
            return request.state.user

    def need(role: str) -> Callable:
        def dep(request: Request) -> dict:
            user = current_user(request)
            if not user:
                raise LoginRequired()
            if users.RANK.get(user.get("role"), 0) < users.RANK[role]:
                raise Forbidden()
            return user

        return dep

    async def form_data(request: Request) -> dict[str, Any]:
        """The posted form, after checking its CSRF token against the session's."""
        form = await request.form()
        sent = str(form.get("csrf", ""))
        token = request.session.get("csrf", "")
        if not token or not hmac.compare_digest(sent.encode(), token.encode()):
            await form.close()  # an uploaded file's temp file goes with the refused form
            raise CsrfFailed()
        return {k: (form.getlist(k) if len(form.getlist(k)) > 1 else form.get(k)) for k in form}

    @app.exception_handler(LoginRequired)
    async def _login_required(request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> Response:
        return render(request, "message.html",
                      {"title": _("Access denied"),
                       "message": _("Your role does not allow this page.")}, 403)  # fmt: skip

    @app.exception_handler(CsrfFailed)
    async def _csrf(request: Request, exc: CsrfFailed) -> Response:
        return render(request, "message.html",
                      {"title": _("Form expired"),
                       "message": _("The form was too old or not sent from this dashboard. "
                                    "Please reload the page and try again.")}, 403)  # fmt: skip

    @app.exception_handler(customers.NotFound)
    async def _not_found(request: Request, exc: Exception) -> Response:
        return render(request, "message.html",
                      {"title": _("Not found"), "message": _("This record does not exist.")},
                      404)  # fmt: skip

    @app.exception_handler(loyalty.LoyaltyError)
    @app.exception_handler(surveys.SurveyError)
    @app.exception_handler(directives.DirectiveError)
    async def _domain_error(request: Request, exc: Exception) -> Response:
        # e.g. a link to a card type that no longer exists
        return render(request, "message.html", {"title": _("Not possible"), "message": str(exc)},
                      400)  # fmt: skip

    Manager, Owner, Anyone = Depends(need("manager")), Depends(need("owner")), Depends(need("cashier"))
    Form = Depends(form_data)

    def back(url: str) -> RedirectResponse:
        return RedirectResponse(url, status_code=303)

    # -- login -----------------------------------------------------------------------------------
    @app.get("/login", response_class=HTMLResponse)
    def login_page(request: Request, next: str = "/"):
        return render(request, "login.html", {"next": next})

    @app.post("/login", response_class=HTMLResponse)
    def login(request: Request, form: dict = Form):
        st = pool.get()
        name = str(form.get("username", "")).strip().lower()[:40]
        client = request.client.host if request.client else "?"
        nxt = str(form.get("next") or "/")
        if not nxt.startswith("/") or nxt.startswith(("//", "/\\")) or "\n" in nxt:
            nxt = "/"  # only paths on this site: no open redirect
        if users.throttled(st, name, client):
            users.audit(st, name, "login.throttled", client)
            return render(request, "login.html", {"next": nxt, "error": _(
                "Too many failed attempts. Please wait 15 minutes.")}, 429)  # fmt: skip
        user = users.authenticate(st, name, str(form.get("password", "")), client)
        if user is None:
            users.audit(st, name, "login.failed", client)
            return render(request, "login.html",
                          {"next": nxt, "error": _("Wrong user name or password.")}, 401)  # fmt: skip
        request.session.clear()  # no session fixation: a fresh session and CSRF token
        request.session["sid"] = users.open_session(st, user["name"])
        users.audit(st, name, "login", client)
        return back(nxt)

    @app.post("/logout")
    def logout(request: Request, form: dict = Form):
        users.close_session(pool.get(), request.session.get("sid"))
        request.session.clear()
        return back("/login")

    # -- overview and devices ---------------------------------------------------------------------
    @app.get("/", response_class=HTMLResponse)
    def home(request: Request, user: dict = Anyone):
        st = pool.get()
        devs = queries.devices(st)
        return render(request, "index.html", {
            "stats": queries.overview(st), "devices": devs,
            "online": sum(1 for d in devs if d["online"]),
            "sales_chart": charts.columns(queries.sales_per_day(st), title=_("Sales per day")),
        })  # fmt: skip

    @app.get("/devices", response_class=HTMLResponse)
    def devices_page(request: Request, user: dict = Anyone):
        st = pool.get()
        return render(request, "devices.html", devices_context(st))

    def devices_context(st: Store) -> dict[str, Any]:
        return {
            "devices": queries.devices(st), "counters": queries.hub_counters(st),
            "rejects": queries.hub_rejects(st), "can_enrol": broker_dir is not None,
            "modes": ("till", "clipad", "survey", "display"),
        }  # fmt: skip

    @app.post("/devices/enrol", response_class=HTMLResponse)
    def device_enrol(request: Request, user: dict = Owner, form: dict = Form):
        from storehub import enrol

        st = pool.get()
        if broker_dir is None:
            raise Forbidden()
        device = str(form.get("device") or "").strip().lower()
        try:
            res = enrol.enrol(Path(broker_dir), st.identity.store_id, device,
                              mode=str(form.get("mode") or "till"), host=broker_host,
                              port=broker_port, tls=broker_tls)  # fmt: skip
        except enrol.EnrolError as exc:
            ctx = devices_context(st)
            ctx.update(errors={"device": str(exc)}, form=form)
            return render(request, "devices.html", ctx, 400)
        device_no = tomllib.loads(res.toml_path.read_text())["device"]["device_no"]
        with st.transaction():
            st.db.execute(
                "INSERT INTO hub_enrolled VALUES (?, ?, ?, ?) ON CONFLICT(device) DO UPDATE"
                " SET mode = excluded.mode, device_no = excluded.device_no,"
                " enrolled_at = excluded.enrolled_at",
                [res.device, str(form.get("mode") or "till"), device_no, iso(st.clock())],
            )
            users.audit(st, user["name"], "device.enrol", res.device, str(res.toml_path))
        flash(request, _("Device {d} enrolled. Copy {path} and its password file to the device, "
                         "then reload the broker.").format(d=res.device, path=res.toml_path))
        return back("/devices")

    # -- customers --------------------------------------------------------------------------------
    @app.get("/customers", response_class=HTMLResponse)
    def customer_list(request: Request, user: dict = Manager):
        st = pool.get()
        f = queries.CustomerFilter.from_query(request.query_params)
        page = queries.customer_page(st, f)
        params = {k: v for k, v in request.query_params.items() if k != "page"}
        return render(request, "customers.html", {
            "f": f, "page": page, "params": params, "cap": queries.COUNT_CAP,
            "groups": groups.all_groups(st), "stores": queries.home_stores(st),
        })  # fmt: skip

    @app.get("/customers/export.xlsx")
    def customer_list_export(request: Request, user: dict = Manager):
        """The filtered list as an Excel workbook (formula-safe cells, see customer_export)."""
        st = pool.get()
        f = queries.CustomerFilter.from_query(request.query_params)
        ids = queries.customer_ids(st, f, EXPORT_MAX)
        buf = io.BytesIO()
        n = customer_export.export(st, buf, ids=ids)
        users.audit(st, user["name"], "customers.export", f"{n} customers",
                    str(dict(request.query_params))[:500])  # fmt: skip
        return Response(buf.getvalue(), media_type=XLSX, headers={
            "Content-Disposition": f'attachment; filename="kunden-{local_date(st.clock())}.xlsx"'})

    def customer_context(st: Store, customer_id: str) -> dict[str, Any]:
        record = customers.get(st, customer_id)
        cid = record["id"]
        return {
            "c": record, "name": customers.display_name(record), "fields": customers.FIELDS,
            "questions": questions.all_questions(st),
            "member_of": groups.of_customer(st, cid), "groups": groups.all_groups(st),
            "balance": loyalty.balance(st, cid), "points": queries.customer_points(st, cid),
            "sales": queries.customer_sales(st, cid),
            "wallets": queries.customer_wallets(st, cid),
            "giftcards": queries.customer_giftcards(st, cid),
            "survey_answers": queries.customer_survey_answers(st, cid),
            "duplicates": customers.possible_duplicates(st, record, exclude_id=cid),
            "alerts": alerts.alerts_for(st, record),
        }  # fmt: skip

    @app.get("/customers/{customer_id}", response_class=HTMLResponse)
    def customer_page(request: Request, customer_id: str, user: dict = Manager):
        st = pool.get()
        record = customers.get(st, customer_id)
        if record["id"] != customer_id:
            return back(f"/customers/{record['id']}")
        return render(request, "customer.html", customer_context(st, customer_id))

    @app.post("/customers/{customer_id}", response_class=HTMLResponse)
    def customer_edit(request: Request, customer_id: str, user: dict = Manager, form: dict = Form):
        st = pool.get()
        current = customers.get(st, customer_id)
        data: dict[str, Any] = {}
        for fld in customers.FIELDS:
            if fld.kind == "id_card":
                value = str(form.get(fld.name) or "").strip()
                if value:  # blank keeps the stored (encrypted) number
                    data[fld.name] = value
            elif fld.kind == "bool":
                data[fld.name] = form.get(fld.name) == "1"
            elif fld.name in form:
                data[fld.name] = str(form.get(fld.name) or "")
        answers = {}
        for q in questions.all_questions(st):
            raw = form.get(f"answers.{q['key']}")
            if q["kind"] == "bool":
                answers[q["key"]] = {"1": True, "0": False}.get(str(raw), None)
            elif raw is not None:
                answers[q["key"]] = str(raw)
        if answers:
            data["answers"] = answers
        force = form.get("force") == "1"
        errors: dict[str, str] = {}
        dups: list = []
        try:
            command(st, user, "customer.update", current["customer_no"],
                    lambda: customers.update(st, customer_id, data, source="dashboard",
                                             force=force))  # fmt: skip
        except customers.ValidationError as exc:
            errors = exc.errors
        except customers.PossibleDuplicates as exc:
            dups = exc.candidates
            errors = {"force": _("Similar customers exist. Check them, then save anyway.")}
        if errors:
            ctx = customer_context(st, customer_id)
            ctx.update(errors=errors, form=form, edit_duplicates=dups)
            return render(request, "customer.html", ctx, 400)
        flash(request, _("Saved."))
        return back(f"/customers/{customer_id}")

    @app.post("/customers/{customer_id}/groups")
    def customer_groups(request: Request, customer_id: str, user: dict = Manager,
                        form: dict = Form):  # fmt: skip
        st = pool.get()
        wanted = form.get("group") or []
        wanted = set([wanted] if isinstance(wanted, str) else wanted)
        have = set(groups.of_customer(st, customer_id))

        def apply() -> None:
            for gid in wanted - have:
                groups.assign(st, customer_id, gid)
            for gid in have - wanted:
                groups.remove(st, customer_id, gid)

        try:
            command(st, user, "customer.groups", customer_id, apply, ", ".join(sorted(wanted)))
        except groups.GroupError as exc:
            flash(request, str(exc), "error")
        else:
            flash(request, _("Saved."))
        return back(f"/customers/{customer_id}")

    @app.post("/customers/{customer_id}/erase")
    def customer_erase(request: Request, customer_id: str, user: dict = Owner, form: dict = Form):
        st = pool.get()
        record = customers.get(st, customer_id)
        if form.get("confirm") != "1":
            flash(request, _("Tick the box to confirm the erasure."), "error")
            return back(f"/customers/{customer_id}")
        command(st, user, "customer.erase", record["customer_no"],
                lambda: customers.erase(st, record["id"], "gdpr (dashboard)"))  # fmt: skip
        flash(request, _("Customer {no} was erased on every device.").format(
            no=record["customer_no"]))  # fmt: skip
        return back("/customers")

    @app.post("/customers/{customer_id}/merge")
    def customer_merge(request: Request, customer_id: str, user: dict = Owner, form: dict = Form):
        st = pool.get()
        other_ref = str(form.get("other") or "").strip()
        try:
            other = (customers.get(st, other_ref) if len(other_ref) == 36
                     else customers.by_number(st, other_ref))  # fmt: skip
        except customers.NotFound:
            flash(request, _("No customer with number {no}.").format(no=other_ref), "error")
            return back(f"/customers/{customer_id}")
        try:
            command(st, user, "customer.merge", customer_id,
                    lambda: customers.merge(st, customer_id, other["id"]),
                    f"merged {other['customer_no']}")  # fmt: skip
        except customers.ValidationError as exc:
            flash(request, "; ".join(exc.errors.values()), "error")
        else:
            flash(request, _("Customer {no} was merged into this one.").format(
                no=other["customer_no"]))  # fmt: skip
        return back(f"/customers/{customer_id}")

    def export_data(st: Store, customer_id: str, user: dict, kind: str) -> dict[str, Any]:
        record = customers.get(st, customer_id)
        record.pop("id_card_enc", None)
        cid = record["id"]
        users.audit(st, user["name"], f"customer.export.{kind}", record["customer_no"])
        return {
            "exported_at": st.clock().isoformat(), "customer": record,
            "groups": [g["name"] for g in groups.groups_of(st, cid)],
            "points_balance": loyalty.balance(st, cid),
            "points": queries.customer_points(st, cid, limit=100_000),
            "sales": queries.customer_sales(st, cid, limit=100_000),
            "wallets": queries.customer_wallets(st, cid),
            "giftcards": queries.customer_giftcards(st, cid),
            "survey_answers": queries.customer_survey_answers(st, cid, limit=100_000),
        }  # fmt: skip

    @app.get("/customers/{customer_id}/export.json")
    def customer_export_json(request: Request, customer_id: str, user: dict = Manager):
        data = export_data(pool.get(), customer_id, user, "json")
        no = data["customer"]["customer_no"]
        return Response(
            msgspec.json.format(msgspec.json.encode(data), indent=2),
            media_type="application/json",
            headers={"Content-Disposition": f'attachment; filename="kunde-{no}.json"'},
        )

    @app.get("/customers/{customer_id}/export.pdf")
    def customer_export_pdf(request: Request, customer_id: str, user: dict = Manager):
        st = pool.get()
        data = export_data(st, customer_id, user, "pdf")
        no = data["customer"]["customer_no"]
        return Response(
            gdpr_pdf.render(data, settings.get(st, "shop.name")), media_type="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="kunde-{no}.pdf"'},
        )

    # -- loyalty ------------------------------------------------------------------------------------
    def loyalty_keys() -> list[str]:
        return [k for k in sorted(settings.definitions()) if k.startswith(LOYALTY_PREFIX)]

    def loyalty_context(st: Store) -> dict[str, Any]:
        types = loyalty.card_types(st)
        return {
            "settings": setting_rows(st, loyalty_keys()),
            "card_types": [(t, loyalty.card_stats(st, t.id)) for t in types],
            "levels": loyalty.levels(st),
        }

    @app.get("/loyalty", response_class=HTMLResponse)
    def loyalty_page(request: Request, user: dict = Owner):
        return render(request, "loyalty.html", loyalty_context(pool.get()))

    def save_settings(request: Request, user: dict, form: dict, keys: list[str],
                      page: str, redirect: str, ctx: Callable[[Store], dict]) -> Response:  # fmt: skip
        st = pool.get()
        try:
            values = parse_settings(form, keys)
        except FormError as exc:
            c = ctx(st)
            c.update(errors=exc.errors, form=form)
            return render(request, page, c, 400)

        def apply() -> None:
            for key, value in values.items():
                settings.set(st, key, value)

        changed = [k for k, v in values.items() if settings.get(st, k) != v]
        command(st, user, "settings", ", ".join(changed), apply)
        flash(request, _("Saved.") if changed else _("Nothing changed."))
        return back(redirect)

    @app.post("/loyalty/settings", response_class=HTMLResponse)
    def loyalty_settings(request: Request, user: dict = Owner, form: dict = Form):
        return save_settings(request, user, form, loyalty_keys(), "loyalty.html", "/loyalty",
                             loyalty_context)  # fmt: skip

    CARD_TYPE_INTS = ("validity_months", "conversion_factor", "new_customer_points",
                      "birth_month_points")  # fmt: skip

    @app.get("/loyalty/card-types/{type_id}", response_class=HTMLResponse)
    def card_type_page(request: Request, type_id: str, user: dict = Owner):
        st = pool.get()
        ct = loyalty.CardType() if type_id == "new" else loyalty.card_type(st, type_id)
        return render(request, "card_type.html", {"ct": msgspec.to_builtins(ct), "type_id": type_id,
                                                  "side_fields": SIDE_LABELS})  # fmt: skip

    @app.post("/loyalty/card-types/{type_id}", response_class=HTMLResponse)
    def card_type_save(request: Request, type_id: str, user: dict = Owner, form: dict = Form):
        st = pool.get()
        base_ct = loyalty.CardType() if type_id == "new" else loyalty.card_type(st, type_id)
        data = msgspec.to_builtins(base_ct)
        errors: dict[str, str] = {}
        for name in ("number", "description", "rounding", "birthday_rule"):
            data[name] = str(form.get(name) or "").strip()
        for name in CARD_TYPE_INTS:
            try:
                data[name] = int(str(form.get(name) or "").strip())
            except ValueError:
                errors[name] = _("Expected a whole number.")
        for name in ("active", "points_on_discounted", "forfeit_on_block"):
            data[name] = form.get(name) == "1"
        for side in loyalty.SIDES:  # TiM keeps these twice: for "Damen" and for "Herren"
            for name, kind in SIDE_FIELDS:
                raw = form.get(f"{side}.{name}")
                if kind is bool:
                    data[side][name] = raw == "1"
                elif kind is int:
                    try:
                        data[side][name] = int(str(raw or "0").strip())
                    except ValueError:
                        errors[f"{side}.{name}"] = _("Expected a whole number.")
                else:
                    data[side][name] = str(raw or "").strip()
        data.pop("id", None)
        tid = None if type_id == "new" else type_id
        if not errors:
            try:
                tid = command(st, user, "loyalty.card_type", data["description"],
                              lambda: loyalty.save_card_type(st, data, tid))  # fmt: skip
            except loyalty.LoyaltyError as exc:
                errors = exc.errors
        if errors:
            return render(request, "card_type.html", {"ct": data, "type_id": type_id,
                          "errors": errors, "side_fields": SIDE_LABELS}, 400)  # fmt: skip
        flash(request, _("Saved."))
        return back("/loyalty")

    @app.post("/loyalty/card-types/{type_id}/bulk")
    def card_type_bulk(request: Request, type_id: str, user: dict = Owner, form: dict = Form):
        st = pool.get()
        actions = {"deactivate": loyalty.deactivate_all, "reactivate": loyalty.reactivate_all,
                   "extend": loyalty.extend_expired}  # fmt: skip
        fn = actions.get(str(form.get("action")))
        if fn is None:
            flash(request, _("Unknown action."), "error")
            return back("/loyalty")
        n = command(st, user, f"loyalty.bulk.{form.get('action')}", type_id, lambda: fn(st, type_id))
        flash(request, _("{n} cards changed.").format(n=n))
        return back("/loyalty")

    @app.post("/loyalty/levels", response_class=HTMLResponse)
    def level_save(request: Request, user: dict = Owner, form: dict = Form):
        st = pool.get()
        errors: dict[str, str] = {}
        try:
            points = int(str(form.get("points") or "").strip())
        except ValueError:
            points, errors = 0, {"points": _("Expected a whole number.")}
        level_id = str(form.get("level_id") or "") or None
        if not errors:
            try:
                command(st, user, "loyalty.level", str(form.get("name")),
                        lambda: loyalty.save_level(st, str(form.get("name") or ""), points,
                                                   active=form.get("active", "1") == "1",
                                                   level_id=level_id))  # fmt: skip
            except loyalty.LoyaltyError as exc:
                errors = exc.errors
        if errors:
            ctx = loyalty_context(st)
            ctx.update(errors={f"level.{k}": v for k, v in errors.items()}, form=form)
            return render(request, "loyalty.html", ctx, 400)
        flash(request, _("Saved."))
        return back("/loyalty")

    # -- groups, alerts, questions -----------------------------------------------------------------
    @app.get("/groups", response_class=HTMLResponse)
    def groups_page(request: Request, user: dict = Manager):
        return render(request, "groups.html", {"groups": groups.all_groups(pool.get(), active_only=False)})

    @app.post("/groups", response_class=HTMLResponse)
    def groups_save(request: Request, user: dict = Manager, form: dict = Form):
        st = pool.get()
        try:
            command(st, user, "group.save", str(form.get("name")), lambda: groups.save(
                st, str(form.get("name") or ""), description=str(form.get("description") or ""),
                discount=str(form.get("discount") or "0"),
                applies_to_specials=form.get("applies_to_specials") == "1",
                active=form.get("active") == "1", group_id=str(form.get("id") or "") or None))
        except groups.GroupError as exc:
            return render(request, "groups.html", {
                "groups": groups.all_groups(st, active_only=False), "errors": {"group": str(exc)},
                "form": form}, 400)  # fmt: skip
        flash(request, _("Saved."))
        return back("/groups")

    @app.get("/alerts", response_class=HTMLResponse)
    def alerts_page(request: Request, user: dict = Manager):
        return render(request, "alerts.html", {
            "rules": alerts.rules(pool.get(), active_only=False), "variables": alerts.variables()})

    @app.post("/alerts", response_class=HTMLResponse)
    def alerts_save(request: Request, user: dict = Manager, form: dict = Form):
        st = pool.get()
        position = str(form.get("position") or "").strip()
        try:
            if position and not position.isdigit():
                raise alerts.ConditionError(_("The position is a whole number."))
            command(st, user, "alert.save", str(form.get("message")), lambda: alerts.save_rule(
                st, str(form.get("condition") or ""), str(form.get("message") or ""),
                position=int(position) if position else None, active=form.get("active") == "1",
                rule_id=str(form.get("id") or "") or None))
        except alerts.ConditionError as exc:
            return render(request, "alerts.html", {
                "rules": alerts.rules(st, active_only=False), "variables": alerts.variables(),
                "errors": {"rule": str(exc)}, "form": form}, 400)  # fmt: skip
        flash(request, _("Saved."))
        return back("/alerts")

    @app.get("/questions", response_class=HTMLResponse)
    def questions_page(request: Request, user: dict = Manager):
        return render(request, "questions.html", {
            "questions": questions.all_questions(pool.get(), active_only=False),
            "kinds": questions.KINDS})  # fmt: skip

    @app.post("/questions", response_class=HTMLResponse)
    def questions_save(request: Request, user: dict = Manager, form: dict = Form):
        st = pool.get()
        options = [o for o in str(form.get("options") or "").replace("\n", ",").split(",")]
        try:
            command(st, user, "question.save", str(form.get("key")), lambda: questions.define(
                st, str(form.get("key") or "").strip(), str(form.get("label") or "").strip(),
                str(form.get("kind") or "text"), options,
                mandatory=form.get("mandatory") == "1", active=form.get("active") == "1",
                question_id=str(form.get("id") or "") or None))
        except questions.AnswerError as exc:
            return render(request, "questions.html", {
                "questions": questions.all_questions(st, active_only=False),
                "kinds": questions.KINDS, "errors": exc.errors, "form": form}, 400)  # fmt: skip
        flash(request, _("Saved."))
        return back("/questions")

    # -- surveys, campaigns, directives --------------------------------------------------------------
    def surveys_context(st: Store, store_filter: str) -> dict[str, Any]:
        blocks = []
        for sv in surveys.all_surveys(st):
            res = surveys.results(st, sv.id, store_id=store_filter or None)
            qcharts = [(q.text, charts.bars(list(res["counts"][q.id].items()), title=q.text))
                       for q in sv.questions if q.id in res["counts"] and q.kind != "text"]  # fmt: skip
            texts = [(q.text, res["texts"][q.id][-20:]) for q in sv.questions if q.id in res["texts"]]
            over_time = charts.columns(queries.survey_answers_per_day(st, sv.id, store_filter),
                                       title=_("Responses per day"))  # fmt: skip
            blocks.append({"survey": sv, "answered": res["answered"], "skipped": res["skipped"],
                           "charts": qcharts, "texts": texts, "over_time": over_time})  # fmt: skip
        question_charts = [
            (q["label"], charts.bars(queries.answer_counts(st, q), title=q["label"]))
            for q in questions.all_questions(st) if q["kind"] in ("choice", "bool")
        ]  # fmt: skip
        return {
            "surveys": blocks, "question_charts": question_charts, "store_filter": store_filter,
            "stores": queries.survey_stores(st), "kinds": surveys.KINDS,
        }  # fmt: skip

    @app.get("/surveys", response_class=HTMLResponse)
    def surveys_page(request: Request, user: dict = Manager, store: str = ""):
        return render(request, "surveys.html", surveys_context(pool.get(), store[:64]))

    @app.post("/surveys", response_class=HTMLResponse)
    def surveys_save(request: Request, user: dict = Manager, form: dict = Form):
        """Build a survey: one question per line, ``Question? | answer; answer; answer``."""
        st = pool.get()
        qs = []
        for line in str(form.get("questions") or "").splitlines():
            if not line.strip():
                continue
            text, _sep, opts = line.partition("|")
            options = [o.strip() for o in opts.split(";") if o.strip()]
            kind = "choice" if options else "text"
            if opts.strip().lower() in ("1-5", "scale"):
                kind, options = "scale", []
            qs.append({"text": text.strip(), "kind": kind, "options": options})
        stores = [s.strip() for s in str(form.get("stores") or "").split(",") if s.strip()]
        try:
            command(st, user, "survey.save", str(form.get("title")), lambda: surveys.save(
                st, str(form.get("title") or ""), qs, stores=stores))
        except surveys.SurveyError as exc:
            ctx = surveys_context(st, "")
            ctx.update(errors={"survey": str(exc)}, form=form)
            return render(request, "surveys.html", ctx, 400)
        flash(request, _("Saved."))
        return back("/surveys")

    @app.get("/traffic", response_class=HTMLResponse)
    def traffic_page(request: Request, user: dict = Manager, day: str = ""):
        st = pool.get()
        try:
            chosen = dt.date.fromisoformat(day) if day else local_date(st.clock())
        except ValueError:
            chosen = local_date(st.clock())
        hours = queries.traffic_day(st, chosen)
        visits, sales = sum(h.visits for h in hours), sum(h.sales for h in hours)
        return render(request, "traffic.html", {
            "day": chosen, "hours": hours, "visits": visits, "sales": sales,
            "conversion": f"{100 * sales / visits:.1f} %".replace(".", ",") if visits else "—",
            "hour_chart": charts.columns([(f"{h.hour}:00", h.visits) for h in hours],
                                         title=_("Visits per hour")),
            "day_chart": charts.columns(queries.visits_per_day(st), title=_("Visits per day")),
        })  # fmt: skip

    def directives_context(st: Store) -> dict[str, Any]:
        now = st.clock()
        rows = directives.all_directives(st)
        for row in rows:
            row["current"] = (not row["withdrawn"] and parse_iso(row["valid_from"]) <= now
                              and (row["valid_until"] is None or now < parse_iso(row["valid_until"])))
        return {"items": rows, "settings": setting_rows(st, NUDGE_SETTINGS)}

    @app.get("/directives", response_class=HTMLResponse)
    def directives_page(request: Request, user: dict = Manager):
        return render(request, "directives.html", directives_context(pool.get()))

    def _day(value: Any, end: bool = False) -> dt.datetime | None:
        """A date from the form as the start of that shop day (or of the next, for an end)."""
        if not value:
            return None
        try:
            day = dt.date.fromisoformat(str(value))
        except ValueError:
            raise directives.DirectiveError(_("Expected a date.")) from None
        if end:
            day += dt.timedelta(days=1)
        return dt.datetime.combine(day, dt.time(), SHOP_TZ)

    @app.post("/directives", response_class=HTMLResponse)
    def directives_save(request: Request, user: dict = Manager, form: dict = Form):
        st = pool.get()
        action = str(form.get("action") or "add")
        try:
            if action == "withdraw":
                did = str(form.get("id") or "")
                command(st, user, "directive.withdraw", did, lambda: directives.withdraw(st, did))
            elif action == "texts":
                values = parse_settings(form, NUDGE_SETTINGS)
                command(st, user, "settings", ", ".join(values),
                        lambda: [settings.set(st, k, v) for k, v in values.items()])
            else:
                prio = str(form.get("priority") or "0").strip()
                if not prio.isdigit():
                    raise directives.DirectiveError(_("The priority lies between 0 and 9."))
                start, until = _day(form.get("from")), _day(form.get("until"), end=True)
                if start is not None and start < st.clock():
                    start = None  # from today: starts now
                command(st, user, "directive.publish", str(form.get("text"))[:80],
                        lambda: directives.publish(
                            st, str(form.get("text") or ""),
                            store_id=str(form.get("store") or "").strip() or None,
                            cashier=str(form.get("cashier") or "").strip() or None,
                            valid_from=start, valid_until=until, priority=int(prio)))  # fmt: skip
        except directives.DirectiveError as exc:
            ctx = directives_context(st)
            ctx.update(errors={"directive": str(exc)}, form=form)
            return render(request, "directives.html", ctx, 400)
        except FormError as exc:
            ctx = directives_context(st)
            ctx.update(errors=exc.errors, form=form)
            return render(request, "directives.html", ctx, 400)
        flash(request, _("Saved."))
        return back("/directives")

    # -- settings, users, audit ---------------------------------------------------------------------
    def other_keys() -> list[str]:
        return [k for k in sorted(settings.definitions())
                if not k.startswith(LOYALTY_PREFIX) and k not in NUDGE_SETTINGS
                and k not in extras.DISPLAY_SETTINGS]  # fmt: skip

    @app.get("/settings", response_class=HTMLResponse)
    def settings_page(request: Request, user: dict = Owner):
        return render(request, "settings.html", {"settings": setting_rows(pool.get(), other_keys())})

    @app.post("/settings", response_class=HTMLResponse)
    def settings_save(request: Request, user: dict = Owner, form: dict = Form):
        return save_settings(request, user, form, other_keys(), "settings.html", "/settings",
                             lambda st: {"settings": setting_rows(st, other_keys())})  # fmt: skip

    @app.get("/users", response_class=HTMLResponse)
    def users_page(request: Request, user: dict = Owner):
        return render(request, "users.html", {"users": users.users(pool.get()), "roles": users.ROLES})

    @app.post("/users", response_class=HTMLResponse)
    def users_save(request: Request, user: dict = Owner, form: dict = Form):
        st = pool.get()
        name = str(form.get("name") or "")
        try:
            users.set_user(st, name, str(form.get("password") or ""), str(form.get("role") or ""))
        except users.UserError as exc:
            return render(request, "users.html", {"users": users.users(st), "roles": users.ROLES,
                          "errors": {"user": str(exc)}, "form": form}, 400)  # fmt: skip
        users.audit(st, user["name"], "user.save", name, str(form.get("role")))
        flash(request, _("Saved."))
        return back("/users")

    @app.get("/audit", response_class=HTMLResponse)
    def audit_page(request: Request, user: dict = Owner):
        return render(request, "audit.html", {"rows": users.audit_log(pool.get())})

    app.include_router(webform.make_router())  # the clipad form on the customer's phone
    # import, promotions, stored value, display media (storehub/dashboard/extras.py)
    extras.install(app, SimpleNamespace(
        pool=pool, render=render, flash=flash, back=back, command=command, audit=users.audit,
        Manager=Manager, Form=Form))  # fmt: skip
    # campaign builder, single messages, automations and voucher runs (campaigns.py)
    campaigns.install(app, SimpleNamespace(
        pool=pool, render=render, flash=flash, back=back, command=command, audit=users.audit,
        Manager=Manager, Owner=Owner, Form=Form, csp=CSP))  # fmt: skip
    return app
