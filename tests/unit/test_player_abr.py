"""The bandwidth estimate (hls.js EWMA pair) and rendition choice, alone and against the origin:
ABR climbs to the top rung with bandwidth to spare and steps down when the bandwidth drops."""

from __future__ import annotations

import math
from urllib.parse import urlsplit

import pytest

from livecast.player import PlayerConfig
from livecast.player.abr import (
    AbrInputs,
    BandwidthEstimator,
    Ewma,
    choose_level,
    slow_fetch_bound,
    start_level,
)

from .synth import EPOCH
from .test_player_server import session

LADDER = [600_000, 1_600_000]


def test_ewma_corrects_its_zero_start_and_halves_per_half_life() -> None:
    ewma = Ewma(3.0)
    ewma.sample(0.5, 1000.0)
    assert ewma.value() == pytest.approx(1000.0)
    ewma.sample(3.0, 0.0)  # one half-life of zeros halves the weight of what came before
    raw_before = 1000.0 * (1 - 0.5 ** (0.5 / 3))
    assert ewma.estimate == pytest.approx(raw_before * 0.5)
    assert ewma.alpha == pytest.approx(math.exp(math.log(0.5) / 3))


def test_estimate_is_the_default_until_sampled_then_the_lower_of_fast_and_slow() -> None:
    estimator = BandwidthEstimator(3.0, 9.0, default_bps=500_000)
    assert estimator.estimate() == 500_000 and not estimator.has_samples
    for _ in range(10):
        estimator.sample(1.0, 1_000_000)  # 8 Mbit/s
    assert estimator.estimate() == pytest.approx(8e6)
    for _ in range(3):
        estimator.sample(1.0, 125_000)  # 1 Mbit/s: the fast average falls first
    assert estimator.fast.value() < estimator.slow.value()
    assert estimator.estimate() == estimator.fast.value()
    estimator.sample(0.001, 10_000)  # shorter than 50 ms counts as 50 ms (hls.js minDelayMs)
    assert estimator.samples == 14


def test_going_up_needs_headroom_staying_does_not() -> None:
    def pick(current: int, estimate: float) -> int:
        return choose_level(AbrInputs(LADDER, current, estimate, 2.0, 0.33, True))

    assert pick(0, 2.0e6) == 0  # 1.6 > 0.7 × 2.0
    assert pick(0, 2.4e6) == 1  # 1.6 ≤ 0.7 × 2.4
    assert pick(1, 2.0e6) == 1  # 1.6 ≤ 0.95 × 2.0
    assert pick(1, 1.6e6) == 0  # 1.6 > 0.95 × 1.6
    assert pick(1, 0.1e6) == 0  # nothing fits: the lowest


def test_low_buffer_forces_a_step_down() -> None:
    plenty = AbrInputs(LADDER, 1, 2.0e6, 2.0, 0.33, True)
    assert choose_level(plenty) == 1
    starving = AbrInputs(LADDER, 1, 2.0e6, 0.2, 0.33, True)  # 1.6×0.33/1.9 = 0.28 s > 0.2 s
    assert choose_level(starving) == 0
    before_start = AbrInputs(LADDER, 1, 2.0e6, 0.0, 0.33, False)
    assert choose_level(before_start) == 1


def test_start_level_rules_and_slow_fetch_bound() -> None:
    assert start_level(LADDER, "lowest", 9e9, 0.7) == 0
    assert start_level(LADDER, "highest", 0, 0.7) == 1
    assert start_level(LADDER, "estimate", 500_000, 0.7) == 0
    assert start_level(LADDER, "estimate", 3e6, 0.7) == 1
    assert slow_fetch_bound(1_600_000, 0.33, 0.3) is None
    assert slow_fetch_bound(1_600_000, 0.33, 0.66) == pytest.approx(800_000)


# ---------------------------------------------------------------- against the origin


def _video_parts(server: object, rendition: str) -> int:
    return sum(
        1
        for s in server.kinds("part")  # type: ignore[attr-defined]
        if urlsplit(s.request.url).path.startswith(f"/live/{rendition}/")
    )


def test_high_bandwidth_climbs_to_the_top_rung() -> None:
    player, server = session(PlayerConfig("up", start_level="lowest"), seconds=20.0)
    record = player.outcome(EPOCH + 30.0)
    assert player.start_bitrate == player.variants[0].bandwidth
    assert player.level == len(player.variants) - 1
    assert record.switches == 1
    assert _video_parts(server, "720p") > _video_parts(server, "360p")
    inits = {urlsplit(s.request.url).path for s in server.kinds("init")}
    assert "/live/720p/init-882000000.mp4" in inits
    assert record.stalls == 0
    top = player.variants[-1].bandwidth
    assert record.avg_bitrate_bps is not None
    assert player.variants[0].bandwidth < record.avg_bitrate_bps <= top


def test_bandwidth_drop_steps_down() -> None:
    def bandwidth(now: float) -> float:
        return 20e6 if now < EPOCH + 18.0 else 1.0e6

    player, server = session(PlayerConfig("down", start_level="highest"), 20.0, bandwidth)
    record = player.outcome(EPOCH + 30.0)
    assert player.start_bitrate == player.variants[-1].bandwidth
    assert player.level == 0
    assert record.switches == 1
    switched_at = min(
        s.at for s in server.kinds("init") if urlsplit(s.request.url).path.startswith("/live/360p/")
    )
    # the first part loading slower than real time is the evidence (hls.js abandon rules): the
    # emergency switch resets the estimator, so the next regular decision does not undo it
    assert switched_at == pytest.approx(EPOCH + 18.6, abs=1e-3)  # 0.6 s into the slow link
    assert player.status == "watching"
    assert record.stalled_s == 0.0


def test_estimator_reset_starts_again_from_the_given_estimate() -> None:
    estimator = BandwidthEstimator(default_bps=500_000.0)
    estimator.sample(1.0, 2_500_000)  # 20 Mbit/s
    assert estimator.estimate() > 10e6
    estimator.reset(900_000.0)
    assert not estimator.has_samples and estimator.estimate() == 900_000.0
    estimator.sample(1.0, 125_000)  # 1 Mbit/s
    assert estimator.estimate() == pytest.approx(1e6)
