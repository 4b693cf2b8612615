"""The simulator's validation figures: SLO definitions, tolerance and floors, the table."""

from __future__ import annotations

import json
import math

import pytest

from livecast.results.report import load_results, results_document
from livecast.results.slo import DEFAULT_SLOS, measure, verdict
from livecast.results.stats import LatencySummary, RunStats, ViewerOutcome
from livecast.results.validation import (
    ABSOLUTE_FLOORS,
    FIGURES,
    METRICS,
    ValidationRow,
    agreement,
    agrees,
    tolerance,
    validation_figures,
    validation_rows,
    validation_table,
)


def _run(viewers: int = 100, stalled_s: float = 0.0, five_xx_every: int = 0) -> RunStats:
    stats = RunStats()
    for i in range(viewers):
        stats.record_viewer(
            ViewerOutcome(
                startup_s=0.5 + i * 0.01,
                played_s=30.0,
                stalled_s=stalled_s,
                stalls=1 if stalled_s else 0,
                latency=LatencySummary.of([1.5]),
                avg_bitrate_bps=2e6,
            )
        )
    for i in range(1000):
        status = 503 if five_xx_every and i % five_xx_every == 0 else 200
        stats.record_request("part", status, 0.05, float(i % 30))
    stats.record_request("playlist", "timeout", None, 3.0)  # a transport failure: not a 5xx
    stats.set_tier_series(
        {
            "origin": [(0.0, 0.0, 0.0), (10.0, 400.0, 0.0), (40.0, 1600.0, 0.0)],
            "edge": [(0.0, 0.0, 0.0), (40.0, 40000.0, 0.0)],
        }
    )
    stats.tiers["edge"].cache_lookups = 40000.0
    stats.tiers["edge"].cache_hits = 38000.0
    return stats


def test_figures_are_the_slo_metrics_of_the_same_name() -> None:
    stats = _run(stalled_s=0.6, five_xx_every=50)
    figures = validation_figures(stats)
    assert tuple(figures) == FIGURES
    assert figures == {
        "origin_requests_per_s": pytest.approx(40.0),  # 1600 requests over 40 s
        "edge_hit_ratio": pytest.approx(0.95),
        "five_xx_rate": pytest.approx(20 / 1001),  # the timeout counts as a request
        "startup_p95_s": pytest.approx(1.44, rel=0.01),
        "rebuffering_ratio": pytest.approx(0.6 / 30.6),
    }
    assert figures["five_xx_rate"] == stats.request_share("5")
    assert figures["edge_hit_ratio"] == stats.tiers["edge"].hit_ratio
    assert figures["origin_requests_per_s"] == stats.tiers["origin"].mean_requests_per_s
    assert figures["rebuffering_ratio"] == stats.viewers.rebuffering_ratio
    assert figures["startup_p95_s"] == stats.viewers.distributions["startup_s"].percentile(95)
    for name, metric in METRICS.items():
        assert figures[name] == measure(stats, metric)[0].value


def test_default_slos_judge_the_same_figures() -> None:
    stats = _run(stalled_s=0.6, five_xx_every=50)
    figures = validation_figures(stats)
    checks = {check.subject: check.measured for check in verdict(stats, DEFAULT_SLOS).checks}
    assert checks["viewers.startup_s.p95"] == figures["startup_p95_s"]
    assert checks["viewers.rebuffering_ratio"] == figures["rebuffering_ratio"]


def test_figures_survive_results_json() -> None:
    stats = _run(stalled_s=0.3, five_xx_every=100)
    document = json.loads(json.dumps(results_document(stats, verdict(stats), {})))
    assert validation_figures(load_results(document).stats) == pytest.approx(
        validation_figures(stats)
    )


def test_unmeasured_figures_are_none() -> None:
    figures = validation_figures(RunStats())
    assert figures == dict.fromkeys(FIGURES)


def test_relative_tolerance_of_fifteen_percent() -> None:
    assert agrees("origin_requests_per_s", 114.9, 100.0)
    assert agrees("origin_requests_per_s", 85.1, 100.0)
    assert not agrees("origin_requests_per_s", 115.1, 100.0)
    assert not agrees("startup_p95_s", 0.5, 0.8)
    assert agrees("edge_hit_ratio", 0.85, 0.98)
    assert tolerance("startup_p95_s", 2.0) == pytest.approx(0.3)


def test_absolute_floor_for_near_zero_rates() -> None:
    assert ABSOLUTE_FLOORS["five_xx_rate"] == ABSOLUTE_FLOORS["rebuffering_ratio"] == 0.005
    assert agrees("five_xx_rate", 0.0, 0.004)  # 100 % off, but within the floor
    assert agrees("rebuffering_ratio", 0.0049, 0.0)
    assert not agrees("rebuffering_ratio", 0.006, 0.0)
    assert agrees("rebuffering_ratio", 0.215, 0.19)  # above the floor: 15 % of 0.19 = 0.0285
    assert not agrees("rebuffering_ratio", 0.10, 0.19)
    assert tolerance("five_xx_rate", 0.001) == 0.005
    assert tolerance("five_xx_rate", 0.1) == pytest.approx(0.015)
    assert agrees("origin_requests_per_s", 0.0, 0.0)  # no floor, but equal
    assert not agrees("origin_requests_per_s", 0.1, 0.0)


def test_missing_or_not_finite_values_never_agree() -> None:
    assert not agrees("startup_p95_s", None, 1.0)
    assert not agrees("startup_p95_s", 1.0, None)
    assert not agrees("startup_p95_s", math.nan, 1.0)
    assert not agrees("startup_p95_s", math.inf, 1.0)
    with pytest.raises(KeyError, match="unknown validation figure"):
        agrees("happiness", 1.0, 1.0)
    with pytest.raises(KeyError):
        agrees("happiness", None, 1.0)


def test_rows_and_agreement_count_only_measured_figures() -> None:
    measured = {
        "origin_requests_per_s": 60.0,
        "edge_hit_ratio": None,  # no edges
        "five_xx_rate": 0.0,
        "startup_p95_s": 0.8,
        "rebuffering_ratio": 0.19,
    }
    predicted = {
        "origin_requests_per_s": 50.0,
        "edge_hit_ratio": 0.97,
        "five_xx_rate": 0.001,
        "startup_p95_s": None,
        "rebuffering_ratio": 0.2,
    }
    rows = validation_rows("slow", measured, predicted)
    assert [row.figure for row in rows] == list(FIGURES)
    by_name = {row.figure: row for row in rows}
    assert by_name["origin_requests_per_s"].difference == pytest.approx(-10.0)
    assert not by_name["edge_hit_ratio"].compared
    assert by_name["startup_p95_s"].compared and not by_name["startup_p95_s"].within
    assert agreement(rows) == (2, 4)  # 5xx and rebuffering; requests −17 %; startup missing
    assert agreement(validation_rows("x", measured, None)) == (0, 4)


def test_table_is_markdown_with_the_total() -> None:
    rows = [
        ValidationRow("healthy", "origin_requests_per_s", 62.49, 58.0),
        ValidationRow("healthy", "five_xx_rate", 0.0, 0.0012),
        ValidationRow("healthy", "edge_hit_ratio", None, 0.98),
        ValidationRow("slow", "rebuffering_ratio", 0.1869, 0.1),
        ValidationRow("slow", "startup_p95_s", 0.91, None),
    ]
    text = validation_table(rows)
    lines = text.splitlines()
    assert lines[0] == (
        "| scenario | figure | measured | predicted | difference | within tolerance |"
    )
    assert lines[1] == "|---|---|---|---|---|---|"
    assert (
        lines[2]
        == "| healthy | origin_requests_per_s | 62.49 | 58 | -4.49 (-7.2 %) | yes (±9.373) |"
    )
    assert lines[3] == "| healthy | five_xx_rate | 0 | 1.20e-03 | +1.20e-03 | yes (±5.00e-03) |"
    assert lines[4] == "| healthy | edge_hit_ratio | — | 0.98 | — | not measured |"
    assert lines[5].startswith("| slow | rebuffering_ratio | 0.1869 | 0.1 | -0.0869 (-46.5 %) | NO")
    assert lines[6] == "| slow | startup_p95_s | 0.91 | — | — | no prediction |"
    assert lines[-1] == "2 of 4 within tolerance"
    assert text.endswith("\n")
