"""The scale-invariant indicators of a run as named figures (pure) — what ``slo`` judges,
``report`` shows and ``compare`` tests. Raw material: :mod:`livecast.results.indicators`.

Names (``<tier>``: edge, shield — caching tiers; load and projection also origin and client):

    objects.<tier>.upstream_per_object          upstream requests per distinct object per
    objects.<tier>.<kind>.upstream_per_object   instance (ideal 1); kinds: part, segment, init,
                                                playlist-blocking, playlist-plain, multivariant,
                                                playlist-dvr (start-over, ``rehearse.objects``)
    objects.<tier>.overlapping_share            upstream fetches that overlapped another fetch of
                                                the same object at the same instance / fetches
    objects.<tier>.stale_share                  answers from a stale cache entry / answers
    objects.<tier>.held_past_share              answers after > 3 × target duration / answers
    objects.<tier>[.<kind>].4xx_rate, 5xx_rate
    freshness.staleness_p50_parts, _p95_parts   viewers' playlist age − the origin's own (p50),
                                                in part targets
    freshness.too_old_share                     playlists more than 3 parts behind the origin
    freshness.playlist_age_p50_s, _p95_s, freshness.origin_age_p50_s
    errors.early_404_share                      media 404s that answered 200 later / media requests
    errors.media_404_share
    errors.held_past_share                      answers slower than 3 × target duration / requests
    retry.retries_per_failed_request            retries / distinct failed requests retried
    retry.wave_peak_to_mean                     see :func:`retry_wave`
    load.<tier>.requests_per_viewer_s, load.<tier>.bytes_per_viewer_s (steady audience)
    load.<tier>.growth                          the tier's requests per viewer request at the full
                                                audience over the same at about half of it: 1 grows
                                                with the viewers, < 1 a cache shields it
    projected.<tier>.requests_per_s, .bytes_per_s, .utilisation, .nodes   (``projection``)

A figure that cannot be measured (no edges, no fault, no target audience) is None.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from livecast.results.histogram import Histogram
from livecast.results.indicators import TierObjects
from livecast.results.projection import (
    Projection,
    TierLoad,
    audience_seconds,
    counter_rates,
    load_over,
    project,
)
from livecast.results.stats import RunStats, Timeline

Figures = dict[str, float | None]
OBJECT_FIGURES = (
    "upstream_per_object",
    "overlapping_share",
    "stale_share",
    "held_past_share",
    "4xx_rate",
    "5xx_rate",
)
KIND_FIGURES = ("upstream_per_object", "4xx_rate", "5xx_rate")
FRESHNESS_FIGURES = (
    "staleness_p50_parts",
    "staleness_p95_parts",
    "too_old_share",
    "playlist_age_p50_s",
    "playlist_age_p95_s",
    "origin_age_p50_s",
)
ERROR_FIGURES = ("early_404_share", "media_404_share", "held_past_share")
RETRY_FIGURES = ("retries_per_failed_request", "wave_peak_to_mean")
LOAD_FIGURES = ("requests_per_viewer_s", "bytes_per_viewer_s", "growth")
PROJECTED_FIGURES = ("requests_per_s", "bytes_per_s", "utilisation", "nodes")
TOO_OLD_PARTS = 3.0
WAVE_AFTER = 8.0  # seconds after a fault's end that belong to its retry wave (hls.js max delay)
WAVE_BIN = 0.1  # seconds (the request tenths of the timeline)
WAVE_MIN_RETRIES = 20  # fewer retries make no wave worth judging
WAVE_TRIM = 0.05  # the wave's first and last 5 % of retries are its tails, not its span


def _share(hits: float, total: float) -> float | None:
    return hits / total if total else None


def count_above(histogram: Histogram, value: float) -> int:
    """How many recorded values are above ``value`` (to the histogram's resolution)."""
    return sum(count for reported, count in histogram.buckets() if reported > value)


def _object_figures(name: str, tier: TierObjects, figures: Figures) -> None:
    total = tier.total()
    prefix = f"objects.{name}"
    figures[f"{prefix}.upstream_per_object"] = total.upstream_per_object
    figures[f"{prefix}.overlapping_share"] = _share(total.overlapping, total.upstream)
    figures[f"{prefix}.stale_share"] = _share(total.stale, total.requests)
    figures[f"{prefix}.held_past_share"] = _share(total.held_past, total.requests)
    figures[f"{prefix}.4xx_rate"] = _share(total.status_4xx, total.requests)
    figures[f"{prefix}.5xx_rate"] = _share(total.status_5xx, total.requests)
    for kind, tally in sorted(tier.by_kind.items()):
        if kind == "other":
            continue
        figures[f"{prefix}.{kind}.upstream_per_object"] = tally.upstream_per_object
        figures[f"{prefix}.{kind}.4xx_rate"] = _share(tally.status_4xx, tally.requests)
        figures[f"{prefix}.{kind}.5xx_rate"] = _share(tally.status_5xx, tally.requests)


def too_old_counts(stats: RunStats) -> tuple[int, int] | None:
    """(playlists more than TOO_OLD_PARTS behind the origin's own age, playlists)."""
    indicators = stats.indicators
    ages, part = indicators.client.playlist_age_s, indicators.context.part_target
    if not ages.count or not part or not indicators.origin_age_s.count:
        return None
    limit = indicators.origin_age_s.percentile(50) + TOO_OLD_PARTS * part
    return count_above(ages, limit), ages.count


def _freshness_figures(stats: RunStats, figures: Figures) -> None:
    indicators = stats.indicators
    ages = indicators.client.playlist_age_s
    reference = indicators.origin_age_s.percentile(50) if indicators.origin_age_s.count else None
    part = indicators.context.part_target
    figures["freshness.origin_age_p50_s"] = reference
    if not ages.count:
        return
    figures["freshness.playlist_age_p50_s"] = ages.percentile(50)
    figures["freshness.playlist_age_p95_s"] = ages.percentile(95)
    if reference is None or not part:
        return
    for percent in (50, 95):
        behind = max(0.0, ages.percentile(percent) - reference) / part
        figures[f"freshness.staleness_p{percent}_parts"] = behind
    too_old = too_old_counts(stats)
    if too_old is not None:
        figures["freshness.too_old_share"] = _share(*too_old)


def _error_figures(stats: RunStats, figures: Figures) -> None:
    counters = stats.indicators.client.counters
    figures["errors.early_404_share"] = _share(counters["early_404"], counters["media_requests"])
    figures["errors.media_404_share"] = _share(counters["media_404"], counters["media_requests"])
    figures["errors.held_past_share"] = _share(counters["held_past"], stats.total_requests)


def wave_bins(timeline: Timeline, start: float, end: float) -> list[int]:
    """Retries sent per tenth of a second in [start, end)."""
    bins = []
    tenth = math.floor(start / WAVE_BIN)
    while tenth * WAVE_BIN < end:
        second = timeline.seconds.get(math.floor(tenth / 10))
        bins.append(second.retry_tenths[tenth % 10] if second is not None else 0)
        tenth += 1
    return bins


def wave_span(bins: Sequence[int], trim: float = WAVE_TRIM) -> tuple[int, int]:
    """(first, last) index of the bins that hold the central ``1 − 2 × trim`` of the retries."""
    total = sum(bins)
    low, high = trim * total, (1 - trim) * total
    first, last, seen = 0, len(bins) - 1, 0
    for index, count in enumerate(bins):
        if seen <= low < seen + count:  # one bin only: ``seen`` grows past it
            first = index
        if seen < high <= seen + count:
            last = index
            break
        seen += count
    return first, max(first, last)


def retry_wave(timeline: Timeline, windows: Sequence[tuple[float, float]]) -> float | None:
    """How peaked the retries after a fault are: the busiest tenth of a second's retries over
    the mean per tenth across the wave — the tenths that hold the central 90 % of the retries
    sent from the fault's start to :data:`WAVE_AFTER` seconds after its end (the worst fault's
    figure). Backoff without jitter sends a crowd that failed together back together: one tenth
    holds a cohort, several times the mean; full jitter spreads it evenly over the backoff
    window. None without a fault that made at least :data:`WAVE_MIN_RETRIES` retries."""
    waves = []
    for start, end in windows:
        if not math.isfinite(end):
            end = start
        bins = wave_bins(timeline, start, end + WAVE_AFTER)
        if sum(bins) < WAVE_MIN_RETRIES:
            continue
        first, last = wave_span(bins)
        wave = bins[first : last + 1]
        waves.append(max(wave) / (sum(wave) / len(wave)))
    return max(waves) if waves else None


def _retry_figures(stats: RunStats, figures: Figures) -> None:
    counters = stats.indicators.client.counters
    figures["retry.retries_per_failed_request"] = _share(
        counters["retries"], counters["retried_requests"]
    )
    figures["retry.wave_peak_to_mean"] = retry_wave(
        stats.timeline, stats.indicators.context.fault_windows
    )


def tier_loads(stats: RunStats) -> tuple[dict[str, TierLoad], dict[str, TierLoad]]:
    """(steady, half-audience) load per tier: client, edge, shield, origin."""
    active = {t: s.active_viewers for t, s in stats.timeline.seconds.items()}
    steady_s, half_s = audience_seconds(active, stats.indicators.context)
    client_requests = {t: float(s.requests) for t, s in stats.timeline.seconds.items()}
    sources: dict[str, tuple[dict[int, float], dict[int, float] | None, TierObjects | None]] = {
        "client": (client_requests, None, None),
    }
    for name, tier in stats.indicators.tiers.items():
        sources[name] = ({}, None, tier)
    origin = stats.tiers.get("origin")
    if origin is not None:
        requests = counter_rates([(t, r) for t, r, _ in origin.samples])
        sources["origin"] = (requests, counter_rates(stats.indicators.origin_bytes), None)
    steady = {n: load_over(steady_s, active, r, b, t) for n, (r, b, t) in sources.items()}
    half = {n: load_over(half_s, active, r, b, t) for n, (r, b, t) in sources.items()}
    return steady, half


def _load_figures(stats: RunStats, figures: Figures) -> dict[str, TierLoad]:
    steady, half = tier_loads(stats)
    client_bytes = sum(stats.indicators.client.bytes_by_kind.values())
    viewer_seconds = sum(s.active_viewers for s in stats.timeline.seconds.values())
    for name, load in sorted(steady.items()):
        figures[f"load.{name}.requests_per_viewer_s"] = load.per_viewer(load.requests)
        if name == "client":
            figures[f"load.{name}.bytes_per_viewer_s"] = _share(client_bytes, viewer_seconds)
            continue
        figures[f"load.{name}.bytes_per_viewer_s"] = load.per_viewer(load.bytes)
        # against the viewers' own requests: joining viewers make more requests per viewer
        full = _share(load.requests, steady["client"].requests)
        partial = _share(half[name].requests, half["client"].requests)
        figures[f"load.{name}.growth"] = full / partial if full and partial else None
    return steady


def projections(stats: RunStats) -> list[Projection]:
    steady, _ = tier_loads(stats)
    return project(stats.indicators, steady)


def indicator_figures(stats: RunStats) -> Figures:
    """Every indicator figure of a run, by name (None: not measured)."""
    figures: Figures = {}
    for name, tier in sorted(stats.indicators.tiers.items()):
        _object_figures(name, tier, figures)
    _freshness_figures(stats, figures)
    _error_figures(stats, figures)
    _retry_figures(stats, figures)
    steady = _load_figures(stats, figures)
    for p in project(stats.indicators, steady):
        figures[f"projected.{p.tier}.requests_per_s"] = p.requests_per_s
        figures[f"projected.{p.tier}.bytes_per_s"] = p.bytes_per_s
        figures[f"projected.{p.tier}.utilisation"] = p.utilisation
        figures[f"projected.{p.tier}.nodes"] = float(p.nodes)
    return figures


def metric_matches(pattern: str, name: str) -> bool:
    """``objects.*.upstream_per_object`` matches ``objects.edge.upstream_per_object``: ``*``
    stands for one dotted segment."""
    want, have = pattern.split("."), name.split(".")
    return len(want) == len(have) and all(w in ("*", h) for w, h in zip(want, have, strict=True))


def known_indicator(metric: str) -> bool:
    """Whether ``metric`` names an indicator figure (``*`` allowed for a tier or a kind)."""
    parts = metric.split(".")
    family, last = parts[0], parts[-1]
    if family == "objects":
        return (len(parts) == 3 and last in OBJECT_FIGURES) or (
            len(parts) == 4 and last in KIND_FIGURES
        )
    simple = {"freshness": FRESHNESS_FIGURES, "errors": ERROR_FIGURES, "retry": RETRY_FIGURES}
    if family in simple:
        return len(parts) == 2 and last in simple[family]
    tiered = {"load": LOAD_FIGURES, "projected": PROJECTED_FIGURES}
    return family in tiered and len(parts) == 3 and last in tiered[family]


INDICATOR_FAMILIES = ("objects", "freshness", "errors", "retry", "load", "projected")
