"""Charts as inline SVG, drawn on the server from figures the read models gave: no script, no
library. Each series has its own fill pattern as well as its own shade, every bar carries its
number, and each chart's page shows the same numbers as a table: readable without colour."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from html import escape

from markupsafe import Markup

from api.console.formatting import money

# Patterns that tell series apart in grey print: solid, diagonal hatch, dots, open.
PATTERNS = ("solid", "hatch", "dots", "open")
SHADES = ("#1f4e79", "#2e75b6", "#7f6000", "#444444")
FONT = 'font-family="sans-serif" font-size="12"'


def _defs(prefix: str) -> str:
    return (
        "<defs>"
        f'<pattern id="{prefix}-hatch" width="6" height="6" patternUnits="userSpaceOnUse"'
        ' patternTransform="rotate(45)">'
        '<rect width="6" height="6" fill="#ffffff"/>'
        f'<rect width="3" height="6" fill="{SHADES[1]}"/>'
        "</pattern>"
        f'<pattern id="{prefix}-dots" width="5" height="5" patternUnits="userSpaceOnUse">'
        f'<rect width="5" height="5" fill="#ffffff"/><circle cx="2.5" cy="2.5" r="1.6"'
        f' fill="{SHADES[2]}"/></pattern>'
        "</defs>"
    )


def _fill(prefix: str, index: int) -> str:
    pattern = PATTERNS[index % len(PATTERNS)]
    if pattern == "solid":
        return f'fill="{SHADES[0]}"'
    if pattern == "open":
        return f'fill="#ffffff" stroke="{SHADES[3]}" stroke-width="1.5"'
    return f'fill="url(#{prefix}-{pattern})" stroke="{SHADES[3]}" stroke-width="0.5"'


def _legend(prefix: str, names: list[str], x: int, y: int) -> str:
    parts = []
    for index, name in enumerate(names):
        left = x + index * 120
        parts.append(
            f'<rect x="{left}" y="{y - 10}" width="14" height="12" {_fill(prefix, index)}/>'
            f'<text x="{left + 20}" y="{y}" {FONT}>{escape(name)}</text>'
        )
    return "".join(parts)


def grouped_bars(
    prefix: str, title: str, categories: list[str], series: list[tuple[str, list[int]]]
) -> Markup:
    """Vertical bars, one group per category (a month), one bar per series in it."""
    left, top, height = 40, 40, 200
    group_width = max(24, 12 * len(series) + 12)
    width = left + group_width * len(categories) + 20
    peak = max([1, *(v for _, values in series for v in values)])
    bar = (group_width - 12) / max(1, len(series))
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}"'
        f' height="{top + height + 50}" viewBox="0 0 {width} {top + height + 50}">',
        f"<title>{escape(title)}</title>",
        _defs(prefix),
        _legend(prefix, [name for name, _ in series], left, 16),
        f'<line x1="{left}" y1="{top + height}" x2="{width - 10}" y2="{top + height}"'
        ' stroke="#000000"/>',
    ]
    for i, category in enumerate(categories):
        x0 = left + i * group_width + 6
        for j, (name, values) in enumerate(series):
            value = values[i]
            h = round(height * value / peak, 1)
            x = round(x0 + j * bar, 1)
            out.append(
                f'<rect x="{x}" y="{top + height - h}" width="{round(bar - 1, 1)}" height="{h}"'
                f" {_fill(prefix, j)}><title>{escape(category)} {escape(name)}: {value}</title>"
                "</rect>"
            )
            if value:
                out.append(
                    f'<text x="{x + bar / 2:.1f}" y="{top + height - h - 3}" text-anchor="middle"'
                    f' font-family="sans-serif" font-size="10">{value}</text>'
                )
        out.append(
            f'<text x="{x0 + (group_width - 12) / 2:.1f}" y="{top + height + 16}"'
            f' text-anchor="middle" {FONT}>{escape(category[5:])}月</text>'
        )
    out.append("</svg>")
    return Markup("".join(out))


@dataclass(frozen=True)
class Bar:
    label: str
    amount: str  # a decimal string
    group: int  # which pattern: 0 income, 1 shares up and down, 2 spending


def horizontal_bars(
    prefix: str,
    title: str,
    bars: list[Bar],
    groups: list[str],
    written: Callable[[str], str] = money,
) -> Markup:
    """One horizontal bar per figure, its amount (as `written` writes it) at its end."""
    label_width, bar_width, row = 190, 420, 26
    height = 40 + row * max(1, len(bars))
    width = label_width + bar_width + 130
    peak = max([Decimal("0.01"), *(abs(Decimal(b.amount)) for b in bars)])
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}"'
        f' viewBox="0 0 {width} {height}">',
        f"<title>{escape(title)}</title>",
        _defs(prefix),
        _legend(prefix, groups, 10, 16),
    ]
    for i, item in enumerate(bars):
        y = 34 + i * row
        length = round(float(bar_width * abs(Decimal(item.amount)) / peak), 1)
        out.append(
            f'<text x="{label_width - 6}" y="{y + 14}" text-anchor="end" {FONT}>'
            f"{escape(item.label)}</text>"
            f'<rect x="{label_width}" y="{y + 2}" width="{length}" height="{row - 8}"'
            f" {_fill(prefix, item.group)}><title>{escape(item.label)}: {written(item.amount)}"
            "</title></rect>"
            f'<text x="{label_width + length + 6}" y="{y + 14}" {FONT}>'
            f"{escape(written(item.amount))}</text>"
        )
    out.append("</svg>")
    return Markup("".join(out))
