"""Small server-side charts: bar and line charts as inline SVG strings.

Pure Python, no Django and no JavaScript: the console draws its charts where it renders its
pages, and nothing is loaded from a CDN. Every piece of text that reaches the SVG (titles,
labels, series names) passes through html.escape, because labels are data (rule names,
project names, model names) and data is never trusted.

Each chart is an <svg role="img"> with a <title> and a <desc> listing the numbers, so a screen
reader gets the data and not just "image".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

PALETTE = ("#2457d6", "#d9822b", "#1e7a3a", "#b3261e", "#7a4fd6", "#5b6475")
AXIS = "#5b6475"
GRID = "#e4e7ee"
FONT = 'font-family="system-ui, sans-serif" font-size="11"'


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 10_000:
        return f"{value / 1000:.0f}k"
    if abs(value) >= 1000:
        return f"{value / 1000:.1f}k".replace(".0k", "k")
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.2f}".rstrip("0").rstrip(".")


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high]: steps of 1, 2, 2.5 or 5 times a power of ten."""
    if not math.isfinite(low) or not math.isfinite(high):
        return [0.0, 1.0]
    if high <= low:
        high = low + 1.0
    raw = (high - low) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    start = math.floor(low / step) * step
    # Up to the first tick at or above `high`, so the top bar or point is inside the axis.
    ticks = [round(start + i * step, 10) for i in range(count * 3)]
    top = next(i for i, tick in enumerate(ticks) if tick >= high - 1e-9 * step)
    return ticks[: top + 1]


def _frame(chart_id: str, title: str, desc: str, width: int, height: int, body: list[str]) -> str:
    cid = _e(chart_id)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-labelledby="{cid}-t {cid}-d" data-chart="{cid}">'
        f'<title id="{cid}-t">{_e(title)}</title><desc id="{cid}-d">{_e(desc)}</desc>'
        + "".join(body)
        + "</svg>"
    )


def _empty(chart_id: str, title: str, width: int, height: int) -> str:
    return _frame(
        chart_id,
        title,
        "No data yet.",
        width,
        height,
        [
            f'<text x="{width / 2:.0f}" y="{height / 2:.0f}" text-anchor="middle" fill="{AXIS}" {FONT}>'
            "No data yet</text>"
        ],
    )


def _legend(names: Sequence[str], x: float, y: float) -> list[str]:
    parts = []
    for i, name in enumerate(names):
        colour = PALETTE[i % len(PALETTE)]
        parts.append(
            f'<rect x="{x:.1f}" y="{y - 8:.1f}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{x + 14:.1f}" y="{y + 1:.1f}" fill="#1d2330" {FONT}>{_e(name)}</text>'
        )
        x += 24 + 7 * len(str(name))
    return parts


def _y_axis(
    ticks: list[float], left: float, right: float, top: float, bottom: float, y_label: str
) -> tuple[list[str], float, float]:
    low, high = ticks[0], ticks[-1]

    def y_of(value: float) -> float:
        return bottom - (value - low) / (high - low) * (bottom - top)

    parts = []
    for tick in ticks:
        y = y_of(tick)
        parts.append(f'<line x1="{left:.1f}" x2="{right:.1f}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>')
        parts.append(
            f'<text x="{left - 6:.1f}" y="{y + 4:.1f}" text-anchor="end" fill="{AXIS}" {FONT}>'
            f"{_e(_fmt(tick))}</text>"
        )
    parts.append(f'<line x1="{left:.1f}" x2="{left:.1f}" y1="{top:.1f}" y2="{bottom:.1f}" stroke="{AXIS}"/>')
    parts.append(
        f'<line x1="{left:.1f}" x2="{right:.1f}" y1="{bottom:.1f}" y2="{bottom:.1f}" stroke="{AXIS}"/>'
    )
    if y_label:
        parts.append(
            f'<text transform="translate(12 {(top + bottom) / 2:.1f}) rotate(-90)" text-anchor="middle" '
            f'fill="{AXIS}" {FONT}>{_e(y_label)}</text>'
        )
    return parts, low, high


def _x_labels(labels: Sequence[str], centres: list[float], bottom: float, max_labels: int) -> list[str]:
    every = max(1, math.ceil(len(labels) / max_labels))
    parts = []
    last = len(labels) - 1
    for i, (label, x) in enumerate(zip(labels, centres, strict=True)):
        # Counted from the end, so the latest label always shows and never crowds another.
        if (last - i) % every:
            continue
        parts.append(
            f'<text x="{x:.1f}" y="{bottom + 15:.1f}" text-anchor="middle" fill="{AXIS}" {FONT}>'
            f"{_e(label)}</text>"
        )
    return parts


def _describe(labels: Sequence[str], series: Mapping[str, Sequence[float | None]]) -> str:
    rows = []
    for name, values in series.items():
        points = ", ".join(
            f"{label}: {'n/a' if v is None else _fmt(v)}" for label, v in zip(labels, values, strict=True)
        )
        rows.append(f"{name}: {points}")
    return "; ".join(rows)


def bar_chart(
    *,
    chart_id: str,
    title: str,
    labels: Sequence[str],
    series: Mapping[str, Sequence[float]],
    y_label: str = "",
    width: int = 560,
    height: int = 220,
    max_labels: int = 10,
) -> str:
    """Vertical grouped bars: one group per label, one bar per series."""
    if not labels or not series or all(not any(v) for v in series.values()):
        return _empty(chart_id, title, width, height)
    left, right, top, bottom = 48.0, width - 8.0, 26.0, height - 24.0
    peak = max(max(values) for values in series.values())
    ticks = nice_ticks(0.0, float(peak) or 1.0)
    body, low, high = _y_axis(ticks, left, right, top, bottom, y_label)
    group = (right - left) / len(labels)
    bar = max(1.0, group * 0.8 / len(series))
    centres = []
    for i, _label in enumerate(labels):
        x0 = left + i * group + group * 0.1
        centres.append(left + i * group + group / 2)
        for j, (name, values) in enumerate(series.items()):
            value = float(values[i])
            h = (value - low) / (high - low) * (bottom - top)
            body.append(
                f'<rect x="{x0 + j * bar:.1f}" y="{bottom - h:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{PALETTE[j % len(PALETTE)]}"><title>{_e(f"{name} {labels[i]}: {_fmt(value)}")}'
                "</title></rect>"
            )
    body += _x_labels(labels, centres, bottom, max_labels)
    if len(series) > 1:
        body += _legend(list(series), left, 12)
    return _frame(chart_id, title, _describe(labels, series), width, height, body)


def hbar_chart(
    *,
    chart_id: str,
    title: str,
    items: Sequence[tuple[str, float]],
    width: int = 560,
    bar_height: int = 18,
    label_width: int = 170,
) -> str:
    """Horizontal bars with their labels on the left: for long category names (rule names)."""
    height = 30 + len(items) * (bar_height + 6)
    if not items or not any(value for _, value in items):
        return _empty(chart_id, title, width, 120)
    left, right, top = float(label_width), width - 48.0, 8.0
    peak = max(value for _, value in items) or 1.0
    body = [f'<line x1="{left:.1f}" x2="{left:.1f}" y1="{top:.1f}" y2="{height - 20:.1f}" stroke="{AXIS}"/>']
    for i, (label, value) in enumerate(items):
        y = top + i * (bar_height + 6)
        w = value / peak * (right - left)
        shown = label if len(label) <= 28 else label[:27] + "…"
        body.append(
            f'<text x="{left - 6:.1f}" y="{y + bar_height - 5:.1f}" text-anchor="end" fill="#1d2330" {FONT}>'
            f"{_e(shown)}</text>"
            f'<rect x="{left:.1f}" y="{y:.1f}" width="{max(w, 1):.1f}" height="{bar_height}" '
            f'fill="{PALETTE[0]}"><title>{_e(f"{label}: {_fmt(value)}")}</title></rect>'
            f'<text x="{left + max(w, 1) + 4:.1f}" y="{y + bar_height - 5:.1f}" fill="{AXIS}" {FONT}>'
            f"{_e(_fmt(value))}</text>"
        )
    desc = "; ".join(f"{label}: {_fmt(value)}" for label, value in items)
    return _frame(chart_id, title, desc, width, height, body)


def line_chart(
    *,
    chart_id: str,
    title: str,
    labels: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    y_label: str = "",
    y_min: float | None = None,
    y_max: float | None = None,
    width: int = 560,
    height: int = 220,
    max_labels: int = 10,
) -> str:
    """Lines over shared x labels. A None value is a gap: the line breaks there."""
    values = [v for vs in series.values() for v in vs if v is not None]
    if not labels or not values:
        return _empty(chart_id, title, width, height)
    left, right, top, bottom = 48.0, width - 28.0, 26.0, height - 24.0
    low = min(values) if y_min is None else y_min
    high = max(values) if y_max is None else y_max
    ticks = nice_ticks(low, high if high > low else low + 1)
    body, t_low, t_high = _y_axis(ticks, left, right, top, bottom, y_label)
    step = (right - left) / max(len(labels) - 1, 1)
    centres = [left + i * step if len(labels) > 1 else (left + right) / 2 for i in range(len(labels))]

    def y_of(value: float) -> float:
        return bottom - (value - t_low) / (t_high - t_low) * (bottom - top)

    for j, (name, points) in enumerate(series.items()):
        colour = PALETTE[j % len(PALETTE)]
        segment: list[str] = []
        segments = []
        for x, value in zip(centres, points, strict=True):
            if value is None:
                if segment:
                    segments.append(segment)
                segment = []
                continue
            segment.append(f"{x:.1f},{y_of(value):.1f}")
            body.append(
                f'<circle cx="{x:.1f}" cy="{y_of(value):.1f}" r="3" fill="{colour}">'
                f"<title>{_e(f'{name}: {_fmt(value)}')}</title></circle>"
            )
        if segment:
            segments.append(segment)
        for points_ in segments:
            if len(points_) > 1:
                body.append(
                    f'<polyline points="{" ".join(points_)}" fill="none" stroke="{colour}" stroke-width="2"/>'
                )
    body += _x_labels(labels, centres, bottom, max_labels)
    body += _legend(list(series), left, 12)
    return _frame(chart_id, title, _describe(labels, series), width, height, body)
