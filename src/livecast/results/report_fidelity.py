"""The report's "Fidelity" section (pure): the scale-invariant indicators, the projection to the
target audience, and their plots — what makes the verdict speak for the night's audience
(docs/rehearsal.md, "Fidelity")."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from livecast.results.fidelity import indicator_figures, projections, wave_bins
from livecast.results.histogram import Histogram
from livecast.results.html import figure, histogram_bars, table
from livecast.results.indicators import TierObjects
from livecast.results.projection import Projection, counter_rates
from livecast.results.slo import SloCheck, Verdict
from livecast.results.stats import RunStats
from livecast.results.svg import Bar, Series, bar_chart, format_number, line_chart

SMOOTHING = 5  # seconds: upstream requests per new object over a sliding window
X_LABEL = "seconds since show start"
IDEAL = (
    "Ideal: one upstream request per object per tier instance; retries spread over the backoff "
    "window; a load per viewer that does not grow with the audience behind a cache."
)


def _bytes(value: float) -> str:
    for unit, size in (("GB/s", 1e9), ("MB/s", 1e6), ("kB/s", 1e3)):
        if value >= size:
            return f"{value / size:.3g} {unit}"
    return f"{value:.3g} B/s"


def _audience_line(stats: RunStats) -> str:
    context = stats.indicators.context
    if context.target_viewers is None:
        return "<p>No target audience set (<code>target_viewers</code>): no projection.</p>"
    edges = context.target_edges or context.edges
    on = f" on {edges:,} edges" if edges else " at the origin"
    return (
        f"<p>Target audience: {context.target_viewers:,} viewers{on}. Linear model from the "
        "coefficients measured in this run (per-viewer load, first fetches per edge, excess per "
        "viewer); its assumptions are in docs/rehearsal.md, &ldquo;Fidelity&rdquo;.</p>"
    )


def _projection_table(rows: Sequence[Projection]) -> str:
    if not rows:
        return ""
    cells = [
        [
            p.tier,
            f"{p.nodes:,}",
            format_number(p.requests_per_s),
            format_number(p.capacity_requests_per_s),
            _bytes(p.bytes_per_s),
            _bytes(p.capacity_bytes_per_s),
            f"{p.utilisation:.3g}×" + (" OVER" if p.utilisation > 1 else ""),
            p.bound_by,
        ]
        for p in rows
    ]
    headers = ["tier", "nodes", "req/s per node", "capacity req/s", "bytes/s per node",
               "capacity bytes/s", "utilisation", "bound by"]  # fmt: skip
    return table(headers, cells)


def _indicator_table(stats: RunStats, verdict: Verdict) -> str:
    checks: Mapping[str, SloCheck] = {c.subject: c for c in verdict.checks}
    rows = []
    for name, value in indicator_figures(stats).items():
        if value is None:
            continue
        check = checks.get(name)
        bound = f"{check.slo.op} {check.slo.threshold:g}" if check else ""
        result = ("VIOLATED" if check.violated else "ok") if check else ""
        rows.append([name, figure(value), bound, result])
    return table(["indicator", "measured", "SLO", "result"], rows)


def _smoothed_ratio(name: str, tier: TierObjects) -> Series:
    times = sorted(tier.seconds)
    xs, ys = [], []
    for t in times:
        window = [tier.seconds[s] for s in range(t - SMOOTHING + 1, t + 1) if s in tier.seconds]
        new_objects = sum(row[2] for row in window)
        if new_objects:
            xs.append(float(t))
            ys.append(sum(row[1] for row in window) / new_objects)
    return Series(f"{name} ({SMOOTHING} s window)", tuple(xs), tuple(ys))


def _upstream_chart(stats: RunStats) -> str:
    series = [_smoothed_ratio(n, tier) for n, tier in sorted(stats.indicators.tiers.items())]
    times = [x for one in series for x in one.xs]
    if times:  # the reference line spans every tier's points
        series.append(Series("ideal", (min(times), max(times)), (1.0, 1.0)))
    return line_chart(
        "Upstream requests per new object, per tier",
        series,
        x_label=X_LABEL,
        y_label="requests per object",
    )


def _retry_chart(stats: RunStats) -> str:
    timeline = stats.timeline
    times = timeline.times()
    title = "Retries per 0.1 s"
    windows = stats.indicators.context.fault_windows
    if windows:
        title += " (faults: " + ", ".join(f"{a:g}–{b:g} s" for a, b in windows) + ")"
    if not times:
        return line_chart(title, [], x_label=X_LABEL, y_label="retries")
    bins = wave_bins(timeline, float(times[0]), float(times[-1] + 1))
    xs = tuple(times[0] + i / 10 for i in range(len(bins)))
    return line_chart(
        title,
        [Series("retries", xs, tuple(float(b) for b in bins))],
        x_label=X_LABEL,
        y_label="retries per 0.1 s",
    )


def _per_viewer_chart(stats: RunStats) -> str:
    active = {t: s.active_viewers for t, s in stats.timeline.seconds.items()}
    per_tier: dict[str, Mapping[int, float]] = {
        "viewers (client side)": {t: float(s.requests) for t, s in stats.timeline.seconds.items()}
    }
    for name, tier in sorted(stats.indicators.tiers.items()):
        per_tier[name] = {t: float(row[0]) for t, row in tier.seconds.items()}
    origin = stats.tiers.get("origin")
    if origin is not None:
        per_tier["origin"] = counter_rates([(t, r) for t, r, _ in origin.samples])
    series = []
    for name, requests in per_tier.items():
        points = [(float(t), n / active[t]) for t, n in sorted(requests.items()) if active.get(t)]
        series.append(Series(name, tuple(x for x, _ in points), tuple(y for _, y in points)))
    return line_chart(
        "Requests per viewer per second, per tier",
        series,
        x_label=X_LABEL,
        y_label="requests/s per viewer",
    )


def _age_chart(stats: RunStats) -> str:
    reference = stats.indicators.origin_age_s
    title = "Age of the playlists viewers received"
    if reference.count:
        title += f" (origin's own p50: {reference.percentile(50) * 1000:.0f} ms)"
    return bar_chart(
        title,
        capped_bars(stats.indicators.client.playlist_age_s),
        x_label="seconds",
        y_label="playlists",
    )


def capped_bars(histogram: Histogram, percent: float = 99.0) -> list[Bar]:
    """Bars up to the ``percent`` percentile and one "> p" bar for the rest, so that a few very
    stale playlists do not squeeze every other age into the first bar."""
    if not histogram.count:
        return []
    cap = histogram.percentile(percent)
    kept, over = Histogram(*histogram.layout), 0
    for value, count in histogram.buckets():
        if value <= cap:
            kept.record(value, count)
        else:
            over += count
    bars = histogram_bars(kept)
    return [*bars, Bar(f"> {format_number(cap)}", over)] if over else bars


def fidelity_section(stats: RunStats, verdict: Verdict) -> str:
    """HTML of the section: audience line, projection table, indicator table, four plots."""
    charts = "\n".join(
        [_upstream_chart(stats), _retry_chart(stats), _per_viewer_chart(stats), _age_chart(stats)]
    )
    return f"""<h2>Fidelity: the verdict at the target audience</h2>
{_audience_line(stats)}
{_projection_table(projections(stats))}
<h3>Scale-invariant indicators</h3>
{_indicator_table(stats, verdict)}
<div class="charts">
{charts}
</div>
<p>{IDEAL}</p>"""
