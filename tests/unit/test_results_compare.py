"""A/B compare: Mann-Whitney U, bootstrap intervals, regression verdict and exit codes."""

from __future__ import annotations

import functools
import json
import math
import random
from pathlib import Path

import pytest

from livecast.results.compare import (
    EXIT_NO_REGRESSION,
    EXIT_REGRESSION,
    EXIT_UNUSABLE_INPUT,
    bootstrap_difference_interval,
    compare,
    compare_files,
    mann_whitney_u,
    render_table,
    two_proportion_p_value,
)
from livecast.results.report import results_document, write_results
from livecast.results.slo import verdict
from livecast.results.stats import LatencySummary, RunStats, ViewerOutcome


def _document(
    seed: int, startup_scale: float = 1.0, part_scale: float = 1.0, fatal_every: int = 0
) -> dict[str, object]:
    """A results.json document of 1,000 viewers with lognormal startup and part latency."""
    document: dict[str, object] = json.loads(
        _document_text(seed, startup_scale, part_scale, fatal_every)
    )
    return document


@functools.cache
def _document_text(seed: int, startup_scale: float, part_scale: float, fatal_every: int) -> str:
    rng = random.Random(seed)
    stats = RunStats(seed=seed)
    for i in range(1000):
        fatal = fatal_every and i % fatal_every == 0
        stats.record_viewer(
            ViewerOutcome(
                startup_s=None if fatal else startup_scale * rng.lognormvariate(0.0, 0.3),
                start_failed=bool(fatal),
                fatal_error="fragment" if fatal else None,
                played_s=30.0,
                stalled_s=rng.choice([0.0, 0.0, 0.0, 0.4]),
                latency=LatencySummary.of([2.0 + rng.random()]),
                avg_bitrate_bps=rng.choice([8e5, 1.6e6, 3e6]),
            )
        )
        for _ in range(3):
            stats.record_request("part", 200, part_scale * rng.lognormvariate(-3.0, 0.4), 0.0)
    return json.dumps(results_document(stats, verdict(stats), {"seed": seed}))


def test_mann_whitney_u_matches_a_hand_computed_example() -> None:
    # x = 1 2 2 5, y = 2 3 4 6 7 → ranks of x: 1, 3, 3, 7 (the three 2s share rank 3)
    # R1 = 14, U = 14 − 4·5/2 = 4, mean U = 10, tie term 3³ − 3 = 24,
    # σ² = 20/12 · (10 − 24/72) = 16.111, z = (4 − 10 + 0.5)/4.0139 = −1.3703, p = 0.1706
    result = mann_whitney_u([1, 2, 2, 5], [2, 3, 4, 6, 7])
    assert result.u == 4.0
    assert result.z == pytest.approx(-1.37025, abs=1e-4)
    assert result.p_value == pytest.approx(0.17061, abs=1e-4)


def test_mann_whitney_u_edge_cases() -> None:
    assert mann_whitney_u([1.0, 1.0], [1.0, 1.0]).p_value == 1.0
    separated = mann_whitney_u(list(range(100)), list(range(100, 200)))
    assert separated.u == 0.0 and separated.p_value < 1e-30
    with pytest.raises(ValueError):
        mann_whitney_u([], [1.0])


def test_two_proportion_test() -> None:
    assert two_proportion_p_value(10, 1000, 10, 1000) == 1.0
    assert two_proportion_p_value(0, 1000, 0, 1000) == 1.0
    assert two_proportion_p_value(10, 1000, 60, 1000) < 1e-6


def test_bootstrap_interval_is_seeded_and_covers_the_shift() -> None:
    rng = random.Random(5)
    a = [rng.gauss(10.0, 1.0) for _ in range(500)]
    b = [x + 2.0 for x in a]
    low, high = bootstrap_difference_interval(a, b, seed=1)
    assert low < 2.0 < high and high - low < 1.0
    assert bootstrap_difference_interval(a, b, seed=1) == (low, high)


def test_identical_runs_do_not_regress() -> None:
    document = _document(1)
    comparison = compare(document, document)
    assert comparison.exit_code == EXIT_NO_REGRESSION
    assert not comparison.regressions
    assert all(m.p_value == 1.0 for m in comparison.metrics if m.test != "bootstrap")
    assert all(m.difference == 0.0 for m in comparison.metrics)
    assert "no regression" in render_table(comparison)


def test_clearly_slower_b_regresses_with_tiny_p() -> None:
    comparison = compare(_document(1), _document(2, startup_scale=1.5, part_scale=1.3))
    assert comparison.exit_code == EXIT_REGRESSION
    regressed = {(m.metric, m.statistic): m for m in comparison.regressions}
    assert set(regressed) == {
        ("viewers.startup_s", "median"),
        ("viewers.startup_s", "p95"),
        ("requests.part.latency_s", "median"),
        ("requests.part.latency_s", "p95"),
    }
    startup = regressed[("viewers.startup_s", "median")]
    assert startup.test == "mann-whitney" and startup.p_value < 1e-12
    assert startup.b / startup.a == pytest.approx(1.5, rel=0.1)
    assert startup.interval is not None and startup.interval[0] > 0
    table = render_table(comparison)
    assert "REGRESSED" in table and "viewers.startup_s" in table
    assert table.splitlines()[-1] == (
        "REGRESSION: B regresses A in viewers.startup_s (median), viewers.startup_s (p95), "
        "requests.part.latency_s (median), requests.part.latency_s (p95)"
    )
    assert "mann-whitney" in table and "bootstrap" in table


def test_faster_b_is_not_a_regression() -> None:
    comparison = compare(_document(1, startup_scale=1.5), _document(2))
    assert comparison.exit_code == EXIT_NO_REGRESSION
    startup = next(m for m in comparison.metrics if m.metric == "viewers.startup_s")
    assert startup.significant and not startup.regressed
    assert not comparison.regressions


def test_small_noise_is_not_significant() -> None:
    comparison = compare(_document(1), _document(2, startup_scale=1.01))
    assert comparison.exit_code == EXIT_NO_REGRESSION
    startup = next(m for m in comparison.metrics if m.metric == "viewers.startup_s")
    assert not startup.significant and not startup.worse_beyond_tolerance


def test_a_heavier_tail_regresses_the_p95_only() -> None:
    a = _document(1)
    b = _document(1)  # the same viewers, but the slowest 8 % now start 3× slower
    startup = b["stats"]["viewers"]["samples"]["startup_s"]  # type: ignore[index]
    values = startup["values"]
    cut = sorted(values)[int(len(values) * 0.92)]
    startup["values"] = [v * 3 if v >= cut else v for v in values]
    comparison = compare(a, b)
    rows = {m.statistic: m for m in comparison.metrics if m.metric == "viewers.startup_s"}
    assert rows["p95"].regressed and rows["p95"].test == "bootstrap"
    assert rows["p95"].interval is not None and rows["p95"].interval[0] > 0
    assert not rows["median"].worse_beyond_tolerance


def test_fatal_error_rate_regression_uses_the_proportion_test() -> None:
    comparison = compare(_document(1), _document(2, fatal_every=10))
    fatal = next(m for m in comparison.metrics if m.metric == "viewers.fatal_error_rate")
    assert (fatal.a, fatal.b) == (0.0, 0.1)
    assert fatal.regressed and fatal.statistic == "rate"
    assert comparison.exit_code == EXIT_REGRESSION


def test_tier_5xx_rate_is_compared_from_the_tier_counters() -> None:
    a, b = _document(1), _document(2)
    a["stats"]["tiers"] = {"origin": {"samples": [[0, 0, 0], [30, 30_000, 3]]}}  # type: ignore[index]
    b["stats"]["tiers"] = {"origin": {"samples": [[0, 0, 0], [30, 30_000, 900]]}}  # type: ignore[index]
    comparison = compare(a, b)
    tier = next(m for m in comparison.metrics if m.metric == "tiers.origin.5xx_rate")
    assert tier.b == pytest.approx(0.03) and tier.regressed


def test_unusable_input_exits_2() -> None:
    comparison = compare({"schema": "nope"}, _document(1))
    assert comparison.exit_code == EXIT_UNUSABLE_INPUT
    assert comparison.summary().startswith("unusable input: A: ")
    assert compare(_document(1), []).summary().startswith("unusable input: B: ")
    empty = json.loads(json.dumps(results_document(RunStats(), verdict(RunStats()), {})))
    assert compare(empty, empty).exit_code == EXIT_UNUSABLE_INPUT


def test_compare_files(tmp_path: Path) -> None:
    stats = RunStats()
    for i in range(50):
        stats.record_viewer(ViewerOutcome(startup_s=1.0 + i / 100, played_s=10.0))
    write_results(tmp_path / "a", stats, verdict(stats), {})
    result = compare_files(tmp_path / "a" / "results.json", tmp_path / "a" / "results.json")
    assert result.exit_code == EXIT_NO_REGRESSION
    missing = compare_files(tmp_path / "a" / "results.json", tmp_path / "b.json")
    assert missing.exit_code == EXIT_UNUSABLE_INPUT and "B: cannot read" in missing.summary()
    assert not math.isnan(result.metrics[0].a)
