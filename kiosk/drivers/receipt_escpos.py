"""Print a receipt model (``kiosk.engine.receipt.Receipt``) on an ESC/POS printer.

Interface::

    render(model, printer, layout=Layout()) -> None      # write onto an Escpos instance
    to_bytes(model, layout=Layout(), profile=None) -> bytes   # the same job as bytes
    Layout.from_config({"columns": 48, "logo": "/etc/kiosk/logo.png", "codes": "barcode"})

``printer`` is any python-escpos ``Escpos`` instance (Serial, Usb, Network, File, Dummy);
opening it, queueing jobs and reading its status belong to ``kiosk.drivers.printer``.
``layout`` holds the device-side choices from the printer's config: characters per line
(42 for most 80 mm printers in font A, 48 for those with a 576-dot head), the logo file,
whether codes print as QR or barcode, the code page and whether to cut. ``render`` only
writes bytes: it never reads the store, and the same model always gives the same bytes
(the golden-file tests rely on that).

Text is sent in one explicitly chosen code page (CP858 by default: CP850 with "€" at 0xD5,
so umlauts, ß and € all print); characters outside it print as "?". A printer profile
without that page falls back to python-escpos choosing a page per character. The job starts with
ESC @ so a previous job's styles or code page cannot leak into this receipt.
"""

from __future__ import annotations

import logging
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from PIL import Image

from kiosk.engine import receipt as rc
from kiosk.engine.receipt import Receipt
from kiosk.i18n import _

_LOGGER = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parent.parent / "assets"
DEFAULT_LOGO = ASSETS / "logo.png"
CODE_STYLES = ("qr", "barcode")


@dataclass(frozen=True)
class Layout:
    columns: int = 42  # characters per line in font A: 42 or 48
    logo: Path | None = DEFAULT_LOGO  # None: no logo; a missing file is skipped too
    logo_max_dots: int = 384  # widest logo in printer dots (fits 58 mm heads too)
    codes: str = "qr"  # how gift card / voucher codes print: qr or barcode
    qr_size: int = 5  # module size in dots (1-16)
    codepage: str = "CP858"
    cut: bool = True

    def __post_init__(self) -> None:
        if self.columns not in (32, 42, 48, 56, 64):
            raise ValueError(f"unsupported paper width of {self.columns} characters")
        if self.codes not in CODE_STYLES:
            raise ValueError(f"codes must be one of {CODE_STYLES}, not {self.codes!r}")
        if not 1 <= self.qr_size <= 16:
            raise ValueError("qr_size must be 1 to 16 dots")

    @classmethod
    def from_config(cls, options: Mapping[str, Any]) -> Layout:
        """A layout from a printer's config table, e.g. ``{"columns": 48, "logo": ""}``
        (``logo = ""`` means no logo). Unknown keys are refused, not ignored."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValueError(f"unknown receipt layout option(s): {', '.join(unknown)}")
        values = dict(options)
        if "logo" in values:
            values["logo"] = Path(values["logo"]) if values["logo"] else None
        return cls(**values)


def _logo_image(path: Path, max_dots: int) -> Image.Image:
    with Image.open(path) as img:
        img = img.convert("RGBA")
        # transparent pixels print as paper, not as black
        flat = Image.new("RGB", img.size, "white")
        flat.paste(img, mask=img.getchannel("A"))
    if flat.width > max_dots:
        flat = flat.resize((max_dots, max(1, round(flat.height * max_dots / flat.width))),
                           Image.Resampling.LANCZOS)  # fmt: skip
    return flat


# typographic characters shop owners type, which CP858 lacks
_PLAIN = str.maketrans({"–": "-", "—": "-", "„": '"', "“": '"', "”": '"', "‚": "'", "‘": "'",
                        "’": "'", "…": "...", "\u00a0": " "})


def plain(text: str) -> str:
    return text.translate(_PLAIN)


def columns(left: str, right: str, width: int) -> list[str]:
    """``left`` wrapped to the room ``right`` leaves; ``right`` flush right on the first row."""
    room = max(8, width - len(right) - 1)
    rows = textwrap.wrap(left, room) or [""]
    first = rows[0].ljust(width - len(right)) + right
    return [first, *rows[1:]]


class _Slip:
    """A tiny writer over an Escpos instance that keeps styles explicit."""

    def __init__(self, printer, width: int) -> None:
        self.p = printer
        self.width = width
        self.current: tuple[str, bool, bool] | None = None

    def style(self, *, align: str = "left", bold: bool = False, big: bool = False) -> None:
        # only changes are sent: a receipt is mostly plain left-aligned rows
        if (align, bold, big) != self.current:
            self.p.set(align=align, bold=bold, normal_textsize=not big, double_height=big)
            self.current = (align, bold, big)

    def unknown(self) -> None:
        """Images and barcodes may change alignment behind our back."""
        self.current = None

    def text(self, text: str, **style) -> None:
        self.style(**style)
        for row in textwrap.wrap(plain(text), self.width) or [""]:
            self.p.textln(row)

    def row(self, left: str, right: str, *, bold: bool = False, big: bool = False) -> None:
        self.style(bold=bold, big=big)
        for text in columns(plain(left), plain(right), self.width):
            self.p.textln(text)

    def rule(self, char: str = "-") -> None:
        self.style()
        self.p.textln(char * self.width)


def _code(slip: _Slip, code: rc.Code, layout: Layout) -> None:
    p = slip.p
    for i, text in enumerate(rc.code_lines(code)):
        slip.text(text, align="center", bold=i == 0)
    slip.style(align="center")
    if layout.codes == "qr":
        p.qr(code.code, size=layout.qr_size)
        slip.unknown()
        slip.text(code.code, align="center")
    else:
        # CODE128 code set C packs two digits into one byte (0-99): a 16-digit card number
        # fits a 58 mm roll; anything else goes as set B (ASCII)
        if code.code.isdigit() and len(code.code) % 2 == 0:
            data = "{C" + "".join(chr(int(code.code[i:i + 2])) for i in range(0, len(code.code), 2))
        else:
            data = "{B" + code.code
        p.barcode(data, "CODE128", height=80, width=2, pos="OFF", function_type="B")
        slip.unknown()
        slip.text(code.code, align="center")


def render(model: Receipt, printer, layout: Layout = Layout()) -> None:  # noqa: B008 - frozen
    """Write ``model`` to ``printer`` (a python-escpos ``Escpos``) and cut."""
    p = printer
    w = layout.columns
    slip = _Slip(p, w)
    p.hw("INIT")
    # ESC @ resets the printer's code page; make MagicEncode forget the page it thinks is
    # active so the ESC t for ours is always sent.
    p.magic.encoding = None
    try:
        p.charcode(layout.codepage)
    except LookupError:
        # the printer's profile lacks the page: let python-escpos switch pages per character
        _LOGGER.warning("printer profile %s has no code page %s; choosing pages per character",
                        p.profile.profile_data.get("name"), layout.codepage)  # fmt: skip
        p.charcode("AUTO")

    shop = model.shop
    if layout.logo is not None and Path(layout.logo).is_file():
        slip.style(align="center")
        p.image(_logo_image(Path(layout.logo), layout.logo_max_dots))
        slip.unknown()
    slip.text(shop.name, align="center", bold=True, big=True)
    for text in (*shop.address, shop.phone, shop.email):
        if text:
            slip.text(text, align="center")
    if shop.vat_id:
        slip.text(_("VAT ID {id}").format(id=shop.vat_id), align="center")
    if model.copy:
        slip.text(f"*** {rc.copy_mark()} ***", align="center", bold=True, big=True)
    slip.rule()
    slip.row(f"{rc.title(model)} {model.receipt_no}", rc.datetime_text(model.completed_at),
             bold=True)  # fmt: skip
    for ref in model.refers_to:
        slip.text(_("Return of receipt {no}").format(no=ref))
    slip.rule()

    for ln in model.lines:
        slip.row(ln.name, f"{rc.money(ln.total_cents)} {ln.vat_letter or ' '}")
        if ln.qty != 1:
            slip.text(f"  {rc.qty_text(ln)}")
        for label, cents in ln.discounts:
            slip.row(f"  {label}", f"{rc.money(-cents)}  ")
        if ln.note:
            slip.text(f"  {ln.note}")
    slip.rule()
    slip.row(_("Total"), rc.money(model.total_cents) + "  ", bold=True, big=True)
    if model.discount_cents:
        slip.row(_("You saved"), rc.money(model.discount_cents) + "  ")
    for pay in model.payments:
        slip.row(f"{pay.label} ({pay.detail})" if pay.detail else pay.label,
                 rc.money(pay.tendered_cents or pay.amount_cents) + "  ")  # fmt: skip
    if model.change_cents:
        slip.row(_("Change"), rc.money(model.change_cents) + "  ", bold=True)

    if model.vat:
        slip.rule()
        cw = (w - 8) // 3  # three money columns after "A 19 % "
        head = f"{_('VAT'):<8}" + "".join(f"{h:>{cw}}" for h in (_("Net"), _("VAT"), _("Gross")))
        slip.text(head)
        for v in model.vat:
            label = f"{v.letter} {rc.percent(v.rate_bp)}"
            nums = (rc.money(v.net_cents)[:-2], rc.money(v.vat_cents)[:-2],
                    rc.money(v.gross_cents)[:-2])  # fmt: skip
            slip.text(f"{label:<8}" + "".join(f"{n:>{cw}}" for n in nums))

    if model.customer or model.points:
        slip.rule()
    if model.customer:
        slip.text(_("Customer: {name}").format(name=model.customer))
    if model.card_no and model.points:
        slip.text(_("Card {no}").format(no=model.card_no))
    if model.points:
        for label, value, bold in rc.points_rows(model.points):
            slip.row(label, value, bold=bold)

    for code in model.codes:
        slip.rule()
        _code(slip, code, layout)
    if model.footer:
        slip.rule()
        for text in model.footer:
            slip.text(text, align="center")
    if model.copy:
        slip.text(f"*** {rc.copy_mark()} ***", align="center", bold=True)
    if model.voucher:
        slip.style()
        p.ln()
        slip.rule("=")
        _code(slip, model.voucher, layout)
    slip.style()
    if layout.cut:
        p.cut()


def to_bytes(model: Receipt, layout: Layout = Layout(),  # noqa: B008 - frozen
             profile: str | None = None) -> bytes:  # fmt: skip
    """The job as bytes (rendered into a python-escpos Dummy with the printer's profile), for
    a print queue that sends bytes later."""
    from escpos.printer import Dummy

    dummy = Dummy(profile=profile or "default")
    render(model, dummy, layout)
    return dummy.output
