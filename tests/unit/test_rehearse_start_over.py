"""Start-over viewers in a rehearsal scenario: ``[audience] start_over`` and ``seek_back``, their
validation, the audience plan (the share exact, the live plan unchanged), and how the runner reads
the recording it waits for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from livecast.errors import ConfigError, LivecastError
from livecast.rehearse.objects import object_of
from livecast.rehearse.runner import recording_span
from livecast.scenario.audience import AudienceShape, DownlinkBand, plan_audience
from livecast.scenario.file import load_scenario, parse_scenario

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
BANDS = [DownlinkBand(25_000, 6), DownlinkBand(2_000, 1)]


def test_the_shipped_dvr_example_parses() -> None:
    scenario = load_scenario(EXAMPLES / "rehearse-dvr.toml")
    audience = scenario.audience
    assert audience.viewers == 300 and audience.kind == "flash"
    assert audience.start_over == 0.2 and audience.seek_back == (10.0, 60.0)
    assert scenario.stack is not None


def test_start_over_settings() -> None:
    audience = parse_scenario({"audience": {"start_over": 0.25, "seek_back": [5, 30]}}).audience
    assert audience.start_over == 0.25 and audience.seek_back == (5.0, 30.0)
    fixed = parse_scenario({"audience": {"start_over": 1, "seek_back": 12}}).audience
    assert fixed.seek_back == (12.0, 12.0)
    default = parse_scenario({}).audience
    assert default.start_over == 0.0 and default.seek_back == (10.0, 60.0)


@pytest.mark.parametrize(
    ("audience", "key", "message"),
    [
        ({"start_over": 1.5}, "audience.start_over", "above 1"),
        ({"start_over": -0.1}, "audience.start_over", "below 0"),
        ({"start_over": "20%"}, "audience.start_over", "must be a number"),
        ({"seek_back": [10, 20]}, "audience.seek_back", "only with start_over"),
        ({"start_over": 0.2, "seek_back": [30, 10]}, "audience.seek_back", "least ≤ most"),
        ({"start_over": 0.2, "seek_back": [0, 10]}, "audience.seek_back", "0 < least"),
        ({"start_over": 0.2, "seek_back": [10, 9000]}, "audience.seek_back", "DVR window"),
        ({"start_over": 0.2, "seek_back": [10]}, "audience.seek_back", "[least, most]"),
        ({"start_over": 0.2, "seek_back": "10-60"}, "audience.seek_back", "[least, most]"),
        ({"start_over": 0.2, "seek_back": [True, 10]}, "audience.seek_back", "[least, most]"),
    ],
)
def test_bad_start_over_settings_name_the_key(
    audience: dict[str, Any], key: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_scenario({"audience": audience})
    assert caught.value.key == key and message in str(caught.value)


def plan(shape: AudienceShape, seed: int = 7) -> list[Any]:
    return plan_audience(shape, 60.0, low_latency_share=0.8, downlink=BANDS, seed=seed)


def test_the_share_of_start_over_viewers_holds_over_any_stretch_of_arrivals() -> None:
    plans = plan(AudienceShape(viewers=300, start_over=0.2, seek_back=(10.0, 60.0)))
    start_over = [p for p in plans if p.seek_back is not None]
    assert len(start_over) == 60
    for first in range(0, 300, 25):  # every stretch of 50 arrivals: 10 of them, ± 1
        stretch = plans[first : first + 50]
        count = sum(p.seek_back is not None for p in stretch)
        assert abs(count - 0.2 * len(stretch)) <= 1
    backs = [p.seek_back for p in start_over]
    assert all(10.0 <= b <= 60.0 for b in backs) and max(backs) - min(backs) > 30
    assert plan(AudienceShape(viewers=300, start_over=1.0))[0].seek_back is not None
    assert all(p.seek_back is not None for p in plan(AudienceShape(viewers=50, start_over=1.0)))


def test_start_over_leaves_the_rest_of_the_plan_as_it_was() -> None:
    live = plan(AudienceShape(viewers=200, mean_session=20.0, replace=True))
    mixed = plan(AudienceShape(viewers=200, mean_session=20.0, replace=True, start_over=0.3))
    assert len(mixed) == len(live) > 200  # churn replacements too

    def without(p: Any) -> tuple[Any, ...]:
        return (p.index, p.arrive, p.leave, p.low_latency, p.downlink_bps, p.seed)

    assert [without(p) for p in mixed] == [without(p) for p in live]
    assert all(p.seek_back is None for p in live)
    again = plan(AudienceShape(viewers=200, mean_session=20.0, replace=True, start_over=0.3))
    assert [p.seek_back for p in again] == [p.seek_back for p in mixed]  # seeded
    other = plan(AudienceShape(viewers=200, start_over=0.3), seed=8)
    assert [p.seek_back for p in other] != [p.seek_back for p in mixed[: len(other)]]


def test_the_recording_span_a_start_over_viewer_may_seek_into() -> None:
    info = {
        "recorded": True,
        "ended": False,
        "first": 1000.0,
        "live_end": 1075.0,
        "dvr_window": 7200.0,
        "oldest_start": 1000.0,
    }
    assert recording_span(info, 60.0, "u") == 75.0
    assert recording_span({"recorded": False, "ended": False}, 60.0, "u") is None
    windowed = info | {"dvr_window": 30.0, "oldest_start": 1045.0}
    with pytest.raises(LivecastError, match="DVR window at u is 30 s"):
        recording_span(windowed, 60.0, "u")
    assert recording_span(windowed, 20.0, "u") == 30.0


def test_start_over_playlists_at_an_edge_are_objects_of_their_own() -> None:
    t0 = 1_800_000_000.0
    live = object_of("/live/720p/index.m3u8", t0, 1 / 3)
    dvr = object_of("/live/720p/index.m3u8?start=1799999950.000&CMCD=bl%3D0", t0, 1 / 3)
    other = object_of("/live/720p/index.m3u8?CMCD=x&start=1799999940.000", t0, 1 / 3)
    assert dvr[0] == other[0] == "playlist-dvr" and len({live[1], dvr[1], other[1]}) == 3
    # one object per part target, CMCD aside, as a plain playlist
    again = object_of("/live/720p/index.m3u8?start=1799999950.000&CMCD=bl%3D9", t0 + 0.1, 1 / 3)
    later = object_of("/live/720p/index.m3u8?start=1799999950.000", t0 + 0.4, 1 / 3)
    assert again == dvr != later
    ranged = object_of("/live/720p/index.m3u8?end=2&start=1", t0, 1 / 3)
    assert ranged == object_of("/live/720p/index.m3u8?start=1&end=2", t0, 1 / 3)
    main = object_of("/live/main.m3u8?start=1799999950.000", t0, 1 / 3)
    assert main[0] == "multivariant" and main[1] != object_of("/live/main.m3u8", t0, 1 / 3)[1]
