"""hls.js's Low-Latency CDN Tune-in (the ``Age`` header of media playlists) in the player model."""

from __future__ import annotations

import math
import random
from urllib.parse import parse_qs, urlsplit

import pytest

from livecast.errors import RequestError
from livecast.hls.directives import Directives, LivePosition, check_blocking_request
from livecast.hls.playlist import parse_media_playlist
from livecast.player import Player, PlayerConfig, Request
from livecast.player.tunein import TuneIn, cdn_tune_in, parse_age, within_reach

PT = 0.33334  # the origin's part target (tests/unit/synth.py)
URL = "http://o.test/live/720p/index.m3u8"


def playlist(
    newest: int = 102,
    open_parts: int = 2,
    td: int = 2,
    pt: float = PT,
    complete: int = 2,
) -> str:
    """``complete`` whole segments before segment ``newest``, which has ``open_parts`` parts so
    far (0: the newest segment is the last complete one), and the preload hint after them."""
    per_segment = math.ceil(td / pt - 1e-6)
    first = newest - complete
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:9",
        f"#EXT-X-TARGETDURATION:{td}",
        f"#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={3 * pt:.3f}",
        f"#EXT-X-PART-INF:PART-TARGET={pt}",
        f"#EXT-X-MEDIA-SEQUENCE:{first}",
    ]

    def parts(msn: int, count: int) -> None:
        for i in range(count):
            duration = min(pt, td / per_segment)
            lines.append(
                f'#EXT-X-PART:DURATION={duration:.5f},URI="p{msn}.{i}.m4s",INDEPENDENT=YES'
            )

    for msn in range(first, newest):
        parts(msn, per_segment)
        lines += [f"#EXTINF:{td:.5f},", f"s{msn}.m4s"]
    parts(newest, open_parts)
    hint = f"p{newest}.{open_parts}.m4s" if open_parts else f"p{newest}.0.m4s"
    lines.append(f'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="{hint}"')
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- the pure computation
def test_no_age_and_a_fresh_playlist_change_nothing() -> None:
    assert cdn_tune_in(102, 2, 0.0, PT, 2, 0.0) == TuneIn(102, 2, 0.0)


def test_an_age_under_one_part_target_changes_nothing() -> None:
    assert cdn_tune_in(102, 2, 0.3, PT, 2, 0.0) == TuneIn(102, 2, 0.0)


def test_age_one_second_skips_two_parts() -> None:
    # goal = min(1.0 − 0.333, 1.5 × 2) = 0.667 → floor(0.667 / 2) = 0 segments,
    # round(0.667 / 0.333) = 2 parts
    tuned = cdn_tune_in(102, 2, 1.0, 0.333, 2, 0.0)
    assert (tuned.msn, tuned.part) == (102, 4)
    assert tuned.goal == pytest.approx(0.667)


def test_age_one_second_across_a_segment_boundary() -> None:
    # hls.js adds the parts without carrying: the index passes segment 102's last part (5)
    tuned = cdn_tune_in(102, 5, 1.0, 0.333, 2, 0.0)
    assert (tuned.msn, tuned.part) == (102, 7)
    # … which the origin reads as part 0 of segment 103 (packager.live.has_part): so does the
    # player's directive, which no server can refuse (a playlist listing 6-part segments)
    pl = parse_media_playlist(playlist(newest=102, open_parts=5))
    assert within_reach(102, 7, pl) == (103, 0)
    # the newest part closed its segment: the blocking reload was for (103, 0) → (103, 2)
    assert cdn_tune_in(103, 0, 1.0, 0.333, 2, 0.0).part == 2


def test_a_goal_over_one_target_duration_skips_a_segment() -> None:
    # goal = min(2.75 − 0.25, 3) = 2.5 → 1 segment and (2.5 % 2) / 0.25 = 2 parts
    assert cdn_tune_in(102, 2, 2.75, 0.25, 2, 0.0) == TuneIn(103, 4, 2.5)
    # goal 2.125 → 1 segment and round(0.125 / 0.25) = round(0.5) = 1 part: JS Math.round
    # rounds halves up (Python's round() would give 0)
    assert cdn_tune_in(102, 2, 2.375, 0.25, 2, 0.0) == TuneIn(103, 3, 2.125)
    # the goal is capped at 1.5 target durations
    assert cdn_tune_in(102, 2, 5.0, 0.25, 2, 0.0) == TuneIn(103, 6, 3.0)


def test_an_age_over_three_target_durations_asks_for_a_plain_reload() -> None:
    tuned = cdn_tune_in(102, 2, 6.5, PT, 2, 0.0)
    assert (tuned.msn, tuned.part) == (None, None)
    assert tuned.goal == 3.0  # min(6.5 − 0.333, 1.5 × 2): remembered all the same


def test_a_goal_that_grew_since_the_last_reload_is_given_up() -> None:
    first = cdn_tune_in(102, 2, 1.0, PT, 2, 0.0)
    assert first.part == 4
    grown = cdn_tune_in(104, 1, 1.2, PT, 2, first.goal)  # 0.867 > 0.667: can't catch up
    assert grown == TuneIn(104, 1, 0.0)
    again = cdn_tune_in(105, 1, 1.2, PT, 2, grown.goal)  # nothing remembered: tries again
    assert again.part == 4 and again.goal > 0
    same = cdn_tune_in(104, 1, 1.0, PT, 2, first.goal)  # not grown: tunes in
    assert same.part == 3


def test_the_hls_js_directive_can_be_refused_and_the_normalised_one_cannot() -> None:
    # PART-TARGET 1 s, 4 s segments: Advance Part Limit 3, 4 parts per segment
    pl = parse_media_playlist(playlist(newest=100, open_parts=1, td=4, pt=1.0))
    tuned = cdn_tune_in(100, 1, 4.0, 1.0, 4, 0.0)  # goal 3 s → 3 parts
    assert (tuned.msn, tuned.part) == (100, 4)
    origin = LivePosition(100, 0, 4)  # where the playlist says the origin is
    with pytest.raises(RequestError) as refused:
        check_blocking_request(Directives(tuned.msn, tuned.part), origin, 1.0)
    assert refused.value.status == 400
    assert tuned.msn is not None
    assert within_reach(tuned.msn, tuned.part, pl) == (101, 0)
    check_blocking_request(Directives(101, 0), origin, 1.0)


@pytest.mark.parametrize(("td", "pt"), [(2, PT), (2, 0.5), (4, 1.0), (6, 0.5), (6, 2.0)])
def test_tuned_in_directives_are_never_refused_by_the_origin(td: int, pt: float) -> None:
    per_segment = math.ceil(td / pt - 1e-6)
    for open_parts in range(per_segment + 1):
        text = playlist(newest=100, open_parts=open_parts, td=td, pt=pt)
        pl = parse_media_playlist(text)
        upcoming = pl.next_part()
        last = pl.last_part()
        assert upcoming is not None and last is not None
        for tenths in range(0, 10 * 3 * td + 1):
            tuned = cdn_tune_in(*upcoming, tenths / 10, pt, td, 0.0)
            if tuned.msn is None:
                continue
            msn, part = within_reach(tuned.msn, tuned.part, pl)
            assert (msn, part or 0) >= upcoming  # never behind the untuned reload
            # the origin is where the playlist is, or further: a new segment (no part yet, or
            # its first), or the next parts of the newest one
            for origin in (
                LivePosition(last[0], last[1], per_segment),
                LivePosition(last[0] + 1, -1, per_segment),
                LivePosition(last[0] + 1, 0, per_segment),
                LivePosition(last[0] + 2, -1, per_segment),
            ):
                check_blocking_request(Directives(msn, part), origin, pt)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (None, None),
        ("", None),
        (b"3", 3.0),
        ("1.2", 1.2),
        (" 2 ", 2.0),
        (["4", "9"], 4.0),
        ("soon", None),
        (b"1.2s", None),
        ("-1", None),
        ("nan", None),
        ("inf", None),
    ],
)
def test_parse_age(value: str | bytes | list[str] | None, seconds: float | None) -> None:
    assert parse_age(value) == seconds


# ---------------------------------------------------------------- the player
def _joined(
    age: float | None, text: str | None = None, now: float = 10.0
) -> tuple[Player, list[Request]]:
    """A muxed LL-HLS player whose media playlist arrived at ``now`` with ``age``."""
    player = Player(URL, PlayerConfig("tunein"), random.Random(1))
    (first,) = player.start(now - 0.2)
    body = (text or playlist()).encode()
    (reload,) = player.on_response(first.id, 200, body, len(body), now - 0.1)
    assert reload.kind == "playlist" and "_HLS_" not in reload.url
    return player, player.on_response(reload.id, 200, body, len(body), now, age=age)


def _directives(requests: list[Request]) -> tuple[int | None, int | None]:
    (reload,) = [r for r in requests if r.kind == "playlist"]
    query = parse_qs(urlsplit(reload.url).query)
    msn, part = query.get("_HLS_msn"), query.get("_HLS_part")
    return (int(msn[0]) if msn else None), (int(part[0]) if part else None)


def test_the_player_tunes_its_blocking_reload_in_by_the_age_header() -> None:
    _, plain = _joined(None)
    assert _directives(plain) == (102, 2)  # the part after the newest listed one
    player, tuned = _joined(1.2)
    # goal = 1.2 − 0.333 = 0.867 → round(0.867 / 0.333) = 3 parts further
    assert _directives(tuned) == (102, 5)
    assert player.tracks["video"].tune_in_goal == pytest.approx(1.2 - PT)
    assert any(r.kind == "part" for r in tuned)  # 0.867 ≤ PART-HOLD-BACK: media goes on


def test_a_malformed_age_header_is_ignored() -> None:
    _, requests = _joined(parse_age(b"soon"))
    assert _directives(requests) == (102, 2)


def test_only_a_playlist_that_advanced_is_tuned_in() -> None:
    player, requests = _joined(None)
    (reload,) = [r for r in requests if r.kind == "playlist"]
    body = playlist().encode()  # the same playlist again, aged: it did not advance
    again = player.on_response(reload.id, 200, body, len(body), 10.5, age=1.2)
    assert _directives(again) == (102, 2)
    assert player.tracks["video"].tune_in_goal == 0.0


def test_a_large_goal_holds_the_media_until_the_tuned_in_playlist_arrives() -> None:
    player, requests = _joined(2.0)
    # goal 1.667 > max(PART-HOLD-BACK 1.0, 3 part targets): hls.js waitForCdnTuneIn
    assert not [r for r in requests if r.kind != "playlist"]
    # round(1.667 / 0.333) = 5 parts past (102, 2): past the segment's 6 parts → (103, 0)
    assert _directives(requests) == (103, 0)
    (reload,) = requests
    body = playlist(newest=103, open_parts=1).encode()
    fresh = player.on_response(reload.id, 200, body, len(body), 10.4, age=0.0)
    assert _directives(fresh) == (103, 1)
    assert any(r.kind == "part" for r in fresh)


def test_a_very_old_playlist_is_reloaded_without_directives() -> None:
    player, requests = _joined(7.0)  # > 3 × target duration
    (reload,) = [r for r in requests if r.kind == "playlist"]
    assert "_HLS_" not in reload.url and urlsplit(reload.url).path == urlsplit(URL).path
    assert player.tracks["video"].tune_in_goal == 3.0
