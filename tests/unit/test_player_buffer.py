"""The media buffer against wall time — startup, stall at the exact moment the playhead reaches
the buffered end, resume threshold, rebuffering and bitrate accounting — and a starved viewer
against the origin."""

from __future__ import annotations

import pytest

from livecast.player import PlayerConfig
from livecast.player.buffer import MediaBuffer, PlaybackState
from livecast.results.stats import ViewerOutcome

from .synth import EPOCH
from .test_player_server import session


def two_tracks(start_buffer: float = 0.0, resume_buffer: float = 0.5) -> MediaBuffer:
    buffer = MediaBuffer(("video", "audio"), start_buffer, resume_buffer)
    buffer.set_start(100.0)
    return buffer


def test_first_frame_needs_every_track_at_the_start_position() -> None:
    buffer = two_tracks()
    buffer.add("video", 100.0, 100.5, 10.0, bitrate=1000)
    assert buffer.state is PlaybackState.WAITING and buffer.first_frame_at is None
    buffer.add("audio", 99.98, 100.4, 10.2)
    assert buffer.state is PlaybackState.PLAYING
    assert buffer.first_frame_at == 10.2
    assert buffer.playhead == 100.0  # the start position, not the earlier audio
    assert buffer.ahead() == pytest.approx(0.4)  # the shorter track bounds what plays


def test_start_buffer_threshold_delays_the_first_frame() -> None:
    buffer = two_tracks(start_buffer=1.0)
    buffer.add("video", 100.0, 100.9, 10.0)
    buffer.add("audio", 100.0, 101.1, 10.1)
    assert buffer.state is PlaybackState.WAITING  # 0.9 s playable: not more than 1 s
    buffer.add("video", 100.9, 101.2, 10.4)
    assert buffer.state is PlaybackState.PLAYING and buffer.first_frame_at == 10.4


def test_stall_is_counted_where_the_playhead_ran_out_and_resume_needs_the_threshold() -> None:
    buffer = two_tracks()
    buffer.add("video", 100.0, 100.5, 10.0, bitrate=1000)
    buffer.add("audio", 100.0, 100.4, 10.0)
    buffer.advance(10.3)
    assert buffer.playhead == pytest.approx(100.3) and buffer.played == pytest.approx(0.3)
    buffer.advance(11.0)  # ran out at 10.4, learned at 11.0
    assert buffer.state is PlaybackState.STALLED and buffer.stall_count == 1
    assert buffer.played == pytest.approx(0.4) and buffer.stalled == pytest.approx(0.6)
    buffer.add("audio", 100.4, 100.8, 11.2)
    buffer.add("video", 100.5, 101.0, 11.3, bitrate=3000)
    assert buffer.state is PlaybackState.STALLED  # 0.4 s ahead < 0.5 s
    buffer.add("audio", 100.8, 101.2, 11.4)
    assert buffer.state is PlaybackState.PLAYING
    assert buffer.stalled == pytest.approx(1.0)
    buffer.advance(11.6)
    assert buffer.played == pytest.approx(0.6)
    assert buffer.stall_count == 1
    # 0.5 s at 1000 bit/s then 0.1 s at 3000 bit/s under the playhead
    assert buffer.bitrate_seconds / buffer.played == pytest.approx((500 + 300) / 0.6)
    outcome = ViewerOutcome(startup_s=0.0, stalled_s=buffer.stalled, played_s=buffer.played)
    assert outcome.rebuffering_ratio == pytest.approx(1.0 / 1.6)


def test_reaching_the_end_of_a_finished_stream_is_not_a_stall() -> None:
    buffer = two_tracks()
    buffer.add("video", 100.0, 101.0, 10.0)
    buffer.add("audio", 100.0, 101.0, 10.0)
    buffer.mark_complete(10.5)
    buffer.advance(12.0)
    assert buffer.state is PlaybackState.ENDED
    assert buffer.stall_count == 0 and buffer.played == pytest.approx(1.0)


def test_rebuffering_ratio_math() -> None:
    def ratio(stalled: float, played: float) -> float | None:
        return ViewerOutcome(startup_s=0.0, stalled_s=stalled, played_s=played).rebuffering_ratio

    assert ratio(0.0, 0.0) is None  # nothing watched: no ratio (the results' one definition)
    assert ratio(1.0, 9.0) == pytest.approx(0.1)
    assert ratio(3.0, 0.0) == 1.0


def test_starved_viewer_stalls_then_resumes_and_falls_behind_by_the_stalled_time() -> None:
    def bandwidth(now: float) -> float:
        return 30e3 if EPOCH + 15.0 <= now < EPOCH + 18.0 else 20e6

    player, _ = session(PlayerConfig("starved", start_level="lowest"), 20.0, bandwidth)
    record = player.outcome(EPOCH + 30.0)
    assert player.status == "watching" and record.fatal_error is None and player.error is None
    # 3 s at 30 kb/s cannot carry the lowest rung: the buffer (≈ 1 s) runs dry, one stall
    assert record.stalls == 1
    assert record.stalled_s == pytest.approx(2.202, abs=1e-3)
    assert player.state == "playing"
    assert record.startup_s is not None
    assert record.played_s + record.stalled_s + record.startup_s == pytest.approx(20.0, abs=0.05)
    assert record.rebuffering_ratio == pytest.approx(
        record.stalled_s / (record.stalled_s + record.played_s)
    )
    # no catch-up (hls.js maxLiveSyncPlaybackRate 1): latency grows by the time spent stalled
    samples = player.latency_samples
    assert record.latency is not None and record.latency.max_s == max(samples)
    assert max(samples) - min(samples) == pytest.approx(record.stalled_s, abs=0.05)


def test_a_hole_stalls_until_media_beyond_it_then_the_playhead_jumps_it() -> None:
    buffer = two_tracks()
    buffer.add("video", 100.0, 101.0, 10.0)
    buffer.add("audio", 100.0, 101.0, 10.0)
    buffer.advance(11.5)  # ran out at 11.0
    assert buffer.state is PlaybackState.STALLED and buffer.stalled == pytest.approx(0.5)
    buffer.add("video", 103.0, 103.4, 11.6)
    assert buffer.state is PlaybackState.STALLED  # audio has nothing beyond the hole yet
    buffer.add("audio", 102.9, 103.4, 11.8)
    assert buffer.state is PlaybackState.PLAYING
    assert buffer.playhead == pytest.approx(103.0) and buffer.skipped == pytest.approx(2.0)
    assert buffer.stalled == pytest.approx(0.8) and buffer.stall_count == 1
    # a hole met while playing, with media already beyond it, is jumped without a stall
    buffer.add("video", 104.0, 105.0, 11.8)
    buffer.add("audio", 104.0, 105.0, 11.8)
    buffer.advance(12.6)
    assert buffer.state is PlaybackState.PLAYING and buffer.stall_count == 1
    assert buffer.playhead == pytest.approx(104.4) and buffer.played == pytest.approx(1.8)
    assert buffer.skipped == pytest.approx(2.6)
    assert buffer.ranges("video") == [(100.0, 101.0), (103.0, 103.4), (104.0, 105.0)]
