"""Start-over (DVR) viewers in the results: their requests under their own kinds with their own
latency, their outcome apart from the live viewers' (the QoE verdict judges the live ones), the
report's section and figures, SLOs on them, and results.json round trips (old ones included)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from livecast.origin.app import OriginApp
from livecast.player import Player, PlayerConfig
from livecast.player.harness import RunRecorder, ViewerHarness
from livecast.player.requests import Request
from livecast.results.compare import compare_stats
from livecast.results.report import render_html, results_document, summary_figures
from livecast.results.report_dvr import dvr_figures, has_dvr
from livecast.results.scrape import responses_of_type
from livecast.results.slo import DEFAULT_SLOS, Slo, measure, parse_slos, verdict
from livecast.results.stats import RunStats, ViewerOutcome, dvr_kind
from livecast.store.archive import Recording

from .synth import EPOCH, make_event
from .test_player_server import URL, LadderFeeder, ScriptedServer

SEG = "http://127.0.0.1:8080/live/720p/seg-12.m4s"


def request(kind: str = "segment", *, dvr: bool = False, url: str = SEG, retry: int = 0) -> Request:
    return Request(1, url, kind, 10.0, 0.0, retry, dvr)


# ---------------------------------------------------------------- the recorder


def test_a_start_over_request_is_counted_under_its_own_kind_and_latency() -> None:
    stats = RunStats()
    recorder = RunRecorder(stats, origin=1000.0, held_limit=6.0)
    recorder.answered(request("segment"), 200, 50_000, 0.020, 1003.2)
    recorder.answered(request("segment", dvr=True), 200, 400_000, 0.300, 1003.4)
    recorder.answered(request("playlist", dvr=True), 404, 80, 9.0, 1003.5)  # slow, and a 404
    recorder.failed(request("segment", dvr=True), "reset", 1003.6)
    recorder.sent(request("segment", dvr=True, retry=1), 1003.7)
    assert stats.requests["segment"].total == 1
    assert stats.requests["segment-dvr"].status_counts == {"200": 1, "reset": 1}
    assert stats.requests["playlist-dvr"].status_counts == {"404": 1}
    assert stats.requests["segment-dvr"].latency_s.max == pytest.approx(0.3, rel=0.01)
    second = stats.timeline.at(3)
    assert second.request_latency_s.count == 1 and second.dvr_request_latency_s.count == 2
    assert second.requests == 4 and second.errors_by_type == {"404": 1, "reset": 1}
    client = stats.indicators.client
    # the load counts (bytes, retries), the live delivery indicators do not see them
    assert client.bytes_by_kind == {"segment": 50_000, "segment-dvr": 400_000, "playlist-dvr": 80}
    assert client.counters["retries"] == 1 and second.retry_tenths[7] == 1
    assert client.counters["media_requests"] == 1 and client.counters["held_past"] == 0
    assert client.counters["media_404"] == 0
    assert dvr_kind("playlist") == "playlist-dvr"


# ---------------------------------------------------------------- viewers through the harness


def through_harness(
    tmp_path: Path, config: PlayerConfig, stats: RunStats
) -> tuple[ViewerHarness, ScriptedServer]:
    recording = Recording(tmp_path / config.session_id, fsync="off")
    event = make_event(window=12.0, store=recording)
    server = ScriptedServer(OriginApp(event), LadderFeeder(event))
    harness = ViewerHarness(
        Player(URL, config, random.Random(3)), RunRecorder(stats, origin=EPOCH), EPOCH + 40.0
    )
    server.harness = harness
    server.run(harness.player, EPOCH + 40.0, EPOCH + 55.0)
    harness.finish(EPOCH + 55.0)
    recording.close()
    return harness, server


def test_a_start_over_viewer_leaves_the_live_figures_and_the_verdict_as_they_were(
    tmp_path: Path,
) -> None:
    alone = RunStats()
    through_harness(tmp_path / "a", PlayerConfig("live"), alone)
    both = RunStats()
    through_harness(tmp_path / "b", PlayerConfig("live"), both)
    dvr, _ = through_harness(tmp_path / "b", PlayerConfig("dvr", seek_back=20.0), both)
    assert dvr.dvr and both.dvr_viewers.counters["viewers"] == 1
    assert both.viewers.to_dict() == alone.viewers.to_dict()
    # its latency behind live (≈ 20 s) is its own figure, not in the live timeline
    live_latency = [s.live_latency_s for s in both.timeline.seconds.values()]
    assert max(h.max for h in live_latency if h.count) < 2.0
    behind = both.dvr_viewers.distributions["latency_behind_live_s"]
    assert behind.percentile(50) == pytest.approx(20.2, abs=0.3)
    # its playlists' ages are not live playlist ages
    playlists = both.indicators.client.counters["playlists"]
    assert playlists == alone.indicators.client.counters["playlists"] > 0
    qoe = [slo for slo in DEFAULT_SLOS if slo.metric.startswith("viewers.")]
    assert [c.measured for c in verdict(both, tuple(qoe)).checks] == [
        c.measured for c in verdict(alone, tuple(qoe)).checks
    ]
    startup = both.dvr_viewers.distributions["startup_s"]
    assert startup.count == 1 and startup.max < 0.5


# ---------------------------------------------------------------- figures, SLOs, report


def dvr_run() -> RunStats:
    stats = RunStats()
    for t, latency in ((1.2, 0.010), (1.4, 0.030), (2.1, 0.020)):
        stats.record_request("part", 200, latency, t)
    for t, latency in ((1.5, 0.100), (2.5, 0.300)):
        stats.record_request("segment-dvr", 200, latency, t)
    stats.record_request("playlist-dvr", 200, 0.050, 2.6)
    stats.record_request("playlist-dvr", 404, 0.004, 2.7)
    stats.record_viewer(ViewerOutcome(startup_s=0.4, played_s=10.0))
    stats.record_viewer(ViewerOutcome(startup_s=1.5, played_s=9.0, stalled_s=1.0), dvr=True)
    stats.record_viewer(ViewerOutcome(startup_s=None, start_failed=True), dvr=True)
    return stats


def test_summary_figures_carry_the_start_over_viewers_apart() -> None:
    stats = dvr_run()
    figures = summary_figures(stats)
    assert figures["viewers"] == 1 and figures["rebuffering_ratio"] == 0.0
    assert figures["dvr_viewers"] == 2 and figures["dvr_started"] == 1
    assert figures["dvr_rebuffering_ratio"] == pytest.approx(0.1)
    assert figures["dvr_startup_p95_s"] == pytest.approx(1.5, rel=0.01)
    assert figures["dvr_requests"] == 4 and figures["dvr_request_error_rate"] == 0.25
    assert figures["dvr_segment_latency_p95_s"] == pytest.approx(0.3, rel=0.01)
    assert figures["dvr_playlist_latency_p50_s"] == pytest.approx(0.004, rel=0.01)
    assert figures["live_request_latency_p95_s"] == pytest.approx(0.03, rel=0.01)
    assert not has_dvr(RunStats()) and dvr_figures(RunStats()) == {}
    assert not any(name.startswith("dvr_") for name in summary_figures(RunStats()))


def test_slos_on_start_over_viewers_and_requests() -> None:
    stats = dvr_run()

    def one(metric: str) -> float | None:
        (found,) = measure(stats, metric)
        return found.value

    assert one("dvr_viewers.startup_s.p95") == pytest.approx(1.5, rel=0.01)
    assert one("dvr_viewers.video_start_failure_rate") == 0.5
    assert one("viewers.startup_s.p95") == pytest.approx(0.4, rel=0.01)
    assert one("requests.dvr.latency_s.max") == pytest.approx(0.3, rel=0.01)
    assert one("requests.live.latency_s.max") == pytest.approx(0.03, rel=0.01)
    assert one("requests.all.latency_s.max") == pytest.approx(0.3, rel=0.01)
    assert one("requests.playlist-dvr.error_rate") == 0.5
    assert one("requests.dvr.error_rate") == 0.25 and one("requests.live.error_rate") == 0.0
    slos = parse_slos(
        {"dvr_p95": {"metric": "requests.playlist-dvr.latency_s.p95", "threshold": 0.01}}
    )
    result = verdict(stats, slos)
    assert not result.go and [c.slo.name for c in result.violations] == ["dvr_p95"]
    assert verdict(stats, (Slo("s", "dvr_viewers.rebuffering_ratio", "<=", 0.2),)).go


def test_the_report_shows_start_over_latency_beside_live() -> None:
    stats = dvr_run()
    meta = {
        "scenario": "dvr",
        "start_over": {
            "share": 0.2,
            "seek_back_s": [10.0, 60.0],
            "viewers_planned": 2,
            "recording_held_s_at_start": 61.0,
            "origin_playlist_dvr_responses": {"200": 1, "404": 1},
        },
    }
    html = render_html(stats, verdict(stats), meta)
    section = html[html.index("<h2>Start-over (DVR) viewers</h2>") :]
    assert "20% of the viewers (2 planned) joined the recording 10–60 s behind live" in section
    assert "200: 1, 404: 1" in section
    assert "<td>segment</td><td>0</td>" in section  # no live segment, 2 start-over ones
    assert "<td>300</td>" in section  # start-over segment p95, ms
    assert "Request latency: live vs start-over viewers" in section
    assert "start-over viewers" in section and "Start-over viewers&#x27; startup time" in section
    assert "Start-over (DVR)" not in render_html(RunStats(), verdict(RunStats()), {})


def test_results_round_trip_and_merge_with_start_over_viewers() -> None:
    stats = dvr_run()
    document = json.loads(json.dumps(results_document(stats, verdict(stats), {})))
    again = RunStats.from_dict(document["stats"])
    assert again.dvr_viewers.to_dict() == stats.dvr_viewers.to_dict()
    assert again.timeline.at(2).dvr_request_latency_s.count == 3
    assert summary_figures(again) == summary_figures(stats)
    again.merge(stats)
    assert again.dvr_viewers.counters["viewers"] == 4
    assert again.timeline.at(1).dvr_request_latency_s.count == 2
    # a run without start-over viewers writes what it wrote before, and reads back
    plain = RunStats()
    plain.record_request("part", 200, 0.01, 1.0)
    written = plain.to_dict()
    assert "dvr_viewers" not in written and "dvr_request_latency_s" not in written["timeline"]
    assert RunStats.from_dict(written).dvr_viewers.counters["viewers"] == 0


def test_the_origins_responses_of_one_type_by_status() -> None:
    text = "\n".join(
        [
            "# TYPE livecast_origin_requests_total counter",
            'livecast_origin_requests_total{type="playlist-dvr",status="200"} 41',
            'livecast_origin_requests_total{type="playlist-dvr",status="404"} 2',
            'livecast_origin_requests_total{type="segment",status="200"} 900',
        ]
    )
    assert responses_of_type(text, "playlist-dvr") == {"200": 41, "404": 2}
    assert responses_of_type(text, "init") == {}
    assert responses_of_type("not { prometheus", "playlist-dvr") == {}


def crowd(live_startup: float, dvr_startup: float, dvr_failures: int = 0) -> RunStats:
    stats = RunStats()
    rng = random.Random(int(live_startup * 1000 + dvr_startup * 100))
    for _ in range(200):
        stats.record_viewer(ViewerOutcome(startup_s=live_startup * rng.uniform(0.9, 1.1)))
    for _ in range(50):
        outcome = ViewerOutcome(startup_s=dvr_startup * rng.uniform(0.9, 1.1), played_s=20.0)
        stats.record_viewer(outcome, dvr=True)
    for _ in range(dvr_failures):
        stats.record_viewer(ViewerOutcome(startup_s=None, start_failed=True), dvr=True)
    return stats


def test_compare_tests_the_start_over_viewers_on_their_own() -> None:
    a, b = crowd(0.4, 0.5), crowd(0.4, 1.5, dvr_failures=10)
    comparison = compare_stats(a, b)
    regressed = {(m.metric, m.statistic) for m in comparison.regressions}
    assert ("dvr_viewers.startup_s", "median") in regressed
    assert ("dvr_viewers.video_start_failure_rate", "rate") in regressed
    assert not any(metric.startswith("viewers.") for metric, _ in regressed)
    # unless both runs had start-over viewers, no start-over metric is compared
    live_only = RunStats.from_dict({k: v for k, v in a.to_dict().items() if k != "dvr_viewers"})
    plain = compare_stats(live_only, b)
    assert plain.metrics and not any(m.metric.startswith("dvr_") for m in plain.metrics)
