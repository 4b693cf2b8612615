"""Corrupt encoder output raises the project's MediaError and nothing else (property-based):
a struct.error or IndexError escaping the reader would bypass the encoder-restart path and stall
the rendition silently.

Every property also checks that the MediaError is the box reader's own (a bounds check), not the
last-resort translation of a ``struct.error``/``IndexError`` at the parse_* boundary: the reader
must not rely on that net. Covered: the stream reader (mutated, truncated, padded, chunked), the
loop rewriter (mutated fragments, any options) and the box reader itself (random bytes)."""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livecast.errors import MediaError
from livecast.media import boxes
from livecast.media.box_reader import BoxReader, iter_boxes
from livecast.media.fmp4 import FMP4StreamReader, TrackInfo, parse_fragment, parse_init
from livecast.media.rewrite import rewrite_fragment
from livecast.media.track_fragment import read_tfdt, read_tfhd, read_trun
from tests.unit.synth import (
    audio_fragment,
    audio_init,
    every_field_fragment,
    ffmpeg_like,
    video_fragment,
    video_init,
)

# Small samples, so that most byte flips land in box structure rather than in sample data.
STREAMS = {
    "video": boxes.init_segment("video", timescale=15360) + video_fragment(0, size=4).data
    + video_fragment(1, size=4).data,
    "audio": boxes.init_segment("audio", timescale=48000) + audio_fragment(0, size=16).data,
}  # fmt: skip

# (fragment, its track) as the loop rewriter gets them
FRAGMENTS = {
    "audio": (ffmpeg_like(decode_time=4096, sizes=(5, 6, 7)), audio_init().track),
    "video": (video_fragment(0, size=4).data, video_init().track),
    "every-field": (every_field_fragment(), video_init().track),
}
CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"mvex", b"moof", b"traf", b"dinf"}


def only_media_errors(action: Callable[[], object]) -> None:
    """Run ``action``; a MediaError raised by the reader's own checks is the only failure
    allowed (anything else propagates and fails the test)."""
    try:
        action()
    except MediaError as error:
        assert not isinstance(error.__cause__, struct.error | IndexError), (
            f"a read escaped the box reader's bounds checks: {error.__cause__!r}"
        )


def read_all(data: bytes) -> None:
    only_media_errors(lambda: FMP4StreamReader().feed(data))


def mutated(data: st.DataObject, original: bytes) -> bytes:
    """``original`` with 1–8 bytes replaced."""
    out = bytearray(original)
    flips = data.draw(st.lists(st.integers(0, len(out) - 1), min_size=1, max_size=8))
    for position in flips:
        out[position] = data.draw(st.integers(0, 255))
    return bytes(out)


# ---------------------------------------------------------------- the stream reader


@pytest.mark.parametrize("kind", sorted(STREAMS))
@settings(max_examples=500, deadline=None)
@given(data=st.data())
def test_mutated_streams_raise_only_media_errors(kind: str, data: st.DataObject) -> None:
    read_all(mutated(data, STREAMS[kind]))


@pytest.mark.parametrize("kind", sorted(STREAMS))
@settings(max_examples=200, deadline=None)
@given(cut=st.integers(0, 10_000), extra=st.binary(max_size=64))
def test_truncated_and_padded_streams_raise_only_media_errors(
    kind: str, cut: int, extra: bytes
) -> None:
    stream = STREAMS[kind]
    read_all(stream[: cut % (len(stream) + 1)] + extra)


@settings(max_examples=100, deadline=None)
@given(data=st.data(), chunk=st.integers(1, 300))
def test_mutated_streams_fed_in_chunks_raise_only_media_errors(
    data: st.DataObject, chunk: int
) -> None:
    stream = mutated(data, STREAMS["video"])
    reader = FMP4StreamReader()
    for pos in range(0, len(stream), chunk):
        try:
            reader.feed(stream[pos : pos + chunk])
        except MediaError as error:
            assert not isinstance(error.__cause__, struct.error | IndexError)
            return


def test_a_trun_claiming_more_samples_than_it_holds_is_a_media_error() -> None:
    stream = bytearray(STREAMS["video"])
    trun = stream.index(b"trun")
    stream[trun + 8 : trun + 12] = (1000).to_bytes(4, "big")  # sample_count
    with pytest.raises(MediaError, match="sample table needs 12000 bytes"):
        FMP4StreamReader().feed(bytes(stream))


# ---------------------------------------------------------------- the loop rewriter


@pytest.mark.parametrize("name", sorted(FRAGMENTS))
@settings(max_examples=300, deadline=None)
@given(
    data=st.data(),
    options=st.fixed_dictionaries(
        {},
        optional={
            "decode_time": st.integers(0, 2**63),
            "sequence": st.integers(0, 2**32 - 1),
            "clip_end": st.integers(0, 8000),
        },
    ),
)
def test_rewriting_mutated_fragments_raises_only_media_errors(
    name: str, data: st.DataObject, options: dict[str, int]
) -> None:
    fragment, track = FRAGMENTS[name]
    damaged = mutated(data, fragment)
    only_media_errors(lambda: rewrite_fragment(damaged, track, **options))


@pytest.mark.parametrize("name", sorted(FRAGMENTS))
@settings(max_examples=100, deadline=None)
@given(cut=st.integers(0, 10_000), clip=st.booleans())
def test_rewriting_truncated_fragments_raises_only_media_errors(
    name: str, cut: int, clip: bool
) -> None:
    fragment, track = FRAGMENTS[name]
    options = {"clip_end": 4500} if clip else {"decode_time": 1}
    only_media_errors(lambda: rewrite_fragment(fragment[: cut % len(fragment)], track, **options))


def test_a_trun_without_columns_claiming_2_to_the_32_samples_is_refused_not_replayed() -> None:
    """Before the shared reader, the rewriter looped over every claimed sample (a hang)."""
    fragment = bytearray(ffmpeg_like())
    trun = fragment.index(b"trun")
    fragment[trun + 5 : trun + 12] = b"\0\0\x01\xff\xff\xff\xff"  # flags: data offset only
    with pytest.raises(MediaError, match="beyond"):
        rewrite_fragment(bytes(fragment), audio_init().track, clip_end=5000)


def test_a_data_offset_moved_past_32_bits_is_a_media_error() -> None:
    fragment = bytearray(ffmpeg_like(tfdt_version=0))
    trun = fragment.index(b"trun")
    fragment[trun + 12 : trun + 16] = (2**31 - 2).to_bytes(4, "big")  # data_offset
    with pytest.raises(MediaError, match="does not fit 32 bits"):
        rewrite_fragment(bytes(fragment), audio_init().track)  # the tfdt widens: +4 bytes


# ---------------------------------------------------------------- the box reader itself

TRACK = TrackInfo(1, "video", 15360, "avc1.64001f", default_sample_duration=512)


def walk(data: bytes, start: int = 0, end: int | None = None, depth: int = 0) -> None:
    """Read every box of ``data`` as a full box, descending into the containers."""
    for box_type, payload, box_end in iter_boxes(data, start, end):
        if box_type in CONTAINERS and depth < 8:
            walk(data, payload, box_end, depth + 1)
        else:
            BoxReader(data, box_type, payload, box_end).full_box_header()


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=200))
def test_random_bytes_raise_only_media_errors(data: bytes) -> None:
    only_media_errors(lambda: walk(data))
    only_media_errors(lambda: parse_init(data))
    only_media_errors(lambda: parse_fragment(data, TRACK))


@pytest.mark.parametrize("read", [read_tfhd, read_tfdt, read_trun])
@settings(max_examples=200, deadline=None)
@given(version=st.integers(0, 255), flags=st.integers(0, 0xFFFFFF), body=st.binary(max_size=64))
def test_track_fragment_boxes_over_random_bytes_raise_only_media_errors(
    read: Callable[[BoxReader], object], version: int, flags: int, body: bytes
) -> None:
    payload = struct.pack(">I", version << 24 | flags) + body
    only_media_errors(lambda: read(BoxReader.over(payload, b"test")))


READS: dict[str, Callable[[BoxReader, int], object]] = {
    "u8": lambda r, _: r.u8("field"),
    "u16": lambda r, _: r.u16("field"),
    "u32": lambda r, _: r.u32("field"),
    "i32": lambda r, _: r.i32("field"),
    "u64": lambda r, _: r.u64("field"),
    "skip": lambda r, n: r.skip(n, "field"),
    "read_bytes": lambda r, n: r.read_bytes(n, "field"),
    "full_box_header": lambda r, _: r.full_box_header(),
    "children": lambda r, _: list(r.children()),
    "open_child": lambda r, _: r.open_child([b"free"]),
}


@settings(max_examples=300, deadline=None)
@given(
    data=st.binary(max_size=64),
    start=st.integers(-4, 70),
    end=st.integers(-4, 70),
    reads=st.lists(st.tuples(st.sampled_from(sorted(READS)), st.integers(-2, 40)), max_size=12),
)
def test_any_sequence_of_reads_raises_only_media_errors(
    data: bytes, start: int, end: int, reads: list[tuple[str, int]]
) -> None:
    def run() -> None:
        reader = BoxReader(data, b"test", start, end)
        for name, size in reads:
            READS[name](reader, size)
            assert reader.start <= reader.pos <= reader.end

    only_media_errors(run)
