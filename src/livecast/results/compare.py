"""A/B comparison of two results.json documents: does run B regress run A?

Per metric, the difference B − A of a statistic and a significance test:

* per-viewer and per-request distributions (startup time, latency behind live, rebuffering ratio,
  stalled time, average bitrate, request latency per kind) — the Mann-Whitney U test (normal
  approximation with tie correction and continuity correction) on the reservoir samples kept in
  results.json, and a seeded bootstrap confidence interval (level ``1 − alpha``) of the difference
  of medians (or means, for mostly-zero metrics such as the rebuffering ratio);
* rates (fatal errors per viewer, video start failures, request errors and 5xx per kind) — a
  two-proportion z-test on the counts;
* the scale-invariant indicators (upstream requests per object, collapse, freshness, early 404s,
  retries, load per viewer) — ``compare_indicators``: shares by the two-proportion test, counts
  per exposure by a test of two Poisson rates.

A metric *regresses* when B is worse than A by more than the tolerance (``tolerance`` × |A|, and
at least the metric's absolute tolerance) AND the difference is significant (p < ``alpha``,
0.01 by default). Exit codes: :data:`EXIT_NO_REGRESSION` 0, :data:`EXIT_REGRESSION` 1,
:data:`EXIT_UNUSABLE_INPUT` 2.

    comparison = compare(json.loads(a_text), json.loads(b_text))
    print(render_table(comparison)); sys.exit(comparison.exit_code)
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from livecast.results.compare_indicators import (
    MIN_EXPOSURE,
    indicator_rates,
    indicator_shares,
    paired,
    poisson_rates_p_value,
)
from livecast.results.histogram import percentile
from livecast.results.report import ResultsError, load_results, read_results
from livecast.results.stats import REQUEST_KINDS, RunStats

EXIT_NO_REGRESSION = 0
EXIT_REGRESSION = 1
EXIT_UNUSABLE_INPUT = 2

DEFAULT_TOLERANCE = 0.05
DEFAULT_ALPHA = 0.01
BOOTSTRAP_RESAMPLES = 200
BOOTSTRAP_MAX_SAMPLE = 2000


@dataclass(frozen=True)
class MannWhitney:
    u: float  # U statistic of the first sample
    z: float
    p_value: float  # two-sided


def _average_ranks(values: Sequence[float]) -> tuple[list[float], float]:
    """Ranks (1-based, ties averaged) of ``values`` in their order, and Σ(t³ − t) over ties."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    tie_term = 0.0
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        average = (start + end) / 2 + 1
        for position in range(start, end + 1):
            ranks[order[position]] = average
        ties = end - start + 1
        tie_term += ties**3 - ties
        start = end + 1
    return ranks, tie_term


def mann_whitney_u(x: Sequence[float], y: Sequence[float]) -> MannWhitney:
    """Two-sided Mann-Whitney U test, normal approximation with tie and continuity correction."""
    n1, n2 = len(x), len(y)
    if not n1 or not n2:
        raise ValueError("Mann-Whitney U needs two non-empty samples")
    ranks, tie_term = _average_ranks([*x, *y])
    u = math.fsum(ranks[:n1]) - n1 * (n1 + 1) / 2
    n = n1 + n2
    mean_u = n1 * n2 / 2
    variance = n1 * n2 / 12 * ((n + 1) - tie_term / (n * (n - 1)))
    if variance <= 0:
        return MannWhitney(u, 0.0, 1.0)
    distance = max(0.0, abs(u - mean_u) - 0.5)
    z = math.copysign(distance, u - mean_u) / math.sqrt(variance)
    return MannWhitney(u, z, min(1.0, math.erfc(abs(z) / math.sqrt(2))))


def two_proportion_p_value(hits_a: float, total_a: float, hits_b: float, total_b: float) -> float:
    """Two-sided p-value of a two-proportion z-test (pooled variance)."""
    pooled = (hits_a + hits_b) / (total_a + total_b)
    variance = pooled * (1 - pooled) * (1 / total_a + 1 / total_b)
    if variance <= 0:
        return 1.0
    z = (hits_b / total_b - hits_a / total_a) / math.sqrt(variance)
    return min(1.0, math.erfc(abs(z) / math.sqrt(2)))


def _p95(values: Sequence[float]) -> float:
    return percentile(sorted(values), 95)


_STATISTICS: dict[str, Callable[[Sequence[float]], float]] = {
    "median": statistics.median,
    "mean": statistics.fmean,
    "p95": _p95,
}


def bootstrap_differences(
    a: Sequence[float],
    b: Sequence[float],
    statistic: str = "median",
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> list[float]:
    """Sorted statistic(b*) − statistic(a*) over seeded bootstrap resamples a*, b*."""
    rng = random.Random(seed)
    of = _STATISTICS[statistic]
    a = a if len(a) <= BOOTSTRAP_MAX_SAMPLE else rng.sample(list(a), BOOTSTRAP_MAX_SAMPLE)
    b = b if len(b) <= BOOTSTRAP_MAX_SAMPLE else rng.sample(list(b), BOOTSTRAP_MAX_SAMPLE)
    return sorted(
        of(rng.choices(b, k=len(b))) - of(rng.choices(a, k=len(a))) for _ in range(resamples)
    )


def percentile_interval(differences: Sequence[float], level: float) -> tuple[float, float]:
    """The central ``level`` interval of sorted bootstrap differences."""
    count = len(differences)
    tail = (1 - level) / 2
    low = differences[max(0, math.floor(tail * count))]
    high = differences[min(count - 1, math.ceil((1 - tail) * count) - 1)]
    return low, high


def bootstrap_p_value(differences: Sequence[float]) -> float:
    """Two-sided bootstrap p-value of "no difference"; at least 1 / number of resamples."""
    count = len(differences)
    at_or_below = sum(1 for d in differences if d <= 0)
    at_or_above = sum(1 for d in differences if d >= 0)
    if at_or_below == count and at_or_above == count:
        return 1.0  # every resample shows exactly no difference
    return min(1.0, max(1 / count, 2 * min(at_or_below, at_or_above) / count))


def bootstrap_difference_interval(
    a: Sequence[float],
    b: Sequence[float],
    statistic: str = "median",
    level: float = 0.99,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile-bootstrap interval of statistic(b) − statistic(a); seeded, so repeatable."""
    return percentile_interval(bootstrap_differences(a, b, statistic, resamples, seed), level)


@dataclass(frozen=True)
class MetricComparison:
    metric: str
    statistic: str  # "median", "mean", "p95", "rate" or "ratio" (events per exposure)
    test: str  # "mann-whitney", "bootstrap", "two-proportion" or "poisson"
    a: float
    b: float
    p_value: float
    worse_beyond_tolerance: bool
    significant: bool
    interval: tuple[float, float] | None = None  # bootstrap interval of b − a

    @property
    def difference(self) -> float:
        return self.b - self.a

    @property
    def regressed(self) -> bool:
        return self.worse_beyond_tolerance and self.significant


@dataclass(frozen=True)
class Comparison:
    metrics: tuple[MetricComparison, ...]
    problems: tuple[str, ...] = ()  # why the input was unusable
    alpha: float = DEFAULT_ALPHA
    tolerance: float = DEFAULT_TOLERANCE

    @property
    def regressions(self) -> tuple[MetricComparison, ...]:
        return tuple(m for m in self.metrics if m.regressed)

    @property
    def exit_code(self) -> int:
        if self.problems:
            return EXIT_UNUSABLE_INPUT
        return EXIT_REGRESSION if self.regressions else EXIT_NO_REGRESSION

    def summary(self) -> str:
        if self.problems:
            return "unusable input: " + "; ".join(self.problems)
        if not self.regressions:
            return "no regression: B does not regress A"
        named = ", ".join(f"{m.metric} ({m.statistic})" for m in self.regressions)
        return "REGRESSION: B regresses A in " + named


@dataclass(frozen=True)
class _Spec:
    """How one sampled metric is compared."""

    metric: str
    statistic: str
    higher_is_worse: bool
    absolute_tolerance: float


def _sampled_specs(a: RunStats, b: RunStats) -> list[tuple[_Spec, list[float], list[float]]]:
    specs = [
        (_Spec("viewers.startup_s", "median", True, 0.02), "startup_s"),
        (_Spec("viewers.startup_s", "p95", True, 0.05), "startup_s"),
        (_Spec("viewers.latency_behind_live_s", "median", True, 0.02), "latency_behind_live_s"),
        (_Spec("viewers.latency_behind_live_s", "p95", True, 0.05), "latency_behind_live_s"),
        (_Spec("viewers.rebuffering_ratio", "mean", True, 0.001), "rebuffering_ratio"),
        (_Spec("viewers.stalled_s", "mean", True, 0.05), "stalled_s"),
        (_Spec("viewers.avg_bitrate_bps", "median", False, 10_000.0), "avg_bitrate_bps"),
    ]
    chosen = [
        (spec, a.viewers.samples[name].values(), b.viewers.samples[name].values())
        for spec, name in specs
    ] + [  # start-over viewers, when both runs had them (report_dvr)
        (
            replace(spec, metric="dvr_" + spec.metric),
            a.dvr_viewers.samples[name].values(),
            b.dvr_viewers.samples[name].values(),
        )
        for spec, name in specs
    ]
    for kind in (*REQUEST_KINDS, *sorted(set(a.requests) - set(REQUEST_KINDS))):
        if kind in a.requests and kind in b.requests:
            samples_a = a.requests[kind].latency_sample.values()
            samples_b = b.requests[kind].latency_sample.values()
            for statistic in ("median", "p95"):
                spec = _Spec(f"requests.{kind}.latency_s", statistic, True, 0.001)
                chosen.append((spec, samples_a, samples_b))
    return [(spec, xs, ys) for spec, xs, ys in chosen if xs and ys]


def _is_worse(
    spec_higher_is_worse: bool, a: float, b: float, tolerance: float, floor: float
) -> bool:
    worsening = b - a if spec_higher_is_worse else a - b
    return worsening > max(tolerance * abs(a), floor)


def _compare_sampled(
    spec: _Spec, xs: list[float], ys: list[float], tolerance: float, alpha: float, seed: int
) -> MetricComparison:
    of = _STATISTICS[spec.statistic]
    a_value, b_value = of(xs), of(ys)
    differences = bootstrap_differences(xs, ys, spec.statistic, seed=seed)
    if spec.statistic == "p95":  # a tail: Mann-Whitney tests the bulk, the bootstrap the tail
        test, p_value = "bootstrap", bootstrap_p_value(differences)
    else:
        test, p_value = "mann-whitney", mann_whitney_u(xs, ys).p_value
    return MetricComparison(
        metric=spec.metric,
        statistic=spec.statistic,
        test=test,
        a=a_value,
        b=b_value,
        p_value=p_value,
        worse_beyond_tolerance=_is_worse(
            spec.higher_is_worse, a_value, b_value, tolerance, spec.absolute_tolerance
        ),
        significant=p_value < alpha,
        interval=percentile_interval(differences, 1 - alpha),
    )


def _rate_counts(stats: RunStats) -> dict[str, tuple[float, float]]:
    """Rate metric → (hits, total)."""
    counts: dict[str, tuple[float, float]] = {}
    for family, group in (("viewers", stats.viewers), ("dvr_viewers", stats.dvr_viewers)):
        viewers = group.counters
        counts |= {
            f"{family}.fatal_error_rate": (viewers["fatal_errors"], viewers["viewers"]),
            f"{family}.video_start_failure_rate": (viewers["start_failures"], viewers["viewers"]),
            f"{family}.exit_before_start_rate": (viewers["exits_before_start"], viewers["viewers"]),
        }
    for kind, kind_stats in stats.requests.items():
        counts[f"requests.{kind}.error_rate"] = (kind_stats.errors, kind_stats.total)
        counts[f"requests.{kind}.5xx_rate"] = (kind_stats.count_where("5"), kind_stats.total)
    for tier, counters in stats.tiers.items():
        counts[f"tiers.{tier}.5xx_rate"] = (counters.responses_5xx, counters.requests)
    return counts


def _compare_counts(
    pairs: list[tuple[str, tuple[float, float], tuple[float, float]]],
    test: str,
    tolerance: float,
    alpha: float,
) -> list[MetricComparison]:
    """(events, exposure) of A and B per metric: shares ("two-proportion") or events per
    exposure ("poisson"); higher is worse for all of them."""
    statistic, p_of = {
        "two-proportion": ("rate", two_proportion_p_value),
        "poisson": ("ratio", poisson_rates_p_value),
    }[test]
    compared = []
    for metric, (hits_a, total_a), (hits_b, total_b) in pairs:
        rate_a, rate_b = hits_a / total_a, hits_b / total_b
        p_value = p_of(hits_a, total_a, hits_b, total_b)
        compared.append(
            MetricComparison(
                metric=metric,
                statistic=statistic,
                test=test,
                a=rate_a,
                b=rate_b,
                p_value=p_value,
                worse_beyond_tolerance=_is_worse(True, rate_a, rate_b, tolerance, 0.001),
                significant=p_value < alpha,
            )
        )
    return compared


def _compare_rates(
    a: RunStats, b: RunStats, tolerance: float, alpha: float
) -> list[MetricComparison]:
    shares = paired(a, b, _rate_counts) + paired(a, b, indicator_shares)
    per_exposure = [  # events per exposure (upstream requests per object, …)
        pair
        for pair in paired(a, b, indicator_rates)
        if min(pair[1][1], pair[2][1]) >= MIN_EXPOSURE
    ]
    return _compare_counts(shares, "two-proportion", tolerance, alpha) + _compare_counts(
        per_exposure, "poisson", tolerance, alpha
    )


def compare(
    a: object,
    b: object,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    alpha: float = DEFAULT_ALPHA,
    seed: int = 0,
) -> Comparison:
    """Compare two parsed results.json documents (A the baseline, B the candidate)."""
    try:
        stats_a = load_results(a).stats
    except ResultsError as error:
        return Comparison((), (f"A: {error}",), alpha, tolerance)
    try:
        stats_b = load_results(b).stats
    except ResultsError as error:
        return Comparison((), (f"B: {error}",), alpha, tolerance)
    return compare_stats(stats_a, stats_b, tolerance=tolerance, alpha=alpha, seed=seed)


def compare_stats(
    a: RunStats,
    b: RunStats,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    alpha: float = DEFAULT_ALPHA,
    seed: int = 0,
) -> Comparison:
    sampled = [
        _compare_sampled(spec, xs, ys, tolerance, alpha, seed + i)
        for i, (spec, xs, ys) in enumerate(_sampled_specs(a, b))
    ]
    metrics = tuple(sampled + _compare_rates(a, b, tolerance, alpha))
    if not metrics:
        return Comparison((), ("A and B share no measured metric",), alpha, tolerance)
    return Comparison(metrics, (), alpha, tolerance)


def compare_files(a: Path, b: Path, **options: float) -> Comparison:
    """:func:`compare` of two results.json files; unreadable files make the input unusable."""
    loaded = []
    for label, path in (("A", a), ("B", b)):
        try:
            loaded.append(read_results(path).stats)
        except ResultsError as error:
            return Comparison((), (f"{label}: {error}",))
    return compare_stats(
        loaded[0],
        loaded[1],
        tolerance=options.get("tolerance", DEFAULT_TOLERANCE),
        alpha=options.get("alpha", DEFAULT_ALPHA),
        seed=int(options.get("seed", 0)),
    )


def _format(value: float) -> str:
    return f"{value:.4g}"


def _format_p(p_value: float) -> str:
    return "<1e-12" if p_value < 1e-12 else f"{p_value:.2g}"


def _relative(metric: MetricComparison) -> str:
    if metric.a == 0:
        return "n/a" if metric.b == 0 else "new"
    return f"{(metric.b - metric.a) / abs(metric.a) * 100:+.1f}%"


def render_table(comparison: Comparison) -> str:
    """A plain-text table, one metric a row, and the verdict line."""
    if comparison.problems:
        return comparison.summary()
    level = f"{(1 - comparison.alpha) * 100:g}% CI"
    headers = ["metric", "stat", "A", "B", "B-A", "change", level, "test", "p", "verdict"]
    rows = []
    for m in comparison.metrics:
        interval = f"[{_format(m.interval[0])}, {_format(m.interval[1])}]" if m.interval else ""
        if m.regressed:
            verdict = "REGRESSED"
        elif m.significant and m.difference != 0:
            verdict = "changed"
        else:
            verdict = "same"
        rows.append(
            [
                m.metric,
                m.statistic,
                _format(m.a),
                _format(m.b),
                f"{m.difference:+.4g}",
                _relative(m),
                interval,
                m.test,
                _format_p(m.p_value),
                verdict,
            ]
        )
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in [headers, *rows]
    ]
    return "\n".join([*(line.rstrip() for line in lines), "", comparison.summary()])
