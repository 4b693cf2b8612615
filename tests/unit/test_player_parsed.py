"""Playlist parse results shared between viewers, and the fast relative-URL join."""

from __future__ import annotations

import random
from urllib.parse import urljoin

import pytest

from livecast.origin.app import OriginApp
from livecast.player import Player, PlayerConfig
from livecast.player.parsed import PlaylistCache
from livecast.player.track import join_url

from .synth import EPOCH, make_event
from .test_player_server import URL, LadderFeeder, ScriptedServer


@pytest.mark.parametrize(
    ("base", "uri"),
    [
        ("http://o.test/live/720p/index.m3u8", "part-882000001.2.m4s"),
        ("http://o.test/live/720p/index.m3u8?_HLS_msn=5&_HLS_part=1&CMCD=x", "seg-5.m4s"),
        ("http://o.test/live/main.m3u8", "720p/index.m3u8"),
        ("http://o.test/live/720p/index.m3u8", "../audio/index.m3u8"),
        ("http://o.test/live/720p/index.m3u8", "/abs/x.m4s"),
        ("http://o.test/live/720p/index.m3u8", "https://cdn.test/y.m4s"),
        ("http://o.test/live/720p/index.m3u8#frag", "init-1.mp4"),
        ("http://o.test/live/720p/index.m3u8", "./a/./b.m4s"),
    ],
)
def test_join_url_matches_urljoin(base: str, uri: str) -> None:
    assert join_url(base, uri) == urljoin(base, uri)


def _watch(cache: PlaylistCache | None, name: str) -> object:
    """One viewer of a fresh (deterministic) event: the same playlist bytes every run; its
    outcome, answers by kind and status, bytes by kind and latency samples."""
    event = make_event()
    server = ScriptedServer(OriginApp(event), LadderFeeder(event))
    player = Player(URL, PlayerConfig(name), random.Random(1), cache)
    server.run(player, EPOCH + 10.0, EPOCH + 14.0)
    outcome = player.outcome(EPOCH + 14.0)
    ledger = player.ledger
    return outcome, ledger.by_status, ledger.bytes_by_kind, player.latency_samples


def test_a_shared_cache_parses_each_playlist_once_and_changes_nothing() -> None:
    alone = _watch(None, "v")
    cache = PlaylistCache(size=256)
    assert _watch(cache, "v") == alone
    parsed_once = cache.misses
    assert parsed_once > 10 and cache.hits == 0
    assert _watch(cache, "v") == alone  # a second viewer sees the same versions
    assert cache.misses == parsed_once and cache.hits == parsed_once


def test_cache_keys_and_eviction() -> None:
    event = make_event()
    LadderFeeder(event).advance_to(9.0)
    text = event.media_playlist_bytes("720p").decode()
    cache = PlaylistCache(size=2)
    base = "http://o.test/live/720p/index.m3u8"
    first = cache.parse(text, base, True)
    assert cache.parse(text, base, True) is first
    assert cache.parse(text, base, False) is not first  # classic indexing differs
    cache.parse(text, "http://edge.test/live/720p/index.m3u8", True)
    assert cache.parse(text, base, True) is not first  # evicted (size 2)
    assert (cache.hits, cache.misses) == (1, 4)
    assert first.hint is not None and first.init_url == (
        "http://o.test/live/720p/init-882000000.mp4"
    )
