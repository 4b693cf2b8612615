"""Per-second progress reports: the meter a viewer process keeps, merging, the wire form."""

from __future__ import annotations

import pytest

from livecast.rehearse.progress import (
    LATENCY_BUCKETS,
    STARTUP_BUCKETS,
    BucketCounts,
    Progress,
    ProgressMeter,
    merge_progress,
)
from livecast.results.histogram import Histogram
from livecast.results.stats import TIMELINE_LAYOUT, ViewerOutcome


def latency_of(*values: float) -> Histogram:
    histogram = Histogram(*TIMELINE_LAYOUT)
    for value in values:
        histogram.record(value)
    return histogram


def close(meter: ProgressMeter, t: int, stalled: float = 0.0, *latency: float) -> Progress:
    return meter.close(
        t, active=3, requests=10, errors=1, stalls=0,
        stalled_playing_s=stalled, latency=latency_of(*latency),
    )  # fmt: skip


def test_meter_counts_each_start_once_and_buckets_startup_times() -> None:
    meter = ProgressMeter()
    meter.playing(1, 0.6)
    meter.playing(1, 0.6)  # seen again the next second: not a new start
    meter.playing(2, 2.2)
    first = close(meter, 0)
    assert first.started == 2
    assert first.startup.counts[STARTUP_BUCKETS.index(0.75)] == 1
    assert first.startup.counts[STARTUP_BUCKETS.index(3.0)] == 1
    assert first.startup.sum == pytest.approx(2.8)
    meter.playing(1, 0.6)
    assert close(meter, 1).started == 0


def test_meter_takes_a_start_from_an_outcome_not_seen_playing_and_counts_failures() -> None:
    meter = ProgressMeter()
    meter.finished(7, ViewerOutcome(startup_s=1.2, stalled_s=0.0))  # started and left within 1 s
    meter.finished(8, ViewerOutcome(startup_s=None, start_failed=True))
    report = close(meter, 0)
    assert (report.started, report.start_failures) == (1, 1)
    assert close(meter, 1).start_failures == 0


def test_rebuffer_seconds_are_the_increase_of_stalled_time_viewers_gone_included() -> None:
    meter = ProgressMeter()
    assert close(meter, 0, 1.5).rebuffer_s == pytest.approx(1.5)
    assert close(meter, 1, 2.0).rebuffer_s == pytest.approx(0.5)
    # the viewer with 2.0 s stalled leaves: its time moves from playing to gone, no jump
    meter.finished(1, ViewerOutcome(startup_s=0.5, stalled_s=2.0))
    assert close(meter, 2, 0.0).rebuffer_s == 0.0
    assert close(meter, 3, 0.25).rebuffer_s == pytest.approx(0.25)


def test_latency_samples_are_bucketed_with_their_percentiles() -> None:
    report = close(ProgressMeter(), 4, 0.0, 1.2, 1.4, 7.0)
    assert report.latency.count == 3
    assert report.latency.counts[LATENCY_BUCKETS.index(1.5)] == 2
    assert report.latency.counts[LATENCY_BUCKETS.index(8.0)] == 1
    assert report.latency.sum == pytest.approx(9.6)
    assert report.latency_p95 == pytest.approx(7.0, rel=0.01)
    assert close(ProgressMeter(), 4).latency_p50 is None


def test_merge_sums_counts_and_histograms_and_keeps_the_worst_latency() -> None:
    a = Progress(3, 10, 100, 2, 1.0, 2.0, started=4, start_failures=1, stalls=2, rebuffer_s=0.5,
                 startup=BucketCounts.of(STARTUP_BUCKETS, [(0.4, 3), (30.0, 1)]))  # fmt: skip
    b = Progress(3, 5, 50, 0, 1.5, 1.8, started=1, rebuffer_s=0.25,
                 startup=BucketCounts.of(STARTUP_BUCKETS, [(0.4, 1)]))  # fmt: skip
    merged = merge_progress(3, [a, b])
    assert (merged.active, merged.requests, merged.errors) == (15, 150, 2)
    assert (merged.started, merged.start_failures, merged.stalls) == (5, 1, 2)
    assert merged.rebuffer_s == pytest.approx(0.75)
    assert (merged.latency_p50, merged.latency_p95) == (1.5, 2.0)
    assert merged.startup.counts[STARTUP_BUCKETS.index(0.5)] == 4
    assert merged.startup.counts[-1] == 1  # 30 s: the +Inf bucket
    assert merged.startup.sum == pytest.approx(31.6)


def test_wire_form_round_trips_and_the_old_form_is_read_as_zeros() -> None:
    report = Progress(2, 1, 3, 0, None, 0.9, started=1, stalls=1, rebuffer_s=0.1,
                      latency=BucketCounts.of(LATENCY_BUCKETS, [(0.9, 2)]))  # fmt: skip
    assert Progress.from_dict(report.to_dict()) == report
    old = {"t": 5, "active": 2, "requests": 9, "errors": 1, "latency_p50": 1.0,
           "latency_p95": None}  # fmt: skip
    read = Progress.from_dict(old)
    assert (read.t, read.active, read.started, read.rebuffer_s) == (5, 2, 0, 0.0)
    assert read.startup.count == 0 and read.latency.bounds == LATENCY_BUCKETS


def test_bucket_counts_refuse_a_wrong_shape() -> None:
    with pytest.raises(ValueError, match="bucket counts"):
        Progress.from_dict({"t": 0, "active": 0, "requests": 0, "errors": 0,
                            "startup": {"counts": [1, 2], "sum": 1.0}})  # fmt: skip
    with pytest.raises(ValueError, match="merge"):
        BucketCounts.empty((1.0,)).merged(BucketCounts.empty((2.0,)))
