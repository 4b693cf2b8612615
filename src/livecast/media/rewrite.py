"""Rewriting one fMP4 fragment's timing — sans-IO.

:func:`rewrite_fragment` takes a ``[styp] [prft] moof mdat`` fragment (as
:class:`~livecast.media.fmp4.FMP4StreamReader` returns it) and gives back the same media with

* a new ``tfdt`` baseMediaDecodeTime, always written as a version 1 (64-bit) box — a 32-bit
  version 0 box is widened, so a replayed loop can run past 2^32 ticks;
* a new ``mfhd`` sequence number;
* optionally the samples clipped at a media time: samples starting at or after ``clip_end`` are
  dropped (with their bytes in ``mdat``) and the last kept sample is shortened to end exactly
  there. The loop source uses it to make the audio track end on the loop boundary although AAC
  frames (1024 samples) do not divide it.

Every change of the ``moof`` size is carried into the ``trun`` data offsets, which count from the
start of the ``moof`` (``default-base-is-moof``, or no base at all, which means the same for the
first track fragment). An explicit ``base-data-offset`` (an absolute file position) is refused.
ISO/IEC 14496-12 §8.8.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace

from livecast.errors import MediaError
from livecast.media.boxes import box, full_box
from livecast.media.fmp4 import TrackInfo, iter_boxes

__all__ = ["TrunSample", "parse_trun", "rewrite_fragment", "trun_box"]

_U32 = struct.Struct(">I")
# tfhd flags
_BASE_DATA_OFFSET = 0x01
_SAMPLE_DESCRIPTION = 0x02
_DEFAULT_DURATION = 0x08
_DEFAULT_SIZE = 0x10
_DEFAULT_FLAGS = 0x20
# trun flags
_DATA_OFFSET = 0x001
_FIRST_FLAGS = 0x004
_DURATION = 0x100
_SIZE = 0x200
_FLAGS = 0x400
_CTO = 0x800


@dataclass(frozen=True, slots=True)
class TrunSample:
    duration: int
    size: int
    flags: int
    cto: int = 0  # composition time offset


@dataclass(frozen=True, slots=True)
class _Trun:
    version: int
    flags: int
    data_offset: int
    first_flags: int | None
    samples: tuple[TrunSample, ...]


@dataclass(frozen=True, slots=True)
class _Defaults:
    duration: int
    size: int
    flags: int


def _full(payload: bytes) -> tuple[int, int]:
    word = _U32.unpack_from(payload, 0)[0]
    return word >> 24, word & 0xFFFFFF


def _tfhd_defaults(payload: bytes, track: TrackInfo) -> _Defaults:
    _, flags = _full(payload)
    if flags & _BASE_DATA_OFFSET:
        raise MediaError("tfhd base-data-offset (an absolute position) cannot be rewritten")
    pos = 8 + (4 if flags & _SAMPLE_DESCRIPTION else 0)
    duration, size, sample_flags = track.default_sample_duration, 0, track.default_sample_flags
    if flags & _DEFAULT_DURATION:
        duration = _U32.unpack_from(payload, pos)[0]
        pos += 4
    if flags & _DEFAULT_SIZE:
        size = _U32.unpack_from(payload, pos)[0]
        pos += 4
    if flags & _DEFAULT_FLAGS:
        sample_flags = _U32.unpack_from(payload, pos)[0]
    return _Defaults(duration, size, sample_flags)


def parse_trun(payload: bytes, defaults: _Defaults) -> _Trun:
    """A ``trun`` payload with every sample's fields resolved against the defaults."""
    version, flags = _full(payload)
    count = _U32.unpack_from(payload, 4)[0]
    pos = 8
    data_offset = 0
    if flags & _DATA_OFFSET:
        data_offset = struct.unpack_from(">i", payload, pos)[0]
        pos += 4
    first_flags: int | None = None
    if flags & _FIRST_FLAGS:
        first_flags = _U32.unpack_from(payload, pos)[0]
        pos += 4
    samples = []
    for index in range(count):
        fields = {"duration": defaults.duration, "size": defaults.size, "flags": defaults.flags}
        if index == 0 and first_flags is not None:
            fields["flags"] = first_flags
        for bit, name in ((_DURATION, "duration"), (_SIZE, "size"), (_FLAGS, "flags")):
            if flags & bit:
                fields[name] = _U32.unpack_from(payload, pos)[0]
                pos += 4
        cto = 0
        if flags & _CTO:
            fmt = ">i" if version else ">I"
            cto = struct.unpack_from(fmt, payload, pos)[0]
            pos += 4
        samples.append(TrunSample(fields["duration"], fields["size"], fields["flags"], cto))
    if pos > len(payload):
        raise MediaError(f"trun of {count} samples is truncated")
    return _Trun(version, flags, data_offset, first_flags, tuple(samples))


def trun_box(trun: _Trun) -> bytes:
    """Serialise a ``trun`` (the inverse of :func:`parse_trun` for the fields its flags name)."""
    head = [struct.pack(">I", len(trun.samples))]
    if trun.flags & _DATA_OFFSET:
        head.append(struct.pack(">i", trun.data_offset))
    if trun.flags & _FIRST_FLAGS:
        head.append(struct.pack(">I", trun.first_flags or 0))
    rows = []
    for sample in trun.samples:
        for bit, value in ((_DURATION, sample.duration), (_SIZE, sample.size)):
            if trun.flags & bit:
                rows.append(struct.pack(">I", value))
        if trun.flags & _FLAGS:
            rows.append(struct.pack(">I", sample.flags))
        if trun.flags & _CTO:
            rows.append(struct.pack(">i" if trun.version else ">I", sample.cto))
    return full_box(b"trun", trun.version, trun.flags, *head, *rows)


def _clip(trun: _Trun, start: int, clip_end: int) -> _Trun:
    """Drop samples starting at or after ``clip_end``; the last kept one ends there."""
    kept: list[TrunSample] = []
    for sample in trun.samples:
        if start >= clip_end:
            break
        kept.append(replace(sample, duration=min(sample.duration, clip_end - start)))
        start += sample.duration
    if not kept:
        raise MediaError(f"clipping at {clip_end} leaves no sample in the fragment")
    return replace(trun, flags=trun.flags | _DURATION | _SIZE, samples=tuple(kept))


def _split(data: bytes) -> tuple[bytes, bytes, bytes]:
    """``(prefix boxes, moof, mdat)`` of one fragment."""
    prefix, moof, mdat = b"", b"", b""
    pos = 0
    for box_type, _payload, end in iter_boxes(data):
        whole = data[pos:end]
        pos = end
        if box_type == b"moof" and not moof:
            moof = whole
        elif box_type == b"mdat" and moof and not mdat:
            mdat = whole
        elif not moof:
            prefix += whole
        else:
            raise MediaError(f"unexpected {box_type!r} box in a fragment")
    if not moof or not mdat:
        raise MediaError("a fragment needs one moof and one mdat")
    return prefix, moof, mdat


def _children(whole: bytes) -> list[tuple[bytes, bytes]]:
    """``(type, payload)`` of each child box of the box ``whole``."""
    (_type, payload, end), *_ = iter_boxes(whole)
    return [(t, whole[p:e]) for t, p, e in iter_boxes(whole, payload, end)]


def rewrite_fragment(
    data: bytes,
    track: TrackInfo,
    *,
    decode_time: int | None = None,
    sequence: int | None = None,
    clip_end: int | None = None,
) -> bytes:
    """The fragment with a 64-bit ``tfdt`` (``decode_time``, or the original), the ``mfhd``
    ``sequence`` (or the original) and, with ``clip_end`` (a media time in the track timescale,
    on the fragment's *original* timeline), no sample past that time. See the module doc."""
    prefix, moof, mdat = _split(data)
    moof_children = _children(moof)
    trafs = [payload for box_type, payload in moof_children if box_type == b"traf"]
    if len(trafs) != 1:
        raise MediaError(f"expected one traf per moof, found {len(trafs)}")
    children = _children(box(b"traf", trafs[0]))
    kinds = [t for t, _ in children]
    if kinds.count(b"tfhd") != 1 or kinds.count(b"tfdt") != 1 or b"trun" not in kinds:
        raise MediaError("a traf needs one tfhd, one tfdt and a trun")
    by_type = dict(children)
    defaults = _tfhd_defaults(by_type[b"tfhd"], track)
    version, _ = _full(by_type[b"tfdt"])
    original = struct.unpack_from(">Q" if version == 1 else ">I", by_type[b"tfdt"], 4)[0]
    truns = [parse_trun(p, defaults) for t, p in children if t == b"trun"]
    payload_size = len(mdat) - 8
    if clip_end is not None:
        if len(truns) != 1 or truns[0].data_offset != len(moof) + 8:
            raise MediaError("clipping needs one trun whose data directly follows the moof")
        if len(mdat) >= 16 and _U32.unpack_from(mdat, 0)[0] == 1:
            raise MediaError("clipping a 64-bit mdat is not supported")
        truns = [_clip(truns[0], original, clip_end)]
        payload_size = sum(s.size for s in truns[0].samples)

    def build(delta: int) -> bytes:
        runs = iter(truns)
        traf_boxes = []
        for box_type, payload in children:
            if box_type == b"tfdt":
                value = original if decode_time is None else decode_time
                traf_boxes.append(full_box(b"tfdt", 1, 0, struct.pack(">Q", value)))
            elif box_type == b"trun":
                run = next(runs)
                traf_boxes.append(trun_box(replace(run, data_offset=run.data_offset + delta)))
            else:
                traf_boxes.append(box(box_type, payload))
        moof_boxes = []
        for box_type, payload in moof_children:
            if box_type == b"mfhd" and sequence is not None:
                moof_boxes.append(full_box(b"mfhd", 0, 0, struct.pack(">I", sequence)))
            elif box_type == b"traf":
                moof_boxes.append(box(b"traf", *traf_boxes))
            else:
                moof_boxes.append(box(box_type, payload))
        return box(b"moof", *moof_boxes)

    new_moof = build(0)
    new_moof = build(len(new_moof) - len(moof))
    new_mdat = mdat if clip_end is None else box(b"mdat", mdat[8 : 8 + payload_size])
    return prefix + new_moof + new_mdat
