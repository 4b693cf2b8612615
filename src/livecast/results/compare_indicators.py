"""A/B comparison of the scale-invariant indicators (pure), part of ``compare``: an A/B gate
flags a change that doubles the origin's requests per object even when QoE is unchanged.

Two kinds of figures, each from the counts results.json keeps:

* shares (overlapping fetches, stale answers, answers held past 3 × target duration, 5xx per
  caching tier and object kind, early 404s, playlists more than 3 parts behind the origin) — the
  two-proportion z-test, as for the other rates;
* counts per exposure (upstream requests per object per tier and kind, retries per failed
  request, each tier's requests per viewer-second) — a two-sided test of two Poisson rates,
  conditional on the total: given ``k = k_a + k_b`` events, ``k_b ~ Binomial(k, n_b / (n_a +
  n_b))`` under equal rates, normal approximation.

Either regresses only when B is worse beyond the tolerance and the difference is significant.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from livecast.results.fidelity import tier_loads, too_old_counts
from livecast.results.stats import RunStats

Counts = dict[str, tuple[float, float]]  # metric → (events, exposure)
MIN_EXPOSURE = 10.0  # objects, failed requests, viewer-seconds: fewer make no figure to test


def poisson_rates_p_value(
    events_a: float, exposure_a: float, events_b: float, exposure_b: float
) -> float:
    """Two-sided p-value that the rates ``events / exposure`` of A and B are equal."""
    total = events_a + events_b
    if total <= 0 or exposure_a <= 0 or exposure_b <= 0:
        return 1.0
    share = exposure_b / (exposure_a + exposure_b)
    variance = total * share * (1 - share)
    if variance <= 0:
        return 1.0
    z = (events_b - total * share) / math.sqrt(variance)
    return min(1.0, math.erfc(abs(z) / math.sqrt(2)))


def indicator_shares(stats: RunStats) -> Counts:
    """Share metric → (hits, total)."""
    indicators = stats.indicators
    counts: Counts = {}
    for name, tier in indicators.tiers.items():
        total = tier.total()
        counts[f"objects.{name}.overlapping_share"] = (total.overlapping, total.upstream)
        counts[f"objects.{name}.stale_share"] = (total.stale, total.requests)
        counts[f"objects.{name}.held_past_share"] = (total.held_past, total.requests)
        counts[f"objects.{name}.5xx_rate"] = (total.status_5xx, total.requests)
        for kind, tally in tier.by_kind.items():
            counts[f"objects.{name}.{kind}.5xx_rate"] = (tally.status_5xx, tally.requests)
    client = indicators.client.counters
    counts["errors.early_404_share"] = (client["early_404"], client["media_requests"])
    counts["errors.held_past_share"] = (client["held_past"], stats.total_requests)
    too_old = too_old_counts(stats)
    if too_old is not None:
        counts["freshness.too_old_share"] = too_old
    return counts


def indicator_rates(stats: RunStats) -> Counts:
    """Per-exposure metric → (events, exposure)."""
    indicators = stats.indicators
    counts: Counts = {}
    for name, tier in indicators.tiers.items():
        total = tier.total()
        counts[f"objects.{name}.upstream_per_object"] = (total.upstream, total.objects)
        for kind, tally in tier.by_kind.items():
            counts[f"objects.{name}.{kind}.upstream_per_object"] = (tally.upstream, tally.objects)
    client = indicators.client.counters
    counts["retry.retries_per_failed_request"] = (client["retries"], client["retried_requests"])
    steady, _ = tier_loads(stats)
    for name, load in steady.items():
        counts[f"load.{name}.requests_per_viewer_s"] = (load.requests, load.viewer_seconds)
    return counts


def paired(
    a: RunStats, b: RunStats, counts_of: Callable[[RunStats], Counts]
) -> list[tuple[str, tuple[float, float], tuple[float, float]]]:
    """(metric, A's counts, B's counts) for the metrics both runs measured."""
    counts_a, counts_b = counts_of(a), counts_of(b)
    return [
        (metric, counts_a[metric], counts_b[metric])
        for metric in sorted(counts_a)
        if metric in counts_b and counts_a[metric][1] > 0 and counts_b[metric][1] > 0
    ]
