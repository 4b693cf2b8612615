"""fMP4 box reading against synthetic boxes (the integration tests use FFmpeg's)."""

from __future__ import annotations

import struct

import pytest

from livecast.errors import MediaError
from livecast.media import boxes
from livecast.media.box_reader import iter_boxes
from livecast.media.boxes import box, full_box
from livecast.media.fmp4 import FMP4StreamReader, Fragment, InitSegment, parse_fragment, parse_init

from .synth import AUDIO_RATE, VIDEO_TIMESCALE, traf_fragment, video_init


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


def test_durations_come_from_the_trun_then_the_tfhd_then_the_trex() -> None:
    track = video_init().track
    assert track.default_sample_duration == 0  # the synthesiser's trex states none
    per_sample = traf_fragment(
        tfhd_flags=0x08,
        tfhd_fields=struct.pack(">I", 999),
        truns=[(0, 0x101, 2, struct.pack(">II", 500, 600))],
    )
    from_tfhd = traf_fragment(
        tfhd_flags=0x08, tfhd_fields=struct.pack(">I", 999), truns=[(0, 0x001, 2, b"")]
    )
    from_trex = traf_fragment(tfhd_flags=0, tfhd_fields=b"", truns=[(0, 0x001, 2, b"")])
    trex_track = type(track)(1, "video", VIDEO_TIMESCALE, "avc1.64001f", default_sample_duration=7)
    assert parse_fragment(per_sample, track).duration == 1100
    assert parse_fragment(from_tfhd, track).duration == 1998
    assert parse_fragment(from_trex, trex_track).duration == 14


def test_first_sample_flags_decide_independence_across_runs() -> None:
    track = video_init().track
    non_sync = 0x01010000
    fragment = traf_fragment(
        tfhd_flags=0x20,
        tfhd_fields=struct.pack(">I", non_sync),  # every sample non-sync by default ...
        truns=[
            (0, 0x000, 0, b""),  # ... an empty run does not count as the first ...
            (0, 0x005, 2, struct.pack(">I", 0x02000000)),  # ... this one starts with a sync
            (0, 0x400, 1, struct.pack(">I", non_sync)),
        ],
    )
    parsed = parse_fragment(fragment, track)
    assert (parsed.independent, parsed.sample_count, parsed.decode_time) == (True, 3, 77)


def test_a_tfhd_shorter_than_its_flags_is_refused_not_read_from_its_neighbour() -> None:
    tfhd = full_box(b"tfhd", 0, 0x08, struct.pack(">I", 1))  # default duration flagged, absent
    fragment = traf_fragment(tfhd_flags=0, tfhd_fields=b"", truns=[(0, 0x001, 1, b"")])
    whole = full_box(b"tfhd", 0, 0, struct.pack(">I", 1))
    with pytest.raises(MediaError, match=r"tfhd box .* default_sample_duration needs 4 bytes"):
        parse_fragment(fragment.replace(whole, tfhd), video_init().track)


def with_box_replaced(
    data: bytes, box_type: bytes, new: bytes, start: int = 0, end: int = -1
) -> bytes:
    """``data`` with each ``box_type`` box replaced by ``new``, the boxes around it resized."""
    out, pos = [], start
    for found, payload, box_end in iter_boxes(data, start, len(data) if end < 0 else end):
        if found == box_type:
            out.append(new)
        elif found in (b"moov", b"trak", b"mdia", b"minf", b"stbl"):
            out.append(box(found, with_box_replaced(data, box_type, new, payload, box_end)))
        else:
            out.append(data[pos:box_end])
        pos = box_end
    return b"".join(out)


def test_an_init_segment_whose_stsd_has_no_sample_entry_is_a_media_error() -> None:
    init = boxes.init_segment("video", timescale=VIDEO_TIMESCALE)
    empty_stsd = full_box(b"stsd", 0, 0, struct.pack(">I", 0))
    with pytest.raises(MediaError, match="stsd without a sample entry"):
        parse_init(with_box_replaced(init, b"stsd", empty_stsd))


def test_an_esds_cut_inside_its_descriptors_is_a_media_error() -> None:
    init = bytearray(boxes.init_segment("audio", timescale=AUDIO_RATE))
    esds = init.index(b"esds")
    descriptors = esds + 8  # after the box type and the full-box version and flags
    assert init[descriptors] == 0x03  # ES_Descriptor: tag, length, ES_ID(16), flags
    init[descriptors + 4] = 0x40  # URL_Flag: a URLlength byte and the URL follow ...
    init[descriptors + 5] = 0xFF  # ... of more bytes than the box holds
    with pytest.raises(MediaError, match=r"esds box .* URLstring needs"):
        parse_init(bytes(init))
