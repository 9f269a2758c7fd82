"""The clipad form on the customer's own phone, served by the hub (no tablet needed).

At the till the cashier asks for the phone form: the till writes a ``clipad.requested``
session for the "tablet" ``web`` and shows a QR code with ``<hub web_url>/f/<token>`` (on the
till and on the customer display). The token is the session id signed with the store's data
key (shared by hub and devices) and lives 10 minutes. The phone gets the same fields, custom
questions and full consent texts as the tablet; the answer is stored with
``clipad.submit`` on the hub's Store and reaches the till through the feed like any event.

``make_router()`` is included by the dashboard app; the pages need no login: the token is
the permission, for one session only. FastAPI is imported there, not at module level, since
the till and the tablet use the tokens and the form description without a web server.
"""

from dataclasses import dataclass, field
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from jinja2 import Environment, select_autoescape

from kiosk.engine import clipad, customers, questions, settings
from kiosk.engine.store import Store
from kiosk.i18n import N_, _

TOKEN_MAX_AGE_S = int(clipad.SESSION_TTL.total_seconds())
_SALT = "clipad-web-form"
# what the customer is asked (tablet and phone alike; the shop's mandatory fields are added)
FORM_FIELDS = ("gender", "first_name", "last_name", "birth_date", "email", "mobile",
               "street", "house_no", "postcode", "city")  # fmt: skip
CONSENTS = (("email_consent", "consent.email_text"), ("sms_consent", "consent.sms_text"))
HINTS = {"birth_date": N_("DD.MM.YYYY"), "email": N_("name@example.de")}


# -- tokens ------------------------------------------------------------------------------------------
def _serializer(secret_key: bytes | str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=_SALT)


def make_token(secret_key: bytes | str, session_id: str) -> str:
    return _serializer(secret_key).dumps(session_id)


def read_token(secret_key: bytes | str, token: str, max_age: int = TOKEN_MAX_AGE_S) -> str:
    """The session id in ``token``; raises clipad.ClipadError when forged or expired."""
    try:
        return _serializer(secret_key).loads(token, max_age=max_age)
    except SignatureExpired as exc:
        raise clipad.ClipadError(_("This link has expired. Please ask at the till for a new one.")) from exc
    except BadSignature as exc:
        raise clipad.ClipadError(_("This link is not valid.")) from exc


def form_url(web_url: str, token: str) -> str:
    return f"{web_url.rstrip('/')}/f/{token}"


# -- what the form asks ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Spec:
    name: str  # customer field or "answers.<key>"
    label: str
    kind: str  # text kinds of customers.Field, "choice", "bool"
    mandatory: bool = False
    choices: tuple[tuple[str, str], ...] = ()
    hint: str = ""
    text: str = ""  # consent: the full text agreed to


@dataclass(frozen=True)
class Section:
    title: str
    fields: tuple[Spec, ...] = field(default=())


def form_spec(store: Store) -> list[Section]:
    """The sections of the clipad form (the tablet screen and the web form draw this)."""
    mandatory = set(settings.get(store, "customer.mandatory_fields"))
    consent_names = {n for n, _k in CONSENTS}
    names = list(FORM_FIELDS) + sorted(n for n in mandatory if n not in FORM_FIELDS
                                       and n in customers.FIELD_BY_NAME and n not in consent_names)  # fmt: skip
    person = []
    for name in names:
        f = customers.FIELD_BY_NAME[name]
        person.append(Spec(name, _(f.label), f.kind, name in mandatory,
                           tuple((c, _(t)) for c, t in f.choices),
                           _(HINTS[name]) if name in HINTS else ""))  # fmt: skip
    asked = []
    for q in questions.all_questions(store):
        kind = q["kind"] if q["kind"] in ("choice", "bool", "number") else "text"
        asked.append(Spec(f"answers.{q['key']}", q["label"], kind, q["mandatory"],
                          tuple((o, o) for o in q["options"])))  # fmt: skip
    consent = [Spec(name, _(customers.FIELD_BY_NAME[name].label), "bool", name in mandatory,
                    text=settings.get(store, key)) for name, key in CONSENTS]  # fmt: skip
    out = [Section(_("Your details"), tuple(person)), Section(_("A few questions"), tuple(asked)),
           Section(_("Your consent"), tuple(consent))]  # fmt: skip
    return [s for s in out if s.fields]


def collect(spec: list[Section], values: dict[str, Any]) -> dict[str, Any]:
    """Form values -> ``clipad.submit`` data: only what was filled in; consents always."""
    data: dict[str, Any] = {}
    answers: dict[str, Any] = {}
    for section in spec:
        for f in section.fields:
            raw = values.get(f.name)
            if f.kind == "bool":
                value: Any = raw in ("on", "1", "true", True)
                if f.name.startswith("answers."):
                    if value:
                        answers[f.name.split(".", 1)[1]] = True
                else:
                    data[f.name] = value
                continue
            value = str(raw or "").strip()
            if not value:
                continue
            if f.name.startswith("answers."):
                answers[f.name.split(".", 1)[1]] = value
            else:
                data[f.name] = value
    if answers:
        data["answers"] = answers
    return data


def check_mandatory(store: Store, spec: list[Section], data: dict[str, Any],
                    prefill: dict[str, Any]) -> dict[str, str]:  # fmt: skip
    """Mandatory fields the customer left empty (what the cashier sent counts as filled)."""
    errors = {}
    for section in spec:
        for f in section.fields:
            if f.mandatory and f.kind != "bool" and not f.name.startswith("answers.") and \
                    data.get(f.name) in (None, "") and not prefill.get(f.name):
                errors[f.name] = _("Please fill in this field.")
    missing = questions.missing_mandatory(store, data.get("answers", {}))
    errors.update({f"answers.{k}": v for k, v in missing.items()})
    return errors


# -- the web pages -----------------------------------------------------------------------------------
_ENV = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
_PAGE = _ENV.from_string("""<!doctype html>
<html lang="de"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{{ shop }}</title><link rel="stylesheet" href="/static/style.css"></head>
<body class="webform"><main>
<h1>{{ shop }}</h1>
{% if message %}<p class="flash {{ kind }}">{{ message }}</p>{% endif %}
{% if spec %}
<form method="post" action="/f/{{ token }}">
{% if errors %}<p class="flash error">{{ t_check }}</p>{% endif %}
{% for section in spec %}<fieldset><legend>{{ section.title }}</legend>
{% for f in section.fields %}<div class="field">
{% if f.kind == 'bool' %}
<label><input type="checkbox" name="{{ f.name }}"{% if values.get(f.name) %} checked{% endif %}>
{{ f.label }}{% if f.mandatory %} *{% endif %}</label>
{% if f.text %}<p class="consent">{{ f.text }}</p>{% endif %}
{% elif f.kind == 'choice' %}
<span class="label">{{ f.label }}{% if f.mandatory %} *{% endif %}</span>
{% for code, text in f.choices %}<label class="choice"><input type="radio" name="{{ f.name }}" value="{{ code }}"
{% if values.get(f.name) == code %} checked{% endif %}> {{ text }}</label>{% endfor %}
{% else %}
<label for="{{ f.name }}">{{ f.label }}{% if f.mandatory %} *{% endif %}</label>
<input id="{{ f.name }}" name="{{ f.name }}" value="{{ values.get(f.name) or '' }}" placeholder="{{ f.hint }}"
 type="{{ 'email' if f.kind == 'email' else ('tel' if f.kind == 'phone' else 'text') }}"
 {% if f.kind in ('phone', 'postcode', 'number') %}inputmode="numeric"{% endif %}>
{% endif %}
{% if errors.get(f.name) %}<p class="error">{{ errors[f.name] }}</p>{% endif %}
</div>{% endfor %}</fieldset>{% endfor %}
<p><label><input type="checkbox" name="confirmed" required> {{ t_confirm }}</label></p>
<button type="submit">{{ t_send }}</button>
</form>
{% endif %}
</main></body></html>""")

def _store(request) -> Store:
    return request.app.state.pool.get()


def _page(store: Store, token: str, *, spec=None, values=None, errors=None, message: str = "",
          kind: str = "ok", status: int = 200):  # fmt: skip
    from fastapi.responses import HTMLResponse

    html = _PAGE.render(
        shop=settings.get(store, "shop.name"), token=token, spec=spec, values=values or {},
        errors=errors or {}, message=message, kind=kind,
        t_check=_("Please check the marked fields."), t_send=_("Save my details"),
        t_confirm=_("I checked my details and want them saved."),
    )  # fmt: skip
    return HTMLResponse(html, status_code=status)


def _open_session(store: Store, token: str) -> clipad.Session:
    sid = read_token(store.secret_key, token)
    session = clipad.get(store, sid)  # ClipadError while the request has not arrived yet
    if session.status != "requested":
        raise clipad.ClipadError(_("This form was closed already."))
    return session


def make_router():
    """The web form's routes (GET shows the form, POST stores it) for the dashboard app."""
    from fastapi import APIRouter, Request
    from fastapi.responses import HTMLResponse

    router = APIRouter()

    @router.get("/f/{token}", response_class=HTMLResponse)
    def form_page(request: Request, token: str):
        store = _store(request)
        try:
            session = _open_session(store, token)
        except clipad.ClipadError as exc:
            return _page(store, token, message=str(exc), kind="error", status=404)
        return _page(store, token, spec=form_spec(store), values=dict(session.prefill))

    @router.post("/f/{token}", response_class=HTMLResponse)
    async def form_submit(request: Request, token: str):
        store = _store(request)
        form = dict((await request.form()).items())
        try:
            session = _open_session(store, token)
        except clipad.ClipadError as exc:
            return _page(store, token, message=str(exc), kind="error", status=404)
        spec = form_spec(store)
        data = collect(spec, form)
        errors = check_mandatory(store, spec, data, session.prefill)
        if not errors:
            try:
                with store.transaction():
                    clipad.submit(store, session.id, data)
            except customers.ValidationError as exc:
                errors = exc.errors
            except clipad.ClipadError as exc:
                return _page(store, token, message=str(exc), kind="error", status=409)
        if errors:
            return _page(store, token, spec=spec, values=form, errors=errors, status=400)
        return _page(store, token, message=_("Thank you! Your details were saved."))

    return router
