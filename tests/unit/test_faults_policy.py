"""The fault proxy's pure policy: decide() per kind (seeded), pacing, injected answers, counters."""

from __future__ import annotations

import random
from typing import Any

import pytest

from livecast.rehearse.faults.policy import (
    FORWARD,
    Action,
    FaultCounters,
    Pacer,
    chunk_delay,
    cut_open_links,
    decide,
    injected_response,
    resets_starting,
    slice_size,
)
from livecast.scenario.timeline import Fault, parse_timeline

PART = "/live/720p/part-7.2.m4s"
PLAYLIST = "/live/720p/index.m3u8?_HLS_msn=7&_HLS_part=2"
SEGMENT = "/live/720p/seg-7.m4s"


def faults(*entries: dict[str, Any]) -> list[Fault]:
    tables = [{"at": 0.0, "target": "origin", **entry} for entry in entries]
    return list(parse_timeline(tables).faults)


def rng() -> random.Random:
    return random.Random(42)


def test_no_faults_forwards() -> None:
    assert decide(PART, [], rng()) == Action("part")
    assert decide(None, [], rng()) is FORWARD
    assert decide(PART, [], rng()).forwards and not decide(PART, [], rng()).shaped


def test_latency_only_for_matching_object_types() -> None:
    active = faults({"kind": "latency", "latency_ms": 3000, "jitter_ms": 200, "match": "part"})
    action = decide(PART, active, rng())
    assert (action.latency, action.jitter, action.applied) == (3.0, 0.2, ("latency",))
    assert action.forwards and action.shaped
    assert decide(PLAYLIST, active, rng()) == Action("playlist")
    assert decide(None, active, rng()) is FORWARD  # TCP mode: only faults matching any


def test_latencies_add_up_and_tightest_cap_wins() -> None:
    active = faults(
        {"kind": "latency", "latency_ms": 100},
        {"kind": "latency", "latency_ms": 250},
        {"kind": "bandwidth", "rate_kbps": 800},
        {"kind": "bandwidth", "rate_kbps": 400},
        {"kind": "slow_first_byte", "delay_ms": 300},
        {"kind": "slow_first_byte", "delay_ms": 700},
    )
    action = decide(SEGMENT, active, rng())
    assert action.latency == pytest.approx(0.35)
    assert action.rate == 50_000.0
    assert action.first_byte_delay == 0.7
    assert action.applied == ("latency", "bandwidth", "slow_first_byte")


def test_tcp_mode_ignores_http_only_kinds() -> None:
    active = faults(
        {"kind": "http_status"},
        {"kind": "slow_first_byte", "delay_ms": 500},
        {"kind": "bandwidth", "rate_kbps": 8},
    )
    action = decide(None, active, rng())
    assert action.status is None and action.first_byte_delay == 0.0
    assert action.rate == 1000.0 and action.applied == ("bandwidth",)


def test_http_status_with_probability_is_seeded() -> None:
    active = faults({"kind": "http_status", "status": 503, "probability": 0.3, "match": "part"})
    draws = random.Random(7)
    statuses = [decide(PART, active, draws).status for _ in range(1000)]
    again = random.Random(7)
    assert statuses == [decide(PART, active, again).status for _ in range(1000)]
    refused = statuses.count(503)
    assert refused == 336  # this seed's draw; Binomial(1000, 0.3): 300 ± 3σ (43)
    assert abs(refused - 300) <= 3 * (1000 * 0.3 * 0.7) ** 0.5
    assert set(statuses) == {503, None}
    assert decide(PLAYLIST, active, rng()).status is None


def test_http_status_carries_the_body() -> None:
    active = faults({"kind": "http_status", "status": 500, "body": "boom"})
    action = decide("/live/main.m3u8", active, rng())
    assert (action.status, action.body, action.object_type) == (500, "boom", "multivariant")
    assert not action.forwards and action.applied == ("http_status",)


def test_reset_wins_over_status_and_shaping() -> None:
    active = faults(
        {"kind": "latency", "latency_ms": 10},
        {"kind": "http_status"},
        {"kind": "reset"},
    )
    action = decide(PART, active, rng())
    assert action.reset and not action.forwards and action.applied == ("reset",)
    assert decide(None, active, rng()).reset  # reset applies to new TCP connections too


def test_reset_probability_zero_never_resets() -> None:
    active = faults({"kind": "reset", "probability": 0.0})
    draws = rng()
    assert not any(decide(PART, active, draws).reset for _ in range(200))


def test_process_faults_never_shape_traffic() -> None:
    active = faults({"kind": "stop_process"}, {"kind": "start_process"})
    assert decide(PART, active, rng()) == Action("part")


def test_chunk_delay_jitter_and_first_byte() -> None:
    action = Action("part", latency=0.5, jitter=0.1, first_byte_delay=1.0)
    draws = rng()
    delays = [chunk_delay(action, draws, first=False) for _ in range(500)]
    assert all(0.4 <= delay <= 0.6 for delay in delays)
    assert len(set(delays)) > 100
    assert 1.4 <= chunk_delay(action, draws, first=True) <= 1.6
    assert chunk_delay(Action(latency=0.01, jitter=1.0), draws, first=False) >= 0.0


def test_pacer_keeps_order_and_adds_delay() -> None:
    pacer = Pacer()
    assert pacer.plan(10.0, 100, delay=2.0) == [(12.0, 100)]
    assert pacer.plan(10.5, 50) == [(12.0, 50)]  # never before what came earlier
    assert pacer.plan(13.0, 10) == [(13.0, 10)]


def test_pacer_bandwidth_cap_takes_size_over_rate() -> None:
    pacer = Pacer()
    rate = 100_000.0
    slices = pacer.plan(0.0, 200_000, rate=rate)
    assert sum(length for _, length in slices) == 200_000
    assert slices[-1][0] == pytest.approx(2.0)
    assert all(length <= slice_size(rate) for _, length in slices)
    dues = [due for due, _ in slices]
    assert dues == sorted(dues) and dues[0] > 0.0
    after = pacer.plan(1.0, 1000, rate=rate)  # queued behind the first body
    assert after[0][0] == pytest.approx(2.01)


def test_slice_size_bounds() -> None:
    assert slice_size(1.0) == 1024
    assert slice_size(100_000.0) == 2000
    assert slice_size(1e9) == 16 * 1024


def test_injected_response_keeps_alive_and_counts_bytes() -> None:
    data = injected_response(503, keep_alive=True, head=False)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert b"Connection: keep-alive" in head and f"Content-Length: {len(body)}".encode() in head
    closing = injected_response(599, "x", keep_alive=False, head=True)
    assert closing.startswith(b"HTTP/1.1 599 Injected\r\n")
    assert b"Connection: close" in closing and closing.endswith(b"\r\n\r\n")
    assert b"Content-Length: 1\r\n" in closing
    # a failing origin sends no Cache-Control (a cache applies its own error TTL) unless told
    assert b"Cache-Control" not in data
    shed = injected_response(503, keep_alive=True, head=True, cache_control="max-age=5")
    assert b"\r\nCache-Control: max-age=5\r\n" in shed


def test_counters_by_kind_and_object_type() -> None:
    counters = FaultCounters()
    counters.record(Action("part", status=503, applied=("http_status",)))
    counters.record(Action("part", status=503, applied=("http_status",)))
    counters.record(Action("segment", latency=1.0, rate=10.0, applied=("latency", "bandwidth")))
    counters.record(Action("playlist"))
    summary = counters.as_dict()
    assert summary["injected"] == {"bandwidth": 1, "http_status:503": 2, "latency": 1}
    assert summary["by_object"] == {
        "part:http_status": 2,
        "segment:bandwidth": 1,
        "segment:latency": 1,
    }


def test_resets_starting_cut_open_links_with_their_probability() -> None:
    started = faults(
        {"kind": "reset", "probability": 0.5},
        {"kind": "reset", "match": "part"},  # per request only
        {"kind": "latency", "latency_ms": 5},
        {"kind": "reset", "target": "edge"},
    )
    resets = resets_starting(started, "origin")
    assert [reset.probability for reset in resets] == [0.5]
    cuts = cut_open_links(resets, 1000, rng())
    assert sum(cuts) == 480  # this seed's draw; Binomial(1000, 0.5): 500 ± 3σ (47)
    assert abs(sum(cuts) - 500) <= 3 * (1000 * 0.5 * 0.5) ** 0.5
    assert cut_open_links(resets, 1000, rng()) == cuts  # seeded
    assert cut_open_links([], 3, rng()) == [False, False, False]
