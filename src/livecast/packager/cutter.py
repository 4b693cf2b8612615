"""Cut a rendition's fragments into LL-HLS parts and segments — sans-IO.

Input: :class:`~livecast.media.fmp4.Fragment` objects in decode order (from the fMP4 reader).
Output: :class:`PartCut` for every completed part and :class:`SegmentCut` for every
completed segment.

Rules (draft-pantos-hls-rfc8216bis §4.4.4.9, EXT-X-PART):
  "Each Partial Segment has a Part Target Duration ... The duration of a Partial Segment MUST be
   less than or equal to the Part Target Duration ... In addition, the duration of each Partial
   Segment MUST be at least 85% of the Part Target Duration, with the exception of Partial
   Segments with the INDEPENDENT=YES attribute and the final Partial Segment of any Parent Segment."

How:
* Segment boundaries sit on the media timeline at ``k × segment_duration`` (the same for every
  rendition, so media sequence numbers line up across the ladder). A segment is closed as soon as a
  fragment ends within half a fragment of the next boundary — at the moment its last part completes,
  not one fragment later.
* A part is closed as soon as one more fragment of the same length would no longer fit the part
  target. FFmpeg is asked for one fragment per video part, so video parts close the instant their
  fragment arrives; audio arrives in small fragments that are grouped here.
* Each segment gets ``msn = msn_base + round(start / segment_duration)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from livecast.errors import MediaError
from livecast.media.fmp4 import Fragment

# Floating-point slack when comparing durations in seconds (well below one audio sample at 48 kHz).
EPSILON = 1e-6


@dataclass(frozen=True, slots=True)
class Part:
    msn: int
    index: int
    start: float  # media time, seconds
    duration: float
    independent: bool
    size: int  # bytes; the data travel in the PartCut, then live in the store


@dataclass(slots=True)
class Segment:
    msn: int
    start: float  # media time, seconds
    pdt: float  # wall-clock capture time (epoch seconds) of the first sample
    discontinuity: bool  # first segment after a restart of the encoder
    init_name: str  # the init segment (EXT-X-MAP) this segment needs
    discontinuity_sequence: int = 0  # set by the rendition: discontinuities up to this segment
    parts: list[Part] = field(default_factory=list)
    complete: bool = False
    gap: bool = False  # recovered from a recording that lost it: listed with EXT-X-GAP
    duration_without_parts: float = 0.0

    @property
    def duration(self) -> float:
        if self.gap:
            return self.duration_without_parts
        return sum(p.duration for p in self.parts)

    @property
    def size(self) -> int:
        return sum(p.size for p in self.parts)

    @property
    def end(self) -> float:
        return self.start + self.duration

    @property
    def pdt_end(self) -> float:
        """Wall-clock end: comparable across encoder runs (each run's media time starts anew)."""
        return self.pdt + self.duration


@dataclass(frozen=True, slots=True)
class PartCut:
    segment: Segment
    part: Part
    data: bytes


@dataclass(frozen=True, slots=True)
class SegmentCut:
    segment: Segment
    data: bytes  # the segment's parts, concatenated


Cut = PartCut | SegmentCut


class SegmentCutter:
    """Groups the fragments of one encoder run (one timescale, one init) into parts/segments."""

    def __init__(
        self,
        *,
        timescale: int,
        part_target: float,
        segment_duration: float,
        epoch: float,
        msn_base: int,
        init_name: str,
        discontinuity: bool = False,
    ) -> None:
        if timescale <= 0:
            raise MediaError(f"track timescale must be positive, got {timescale}")
        self.timescale = timescale
        self.part_target = part_target
        self.segment_duration = segment_duration
        self.epoch = epoch
        self.msn_base = msn_base
        self.init_name = init_name
        self._discontinuity = discontinuity
        self._segment: Segment | None = None
        self._part_chunks: list[bytes] = []
        self._segment_parts: list[bytes] = []
        self._part_start = 0.0
        self._part_duration = 0.0
        self._part_independent = False
        self._last_end: int | None = None
        self.last_msn: int | None = None  # msn of the newest segment opened

    def push(self, fragment: Fragment) -> list[Cut]:
        """Add one fragment; return the parts and segments it completed (in that order)."""
        if self._last_end is not None and fragment.decode_time < self._last_end:
            raise MediaError(
                f"fragment decode time {fragment.decode_time} goes backwards "
                f"(previous fragment ended at {self._last_end})"
            )
        self._last_end = fragment.decode_time + fragment.duration
        start = fragment.decode_time / self.timescale
        duration = fragment.duration / self.timescale
        cuts: list[Cut] = []
        segment = self._segment or self._open_segment(start)
        if not self._part_chunks:
            self._part_start = start
            self._part_independent = fragment.independent
        self._part_chunks.append(fragment.data)
        self._part_duration += duration
        end = start + duration
        boundary = (round(segment.start / self.segment_duration) + 1) * self.segment_duration
        if end + duration / 2 >= boundary - EPSILON:
            cuts.append(self._close_part(segment))
            cuts.append(self._close_segment(segment))
        elif self._part_duration + duration > self.part_target + EPSILON:
            cuts.append(self._close_part(segment))
        return cuts

    def flush(self) -> list[Cut]:
        """The encoder stopped: close what is open (a short final part and segment)."""
        segment = self._segment
        if segment is None:
            return []
        cuts: list[Cut] = []
        if self._part_chunks:
            cuts.append(self._close_part(segment))
        if segment.parts:
            cuts.append(self._close_segment(segment))
        self._segment = None
        return cuts

    @property
    def open_segment(self) -> Segment | None:
        return self._segment

    def _open_segment(self, start: float) -> Segment:
        msn = self.msn_base + round(start / self.segment_duration)
        if self.last_msn is not None and msn <= self.last_msn:
            msn = self.last_msn + 1
        self.last_msn = msn
        segment = Segment(
            msn=msn,
            start=start,
            pdt=self.epoch + start,
            discontinuity=self._discontinuity,
            init_name=self.init_name,
        )
        self._discontinuity = False
        self._segment = segment
        return segment

    def _close_part(self, segment: Segment) -> PartCut:
        data = b"".join(self._part_chunks)
        part = Part(
            msn=segment.msn,
            index=len(segment.parts),
            start=self._part_start,
            duration=self._part_duration,
            independent=self._part_independent,
            size=len(data),
        )
        segment.parts.append(part)
        self._segment_parts.append(data)
        self._part_chunks = []
        self._part_duration = 0.0
        return PartCut(segment, part, data)

    def _close_segment(self, segment: Segment) -> SegmentCut:
        segment.complete = True
        data = b"".join(self._segment_parts)
        self._segment_parts = []
        self._segment = None
        return SegmentCut(segment, data)
