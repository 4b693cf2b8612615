"""media.box_reader and media.track_fragment: bounds-checked reads, the tfhd/tfdt/trun values both
the stream reader and the loop rewriter use, and the trun writer as their inverse."""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest

from livecast.errors import MediaError
from livecast.media import track_fragment as tf
from livecast.media.box_reader import BoxReader, find_box, iter_boxes, open_box, require_box
from livecast.media.boxes import box, full_box, trun_box
from livecast.media.track_fragment import (
    SampleDefaults,
    TrackFragmentHeader,
    TrackRun,
    read_tfdt,
    read_tfhd,
    read_trun,
)

TRACK = SampleDefaults(duration=1024, size=0, flags=0x02000000)


def test_flag_values_are_those_of_iso_14496_12() -> None:
    assert [
        tf.TFHD_BASE_DATA_OFFSET_PRESENT,
        tf.TFHD_SAMPLE_DESCRIPTION_INDEX_PRESENT,
        tf.TFHD_DEFAULT_SAMPLE_DURATION_PRESENT,
        tf.TFHD_DEFAULT_SAMPLE_SIZE_PRESENT,
        tf.TFHD_DEFAULT_SAMPLE_FLAGS_PRESENT,
        tf.TFHD_DURATION_IS_EMPTY,
        tf.TFHD_DEFAULT_BASE_IS_MOOF,
    ] == [0x000001, 0x000002, 0x000008, 0x000010, 0x000020, 0x010000, 0x020000]
    assert [
        tf.TRUN_DATA_OFFSET_PRESENT,
        tf.TRUN_FIRST_SAMPLE_FLAGS_PRESENT,
        tf.TRUN_SAMPLE_DURATION_PRESENT,
        tf.TRUN_SAMPLE_SIZE_PRESENT,
        tf.TRUN_SAMPLE_FLAGS_PRESENT,
        tf.TRUN_SAMPLE_COMPOSITION_TIME_OFFSET_PRESENT,
    ] == [0x000001, 0x000004, 0x000100, 0x000200, 0x000400, 0x000800]


# ---------------------------------------------------------------- the cursor


def test_reads_advance_through_the_payload() -> None:
    data = b"pad" + struct.pack(">IBHIiQ", 0x01000007, 9, 513, 70000, -5, 2**40) + b"tail"
    reader = BoxReader(data, b"test", 3, len(data) - 4)
    assert reader.full_box_header() == (1, 7)
    assert (reader.u8("a"), reader.u16("b"), reader.u32("c")) == (9, 513, 70000)
    assert (reader.i32("d"), reader.u64("e")) == (-5, 2**40)
    assert reader.remaining == 0
    with pytest.raises(
        MediaError, match=r"test box \(payload at 3\): f needs 1 bytes at offset 26"
    ):
        reader.u8("f")


@pytest.mark.parametrize(
    "read",
    [
        lambda r: r.u16("field"),
        lambda r: r.u32("field"),
        lambda r: r.i32("field"),
        lambda r: r.u64("field"),
        lambda r: r.skip(2, "field"),
        lambda r: r.read_bytes(5, "field"),
        lambda r: r.unpack(struct.Struct(">HH"), "field"),
    ],
)
def test_a_read_past_the_box_end_names_the_box_and_the_field(
    read: Callable[[BoxReader], object],
) -> None:
    reader = BoxReader(b"\0" * 16, b"tfhd", 4, 5)  # one byte of payload, more bytes after it
    with pytest.raises(MediaError, match=r"tfhd box .* field needs \d+ bytes at offset 4, only 1"):
        read(reader)
    assert reader.pos == 4  # nothing consumed


def test_a_negative_size_is_refused() -> None:
    with pytest.raises(MediaError, match="needs -1 bytes"):
        BoxReader.over(b"abcd", b"free").skip(-1, "field")


@pytest.mark.parametrize(("start", "end"), [(-1, 2), (3, 2), (0, 9)])
def test_a_payload_outside_the_buffer_is_refused(start: int, end: int) -> None:
    with pytest.raises(MediaError, match="outside"):
        BoxReader(b"12345678", b"trun", start, end)


# ---------------------------------------------------------------- walking boxes


def test_boxes_are_walked_with_their_payloads() -> None:
    large = struct.pack(">I4sQ", 1, b"mdat", 20) + b"abcd"
    data = box(b"moof", box(b"mfhd", b"1234"), box(b"traf")) + large
    assert list(iter_boxes(data)) == [(b"moof", 8, 28), (b"mdat", 44, 48)]
    assert find_box(data, [b"moof", b"traf"]) == (28, 28)
    assert find_box(data, [b"moof", b"tfhd"]) is None
    assert open_box(data, [b"moof", b"mfhd"]).read_bytes(4, "all") == b"1234"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\0\0\0\x20free" + b"\0" * 8, "bad size 32"),
        (b"\0\0\0\x04free", "bad size 4"),
        (b"\0\0\0\x01mdat\0\0", "truncated largesize"),
        (box(b"free") + b"abc", "3 trailing bytes"),
    ],
)
def test_box_walk_refuses_broken_sizes(data: bytes, message: str) -> None:
    with pytest.raises(MediaError, match=message):
        list(iter_boxes(data))


def test_box_walk_refuses_a_range_outside_the_buffer() -> None:
    with pytest.raises(MediaError, match="outside"):
        list(iter_boxes(box(b"free"), 0, 100))


def test_a_missing_box_is_named() -> None:
    with pytest.raises(MediaError, match="missing box moof/traf"):
        require_box(box(b"moof"), [b"moof", b"traf"])


# ---------------------------------------------------------------- track fragment boxes


def reader(box_type: bytes, version: int, flags: int, *fields: bytes) -> BoxReader:
    whole = full_box(box_type, version, flags, *fields)
    return BoxReader(whole, box_type, 8, len(whole))


def test_tfhd_with_every_optional_field() -> None:
    fields = struct.pack(">IQIIII", 3, 1234, 2, 512, 77, 0x01010000)
    header = read_tfhd(reader(b"tfhd", 0, 0x01003B, fields))
    assert header == TrackFragmentHeader(0x01003B, 3, 1234, 2, 512, 77, 0x01010000)
    assert header.sample_defaults(TRACK) == SampleDefaults(512, 77, 0x01010000)


def test_tfhd_without_defaults_falls_back_to_the_track() -> None:
    header = read_tfhd(reader(b"tfhd", 0, tf.TFHD_DEFAULT_BASE_IS_MOOF, struct.pack(">I", 1)))
    assert (header.base_data_offset, header.default_sample_duration) == (None, None)
    assert header.sample_defaults(TRACK) is TRACK
    only_size = read_tfhd(reader(b"tfhd", 0, 0x10, struct.pack(">II", 1, 40)))
    assert only_size.sample_defaults(TRACK) == SampleDefaults(1024, 40, 0x02000000)


def test_tfhd_shorter_than_its_flags_say_is_a_media_error() -> None:
    with pytest.raises(MediaError, match=r"tfhd box .* default_sample_flags needs 4 bytes"):
        read_tfhd(reader(b"tfhd", 0, 0x38, struct.pack(">III", 1, 512, 77)))


@pytest.mark.parametrize(
    ("version", "field", "value"),
    [(0, struct.pack(">I", 2**32 - 1), 2**32 - 1), (1, struct.pack(">Q", 2**40), 2**40)],
)
def test_tfdt_is_32_or_64_bit_by_version(version: int, field: bytes, value: int) -> None:
    assert read_tfdt(reader(b"tfdt", version, 0, field)) == value


def test_trun_columns_and_resolution() -> None:
    flags = 0xF05
    rows = struct.pack(">IIIi", 500, 10, 0x01010000, -512) + struct.pack(">IIIi", 600, 11, 0, 7)
    run = read_trun(reader(b"trun", 1, flags, struct.pack(">IiI", 2, 96, 0x02000000), rows))
    assert run == TrackRun(
        1, flags, 2, 96, 0x02000000, (500, 600), (10, 11), (0x01010000, 0), (-512, 7)
    )
    assert run.total_duration(TRACK) == 1100 and run.first_flags(TRACK) == 0x02000000
    assert run.resolved_durations(TRACK) == (500, 600) and run.resolved_sizes(TRACK) == (10, 11)


def test_trun_version_0_composition_offsets_are_unsigned() -> None:
    run = read_trun(reader(b"trun", 0, 0x800, struct.pack(">II", 1, 0x80000010)))
    assert run.composition_offsets == (0x80000010,)


def test_trun_without_columns_takes_the_defaults() -> None:
    run = read_trun(reader(b"trun", 0, 0x001, struct.pack(">Ii", 3, 100)))
    assert (run.durations, run.sizes, run.sample_flags) == (None, None, None)
    assert run.total_duration(TRACK) == 3072 and run.first_flags(TRACK) == 0x02000000
    assert run.resolved_durations(TRACK) == (1024,) * 3 and run.resolved_sizes(TRACK) == (0,) * 3


def test_first_sample_flags_come_from_the_samples_without_first_sample_flags() -> None:
    run = read_trun(reader(b"trun", 0, 0x400, struct.pack(">III", 2, 0x01010000, 0)))
    assert run.first_flags(TRACK) == 0x01010000


def test_trun_claiming_more_samples_than_it_holds_is_a_media_error() -> None:
    with pytest.raises(MediaError, match=r"trun box .* sample table needs 80 bytes .* only 8"):
        read_trun(reader(b"trun", 0, 0x300, struct.pack(">III", 10, 1, 2)))


def test_trun_without_columns_claiming_absurdly_many_samples_is_a_media_error() -> None:
    with pytest.raises(MediaError, match="beyond"):
        read_trun(reader(b"trun", 0, 0, struct.pack(">I", 2**32 - 1)))


@pytest.mark.parametrize(
    ("version", "flags", "fields"),
    [
        (
            1,
            0xF05,
            struct.pack(">IiI", 2, 96, 7) + struct.pack(">IIIiIIIi", 1, 2, 3, -4, 5, 6, 7, 8),
        ),
        (0, 0xB01, struct.pack(">Ii", 1, -3) + struct.pack(">III", 9, 10, 0xFFFFFFFF)),
        (0, 0x000, struct.pack(">I", 4)),
    ],
)
def test_the_trun_writer_is_the_inverse_of_the_reader(
    version: int, flags: int, fields: bytes
) -> None:
    whole = full_box(b"trun", version, flags, fields)
    assert trun_box(read_trun(BoxReader(whole, b"trun", 8, len(whole)))) == whole


def test_the_trun_writer_refuses_a_column_its_flags_name_but_the_run_lacks() -> None:
    run = TrackRun(0, 0x100, 2, None, None, None, None, None, None)
    with pytest.raises(ValueError, match="column"):
        trun_box(run)
