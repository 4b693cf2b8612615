"""Small HTML pieces of the report (pure): a table, a figure's text, histogram bars."""

from __future__ import annotations

import math

from livecast.results.histogram import Histogram
from livecast.results.svg import Bar, escape, format_number, nice_ticks


def histogram_bars(histogram: Histogram, bins: int = 12, scale: float = 1.0) -> list[Bar]:
    """Histogram buckets regrouped into about ``bins`` bars with round edges; values / ``scale``."""
    if not histogram.count:
        return []
    low, high = histogram.min / scale, histogram.max / scale
    edges = nice_ticks(low, high, bins)
    if edges[-1] < high:
        edges.append(edges[-1] + (edges[1] - edges[0]))
    width = edges[1] - edges[0]
    counts = [0] * (len(edges) - 1)
    for value, count in histogram.buckets():
        clamped = min(max(value / scale, low), high)
        counts[min(int((clamped - edges[0]) / width), len(counts) - 1)] += count
    return [
        Bar(f"{format_number(edges[i])}–{format_number(edges[i + 1])}", count)
        for i, count in enumerate(counts)
    ]


def table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def figure(value: float | None) -> str:
    return "–" if value is None or not math.isfinite(value) else format_number(value)
