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

The ``tfhd``, ``tfdt`` and ``trun`` boxes are read by :mod:`livecast.media.track_fragment` — the
same bounds-checked reading the stream reader does — so a corrupt fragment raises MediaError.
"""

from __future__ import annotations

import struct
from dataclasses import replace

from livecast.errors import MediaError
from livecast.media.box_reader import BoxReader, iter_boxes
from livecast.media.boxes import box, full_box, trun_box
from livecast.media.fmp4 import TrackInfo
from livecast.media.track_fragment import (
    TRUN_SAMPLE_DURATION_PRESENT,
    TRUN_SAMPLE_SIZE_PRESENT,
    SampleDefaults,
    TrackRun,
    read_tfdt,
    read_tfhd,
    read_trun,
)

__all__ = ["rewrite_fragment"]

_I32_RANGE = range(-(2**31), 2**31)
Span = tuple[int, int, int]  # a box in the fragment's bytes: (start, payload start, end)


def _clip(run: TrackRun, defaults: SampleDefaults, start: int, clip_end: int) -> TrackRun:
    """Drop samples starting at or after ``clip_end``; the last kept one ends there. The run
    then states every duration and size itself."""
    kept: list[int] = []
    for duration in run.resolved_durations(defaults):
        if start >= clip_end:
            break
        kept.append(min(duration, clip_end - start))
        start += duration
    if not kept:
        raise MediaError(f"clipping at {clip_end} leaves no sample in the fragment")
    count = len(kept)
    return replace(
        run,
        flags=run.flags | TRUN_SAMPLE_DURATION_PRESENT | TRUN_SAMPLE_SIZE_PRESENT,
        sample_count=count,
        durations=tuple(kept),
        sizes=run.resolved_sizes(defaults)[:count],
        sample_flags=None if run.sample_flags is None else run.sample_flags[:count],
        composition_offsets=(
            None if run.composition_offsets is None else run.composition_offsets[:count]
        ),
    )


def _moved(run: TrackRun, delta: int) -> TrackRun:
    """The run with its data offset moved by ``delta`` bytes (the change of the moof size)."""
    if run.data_offset is None:
        return run
    offset = run.data_offset + delta
    if offset not in _I32_RANGE:
        raise MediaError(f"trun data offset {run.data_offset} + {delta} does not fit 32 bits")
    return replace(run, data_offset=offset)


def _split(data: bytes) -> tuple[Span, Span]:
    """The ``moof`` and the ``mdat`` of one fragment; boxes before the moof are kept as they
    are, nothing may follow the mdat."""
    moof: Span | None = None
    mdat: Span | None = None
    start = 0
    for box_type, payload, end in iter_boxes(data):
        if box_type == b"moof" and moof is None:
            moof = (start, payload, end)
        elif box_type == b"mdat" and moof is not None and mdat is None:
            mdat = (start, payload, end)
        elif moof is not None:
            raise MediaError(f"unexpected {box_type!r} box in a fragment")
        start = end
    if moof is None or mdat is None:
        raise MediaError("a fragment needs one moof and one mdat")
    return moof, mdat


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
    # A version 1 tfdt holds an unsigned 64-bit time, an mfhd an unsigned 32-bit sequence number
    if decode_time is not None and not 0 <= decode_time < 2**64:
        raise MediaError(f"decode time {decode_time} does not fit a 64-bit tfdt")
    if sequence is not None and not 0 <= sequence < 2**32:
        raise MediaError(f"sequence number {sequence} does not fit the 32-bit mfhd")
    (moof_start, moof_payload, moof_end), (mdat_start, mdat_payload, mdat_end) = _split(data)
    moof_size = moof_end - moof_start
    moof_children = list(iter_boxes(data, moof_payload, moof_end))
    trafs = [(payload, end) for box_type, payload, end in moof_children if box_type == b"traf"]
    if len(trafs) != 1:
        raise MediaError(f"expected one traf per moof, found {len(trafs)}")
    children = list(iter_boxes(data, *trafs[0]))
    kinds = [box_type for box_type, _, _ in children]
    if kinds.count(b"tfhd") != 1 or kinds.count(b"tfdt") != 1 or b"trun" not in kinds:
        raise MediaError("a traf needs one tfhd, one tfdt and a trun")
    readers = {t: BoxReader(data, t, p, e) for t, p, e in children if t in (b"tfhd", b"tfdt")}
    header = read_tfhd(readers[b"tfhd"])
    if header.base_data_offset is not None:
        raise MediaError("tfhd base-data-offset (an absolute position) cannot be rewritten")
    defaults = header.sample_defaults(track.sample_defaults)
    original = read_tfdt(readers[b"tfdt"])
    truns = [read_trun(BoxReader(data, t, p, e)) for t, p, e in children if t == b"trun"]
    new_mdat = data[mdat_start:mdat_end]
    if clip_end is not None:
        if len(truns) != 1 or truns[0].data_offset != moof_size + 8:
            raise MediaError("clipping needs one trun whose data directly follows the moof")
        if mdat_payload - mdat_start != 8:
            raise MediaError("clipping a 64-bit mdat is not supported")
        truns = [_clip(truns[0], defaults, original, clip_end)]
        kept_size = sum(truns[0].sizes or ())
        new_mdat = box(b"mdat", data[mdat_payload : min(mdat_payload + kept_size, mdat_end)])

    def build(delta: int) -> bytes:
        runs = iter(truns)
        traf_boxes = []
        for box_type, payload, end in children:
            if box_type == b"tfdt":
                value = original if decode_time is None else decode_time
                traf_boxes.append(full_box(b"tfdt", 1, 0, struct.pack(">Q", value)))
            elif box_type == b"trun":
                traf_boxes.append(trun_box(_moved(next(runs), delta)))
            else:
                traf_boxes.append(box(box_type, data[payload:end]))
        moof_boxes = []
        for box_type, payload, end in moof_children:
            if box_type == b"mfhd" and sequence is not None:
                moof_boxes.append(full_box(b"mfhd", 0, 0, struct.pack(">I", sequence)))
            elif box_type == b"traf":
                moof_boxes.append(box(b"traf", *traf_boxes))
            else:
                moof_boxes.append(box(box_type, data[payload:end]))
        return box(b"moof", *moof_boxes)

    new_moof = build(0)
    new_moof = build(len(new_moof) - moof_size)
    return data[:moof_start] + new_moof + new_mdat
