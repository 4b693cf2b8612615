"""Virtual viewers driven by the player model against the real live stack on 127.0.0.1."""

from __future__ import annotations

import time

import pytest

from livecast.pipeline import LivePipeline
from livecast.rehearse.driver import Driver, DriverConfig, Progress
from livecast.scenario.audience import AudienceShape, DownlinkBand, plan_audience

pytestmark = pytest.mark.integration


async def test_forty_viewers_start_and_play_with_low_latency(pipeline: LivePipeline) -> None:
    plans = plan_audience(
        AudienceShape("flash", viewers=40, within=2.0),
        duration=10.0,
        low_latency_share=0.75,
        downlink=[DownlinkBand(20_000, 1)],
        seed=3,
    )
    progress: list[Progress] = []
    config = DriverConfig((pipeline.playlist_url,), duration=10.0, show_start=time.time())
    stats = await Driver(plans, config, on_progress=progress.append).run()
    counters = stats.viewers.counters
    assert counters["viewers"] == 40, counters
    assert counters["started"] == 40 and counters["start_failures"] == 0, counters
    parts = stats.requests["part"]
    assert parts.total > 30 * 10 and parts.errors == 0, parts.to_dict()
    assert stats.requests["segment"].total > 0  # the classic-HLS viewers
    ratio = stats.viewers.rebuffering_ratio
    assert ratio is not None and ratio < 0.05, counters
    latency = stats.viewers.distributions["latency_behind_live_s"].percentile(50)
    assert 0 < latency < 8.0
    startup = stats.viewers.distributions["startup_s"].percentile(95)
    assert 0 < startup < 3.0
    assert [p.t for p in progress] == list(range(len(progress))) and progress[-1].active == 40
    # the progress reports: each viewer's start once (all within the first seconds), the
    # startup histogram beside it, latency samples bucketed, rebuffering as the outcomes say
    assert sum(p.started for p in progress) == 40
    assert sum(p.startup.count for p in progress) == 40
    assert sum(p.start_failures for p in progress) == 0
    assert 0 < sum(p.startup.sum for p in progress) < 40 * 3.0
    assert sum(p.latency.count for p in progress) > 0
    assert sum(p.rebuffer_s for p in progress) <= counters["stalled_s"] + 1e-6
    # what the indicators need: every request sent per tenth, playlist ages, bytes, media counts
    client = stats.indicators.client
    sent = sum(sum(s.request_tenths) for s in stats.timeline.seconds.values())
    assert stats.total_requests <= sent <= stats.total_requests + 4 * 40  # some still in flight
    assert client.counters["playlists"] > 40 * 10
    assert client.playlist_age_s.percentile(50) < 1.0  # blocking reloads answer fresh playlists
    media = sum(stats.requests[k].total for k in ("init", "part", "segment"))
    assert client.counters["media_requests"] == media
    assert client.counters["early_404"] == client.counters["retries"] == 0
    assert client.bytes_by_kind["part"] > 100_000
