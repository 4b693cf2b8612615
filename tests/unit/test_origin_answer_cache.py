"""The origin's answer cache by request target, pure, with ``now`` passed in: what it keeps, for
how long, and what it never keeps."""

from __future__ import annotations

from livecast.origin.answer_cache import AnswerCache, AnswerCacheCounts
from livecast.origin.contract import Hold, Response
from livecast.origin.gate import FORBIDDEN

PLAYLIST = Response(200, b"#EXTM3U\n", object_type="playlist-plain", reusable=True)
PART = Response(200, b"part", object_type="part", permanent=True)
FRESH = Response(200, b"per request")


def test_a_reusable_answer_lasts_until_the_state_changes() -> None:
    cache = AnswerCache()
    cache.remember(b"/a.m3u8", PLAYLIST)
    assert cache.answer(b"/a.m3u8") is PLAYLIST
    assert cache.answer(b"/a.m3u8?_HLS_msn=4") is None  # another target is another entry
    cache.state_changed()
    assert cache.answer(b"/a.m3u8") is None


def test_a_permanent_answer_outlives_state_changes() -> None:
    cache = AnswerCache()
    cache.remember(b"/p.m4s", PART)
    for _ in range(3):
        cache.state_changed()
    assert cache.answer(b"/p.m4s") is PART


def test_answers_that_allow_no_reuse_are_never_kept() -> None:
    cache = AnswerCache()
    cache.remember(b"/fresh", FRESH)
    cache.remember(b"/live/paid/main.m3u8", FORBIDDEN.response)
    assert cache.answer(b"/fresh") is None
    assert cache.answer(b"/live/paid/main.m3u8") is None
    assert cache.counts() == AnswerCacheCounts(0, 0, 0)


def test_a_held_target_is_held_again_for_as_long_from_its_own_arrival() -> None:
    cache = AnswerCache()
    assert cache.hold(b"/i.m3u8?_HLS_msn=9", 100.0) is None
    cache.remember_hold(b"/i.m3u8?_HLS_msn=9", Hold("k9", 106.0, "playlist-blocking"), 100.0)
    assert cache.hold(b"/i.m3u8?_HLS_msn=9", 102.5) == Hold("k9", 108.5, "playlist-blocking")
    assert cache.hold(b"/i.m3u8?_HLS_msn=10", 102.5) is None
    cache.state_changed()
    assert cache.hold(b"/i.m3u8?_HLS_msn=9", 103.0) is None


def test_every_table_is_bounded() -> None:
    cache = AnswerCache(max_targets=3)
    for n in range(5):
        target = f"/t{n}".encode()
        cache.remember(target, PLAYLIST)
        cache.remember(target + b".m4s", PART)
        cache.remember_hold(target, Hold(n, 10.0, "part"), 0.0)
    # reusable answers and holds stop being added; the permanent table starts over
    assert cache.counts() == AnswerCacheCounts(3, 2, 3)
    assert cache.answer(b"/t2") is PLAYLIST and cache.answer(b"/t4") is None
    assert cache.answer(b"/t4.m4s") is PART and cache.answer(b"/t0.m4s") is None
    assert cache.hold(b"/t4", 0.0) is None
