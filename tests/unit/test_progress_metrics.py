"""The rehearsal's ``/metrics``: the agreed ``livecast_rehearsal_*`` names fed from Progress."""

from __future__ import annotations

from livecast.rehearse.progress import (
    LATENCY_BUCKETS,
    STARTUP_BUCKETS,
    BucketCounts,
    Progress,
    RehearsalMetrics,
)
from livecast.results.scrape import parse_prometheus_text
from tests.unit.test_metrics_histogram import strict_histograms

AGREED = {
    "livecast_rehearsal_viewers": "gauge",
    "livecast_rehearsal_viewers_started_total": "counter",
    "livecast_rehearsal_start_failures_total": "counter",
    "livecast_rehearsal_stalls_total": "counter",
    "livecast_rehearsal_rebuffer_seconds_total": "counter",
    "livecast_rehearsal_requests_total": "counter",
    "livecast_rehearsal_request_errors_total": "counter",
    "livecast_rehearsal_startup_seconds": "histogram",
    "livecast_rehearsal_latency_seconds": "histogram",
}


def test_names_and_types_are_the_agreed_ones() -> None:
    text = RehearsalMetrics().render().decode()
    types = dict(line.split(" ")[2:4] for line in text.splitlines() if line.startswith("# TYPE "))
    assert types == AGREED


def test_progress_reports_add_up() -> None:
    metrics = RehearsalMetrics()
    for t, active in ((0, 5), (1, 8)):
        metrics.observe(
            Progress(t, active, 100, 2, None, None, started=4, start_failures=1, stalls=1,
                     rebuffer_s=0.5,
                     startup=BucketCounts.of(STARTUP_BUCKETS, [(0.6, 4)]),
                     latency=BucketCounts.of(LATENCY_BUCKETS, [(2.2, 3)]))
        )  # fmt: skip
    text = metrics.render().decode()
    values = {s.name: s.value for s in parse_prometheus_text(text) if "le" not in dict(s.labels)}
    assert values["livecast_rehearsal_viewers"] == 8
    assert values["livecast_rehearsal_viewers_started_total"] == 8
    assert values["livecast_rehearsal_start_failures_total"] == 2
    assert values["livecast_rehearsal_stalls_total"] == 2
    assert values["livecast_rehearsal_rebuffer_seconds_total"] == 1.0
    assert values["livecast_rehearsal_requests_total"] == 200
    assert values["livecast_rehearsal_request_errors_total"] == 4
    series = strict_histograms(text)
    startup = series[("livecast_rehearsal_startup_seconds", ())]
    assert startup["_count"] == 8 and startup["_sum"] == 4.8
    assert dict(startup["buckets"])[0.75] == 8 and dict(startup["buckets"])[0.5] == 0
    assert series[("livecast_rehearsal_latency_seconds", ())]["_count"] == 6
    assert metrics.last_t == 1
