"""Draft a message text ("Vorschlag") through an OpenAI-compatible chat endpoint.

The owner configures a base URL (e.g. a local Ollama on the hub: http://127.0.0.1:11434/v1),
a model and optionally a key. Without one, or when the endpoint fails, a German template is
filled in instead. The draft is always shown for editing; nothing is sent from here.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass

from kiosk.engine.messaging import render

_LOGGER = logging.getLogger(__name__)

TEMPLATES = {
    "repair_ready": "Guten Tag {first_name} {last_name}, Ihre Reparatur ist fertig und kann bei {shop} abgeholt werden.",
    "birthday": "Liebe/r {first_name}, das Team von {shop} wünscht Ihnen alles Gute zum Geburtstag!",
    "promotion": "Hallo {first_name}, bei {shop} gibt es diese Woche besondere Angebote für Sie.",
    "giftcard_reminder": "Guten Tag {first_name}, Ihr Gutschein bei {shop} verfällt bald. Wir freuen uns auf Ihren Besuch.",
    "order_ready": "Guten Tag {first_name} {last_name}, Ihre Bestellung ist bei {shop} eingetroffen.",
}
GENERIC = "Guten Tag {first_name} {last_name}, herzliche Grüße von {shop}."
SYSTEM = ("Du schreibst kurze, freundliche Kundennachrichten für ein Einzelhandelsgeschäft auf "
          "Deutsch. Keine Platzhalter, keine Erfindungen, höchstens {limit} Zeichen.")  # fmt: skip


@dataclass(frozen=True)
class Endpoint:
    base_url: str  # …/v1
    model: str
    api_key: str | None = None
    timeout: float = 20.0


@dataclass(frozen=True)
class Draft:
    text: str
    source: str  # "ai" or "template"


def draft(purpose: str, customer: dict, shop: str, endpoint: Endpoint | None,
          *, limit: int = 600) -> Draft:  # fmt: skip
    values = {**customer, "shop": shop}
    fallback = Draft(render(TEMPLATES.get(purpose, GENERIC), values), "template")
    if endpoint is None:
        return fallback
    facts = {k: customer.get(k) for k in ("first_name", "last_name", "gender", "city")
             if customer.get(k)}  # fmt: skip  # only what the text needs
    body = {
        "model": endpoint.model,
        "messages": [
            {"role": "system", "content": SYSTEM.format(limit=limit)},
            {"role": "user", "content": f"Anlass: {purpose}. Geschäft: {shop}. "
                                        f"Kunde: {json.dumps(facts, ensure_ascii=False)}."},
        ],
        "temperature": 0.4,
    }  # fmt: skip
    request = urllib.request.Request(
        endpoint.base_url.rstrip("/") + "/chat/completions", data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json",
                 **({"Authorization": f"Bearer {endpoint.api_key}"} if endpoint.api_key else {})},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=endpoint.timeout) as response:  # noqa: S310
            answer = json.loads(response.read())
        text = answer["choices"][0]["message"]["content"].strip()
    except (urllib.error.URLError, OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        _LOGGER.warning("AI draft failed (%s); using the template", exc)
        return fallback
    if not text:
        return fallback
    return Draft(text[:limit], "ai")
