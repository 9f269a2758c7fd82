"""The paper registration form (Fastmag "Formular drucken"): an A4 PDF to fill in by hand.

It shows the shop's name and address, every customer field grouped in sections with boxes
to write in, the shop's mandatory fields marked with *, the custom questions (choice
questions as checkboxes), both marketing consents with their full texts, and a date and
signature line. A box at the bottom is for the cashier who types the form in later.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from kiosk.engine import customers, questions, settings
from kiosk.engine.clock import local_date
from kiosk.engine.store import Store
from kiosk.i18n import N_, _

_LOGGER = logging.getLogger(__name__)

# DejaVu from Debian's fonts-dejavu-core: umlauts, ß and € in every PDF viewer.
FONT_DIRS = (
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/dejavu"),
    Path("/usr/local/share/fonts/dejavu"),
)
_FONT = "DejaVu"

MARGIN = 15.0  # mm
GRID = 12  # a row is 12 units wide
LABEL_H = 4.2
BOX_H = 8.0
ROW_GAP = 2.8
CHECK = 3.8  # checkbox edge

# Fields that are the shop's business, not the customer's: on the form only if mandatory.
_INTERNAL_SECTIONS = ("identity", "internal")
_FORM_LABELS = {"provenance": N_("How did you hear about us?")}
_SPANS = {
    "title": 2, "first_name": 5, "last_name": 5, "birth_date": 4, "phone": 6, "mobile": 6,
    "street": 9, "house_no": 3, "postcode": 3, "city": 6, "country": 3,
    "delivery_street": 9, "delivery_house_no": 3, "delivery_postcode": 3, "delivery_city": 6,
    "delivery_country": 3, "id_card": 6,
}  # fmt: skip
_SECTION_TITLES = {
    "person": N_("Personal details"),
    "contact": N_("Contact"),
    "address": N_("Address"),
    "delivery": N_("Delivery address (if different)"),
    "identity": N_("Identity document"),
    "internal": N_("More about you"),
}


@dataclass(frozen=True)
class FormField:
    key: str  # customer field name or "answers.<key>"
    label: str  # translated
    kind: str  # box, date, choices, check
    mandatory: bool = False
    choices: tuple[str, ...] = ()
    span: int = GRID


@dataclass(frozen=True)
class Section:
    title: str
    fields: tuple[FormField, ...]


def sections(store: Store) -> list[Section]:
    """What the form asks, in order (the PDF draws exactly this)."""
    mandatory = set(settings.get(store, "customer.mandatory_fields"))
    by_section: dict[str, list[FormField]] = {}
    for f in customers.FIELDS:
        if f.name in customers.CONSENT_FIELDS:
            continue  # drawn with their full texts in the consent section
        if f.section in _INTERNAL_SECTIONS and f.name not in mandatory and f.name != "provenance":
            continue
        label = _(_FORM_LABELS.get(f.name, f.label))
        if f.kind == "choice":
            item = FormField(f.name, label, "choices", f.name in mandatory,
                             tuple(_(text) for _code, text in f.choices))  # fmt: skip
        elif f.kind == "date":
            item = FormField(f.name, label, "date", f.name in mandatory, span=_SPANS.get(f.name, 4))
        else:
            item = FormField(f.name, label, "box", f.name in mandatory,
                             span=_SPANS.get(f.name, GRID))  # fmt: skip
        section = "internal" if f.section in _INTERNAL_SECTIONS else f.section
        by_section.setdefault(section, []).append(item)
    for q in questions.all_questions(store):
        key = f"answers.{q['key']}"
        if q["kind"] == "choice":
            item = FormField(key, q["label"], "choices", q["mandatory"], tuple(q["options"]))
        elif q["kind"] == "bool":
            item = FormField(key, q["label"], "choices", q["mandatory"], (_("yes"), _("no")))
        else:
            item = FormField(key, q["label"], "box", q["mandatory"],
                             span=6 if q["kind"] == "number" else GRID)  # fmt: skip
        by_section.setdefault("internal", []).append(item)
    order = ("person", "contact", "address", "delivery", "internal")
    return [
        Section(_(_SECTION_TITLES[name]), tuple(by_section[name]))
        for name in order
        if by_section.get(name)
    ]


def _font_files() -> tuple[Path, Path] | None:
    for folder in FONT_DIRS:
        regular, bold = folder / "DejaVuSans.ttf", folder / "DejaVuSans-Bold.ttf"
        if regular.is_file() and bold.is_file():
            return regular, bold
    return None


_LATIN1_FALLBACK = str.maketrans({"€": "EUR", "„": '"', "“": '"', "”": '"', "‚": "'", "‘": "'",
                                  "’": "'", "–": "-", "—": "-", "…": "...", "•": "*"})  # fmt: skip


class _Form(FPDF):
    def __init__(self, footer_text: str) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.footer_text = footer_text
        fonts = _font_files()
        if fonts:
            self.add_font(_FONT, "", str(fonts[0]))
            self.add_font(_FONT, "B", str(fonts[1]))
            self._family = _FONT
            self._unicode = True
        else:
            # The core font knows only Latin-1: umlauts survive, € becomes EUR.
            _LOGGER.warning("DejaVu fonts not found (install fonts-dejavu-core); using Helvetica")
            self._family = "helvetica"
            self._unicode = False
        self.set_margins(MARGIN, MARGIN, MARGIN)
        self.set_auto_page_break(True, margin=MARGIN + 6)
        self.set_line_width(0.25)
        self.set_draw_color(90, 90, 90)

    def t(self, text: str) -> str:
        if self._unicode:
            return text
        return text.translate(_LATIN1_FALLBACK).encode("latin-1", "replace").decode("latin-1")

    def use_font(self, size: float, bold: bool = False) -> None:
        self.set_font(self._family, "B" if bold else "", size)

    def footer(self) -> None:
        self.set_y(-MARGIN - 2)
        self.use_font(7)
        self.set_text_color(110, 110, 110)
        self.cell(0, 4, self.t(self.footer_text), align="L")
        self.cell(0, 4, self.t(_("Page {n}").format(n=self.page_no())), align="R")
        self.set_text_color(0, 0, 0)

    def ensure_space(self, height: float) -> None:
        if self.get_y() + height > self.page_break_trigger:
            self.add_page()


def _label(field: FormField) -> str:
    return f"{field.label} *" if field.mandatory else field.label


def _draw_checkbox(pdf: _Form, x: float, y: float) -> None:
    pdf.rect(x, y, CHECK, CHECK)


def _choice_lines(pdf: _Form, field: FormField, width: float) -> list[list[str]]:
    """Wrap the options of a choice field onto lines that fit ``width``."""
    lines: list[list[str]] = [[]]
    used = 0.0
    for option in field.choices:
        need = CHECK + 1.5 + pdf.get_string_width(pdf.t(option)) + 6
        if lines[-1] and used + need > width:
            lines.append([])
            used = 0.0
        lines[-1].append(option)
        used += need
    return lines


def _field_height(pdf: _Form, field: FormField, width: float) -> float:
    if field.kind == "choices":
        pdf.use_font(9)
        return LABEL_H + len(_choice_lines(pdf, field, width)) * 6.0 + ROW_GAP
    return LABEL_H + BOX_H + ROW_GAP


def _draw_field(pdf: _Form, field: FormField, x: float, y: float, width: float) -> None:
    pdf.use_font(7.5, bold=field.mandatory)
    pdf.set_xy(x, y)
    label = _label(field)
    if field.kind == "date":
        label += "  " + _("(DD.MM.YYYY)")
    pdf.cell(width, LABEL_H, pdf.t(label))
    top = y + LABEL_H
    if field.kind == "choices":
        pdf.use_font(9)
        for line_no, line in enumerate(_choice_lines(pdf, field, width)):
            cx = x
            cy = top + 1 + line_no * 6.0
            for option in line:
                _draw_checkbox(pdf, cx, cy)
                pdf.set_xy(cx + CHECK + 1.5, cy - 0.4)
                text = pdf.t(option)
                pdf.cell(pdf.get_string_width(text) + 1, CHECK + 0.8, text)
                cx += CHECK + 1.5 + pdf.get_string_width(text) + 6
        return
    pdf.rect(x, top, width, BOX_H)
    if field.kind == "date":
        # faint separators guide the hand: TT . MM . JJJJ
        pdf.set_draw_color(170, 170, 170)
        for frac in (0.25, 0.5):
            pdf.line(x + width * frac, top + BOX_H - 2.5, x + width * frac, top + BOX_H)
        pdf.set_draw_color(90, 90, 90)


def _rows(fields: tuple[FormField, ...]) -> list[list[FormField]]:
    rows: list[list[FormField]] = []
    used = GRID
    for field in fields:
        if used + field.span > GRID:
            rows.append([])
            used = 0
        rows[-1].append(field)
        used += field.span
    return rows


def _draw_section(pdf: _Form, section: Section) -> None:
    unit = pdf.epw / GRID
    rows = _rows(section.fields)
    heights = [
        max(_field_height(pdf, f, f.span * unit - 3) for f in row) for row in rows
    ]  # fmt: skip
    pdf.ensure_space(9 + heights[0])  # keep the title with its first row
    pdf.use_font(10.5, bold=True)
    pdf.set_fill_color(235, 235, 235)
    pdf.cell(0, 6.5, pdf.t(section.title), fill=True, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(1.5)
    for row, height in zip(rows, heights):
        pdf.ensure_space(height)
        y = pdf.get_y()
        x = MARGIN
        for field in row:
            width = field.span * unit
            _draw_field(pdf, field, x, y, width - 3 if x + width < pdf.w - MARGIN - 0.1 else width)
            x += width
        pdf.set_xy(MARGIN, y + height)


def _draw_consents(pdf: _Form, store: Store, mandatory: set[str]) -> None:
    texts = [
        ("email_consent", _("E-mail advertising"), settings.get(store, "consent.email_text")),
        ("sms_consent", _("SMS advertising"), settings.get(store, "consent.sms_text")),
    ]
    text_w = pdf.epw - CHECK - 3
    pdf.use_font(9)
    first_h = pdf.multi_cell(text_w, 4.2, pdf.t(texts[0][2]), dry_run=True, output="HEIGHT")
    pdf.ensure_space(9 + 6 + first_h)
    pdf.use_font(10.5, bold=True)
    pdf.set_fill_color(235, 235, 235)
    # consent must be freely given: "optional" unless the shop insists otherwise
    title = (_("Consent to advertising") if mandatory & set(customers.CONSENT_FIELDS)
             else _("Consent to advertising (optional)"))  # fmt: skip
    pdf.cell(0, 6.5, pdf.t(title), fill=True, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(1.5)
    for name, title, text in texts:
        pdf.use_font(9)
        body_h = pdf.multi_cell(text_w, 4.2, pdf.t(text), dry_run=True, output="HEIGHT")
        pdf.ensure_space(5 + body_h + 3)
        y = pdf.get_y()
        _draw_checkbox(pdf, MARGIN, y + 0.5)
        pdf.set_xy(MARGIN + CHECK + 3, y)
        pdf.use_font(9, bold=True)
        label = f"{title} *" if name in mandatory else title
        pdf.cell(text_w, 5, pdf.t(label), new_x=XPos.LEFT, new_y=YPos.NEXT)
        pdf.use_font(9)
        pdf.multi_cell(text_w, 4.2, pdf.t(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(2.5)


def _draw_signature(pdf: _Form) -> None:
    pdf.ensure_space(34)
    pdf.ln(6)
    y = pdf.get_y() + 8
    half = pdf.epw / 2
    pdf.line(MARGIN, y, MARGIN + half - 8, y)
    pdf.line(MARGIN + half, y, pdf.w - MARGIN, y)
    pdf.use_font(7.5)
    pdf.set_xy(MARGIN, y + 0.8)
    pdf.cell(half - 8, 4, pdf.t(_("Place, date")))
    pdf.set_xy(MARGIN + half, y + 0.8)
    pdf.cell(half, 4, pdf.t(_("Signature")))
    # for the cashier who types the form in later
    y += 9
    pdf.set_draw_color(160, 160, 160)
    pdf.set_dash_pattern(dash=1, gap=1)
    pdf.rect(MARGIN, y, pdf.epw, 10)
    pdf.set_dash_pattern()
    pdf.set_draw_color(90, 90, 90)
    pdf.set_xy(MARGIN + 2, y + 3)
    pdf.use_font(7.5)
    pdf.cell(0, 4, pdf.t(_("For the shop: customer number ______________   entered on ________"
                           "   by ______________")))  # fmt: skip
    pdf.set_xy(MARGIN, y + 12)


def render(store: Store) -> bytes:
    """Return the registration form as PDF bytes (A4)."""
    shop = settings.get(store, "shop.name")
    address = [line.strip() for line in settings.get(store, "shop.address").splitlines()]
    contact = [settings.get(store, "shop.phone"), settings.get(store, "shop.email")]
    mandatory = set(settings.get(store, "customer.mandatory_fields"))
    footer = f"{shop} · {_('Customer registration')} · {local_date(store.clock()):%d.%m.%Y}"
    pdf = _Form(footer)
    pdf.set_title(f"{shop} – {_('Customer registration')}")
    pdf.set_creator("kiosk")
    pdf.add_page()

    pdf.use_font(16, bold=True)
    pdf.cell(0, 8, pdf.t(shop), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.use_font(8.5)
    for line in [*filter(None, address), " · ".join(filter(None, contact))]:
        if line:
            pdf.cell(0, 4, pdf.t(line), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(3)
    pdf.use_font(14, bold=True)
    pdf.cell(0, 8, pdf.t(_("Customer registration")), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.use_font(8.5)
    pdf.multi_cell(
        0, 4,
        pdf.t(_("Please write clearly in block capitals. Fields marked * are required.")),
        new_x=XPos.LMARGIN, new_y=YPos.NEXT,
    )  # fmt: skip
    pdf.ln(2)
    for section in sections(store):
        _draw_section(pdf, section)
        pdf.ln(1)
    _draw_consents(pdf, store, mandatory)
    pdf.use_font(7.5)
    pdf.set_text_color(80, 80, 80)
    pdf.multi_cell(
        0, 3.6,
        pdf.t(_("We use your details only to look after you as a customer. You can ask us at any"
                " time what we store about you, and have it corrected or deleted.")),
        new_x=XPos.LMARGIN, new_y=YPos.NEXT,
    )  # fmt: skip
    pdf.set_text_color(0, 0, 0)
    _draw_signature(pdf)
    return bytes(pdf.output())


def write(store: Store, path: str | Path) -> Path:
    """Write the registration form to ``path`` and return it."""
    path = Path(path)
    data = render(store)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path
