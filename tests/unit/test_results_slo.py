"""SLOs: metric measurement, GO/NO-GO naming each violation, parsing errors naming the key."""

from __future__ import annotations

import json

import pytest

from livecast.errors import ConfigError
from livecast.results.slo import (
    DEFAULT_SLOS,
    EXIT_COULD_NOT_RUN,
    EXIT_GO,
    EXIT_NO_GO,
    Slo,
    Verdict,
    measure,
    parse_slos,
    verdict,
)
from livecast.results.stats import LatencySummary, RunStats, ViewerOutcome


def _run(startup_s: float, latency_s: float, origin_5xx: float = 0.0) -> RunStats:
    stats = RunStats()
    for i in range(100):
        stats.record_viewer(
            ViewerOutcome(
                startup_s=startup_s + i * 0.001,
                played_s=30.0,
                latency=LatencySummary.of([latency_s]),
                avg_bitrate_bps=2e6,
            )
        )
        stats.record_request("part", 200, 0.05, float(i % 30))
    stats.set_tier_series(
        {
            "origin": [(0.0, 0.0, 0.0), (30.0, 3000.0, 3000.0 * origin_5xx)],
            "edge": [(0.0, 0.0, 0.0), (30.0, 6000.0, 0.0)],
        }
    )
    return stats


def test_exit_codes() -> None:
    assert (EXIT_GO, EXIT_NO_GO, EXIT_COULD_NOT_RUN) == (0, 1, 2)


def test_measure_metric_families() -> None:
    stats = _run(1.0, 2.0, origin_5xx=0.05)
    [startup] = measure(stats, "viewers.startup_s.p95")
    assert startup.value == pytest.approx(1.095, rel=0.01)
    assert measure(stats, "viewers.fatal_error_rate")[0].value == 0.0
    assert measure(stats, "viewers.rebuffering_ratio")[0].value == 0.0
    assert measure(stats, "requests.part.latency_s.p50")[0].value == pytest.approx(0.05, rel=0.01)
    assert measure(stats, "requests.all.5xx_rate")[0].value == 0.0
    tiers = {m.subject: m.value for m in measure(stats, "tiers.*.5xx_rate")}
    assert tiers == {"tiers.edge.5xx_rate": 0.0, "tiers.origin.5xx_rate": pytest.approx(0.05)}
    assert measure(stats, "tiers.edge.requests_per_s")[0].value == pytest.approx(200.0)
    assert measure(RunStats(), "viewers.startup_s.p95")[0].value is None
    with pytest.raises(ValueError, match="unknown metric"):
        measure(stats, "viewers.happiness.p95")


def test_healthy_run_is_go() -> None:
    result = verdict(_run(1.0, 2.0))
    assert result.go and result.exit_code == EXIT_GO and result.summary() == "GO"
    assert len(result.checks) == len(DEFAULT_SLOS) + 1  # the tier wildcard checks two tiers


def test_slow_run_is_no_go_naming_each_violation_with_its_figure() -> None:
    result = verdict(_run(4.0, 6.5, origin_5xx=0.05))
    assert not result.go and result.exit_code == EXIT_NO_GO
    names = [c.slo.name for c in result.violations]
    assert names == ["startup_p95", "latency_p95", "tier_5xx_rate"]
    summary = result.summary()
    assert summary.startswith("NO-GO: startup_p95 (viewers.startup_s.p95 = 4.09")
    assert "latency_p95 (viewers.latency_behind_live_s.p95 = 6.5, SLO <= 5)" in summary
    assert "tiers.origin.5xx_rate = 0.05" in summary
    assert "VIOLATED" in result.violations[0].describe()


def test_unmeasured_slo_does_not_fail_the_run() -> None:
    result = verdict(RunStats())
    assert result.go
    assert all(not c.measured_ok for c in result.checks)
    assert "not measured" in result.checks[0].describe()


def test_verdict_round_trips_through_json() -> None:
    result = verdict(_run(4.0, 2.0))
    back = Verdict.from_dict(json.loads(json.dumps(result.to_dict())))
    assert back == result and back.summary() == result.summary()


def test_parse_slos_overrides_adds_and_drops_defaults() -> None:
    slos = parse_slos(
        {
            "startup_p95": 2.5,
            "part_p99": {"metric": "requests.part.latency_s.p99", "op": "<", "threshold": 0.5},
        }
    )
    by_name = {slo.name: slo for slo in slos}
    assert by_name["startup_p95"] == Slo("startup_p95", "viewers.startup_s.p95", "<=", 2.5)
    assert by_name["part_p99"] == Slo("part_p99", "requests.part.latency_s.p99", "<", 0.5)
    assert len(slos) == len(DEFAULT_SLOS) + 1
    only = parse_slos({"defaults": False, "x": {"metric": "viewers.switches.mean", "threshold": 3}})
    assert only == (Slo("x", "viewers.switches.mean", "<=", 3.0),)


@pytest.mark.parametrize(
    ("table", "bad_key"),
    [
        ({"startup_p95": "fast"}, "slo.startup_p95"),
        ({"mystery": 1.0}, "slo.mystery"),
        ({"x": {"metric": "viewers.nope.p95", "threshold": 1}}, "slo.x.metric"),
        ({"x": {"metric": "viewers.startup_s.p95", "op": "==", "threshold": 1}}, "slo.x.op"),
        ({"x": {"metric": "viewers.startup_s.p95"}}, "slo.x.threshold"),
        ({"x": {"metric": "viewers.startup_s.p95", "threshold": True}}, "slo.x.threshold"),
        ({"x": {"metric": "viewers.startup_s.p95", "threshold": 1, "unit": "s"}}, "slo.x.unit"),
        ({"defaults": "yes"}, "slo.defaults"),
    ],
)
def test_parse_errors_name_the_bad_key(table: dict[str, object], bad_key: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_slos(table)
    assert raised.value.key == bad_key
