"""Charts drawn on the server as inline SVG: no JavaScript library, nothing fetched.

Each function returns markup for one ``<svg class="chart …">``: line charts for time series
(gaps where a bucket has no data), stacked bars per time bucket, horizontal bars and a
funnel. Colours come from CSS classes (``c0``…``c7`` or ``st-<status>``), text is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from markupsafe import Markup, escape

PAD_L, PAD_R, PAD_T, PAD_B = 56, 12, 22, 26


@dataclass
class Series:
    name: str
    points: list[tuple[datetime, float | None]]
    css: str = ""


def _nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(v))
    for m in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if v <= m * exp:
            return m * exp
    return 10 * exp


def fmt_number(v: float) -> str:
    a = abs(v)
    for threshold, div, suffix in ((1e9, 1e9, "G"), (1e6, 1e6, "M"), (1e4, 1e3, "k")):
        if a >= threshold:
            return f"{v / div:.1f}".rstrip("0").rstrip(".") + suffix
    if a >= 100 or v == int(v):
        return f"{v:.0f}"
    return f"{v:.2f}".rstrip("0").rstrip(".")


TICK_STEPS = [60 * m for m in (1, 2, 5, 10, 15, 30)] + [3600 * h for h in (1, 2, 3, 6, 12)] + [86400, 2 * 86400]


def time_ticks(x0: datetime, x1: datetime, most: int = 7) -> list[datetime]:
    """Round times (UTC multiples of 1 min … 2 days) inside [x0, x1], at most `most` of them."""
    span = (x1 - x0).total_seconds()
    step = next((st for st in TICK_STEPS if span / st <= most), TICK_STEPS[-1])
    first = math.ceil(x0.timestamp() / step) * step
    out = []
    t = first
    while t <= x1.timestamp():
        out.append(datetime.fromtimestamp(t, tz=x0.tzinfo))
        t += step
    return out


def _fmt_time(t: datetime, span_seconds: float) -> str:
    return t.strftime("%d %b %H:%M" if span_seconds > 2 * 86400 else "%H:%M")


def _frame(width: int, height: int, y_max: float, unit: str, x0: datetime, x1: datetime) -> list[str]:
    out = []
    plot_h = height - PAD_T - PAD_B
    for i in range(5):
        v = y_max * i / 4
        y = PAD_T + plot_h - plot_h * i / 4
        out.append(f'<line class="grid" x1="{PAD_L}" y1="{y:.1f}" x2="{width - PAD_R}" y2="{y:.1f}"/>')
        out.append(
            f'<text class="tick" x="{PAD_L - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(fmt_number(v))}</text>'
        )
    if unit.strip():
        out.append(
            f'<text class="tick unit" x="{PAD_L - 6}" y="{PAD_T - 10}" text-anchor="end">{escape(unit.strip())}</text>'
        )
    span = max((x1 - x0).total_seconds(), 1.0)
    plot_w = width - PAD_L - PAD_R
    for t in time_ticks(x0, x1):
        x = PAD_L + plot_w * (t - x0).total_seconds() / span
        out.append(f'<line class="grid" x1="{x:.1f}" y1="{PAD_T}" x2="{x:.1f}" y2="{height - PAD_B}"/>')
        out.append(
            f'<text class="tick" x="{x:.1f}" y="{height - 8}" text-anchor="middle">{escape(_fmt_time(t, span))}</text>'
        )
    return out


def _empty(width: int, height: int, label: str, message: str) -> Markup:
    return Markup(  # noqa: S704 - every interpolated text is escaped above
        f'<svg class="chart empty" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}">'
        f'<text class="empty-note" x="{width / 2}" y="{height / 2}" text-anchor="middle">{escape(message)}</text>'
        "</svg>"
    )


def _legend(names: Sequence[tuple[str, str]]) -> str:
    items = "".join(
        f'<span class="legend-item"><i class="swatch {escape(css)}"></i>{escape(name)}</span>' for name, css in names
    )
    return f'<div class="legend">{items}</div>'


def line_chart(
    series: Sequence[Series],
    *,
    label: str,
    x_start: datetime,
    x_end: datetime,
    unit: str = "",
    width: int = 960,
    height: int = 240,
    y_max: float | None = None,
) -> Markup:
    values = [v for s in series for _, v in s.points if v is not None]
    if not values:
        return _empty(width, height, label, "no data in this window")
    top = y_max if y_max is not None else _nice_max(max(values))
    span = max((x_end - x_start).total_seconds(), 1.0)
    plot_w, plot_h = width - PAD_L - PAD_R, height - PAD_T - PAD_B

    def xy(t: datetime, v: float) -> tuple[float, float]:
        x = PAD_L + plot_w * min(max((t - x_start).total_seconds() / span, 0.0), 1.0)
        y = PAD_T + plot_h - plot_h * min(max(v / top, 0.0), 1.0)
        return x, y

    parts = [
        f'<svg class="chart line" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}">',
        *_frame(width, height, top, unit, x_start, x_end),
    ]
    for i, s in enumerate(series):
        css = s.css or f"c{i % 8}"
        d: list[str] = []
        pen_up = True
        lonely: list[tuple[float, float]] = []
        pts = sorted(s.points, key=lambda p: p[0])
        for j, (t, v) in enumerate(pts):
            if v is None:
                pen_up = True
                continue
            x, y = xy(t, v)
            d.append(f"{'M' if pen_up else 'L'}{x:.1f},{y:.1f}")
            prev_gap = j == 0 or pts[j - 1][1] is None
            next_gap = j == len(pts) - 1 or pts[j + 1][1] is None
            if prev_gap and next_gap:
                lonely.append((x, y))
            pen_up = False
        if d:
            parts.append(f'<path class="series {escape(css)}" d="{" ".join(d)}"><title>{escape(s.name)}</title></path>')
        for x, y in lonely:  # a single point between gaps: draw it as a dot
            parts.append(f'<circle class="dot {escape(css)}" cx="{x:.1f}" cy="{y:.1f}" r="3"/>')
    parts.append("</svg>")
    return Markup("".join(parts) + _legend([(s.name, s.css or f"c{i % 8}") for i, s in enumerate(series)]))  # noqa: S704 - parts escape every text


def stacked_bars(
    buckets: Sequence[datetime],
    stacks: Mapping[str, Sequence[float]],
    *,
    label: str,
    bucket_seconds: float,
    unit: str = "",
    width: int = 960,
    height: int = 240,
    css: dict[str, str] | None = None,
) -> Markup:
    totals = [sum(vals[i] for vals in stacks.values()) for i in range(len(buckets))]
    if not buckets or not any(totals):
        return _empty(width, height, label, "no data in this window")
    css = css or {}
    top = _nice_max(max(totals))
    x0 = buckets[0]
    x1 = buckets[-1]
    span = max((x1 - x0).total_seconds() + bucket_seconds, bucket_seconds)
    plot_w, plot_h = width - PAD_L - PAD_R, height - PAD_T - PAD_B
    bar_w = max(plot_w * bucket_seconds / span * 0.8, 1.5)
    parts = [
        f'<svg class="chart bars" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}">',
        *_frame(width, height, top, unit, x0, x0 + timedelta(seconds=span)),
    ]
    names = list(stacks)
    for i, t in enumerate(buckets):
        x = PAD_L + plot_w * ((t - x0).total_seconds() / span) + plot_w * bucket_seconds / span * 0.1
        base = 0.0
        for k, name in enumerate(names):
            v = stacks[name][i]
            if not v:
                continue
            h = plot_h * v / top
            y = PAD_T + plot_h - plot_h * base / top - h
            cls = css.get(name, f"c{k % 8}")
            parts.append(
                f'<rect class="bar {escape(cls)}" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}">'
                f"<title>{escape(name)}: {escape(fmt_number(v))}{escape(unit)}</title></rect>"
            )
            base += v
    parts.append("</svg>")
    return Markup("".join(parts) + _legend([(n, css.get(n, f"c{k % 8}")) for k, n in enumerate(names)]))  # noqa: S704 - parts escape every text


def hbars(
    items: Sequence[tuple[str, float]],
    *,
    label: str,
    unit: str = "",
    width: int = 960,
    max_value: float | None = None,
    css: str = "c0",
) -> Markup:
    if not items or not any(v for _, v in items):
        return _empty(width, 60, label, "no data")
    row_h = 22
    height = row_h * len(items) + 8
    top = max_value or max(v for _, v in items) or 1.0
    label_w = 220
    plot_w = width - label_w - 70
    parts = [f'<svg class="chart hbars" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}">']
    for i, (name, v) in enumerate(items):
        y = 4 + i * row_h
        w = max(plot_w * min(v / top, 1.0), 0.0)
        parts.append(
            f'<text class="tick" x="{label_w - 8}" y="{y + 15}" text-anchor="end">{escape(name[:40])}</text>'
            f'<rect class="bar {escape(css)}" x="{label_w}" y="{y + 3}" width="{max(w, 1):.1f}" height="{row_h - 7}">'
            f"<title>{escape(name)}: {escape(fmt_number(v))}{escape(unit)}</title></rect>"
            f'<text class="value" x="{label_w + w + 6:.1f}" y="{y + 15}">{escape(fmt_number(v))}{escape(unit)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - parts escape every text


def funnel(steps: Sequence[tuple[str, int]], *, label: str, width: int = 960) -> Markup:
    """Steps as centred bars whose width is their share of the first step."""
    if not steps or not steps[0][1]:
        return _empty(width, 60, label, "nothing sent in this window")
    first = steps[0][1]
    row_h = 34
    height = row_h * len(steps) + 6
    parts = [f'<svg class="chart funnel" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}">']
    usable = width - 260
    for i, (name, n) in enumerate(steps):
        w = max(usable * n / first, 2)
        x = 130 + (usable - w) / 2
        y = 3 + i * row_h
        parts.append(
            f'<text class="tick" x="120" y="{y + 20}" text-anchor="end">{escape(name)}</text>'
            f'<rect class="bar c{i}" x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row_h - 6}">'
            f"<title>{escape(name)}: {n}</title></rect>"
            f'<text class="value" x="{width - 120}" y="{y + 20}">{n} · {n / first:.0%}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - parts escape every text
