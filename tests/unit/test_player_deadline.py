"""``Player.next_deadline``: a player ticked only at its deadlines asks for the same requests at the
same moments and ends with the same outcome as one ticked every 10 ms — through startup, latency
sampling, a slow fetch and its emergency switch, a stall, retries with seeded jitter, leaving, and
the end of the stream."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import pytest

from livecast.origin.app import OriginApp
from livecast.player import Player, PlayerConfig, Request
from livecast.player.buffer import PlaybackState
from livecast.results.stats import ViewerOutcome

from .synth import EPOCH, make_event
from .test_player_server import URL, LadderFeeder, ScriptedServer

Sent = tuple[float, str, str, int | None]


def _parts_fail(start: float, end: float) -> Callable[[Request, float], int | None]:
    def fault(request: Request, now: float) -> int | None:
        return 500 if request.kind == "part" and EPOCH + start <= now < EPOCH + end else None

    return fault


def _dip(now: float) -> float:
    return 600e3 if EPOCH + 16.0 <= now < EPOCH + 20.0 else 20e6


def _watch(
    config: PlayerConfig,
    *,
    at_deadlines: bool,
    seconds: float = 30.0,
    bandwidth: Callable[[float], float] = _dip,
    fault: Callable[[Request, float], int | None] | None = None,
) -> tuple[Player, ScriptedServer]:
    event = make_event()
    server = ScriptedServer(OriginApp(event), LadderFeeder(event), bandwidth, fault=fault)
    player = Player(URL, config, random.Random(7))
    server.run(player, EPOCH + 10.0, EPOCH + 10.0 + seconds, at_deadlines=at_deadlines)
    return player, server


def _trace(player: Player, server: ScriptedServer, end: float) -> tuple[object, ...]:
    sent: list[Sent] = [(s.at, s.request.kind, s.request.url, s.status) for s in server.sent]
    outcome: ViewerOutcome = player.outcome(end)
    return sent, outcome, tuple(player.latency_samples), player.status, player.finished_at


@pytest.mark.parametrize(
    ("config", "fault"),
    [
        (PlayerConfig("dip", start_level="highest"), None),
        (PlayerConfig("faults"), _parts_fail(14.0, 17.0)),
        (PlayerConfig("churn", leave_at=EPOCH + 31.234), None),
        (PlayerConfig("classic", mode="classic"), _parts_fail(0.0, 0.0)),
    ],
    ids=["slow-fetch-and-stall", "retries", "leaves", "classic"],
)
def test_ticking_at_the_deadlines_equals_ticking_every_10_ms(
    config: PlayerConfig, fault: Callable[[Request, float], int | None] | None
) -> None:
    polled, polled_server = _watch(config, at_deadlines=False, fault=fault)
    timed, timed_server = _watch(config, at_deadlines=True, fault=fault)
    end = EPOCH + 40.0
    assert _trace(timed, timed_server, end) == _trace(polled, polled_server, end)
    assert timed_server.ticks < polled_server.ticks / 5  # not a poll in disguise


def test_the_scenarios_do_what_they_are_meant_to() -> None:
    player, server = _watch(PlayerConfig("dip", start_level="highest"), at_deadlines=True)
    outcome = player.outcome(EPOCH + 40.0)
    assert outcome.stalls >= 1 and outcome.switches >= 1 and len(player.latency_samples) > 20
    player, server = _watch(
        PlayerConfig("faults"), at_deadlines=True, fault=_parts_fail(14.0, 17.0)
    )
    assert any(s.request.retry > 0 for s in server.sent) and player.status == "watching"
    player, _ = _watch(PlayerConfig("churn", leave_at=EPOCH + 31.234), at_deadlines=True)
    assert player.status == "left" and player.finished_at == EPOCH + 31.234


def test_a_stream_that_ends_ends_at_its_deadline_too() -> None:
    def run(*, at_deadlines: bool) -> tuple[object, ...]:
        event = make_event()
        server = ScriptedServer(OriginApp(event), LadderFeeder(event))
        player = Player(URL, PlayerConfig("end"), random.Random(1))
        server.run(player, EPOCH + 10.0, EPOCH + 16.0, at_deadlines=at_deadlines)
        event.end()
        server.run_more(player, EPOCH + 26.0, at_deadlines=at_deadlines)
        return _trace(player, server, EPOCH + 26.0)

    timed = run(at_deadlines=True)
    assert timed == run(at_deadlines=False)
    assert timed[3] == "ended"


def test_what_the_deadline_is_made_of() -> None:
    config = PlayerConfig("v", leave_at=EPOCH + 100.0)
    player = Player(URL, config, random.Random(1))
    assert player.next_deadline() is None  # not started: nothing to do
    event = make_event()
    server = ScriptedServer(OriginApp(event), LadderFeeder(event))
    server.run(player, EPOCH + 10.0, EPOCH + 10.05)
    assert player.next_deadline() == EPOCH + 100.0  # joining: only the leave time
    server.run_more(player, EPOCH + 15.0)
    buffer = player.buffer
    assert buffer is not None and buffer.state is PlaybackState.PLAYING
    deadline = player.next_deadline()
    last_sample = player.latency_sampler.last_at
    assert last_sample is not None and deadline is not None
    assert EPOCH + 15.0 - 0.1 < deadline <= last_sample + config.latency_sample_interval
    drain = buffer.drain_at()
    assert drain is not None and deadline <= drain
    # ticking before it changes nothing; at it, a latency sample
    samples = len(player.latency_samples)
    assert player.tick(deadline - 0.001) == [] and len(player.latency_samples) == samples
    player.tick(last_sample + config.latency_sample_interval)
    assert len(player.latency_samples) == samples + 1
    player.tick(EPOCH + 100.0)
    assert player.finished and player.next_deadline() is None


def test_a_loading_video_fetch_is_checked_on_a_100_ms_grid_from_its_start() -> None:
    player = Player(URL, PlayerConfig("v"), random.Random(1))
    event = make_event()
    server = ScriptedServer(OriginApp(event), LadderFeeder(event), _dip)
    server.run(player, EPOCH + 10.0, EPOCH + 16.5)
    video = player.tracks["video"]
    assert video.media_request is not None
    flight = player.ledger.in_flight[video.media_request]
    began = video.hint_listed_at if flight.hinted else flight.request.not_before
    deadline = player.next_deadline()
    assert began is not None and deadline is not None
    steps = (deadline - began) / player.config.slow_fetch_check_interval
    assert steps == pytest.approx(round(steps)) and round(steps) >= 1
    assert deadline - server.now <= player.config.slow_fetch_check_interval + 1e-9
    assert math.isfinite(deadline)
