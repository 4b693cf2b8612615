"""Part and segment cutting (rfc8216bis §4.4.4.9 duration bounds) with synthetic fragments."""

from __future__ import annotations

import pytest

from livecast.errors import MediaError
from livecast.packager.cutter import PartCut, SegmentCut, SegmentCutter

from .synth import AUDIO_RATE, PART_TARGET, SEGMENT, VIDEO_TIMESCALE, audio_fragment, video_fragment


def _cutter(timescale: int) -> SegmentCutter:
    return SegmentCutter(
        timescale=timescale,
        part_target=PART_TARGET,
        segment_duration=SEGMENT,
        epoch=1000.0,
        msn_base=50,
        init_name="init-50.mp4",
    )


def test_video_part_is_published_by_the_fragment_that_completes_it() -> None:
    cutter = _cutter(VIDEO_TIMESCALE)
    cuts = cutter.push(video_fragment(0))
    assert len(cuts) == 1 and isinstance(cuts[0], PartCut)
    assert cuts[0].part.duration == pytest.approx(1 / 3)
    assert cuts[0].part.independent


def test_video_segment_closes_with_its_last_part_not_a_fragment_later() -> None:
    cutter = _cutter(VIDEO_TIMESCALE)
    kinds = [[type(c).__name__ for c in cutter.push(video_fragment(i))] for i in range(7)]
    assert kinds[5] == ["PartCut", "SegmentCut"]
    assert kinds[6] == ["PartCut"]
    assert cutter.open_segment is not None and cutter.open_segment.msn == 51


def test_segments_are_numbered_from_the_media_timeline() -> None:
    cutter = _cutter(VIDEO_TIMESCALE)
    segments = [
        c.segment
        for i in range(18)
        for c in cutter.push(video_fragment(i))
        if isinstance(c, SegmentCut)
    ]
    assert [s.msn for s in segments] == [50, 51, 52]
    assert [s.duration for s in segments] == pytest.approx([2.0, 2.0, 2.0])
    assert [s.pdt for s in segments] == pytest.approx([1000.0, 1002.0, 1004.0])
    assert all(len(s.parts) == 6 and s.parts[0].independent for s in segments)


def test_audio_fragments_are_grouped_into_parts_within_bounds() -> None:
    cutter = _cutter(AUDIO_RATE)
    cuts = [c for i in range(300) for c in cutter.push(audio_fragment(i))]
    segments = [c.segment for c in cuts if isinstance(c, SegmentCut)]
    assert len(segments) >= 2
    for segment in segments:
        for part in segment.parts:
            assert part.duration <= PART_TARGET
        for part in segment.parts[:-1]:
            assert part.duration >= 0.85 * PART_TARGET
        # boundaries on k × 2 s, to within one AAC frame
        assert abs(segment.end - round(segment.end / SEGMENT) * SEGMENT) <= 1024 / AUDIO_RATE


def test_time_going_backwards_is_refused() -> None:
    cutter = _cutter(VIDEO_TIMESCALE)
    cutter.push(video_fragment(3))
    with pytest.raises(MediaError, match="backwards"):
        cutter.push(video_fragment(2))


def test_flush_closes_a_short_final_segment() -> None:
    cutter = _cutter(VIDEO_TIMESCALE)
    for i in range(2):
        cutter.push(video_fragment(i))
    cuts = cutter.flush()
    assert [type(c).__name__ for c in cuts] == ["SegmentCut"]
    assert cuts[0].segment.duration == pytest.approx(2 / 3)
    assert cutter.flush() == []
