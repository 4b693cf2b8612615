"""Inline SVG charts in pure Python: a multi-series line chart and a bar chart.

Each function returns one ``<svg>`` element as a string, with axes, "nice" ticks, axis labels, a
title and a legend; every piece of text is XML-escaped, and nothing refers to anything outside the
element, so the charts can be pasted into a self-contained HTML page.

    line_chart("Viewers", [Series("active", (0, 1, 2), (10, 50, 80))], x_label="s", y_label="n")
    bar_chart("Startup", [Bar("0–1 s", 12), Bar("1–2 s", 40)], x_label="s", y_label="viewers")

NaN values in a line series leave a gap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape as _html_escape

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
WIDTH = 640
HEIGHT = 280
_MARGIN_LEFT, _MARGIN_RIGHT, _MARGIN_TOP, _MARGIN_BOTTOM = 64, 16, 40, 44


def escape(text: str) -> str:
    """Text safe inside an SVG/HTML element or a double-quoted attribute."""
    return _html_escape(text, quote=True)


@dataclass(frozen=True)
class Series:
    name: str
    xs: tuple[float, ...]
    ys: tuple[float, ...]


@dataclass(frozen=True)
class Bar:
    label: str
    value: float


@dataclass(frozen=True)
class _Frame:
    """Maps data coordinates into the plot area of a chart."""

    x_min: float
    x_max: float
    y_min: float
    y_max: float
    width: int
    height: int

    @property
    def left(self) -> float:
        return _MARGIN_LEFT

    @property
    def right(self) -> float:
        return self.width - _MARGIN_RIGHT

    @property
    def top(self) -> float:
        return _MARGIN_TOP

    @property
    def bottom(self) -> float:
        return self.height - _MARGIN_BOTTOM

    def x(self, value: float) -> float:
        span = self.x_max - self.x_min or 1.0
        return self.left + (value - self.x_min) / span * (self.right - self.left)

    def y(self, value: float) -> float:
        span = self.y_max - self.y_min or 1.0
        return self.bottom - (value - self.y_min) / span * (self.bottom - self.top)


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values (1, 2, 5 × 10^k steps) covering [low, high]."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return [0.0, 1.0]
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw_step = (high - low) / max(1, count)
    magnitude = 10 ** math.floor(math.log10(raw_step))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw_step)
    first = math.floor(low / step) * step
    ticks = []
    value = first
    while value < high + step * 0.999:
        ticks.append(round(value, 12))
        value += step
    return ticks


def format_number(value: float) -> str:
    """Compact tick label: 1.5k, 2M, 0.25, 3e-05."""
    magnitude = abs(value)
    if magnitude >= 1e9:
        return f"{value / 1e9:g}G"
    if magnitude >= 1e6:
        return f"{value / 1e6:g}M"
    if magnitude >= 1e4:
        return f"{value / 1e3:g}k"
    return f"{value:.4g}"


def _text(x: float, y: float, text: str, anchor: str = "middle", extra: str = "") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="11"{extra}>'
        f"{escape(text)}</text>"
    )


def _open(title: str, width: int, height: int) -> list[str]:
    return [
        f'<svg class="chart" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" font-family="sans-serif">',
        f"<title>{escape(title)}</title>",
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        _text(width / 2, 18, title, extra=' font-weight="bold" font-size="13"'),
    ]


def _axes(frame: _Frame, x_ticks: Sequence[float], y_ticks: Sequence[float]) -> list[str]:
    parts = []
    for tick in y_ticks:
        y = frame.y(tick)
        parts.append(
            f'<line x1="{frame.left:.1f}" y1="{y:.1f}" x2="{frame.right:.1f}" y2="{y:.1f}" '
            'stroke="#e0e0e0"/>'
        )
        parts.append(_text(frame.left - 6, y + 4, format_number(tick), anchor="end"))
    for tick in x_ticks:
        x = frame.x(tick)
        parts.append(_text(x, frame.bottom + 16, format_number(tick)))
    parts.append(
        f'<path d="M{frame.left:.1f},{frame.top:.1f} V{frame.bottom:.1f} H{frame.right:.1f}" '
        'fill="none" stroke="#333333"/>'
    )
    return parts


def _axis_labels(frame: _Frame, x_label: str, y_label: str) -> list[str]:
    middle_y = (frame.top + frame.bottom) / 2
    return [
        _text((frame.left + frame.right) / 2, frame.height - 6, x_label),
        _text(14, middle_y, y_label, extra=f' transform="rotate(-90 14 {middle_y:.1f})"'),
    ]


def _legend(names: Sequence[str], frame: _Frame) -> list[str]:
    parts = []
    x = frame.left + 8
    for i, name in enumerate(names):
        color = PALETTE[i % len(PALETTE)]
        parts.append(f'<rect x="{x:.1f}" y="26" width="10" height="10" fill="{color}"/>')
        parts.append(_text(x + 14, 35, name, anchor="start"))
        x += 24 + 6.5 * len(name)
    return parts


def _no_data(parts: list[str], width: int, height: int) -> str:
    parts.append(_text(width / 2, height / 2, "no data"))
    parts.append("</svg>")
    return "\n".join(parts)


def _polylines(series: Series, frame: _Frame, color: str) -> list[str]:
    """One ``<polyline>`` per run of finite points (NaN splits the line)."""
    runs: list[list[str]] = [[]]
    for x, y in zip(series.xs, series.ys, strict=True):
        if math.isfinite(x) and math.isfinite(y):
            runs[-1].append(f"{frame.x(x):.1f},{frame.y(y):.1f}")
        elif runs[-1]:
            runs.append([])
    return [
        f'<polyline points="{" ".join(run)}" fill="none" stroke="{color}" stroke-width="1.8"/>'
        for run in runs
        if run
    ]


def line_chart(
    title: str,
    series: Sequence[Series],
    *,
    x_label: str,
    y_label: str,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> str:
    parts = _open(title, width, height)
    points = [
        (x, y)
        for s in series
        for x, y in zip(s.xs, s.ys, strict=True)
        if math.isfinite(x) and math.isfinite(y)
    ]
    if not points:
        return _no_data(parts, width, height)
    x_ticks = nice_ticks(min(x for x, _ in points), max(x for x, _ in points))
    y_ticks = nice_ticks(min(0.0, min(y for _, y in points)), max(y for _, y in points))
    frame = _Frame(x_ticks[0], x_ticks[-1], y_ticks[0], y_ticks[-1], width, height)
    parts += _axes(frame, x_ticks, y_ticks)
    parts += _axis_labels(frame, x_label, y_label)
    for i, one in enumerate(series):
        parts += _polylines(one, frame, PALETTE[i % len(PALETTE)])
    parts += _legend([s.name for s in series], frame)
    parts.append("</svg>")
    return "\n".join(parts)


def bar_chart(
    title: str,
    bars: Sequence[Bar],
    *,
    x_label: str,
    y_label: str,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> str:
    parts = _open(title, width, height)
    if not bars:
        return _no_data(parts, width, height)
    y_ticks = nice_ticks(0.0, max(max(bar.value for bar in bars), 0.0))
    frame = _Frame(0.0, float(len(bars)), y_ticks[0], y_ticks[-1], width, height)
    parts += _axes(frame, [], y_ticks)
    parts += _axis_labels(frame, x_label, y_label)
    slot = (frame.right - frame.left) / len(bars)
    label_every = max(1, math.ceil(len(bars) * 60 / (frame.right - frame.left)))
    for i, bar in enumerate(bars):
        x = frame.left + i * slot + slot * 0.1
        top = frame.y(max(bar.value, 0.0))
        parts.append(
            f'<rect x="{x:.1f}" y="{top:.1f}" width="{slot * 0.8:.1f}" '
            f'height="{frame.bottom - top:.1f}" fill="{PALETTE[0]}">'
            f"<title>{escape(bar.label)}: {format_number(bar.value)}</title></rect>"
        )
        if i % label_every == 0:
            parts.append(_text(x + slot * 0.4, frame.bottom + 16, bar.label))
    parts.append("</svg>")
    return "\n".join(parts)
