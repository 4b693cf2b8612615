"""The viewer harness (``player.harness``) with a fake clock: link pacing, the run's records, the
per-second sampling of stalls and latency, and one player driven through a harness at its
deadlines against the scripted origin."""

from __future__ import annotations

import random

import pytest

from livecast.origin.app import OriginApp
from livecast.player import Player, PlayerConfig
from livecast.player.harness import (
    NOT_FOUND_MEMORY,
    LinkPacer,
    RunRecorder,
    TimelineSampler,
    ViewerHarness,
)
from livecast.player.requests import Request
from livecast.results.stats import RunStats

from .synth import EPOCH, make_event
from .test_player_server import URL, LadderFeeder, ScriptedServer

PART = "http://127.0.0.1:8080/live/720p/part-12.3.m4s"


def request(url: str = PART, kind: str = "part", retry: int = 0) -> Request:
    return Request(1, url, kind, 10.0, 0.0, retry)


# ---------------------------------------------------------------- link pacing


def test_without_a_cap_an_answer_is_delivered_when_it_finished() -> None:
    link = LinkPacer(None)
    assert link.delivery_time(first_byte=10.0, finished=10.2, size=10_000_000) == 10.2


def test_a_capped_link_carries_answers_one_after_another_from_the_first_byte() -> None:
    link = LinkPacer(8_000_000.0)  # 1 MB/s
    assert link.delivery_time(first_byte=10.0, finished=10.1, size=500_000) == pytest.approx(10.5)
    # the next answer's first byte came at 10.2, but the link is busy until 10.5
    assert link.delivery_time(first_byte=10.2, finished=10.3, size=250_000) == pytest.approx(10.75)
    # an idle link starts at the first byte; never before the answer finished
    assert link.delivery_time(first_byte=20.0, finished=20.1, size=1000) == 20.1
    assert link.free_at == pytest.approx(20.001)


# ---------------------------------------------------------------- the run's records


def test_sent_requests_count_per_tenth_with_the_retries() -> None:
    stats = RunStats()
    recorder = RunRecorder(stats, origin=1000.0)
    recorder.sent(request(), 1003.25)
    recorder.sent(request(retry=1), 1003.27)
    recorder.sent(request(retry=2), 1003.95)
    second = stats.timeline.at(3)
    assert second.request_tenths[2] == 2 and second.request_tenths[9] == 1
    assert second.retry_tenths[2] == 1 and second.retry_tenths[9] == 1
    assert stats.indicators.client.counters["retries"] == 2
    assert stats.indicators.client.counters["retried_requests"] == 1


def test_a_404_that_answers_200_later_is_an_early_404() -> None:
    stats = RunStats()
    recorder = RunRecorder(stats, origin=0.0, held_limit=6.0)
    recorder.answered(request(PART + "?CMCD=bl%3D1"), 404, 10, 0.01, 1.0)
    recorder.answered(request(PART + "?CMCD=bl%3D2"), 404, 10, 0.01, 1.1)
    recorder.answered(request("http://h/live/720p/part-99.0.m4s"), 404, 10, 0.01, 1.2)
    recorder.answered(request(PART + "?CMCD=bl%3D3"), 200, 90_000, 0.02, 1.3)
    client = stats.indicators.client
    assert client.counters["media_requests"] == 4
    assert client.counters["media_404"] == 3
    assert client.counters["early_404"] == 2  # part-99 never answered 200: not early, missing
    assert client.bytes_by_kind["part"] == 90_030
    assert stats.requests["part"].status_counts == {"404": 3, "200": 1}
    assert stats.timeline.at(1).requests == 4


def test_held_answers_failures_and_playlist_ages() -> None:
    stats = RunStats()
    recorder = RunRecorder(stats, origin=0.0, held_limit=6.0)
    recorder.answered(request("http://h/live/720p/index.m3u8", "playlist"), 404, 10, 6.5, 2.0)
    recorder.failed(request(), "timeout", 2.5)
    recorder.playlist_age(0.4)
    recorder.playlist_age(-0.1)  # clocks apart: no negative ages
    client = stats.indicators.client
    assert client.counters["held_past"] == 1
    assert client.counters["media_requests"] == client.counters["media_404"] == 0
    assert stats.requests["part"].status_counts == {"timeout": 1}
    assert client.counters["playlists"] == 2 and client.playlist_age_s.min == 0.0


def test_the_not_found_memory_is_bounded() -> None:
    recorder = RunRecorder(RunStats(), origin=0.0)
    for i in range(NOT_FOUND_MEMORY + 5):
        recorder.answered(request(f"http://h/live/a/part-{i}.0.m4s"), 404, 0, 0.0, 1.0)
    recorder.answered(request("http://h/live/a/part-0.0.m4s"), 200, 0, 0.0, 1.0)
    assert recorder.stats.indicators.client.counters["early_404"] == 0  # forgotten
    recorder.answered(request("http://h/live/a/part-9.0.m4s"), 200, 0, 0.0, 1.0)
    assert recorder.stats.indicators.client.counters["early_404"] == 1


# ---------------------------------------------------------------- per-second sampling


def test_samples_go_to_the_second_they_are_taken_at_once_each() -> None:
    stats = RunStats()
    sampler = TimelineSampler(t=4.3)
    assert sampler.next_second == 5
    assert not sampler.due(4.99) and sampler.due(5.0 - 1e-9)  # a timer a rounding error early
    sampler.on_second(stalls=1, latencies=[1.5, 1.6], t=5.0 - 1e-9, stats=stats)
    assert stats.timeline.at(5).stalls == 1 and stats.timeline.at(4).stalls == 0
    assert stats.timeline.at(5).live_latency_s.count == 2
    assert sampler.next_second == 6
    sampler.on_second(stalls=1, latencies=[1.5, 1.6, 1.7], t=7.2, stats=stats)  # a late timer
    assert stats.timeline.at(7).live_latency_s.count == 1 and stats.timeline.at(7).stalls == 0
    assert sampler.next_second == 8
    sampler.flush(stalls=3, latencies=[1.5, 1.6, 1.7], t=7.6, stats=stats)  # the viewer's end
    assert stats.timeline.at(7).stalls == 2 and stats.timeline.at(7).live_latency_s.count == 1


# ---------------------------------------------------------------- one viewer through it


def _through_harness(config: PlayerConfig, seconds: float) -> tuple[ViewerHarness, ScriptedServer]:
    def dip(now: float) -> float:
        return 300e3 if EPOCH + 15.0 <= now < EPOCH + 18.0 else 20e6

    event = make_event()
    server = ScriptedServer(OriginApp(event), LadderFeeder(event), dip)
    player = Player(URL, config, random.Random(3))
    harness = ViewerHarness(player, RunRecorder(RunStats(), origin=EPOCH), EPOCH + 10.0)
    server.harness = harness
    server.run(player, EPOCH + 10.0, EPOCH + 10.0 + seconds)
    return harness, server


def test_a_viewer_through_the_harness_samples_every_second_and_ends_with_its_outcome() -> None:
    harness, server = _through_harness(PlayerConfig("h", start_level="lowest"), 20.0)
    stats, player = harness.recorder.stats, harness.player
    # woken at its deadlines only: every second's sample, latency samples, the dip's checks
    assert 20 <= server.ticks < 400
    seconds = stats.timeline.seconds
    sampled = sorted(t for t in seconds if seconds[t].live_latency_s.count)
    # playing from 10.2 s: a sample in every second but while stalled in the dip (15–18 s)
    missing = set(range(11, 30)) - set(sampled)
    assert missing and missing <= set(range(16, 20))
    assert all(seconds[t].live_latency_s.count <= 2 for t in sampled)
    assert {t for t in seconds if seconds[t].stalls} <= set(range(15, 20))
    outcome = harness.finish(EPOCH + 30.0)
    assert outcome == player.outcome(EPOCH + 30.0) and outcome.stalls >= 1
    assert sum(s.stalls for s in seconds.values()) == outcome.stalls
    latencies = sum(s.live_latency_s.count for s in seconds.values())
    assert latencies == len(player.latency_samples) == outcome.latency.samples  # type: ignore[union-attr]
    assert stats.viewers.counters["viewers"] == 1 and stats.viewers.counters["stalls"] >= 1
    assert stats.viewers.counters["played_s"] == pytest.approx(outcome.played_s)
    # the age of every media playlist the player took (not those of a rendition it left)
    answered = player.ledger.by_status["playlist"].get("200", 0)
    recorded = stats.indicators.client.counters["playlists"]
    assert recorded > 20 and 0 <= answered - recorded <= 2 * outcome.switches


def test_the_harness_deadline_is_the_players_or_the_next_second() -> None:
    harness, server = _through_harness(PlayerConfig("h", leave_at=EPOCH + 12.345), 1.0)
    player = harness.player
    player_deadline = player.next_deadline()
    assert player_deadline is not None
    assert harness.next_deadline() == min(player_deadline, EPOCH + 12.0)
    server.run_more(player, EPOCH + 12.2)
    assert harness.next_deadline() == pytest.approx(EPOCH + 12.345)
    server.run_more(player, EPOCH + 13.0)
    assert player.status == "left" and player.finished_at == EPOCH + 12.345
