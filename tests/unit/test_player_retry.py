"""Backoff schedule with and without jitter, hls.js retry defaults, and the viewer's end when
retries run out (fatal error vs video start failure)."""

from __future__ import annotations

import random
from itertools import pairwise
from urllib.parse import urlsplit

import pytest

from livecast.player import Player, PlayerConfig
from livecast.player.config import FRAGMENT_RETRY, MULTIVARIANT_RETRY, PLAYLIST_RETRY, RetryPolicy
from livecast.player.retry import backoff_cap, backoff_delay, backoff_schedule, can_retry

from .synth import EPOCH
from .test_player_server import URL, Request, session


def test_defaults_mirror_hls_js() -> None:
    assert (FRAGMENT_RETRY.max_retries, FRAGMENT_RETRY.base_delay, FRAGMENT_RETRY.max_delay) == (
        6,
        1.0,
        8.0,
    )
    assert (PLAYLIST_RETRY.max_retries, PLAYLIST_RETRY.base_delay, PLAYLIST_RETRY.max_delay) == (
        2,
        1.0,
        8.0,
    )
    assert MULTIVARIANT_RETRY.max_retries == 1
    assert FRAGMENT_RETRY.jitter and PLAYLIST_RETRY.jitter


def test_schedule_without_jitter_is_exact() -> None:
    policy = FRAGMENT_RETRY.without_jitter()
    assert backoff_schedule(policy, random.Random(1)) == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert backoff_schedule(PLAYLIST_RETRY.without_jitter(), random.Random(1)) == [1.0, 2.0]
    custom = RetryPolicy(max_retries=4, base_delay=0.5, max_delay=3.0, jitter=False)
    assert backoff_schedule(custom, random.Random(1)) == [0.5, 1.0, 2.0, 3.0]


def test_full_jitter_stays_within_the_cap_and_is_seeded() -> None:
    delays = backoff_schedule(FRAGMENT_RETRY, random.Random(7))
    caps = [backoff_cap(FRAGMENT_RETRY, n) for n in range(6)]
    assert all(0.0 <= d <= c for d, c in zip(delays, caps, strict=True))
    assert delays != caps
    assert backoff_schedule(FRAGMENT_RETRY, random.Random(7)) == delays
    assert backoff_schedule(FRAGMENT_RETRY, random.Random(8)) != delays


def test_full_jitter_is_uniform_below_the_cap() -> None:
    rng = random.Random(3)
    draws = [backoff_delay(FRAGMENT_RETRY, 3, rng) for _ in range(4000)]
    assert max(draws) <= 8.0 and min(draws) >= 0.0
    assert sum(draws) / len(draws) == pytest.approx(4.0, abs=0.2)
    assert sum(d < 2.0 for d in draws) / len(draws) == pytest.approx(0.25, abs=0.03)


def test_can_retry_counts_retries_done() -> None:
    assert can_retry(PLAYLIST_RETRY, 0) and can_retry(PLAYLIST_RETRY, 1)
    assert not can_retry(PLAYLIST_RETRY, 2)


# ---------------------------------------------------------------- driven by hand


def test_multivariant_500_retries_once_after_exactly_one_second_then_fails_to_start() -> None:
    player = Player(URL, PlayerConfig("v", downlink_bps=5e6).without_jitter(), random.Random(1))
    (first,) = player.start(100.0)
    assert first.kind == "multivariant" and first.not_before == 100.0
    (retry,) = player.on_response(first.id, 500, b"", 0, 100.2)
    assert retry.kind == "multivariant" and retry.not_before == pytest.approx(101.2)
    assert urlsplit(retry.url).path == urlsplit(first.url).path
    assert (first.retry, retry.retry) == (0, 1)  # the adapter counts retries from this
    assert player.on_response(retry.id, 503, b"", 0, 101.3) == []
    record = player.outcome(102.0)
    assert player.status == "start_failure" and record.start_failed
    assert not record.exited_before_start and record.startup_s is None
    assert record.fatal_error is not None and "HTTP 503 after 1 retries" in record.fatal_error
    assert player.ledger.by_status == {"multivariant": {"500": 1, "503": 1}}
    assert player.finished and player.downlink_bps == 5e6


def test_network_errors_count_by_kind_and_retry_with_jitter_from_the_injected_rng() -> None:
    delays = []
    for _ in range(2):
        player = Player(URL, PlayerConfig("v"), random.Random(42))
        (first,) = player.start(0.0)
        (retry,) = player.on_error(first.id, "timeout", 20.0)
        delays.append(retry.not_before - 20.0)
        assert player.ledger.by_status == {"multivariant": {"timeout": 1}}
    assert delays[0] == delays[1]
    assert 0.0 <= delays[0] <= 1.0


# ---------------------------------------------------------------- against the origin


def _parts_fail_after(t: float) -> object:
    def fault(request: Request, now: float) -> int | None:
        return 500 if request.kind == "part" and now >= EPOCH + t else None

    return fault


def test_parts_failing_for_good_end_in_a_fatal_error_after_six_retries() -> None:
    config = PlayerConfig("v").without_jitter()
    player, server = session(config, seconds=45.0, fault=_parts_fail_after(14.0))  # type: ignore[arg-type]
    record = player.outcome(server.sent[-1].at)
    assert player.status == "fatal" and not record.start_failed
    assert record.fatal_error is not None and "after 6 retries" in record.fatal_error
    assert record.fatal_error == player.error
    assert record.startup_s is not None
    # the first failing part of one track: asked for as the preload hint (not retried: the
    # playlist says what exists), then as a listed part and its 6 retries 1, 2, 4, 8, 8, 8 s apart
    failed = [s for s in server.kinds("part") if s.status == 500]
    path = urlsplit(failed[0].request.url).path
    times = [s.request.not_before for s in failed if urlsplit(s.request.url).path == path]
    assert len(times) == 8
    assert times[1] - times[0] < 0.5
    gaps = [b - a for a, b in pairwise(times[1:])]
    for gap, delay in zip(gaps, [1, 2, 4, 8, 8, 8], strict=True):
        assert delay <= gap <= delay + 0.1
    assert player.finished_at == pytest.approx(times[-1], abs=0.1)
    assert record.stalls == 1  # it starved before giving up


def test_with_jitter_viewers_spread_their_retries_and_a_seed_repeats_them() -> None:
    def retry_times(seed: int) -> list[float]:
        _, server = session(
            PlayerConfig("v"),
            seconds=12.0,
            fault=_parts_fail_after(14.0),  # type: ignore[arg-type]
            seed=seed,
        )
        return [s.request.not_before for s in server.kinds("part") if s.status == 500]

    assert retry_times(5) == retry_times(5)
    assert retry_times(5) != retry_times(6)
