"""Charts drawn on the server as inline SVG: no JavaScript, no third-party code in the page."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

_COLOURS = ("#2f6f9f", "#d9822b", "#4a9a5b", "#b44c4c", "#7a5ea8", "#8c6d46", "#c06aa0")


def bars(items: Sequence[tuple[str, int]], *, title: str = "", width: int = 560) -> Markup:
    """Horizontal bars with the label left and the count right of each bar."""
    row_h, label_w, gap = 26, 180, 6
    height = max(1, len(items)) * row_h + 10
    top = max((v for _l, v in items), default=0) or 1
    total = sum(v for _l, v in items) or 1
    span = width - label_w - 70
    parts = [
        (f'<svg class="chart" role="img" xmlns="http://www.w3.org/2000/svg" width="{width}"'
         f' height="{height}" viewBox="0 0 {width} {height}"><title>{escape(title)}</title>')
    ]
    for i, (label, value) in enumerate(items):
        y = 5 + i * row_h
        w = round(span * value / top)
        pct = round(100 * value / total)
        parts.append(
            f'<text x="{label_w - 8}" y="{y + row_h / 2 + 4}" text-anchor="end">'
            f"{escape(str(label)[:28])}</text>"
            f'<rect class="bar" x="{label_w}" y="{y + gap / 2}" width="{w}" height="{row_h - gap}"'
            f' fill="{_COLOURS[i % len(_COLOURS)]}"><title>{escape(label)}: {value}</title></rect>'
            f'<text x="{label_w + w + 6}" y="{y + row_h / 2 + 4}">{value} ({pct} %)</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def columns(items: Sequence[tuple[str, int]], *, title: str = "", width: int = 640,
            height: int = 200) -> Markup:  # fmt: skip
    """Vertical columns over time (one per day); every few labels shown under the axis."""
    n = max(1, len(items))
    top = max((v for _l, v in items), default=0) or 1
    base, left = height - 24, 34
    step = (width - left - 6) / n
    every = max(1, n // 8)
    parts = [
        (f'<svg class="chart" role="img" xmlns="http://www.w3.org/2000/svg" width="{width}"'
         f' height="{height}" viewBox="0 0 {width} {height}"><title>{escape(title)}</title>'
         f'<line x1="{left}" y1="{base}" x2="{width}" y2="{base}" stroke="#999"/>'
         f'<text x="{left - 4}" y="14" text-anchor="end">{top}</text>'
         f'<text x="{left - 4}" y="{base}" text-anchor="end">0</text>')
    ]
    for i, (label, value) in enumerate(items):
        h = round((base - 10) * value / top)
        x = left + i * step
        parts.append(
            f'<rect class="bar" x="{x + 1:.1f}" y="{base - h}" width="{max(1.0, step - 2):.1f}"'
            f' height="{h}" fill="{_COLOURS[0]}"><title>{escape(label)}: {value}</title></rect>'
        )
        if i % every == 0:
            parts.append(
                f'<text x="{x + step / 2:.1f}" y="{height - 6}" text-anchor="middle"'
                f' class="axis">{escape(label)}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))
