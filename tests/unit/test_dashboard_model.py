"""The dashboard's pure core: rates from counters (resets included), quantiles from histogram
buckets, the figures per tier, bounded history; fed by the rehearsal's own metrics."""

from __future__ import annotations

import math

import pytest

from livecast.dashboard.model import DashboardModel, histogram_quantile
from livecast.rehearse.progress import (
    LATENCY_BUCKETS,
    STARTUP_BUCKETS,
    BucketCounts,
    Progress,
    RehearsalMetrics,
)

INF = math.inf


def test_quantile_interpolates_inside_the_bucket_as_prometheus_does() -> None:
    buckets = [(1.0, 10.0), (2.0, 30.0), (4.0, 40.0), (INF, 40.0)]
    assert histogram_quantile(0.25, buckets) == pytest.approx(1.0)  # rank 10: top of bucket 1
    assert histogram_quantile(0.5, buckets) == pytest.approx(1.5)  # rank 20: middle of (1, 2]
    assert histogram_quantile(0.95, buckets) == pytest.approx(3.6)  # rank 38 in (2, 4]
    assert histogram_quantile(0.1, buckets) == pytest.approx(0.4)  # first bucket: from 0


def test_quantile_in_the_inf_bucket_is_the_highest_finite_bound_and_empty_is_none() -> None:
    assert histogram_quantile(0.99, [(1.0, 1.0), (2.0, 2.0), (INF, 10.0)]) == 2.0
    assert histogram_quantile(0.5, [(1.0, 0.0), (INF, 0.0)]) is None
    assert histogram_quantile(0.5, [(1.0, 3.0)]) is None  # no +Inf bucket: not a histogram
    with pytest.raises(ValueError, match="quantile"):
        histogram_quantile(1.5, [(INF, 1.0)])


def origin_text(ok: float, not_found: float, failed: float) -> str:
    return (
        "# TYPE livecast_origin_requests_total counter\n"
        f'livecast_origin_requests_total{{type="part",status="200"}} {ok}\n'
        f'livecast_origin_requests_total{{type="part",status="404"}} {not_found}\n'
        f'livecast_origin_requests_total{{type="playlist",status="503"}} {failed}\n'
    )


def test_counters_become_rates_over_the_window_and_a_reset_counts_from_zero() -> None:
    model = DashboardModel()
    model.observe("origin", origin_text(100, 10, 0), 0.0)
    assert model.tick(0.0).tiers == {}  # one scrape: no rate yet
    model.observe("origin", origin_text(120, 12, 1), 1.0)
    tier = model.tick(1.0).tiers["origin"]
    assert (tier.requests_per_s, tier.client_errors_per_s, tier.server_errors_per_s) == (23, 2, 1)
    # the origin restarted: 5 requests since, not -127
    model.observe("origin", origin_text(5, 0, 0), 2.0)
    tier = model.tick(2.0).tiers["origin"]
    assert tier.requests_per_s == pytest.approx((23 + 5) / 2)
    # older scrapes leave the 5 s window
    for t in range(3, 10):
        model.observe("origin", origin_text(5 + 10 * (t - 2), 0, 0), float(t))
    assert model.tick(9.0).tiers["origin"].requests_per_s == pytest.approx(10.0)


def test_a_stale_source_drops_out_and_failures_are_counted() -> None:
    model = DashboardModel()
    model.observe("origin", origin_text(0, 0, 0), 0.0)
    model.observe("origin", origin_text(10, 0, 0), 1.0)
    model.failed("origin", 2.0)
    assert model.tick(2.0).tiers["origin"].requests_per_s == 10
    assert model.tick(10.0).tiers == {}
    assert model.scrape_errors() == {"origin": 1}
    with pytest.raises(ValueError, match="older"):
        model.observe("origin", origin_text(10, 0, 0), 0.5)


def edge_text(tier: str, hits: float, misses: float, none: float, errors: float) -> str:
    name = "livecast_edge_requests_total"
    return (
        f'{name}{{tier="{tier}",kind="part",cache="HIT",code="2xx"}} {hits}\n'
        f'{name}{{tier="{tier}",kind="part",cache="MISS",code="2xx"}} {misses}\n'
        f'{name}{{tier="{tier}",kind="other",cache="none",code="2xx"}} {none}\n'
        f'{name}{{tier="{tier}",kind="segment",cache="MISS",code="5xx"}} {errors}\n'
    )


def test_edge_tiers_hit_ratio_and_origin_offload() -> None:
    model = DashboardModel()
    for t, n in ((0.0, 0), (1.0, 1)):
        model.observe("edge-1", edge_text("edge-1", 90 * n, 8 * n, 2 * n, 0), t)
        model.observe("edge-2", edge_text("edge-2", 80 * n, 10 * n, 0, 10 * n), t)
        model.observe("shield", edge_text("shield", 0, 18 * n, 0, 10 * n), t)  # not in the ratio
        model.observe("origin", origin_text(20 * n, 0, 0), t)
    point = model.tick(1.0)
    assert point.tiers["edge-1"].requests_per_s == 100
    assert point.tiers["edge-2"].server_errors_per_s == 10
    assert point.edge_hit_ratio == pytest.approx(170 / 198)
    # media and playlists only: edge-1 98/s, edge-2 100/s (edge-1's "other" left out)
    assert point.origin_offload == pytest.approx(1 - 20 / 198)


def test_rehearsal_metrics_give_viewers_quantiles_and_rebuffering() -> None:
    metrics = RehearsalMetrics()
    model = DashboardModel()
    model.observe("rehearsal", metrics.render().decode(), 0.0)
    startups = BucketCounts.of(STARTUP_BUCKETS, [(0.4, 10), (0.9, 10)])
    latency = BucketCounts.of(LATENCY_BUCKETS, [(1.8, 30), (3.5, 10)])
    metrics.observe(Progress(0, 20, 400, 4, 1.8, 3.5, started=20, stalls=1, rebuffer_s=2.0,
                             startup=startups, latency=latency))  # fmt: skip
    model.observe("rehearsal", metrics.render().decode(), 1.0)
    point = model.tick(1.0)
    assert point.viewers == 20
    assert point.viewer_requests_per_s == 400 and point.viewer_errors_per_s == 4
    assert point.startup_p50 == pytest.approx(0.5)  # rank 10: the top of (0.25, 0.5]
    assert 0.75 < (point.startup_p95 or 0) <= 1.0
    assert 1.5 < (point.latency_p50 or 0) <= 2.0 and 3.0 < (point.latency_p95 or 0) <= 4.0
    assert point.rebuffering_ratio == pytest.approx(2.0 / 20)
    as_json = point.to_dict()
    assert as_json["viewers"] == 20 and as_json["tiers"] == {}


def test_history_is_bounded() -> None:
    model = DashboardModel(history=3)
    for t in range(5):
        model.tick(float(t))
    assert [p.t for p in model.history] == [2.0, 3.0, 4.0]


def test_a_malformed_scrape_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        DashboardModel().observe("x", 'broken{le="1" 3\n', 0.0)


def qoe_text(n: float) -> str:
    """Two events seen from the edges and from the origin; ``n`` scales the counters."""
    lines = []
    for source, scale in (("edge", 1.0), ("origin", 0.5)):
        for event, sessions, startup, mtp in (("main", 30, 1.2, 8e6), ("b", 10, 2.4, 3e6)):
            labels = f'event="{event}",source="{source}"'
            lines += [
                f"livecast_qoe_sessions{{{labels}}} {sessions * scale}",
                f"livecast_qoe_startup_seconds{{{labels}}} {startup}",
                f"livecast_qoe_throughput_bits_per_second{{{labels}}} {mtp}",
                f"livecast_qoe_buffer_starvations_total{{{labels}}} {2 * n * scale}",
                f'livecast_qoe_media_requests_total{{{labels},bitrate_kbps="3000"}} {30 * n}',
                f'livecast_qoe_media_requests_total{{{labels},bitrate_kbps="1000"}} {10 * n}',
            ]
    return "\n".join(lines) + "\n"


def test_cmcd_figures_come_from_the_edges_view_when_there_is_one() -> None:
    model = DashboardModel()
    assert model.tick(0.0).cmcd is None  # no livecast_qoe_* anywhere
    model.observe("origin", qoe_text(0), 0.0)
    model.observe("origin", qoe_text(1), 1.0)
    cmcd = model.tick(1.0).cmcd
    assert cmcd is not None and cmcd.source == "edge"
    assert cmcd.sessions == 40  # both events, the edges' counts only
    assert cmcd.startup_s == 2.4 and cmcd.throughput_bps == 3e6  # the slowest event's
    assert cmcd.starvations_per_s == pytest.approx(4.0)  # 2/s per event
    assert cmcd.mean_bitrate_kbps == pytest.approx((3000 * 60 + 1000 * 20) / 80)
    origin_only = DashboardModel()
    text = "\n".join(line for line in qoe_text(1).splitlines() if 'source="edge"' not in line)
    origin_only.observe("origin", text + "\n", 0.0)
    figures = origin_only.tick(0.0).cmcd
    assert figures is not None and figures.source == "origin" and figures.sessions == 20
    assert figures.starvations_per_s is None  # one scrape: no rate yet
