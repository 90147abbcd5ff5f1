"""Charts as inline SVG, drawn on the server: a line chart, a heatmap and horizontal bars.

No script and no external host: the page carries the picture itself, it prints, and a test can count
its points and cells. Every text that comes from data is escaped; every mark has a <title> that a
browser shows on hover and a screen reader reads.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

# The page's accent (app.css --accent) and a pale end for scales.
ACCENT = (36, 88, 214)
PALE = (238, 243, 253)
FONT = 'font-family="system-ui, sans-serif" font-size="11"'


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]  # one per label; None leaves a gap
    css_class: str = "current"  # "current" (solid, accent) or "previous" (dashed, grey)


def compact(value: float) -> str:
    """1234567 → 1.2M, 45300 → 45.3k, 12.5 → 12.5: axis labels that fit."""
    size = abs(value)
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if size >= limit:
            return f"{value / limit:.1f}".rstrip("0").rstrip(".") + suffix
    return f"{value:.1f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))


def axis(value: float, lines: int = 4) -> tuple[float, float]:
    """A round top and step for an axis from zero to `value`: the step is 1, 2 or 5 × 10ⁿ, at most
    `lines` steps up to the top (7400 → 8000 in steps of 2000; 230 → 300 in steps of 100)."""
    if value <= 0:
        return 1.0, 0.25
    rough = value / lines
    power = 10 ** math.floor(math.log10(rough))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= rough)
    return step * math.ceil(value / step - 1e-9), step


def _colour(share: float) -> str:
    share = min(max(share, 0.0), 1.0)
    r, g, b = (round(p + (a - p) * share) for p, a in zip(PALE, ACCENT, strict=True))
    return f"rgb({r},{g},{b})"


def line_chart(
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    label: str,
    width: int = 640,
    height: int = 220,
    format_value: Callable[[float], str] = compact,
) -> SafeString:
    """Lines over shared x labels, y from zero to a round top, four grid lines, a dot per value."""
    left, right, top, bottom = 48, 12, 12, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for s in series for v in s.values if v is not None]
    y_top, y_step = axis(max(values, default=0.0))
    count = max(len(labels), 1)

    def x(i: int) -> float:
        return left + (plot_w * (i + 0.5) / count)

    def y(v: float) -> float:
        return top + plot_h * (1 - v / y_top)

    parts = [
        f'<svg class="chart line-chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(label)}" data-points="{len(values)}" preserveAspectRatio="xMidYMid meet">',
        f"<title>{escape(label)}</title>",
    ]
    for step in range(round(y_top / y_step) + 1):
        value = y_step * step
        parts.append(
            f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
            'stroke="#dfe3ea" stroke-width="1"/>'
            f'<text x="{left - 6}" y="{y(value) + 4:.1f}" text-anchor="end" fill="#677084" {FONT}>'
            f"{escape(format_value(value))}</text>"
        )
    # As many x labels as fit side by side (about 64 px each), spread evenly.
    every = max(1, math.ceil(len(labels) / max(plot_w // 64, 1)))
    for i, text in enumerate(labels):
        if i % every == 0:
            parts.append(
                f'<text x="{x(i):.1f}" y="{height - 8}" text-anchor="middle" fill="#677084" {FONT}>'
                f"{escape(text)}</text>"
            )
    for s in series:
        colour, dash = ("#2458d6", "") if s.css_class == "current" else ("#9aa3b5", ' stroke-dasharray="5 4"')
        runs: list[list[str]] = [[]]
        for i, v in enumerate(s.values):
            if v is None:
                runs.append([])
            else:
                runs[-1].append(f"{x(i):.1f},{y(v):.1f}")
        for run in runs:
            if len(run) > 1:
                parts.append(
                    f'<polyline class="line {escape(s.css_class)}" fill="none" stroke="{colour}" '
                    f'stroke-width="2"{dash} points="{" ".join(run)}"/>'
                )
        for i, v in enumerate(s.values):
            if v is not None:
                parts.append(
                    f'<circle class="point {escape(s.css_class)}" cx="{x(i):.1f}" cy="{y(v):.1f}" r="3" '
                    f'fill="{colour}"><title>{escape(s.name)}, {escape(labels[i])}: '
                    f"{escape(format_value(v))}</title></circle>"
                )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 (every data text above is escaped)


@dataclass(frozen=True)
class Cell:
    shade: float  # 0 … 1: how dark the cell is
    text: str  # shown in the cell
    title: str  # shown on hover


def heatmap(
    row_labels: Sequence[str],
    column_labels: Sequence[str],
    cells: Sequence[Sequence[Cell | None]],
    *,
    label: str,
    css_class: str = "heatmap",
    cell_width: int = 52,
    cell_height: int = 26,
    row_label_width: int = 84,
) -> SafeString:
    """A grid of shaded cells with row and column headings; None draws nothing (a month not reached)."""
    header = 22
    width = row_label_width + cell_width * len(column_labels)
    height = header + cell_height * len(row_labels)
    drawn = sum(1 for row in cells for cell in row if cell is not None)
    parts = [
        f'<svg class="chart {escape(css_class)}" viewBox="0 0 {width} {height}" width="{width}" '
        f'role="img" aria-label="{escape(label)}" data-cells="{drawn}">',
        f"<title>{escape(label)}</title>",
    ]
    for j, text in enumerate(column_labels):
        parts.append(
            f'<text x="{row_label_width + cell_width * (j + 0.5):.1f}" y="15" text-anchor="middle" '
            f'fill="#677084" {FONT}>{escape(text)}</text>'
        )
    for i, (text, row) in enumerate(zip(row_labels, cells, strict=True)):
        y0 = header + cell_height * i
        parts.append(
            f'<text x="{row_label_width - 6}" y="{y0 + cell_height / 2 + 4:.1f}" text-anchor="end" '
            f'fill="#1d2330" {FONT}>{escape(text)}</text>'
        )
        for j, cell in enumerate(row):
            if cell is None:
                continue
            x0 = row_label_width + cell_width * j
            ink = "#fff" if cell.shade > 0.55 else "#1d2330"
            parts.append(
                f'<g class="cell"><rect x="{x0 + 1}" y="{y0 + 1}" width="{cell_width - 2}" '
                f'height="{cell_height - 2}" rx="2" fill="{_colour(cell.shade)}"/>'
                f'<text x="{x0 + cell_width / 2:.1f}" y="{y0 + cell_height / 2 + 4:.1f}" '
                f'text-anchor="middle" fill="{ink}" {FONT}>{escape(cell.text)}</text>'
                f"<title>{escape(cell.title)}</title></g>"
            )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 (every data text above is escaped)


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    text: str  # the figure written after the bar


def bars(
    items: Sequence[Bar], *, label: str, width: int = 420, bar_height: int = 22, label_width: int = 110
) -> SafeString:
    """Horizontal bars from a common left edge, the longest filling the width: a funnel when the items
    come in stage order."""
    gap, text_room = 6, 90
    height = max(len(items), 1) * (bar_height + gap)
    top = max((item.value for item in items), default=0.0) or 1.0
    room = width - label_width - text_room
    parts = [
        f'<svg class="chart bars" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}" '
        f'data-bars="{len(items)}">',
        f"<title>{escape(label)}</title>",
    ]
    for i, item in enumerate(items):
        y0 = i * (bar_height + gap)
        length = max(room * item.value / top, 1.0 if item.value else 0.0)
        parts.append(
            f'<g class="bar"><text x="{label_width - 6}" y="{y0 + bar_height / 2 + 4:.1f}" text-anchor="end" '
            f'fill="#1d2330" {FONT}>{escape(item.label)}</text>'
            f'<rect x="{label_width}" y="{y0}" width="{length:.1f}" height="{bar_height}" rx="2" '
            f'fill="{_colour(0.35 + 0.65 * item.value / top)}"/>'
            f'<text x="{label_width + length + 6:.1f}" y="{y0 + bar_height / 2 + 4:.1f}" fill="#1d2330" '
            f"{FONT}>{escape(item.text)}</text><title>{escape(item.label)}: {escape(item.text)}</title></g>"
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 (every data text above is escaped)
