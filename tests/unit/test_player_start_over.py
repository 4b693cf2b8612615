"""Start-over viewers (``PlayerConfig.seek_back``) against the pure origin with a recording:
``main.m3u8?start=…``, EVENT playlists reloaded plainly, segments from before the live window,
ABR within the recording; and the pure pieces (the start URL, the start position)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from livecast.errors import ConfigError
from livecast.origin.app import OriginApp
from livecast.player import Player, PlayerConfig
from livecast.player.track import SEGMENT, MediaItem, seek_start, start_over_url
from livecast.store.archive import Recording

from .synth import EPOCH, make_event
from .test_player_server import URL, LadderFeeder, ScriptedServer

WINDOW = 12.0  # the live window: 6 segments; older ones come from the recording on disk


@pytest.fixture
def recording(tmp_path: Path) -> Iterator[Recording]:
    store = Recording(tmp_path, fsync="off")
    yield store
    store.close()


def start_over_session(
    recording: Recording, seek_back: float, *, join: float = 40.0, seconds: float = 20.0
) -> tuple[Player, ScriptedServer]:
    """A start-over viewer joining ``join`` s into a recorded event, ``seek_back`` s behind."""
    event = make_event(window=WINDOW, store=recording)
    server = ScriptedServer(OriginApp(event), LadderFeeder(event))
    player = Player(URL, PlayerConfig("dvr", seek_back=seek_back), random.Random(1))
    server.run(player, EPOCH + join, EPOCH + join + seconds)
    return player, server


def start_of(url: str) -> float:
    return float(parse_qs(urlsplit(url).query)["start"][0])


def test_a_start_over_viewer_plays_the_recording_from_the_time_it_asked_for(
    recording: Recording,
) -> None:
    player, server = start_over_session(recording, seek_back=25.0)
    record = player.outcome(EPOCH + 60.0)
    assert player.status == "watching" and record.fatal_error is None, player.error
    assert record.stalls == 0 and record.startup_s is not None and record.startup_s < 0.5
    first = server.sent[0]
    assert first.request.kind == "multivariant" and urlsplit(first.request.url).path.endswith(
        "/live/main.m3u8"
    )
    assert start_of(first.request.url) == pytest.approx(EPOCH + 15.0)  # join (40 s) − 25 s
    playlists = server.kinds("playlist")
    assert playlists and all(start_of(s.request.url) == EPOCH + 15.0 for s in playlists)
    assert all("_HLS_" not in s.request.url for s in playlists)  # EVENT: no blocking reloads
    assert not player.low_latency and not server.kinds("part")
    # the first video segment is the one holding the start (14–16 s), from before the live
    # window (40 s − 12 s): served from the recording
    video = [s for s in server.kinds("segment") if "/live/audio/" not in s.request.url]
    assert urlsplit(video[0].request.url).path.endswith("/seg-882000007.m4s")
    assert all(s.status == 200 for s in server.sent)
    # it watches 25 s behind live plus its startup, and stays there
    assert player.latency_samples == pytest.approx(
        [25.0 + record.startup_s] * len(player.latency_samples), abs=1e-3
    )
    assert all(s.request.dvr for s in server.sent)  # counted apart from live (player.harness)


def test_the_event_playlist_is_reloaded_every_target_duration(recording: Recording) -> None:
    player, server = start_over_session(recording, seek_back=10.0, seconds=16.0)
    polls = [s.at for s in server.kinds("playlist") if "/live/audio/" in s.request.url]
    gaps = [b - a for a, b in pairwise(polls)]
    # one plain reload per target duration (2 s) plus the scripted 20 ms transfer
    assert len(polls) == 8 and gaps == pytest.approx([2.02] * 7, abs=1e-6)
    assert player.outcome(EPOCH + 56.0).stalls == 0


def test_a_rendition_switch_stays_in_the_recording(recording: Recording) -> None:
    player, server = start_over_session(recording, seek_back=30.0)
    assert player.switches == 1 and player.bitrate == player.variants[-1].bandwidth
    renditions = {urlsplit(s.request.url).path for s in server.kinds("playlist")}
    assert renditions == {f"/live/{r}/index.m3u8" for r in ("360p", "720p", "audio")}
    assert all(start_of(s.request.url) == EPOCH + 10.0 for s in server.kinds("playlist"))
    # the switch happens at a segment, continuing the timeline: no stall, no gap
    assert player.outcome(EPOCH + 60.0).stalls == 0


def test_a_start_before_the_recording_fails_to_start_with_the_origins_404(
    recording: Recording,
) -> None:
    player, server = start_over_session(recording, seek_back=100.0, seconds=10.0)
    record = player.outcome(EPOCH + 50.0)
    assert player.status == "start_failure" and record.start_failed
    assert player.error is not None and "HTTP 404" in player.error
    # the multivariant answered; each media playlist was tried three times (two retries)
    assert [s.status for s in server.kinds("playlist")].count(404) >= 3


def test_a_live_viewer_beside_it_is_unchanged(recording: Recording) -> None:
    event = make_event(window=WINDOW, store=recording)
    server = ScriptedServer(OriginApp(event), LadderFeeder(event))
    player = Player(URL, PlayerConfig("live"), random.Random(1))
    server.run(player, EPOCH + 40.0, EPOCH + 50.0)
    assert player.seek_to is None and player.low_latency and server.kinds("part")
    assert not any(s.request.dvr for s in server.sent)
    assert all("start=" not in s.request.url for s in server.sent)


# ---------------------------------------------------------------- pure pieces


def test_the_start_over_url_replaces_a_range_and_keeps_other_arguments() -> None:
    assert start_over_url("http://o/live/main.m3u8", 1700000000.25) == (
        "http://o/live/main.m3u8?start=1700000000.250"
    )
    url = "http://o/live/main.m3u8?token=a&start=5&end=9#x"
    assert start_over_url(url, 12.0) == "http://o/live/main.m3u8?token=a&start=12.000"


def item(msn: int, start: float, independent: bool = True) -> MediaItem:
    return MediaItem((msn, SEGMENT), f"seg-{msn}", start, start + 2.0, independent, True, None)


def test_the_start_position_is_the_independent_item_holding_the_time() -> None:
    items = {i.position: i for i in (item(10, 100.0), item(11, 102.0), item(12, 104.0))}
    found = seek_start(items, 103.5)
    assert found is not None and found[0].position == (11, SEGMENT) and found[1] == 103.5
    early = seek_start(items, 90.0)  # older than the playlist: its first item, from its start
    assert early is not None and early[0].position == (10, SEGMENT) and early[1] == 100.0
    late = seek_start(items, 200.0)  # past the newest: the newest independent item
    assert late is not None and late[0].position == (12, SEGMENT)
    items[(11, SEGMENT)] = item(11, 102.0, independent=False)
    back = seek_start(items, 103.5)  # not independent: the decoder starts at the one before
    assert back is not None and back[0].position == (10, SEGMENT) and back[1] == 103.5
    assert seek_start({}, 100.0) is None


@pytest.mark.parametrize("seek_back", [0.0, -5.0, float("inf"), float("nan")])
def test_seek_back_must_be_a_positive_number_of_seconds(seek_back: float) -> None:
    with pytest.raises(ConfigError, match="seek_back"):
        PlayerConfig("x", seek_back=seek_back)
    assert PlayerConfig("x", seek_back=0.5).start_over and not PlayerConfig("y").start_over
