"""RunStats: recording, QoE definitions, tier rates, merge across workers, JSON round trip."""

from __future__ import annotations

import json

import pytest

from livecast.results.stats import LatencySummary, RunStats, TierCounters, ViewerOutcome


def _healthy(startup_s: float, stalled_s: float = 0.0) -> ViewerOutcome:
    return ViewerOutcome(
        startup_s=startup_s,
        stalls=1 if stalled_s else 0,
        stalled_s=stalled_s,
        played_s=30.0,
        latency=LatencySummary.of([1.8, 2.0, 2.2]),
        avg_bitrate_bps=2_500_000.0,
        switches=2,
    )


def _worker(seed: int, offset: float) -> RunStats:
    stats = RunStats(seed=seed)
    for i in range(100):
        t = offset + i * 0.1
        stats.record_request("part", 200, 0.02 + i * 0.001, t)
        stats.record_request("playlist", 503 if i % 10 == 0 else 200, 0.3, t)
    stats.record_request("segment", "reset", None, offset)
    for second in range(10):
        stats.set_active_viewers(offset + second, 10)
    stats.record_stall(offset + 1)
    stats.record_live_latency(offset, 2.0)
    for i in range(10):
        stats.record_viewer(_healthy(1.0 + i * 0.1, stalled_s=0.5 if i == 0 else 0.0))
    stats.record_viewer(ViewerOutcome(startup_s=None, start_failed=True, fatal_error="manifest"))
    stats.record_viewer(ViewerOutcome(startup_s=None, exited_before_start=True))
    return stats


def test_viewer_outcome_rebuffering_ratio_and_latency_summary() -> None:
    assert _healthy(1.0, stalled_s=10.0).rebuffering_ratio == pytest.approx(10.0 / 40.0)
    assert ViewerOutcome(startup_s=None).rebuffering_ratio is None
    summary = LatencySummary.of([3.0, 1.0, 2.0])
    assert summary == LatencySummary(samples=3, mean_s=2.0, p95_s=3.0, max_s=3.0)
    assert LatencySummary.of([]) is None


def test_viewer_counters_and_distributions() -> None:
    viewers = _worker(0, 0.0).viewers
    assert viewers.counters["viewers"] == 12
    assert viewers.counters["started"] == 10
    assert viewers.rate("fatal_errors") == pytest.approx(1 / 12)
    assert viewers.rate("start_failures") == pytest.approx(1 / 12)
    assert viewers.rate("exits_before_start") == pytest.approx(1 / 12)
    assert viewers.fatal_errors_by_type == {"manifest": 1}
    assert viewers.rebuffering_ratio == pytest.approx(0.5 / 300.5)
    assert viewers.distributions["startup_s"].count == 10
    assert viewers.distributions["startup_s"].percentile(50) == pytest.approx(1.4, rel=0.01)
    assert viewers.distributions["latency_behind_live_s"].percentile(50) == pytest.approx(2.0)
    assert viewers.samples["startup_s"].values()[0] == pytest.approx(1.0)


def test_request_kinds_status_counts_and_timeline() -> None:
    stats = _worker(0, 0.0)
    assert stats.requests["playlist"].status_counts == {"200": 90, "503": 10}
    assert stats.requests["segment"].status_counts == {"reset": 1}
    assert stats.requests["segment"].errors == 1
    assert stats.requests["part"].latency_s.count == 100
    assert stats.request_share("5") == pytest.approx(10 / 201)
    assert stats.timeline.times() == list(range(10))
    assert stats.timeline.column("requests")[0] == 21
    assert stats.timeline.column("active_viewers")[0] == 10
    assert stats.timeline.column("stalls")[1] == 1
    assert stats.timeline.errors_by_type()["503"][0] == 1
    assert stats.timeline.errors_by_type()["reset"][0] == 1
    p95 = stats.timeline.column("request_latency_p95_s")[0]
    assert p95 == pytest.approx(0.3, rel=0.03)


def test_tier_rates_survive_a_counter_reset() -> None:
    tier = TierCounters([(0.0, 0.0, 0.0), (1.0, 100.0, 1.0), (2.0, 300.0, 1.0), (3.0, 50.0, 4.0)])
    assert tier.requests_per_s() == [(1.0, 100.0), (2.0, 200.0), (3.0, 50.0)]
    assert tier.requests == 350.0
    assert tier.five_xx_rate == pytest.approx(4 / 350)
    assert tier.mean_requests_per_s == pytest.approx(350 / 3)
    assert TierCounters().five_xx_rate is None


def test_merge_equals_recording_everything_in_one() -> None:
    a, b = _worker(1, 0.0), _worker(2, 5.0)
    a.record_tier_sample("origin", 0.0, 0, 0)
    b.set_tier_series({"edge": [(0.0, 0.0, 0.0), (10.0, 1000.0, 0.0)]})
    a.merge(b)
    assert a.viewers.counters["viewers"] == 24
    assert a.requests["playlist"].status_counts == {"200": 180, "503": 20}
    assert a.requests["part"].latency_s.count == 200
    assert a.viewers.samples["startup_s"].seen == 20
    assert set(a.tiers) == {"origin", "edge"}
    assert a.timeline.times() == list(range(15))
    assert a.timeline.column("active_viewers")[5] == 20  # both workers' viewers in second 5
    assert (
        a.timeline.column("requests")[5] == 20 + 21
    )  # a: 10 parts + 10 playlists; b: also a reset


def test_json_round_trip() -> None:
    stats = _worker(3, 0.0)
    stats.record_tier_sample("origin", 0.0, 0, 0)
    stats.record_tier_sample("origin", 1.0, 60, 0)
    document = json.loads(json.dumps(stats.to_dict()))
    back = RunStats.from_dict(document)
    assert back.to_dict() == stats.to_dict()


def test_a_cohort_counts_as_that_many_viewers() -> None:
    cohort, singles = RunStats(), RunStats()
    outcome = _healthy(1.5, stalled_s=0.5)
    cohort.record_viewer(outcome, count=4)
    for _ in range(4):
        singles.record_viewer(outcome)
    assert cohort.viewers.counters == singles.viewers.counters
    assert cohort.viewers.distributions == singles.viewers.distributions
    assert cohort.viewers.samples["startup_s"].values() == [1.5] * 4
