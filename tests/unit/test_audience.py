"""Audience shapes: seeded, shaped as documented, churn and replacement counted right."""

from __future__ import annotations

import pytest

from livecast.errors import ConfigError
from livecast.scenario.audience import (
    AudienceShape,
    DownlinkBand,
    concurrent_viewers,
    expected_peak,
    plan_audience,
)

BANDS = [DownlinkBand(10_000, 3), DownlinkBand(1_500, 1)]


def plan(shape: AudienceShape, duration: float = 60, seed: int = 7, ll: float = 0.8):  # type: ignore[no-untyped-def]
    return plan_audience(shape, duration, low_latency_share=ll, downlink=BANDS, seed=seed)


def test_flash_crowd_arrives_within_the_window_mostly_early() -> None:
    plans = plan(AudienceShape("flash", viewers=2000, at=5, within=10))
    arrivals = [p.arrive for p in plans]
    assert len(plans) == 2000 and arrivals == sorted(arrivals)
    assert arrivals[0] >= 5 and arrivals[-1] <= 15
    early = sum(1 for t in arrivals if t < 7.5)  # first quarter of the window
    # Beta(1, 3): 1 - 0.75**3 = 57.8 % arrive then; this seed draws 1170 of 2000 (3σ: 66)
    assert early == 1170 and abs(early - 2000 * 0.578) <= 3 * (2000 * 0.578 * 0.422) ** 0.5


def test_ramp_is_even_and_steady_is_immediate() -> None:
    ramp = plan(AudienceShape("ramp", viewers=100, within=50))
    assert concurrent_viewers(ramp, 25) == 50
    steady = plan(AudienceShape("steady", viewers=100))
    assert concurrent_viewers(steady, 1.0) == 100


def test_same_seed_same_audience_other_seed_other_audience() -> None:
    shape = AudienceShape("flash", viewers=300)
    assert plan(shape, seed=1) == plan(shape, seed=1)
    assert plan(shape, seed=1) != plan(shape, seed=2)


def test_player_mix_and_downlink_bands() -> None:
    plans = plan(AudienceShape("steady", viewers=4000), ll=0.25)
    three_sigma = 3 * (4000 * 0.25 * 0.75) ** 0.5  # Binomial(4000, 0.25): 1000 ± 82
    low_latency = sum(p.low_latency for p in plans)
    assert low_latency == 990 and abs(low_latency - 1000) <= three_sigma  # this seed's draw
    slow = sum(1 for p in plans if p.downlink_bps < 2_000_000)  # the 1:3 band
    assert slow == 997 and abs(slow - 1000) <= three_sigma
    assert all(1_350_000 <= p.downlink_bps <= 11_000_000 for p in plans)


def test_churn_with_replacement_keeps_the_audience_size() -> None:
    shape = AudienceShape("steady", viewers=200, mean_session=10, replace=True)
    plans = plan(shape, duration=60)
    # 200 seats, each refilled when its viewer leaves: 200 × (1 + 60 / 10) ≈ 1400 sessions
    assert len(plans) == 1406  # this seed's draw
    assert all(p.leave is None or p.leave > p.arrive for p in plans)
    for t in (20.0, 40.0):
        assert concurrent_viewers(plans, t) == 200  # a leaver's replacement arrives as it leaves
    assert expected_peak(plans) == 200


def test_churn_without_replacement_shrinks_it() -> None:
    plans = plan(AudienceShape("steady", viewers=200, mean_session=10), duration=60)
    assert len(plans) == 200
    # exponential sessions of mean 10 s: 200 × e^-3 ≈ 10 remain at 30 s; this seed keeps 8
    assert concurrent_viewers(plans, 30) == 8


@pytest.mark.parametrize(
    ("shape", "key"),
    [
        (AudienceShape("crowd"), "audience.kind"),
        (AudienceShape(viewers=0), "audience.viewers"),
        (AudienceShape(skew=0.5), "audience.skew"),
        (AudienceShape(mean_session=0), "audience.mean_session"),
    ],
)
def test_bad_shapes_name_the_key(shape: AudienceShape, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        shape.validate()
    assert info.value.key == key
