"""sources.loop: one loop cut from a pre-encode, the release schedule, decode times across loops.

Pure: time is passed in, nothing sleeps."""

from __future__ import annotations

import itertools
from fractions import Fraction

import pytest

from livecast.errors import MediaError
from livecast.media import boxes
from livecast.media.fmp4 import Fragment
from livecast.packager.cutter import PartCut, SegmentCut, SegmentCutter
from livecast.sources.loop import LoopTrack, ReplaySchedule, load_track, loop_ticks
from tests.unit.synth import AAC_FRAME, AUDIO_RATE, FRAME, VIDEO_TIMESCALE, read

LOOP = Fraction(4)
AUDIO_FRAGMENT = 2 * AAC_FRAME  # as the default ladder asks FFmpeg for


def video_stream(fragments: int = 13) -> bytes:
    """A 30 fps pre-encode: 10-frame fragments, a keyframe every 60 frames (one more than 4 s)."""
    body = b"".join(
        boxes.fragment(
            sequence=i + 1,
            decode_time=i * 10 * FRAME,
            sample_durations=[FRAME] * 10,
            sample_sizes=[20] * 10,
            first_is_sync=i % 6 == 0,
        )
        for i in range(fragments)
    )
    return boxes.init_segment("video", timescale=VIDEO_TIMESCALE) + body


def audio_stream(seconds: float = 4.1) -> bytes:
    """AAC at 48 kHz, two frames per fragment, a little longer than the loop."""
    count = int(seconds * AUDIO_RATE / AUDIO_FRAGMENT) + 1
    body = b"".join(
        boxes.fragment(
            sequence=i + 1,
            decode_time=i * AUDIO_FRAGMENT,
            sample_durations=[AAC_FRAME, AAC_FRAME],
            sample_sizes=[7, 8],
            first_is_sync=True,
        )
        for i in range(count)
    )
    return boxes.init_segment("audio", timescale=AUDIO_RATE) + body


@pytest.fixture
def video() -> LoopTrack:
    return load_track("720p", video_stream(), LOOP)


@pytest.fixture
def audio() -> LoopTrack:
    return load_track("audio", audio_stream(), LOOP)


def test_video_keeps_exactly_one_loop(video: LoopTrack) -> None:
    assert video.loop_ticks == 4 * VIDEO_TIMESCALE
    assert len(video.fragments) == 12
    assert video.fragments[-1].decode_time + video.fragments[-1].duration == video.loop_ticks


def test_audio_is_clipped_at_the_loop_end(audio: LoopTrack) -> None:
    # 192000 samples = 93.75 fragments of 2048: the 94th keeps 1536 samples
    assert audio.loop_ticks == 192_000
    assert len(audio.fragments) == 94
    last = audio.fragments[-1]
    assert (last.decode_time, last.duration) == (93 * AUDIO_FRAGMENT, 1536)
    (_init, clipped) = read(audio.init + audio.render(93))
    assert isinstance(clipped, Fragment) and clipped.duration == 1536


def test_release_times_follow_the_media_end_of_each_loop(
    video: LoopTrack, audio: LoopTrack
) -> None:
    assert video.release_time(0) == pytest.approx(1 / 3)
    assert video.release_time(11) == pytest.approx(4.0)
    assert video.release_time(12) == pytest.approx(4 + 1 / 3)
    assert video.release_time(3 * 12 + 5) == pytest.approx(12 + 2.0)
    assert audio.release_time(93) == 4.0
    assert audio.release_time(94) == pytest.approx(4 + AUDIO_FRAGMENT / AUDIO_RATE)


@pytest.mark.parametrize("track_name", ["video", "audio"])
def test_decode_times_continue_across_loops(
    track_name: str, request: pytest.FixtureRequest
) -> None:
    track: LoopTrack = request.getfixturevalue(track_name)
    count = len(track.fragments)
    reader_items = read(track.init + b"".join(track.render(n) for n in range(3 * count + 2)))
    fragments = [f for f in reader_items[1:] if isinstance(f, Fragment)]
    assert fragments[0].decode_time == 0
    for before, after in itertools.pairwise(fragments):
        assert after.decode_time == before.decode_time + before.duration  # no gap, no overlap
    assert fragments[count].decode_time == track.loop_ticks
    assert fragments[3 * count].decode_time == 3 * track.loop_ticks
    assert fragments[count].independent == fragments[0].independent


def test_schedule_releases_nothing_before_the_first_fragment_is_complete(
    video: LoopTrack, audio: LoopTrack
) -> None:
    schedule = ReplaySchedule((video, audio))
    assert schedule.due(0.0) == []
    assert schedule.next_release() == pytest.approx(AUDIO_FRAGMENT / AUDIO_RATE)
    due = schedule.due(1 / 3 + 1e-9)
    assert [(t.rendition, n) for t, n in due if t is video] == [("720p", 0)]
    assert [n for t, n in due if t is audio] == [0, 1, 2, 3, 4, 5, 6]  # 7 × 42.7 ms ≤ 1/3 s
    assert due == sorted(due, key=lambda item: item[0].release_time(item[1]))


def test_schedule_is_the_same_in_small_steps_or_one_jump(
    video: LoopTrack, audio: LoopTrack
) -> None:
    stepped = ReplaySchedule((video, audio))
    steps = [stepped.due(k * 0.01) for k in range(1, 1001)]
    jumped = ReplaySchedule((video, audio)).due(10.0)
    flat = [item for step in steps for item in step]
    assert [(t.rendition, n) for t, n in flat] == [(t.rendition, n) for t, n in jumped]
    assert stepped.cursors == {"720p": 30, "audio": 234}  # 10 s of each, nothing twice
    for track, n in flat:  # nothing released before it is complete, nor much after
        assert track.release_time(n) <= 10.0


def test_schedule_next_release_is_the_earliest_pending(video: LoopTrack, audio: LoopTrack) -> None:
    schedule = ReplaySchedule((video, audio))
    schedule.due(3.99)
    assert schedule.next_release() == 4.0  # the clipped audio fragment and video fragment 11
    names = [t.rendition for t, _ in schedule.due(4.0)]
    assert sorted(names) == ["720p", "audio"]


def test_audio_segments_stay_on_the_segment_grid_across_loops(audio: LoopTrack) -> None:
    cutter = SegmentCutter(
        timescale=AUDIO_RATE,
        part_target=0.33334,
        segment_duration=2.0,
        epoch=1_764_000_000.0,
        msn_base=100,
        init_name="init.mp4",
    )
    (_init, *fragments) = read(audio.init + b"".join(audio.render(n) for n in range(3 * 94)))
    segments = []
    for fragment in fragments:
        assert isinstance(fragment, Fragment)
        for cut in cutter.push(fragment):
            if isinstance(cut, SegmentCut):
                segments.append(cut.segment)
            else:
                assert isinstance(cut, PartCut)
    assert [s.msn for s in segments] == list(range(100, 100 + len(segments)))
    loop_starts = [s for s in segments if s.msn in (102, 104)]
    assert [s.start for s in loop_starts] == [4.0, 8.0]  # audio restarts exactly on the loop
    assert all(abs(s.start - 2 * (s.msn - 100)) < AUDIO_FRAGMENT / AUDIO_RATE for s in segments)
    assert [s.pdt - 1_764_000_000.0 for s in loop_starts] == [4.0, 8.0]


def test_a_pre_encode_shorter_than_the_loop_is_refused() -> None:
    with pytest.raises(MediaError, match="before the 4 s loop"):
        load_track("audio", audio_stream(3.5), LOOP)


def test_a_loop_must_be_whole_ticks() -> None:
    assert loop_ticks(Fraction(4), 48_000) == 192_000
    with pytest.raises(MediaError, match="whole number of ticks"):
        loop_ticks(Fraction(1, 7), 48_000)
