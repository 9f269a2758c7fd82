"""Dashboard pages added to the app by ``install``: Excel import of customers with progress,
promotions, gift cards / vouchers / wallets, and the customer display's media.

They use the app's own helpers (render, CSRF-checked forms, roles, audited ``command``), handed
over as a namespace so these routes stay out of app.py's long body.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from types import SimpleNamespace
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse

from kiosk.engine import customer_import as ci
from kiosk.engine import customers, display, giftcards, groups, promotions, settings
from kiosk.i18n import N_, _
from storehub.dashboard import queries
from storehub.dashboard.forms import FormError, parse_settings, setting_rows

_LOGGER = logging.getLogger(__name__)

DISPLAY_SETTINGS = ["display.media", "display.show_points"]
MEDIA_BLANK_ROWS = 3  # empty rows under the list for new media
MAX_JOBS = 10  # kept in memory per dashboard process; the oldest finished ones go first
JOB_TTL_S = 3600
REPORT_ROWS = 200  # problem rows listed on the page (the first ones)
STAGES = {"read": N_("Reading"), "check": N_("Checking"), "import": N_("Importing")}
DUPLICATE_CHOICES = (
    ("refuse", N_("Do not import if any row looks like an existing customer")),
    ("skip", N_("Leave out rows that look like an existing customer")),
    ("import", N_("Import them anyway (they are not duplicates)")),
)
KIND_LABELS = {"final_price": N_("Final price"), "sale_percent": N_("Percentage (sale)"),
               "nth_item": N_("Every n-th item")}  # fmt: skip


@dataclass
class ImportJob:
    """One upload on its way through mapping, checking and importing (in memory only)."""

    token: str
    user: str
    filename: str
    table: ci.Table | None  # None while the upload is being read
    mapping: dict[int, str]
    status: str = "mapping"  # reading, refused, mapping, checking, checked, importing, done, failed
    stage: str = ""
    done: int = 0
    total: int = 0
    error: str = ""
    report: ci.Report | None = None
    result: ci.Result | None = None
    created: float = field(default_factory=time.monotonic)

    def progress(self, stage: str, done: int, total: int) -> None:
        self.stage, self.done, self.total = stage, done, total

    @property
    def running(self) -> bool:
        return self.status in ("reading", "checking", "importing")

    @property
    def percent(self) -> int:
        return min(100, int(100 * self.done / self.total)) if self.total else 0


def parse_cents(raw: Any) -> int | None:
    """``"12,50"`` or ``"12.50"`` euros -> 1250 cents; None when it is not an amount."""
    text = str(raw or "").strip().replace("€", "").replace(" ", "")
    if "," in text:
        text = text.replace(".", "").replace(",", ".")
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    if not value.is_finite() or value < 0 or value != value.quantize(Decimal("0.01")):
        return None
    return int(value * 100)


def parse_bp(raw: Any) -> int | None:
    """``"12,5"`` percent -> 1250 basis points."""
    cents = parse_cents(raw)  # same shape: up to two decimals
    return cents


def media_rows(form: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The media list from the form's rows; a row without an address is left out."""
    out, errors = [], {}
    raw_rows = []
    indexes = sorted({int(k.split("-")[-1]) for k in form if k.startswith("media-src-")
                      and k.split("-")[-1].isdigit()})  # fmt: skip
    for i in indexes:
        src = str(form.get(f"media-src-{i}") or "").strip()
        if not src or form.get(f"media-remove-{i}") == "1":
            continue
        kind = str(form.get(f"media-kind-{i}") or "")
        seconds = str(form.get(f"media-seconds-{i}") or "10").strip()
        raw_rows.append({"kind": kind, "src": src, "seconds": seconds, "index": i})
        if kind not in display.MEDIA_KINDS:
            errors[f"media-{i}"] = _("Each medium is an image, a video or a web page.")
        elif not seconds.isdigit() or not 1 <= int(seconds) <= 3600:
            errors[f"media-{i}"] = _("Show each medium for 1 to 3600 seconds.")
        elif len(src) > 500:
            errors[f"media-{i}"] = _("Each medium needs a file or address.")
        else:
            out.append({"kind": kind, "src": src, "seconds": int(seconds)})
    return (raw_rows if errors else out), errors


def install(app: FastAPI, h: SimpleNamespace) -> None:
    """Add the routes; ``h`` carries pool, render, flash, back, command, Manager, Form."""
    pool, render, flash, back, command = h.pool, h.render, h.flash, h.back, h.command
    Manager, Form = h.Manager, h.Form
    jobs: dict[str, ImportJob] = {}
    jobs_lock = threading.Lock()
    app.state.import_limits = ci.Limits()

    # -- customer import --------------------------------------------------------------------------
    def job_of(token: str, user: dict) -> ImportJob:
        job = jobs.get(token)
        if job is None or job.user != user["name"]:  # another user's upload stays private
            raise customers.NotFound(token)
        return job

    def add_job(job: ImportJob) -> None:
        with jobs_lock:
            now = time.monotonic()
            for token, old in list(jobs.items()):
                if now - old.created > JOB_TTL_S and not old.running:
                    del jobs[token]
            while len(jobs) >= MAX_JOBS:
                idle = [j for j in jobs.values() if not j.running]
                if not idle:
                    raise ci.FileRefused(_("Too many imports at once. Please try again later."))
                del jobs[min(idle, key=lambda j: j.created).token]
            jobs[job.token] = job

    def in_background(job: ImportJob, work) -> None:
        def run() -> None:
            st = pool.base.clone()  # its own connection: SQLite connections stay in one thread
            try:
                work(st)
            except Exception:  # shown on the page, logged with the trace
                _LOGGER.exception("import job %s failed", job.token)
                job.error, job.status = _("The import failed unexpectedly. Nothing was imported."), "failed"
            finally:
                st.close()

        threading.Thread(target=run, name=f"import-{job.token[:6]}", daemon=True).start()

    def column_info(job: ImportJob, st) -> list[dict[str, Any]]:
        cols = []
        for i in range(len(job.table.headers)):
            samples = [ci._cell_text(cells[i]) for _n, cells in job.table.rows[:50]
                       if i < len(cells) and cells[i] is not None][:3]  # fmt: skip
            cols.append({"index": i, "name": job.table.column_name(i), "samples": samples,
                         "target": job.mapping.get(i, "")})  # fmt: skip
        return cols

    def job_context(job: ImportJob, st) -> dict[str, Any]:
        # The worker thread moves the job on while a page renders: work from one snapshot so
        # the page never shows a state whose data was not prepared (e.g. mapping, no columns).
        job = dataclasses.replace(job)
        ctx: dict[str, Any] = {"job": job, "stage_label": _(STAGES.get(job.stage, "")) if job.stage else "",
                               "duplicate_choices": DUPLICATE_CHOICES}  # fmt: skip
        if job.status == "mapping":
            ctx["columns"] = column_info(job, st)
            ctx["targets"] = sorted(ci.targets(st).items(), key=lambda kv: kv[1].casefold())
            try:
                ctx["preview"] = ci.preview(st, job.table, job.mapping, 10) if job.mapping else None
            except ci.MappingError as exc:
                ctx["preview"], job.error = None, str(exc)
            ctx["labels"] = ci.targets(st)
        if job.report is not None and job.status in ("checked", "failed", "importing", "done"):
            rep = job.report
            ctx["error_rows"] = [r for r in rep.rows if r.errors][:REPORT_ROWS]
            ctx["duplicate_rows"] = [r for r in rep.rows if r.duplicates and not r.errors][:REPORT_ROWS]
            ctx["ok_rows"] = sum(1 for r in rep.rows if not r.errors and not r.duplicates)
        return ctx

    @app.get("/import", response_class=HTMLResponse)
    def import_page(request: Request, user: dict = Manager):
        return render(request, "import.html", {"limits": app.state.import_limits})

    @app.post("/import", response_class=HTMLResponse)
    def import_upload(request: Request, user: dict = Manager, form: dict = Form):
        upload = form.get("file")
        limits = app.state.import_limits
        name = str(getattr(upload, "filename", "") or "")[:200]
        try:
            if upload is None or not hasattr(upload, "file"):
                raise ci.FileRefused(_("Choose an Excel file (.xlsx) to import."))
            try:
                data = upload.file.read(limits.max_file_bytes + 1)  # never more than allowed
            finally:
                upload.file.close()  # the spooled temp file: nobody else closes it
            if len(data) > limits.max_file_bytes:
                raise ci.FileRefused(_("The file is bigger than {limit}; at most that can be imported.")
                                     .format(limit=ci._size(limits.max_file_bytes)))  # fmt: skip
            job = ImportJob(secrets.token_urlsafe(16), user["name"], name, None, {}, status="reading")
            add_job(job)
        except ci.FileRefused as exc:
            h.audit(pool.get(), user["name"], "customers.import.refused", name, str(exc)[:300])
            return render(request, "import.html", {"limits": limits, "refused": str(exc)}, 400)

        def work(bst) -> None:
            # reading 100,000 rows takes a while: in the background, with progress
            try:
                table = ci.read_workbook(data, limits=limits, progress=job.progress)
            except ci.FileRefused as exc:
                job.error, job.status = str(exc), "refused"
                h.audit(bst, user["name"], "customers.import.refused", name, str(exc)[:300])
                return
            job.mapping, job.table = ci.propose_mapping(bst, table), table
            job.status = "mapping"

        job.progress("read", 0, 0)
        in_background(job, work)
        return back(f"/import/{job.token}")

    @app.get("/import/{token}", response_class=HTMLResponse)
    def import_job(request: Request, token: str, user: dict = Manager):
        job = job_of(token, user)
        return render(request, "import_job.html", job_context(job, pool.get()))

    @app.get("/import/{token}/progress")
    def import_progress(request: Request, token: str, user: dict = Manager):
        """The small status a page or script polls while the job runs."""
        job = job_of(token, user)
        return JSONResponse({"status": job.status, "stage": job.stage, "done": job.done,
                             "total": job.total, "percent": job.percent, "error": job.error,
                             "created": len(job.result.created) if job.result else 0})  # fmt: skip

    @app.post("/import/{token}/check", response_class=HTMLResponse)
    def import_check(request: Request, token: str, user: dict = Manager, form: dict = Form):
        st = pool.get()
        job = job_of(token, user)
        if job.running or job.status in ("done", "refused") or job.table is None:
            return back(f"/import/{token}")
        known = ci.targets(st)
        mapping: dict[int, str] = {}
        seen: dict[str, str] = {}
        job.error = ""
        for i in range(len(job.table.headers)):
            target = str(form.get(f"col-{i}") or "").strip()
            if not target:
                continue
            if target not in known:
                job.error = _("Unknown field {field!r}.").format(field=target)
            elif target in seen:
                job.error = _("{field} is chosen for two columns: {a} and {b}.").format(
                    field=known[target], a=seen[target], b=job.table.column_name(i))
            seen[target] = job.table.column_name(i)
            mapping[i] = target
        if not mapping and not job.error:
            job.error = _("No column is mapped to a customer field.")
        if job.error:
            job.mapping = {i: t for i, t in mapping.items() if t in known}
            job.status = "mapping"
            return render(request, "import_job.html", job_context(job, st), 400)
        job.mapping, job.report, job.status = mapping, None, "checking"
        job.progress("check", 0, len(job.table.rows))

        def work(bst) -> None:
            try:
                job.report = ci.check(bst, job.table, job.mapping, progress=job.progress)
                job.status = "checked"
            except ci.MappingError as exc:
                job.error, job.status = str(exc), "mapping"

        in_background(job, work)
        return back(f"/import/{token}")

    @app.post("/import/{token}/mapping", response_class=HTMLResponse)
    def import_remap(request: Request, token: str, user: dict = Manager, form: dict = Form):
        job = job_of(token, user)
        if not job.running and job.status not in ("done", "refused") and job.table is not None:
            job.status, job.error, job.report = "mapping", "", None
        return back(f"/import/{token}")

    @app.post("/import/{token}/commit", response_class=HTMLResponse)
    def import_commit(request: Request, token: str, user: dict = Manager, form: dict = Form):
        job = job_of(token, user)
        policy = str(form.get("duplicates") or "refuse")
        if policy not in ci.DUPLICATE_POLICIES:
            policy = "refuse"
        if job.status != "checked" or job.report is None:
            return back(f"/import/{token}")
        job.status, job.error = "importing", ""
        job.progress("import", 0, len(job.report.rows))

        def work(bst) -> None:
            try:
                job.result = command(
                    bst, user, "customers.import", job.filename,
                    lambda: ci.commit(bst, job.report, duplicates=policy, progress=job.progress),
                    detail=f"{len(job.report.rows)} rows, duplicates={policy}")  # fmt: skip
                job.status = "done"
            except ci.ImportRejected as exc:
                job.error, job.status = str(exc), "checked"

        in_background(job, work)
        return back(f"/import/{token}")

    # -- promotions ---------------------------------------------------------------------------------
    def promotions_context(st, edit: str = "") -> dict[str, Any]:
        rules = queries.promotions(st)
        chosen = next((r for r in rules if r["id"] == edit), None)
        form: dict[str, Any] = {}
        if chosen:
            form = {"id": chosen["id"], "name": chosen["name"], "kind": chosen["kind"],
                    "percent": _bp_text(chosen["bp"]) if chosen["bp"] else "", "n": chosen["n"] or "",
                    "price": _bp_text(chosen["price_cents"]) if chosen["kind"] == "final_price" else "",
                    "products": ", ".join(chosen["product_ids"]), "groups": chosen["group_ids"],
                    "starts": chosen["starts"] or "", "ends": chosen["ends"] or "",
                    "active": "1" if chosen["active"] else ""}  # fmt: skip
        return {"rules": rules, "kinds": KIND_LABELS, "groups": groups.all_groups(st, active_only=False),
                "group_names": {g["id"]: g["name"] for g in groups.all_groups(st, active_only=False)},
                "form": form}  # fmt: skip

    @app.get("/promotions", response_class=HTMLResponse)
    def promotions_page(request: Request, user: dict = Manager, edit: str = ""):
        return render(request, "promotions.html", promotions_context(pool.get(), edit[:64]))

    @app.post("/promotions", response_class=HTMLResponse)
    def promotions_save(request: Request, user: dict = Manager, form: dict = Form):
        st = pool.get()
        kind = str(form.get("kind") or "")
        errors: dict[str, str] = {}
        bp = n = price = 0
        if kind in ("sale_percent", "nth_item"):
            bp = parse_bp(form.get("percent"))
            if bp is None:
                errors["percent"], bp = _("Enter a percentage such as 30 or 12,5."), 0
        if kind == "nth_item":
            raw_n = str(form.get("n") or "").strip()
            n = int(raw_n) if raw_n.isdigit() else -1
        if kind == "final_price":
            price = parse_cents(form.get("price"))
            if price is None:
                errors["price"], price = _("Enter an amount such as 9,99."), 0
        wanted = form.get("groups") or []
        group_ids = [str(g) for g in (wanted if isinstance(wanted, list) else [wanted]) if g]
        products = [p.strip() for p in str(form.get("products") or "").replace("\n", ",").split(",")
                    if p.strip()]  # fmt: skip
        rule_id = str(form.get("id") or "") or None
        if not errors:
            try:
                command(st, user, "promotion.save", str(form.get("name") or "")[:60],
                        lambda: promotions.save_rule(
                            st, str(form.get("name") or ""), kind, bp=bp, n=n, price_cents=price,
                            product_ids=products, group_ids=group_ids,
                            starts=str(form.get("starts") or "") or None,
                            ends=str(form.get("ends") or "") or None,
                            active=form.get("active") == "1", rule_id=rule_id))  # fmt: skip
            except promotions.PromotionError as exc:
                rename = {"bp": "percent", "price_cents": "price", "product_ids": "products"}
                errors = {rename.get(k, k): v for k, v in exc.errors.items()}
        if errors:
            ctx = promotions_context(st)
            ctx.update(errors=errors, form={**form, "groups": group_ids})
            return render(request, "promotions.html", ctx, 400)
        flash(request, _("Saved."))
        return back("/promotions")

    # -- gift cards, vouchers, wallets ------------------------------------------------------------------
    def _page_no(raw: str) -> int:
        return int(raw) if raw.isdigit() and 0 < int(raw) < 100_000 else 1

    @app.get("/giftcards", response_class=HTMLResponse)
    def giftcards_page(request: Request, user: dict = Manager, kind: str = "", state: str = "",
                       q: str = "", page: str = "1"):  # fmt: skip
        st = pool.get()
        kind = kind if kind in giftcards.KINDS else ""
        state = state if state in queries.STORED_VALUE_STATES else ""
        q = q.strip()[:32]
        result = queries.giftcard_page(st, kind, state, q, _page_no(page))
        params = {k: v for k, v in {"kind": kind, "state": state, "q": q}.items() if v}
        return render(request, "giftcards.html", {
            "page": result, "params": params, "kind": kind, "state": state, "q": q,
            "totals": queries.giftcard_totals(st), "vips": queries.vip_cards(st)})  # fmt: skip

    @app.get("/wallets", response_class=HTMLResponse)
    def wallets_page(request: Request, user: dict = Manager, q: str = "", page: str = "1"):
        st = pool.get()
        q = q.strip()[:32]
        return render(request, "wallets.html", {
            "page": queries.wallet_page(st, q, _page_no(page)), "params": {"q": q} if q else {},
            "q": q, "types": queries.wallet_types(st)})  # fmt: skip

    # -- customer display -------------------------------------------------------------------------------
    def display_context(st, media: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        media = settings.get(st, "display.media") if media is None else media
        rows = [*media, *({"kind": "image", "src": "", "seconds": 10} for _ in range(MEDIA_BLANK_ROWS))]
        return {"media": rows, "kinds": display.MEDIA_KINDS,
                "settings": setting_rows(st, ["display.show_points"])}  # fmt: skip

    @app.get("/display", response_class=HTMLResponse)
    def display_page(request: Request, user: dict = Manager):
        return render(request, "display_media.html", display_context(pool.get()))

    @app.post("/display", response_class=HTMLResponse)
    def display_save(request: Request, user: dict = Manager, form: dict = Form):
        st = pool.get()
        media, errors = media_rows(form)
        try:
            values = parse_settings(form, ["display.show_points"])
            if not errors:  # with errors the rows are as typed, not checkable
                values["display.media"] = settings.definitions()["display.media"].check(media)
        except FormError as exc:
            errors.update(exc.errors)
        except settings.SettingError as exc:
            errors["media"] = str(exc)
        if errors:
            return render(request, "display_media.html",
                          {**display_context(st, media), "errors": errors, "form": form}, 400)  # fmt: skip
        command(st, user, "settings", ", ".join(values),
                lambda: [settings.set(st, k, v) for k, v in values.items()])
        flash(request, _("Saved."))
        return back("/display")


def _bp_text(value: int) -> str:
    """1250 -> "12,50"; 3000 -> "30" (basis points as percent, cents as euros)."""
    whole, rest = divmod(int(value), 100)
    return f"{whole}" if not rest else f"{whole},{rest:02d}"


