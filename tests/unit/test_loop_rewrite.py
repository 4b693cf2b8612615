"""media.rewrite: tfdt widening (v0 → v1), data_offset fix-up, sequence numbers, clipping."""

from __future__ import annotations

import hashlib
import struct

import pytest

from livecast.errors import MediaError
from livecast.media import boxes
from livecast.media.box_reader import find_box, iter_boxes
from livecast.media.boxes import box, full_box
from livecast.media.fmp4 import Fragment, InitSegment
from livecast.media.rewrite import rewrite_fragment
from tests.unit.synth import (
    AAC_FRAME,
    audio_init,
    every_field_fragment,
    ffmpeg_like,
    read,
    traf_fragment,
    video_init,
)


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


# ---------------------------------------------------------------- pinned output


def _pinned_cases() -> list[tuple[str, bytes, InitSegment, dict[str, int]]]:
    audio, video = audio_init(), video_init()
    styp = box(b"styp", b"msdh", b"\0\0\0\0", b"msdhmsix")
    synth_video = boxes.fragment(
        sequence=4,
        decode_time=2048,
        sample_durations=[512, 512, 500, 524],
        sample_sizes=[9, 3, 4, 5],
        first_is_sync=True,
    )
    every_field = every_field_fragment()
    unsigned_cto = traf_fragment(  # trun v0: a composition offset above 2^31 is unsigned
        tfhd_flags=0x08 | 0x10,
        tfhd_fields=struct.pack(">II", 512, 7),
        truns=[(0, 0x801, 2, struct.pack(">II", 0x80000010, 3))],
    )
    defaults_only = traf_fragment(  # no per-sample column: everything from tfhd
        tfhd_flags=0x08 | 0x10 | 0x20 | 0x020000,
        tfhd_fields=struct.pack(">III", 1024, 8, 0x02000000),
        truns=[(0, 0x001, 4, b"")],
        tfdt=full_box(b"tfdt", 0, 0, struct.pack(">I", 5000)),
    )
    two_runs = traf_fragment(
        tfhd_flags=0x020000,
        tfhd_fields=b"",
        truns=[
            (0, 0x301, 2, struct.pack(">IIII", 1024, 5, 1024, 6)),
            (0, 0x300, 1, struct.pack(">II", 1024, 7)),
        ],
    )
    trailing = traf_fragment(  # a trun with bytes after its samples (dropped when rewritten)
        tfhd_flags=0x08,
        tfhd_fields=struct.pack(">I", 1024),
        truns=[(0, 0x201, 1, struct.pack(">I", 20) + b"\xee" * 6)],
    )
    return [
        ("identity-v1", ffmpeg_like(tfdt_version=1, decode_time=4096), audio, {}),
        ("widen-v0", ffmpeg_like(decode_time=2048), audio, {"decode_time": 2**33 + 5}),
        ("sequence", ffmpeg_like(sequence=7), audio, {"sequence": 12345}),
        ("prefix", ffmpeg_like(prefix=styp), audio, {"decode_time": 1, "sequence": 2}),
        ("clip-shorten", ffmpeg_like(decode_time=10_000), audio, {"clip_end": 11_536}),
        ("clip-drop", ffmpeg_like(sizes=(5, 6, 7)), audio, {"clip_end": 1025}),
        ("clip-retime", ffmpeg_like(), audio, {"decode_time": 96_000, "clip_end": 100}),
        ("video", synth_video, video, {"decode_time": 307_200, "sequence": 61}),
        ("video-clip", synth_video, video, {"clip_end": 2048 + 1100, "sequence": 9}),
        ("every-field", every_field, video, {"decode_time": 1, "sequence": 5}),
        ("every-field-clip", every_field, video, {"clip_end": 77 + 1000}),
        ("unsigned-cto", unsigned_cto, video, {"decode_time": 3}),
        ("defaults-only", defaults_only, audio, {"sequence": 8}),
        ("defaults-only-clip", defaults_only, audio, {"clip_end": 5000 + 2500}),
        ("two-runs", two_runs, audio, {"decode_time": 2**40}),
        ("trailing", trailing, audio, {"sequence": 1}),
    ]


# sha256[:16] of each case's output, computed on the rewriter before it shared the box reader
# (issue 10): the rewriter must stay byte-identical.
PINNED = {
    "identity-v1": "7717b0a75f7c75f9",
    "widen-v0": "43f370947e59cb60",
    "sequence": "9d15134c38dca41b",
    "prefix": "509a6b168efce14f",
    "clip-shorten": "30d9d306a975ea22",
    "clip-drop": "018a27a99b60d8c2",
    "clip-retime": "7227a375aca31b61",
    "video": "31c3f0fb883f20a8",
    "video-clip": "d10a85f97c09f781",
    "every-field": "d72ba370c6e61314",
    "every-field-clip": "2510a994bd56e623",
    "unsigned-cto": "742f1e537c05d825",
    "defaults-only": "8dc3e9a7e18027cc",
    "defaults-only-clip": "12f481a6b7c5e34e",
    "two-runs": "eb639e6c2116fb26",
    "trailing": "ac5aca857b3ba7cc",
}


@pytest.mark.parametrize("case", _pinned_cases(), ids=lambda case: case[0])
def test_rewritten_bytes_are_pinned(case: tuple[str, bytes, InitSegment, dict[str, int]]) -> None:
    name, data, init, options = case
    rewritten = rewrite_fragment(data, init.track, **options)
    parse(rewritten, init)  # still a fragment the reader accepts
    assert hashlib.sha256(rewritten).hexdigest()[:16] == PINNED[name]
