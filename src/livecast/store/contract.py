"""The store seam: the packager's timeline decides *what* exists; a store keeps the bytes — sans-IO.

The packager (:class:`~livecast.packager.live.LiveRendition`) cuts parts and segments, renders
playlists and applies the live window; every byte of media it produces goes through a
:class:`Store`: ``put`` as soon as it is cut, ``get`` when the origin answers, ``retire`` when the
live window no longer lists or serves it. A store may keep what is retired (a recording keeps
everything on disk, see the recording issue); the RAM ring (:mod:`livecast.store.ram`) drops it,
so memory stays bounded by the live window however long the event runs.

Objects are addressed by stream id, rendition, media sequence number and part index (segments and
parts), or by name (init segments, whose names change with each encoder run).

Window rules (draft-pantos-hls-rfc8216bis §6.2.2, Apple LL-HLS), kept in :class:`WindowPolicy`:
  * "the server MUST NOT remove a Media Segment from a Playlist file … if that would produce a
    Playlist whose duration is less than three times the Target Duration" — ``listed`` (validated
    ≥ 3 × TD by the configuration);
  * a segment leaving the playlist stays available "for a period of time equal to the duration of
    the Playlist file" — ``segments_kept`` = 2 × the listed window, counted from the live end;
  * "Partial Segments … SHOULD be removed from the Playlist once they are greater than three Target
    Durations from the end of the Playlist", and their files stay downloadable 3 target durations
    longer — ``parts_kept`` = 6 × TD.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


def segment_name(msn: int) -> str:
    """The name (URL path element and file name) of segment ``msn``."""
    return f"seg-{msn}.m4s"


def part_name(msn: int, index: int) -> str:
    return f"part-{msn}.{index}.m4s"


@dataclass(frozen=True, slots=True)
class WindowPolicy:
    """How long, counted back from the live end (seconds of media), the live window keeps what."""

    listed: float  # seconds of segments listed in the playlist
    segments_kept: float  # a segment is served until it ends this long before the live end
    parts_kept: float  # a part file is served until its segment ends this long before it
    parts_listed: float  # EXT-X-PART tags are listed for segments ending within this

    @classmethod
    def live(cls, *, window: float, target_duration: int) -> WindowPolicy:
        return cls(
            listed=window,
            segments_kept=2 * window,
            parts_kept=6.0 * target_duration,
            parts_listed=3.0 * target_duration,
        )

    def keeps_segment(self, *, segment_end: float, live_end: float) -> bool:
        return live_end - segment_end <= self.segments_kept

    def keeps_parts(self, *, segment_end: float, live_end: float) -> bool:
        return live_end - segment_end <= self.parts_kept

    def lists_parts(self, *, segment_end: float, live_end: float) -> bool:
        return segment_end > live_end - self.parts_listed


class SegmentInfo(Protocol):
    """What the packager knows of a segment (``packager.cutter.Segment`` has these)."""

    @property
    def msn(self) -> int: ...
    @property
    def start(self) -> float: ...  # media time of the encoder run, seconds
    @property
    def pdt(self) -> float: ...  # wall-clock capture time of the first sample
    @property
    def discontinuity(self) -> bool: ...
    @property
    def discontinuity_sequence(self) -> int: ...
    @property
    def init_name(self) -> str: ...
    @property
    def duration(self) -> float: ...


class PartInfo(Protocol):
    """What the packager knows of a part (``packager.cutter.Part`` has these)."""

    @property
    def index(self) -> int: ...
    @property
    def duration(self) -> float: ...
    @property
    def independent(self) -> bool: ...


class RenditionStore(Protocol):
    """The media of one rendition of one stream."""

    def put_init(self, name: str, data: bytes) -> None: ...

    def put_part(self, segment: SegmentInfo, part: PartInfo, data: bytes) -> None: ...

    def put_segment(self, segment: SegmentInfo, data: bytes) -> None:
        """The segment is complete; ``data`` is its parts, concatenated."""

    def put_gap(self, segment: SegmentInfo) -> None:
        """A segment number this rendition has no media for (listed with EXT-X-GAP)."""

    def init(self, name: str) -> bytes | None: ...

    def part(self, msn: int, index: int) -> bytes | None: ...

    def segment(self, msn: int) -> bytes | None: ...

    def retire_init(self, name: str) -> None:
        """No segment in the live window refers to this init segment any more."""

    def retire_parts(self, msn: int) -> None:
        """The live window no longer serves the part files of segment ``msn``."""

    def retire_segment(self, msn: int) -> None:
        """The live window no longer serves segment ``msn``."""


class Store(Protocol):
    """Opens the :class:`RenditionStore` of a (stream, rendition); the same one every time."""

    def open(self, stream: str, rendition: str) -> RenditionStore: ...
