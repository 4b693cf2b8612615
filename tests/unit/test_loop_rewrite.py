"""media.rewrite: tfdt widening (v0 → v1), data_offset fix-up, sequence numbers, clipping."""

from __future__ import annotations

import struct

import pytest

from livecast.errors import MediaError
from livecast.media.boxes import box, full_box
from livecast.media.fmp4 import Fragment, InitSegment, find_box, iter_boxes
from livecast.media.rewrite import rewrite_fragment
from tests.unit.synth import AAC_FRAME, audio_init, read, video_init


def ffmpeg_like(
    *,
    sequence: int = 7,
    decode_time: int = 0,
    sizes: tuple[int, ...] = (5, 6),
    duration: int = AAC_FRAME,
    tfdt_version: int = 0,
    tfhd_flags: int = 0x020038,
    prefix: bytes = b"",
) -> bytes:
    """A fragment laid out as FFmpeg writes audio: defaults in tfhd (duration, size, flags), a
    trun with data offset and per-sample sizes only, sample bytes numbered 1, 2, … in mdat."""
    tfhd_payload = struct.pack(">I", 1)
    if tfhd_flags & 0x01:
        tfhd_payload += struct.pack(">Q", 1234)
    tfhd_payload += struct.pack(">III", duration, 100, 0x02000000)
    tfhd = full_box(b"tfhd", 0, tfhd_flags, tfhd_payload)
    if tfdt_version == 1:
        tfdt = full_box(b"tfdt", 1, 0, struct.pack(">Q", decode_time))
    else:
        tfdt = full_box(b"tfdt", 0, 0, struct.pack(">I", decode_time))
    mdat = box(b"mdat", b"".join(bytes([i + 1]) * size for i, size in enumerate(sizes)))

    def moof(offset: int) -> bytes:
        trun = full_box(
            b"trun",
            0,
            0x201,
            struct.pack(">Ii", len(sizes), offset),
            *(struct.pack(">I", s) for s in sizes),
        )
        return box(
            b"moof",
            full_box(b"mfhd", 0, 0, struct.pack(">I", sequence)),
            box(b"traf", tfhd, tfdt, trun),
        )

    first = moof(0)
    return prefix + moof(len(first) + 8) + mdat


def parse(data: bytes, init: InitSegment | None = None) -> Fragment:
    init = init or audio_init()
    reader_items = read(init.data + data)
    fragment = reader_items[1]
    assert isinstance(fragment, Fragment)
    return fragment


def sample_bytes(data: bytes) -> bytes:
    """The bytes the trun's data offset points at (from the moof start), as a player reads them."""
    moof_start = next(i for i in range(0, len(data), 1) if data[i + 4 : i + 8] == b"moof")
    traf = find_box(data, [b"moof", b"traf"], moof_start)
    assert traf is not None
    trun = next(p for t, p, _ in iter_boxes(data, *traf) if t == b"trun")
    count, offset = struct.unpack_from(">Ii", data, trun + 4)
    sizes = struct.unpack_from(f">{count}I", data, trun + 12)
    return data[moof_start + offset : moof_start + offset + sum(sizes)]


def tfdt_version(data: bytes) -> int:
    traf = find_box(data, [b"moof", b"traf"])
    assert traf is not None
    tfdt = find_box(data, [b"tfdt"], *traf)
    assert tfdt is not None
    return data[tfdt[0]]


def test_rewriting_nothing_gives_the_same_bytes() -> None:
    original = ffmpeg_like(tfdt_version=1, decode_time=4096)
    assert rewrite_fragment(original, audio_init().track) == original


def test_v0_tfdt_becomes_64_bit_and_data_offset_follows() -> None:
    original = ffmpeg_like(tfdt_version=0, decode_time=2048)
    rewritten = rewrite_fragment(original, audio_init().track, decode_time=2**33 + 5)
    assert tfdt_version(original) == 0 and tfdt_version(rewritten) == 1
    assert len(rewritten) == len(original) + 4  # the moof grew by 4 bytes
    assert sample_bytes(rewritten) == sample_bytes(original) == b"\x01" * 5 + b"\x02" * 6
    fragment = parse(rewritten)
    assert fragment.decode_time == 2**33 + 5
    assert (fragment.duration, fragment.sample_count) == (2 * AAC_FRAME, 2)


def test_v0_tfdt_keeps_its_value_when_only_widened() -> None:
    rewritten = rewrite_fragment(ffmpeg_like(decode_time=999), audio_init().track)
    assert tfdt_version(rewritten) == 1 and parse(rewritten).decode_time == 999


def test_sequence_number_is_rewritten() -> None:
    rewritten = rewrite_fragment(ffmpeg_like(sequence=7), audio_init().track, sequence=12345)
    mfhd = find_box(rewritten, [b"moof", b"mfhd"])
    assert mfhd is not None
    assert struct.unpack_from(">I", rewritten, mfhd[0] + 4)[0] == 12345


def test_boxes_before_the_moof_are_kept() -> None:
    styp = box(b"styp", b"msdh", b"\0\0\0\0", b"msdhmsix")
    rewritten = rewrite_fragment(ffmpeg_like(prefix=styp), audio_init().track, decode_time=1)
    assert rewritten.startswith(styp)
    assert sample_bytes(rewritten) == b"\x01" * 5 + b"\x02" * 6


def test_clip_shortens_the_last_kept_sample() -> None:
    original = ffmpeg_like(decode_time=10_000, sizes=(5, 6))
    clipped = rewrite_fragment(original, audio_init().track, clip_end=10_000 + AAC_FRAME + 512)
    fragment = parse(clipped)
    assert (fragment.decode_time, fragment.duration, fragment.sample_count) == (10_000, 1536, 2)
    assert sample_bytes(clipped) == b"\x01" * 5 + b"\x02" * 6


def test_clip_drops_samples_past_the_end_with_their_bytes() -> None:
    original = ffmpeg_like(decode_time=0, sizes=(5, 6, 7))
    clipped = rewrite_fragment(original, audio_init().track, clip_end=AAC_FRAME + 1)
    fragment = parse(clipped)
    assert (fragment.duration, fragment.sample_count) == (AAC_FRAME + 1, 2)
    assert sample_bytes(clipped) == b"\x01" * 5 + b"\x02" * 6
    mdat = next((p, e) for t, p, e in iter_boxes(clipped) if t == b"mdat")
    assert mdat[1] - mdat[0] == 11


def test_clip_and_retime_together() -> None:
    clipped = rewrite_fragment(
        ffmpeg_like(decode_time=0, sizes=(5, 6)),
        audio_init().track,
        decode_time=96_000,
        clip_end=100,
    )
    fragment = parse(clipped)
    assert (fragment.decode_time, fragment.duration, fragment.sample_count) == (96_000, 100, 1)


def test_clip_before_the_first_sample_is_refused() -> None:
    with pytest.raises(MediaError):
        rewrite_fragment(ffmpeg_like(decode_time=500), audio_init().track, clip_end=500)


def test_absolute_base_data_offset_is_refused() -> None:
    with pytest.raises(MediaError, match="base-data-offset"):
        rewrite_fragment(ffmpeg_like(tfhd_flags=0x39), audio_init().track, decode_time=1)


def test_video_fragment_from_the_synthesiser_round_trips() -> None:
    from livecast.media import boxes

    data = boxes.fragment(
        sequence=1,
        decode_time=0,
        sample_durations=[512] * 10,
        sample_sizes=[50] * 10,
        first_is_sync=True,
    )
    init = video_init()
    rewritten = rewrite_fragment(data, init.track, decode_time=307_200, sequence=61)
    fragment = parse(rewritten, init)
    assert (fragment.decode_time, fragment.duration, fragment.independent) == (307_200, 5120, True)
    assert sample_bytes(rewritten) == sample_bytes(data)
