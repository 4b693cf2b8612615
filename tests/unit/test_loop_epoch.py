"""Epoch locking of the loop replay: where a replay started after its epoch begins, and that its
packager then renders what a replay running since the epoch renders — byte for byte.

Pure: time is passed in, nothing sleeps."""

from __future__ import annotations

from fractions import Fraction

import pytest

from livecast.media.fmp4 import FMP4StreamReader, Fragment
from livecast.packager.cutter import SegmentCutter
from livecast.packager.event import LiveEvent, RenditionSpec
from livecast.packager.live import PackagingConfig
from livecast.pipeline import replay_history
from livecast.sources.loop import (
    LoopTrack,
    ReplaySchedule,
    segment_start_fragment,
    start_cursors,
    start_segment,
)
from tests.unit.synth import AUDIO_RATE, VIDEO_TIMESCALE, read
from tests.unit.test_loop_schedule import audio, video

__all__ = ["audio", "video"]  # the loop-schedule tests' fixtures, used here too

SEGMENT = Fraction(2)
EPOCH = 1_764_000_001.25  # not on a segment boundary of the wall clock


@pytest.mark.parametrize(
    ("elapsed", "history", "segment"),
    [
        (0.0, 0.0, 0),  # started at the epoch: from the beginning, as without an epoch
        (-3.0, 0.0, 0),  # the epoch is still ahead
        (5.0, 0.0, 2),  # the segment in progress (media 4–6 s)
        (6.0, 0.0, 3),
        (5.0, 30.0, 0),  # history reaches back before the epoch
        (100.0, 30.0, 35),  # 70 s back: segment 35
        (3600.5, 66.0, 1767),
    ],
)
def test_start_segment(elapsed: float, history: float, segment: int) -> None:
    assert start_segment(elapsed, 2.0, history) == segment


def test_video_segments_start_on_their_part_boundaries(video: LoopTrack) -> None:
    assert len(video.fragments) == 12  # 4 s of ⅓ s fragments: 2 segments of 6 per loop
    assert [segment_start_fragment(video, s, SEGMENT) for s in range(6)] == [0, 6, 12, 18, 24, 30]
    for s in range(1, 6):
        first = segment_start_fragment(video, s, SEGMENT)
        assert video.decode_time(first) == s * 2 * VIDEO_TIMESCALE


@pytest.mark.parametrize("track_name", ["video", "audio"])
def test_segment_start_fragment_is_where_the_cutter_opens_each_segment(
    track_name: str, request: pytest.FixtureRequest
) -> None:
    """The same rule as SegmentCutter, checked against it over three loops (audio fragments
    straddle the segment boundaries; the loop end clips one)."""
    track: LoopTrack = request.getfixturevalue(track_name)
    cutter = SegmentCutter(
        timescale=track.track.timescale,
        part_target=0.33334,
        segment_duration=2.0,
        epoch=EPOCH,
        msn_base=0,
        init_name="init.mp4",
    )
    reader = FMP4StreamReader()
    reader.feed(track.init)
    opened: dict[int, int] = {}  # msn → global fragment that opened it
    for n in range(3 * len(track.fragments)):
        (fragment,) = reader.feed(track.render(n))
        assert isinstance(fragment, Fragment)
        if cutter.open_segment is None:
            opened[cutter.msn_base + round(fragment.decode_time / track.track.timescale / 2)] = n
        cutter.push(fragment)
    assert sorted(opened) == list(range(6))
    assert {s: segment_start_fragment(track, s, SEGMENT) for s in opened} == opened


def test_audio_segments_straddle_the_boundary_by_less_than_half_a_fragment(
    audio: LoopTrack,
) -> None:
    fragment_seconds = 2048 / AUDIO_RATE
    for s in range(1, 8):
        start = audio.decode_time(segment_start_fragment(audio, s, SEGMENT)) / AUDIO_RATE
        assert abs(start - 2 * s) <= fragment_seconds / 2 + 1e-9


def test_start_cursors_begin_each_track_with_the_segment(
    video: LoopTrack, audio: LoopTrack
) -> None:
    cursors = start_cursors((video, audio), 5, SEGMENT)  # loop 2, second segment
    assert cursors == {
        "720p": segment_start_fragment(video, 5, SEGMENT),
        "audio": segment_start_fragment(audio, 5, SEGMENT),
    }
    assert cursors["720p"] == 30
    schedule = ReplaySchedule((video, audio), dict(cursors))
    assert schedule.due(9.9) == []  # segment 5 is media 10–12 s: nothing of it complete yet
    due = schedule.due(10.5)
    assert {t.rendition for t, _ in due} == {"720p", "audio"}
    assert min(n for t, n in due if t is video) == 30


class Replica:
    """A replay + the real packager, as one origin runs them (without sockets and clock)."""

    def __init__(self, tracks: tuple[LoopTrack, ...], started: float, window: float) -> None:
        self.config = PackagingConfig(part_target=0.33334, segment_duration=2.0, window=window)
        self.event = LiveEvent(
            self.config,
            [RenditionSpec("720p", "video"), RenditionSpec("audio", "audio")],
        )
        history = replay_history(window, 2.0)
        self.first = start_segment(started, 2.0, history)
        self.schedule = ReplaySchedule(tracks, start_cursors(tracks, self.first, SEGMENT))
        self.readers = {t.rendition: FMP4StreamReader() for t in tracks}
        self.event.start_generation(0, EPOCH)
        for track in tracks:
            (init,) = read(track.init)
            self.readers[track.rendition].feed(track.init)
            self.event.on_init(track.rendition, init)  # type: ignore[arg-type]
        self.snapshots: list[bytes] = []

    def advance(self, elapsed: float) -> None:
        """Release what is due; snapshot every playlist after every fragment (a blocking
        request is answered at one of these instants)."""
        for track, n in self.schedule.due(elapsed):
            (fragment,) = self.readers[track.rendition].feed(track.render(n))
            assert isinstance(fragment, Fragment)
            self.event.on_fragment(track.rendition, fragment)
            self.snapshots.append(self.state())

    def state(self) -> bytes:
        return b"".join(
            self.event.media_playlist_bytes(name, skip=skip)
            for name in ("720p", "audio")
            for skip in (False, True)
        )


def test_a_replica_started_late_renders_what_the_first_one_renders(
    video: LoopTrack, audio: LoopTrack
) -> None:
    tracks = (video, audio)
    first = Replica(tracks, 0.0, window=6.0)
    late_start = 33.7  # 8 loops in; history 12 + 6 s: it rebuilds from segment 7
    for step in range(int(late_start * 10)):
        first.advance(step / 10)
    late = Replica(tracks, late_start, window=6.0)
    assert late.first == 7
    late.advance(late_start)  # everything already due, at once
    first.advance(late_start)
    assert late.state() == first.state()
    assert late.event.multivariant_bytes() == first.event.multivariant_bytes()
    mark = len(first.snapshots), len(late.snapshots)
    for step in range(1, 100):  # 10 s more, in different steps on each side
        first.advance(late_start + step / 10)
        late.advance(late_start + min(10.0, step / 7 if step % 3 else step / 10))
    late.advance(late_start + 10)
    first.advance(late_start + 10)
    assert late.snapshots[mark[1] :] == first.snapshots[mark[0] :]  # every intermediate state
    assert late.event.multivariant_bytes() == first.event.multivariant_bytes()
    for rendition in ("720p", "audio"):
        a, b = first.event.renditions[rendition], late.event.renditions[rendition]
        msn = a.last_complete_msn()
        assert msn is not None and msn == b.last_complete_msn()
        assert msn == int(EPOCH // 2) + 20  # floor(epoch / SD) + media segment (40–42 s)
        assert a.segment_data(msn) == b.segment_data(msn)
        assert a.part_data(msn, 2) == b.part_data(msn, 2)
    text = first.event.media_playlist_bytes("720p").decode()
    assert f"init-{int(EPOCH // 2)}.mp4" in text  # init name from the epoch, not the start


def test_a_replay_without_history_starts_with_the_segment_in_progress(
    video: LoopTrack, audio: LoopTrack
) -> None:
    """history 0: the packager holds the current segment only, but names it as the first
    replica does."""
    tracks = (video, audio)
    first = Replica(tracks, 0.0, window=6.0)
    first.advance(13.5)
    late = ReplaySchedule(tracks, start_cursors(tracks, start_segment(13.5, 2.0), SEGMENT))
    assert late.cursors["720p"] == 36  # segment 6: media 12–14 s
    due = late.due(13.5)
    assert [n for t, n in due if t is video] == [36, 37, 38, 39]  # 12⅓ … 13⅓ s, released at once
    assert video.release_time(late.cursors["720p"]) == pytest.approx(13 + 2 / 3)
    position = first.event.renditions["720p"].position()
    assert position is not None and position.last_msn == int(EPOCH // 2) + 6
