"""The GDPR data export of one customer as a PDF (Art. 15 copy for the customer to take home)."""

from __future__ import annotations

from typing import Any

from fpdf import FPDF

from kiosk.engine import customers
from kiosk.engine.registration_form import _font_files
from kiosk.i18n import _

MAX_ROWS = 500  # per table; the JSON export has everything


def _money(cents: int | None) -> str:
    cents = int(cents or 0)
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100},{abs(cents) % 100:02d} €"


class _Doc(FPDF):
    def __init__(self) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        fonts = _font_files()
        if fonts:
            self.add_font("DejaVu", "", str(fonts[0]))
            self.add_font("DejaVu", "B", str(fonts[1]))
            self.family_name, self.unicode = "DejaVu", True
        else:
            self.family_name, self.unicode = "helvetica", False
        self.set_auto_page_break(True, margin=15)
        self.add_page()

    def t(self, text: Any) -> str:
        text = "" if text is None else str(text)
        if self.unicode:
            return text
        return text.replace("€", "EUR").encode("latin-1", "replace").decode("latin-1")

    def heading(self, text: str) -> None:
        self.ln(3)
        self.set_font(self.family_name, "B", 12)
        self.cell(0, 7, self.t(text), new_x="LMARGIN", new_y="NEXT")
        self.set_font(self.family_name, "", 9)

    def pair(self, label: str, value: Any) -> None:
        self.set_font(self.family_name, "B", 9)
        self.cell(55, 5, self.t(label))
        self.set_font(self.family_name, "", 9)
        self.multi_cell(0, 5, self.t(value), new_x="LMARGIN", new_y="NEXT")

    def rows(self, header: list[str], rows: list[list[Any]]) -> None:
        if not rows:
            self.cell(0, 5, self.t("—"), new_x="LMARGIN", new_y="NEXT")
            return
        with self.table(text_align="LEFT", first_row_as_headings=True, line_height=4.5) as table:
            table.row([self.t(h) for h in header])
            for row in rows[:MAX_ROWS]:
                table.row([self.t(v) for v in row])


def render(data: dict[str, Any], shop_name: str) -> bytes:
    """Turn the export dictionary of the dashboard (customer, ledgers, answers) into a PDF."""
    c = data["customer"]
    doc = _Doc()
    doc.set_font(doc.family_name, "B", 15)
    doc.multi_cell(0, 8, doc.t(_("Personal data held by {shop}").format(shop=shop_name)),
                   new_x="LMARGIN", new_y="NEXT")  # fmt: skip
    doc.set_font(doc.family_name, "", 9)
    doc.cell(0, 5, doc.t(_("Customer number {no}, exported {at}").format(
        no=c.get("customer_no"), at=data["exported_at"][:16].replace("T", " "))),
        new_x="LMARGIN", new_y="NEXT")  # fmt: skip
    doc.heading(_("Record"))
    for field in customers.FIELDS:
        value = c.get("id_card_masked") if field.kind == "id_card" else c.get(field.name)
        if value in (None, "", False) and field.kind != "bool":
            continue
        if field.kind == "bool":
            value = _("yes") if value else _("no")
        doc.pair(_(field.label), value)
    for consent in customers.CONSENT_FIELDS:
        if c.get(f"{consent}_at"):
            doc.pair(_("Consent recorded"), f"{consent}: {c[f'{consent}_at'][:16]}"
                                             f" ({c.get(f'{consent}_source') or ''})")  # fmt: skip
    for key, value in (c.get("answers") or {}).items():
        doc.pair(key, value)
    doc.heading(_("Cards and groups"))
    doc.rows([_("Card"), _("Status"), _("Valid until")],
             [[k["card_no"], k["status"], (k["valid_until"] or "")[:10]] for k in c["cards"]])
    doc.pair(_("Groups"), ", ".join(data["groups"]) or "—")
    doc.heading(_("Loyalty points"))
    doc.pair(_("Points balance"), data["points_balance"])
    doc.heading(_("Purchases"))
    doc.rows([_("Date"), _("Receipt"), _("Total"), _("Points")],
             [[(s["completed_at"] or "")[:10], s["receipt_no"], _money(s["total_cents"]),
               s["points_earned"]] for s in data["sales"]])  # fmt: skip
    doc.heading(_("E-wallets and gift cards"))
    doc.rows([_("Kind"), _("Number"), _("Balance")],
             [[_("E-wallet"), w["number"], _money(w["balance_cents"])] for w in data["wallets"]]
             + [[g["kind"], g["code"], _money(g["balance_cents"])] for g in data["giftcards"]])
    doc.heading(_("Survey answers"))
    doc.rows([_("Date"), _("Survey"), _("Answers")],
             [[a["at"][:10], a["title"], "; ".join(f"{q}: {v}" for q, v in a["answers"])]
              for a in data["survey_answers"]])  # fmt: skip
    return bytes(doc.output())
