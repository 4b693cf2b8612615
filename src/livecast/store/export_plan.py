"""What an export of a recording remuxes, and in which order — pure (no files, no FFmpeg).

``livecast export EVENT out.mp4`` turns a recorded event (or a PDT range of it) into one MP4
without re-encoding (:mod:`livecast.store.export` runs FFmpeg). This module decides everything
FFmpeg is told:

* **Which renditions** (:func:`choose_tracks`): the video rendition asked for, else the highest
  one (by the height its init segment declares), plus the audio rendition; an audio rendition may
  be asked for alone.
* **Which segments** (:func:`plan_export`): those of the main track whose PDT span meets
  ``[start, end)``; the first one may begin up to one segment before ``start`` (video can only be
  cut without re-encoding where a segment — a keyframe — begins), the last one is cut at ``end``.
  A segment is used only when *every* track has it complete and on disk; otherwise it is skipped
  on all tracks (a gap, a file that is missing, a segment still being produced), so that audio
  and video stay together.
* **In which pieces**: a *stretch* is a run of segments that follow each other on one encoder
  run's media timeline (consecutive MSNs, the same init segments, no discontinuity). Each stretch
  is cut into :class:`Chunk` s of at most :data:`CHUNK_SEGMENTS` segments: one chunk is one
  ``concat:init|seg|seg…`` entry of an ffconcat list per track (:func:`ffconcat`) — FFmpeg's
  concat *protocol* joins the bytes (an init segment followed by its fragments is a playable
  fragmented MP4), its concat *demuxer* joins the chunks one after the other, so several encoder
  runs (several inits) and skipped gaps become one continuous timeline.

Each chunk tells the demuxer its ``inpoint`` (the media time its first video segment starts at,
used for every track: audio keeps its few-millisecond offset to the video) and its ``duration``
(the video's), so every track's next chunk starts at the same output time; the last chunk of a
stretch also has an ``outpoint``, which drops the audio an encoder killed mid-segment wrote beyond
the video (else audio would run ahead after each restart — measured: 0.25 s).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from livecast.errors import StoreError
from livecast.hls.attributes import format_pdt
from livecast.store.contract import segment_name
from livecast.store.journal import RecordedSegment

VIDEO, AUDIO = "video", "audio"
CHUNK_SEGMENTS = 100  # segments per concat entry: FFmpeg's concat protocol opens all at once
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
CONTINUITY = 0.001  # seconds: a segment starts where the previous one ended within this


@dataclass(frozen=True, slots=True)
class TrackRecording:
    """One rendition's recording as the planner sees it (read by the adapter)."""

    name: str
    kind: str  # VIDEO or AUDIO (from its init segment)
    segments: tuple[RecordedSegment, ...] = ()  # the journal's, in MSN order
    missing: frozenset[int] = frozenset()  # MSNs whose file is absent or not the journaled size
    width: int = 0
    height: int = 0
    by_msn: dict[int, RecordedSegment] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_msn", {s.msn: s for s in self.segments})

    def usable(self, msn: int) -> RecordedSegment | None:
        """Segment ``msn`` when its complete file is on disk."""
        segment = self.by_msn.get(msn)
        if segment is None or segment.gap or not segment.complete or msn in self.missing:
            return None
        if not segment.parts or segment.duration <= 0:
            return None
        return segment


@dataclass(frozen=True, slots=True)
class Chunk:
    """One ffconcat entry per track: segments ``msns`` after the track's init segment."""

    msns: tuple[int, ...]
    inits: tuple[str, ...]  # per track, in the plan's order
    inpoint: float  # media time (seconds) where the chunk's first video segment starts
    duration: float  # seconds of the chunk in the output (the main track's, cut at ``end``)
    closes: bool  # the last chunk of a stretch: every track is cut at inpoint + duration

    @property
    def outpoint(self) -> float:
        return self.inpoint + self.duration


@dataclass(frozen=True, slots=True)
class ExportPlan:
    renditions: tuple[str, ...]  # the main track first (video, or audio alone), then audio
    chunks: tuple[Chunk, ...]
    skipped: int  # segments of the range left out (gaps, missing files, not on every track)
    first_pdt: float  # wall-clock time of the first sample exported
    runs: int  # encoder runs (init segments of the main track) the export draws from

    @property
    def duration(self) -> float:
        return sum(c.duration for c in self.chunks)

    @property
    def segments(self) -> int:
        return sum(len(c.msns) for c in self.chunks)


# ---------------------------------------------------------------------------- renditions


def choose_tracks(tracks: Sequence[TrackRecording], rendition: str | None) -> list[TrackRecording]:
    """The tracks to export: [video, audio] (or [video], [audio] when that is all there is)."""
    by_name = {t.name: t for t in tracks}
    videos = [t for t in tracks if t.kind == VIDEO]
    audios = sorted((t for t in tracks if t.kind == AUDIO), key=lambda t: (t.name != AUDIO, t.name))
    if rendition is not None:
        chosen = by_name.get(rendition)
        if chosen is None:
            known = ", ".join(sorted(by_name)) or "none"
            raise StoreError(f"no rendition {rendition!r} in this recording (recorded: {known})")
        if chosen.kind not in (VIDEO, AUDIO):
            raise StoreError(f"rendition {rendition} has no init segment on disk")
        if chosen.kind == AUDIO:
            return [chosen]
    elif videos:
        chosen = max(videos, key=lambda t: (t.height, t.width, t.name))
    elif audios:
        return [audios[0]]
    else:
        raise StoreError("this recording has no rendition with an init segment on disk")
    return [chosen, audios[0]] if audios else [chosen]


# ---------------------------------------------------------------------------- segments


def plan_export(
    tracks: Sequence[TrackRecording],
    *,
    start: float | None = None,
    end: float | None = None,
    chunk_segments: int = CHUNK_SEGMENTS,
) -> ExportPlan:
    """The chunks that remux ``tracks`` (the main one first) between PDT ``start`` and ``end``
    (either None: the recording's beginning or end). Raises :class:`StoreError` for a range that
    is empty or outside the recording."""
    if not tracks:
        raise StoreError("nothing to export: no rendition")
    if chunk_segments < 1:
        raise ValueError("chunk_segments must be ≥ 1")
    main = tracks[0]
    in_range = _in_range(main, start, end)
    chunks: list[Chunk] = []
    stretch: list[list[RecordedSegment]] = []  # per used MSN: the segment of every track
    skipped = 0
    for segment in in_range:
        found = [t.usable(segment.msn) for t in tracks]
        usable = [s for s in found if s is not None]
        if len(usable) < len(tracks):
            skipped += 1
            continue
        if stretch and not _continues(stretch[-1], usable):
            chunks.extend(_chunks(stretch, end, chunk_segments))
            stretch = []
        stretch.append(usable)
    if stretch:
        chunks.extend(_chunks(stretch, end, chunk_segments))
    if not chunks:
        raise StoreError(
            f"nothing recorded to export between {format_pdt(in_range[0].pdt)} and "
            f"{format_pdt(_pdt_end(in_range[-1]))}: its {len(in_range)} segments are gaps or "
            "missing"
        )
    return ExportPlan(
        renditions=tuple(t.name for t in tracks),
        chunks=tuple(chunks),
        skipped=skipped,
        first_pdt=main.by_msn[chunks[0].msns[0]].pdt,
        runs=len({c.inits[0] for c in chunks}),
    )


def _pdt_end(segment: RecordedSegment) -> float:
    return segment.pdt + segment.duration


def _in_range(
    main: TrackRecording, start: float | None, end: float | None
) -> list[RecordedSegment]:
    """The main track's segments (gaps too) whose PDT span meets [start, end)."""
    listed = [s for s in main.segments if s.complete or s.gap]
    if not listed:
        raise StoreError(f"rendition {main.name} has no recorded segment")
    for name, value in (("start", start), ("end", end)):
        if value is not None and not math.isfinite(value):
            raise StoreError(f"{name} is not a time: {value!r}")
    if start is not None and end is not None and end <= start:
        raise StoreError(f"end ({format_pdt(end)}) must be after start ({format_pdt(start)})")
    begins, ends = listed[0].pdt, max(_pdt_end(s) for s in listed)
    if start is not None and start >= ends:
        raise StoreError(
            f"start {format_pdt(start)} is after the recording ends ({format_pdt(ends)})"
        )
    if end is not None and end <= begins:
        raise StoreError(
            f"end {format_pdt(end)} is before the recording begins ({format_pdt(begins)})"
        )
    chosen = [
        s for s in listed if (start is None or _pdt_end(s) > start) and (end is None or s.pdt < end)
    ]
    if not chosen:  # between two segments (a pause of the encoder): nothing was on air
        what = f"between {format_pdt(start or begins)} and {format_pdt(end or ends)}"
        raise StoreError(f"nothing was recorded {what}")
    return chosen


def _continues(previous: list[RecordedSegment], current: list[RecordedSegment]) -> bool:
    """Whether ``current`` follows ``previous`` on the same media timeline, on every track."""
    for before, after in zip(previous, current, strict=True):
        if after.msn != before.msn + 1 or after.discontinuity:
            return False
        if after.init_name != before.init_name:
            return False
        if abs(after.start - (before.start + before.duration)) > CONTINUITY:
            return False
    return True


def _chunks(stretch: list[list[RecordedSegment]], end: float | None, size: int) -> list[Chunk]:
    """One stretch cut into chunks of at most ``size`` segments; the last one cut at ``end``."""
    chunks = []
    for first in range(0, len(stretch), size):
        group = stretch[first : first + size]
        main = [tracks[0] for tracks in group]
        duration = sum(s.duration for s in main)
        last = main[-1]
        if end is not None and end < _pdt_end(last):
            duration -= _pdt_end(last) - end
        chunks.append(
            Chunk(
                msns=tuple(s.msn for s in main),
                inits=tuple(s.init_name for s in group[0]),
                inpoint=main[0].start,
                duration=duration,
                closes=first + size >= len(stretch),
            )
        )
    return chunks


# ---------------------------------------------------------------------------- FFmpeg's lists


def concat_url(rendition: str, init: str, msns: Sequence[int]) -> str:
    """FFmpeg's concat protocol over one init and its segments, relative to the event directory
    (names of other characters than these could not be written in the list: refused)."""
    for name in (rendition, init):
        if not SAFE_NAME.fullmatch(name):
            raise StoreError(f"cannot export a file named {name!r} (letters, digits, . _ - only)")
    files = [f"{rendition}/{init}", *(f"{rendition}/{segment_name(m)}" for m in msns)]
    return "concat:" + "|".join(files)


def ffconcat(plan: ExportPlan, track: int) -> str:
    """The ffconcat list (FFmpeg's concat demuxer) of track number ``track`` of ``plan``."""
    rendition = plan.renditions[track]
    lines = ["ffconcat version 1.0"]
    for chunk in plan.chunks:
        lines.append(f"file '{concat_url(rendition, chunk.inits[track], chunk.msns)}'")
        lines.append(f"inpoint {chunk.inpoint:.6f}")
        if chunk.closes:
            lines.append(f"outpoint {chunk.outpoint:.6f}")
        lines.append(f"duration {chunk.duration:.6f}")
    return "\n".join(lines) + "\n"
