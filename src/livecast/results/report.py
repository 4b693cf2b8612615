"""DIR/results.json and DIR/report.html of one run (rehearsal or simulation).

``results.json`` (``"schema": "livecast.results"``, ``"version": 1``)::

    {
      "schema": "livecast.results",
      "version": 1,
      "meta": {...},                  # free-form: scenario, started_at, duration_s, command, ...
                                      # ("contribution": input switches, see report_ingest)
      "verdict": {
        "verdict": "GO" | "NO-GO", "exit_code": 0 | 1, "summary": "NO-GO: startup_p95 (...)",
        "checks": [{"slo": {"name", "metric", "op", "threshold"},
                    "subject", "measured", "violated"}]
      },
      "summary": {"viewers": 200, "startup_p95_s": 1.4, ...},   # headline figures, for humans
                                      # (start-over viewers': "dvr_…", see report_dvr)
      "stats": {                      # RunStats.to_dict(): everything needed to rebuild the stats
        "requests": {kind: {"status_counts": {"200": n, "reset": n},
                            "latency_s": histogram, "latency_sample": reservoir}},
        "viewers": {"counters": {...}, "fatal_errors_by_type": {...},
                    "distributions": {name: histogram}, "samples": {name: reservoir}},
        "dvr_viewers": {...},         # the same, of start-over viewers (only when there were)
        "tiers": {tier: {"samples": [[t_s, requests_total, responses_5xx_total], ...]}},
        "timeline": {"t_s": [...], "active_viewers": [...], "requests": [...], "stalls": [...],
                     "errors_by_type": [{type: n}], "request_latency_s": [histogram],
                     "live_latency_s": [histogram],
                     "dvr_request_latency_s": [histogram]}   # with start-over requests
      }
    }

A histogram is ``{"lowest", "highest", "relative_error", "count", "sum", "min", "max",
"buckets": {index: count}}`` (see ``histogram.Histogram``); a reservoir is ``{"capacity", "seen",
"key_state", "keys", "values"}`` — ``values`` is a uniform sample (≤ 5,000) of per-viewer or
per-request values, which ``compare`` tests.

The headline parts are indented; ``stats`` is written on one compact line.

``report.html`` is one self-contained page: inline CSS and inline SVG, no script, no external URL.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from livecast.errors import LivecastError
from livecast.results.html import figure, histogram_bars, table
from livecast.results.report_cmcd import cmcd_section
from livecast.results.report_dvr import dvr_figures, dvr_section
from livecast.results.report_fidelity import fidelity_section
from livecast.results.report_ingest import ingest_section
from livecast.results.report_simulation import simulation_section
from livecast.results.slo import Verdict
from livecast.results.stats import RunStats
from livecast.results.svg import (
    Series,
    bar_chart,
    escape,
    line_chart,
)

SCHEMA_NAME = "livecast.results"
SCHEMA_VERSION = 1
RESULTS_JSON = "results.json"
REPORT_HTML = "report.html"


class ResultsError(LivecastError):
    """A results.json document that cannot be read (wrong schema, version or shape)."""


@dataclass(frozen=True)
class ResultsPaths:
    json_path: Path
    html_path: Path


@dataclass(frozen=True)
class LoadedResults:
    stats: RunStats
    verdict: Verdict
    meta: Mapping[str, Any]


def _finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def summary_figures(stats: RunStats) -> dict[str, float | None]:
    """Headline figures of a run, flat, for people and ``jq``."""
    viewers = stats.viewers
    dist = viewers.distributions
    figures: dict[str, float | None] = {
        "viewers": viewers.counters["viewers"],
        "started": viewers.counters["started"],
        "startup_p50_s": dist["startup_s"].percentile(50),
        "startup_p95_s": dist["startup_s"].percentile(95),
        "video_start_failure_rate": viewers.rate("start_failures"),
        "exit_before_start_rate": viewers.rate("exits_before_start"),
        "fatal_error_rate": viewers.rate("fatal_errors"),
        "rebuffering_ratio": viewers.rebuffering_ratio,
        "stalls": viewers.counters["stalls"],
        "latency_behind_live_p50_s": dist["latency_behind_live_s"].percentile(50),
        "latency_behind_live_p95_s": dist["latency_behind_live_s"].percentile(95),
        "avg_bitrate_mean_bps": dist["avg_bitrate_bps"].mean,
        "switches_mean": dist["switches"].mean,
        "requests": stats.total_requests,
        "requests_5xx_rate": stats.request_share("5"),
    }
    figures |= dvr_figures(stats)  # start-over viewers, counted apart (report_dvr)
    for tier, counters in sorted(stats.tiers.items()):
        figures[f"tier_{tier}_requests_per_s"] = counters.mean_requests_per_s
        figures[f"tier_{tier}_5xx_rate"] = counters.five_xx_rate
        if counters.hit_ratio is not None:
            figures[f"tier_{tier}_hit_ratio"] = counters.hit_ratio
    return {name: _finite_or_none(value) for name, value in figures.items()}


def results_document(stats: RunStats, verdict: Verdict, meta: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "schema": SCHEMA_NAME,
        "version": SCHEMA_VERSION,
        "meta": dict(meta),
        "verdict": verdict.to_dict(),
        "summary": summary_figures(stats),
        "stats": stats.to_dict(),
    }


def check_document(document: object) -> Mapping[str, Any]:
    """The document itself if it is a results.json this version reads, else ResultsError."""
    if not isinstance(document, Mapping):
        raise ResultsError("results document is not a JSON object")
    if document.get("schema") != SCHEMA_NAME:
        raise ResultsError(f"not a livecast results document (schema {document.get('schema')!r})")
    if document.get("version") != SCHEMA_VERSION:
        raise ResultsError(f"results version {document.get('version')!r}, expected 1")
    for key in ("meta", "verdict", "stats"):
        if not isinstance(document.get(key), Mapping):
            raise ResultsError(f"results document has no {key!r} object")
    return document


def load_results(document: object) -> LoadedResults:
    checked = check_document(document)
    try:
        stats = RunStats.from_dict(checked["stats"])
        verdict = Verdict.from_dict(checked["verdict"])
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ResultsError(f"malformed results document: {error!r}") from error
    return LoadedResults(stats, verdict, checked["meta"])


def read_results(path: Path) -> LoadedResults:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ResultsError(f"cannot read {path}: {error}") from error
    return load_results(document)


def results_json_text(document: Mapping[str, Any]) -> str:
    """The document as JSON: headline parts indented for people, ``stats`` on one compact line."""
    head = {key: value for key, value in document.items() if key != "stats"}
    text = json.dumps(head, indent=1)
    if "stats" not in document:
        return text + "\n"
    stats = json.dumps(document["stats"], separators=(",", ":"))
    return f'{text[:-2]},\n "stats": {stats}\n}}\n'


def write_results(
    out_dir: Path, stats: RunStats, verdict: Verdict, meta: Mapping[str, Any]
) -> ResultsPaths:
    """Write DIR/results.json and DIR/report.html (the directory is created if missing)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = ResultsPaths(out_dir / RESULTS_JSON, out_dir / REPORT_HTML)
    document = results_document(stats, verdict, meta)
    paths.json_path.write_text(results_json_text(document), encoding="utf-8")
    paths.html_path.write_text(render_html(stats, verdict, meta), encoding="utf-8")
    return paths


def progress_line(stats: RunStats, t_s: float) -> str:
    """One terminal line about the last complete second before ``t_s``.

    "t=12s viewers=180 req/s=1104 errors/s=3 (503:2 reset:1) latency p50=31ms p95=120ms stalls/s=1"
    """
    second_key = math.floor(t_s) - 1
    second = stats.timeline.seconds.get(second_key)
    if second is None:
        return f"t={max(second_key, 0)}s no data yet"
    errors = sum(second.errors_by_type.values())
    by_type = " ".join(f"{e}:{n}" for e, n in sorted(second.errors_by_type.items()))
    latency = second.request_latency_s
    return (
        f"t={second_key}s viewers={second.active_viewers} req/s={second.requests} "
        f"errors/s={errors}{f' ({by_type})' if by_type else ''} "
        f"latency p50={_milliseconds(latency.percentile(50))} "
        f"p95={_milliseconds(latency.percentile(95))} stalls/s={second.stalls}"
    )


def _milliseconds(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{seconds * 1000:.0f}ms"


def _timeline_charts(stats: RunStats) -> list[str]:
    timeline = stats.timeline
    t = tuple(float(s) for s in timeline.times())

    def series(name: str, column: str) -> Series:
        return Series(name, t, tuple(timeline.column(column)))

    errors = [Series(e, t, tuple(v)) for e, v in timeline.errors_by_type().items()]
    tier_series = [
        Series(tier, tuple(x for x, _ in rates), tuple(y for _, y in rates))
        for tier, rates in ((tier, c.requests_per_s()) for tier, c in sorted(stats.tiers.items()))
    ]
    x_label = "seconds since show start"
    return [
        line_chart(
            "Viewers over time",
            [series("active viewers", "active_viewers")],
            x_label=x_label,
            y_label="viewers",
        ),
        line_chart(
            "Latency behind live",
            [series("p50", "live_latency_p50_s"), series("p95", "live_latency_p95_s")],
            x_label=x_label,
            y_label="seconds",
        ),
        line_chart(
            "Request latency",
            [series("p50", "request_latency_p50_s"), series("p95", "request_latency_p95_s")],
            x_label=x_label,
            y_label="seconds",
        ),
        line_chart("Stalls", [series("stalls/s", "stalls")], x_label=x_label, y_label="stalls"),
        line_chart("Errors by type", errors, x_label=x_label, y_label="errors/s"),
        line_chart(
            "Requests per second per tier",
            [series("viewers (client side)", "requests"), *tier_series],
            x_label=x_label,
            y_label="requests/s",
        ),
    ]


def _distribution_charts(stats: RunStats) -> list[str]:
    dist = stats.viewers.distributions
    return [
        bar_chart(
            "Average bitrate per viewer",
            histogram_bars(dist["avg_bitrate_bps"], scale=1e6),
            x_label="Mb/s",
            y_label="viewers",
        ),
        bar_chart(
            "Startup time",
            histogram_bars(dist["startup_s"]),
            x_label="seconds",
            y_label="viewers",
        ),
    ]


def _requests_table(stats: RunStats) -> str:
    statuses = sorted({s for kind in stats.requests.values() for s in kind.status_counts})
    rows = []
    for name, kind in stats.requests.items():
        latency = kind.latency_s
        rows.append(
            [name, str(kind.total)]
            + [str(kind.status_counts.get(s, 0)) for s in statuses]
            + [figure(latency.percentile(p) * 1000) for p in (50, 95, 99)]
        )
    headers = ["request", "total", *statuses, "p50 ms", "p95 ms", "p99 ms"]
    return table(headers, rows)


def _verdict_banner(verdict: Verdict) -> str:
    css = "go" if verdict.go else "nogo"
    items = "".join(f"<li>{escape(check.describe())}</li>" for check in verdict.violations)
    listing = f"<ul>{items}</ul>" if items else "<p>Every SLO holds.</p>"
    return f'<section class="banner {css}"><h1>{escape(verdict.label)}</h1>{listing}</section>'


_STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
.banner { padding: 0.6em 1em; border-radius: 6px; color: #fff; }
.banner h1 { margin: 0.2em 0; }
.partial { border: 2px solid #ef6c00; padding: 0 1em; margin: 1em 0; }
.go { background: #2e7d32; } .nogo { background: #c62828; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
svg.chart { border: 1px solid #ddd; }
"""


def _partial_note(meta: Mapping[str, Any]) -> str:
    """A run that lost Locust workers mid-run (``meta.partial``): judged on what was measured."""
    partial = meta.get("partial")
    if not isinstance(partial, Mapping):
        return ""
    items = "".join(
        f"<li>worker {escape(str(w.get('slot')))} ({escape(str(w.get('worker')))}) at "
        f"t = {float(w.get('t', 0)):.0f} s ({escape(str(w.get('reason')))}): "
        f"{w.get('viewers_playing')} viewers playing, {w.get('viewers_not_arrived')} planned "
        "viewers not played</li>"
        for w in partial.get("workers_lost", [])
    )
    return (
        '<section class="partial"><h2>Partial result</h2><p>Workers lost mid-run; the verdict '
        f"covers the viewers that were measured.</p><ul>{items}</ul></section>"
    )


def render_html(stats: RunStats, verdict: Verdict, meta: Mapping[str, Any]) -> str:
    title = f"livecast results: {meta.get('scenario', 'run')}"
    meta_rows = [
        [str(k), json.dumps(v) if not isinstance(v, str) else v]
        for k, v in meta.items()
        if k not in ("contribution", "simulation")  # their own sections
    ]
    summary_rows = [[name, figure(value)] for name, value in summary_figures(stats).items()]
    check_rows = [
        [
            c.slo.name,
            c.subject,
            figure(c.measured),
            f"{c.slo.op} {c.slo.threshold:g}",
            "VIOLATED" if c.violated else ("ok" if c.measured_ok else "not measured"),
        ]
        for c in verdict.checks
    ]
    charts = "\n".join(_timeline_charts(stats) + _distribution_charts(stats))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<style>{_STYLE}</style></head>
<body>
{_verdict_banner(verdict)}
{_partial_note(meta)}
{simulation_section(meta)}
<h2>Run</h2>
{table(["key", "value"], meta_rows)}
<h2>SLOs</h2>
{table(["SLO", "metric", "measured", "threshold", "result"], check_rows)}
<h2>Quality of experience</h2>
{table(["figure", "value"], summary_rows)}
<h2>Plots</h2>
<div class="charts">
{charts}
</div>
<h2>Requests by type</h2>
{_requests_table(stats)}
{dvr_section(stats, meta)}
{ingest_section(stats, meta)}
{cmcd_section(meta)}
{fidelity_section(stats, verdict)}
</body></html>
"""
