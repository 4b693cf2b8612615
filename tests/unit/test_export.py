"""The export plan (store/export_plan.py): which renditions, which segments, in which chunks, and
the ffconcat lists FFmpeg is given — from journals written by hand, no files, no FFmpeg."""

from __future__ import annotations

import pytest

from livecast.errors import StoreError
from livecast.store.export_plan import (
    AUDIO,
    VIDEO,
    TrackRecording,
    choose_tracks,
    concat_url,
    ffconcat,
    plan_export,
)
from livecast.store.journal import RecordedPart, RecordedSegment

EPOCH = 1_764_000_000.0
AAC = 1024 / 48000


def segment(
    msn: int,
    start: float,
    pdt: float,
    duration: float = 2.0,
    *,
    init: str = "init-1.mp4",
    discontinuity: bool = False,
    complete: bool = True,
    gap: bool = False,
) -> RecordedSegment:
    recorded = RecordedSegment(
        msn=msn,
        start=start,
        pdt=pdt,
        discontinuity=discontinuity,
        discontinuity_sequence=0,
        init_name=init,
        complete=complete,
        gap=gap,
    )
    if gap:
        recorded.duration_without_parts = duration
    else:
        recorded.parts = [RecordedPart(0, 1000, duration, True)]
    return recorded


def run(
    first_msn: int, count: int, pdt: float, *, init: str, duration: float = 2.0, first: bool = False
) -> list[RecordedSegment]:
    """``count`` segments of one encoder run (media time from 0), the first one discontinuous
    unless it opens the recording."""
    return [
        segment(
            first_msn + i,
            i * duration,
            pdt + i * duration,
            duration,
            init=init,
            discontinuity=i == 0 and not first,
        )
        for i in range(count)
    ]


def two_runs() -> tuple[TrackRecording, TrackRecording]:
    """720p and audio: a run of 3 segments, an encoder restart after a 0.8 s pause, 2 more.
    The first run was killed 1.67 s into its last segment; its audio got 0.25 s further."""
    video = run(100, 3, EPOCH, init="init-100.mp4", first=True)
    video[-1].parts = [RecordedPart(0, 1000, 1.6667, True)]
    video += run(103, 2, EPOCH + 6.5, init="init-103.mp4")
    audio = run(100, 3, EPOCH + 0.005, init="init-100.mp4", duration=94 * AAC, first=True)
    audio[-1].parts = [RecordedPart(0, 100, 1.92, True)]
    audio += run(103, 2, EPOCH + 6.505, init="init-103.mp4", duration=94 * AAC)
    return (
        TrackRecording("720p", VIDEO, tuple(video), width=1280, height=720),
        TrackRecording("audio", AUDIO, tuple(audio)),
    )


# ---------------------------------------------------------------------------- renditions


def test_the_highest_video_rendition_and_the_audio_are_chosen_by_default() -> None:
    tracks = [
        TrackRecording("sd", VIDEO, width=640, height=360),
        TrackRecording("audio", AUDIO),
        TrackRecording("hd", VIDEO, width=1280, height=720),
        TrackRecording("mid", VIDEO, width=854, height=480),
    ]
    assert [t.name for t in choose_tracks(tracks, None)] == ["hd", "audio"]
    assert [t.name for t in choose_tracks(tracks, "sd")] == ["sd", "audio"]
    assert [t.name for t in choose_tracks(tracks, "audio")] == ["audio"]  # audio alone
    assert [t.name for t in choose_tracks(tracks[2:], None)] == ["hd"]  # no audio recorded


def test_an_unknown_rendition_is_refused_with_the_recorded_ones() -> None:
    tracks = [TrackRecording("720p", VIDEO, height=720), TrackRecording("audio", AUDIO)]
    with pytest.raises(StoreError, match=r"no rendition '1080p'.*recorded: 720p, audio"):
        choose_tracks(tracks, "1080p")


def test_a_rendition_without_an_init_segment_is_not_exported() -> None:
    tracks = [TrackRecording("720p", ""), TrackRecording("360p", VIDEO, height=360)]
    assert [t.name for t in choose_tracks(tracks, None)] == ["360p"]
    with pytest.raises(StoreError, match="720p has no init segment"):
        choose_tracks(tracks, "720p")
    with pytest.raises(StoreError, match="no rendition with an init segment"):
        choose_tracks(tracks[:1], None)


# ---------------------------------------------------------------------------- segments


def test_each_encoder_run_is_one_stretch_cut_to_the_video() -> None:
    plan = plan_export(two_runs())
    assert plan.renditions == ("720p", "audio")
    first, second = plan.chunks
    assert first.msns == (100, 101, 102) and first.inits == ("init-100.mp4", "init-100.mp4")
    assert second.msns == (103, 104) and second.inits == ("init-103.mp4", "init-103.mp4")
    assert first.inpoint == 0.0 and second.inpoint == 0.0  # each run's media time starts anew
    # The chunk lasts as long as its video; the audio that ran 0.25 s further is cut there.
    assert first.duration == pytest.approx(5.6667)
    assert first.closes and second.closes
    assert plan.duration == pytest.approx(9.6667)  # the 0.8 s pause is not in the export
    assert (plan.segments, plan.runs, plan.skipped) == (5, 2, 0)
    assert plan.first_pdt == EPOCH


def test_the_ffconcat_lists_join_init_and_segments_and_cut_every_track_alike() -> None:
    plan = plan_export(two_runs())
    video, audio = ffconcat(plan, 0).splitlines(), ffconcat(plan, 1).splitlines()
    assert video == [
        "ffconcat version 1.0",
        "file 'concat:720p/init-100.mp4|720p/seg-100.m4s|720p/seg-101.m4s|720p/seg-102.m4s'",
        "inpoint 0.000000",
        "outpoint 5.666700",
        "duration 5.666700",
        "file 'concat:720p/init-103.mp4|720p/seg-103.m4s|720p/seg-104.m4s'",
        "inpoint 0.000000",
        "outpoint 4.000000",
        "duration 4.000000",
    ]
    assert audio[1] == (
        "file 'concat:audio/init-100.mp4|audio/seg-100.m4s|audio/seg-101.m4s|audio/seg-102.m4s'"
    )
    assert audio[2:5] == video[2:5]  # audio placed and cut by the video's times


def test_a_long_stretch_is_cut_into_chunks_that_follow_each_other() -> None:
    video = TrackRecording("720p", VIDEO, tuple(run(0, 250, EPOCH, init="i.mp4", first=True)))
    plan = plan_export([video], chunk_segments=100)
    assert [len(c.msns) for c in plan.chunks] == [100, 100, 50]
    assert [c.inpoint for c in plan.chunks] == [0.0, 200.0, 400.0]
    assert [c.closes for c in plan.chunks] == [False, False, True]
    for before, after in zip(plan.chunks, plan.chunks[1:], strict=False):
        assert before.inpoint + before.duration == pytest.approx(after.inpoint)
    text = ffconcat(plan, 0)
    assert text.count("outpoint") == 1 and text.count("file ") == 3


def test_gaps_and_missing_files_are_skipped_on_every_track() -> None:
    video, audio = two_runs()
    segments = list(video.segments)
    segments[1] = segment(101, 2.0, EPOCH + 2.0, gap=True, init="init-100.mp4")
    video = TrackRecording("720p", VIDEO, tuple(segments), missing=frozenset({104}), height=720)
    audio_segments = list(audio.segments)
    audio_segments[3] = segment(103, 0.0, EPOCH + 6.5, gap=True, init="init-103.mp4")
    audio = TrackRecording("audio", AUDIO, tuple(audio_segments))
    plan = plan_export([video, audio])
    # 101 is a video gap, 103 an audio gap, 104's video file is missing: none is exported.
    assert [c.msns for c in plan.chunks] == [(100,), (102,)]
    assert plan.skipped == 3
    assert plan.duration == pytest.approx(2.0 + 1.6667)
    # 102 follows 100 across the gap: its own chunk, placed at its own media time.
    assert plan.chunks[1].inpoint == 4.0


def test_segments_not_complete_yet_are_left_out() -> None:
    segments = run(0, 3, EPOCH, init="i.mp4", first=True)
    segments[-1].complete = False  # still being produced (a live export)
    plan = plan_export([TrackRecording("720p", VIDEO, tuple(segments))])
    assert plan.chunks[0].msns == (0, 1) and plan.skipped == 0


def test_a_jump_of_media_time_within_a_run_starts_a_new_chunk() -> None:
    segments = run(0, 4, EPOCH, init="i.mp4", first=True)
    segments[2].start, segments[3].start = 4.5, 6.5  # 0.5 s of media time that no segment has
    plan = plan_export([TrackRecording("720p", VIDEO, tuple(segments))])
    assert [c.msns for c in plan.chunks] == [(0, 1), (2, 3)]
    assert plan.chunks[1].inpoint == 4.5


# ---------------------------------------------------------------------------- ranges


def test_a_range_starts_at_the_segment_holding_start_and_is_cut_at_end() -> None:
    video = TrackRecording("720p", VIDEO, tuple(run(0, 10, EPOCH, init="i.mp4", first=True)))
    start, end = EPOCH + 5.3, EPOCH + 12.7
    plan = plan_export([video], start=start, end=end)
    assert plan.chunks[0].msns == (2, 3, 4, 5, 6)
    assert plan.first_pdt == EPOCH + 4.0  # video can only begin where a segment (keyframe) does
    assert plan.chunks[0].inpoint == 4.0 and plan.chunks[0].outpoint == pytest.approx(12.7)
    assert plan.duration == pytest.approx(end - plan.first_pdt)
    assert 0 <= plan.duration - (end - start) < 2.0  # within one segment of the range


def test_a_range_beyond_the_recording_is_clamped_to_it() -> None:
    video = TrackRecording("720p", VIDEO, tuple(run(0, 3, EPOCH, init="i.mp4", first=True)))
    plan = plan_export([video], start=EPOCH - 100, end=EPOCH + 100)
    assert plan.segments == 3 and plan.duration == pytest.approx(6.0)


@pytest.mark.parametrize(
    ("start", "end", "reason"),
    [
        (EPOCH + 4.0, EPOCH + 2.0, r"end \(.*\) must be after start"),
        (EPOCH + 4.0, EPOCH + 4.0, r"end \(.*\) must be after start"),
        (EPOCH + 16.5, None, r"start 2025-11-24T16:00:16.500Z is after the recording ends"),
        (None, EPOCH - 1, r"end .* is before the recording begins \(2025-11-24T16:00:00.000Z\)"),
        (EPOCH + 6.1, EPOCH + 6.4, r"nothing was recorded between"),  # the encoder's pause
        (EPOCH + 1.0, EPOCH + 3.0, r"nothing recorded to export .*2 segments are gaps"),
        (float("nan"), None, r"start is not a time"),
    ],
)
def test_empty_or_outside_ranges_are_refused_with_the_reason(
    start: float | None, end: float | None, reason: str
) -> None:
    segments = run(0, 3, EPOCH, init="a.mp4", first=True) + run(3, 3, EPOCH + 6.5, init="b.mp4")
    segments[0] = segment(0, 0.0, EPOCH, gap=True, init="a.mp4")
    segments[1] = segment(1, 2.0, EPOCH + 2.0, gap=True, init="a.mp4")
    with pytest.raises(StoreError, match=reason):
        plan_export([TrackRecording("720p", VIDEO, tuple(segments))], start=start, end=end)


def test_a_rendition_with_nothing_recorded_is_refused() -> None:
    with pytest.raises(StoreError, match="720p has no recorded segment"):
        plan_export([TrackRecording("720p", VIDEO)])


def test_names_that_an_ffconcat_list_cannot_hold_are_refused() -> None:
    assert concat_url("720p", "init-1.mp4", [7]) == "concat:720p/init-1.mp4|720p/seg-7.m4s"
    for name in ("it's", "a|b", "../x", "line\nbreak"):
        with pytest.raises(StoreError, match="cannot export a file named"):
            concat_url(name, "init-1.mp4", [7])
