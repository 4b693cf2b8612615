"""Classic HLS mode (polling, whole segments, 3 target durations behind), churn (leaving before
or after the first frame), the end of the stream, and the viewer's outcome."""

from __future__ import annotations

import json
import random
import statistics
from itertools import pairwise
from urllib.parse import urlsplit

import pytest

from livecast.errors import ConfigError
from livecast.hls.playlist import parse_media_playlist
from livecast.origin.app import OriginApp
from livecast.player import Player, PlayerConfig
from livecast.player.track import SEGMENT, TrackState, index_playlist
from livecast.results.stats import RunStats

from .synth import EPOCH, make_event
from .test_player_server import URL, LadderFeeder, ScriptedServer, session


def test_classic_mode_polls_every_target_duration_and_fetches_whole_segments() -> None:
    player, server = session(PlayerConfig("classic", mode="classic"), seconds=20.0)
    record = player.outcome(EPOCH + 30.0)
    assert not player.low_latency and record.stalls == 0
    assert not server.kinds("part")
    assert len(server.kinds("segment")) == 24  # two tracks, 12 whole segments each in 20 s
    playlists = server.kinds("playlist")
    assert all("_HLS_" not in s.request.url for s in playlists)
    video_polls = [s.at for s in playlists if "/live/audio/" not in s.request.url]
    gaps = [b - a for a, b in pairwise(video_polls)]
    # one reload per TD (2 s) plus the scripted 20 ms transfer, after the join's two loads
    assert gaps[1:] == pytest.approx([2.02] * 9, abs=1e-6)
    assert len(video_polls) == 11
    # after the switch up, the poll scheduled for 360p is abandoned (Player.wanted) and not sent
    assert record.switches == 1
    first_720 = min(s.at for s in playlists if "/live/720p/" in s.request.url)
    assert not [s for s in playlists if "/live/360p/" in s.request.url and s.at > first_720]
    # starts at the segment holding edge − 3 × TD (6 s), plus the startup's transfers; no drift
    assert record.latency is not None
    assert player.latency_samples == pytest.approx([6.18] * len(player.latency_samples), abs=1e-3)


def test_leaving_before_the_first_frame_is_an_exit_before_video_start() -> None:
    config = PlayerConfig("churn", leave_at=EPOCH + 10.05)
    player, _ = session(config, seconds=5.0)
    record = player.outcome(EPOCH + 15.0)
    assert player.status == "exit_before_start"
    assert record.exited_before_start and not record.start_failed
    assert record.startup_s is None and player.finished_at == EPOCH + 10.05


def test_leaving_while_watching() -> None:
    player, server = session(PlayerConfig("bye", leave_at=EPOCH + 14.0), seconds=10.0)
    record = player.outcome(EPOCH + 20.0)
    assert player.status == "left" and not record.exited_before_start
    assert player.finished_at == EPOCH + 14.0
    assert record.played_s == pytest.approx(4.0 - record.startup_s)  # type: ignore[operator]
    assert max(s.at for s in server.sent) <= EPOCH + 14.0


def test_a_stream_that_ends_plays_to_its_end_without_a_stall() -> None:
    event = make_event()
    feeder = LadderFeeder(event)
    server = ScriptedServer(OriginApp(event), feeder)
    player = Player(URL, PlayerConfig("end"), random.Random(1))
    server.run(player, EPOCH + 10.0, EPOCH + 16.0)
    event.end()
    server.run_more(player, EPOCH + 26.0)
    record = player.outcome(EPOCH + 26.0)
    assert player.status == "ended", record
    assert record.stalls == 0 and record.fatal_error is None
    after_end = [s for s in server.kinds("playlist") if s.at > EPOCH + 16.1]
    assert after_end == []  # the final playlist is not polled again


def test_the_outcome_is_consistent_and_counts_in_the_results() -> None:
    player, _ = session(PlayerConfig("q"), seconds=6.0)
    record = player.outcome(EPOCH + 16.0)
    ledger = player.ledger
    assert sum(ledger.bytes_by_kind.values()) > 0
    assert set(ledger.by_status) == {"multivariant", "playlist", "init", "part"}
    assert all(set(statuses) == {"200"} for statuses in ledger.by_status.values())
    assert player.buffer is not None and player.buffer.first_frame_at is not None
    assert record.startup_s == pytest.approx(player.buffer.first_frame_at - (EPOCH + 10.0))
    # multivariant, playlists, inits and the first parts over the scripted link: 0.21 s
    assert record.startup_s == pytest.approx(0.21, abs=1e-6)
    samples = player.latency_samples
    assert record.latency is not None and record.latency.samples == len(samples) >= 4
    assert record.latency.mean_s == pytest.approx(statistics.fmean(samples))
    assert record.played_s == pytest.approx(6.0 - record.startup_s)  # type: ignore[operator]
    stats = RunStats()
    stats.record_viewer(record)
    data = json.loads(json.dumps(stats.to_dict()))
    assert RunStats.from_dict(data).viewers.counters["started"] == 1
    assert data["viewers"]["counters"]["played_s"] == pytest.approx(record.played_s)


def test_config_is_validated() -> None:
    with pytest.raises(ConfigError):
        PlayerConfig("x", mode="dash")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        PlayerConfig("x", downlink_bps=0)
    assert urlsplit(URL).path == "/live/main.m3u8"


def test_a_media_playlist_url_plays_as_one_muxed_track() -> None:
    event = make_event()
    server = ScriptedServer(OriginApp(event), LadderFeeder(event))
    url = "http://origin.test/live/360p/index.m3u8"
    player = Player(url, PlayerConfig("muxed"), random.Random(1))
    server.run(player, EPOCH + 10.0, EPOCH + 16.0)
    record = player.outcome(EPOCH + 16.0)
    assert player.status == "watching" and record.stalls == 0
    assert record.startup_s is not None
    assert list(player.tracks) == ["video"] and player.tracks["video"].object_type == "av"
    assert all("ot%3Dav" in s.request.url for s in server.kinds("part"))


def test_an_encoder_restart_costs_a_short_stall_and_new_init_segments() -> None:
    event = make_event()
    feeder = LadderFeeder(event)
    server = ScriptedServer(OriginApp(event), feeder)
    player = Player(URL, PlayerConfig("restart", start_level="highest"), random.Random(1))
    server.run(player, EPOCH + 10.0, EPOCH + 15.0)
    feeder.stopped = True  # the encoder dies for 2 s, then a new run starts (new MSNs, new init)
    server.run_more(player, EPOCH + 17.0)
    server.feeder = LadderFeeder(event, generation=1, epoch=EPOCH + 17.0)
    server.run_more(player, EPOCH + 30.0)
    record = player.outcome(EPOCH + 30.0)
    assert player.status == "watching" and record.fatal_error is None
    # 2 s without media against ≈ 1.2 s of buffer (PART-HOLD-BACK behind the edge): one stall
    assert record.stalls == 1 and record.stalled_s == pytest.approx(1.195, abs=1e-3)
    assert record.switches == 0  # waiting for a part to be produced is not a slow transfer
    inits = sorted(urlsplit(s.request.url).path for s in server.kinds("init"))
    assert inits == [
        "/live/720p/init-882000000.mp4",
        "/live/720p/init-882000008.mp4",
        "/live/audio/init-882000000.mp4",
        "/live/audio/init-882000008.mp4",
    ]
    # the hinted part that was never produced: one 404, not retried
    assert player.ledger.by_status["part"].get("404", 0) == 1
    # the PDT gap of the restart (2 s) is a hole the playhead jumps: new media plays, latency drops
    assert player.buffer is not None and player.buffer.skipped == pytest.approx(2.0, abs=0.01)
    assert record.latency is not None
    assert min(player.latency_samples) < max(player.latency_samples) - 1.0


def test_a_viewer_behind_the_part_window_fetches_whole_segments_then_parts_again() -> None:
    def bandwidth(now: float) -> float:
        return 20e3 if EPOCH + 14.0 <= now < EPOCH + 24.0 else 20e6

    player, server = session(PlayerConfig("behind", start_level="lowest"), 30.0, bandwidth)
    record = player.outcome(EPOCH + 40.0)
    assert player.status == "watching" and record.stalls == 1
    segments = server.kinds("segment")
    assert segments and all(s.status == 200 for s in segments)
    assert max(s.at for s in server.kinds("part")) > max(s.at for s in segments)
    assert all(s.status in (200, None) for s in server.kinds("part"))
    assert player.buffer is not None and player.buffer.skipped == 0.0  # nothing was skipped
    assert record.latency is not None and record.latency.max_s > 9.0  # no catch-up (hls.js)


GAPPED = """#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:2
#EXT-X-MEDIA-SEQUENCE:10
#EXT-X-MAP:URI="init-1.mp4"
#EXTINF:2.0,
seg-10.m4s
#EXTINF:0.27733,
#EXT-X-GAP
seg-11.m4s
#EXT-X-DISCONTINUITY
#EXT-X-MAP:URI="init-12.mp4"
#EXTINF:2.0,
seg-12.m4s
"""


@pytest.mark.parametrize(
    ("after", "expected"), [((11, SEGMENT), (12, SEGMENT)), ((11, 0), (12, SEGMENT))]
)
def test_a_segment_listed_with_ext_x_gap_is_never_requested(
    after: tuple[int, int], expected: tuple[int, int]
) -> None:
    """A number the encoder restart left without media in this rendition: skipped, as hls.js
    skips EXT-X-GAP, instead of waited for."""
    track = TrackState("video", "v", "http://origin/live/720p/index.m3u8")
    track.playlist = parse_media_playlist(GAPPED)
    track.items = index_playlist(track.playlist, track.playlist_url, parts=False)
    assert sorted(track.items) == [(10, SEGMENT), (12, SEGMENT)]
    track.next_position = after
    track.normalize_next()
    assert track.next_position == expected
