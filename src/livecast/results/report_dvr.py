"""Start-over (DVR) viewers in the results (pure): their headline figures beside the live
viewers', and the report's "Start-over" section.

A start-over viewer (``PlayerConfig.seek_back``) joins the recording behind live
(``main.m3u8?start=…``, an EVENT playlist reloaded every target duration, segments older than the
live window read from disk). Everything it does is counted apart (``results.stats``): its
requests under their own kinds — ``multivariant-dvr``, ``playlist-dvr`` (what the origin counts
as ``playlist-dvr``), ``init-dvr``, ``segment-dvr`` — with their own latency histograms and a
per-second DVR latency series, and its outcome in ``stats.dvr_viewers``. The QoE SLOs
(``viewers.…``) therefore judge the live viewers exactly as without start-over viewers, who only
add load; ``dvr_viewers.…`` and ``requests.dvr.…`` / ``requests.playlist-dvr.…`` can be SLOs
too (``results.slo``). The figures::

    dvr_viewers, dvr_started, dvr_startup_p50_s, dvr_startup_p95_s, dvr_rebuffering_ratio,
    dvr_stalls, dvr_fatal_error_rate, dvr_behind_live_p50_s, dvr_behind_live_p95_s (how far
    behind live they watched: the seek-back plus their startup), dvr_requests,
    dvr_request_error_rate, dvr_request_latency_{p50,p95,p99}_s (every DVR request),
    dvr_playlist_latency_{p50,p95}_s, dvr_segment_latency_{p50,p95}_s, and for comparison
    live_request_latency_{p50,p95,p99}_s (every live viewer's request, blocking reloads and
    preload-hinted parts — held until produced — included)

``meta.start_over`` (written by the rehearsal) says what was asked for and what the origin
itself counted: ``share``, ``seek_back_s``, ``viewers_planned``, ``recording`` (its directory),
``recording_held_s_at_start``, ``origin_playlist_dvr_responses`` (by status, from /metrics).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from livecast.results.histogram import Histogram
from livecast.results.html import figure, histogram_bars, table
from livecast.results.slo import merged_latency, request_kinds
from livecast.results.stats import (
    RequestKindStats,
    RunStats,
    ViewerStats,
    dvr_kind,
    is_dvr_kind,
)
from livecast.results.svg import Series, bar_chart, escape, line_chart

PAIRED_KINDS = ("multivariant", "playlist", "init", "segment", "part")  # REQUEST_KINDS, in order


def has_dvr(stats: RunStats) -> bool:
    """Whether the run had start-over viewers (or their requests)."""
    return bool(stats.dvr_viewers.counters["viewers"]) or any(map(is_dvr_kind, stats.requests))


def _percentile(histogram: Histogram, percent: float) -> float | None:
    return histogram.percentile(percent) if histogram.count else None


def _viewer_figures(viewers: ViewerStats, prefix: str) -> dict[str, float | None]:
    dist = viewers.distributions
    return {
        f"{prefix}viewers": viewers.counters["viewers"],
        f"{prefix}started": viewers.counters["started"],
        f"{prefix}startup_p50_s": _percentile(dist["startup_s"], 50),
        f"{prefix}startup_p95_s": _percentile(dist["startup_s"], 95),
        f"{prefix}rebuffering_ratio": viewers.rebuffering_ratio,
        f"{prefix}stalls": viewers.counters["stalls"],
        f"{prefix}fatal_error_rate": viewers.rate("fatal_errors"),
        f"{prefix}behind_live_p50_s": _percentile(dist["latency_behind_live_s"], 50),
        f"{prefix}behind_live_p95_s": _percentile(dist["latency_behind_live_s"], 95),
    }


def dvr_figures(stats: RunStats) -> dict[str, float | None]:
    """The start-over headline figures (module docstring); {} for a run without any."""
    if not has_dvr(stats):
        return {}
    figures = _viewer_figures(stats.dvr_viewers, "dvr_")
    dvr_kinds = request_kinds(stats, "dvr")
    total = sum(k.total for k in dvr_kinds)
    figures["dvr_requests"] = total
    figures["dvr_request_error_rate"] = sum(k.errors for k in dvr_kinds) / total if total else None
    every_dvr, every_live = merged_latency(dvr_kinds), merged_latency(request_kinds(stats, "live"))
    for percent in (50, 95, 99):
        figures[f"dvr_request_latency_p{percent}_s"] = _percentile(every_dvr, percent)
    for kind in ("playlist", "segment"):
        latency = merged_latency(request_kinds(stats, dvr_kind(kind)))
        for percent in (50, 95):
            figures[f"dvr_{kind}_latency_p{percent}_s"] = _percentile(latency, percent)
    for percent in (50, 95, 99):
        figures[f"live_request_latency_p{percent}_s"] = _percentile(every_live, percent)
    return figures


# ---------------------------------------------------------------------------- report section


def _latency_cells(kinds: list[RequestKindStats]) -> list[str]:
    total = sum(k.total for k in kinds)
    if not total:
        return ["0", "–", "–", "–", "–"]
    latency = merged_latency(kinds)
    percentiles = [figure(_ms(latency, p)) for p in (50, 95, 99)]
    return [str(total), *percentiles, str(sum(k.errors for k in kinds))]


def _ms(histogram: Histogram, percent: float) -> float | None:
    value = _percentile(histogram, percent)
    return None if value is None else value * 1000


def _request_rows(stats: RunStats) -> list[list[str]]:
    names = [k for k in PAIRED_KINDS if k in stats.requests or dvr_kind(k) in stats.requests]
    pairs = [
        (name, request_kinds(stats, name), request_kinds(stats, dvr_kind(name))) for name in names
    ]
    pairs.append(("all", request_kinds(stats, "live"), request_kinds(stats, "dvr")))
    return [[name, *_latency_cells(live), *_latency_cells(dvr)] for name, live, dvr in pairs]


def _qoe_rows(stats: RunStats) -> list[list[str]]:
    live, dvr = _viewer_figures(stats.viewers, ""), _viewer_figures(stats.dvr_viewers, "")
    return [[name, figure(live[name]), figure(dvr[name])] for name in live]


def _latency_chart(stats: RunStats) -> str:
    timeline = stats.timeline
    t = tuple(float(s) for s in timeline.times())

    def series(name: str, column: str) -> Series:
        return Series(name, t, tuple(timeline.column(column)))

    return line_chart(
        "Request latency: live vs start-over viewers",
        [
            series("live p50", "request_latency_p50_s"),
            series("live p95", "request_latency_p95_s"),
            series("start-over p50", "dvr_request_latency_p50_s"),
            series("start-over p95", "dvr_request_latency_p95_s"),
        ],
        x_label="seconds since show start",
        y_label="seconds",
    )


def _asked(meta: Mapping[str, Any]) -> str:
    facts = meta.get("start_over")
    if not isinstance(facts, Mapping):
        return ""
    share, seek = facts.get("share"), facts.get("seek_back_s") or []
    held = facts.get("recording_held_s_at_start")
    origin = facts.get("origin_playlist_dvr_responses") or {}
    counted = ", ".join(f"{status}: {n}" for status, n in dict(origin).items()) or "none"
    parts = []
    if isinstance(share, int | float) and len(seek) == 2:
        parts.append(
            f"{share:.0%} of the viewers ({facts.get('viewers_planned', '?')} planned) joined "
            f"the recording {figure(seek[0])}–{figure(seek[1])} s behind live"
        )
    if isinstance(held, int | float) and math.isfinite(held):
        parts.append(f"the recording held {held:.0f} s when the show started")
    parts.append(f"the origin counted playlist-dvr answers by status: {counted}")
    return "<p>" + escape("; ".join(parts)) + ".</p>"


def dvr_section(stats: RunStats, meta: Mapping[str, Any]) -> str:
    """The "Start-over (DVR) viewers" section of report.html; empty for a run without them."""
    if not has_dvr(stats):
        return ""
    headers = ["request", "live n", "p50 ms", "p95 ms", "p99 ms", "errors"]
    headers += ["start-over n", "p50 ms", "p95 ms", "p99 ms", "errors"]
    startup = bar_chart(
        "Start-over viewers' startup time",
        histogram_bars(stats.dvr_viewers.distributions["startup_s"]),
        x_label="seconds",
        y_label="viewers",
    )
    return f"""<h2>Start-over (DVR) viewers</h2>
{_asked(meta)}
<p>Counted apart from the live viewers: the QoE SLOs judge the live viewers only. Start-over
requests (kinds <code>…-dvr</code>) beside the live viewers' requests of the same kind (live
playlists and parts include blocking reloads and preload hints, held until produced):</p>
{table(headers, _request_rows(stats))}
<p>Quality of experience (behind live: the start-over viewers' seek-back plus their startup):</p>
{table(["figure", "live viewers", "start-over viewers"], _qoe_rows(stats))}
<div class="charts">
{_latency_chart(stats)}
{startup}
</div>
"""
