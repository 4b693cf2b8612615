"""Per-event CMCD QoE: sessions, the startup estimate, starvations, bitrate mix, throughput and
buffer ahead — whole-run and windowed at an injected ``now`` — and the edge-log adapter and the
``livecast_qoe_*`` metrics on top."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from livecast.player.cmcd import CmcdQuery
from livecast.qoe.aggregate import CmcdRequest, QoeAggregator
from livecast.qoe.cmcd import Cmcd
from livecast.qoe.edge_logs import AccessLogTail, feed_lines, keep_access_logs, run_qoe
from livecast.qoe.metrics import QoeMetrics
from livecast.qoe.origin_tap import CmcdTap, origin_qoe
from livecast.telemetry.metrics import Registry


def req(
    started: float, took: float, *, event: str = "main", sent: int = 1000, **keys: object
) -> CmcdRequest:
    return CmcdRequest(started, started + took, event, 200, sent, Cmcd(**keys))  # type: ignore[arg-type]


def a_session(agg: QoeAggregator, sid: str, t0: float, *, event: str = "main") -> None:
    """Playlists and two su parts (the last one ends at t0 + 1.2), then playing parts."""
    agg.add(req(t0, 0.1, event=event, sid=sid, ot="m", su=True))
    agg.add(req(t0 + 0.1, 0.2, event=event, sid=sid, ot="m", su=True))
    agg.add(req(t0 + 0.3, 0.5, event=event, sid=sid, ot="v", su=True, br=800, mtp=5000))
    agg.add(req(t0 + 0.5, 0.7, event=event, sid=sid, ot="v", su=True, br=800, mtp=5000, bl=0))
    agg.add(req(t0 + 1.4, 0.2, event=event, sid=sid, ot="v", br=2000, mtp=9000, bl=1500))
    agg.add(req(t0 + 1.6, 0.9, event=event, sid=sid, ot="v", br=2000, mtp=9000, bl=1000, bs=True))


def test_whole_run_figures_of_two_events() -> None:
    agg = QoeAggregator()
    a_session(agg, "s1", 100.0)
    a_session(agg, "s2", 110.0)
    a_session(agg, "s3", 105.0, event="other")
    agg.add(req(120.0, 0.1, sid="s4", ot="m", su=True))  # never started
    agg.add(req(121.0, 0.1, ot="v", br=800))  # no sid: a media request, no session
    main = agg.run_figures()["main"]
    assert (main.sessions, main.started_sessions) == (3, 2)
    # su media ends at t0 + 1.2, first request without su starts at t0 + 1.4: the earlier
    assert main.startup_median_s == pytest.approx(1.2)
    assert main.startup_p90_s == pytest.approx(1.2)
    assert main.starvations == 2 and main.sessions_with_starvation == 2
    assert main.media_requests_by_bitrate == {800: 5, 2000: 4}
    assert main.media_bytes_by_bitrate == {800: 5000, 2000: 4000}
    assert main.bitrate_shares() == pytest.approx({800: 5 / 9, 2000: 4 / 9})
    assert main.throughput_median_kbps == 7000  # median of 5000 ×4 and 9000 ×4
    assert main.buffer_ahead_median_s == pytest.approx(1.25)  # bl after startup only
    assert agg.run_figures()["other"].sessions == 1


def test_startup_when_the_first_plain_request_comes_first() -> None:
    agg = QoeAggregator()
    agg.add(req(0.0, 0.1, sid="s", ot="m", su=True))
    agg.add(req(0.2, 3.0, sid="s", ot="v", su=True))  # a long su download still in flight
    agg.add(req(0.9, 0.1, sid="s", ot="m"))  # playing already
    assert agg.run_figures()["main"].startup_median_s == pytest.approx(0.9)


def test_order_of_arrival_does_not_matter() -> None:
    requests = [
        req(50.0, 0.1, sid="s", ot="m", su=True),
        req(50.3, 0.5, sid="s", ot="v", su=True, br=800),
        req(51.4, 0.2, sid="s", ot="v", br=800),
    ]
    forward, backward = QoeAggregator(), QoeAggregator()
    for r in requests:
        forward.add(r)
    for r in reversed(requests):
        backward.add(r)
    assert forward.run_figures() == backward.run_figures()
    assert backward.run_figures()["main"].startup_median_s == pytest.approx(0.8)


def test_window_figures_at_now() -> None:
    agg = QoeAggregator(window=30.0)
    a_session(agg, "old", 0.0)
    a_session(agg, "new", 40.0)
    late = agg.window_figures(60.0)["main"]
    assert late.sessions == 1  # "old" last seen at 2.5 s
    assert late.startup_s == pytest.approx(1.2)  # "new" started at 41.2
    assert late.throughput_kbps == 7000
    assert agg.window_figures(41.0)["main"].startup_s is None  # "new" not started yet at 41
    quiet = agg.window_figures(200.0)["main"]
    assert (quiet.sessions, quiet.startup_s, quiet.throughput_kbps) == (0, None, None)


def test_sessions_are_bounded() -> None:
    agg = QoeAggregator(max_sessions=2)
    for i in range(5):
        agg.add(req(float(i), 0.1, sid=f"s{i}", ot="m"))
    assert len(agg.sessions) == 2 and agg.dropped_sessions == 3
    assert agg.events["main"].requests == 5


def log_line(at: float, tier: str, target: str, took: float = 0.1, cmcd: str = "-") -> str:
    headers = "\t".join([cmcd, "-", "-", "-"])
    return f"{at:.3f}\t{tier}\tGET\t{target}\t200\t900\t{took:.3f}\tHIT\t-\t-\t-\t7\t{headers}"


def cmcd_target(path: str, *, starting: bool, bitrate: int = 800_000) -> str:
    query = CmcdQuery("sid-1", "main").query(
        object_type="v", bitrate_bps=bitrate, buffer_s=1.0, measured_bps=4e6,
        top_bitrate_bps=3_000_000, starting=starting,
    )  # fmt: skip
    return f"{path}?{query}"


def test_edge_log_lines_feed_the_aggregator(tmp_path: Path) -> None:
    lines = [
        log_line(10.5, "edge-0", cmcd_target("/live/720p/part-1.0.m4s", starting=True), 0.5),
        log_line(11.0, "edge-1", cmcd_target("/live/720p/part-1.1.m4s", starting=False)),
        log_line(11.0, "shield", cmcd_target("/live/720p/part-1.1.m4s", starting=False)),
        log_line(11.2, "edge-1", "/live/ev2/720p/part-1.1.m4s", cmcd='bl=100,sid="h",ot=v,br=1'),
        log_line(11.3, "edge-1", "/live/720p/part-1.2.m4s?CMCD=br%3Dfast"),
        log_line(11.4, "edge-1", "/metrics?CMCD=su"),  # for no event
        "garbage",
    ]
    agg = QoeAggregator()
    assert feed_lines(lines, agg) == 3
    assert agg.malformed == 1
    figures = agg.run_figures()
    assert figures["main"].sessions == 1 and figures["main"].startup_median_s == pytest.approx(0.5)
    assert figures["main"].media_requests_by_bitrate == {800: 2}  # not the shield's
    assert figures["ev2"].sessions == 1  # the header form
    log = tmp_path / "edge-0.log"
    log.write_text("\n".join(lines[:2]) + "\n" + lines[3][:20])
    figures, _ = run_qoe([log])
    assert figures["main"].media_requests_by_bitrate == {800: 2}
    kept = keep_access_logs({"edge-0": log, "edge-9": tmp_path / "absent"}, tmp_path / "keep")
    assert list(kept) == ["edge-0"] and kept["edge-0"].read_text() == log.read_text()


def test_tail_reads_complete_lines_once_and_restarts_after_truncation(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    first = log_line(10.0, "edge-0", cmcd_target("/live/720p/part-1.0.m4s", starting=True))
    second = log_line(11.0, "edge-0", cmcd_target("/live/720p/part-1.1.m4s", starting=False))
    agg = QoeAggregator()
    tail = AccessLogTail({"edge-0": log, "edge-1": tmp_path / "not-yet"}, agg)
    assert tail.poll() == 0
    log.write_text(first + "\n" + second[:30])
    assert tail.poll() == 1
    with open(log, "a") as out:
        out.write(second[30:] + "\n")
    assert tail.poll() == 1 and tail.poll() == 0
    log.write_text(first + "\n")  # truncated (rotated): read from the start
    assert tail.poll() == 1
    assert agg.events["main"].requests == 3


def test_metrics_export_counters_by_growth_and_gauges_at_now() -> None:
    edge, origin = QoeAggregator(), QoeAggregator()
    a_session(edge, "s1", 100.0)
    now = [110.0]
    registry = Registry()
    metrics = QoeMetrics(registry, {"edge": edge, "origin": origin}, lambda: now[0])
    metrics.collect()
    metrics.collect()  # counters are not added twice
    assert metrics.starvations.value("main", "edge") == 1
    assert metrics.media.value("main", "edge", "800") == 2
    assert metrics.sessions.value("main", "edge") == 1
    assert metrics.throughput.value("main", "edge") == 7_000_000
    assert metrics.startup.value("main", "edge") == pytest.approx(1.2)
    a_session(edge, "s2", 200.0)
    now[0] = 300.0
    metrics.collect()
    assert metrics.media.value("main", "edge", "2000") == 4
    assert metrics.sessions.value("main", "edge") == 0
    assert math.isnan(metrics.startup.value("main", "edge"))
    text = registry.render().decode()
    for name in (
        "livecast_qoe_sessions{",
        "livecast_qoe_buffer_starvations_total{",
        'livecast_qoe_media_requests_total{event="main",source="edge",bitrate_kbps="800"}',
        "livecast_qoe_throughput_bits_per_second{",
        "livecast_qoe_startup_seconds{",
    ):
        assert name in text


def test_origin_tap_parses_pending_targets_in_one_batch() -> None:
    agg = QoeAggregator()
    tap = CmcdTap(agg, offset=1000.0, capacity=3)
    tap.offer(cmcd_target("/live/720p/part-1.0.m4s", starting=True).encode(), 5.0)
    tap.offer(b"/live/main/720p/part-1.1.m4s?CMCD=bs%2Csid%3D%22x%22", 6.0)
    tap.offer(b"/live/720p/part-1.2.m4s?CMCD=br%3Dfast", 7.0)  # malformed
    assert agg.events == {}  # nothing parsed on the request path
    tap.offer(b"/favicon.ico?CMCD=su", 8.0)  # no event; the oldest pending one is dropped
    assert tap.dropped == 1
    assert tap.drain(limit=1) == 1 and len(tap.pending) == 2  # bounded work per call
    assert tap.drain() == 0 and agg.malformed == 1 and not tap.pending
    assert agg.events["main"].starvations == 1
    assert agg.sessions["main\nx"].first_start == 1006.0


def test_origin_qoe_collects_edge_logs_tap_and_metrics(tmp_path: Path) -> None:
    registry = Registry()
    qoe = origin_qoe(registry, lambda: 30.0, offset=0.0)
    log = tmp_path / "edge-0.log"
    log.write_text(
        log_line(20.0, "edge-0", cmcd_target("/live/720p/part-1.0.m4s", starting=True)) + "\n"
    )
    qoe.edge_logs = AccessLogTail({"edge-0": log}, qoe.edge)
    qoe.tap.offer(b"/live/720p/part-1.0.m4s?CMCD=sid%3D%22o%22", 25.0)
    qoe.collect()
    assert qoe.metrics.sessions.value("main", "edge") == 1
    assert qoe.metrics.sessions.value("main", "origin") == 1


def test_a_tail_far_behind_skips_ahead_to_the_newest_lines(tmp_path: Path) -> None:
    """A poll runs on the origin's event loop: it reads at most MAX_READ bytes per log, and a log
    more than MAX_BACKLOG behind is skipped ahead (counted) so the figures stay current."""
    from livecast.qoe import edge_logs

    line = log_line(10.0, "edge-0", cmcd_target("/live/720p/part-1.0.m4s", starting=True))
    per_line = len(line) + 1
    lines = edge_logs.MAX_BACKLOG // per_line + 2  # just over the backlog allowed
    log = tmp_path / "edge-0.log"
    log.write_text((line + "\n") * lines)
    agg = QoeAggregator()
    tail = AccessLogTail({"edge-0": log}, agg)
    read = tail.poll()
    size = lines * per_line
    assert tail.skipped_bytes == size - edge_logs.MAX_READ
    # the newest MAX_READ bytes, the first of their lines cut (not counted)
    assert read == edge_logs.MAX_READ // per_line
    assert agg.malformed == 0 and tail.poll() == 0
