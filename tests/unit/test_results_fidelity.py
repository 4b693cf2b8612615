"""The scale-invariant indicators as figures (``results.fidelity``), the projection to the target
audience (``results.projection``), their SLOs and their A/B comparison."""

from __future__ import annotations

import pytest

from livecast.errors import ConfigError
from livecast.results.compare import compare_stats
from livecast.results.compare_indicators import poisson_rates_p_value
from livecast.results.fidelity import (
    indicator_figures,
    known_indicator,
    metric_matches,
    projections,
    retry_wave,
)
from livecast.results.indicators import Capacity, ObjectTally, RunContext, TierObjects
from livecast.results.slo import DEFAULT_SLOS, parse_slos, verdict
from livecast.results.stats import RunStats, TierCounters
from livecast.scenario.file import parse_scenario

PART = 1 / 3


def steady_run(
    viewers: int = 200,
    seconds: int = 30,
    per_viewer: float = 12.0,
    edges: int = 2,
    objects_per_edge_s: int = 24,
    excess_per_s: float = 0.0,
) -> RunStats:
    """A run whose audience is all there from t = 0, through ``edges`` edges."""
    stats = RunStats()
    edge = stats.indicators.tiers["edge"] = TierObjects(instances=edges)
    for t in range(seconds):
        stats.set_active_viewers(t, viewers)
        second = stats.timeline.at(t)
        second.requests = int(viewers * per_viewer)
        new = objects_per_edge_s * edges
        edge.seconds[t] = [second.requests, int(new + excess_per_s), new, second.requests * 30_000]
    edge.by_kind["part"] = ObjectTally(
        requests=int(viewers * per_viewer * seconds),
        upstream=int((objects_per_edge_s * edges + excess_per_s) * seconds),
        objects=objects_per_edge_s * edges * seconds,
    )
    stats.tiers["origin"] = TierCounters(
        [(float(t), (objects_per_edge_s * edges + excess_per_s) * t, 0.0) for t in range(seconds)]
    )
    stats.indicators.context = RunContext(
        part_target=PART, target_duration=2.0, edges=edges, target_viewers=6_500_000,
        target_edges=200,
    )  # fmt: skip
    return stats


def test_metric_names_and_wildcards() -> None:
    assert metric_matches(
        "objects.*.*.upstream_per_object", "objects.edge.part.upstream_per_object"
    )
    assert not metric_matches(
        "objects.*.upstream_per_object", "objects.edge.part.upstream_per_object"
    )
    assert known_indicator("objects.*.*.upstream_per_object")
    assert known_indicator("projected.origin.utilisation")
    assert known_indicator("retry.wave_peak_to_mean")
    assert not known_indicator("retry.nonsense")
    assert not known_indicator("objects.edge.part.stale_share")  # per kind: upstream and errors
    with pytest.raises(ConfigError, match=r"slo\.x\.metric"):
        parse_slos({"x": {"metric": "projected.origin.speed", "threshold": 1}})


def test_upstream_per_object_and_the_projection_at_the_target_audience() -> None:
    stats = steady_run()
    figures = indicator_figures(stats)
    assert figures["objects.edge.upstream_per_object"] == 1.0
    assert figures["load.edge.requests_per_viewer_s"] == pytest.approx(12.0)
    by_tier = {p.tier: p for p in projections(stats)}
    # every viewer's 12 req/s on 200 edges; the origin sees one fetch per object per edge
    assert by_tier["edge"].nodes == 200
    assert by_tier["edge"].requests_per_s == pytest.approx(12.0 * 6_500_000 / 200)
    assert by_tier["origin"].requests_per_s == pytest.approx(24 * 200)
    assert by_tier["origin"].utilisation == pytest.approx(
        24 * 200 / Capacity().origin_requests_per_s
    )
    # the edges at 390k req/s each are far over this machine's nginx: NO-GO names it
    result = verdict(stats)
    failed = {c.subject for c in result.violations}
    assert "projected.edge.utilisation" in failed and "projected.origin.utilisation" not in failed
    assert "× the limit" in next(c for c in result.violations).describe()


def test_a_leak_that_grows_with_viewers_is_projected_per_viewer() -> None:
    # 20 extra origin requests a second at 200 viewers: 0.1 per viewer → 650k at 6.5 M
    stats = steady_run(excess_per_s=20.0)
    by_tier = {p.tier: p for p in projections(stats)}
    assert by_tier["origin"].requests_per_s == pytest.approx(24 * 200 + 0.1 * 6_500_000)
    figures = indicator_figures(stats)
    assert figures["objects.edge.upstream_per_object"] == pytest.approx(68 / 48)


def test_no_target_no_projection_and_no_edges_projects_every_viewer_to_the_origin() -> None:
    stats = steady_run()
    stats.indicators.context = RunContext(part_target=PART)
    assert projections(stats) == []
    direct = steady_run(edges=0)
    direct.indicators.tiers.clear()
    direct.indicators.context = RunContext(part_target=PART, target_viewers=1000)
    (origin,) = projections(direct)
    assert origin.tier == "origin" and origin.requests_per_s == pytest.approx(12_000)


def test_staleness_is_measured_against_the_origins_own_age() -> None:
    stats = steady_run()
    for _ in range(95):
        stats.indicators.client.playlist_age_s.record(0.05)
    for _ in range(5):
        stats.indicators.client.playlist_age_s.record(2.05)  # 6 parts behind
    for _ in range(10):
        stats.indicators.origin_age_s.record(0.05)
    figures = indicator_figures(stats)
    assert figures["freshness.staleness_p50_parts"] == pytest.approx(0.0, abs=0.01)
    assert figures["freshness.staleness_p95_parts"] == pytest.approx(0.0, abs=0.01)
    assert figures["freshness.too_old_share"] == pytest.approx(0.05)
    for _ in range(10):
        stats.indicators.client.playlist_age_s.record(2.05)
    assert indicator_figures(stats)["freshness.staleness_p95_parts"] == pytest.approx(6.0, rel=0.02)


def test_early_404s_and_held_answers_are_shares() -> None:
    stats = steady_run()
    counters = stats.indicators.client.counters
    counters.update(media_requests=10_000, media_404=30, early_404=25)
    stats.record_request("part", 200, 0.01, 1.0)
    counters["held_past"] = 1
    figures = indicator_figures(stats)
    assert figures["errors.early_404_share"] == 0.0025
    assert figures["errors.media_404_share"] == 0.003
    assert figures["errors.held_past_share"] == 1.0
    failed = {c.slo.name for c in verdict(stats).violations}
    assert {"early_404_share", "held_past_share"} <= failed


def record_wave(stats: RunStats, times: list[float]) -> None:
    for t in times:
        stats.record_sent(t, retry=True)


def test_synchronised_retries_make_a_peaked_wave_and_jitter_spreads_it() -> None:
    import random

    rng = random.Random(1)
    fault = [(10.0, 12.0)]
    # 300 viewers failed at one part boundary; without jitter they come back together after 1 s,
    # then the ones that failed again after 2 s more
    lockstep = RunStats()
    record_wave(lockstep, [11.02 + rng.uniform(0, 0.05) for _ in range(300)])
    record_wave(lockstep, [13.02 + rng.uniform(0, 0.05) for _ in range(100)])
    record_wave(lockstep, [10.2 + rng.uniform(0, 2.0) for _ in range(50)])
    jittered = RunStats()  # the same crowd, each retry drawn within its backoff window
    record_wave(jittered, [10.0 + rng.uniform(0, 1.0) for _ in range(150)])
    record_wave(jittered, [10.0 + rng.uniform(0, 3.0) for _ in range(300)])
    peaked = retry_wave(lockstep.timeline, fault)
    spread = retry_wave(jittered.timeline, fault)
    assert peaked is not None and spread is not None
    assert peaked > 4.0 > spread  # the default SLO sits between them
    assert retry_wave(jittered.timeline, []) is None  # no fault, no wave
    few = RunStats()
    record_wave(few, [11.0] * 5)
    assert retry_wave(few.timeline, fault) is None  # five retries are no wave


def test_retries_per_failed_request() -> None:
    stats = RunStats()
    stats.indicators.client.counters.update(retries=50, retried_requests=10)
    assert indicator_figures(stats)["retry.retries_per_failed_request"] == 5.0


def test_indicators_survive_the_results_round_trip_and_merge() -> None:
    stats = steady_run()
    stats.indicators.client.count("retries", 3)
    stats.indicators.client.playlist_age_s.record(0.1)
    stats.record_sent(3.25, retry=True)
    back = RunStats.from_dict(stats.to_dict())
    assert indicator_figures(back) == indicator_figures(stats)
    assert back.timeline.at(3).retry_tenths[2] == 1
    merged = RunStats()
    merged.merge(back)
    merged.merge(back)
    assert merged.indicators.client.counters["retries"] == 6
    assert merged.indicators.tiers["edge"].by_kind["part"].upstream == 2 * 48 * 30
    assert merged.indicators.context == stats.indicators.context
    old = stats.to_dict()
    del old["indicators"]
    assert indicator_figures(RunStats.from_dict(old))["errors.early_404_share"] is None


def test_compare_flags_doubled_origin_requests_per_object_with_qoe_unchanged() -> None:
    a = steady_run()
    b = steady_run(excess_per_s=48.0)  # every object fetched twice
    comparison = compare_stats(a, b)
    regressed = {m.metric for m in comparison.regressions}
    assert "objects.edge.upstream_per_object" in regressed
    assert "objects.edge.part.upstream_per_object" in regressed
    assert comparison.exit_code == 1
    assert not compare_stats(a, steady_run()).regressions


def test_poisson_rates_test() -> None:
    assert poisson_rates_p_value(100, 100, 100, 100) == pytest.approx(1.0)
    assert poisson_rates_p_value(1000, 1000, 2000, 1000) < 1e-6
    assert poisson_rates_p_value(0, 10, 0, 10) == 1.0


def test_defaults_hold_every_indicator_and_the_scenario_reads_the_target() -> None:
    names = {slo.name for slo in DEFAULT_SLOS}
    assert {"upstream_per_object", "retry_wave", "projected_utilisation"} <= names
    scenario = parse_scenario(
        {"target_viewers": 6_500_000, "target_edges": 200,
         "capacity": {"edge_requests_per_s": 1e6}, "slo": {"retry_wave": 4}}
    )  # fmt: skip
    assert scenario.target_viewers == 6_500_000 and scenario.target_edges == 200
    assert scenario.capacity.edge_requests_per_s == 1e6
    assert scenario.capacity.origin_requests_per_s == Capacity().origin_requests_per_s
    assert next(s for s in scenario.slos if s.name == "retry_wave").threshold == 4
    with pytest.raises(ConfigError, match="target_viewers"):
        parse_scenario({"target_viewers": 0})
    with pytest.raises(ConfigError, match=r"capacity\.edge_rps"):
        parse_scenario({"capacity": {"edge_rps": 5}})
    with pytest.raises(ConfigError, match=r"capacity\.origin_requests_per_s"):
        parse_scenario({"capacity": {"origin_requests_per_s": -1}})
