"""fMP4 box reading against synthetic boxes (the integration tests use FFmpeg's)."""

from __future__ import annotations

import pytest

from livecast.errors import MediaError
from livecast.media import boxes
from livecast.media.fmp4 import FMP4StreamReader, Fragment, InitSegment, iter_boxes

from .synth import AUDIO_RATE, VIDEO_TIMESCALE


def _stream() -> bytes:
    init = boxes.init_segment("video", timescale=VIDEO_TIMESCALE, width=854, height=480)
    frags = [
        boxes.fragment(
            sequence=i + 1,
            decode_time=i * 5120,
            sample_durations=[512] * 10,
            sample_sizes=[40 + i] * 10,
            first_is_sync=i % 6 == 0,
        )
        for i in range(8)
    ]
    return init + b"".join(frags)


def test_init_segment_describes_the_video_track() -> None:
    (init,) = FMP4StreamReader().feed(
        boxes.init_segment("video", timescale=15360, width=854, height=480)
    )
    assert isinstance(init, InitSegment)
    assert (init.track.kind, init.track.codec) == ("video", "avc1.64001f")
    assert (init.track.width, init.track.height, init.track.timescale) == (854, 480, 15360)


def test_init_segment_describes_the_audio_track() -> None:
    (init,) = FMP4StreamReader().feed(boxes.init_segment("audio", timescale=AUDIO_RATE, channels=2))
    assert isinstance(init, InitSegment)
    assert (init.track.kind, init.track.codec, init.track.channels) == ("audio", "mp4a.40.2", 2)
    assert init.track.sample_rate == AUDIO_RATE


def test_fragments_carry_timing_and_sync_flag() -> None:
    items = FMP4StreamReader().feed(_stream())
    fragments = [i for i in items if isinstance(i, Fragment)]
    assert [f.decode_time for f in fragments] == [i * 5120 for i in range(8)]
    assert all(f.duration == 5120 and f.sample_count == 10 for f in fragments)
    assert [f.independent for f in fragments] == [
        True,
        False,
        False,
        False,
        False,
        False,
        True,
        False,
    ]


@pytest.mark.parametrize("chunk", [1, 7, 100, 4096])
def test_chunked_feeding_gives_the_same_objects(chunk: int) -> None:
    data = _stream()
    reader = FMP4StreamReader()
    items = []
    for pos in range(0, len(data), chunk):
        items += reader.feed(data[pos : pos + chunk])
    assert [i.data for i in items] == [i.data for i in FMP4StreamReader().feed(data)]
    assert b"".join(i.data for i in items) == data


def test_media_before_init_is_refused() -> None:
    frag = boxes.fragment(
        sequence=1, decode_time=0, sample_durations=[512], sample_sizes=[10], first_is_sync=True
    )
    with pytest.raises(MediaError, match="before the init"):
        FMP4StreamReader().feed(frag)


def test_absurd_box_size_is_refused() -> None:
    with pytest.raises(MediaError, match="unusable size"):
        FMP4StreamReader().feed(b"\x00\x00\x00\x03moof")


def test_box_walk_refuses_a_box_running_past_its_parent() -> None:
    with pytest.raises(MediaError, match="bad size"):
        list(iter_boxes(b"\x00\x00\x00\x20free" + b"\0" * 8))


def test_fragment_without_samples_is_refused() -> None:
    reader = FMP4StreamReader()
    reader.feed(boxes.init_segment("video", timescale=15360))
    with pytest.raises(MediaError, match="without samples"):
        reader.feed(
            boxes.fragment(
                sequence=1, decode_time=0, sample_durations=[], sample_sizes=[], first_is_sync=True
            )
        )
