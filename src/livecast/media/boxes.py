"""Writing fMP4 boxes — the minimum to synthesise CMAF init segments and fragments.

Used by the unit tests to drive the packager without FFmpeg, and by the loop rewriter
(:func:`trun_box`). The layouts mirror what ``media.fmp4`` and ``media.track_fragment`` read
(ISO/IEC 14496-12).
"""

from __future__ import annotations

import struct

from livecast.media.track_fragment import (
    NON_SYNC_SAMPLE,
    TFHD_DEFAULT_BASE_IS_MOOF,
    TRUN_DATA_OFFSET_PRESENT,
    TRUN_FIRST_SAMPLE_FLAGS_PRESENT,
    TRUN_SAMPLE_COMPOSITION_TIME_OFFSET_PRESENT,
    TRUN_SAMPLE_DURATION_PRESENT,
    TRUN_SAMPLE_FLAGS_PRESENT,
    TRUN_SAMPLE_SIZE_PRESENT,
    TrackRun,
)


def box(box_type: bytes, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return struct.pack(">I4s", 8 + len(body), box_type) + body


def full_box(box_type: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    return box(box_type, struct.pack(">I", (version << 24) | flags), *payload)


def _avc1(width: int, height: int, profile: int, level: int) -> bytes:
    avcc = box(b"avcC", bytes([1, profile, 0, level, 0xFF, 0xE0, 0x01]))
    entry = (
        b"\0" * 6
        + struct.pack(">H", 1)
        + b"\0" * 16
        + struct.pack(">HH", width, height)
        + struct.pack(">II", 0x00480000, 0x00480000)
        + b"\0" * 4
        + struct.pack(">H", 1)
        + b"\0" * 32
        + struct.pack(">Hh", 0x18, -1)
    )
    return box(b"avc1", entry, avcc)


def _mp4a(channels: int, sample_rate: int) -> bytes:
    # ES_Descriptor(3) ⊃ DecoderConfigDescriptor(4) ⊃ DecoderSpecificInfo(5): AAC-LC (object 2).
    dsi = bytes([0x05, 2, (2 << 3) | 0x1, 0x90])
    dcd = bytes([0x04, 13 + len(dsi), 0x40, 0x15]) + b"\0" * 11 + dsi
    esd = bytes([0x03, 3 + len(dcd), 0, 1, 0]) + dcd
    entry = (
        b"\0" * 6
        + struct.pack(">H", 1)
        + b"\0" * 8
        + struct.pack(">HH", channels, 16)
        + b"\0" * 4
        + struct.pack(">I", sample_rate << 16)
    )
    return box(b"mp4a", entry, full_box(b"esds", 0, 0, esd))


def init_segment(
    kind: str,
    *,
    timescale: int,
    width: int = 1280,
    height: int = 720,
    channels: int = 2,
    sample_rate: int = 48000,
    track_id: int = 1,
) -> bytes:
    """``ftyp`` + ``moov`` of a one-track CMAF init segment (video avc1 or audio mp4a)."""
    if kind == "video":
        handler, entry = b"vide", _avc1(width, height, 0x64, 0x1F)
    else:
        handler, entry = b"soun", _mp4a(channels, sample_rate)
    tkhd = full_box(
        b"tkhd",
        0,
        3,
        b"\0" * 8,
        struct.pack(">I", track_id),
        b"\0" * 60,
        struct.pack(">II", width << 16, height << 16) if kind == "video" else b"\0" * 8,
    )
    mdhd = full_box(b"mdhd", 0, 0, b"\0" * 8, struct.pack(">II", timescale, 0), b"\0" * 4)
    hdlr = full_box(b"hdlr", 0, 0, b"\0" * 4, handler, b"\0" * 12, b"livecast\0")
    stsd = full_box(b"stsd", 0, 0, struct.pack(">I", 1), entry)
    stbl = box(b"stbl", stsd)
    trak = box(b"trak", tkhd, box(b"mdia", mdhd, hdlr, box(b"minf", stbl)))
    trex = full_box(b"trex", 0, 0, struct.pack(">IIIII", track_id, 1, 0, 0, 0))
    mvhd = full_box(b"mvhd", 0, 0, b"\0" * 8, struct.pack(">II", 1000, 0), b"\0" * 80)
    ftyp = box(b"ftyp", b"iso6", struct.pack(">I", 0), b"iso6cmfcdash")
    return ftyp + box(b"moov", mvhd, trak, box(b"mvex", trex))


_SYNTH_TRUN_FLAGS = (
    TRUN_DATA_OFFSET_PRESENT
    | TRUN_SAMPLE_DURATION_PRESENT
    | TRUN_SAMPLE_SIZE_PRESENT
    | TRUN_SAMPLE_FLAGS_PRESENT
)


def fragment(
    *,
    sequence: int,
    decode_time: int,
    sample_durations: list[int],
    sample_sizes: list[int],
    first_is_sync: bool,
    track_id: int = 1,
) -> bytes:
    """``moof`` + ``mdat`` with per-sample duration, size and flags in one ``trun``."""
    count = len(sample_durations)
    samples = b"".join(
        struct.pack(
            ">III",
            duration,
            size,
            0x02000000 if (i == 0 and first_is_sync) else (0x01000000 | NON_SYNC_SAMPLE),
        )
        for i, (duration, size) in enumerate(zip(sample_durations, sample_sizes, strict=True))
    )
    tfhd = full_box(b"tfhd", 0, TFHD_DEFAULT_BASE_IS_MOOF, struct.pack(">I", track_id))
    tfdt = full_box(b"tfdt", 1, 0, struct.pack(">Q", decode_time))

    def build(data_offset: int) -> bytes:
        trun = full_box(
            b"trun", 0, _SYNTH_TRUN_FLAGS, struct.pack(">Ii", count, data_offset), samples
        )
        return box(
            b"moof",
            full_box(b"mfhd", 0, 0, struct.pack(">I", sequence)),
            box(b"traf", tfhd, tfdt, trun),
        )

    moof = build(0)
    moof = build(len(moof) + 8)
    return moof + box(b"mdat", b"\xaa" * sum(sample_sizes))


def trun_box(run: TrackRun) -> bytes:
    """A ``trun`` box (§8.8.8) holding the fields ``run.flags`` name — the inverse of
    :func:`~livecast.media.track_fragment.read_trun` (bytes after the sample table are not kept).
    Composition offsets are written signed in version 1 and later, unsigned in version 0."""
    head = [struct.pack(">I", run.sample_count)]
    if run.flags & TRUN_DATA_OFFSET_PRESENT:
        head.append(struct.pack(">i", run.data_offset or 0))
    if run.flags & TRUN_FIRST_SAMPLE_FLAGS_PRESENT:
        head.append(struct.pack(">I", run.first_sample_flags or 0))
    columns: list[tuple[int, ...]] = []
    codes = ">"
    for bit, column, code in (
        (TRUN_SAMPLE_DURATION_PRESENT, run.durations, "I"),
        (TRUN_SAMPLE_SIZE_PRESENT, run.sizes, "I"),
        (TRUN_SAMPLE_FLAGS_PRESENT, run.sample_flags, "I"),
        (
            TRUN_SAMPLE_COMPOSITION_TIME_OFFSET_PRESENT,
            run.composition_offsets,
            "i" if run.version else "I",
        ),
    ):
        if run.flags & bit:
            if column is None or len(column) != run.sample_count:
                raise ValueError(f"trun flags {run.flags:#x} name a column the run lacks")
            columns.append(column)
            codes += code
    row = struct.Struct(codes)
    table = b"".join(row.pack(*values) for values in zip(*columns, strict=True)) if columns else b""
    return full_box(b"trun", run.version, run.flags, *head, table)
