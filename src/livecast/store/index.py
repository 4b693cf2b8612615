"""The recording's playlist index: DVR and VOD playlists of any length, none of it in memory.

Two append-only files per rendition, rebuilt from the journal whenever a recording is opened:

* ``playlist.body`` — every recorded segment's playlist lines, rendered once when the segment
  completes (``hls.playlist.render_segment``): [EXT-X-DISCONTINUITY] [EXT-X-MAP]
  EXT-X-PROGRAM-DATE-TIME, EXTINF, [EXT-X-GAP], URI;
* ``playlist.idx`` — one fixed-size record per segment (:data:`RECORD`): MSN, PDT, duration,
  discontinuity sequence, flags, where its lines are in the body (and where its head — the
  discontinuity and map lines — ends), and where the EXT-X-MAP line in force for it is.

A playlist from segment *i* to segment *j* is then a header, the EXT-X-MAP line of segment *i*,
and one slice of the body: the cost of a 2-hour DVR playlist is one ``pread``, not 3,600 renders,
and memory does not grow with the event (the records are read from disk, binary-searched by PDT).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

from livecast.hls.playlist import MediaPlaylist, SegmentEntry, render_media_header, render_segment
from livecast.hls.tags import MapTag
from livecast.store.contract import SegmentInfo, segment_name

# msn, pdt, duration, discontinuity sequence, flags, body offset, head length, body length,
# map offset, map length
RECORD = struct.Struct("<qddIIQIIQI")
GAP = 1


@dataclass(frozen=True, slots=True)
class IndexRecord:
    msn: int
    pdt: float
    duration: float
    discontinuity_sequence: int
    flags: int
    body_offset: int
    head_length: int
    body_length: int
    map_offset: int
    map_length: int

    @property
    def gap(self) -> bool:
        return bool(self.flags & GAP)

    @property
    def pdt_end(self) -> float:
        return self.pdt + self.duration


class PlaylistIndex:
    """Appends segments; renders playlists over any range of them (module doc)."""

    def __init__(self, directory: Path) -> None:
        self.body_path = directory / "playlist.body"
        self.index_path = directory / "playlist.idx"
        flags = os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
        self._body = os.open(self.body_path, flags, 0o644)
        self._index = os.open(self.index_path, flags, 0o644)
        self._body_size = 0
        self.count = 0
        self._last_init: str | None = None
        self._map = (0, 0)  # (offset, length) of the EXT-X-MAP line in force

    def close(self) -> None:
        for fd in (self._body, self._index):
            os.close(fd)

    # ------------------------------------------------------------------ writing
    def append(self, segment: SegmentInfo, *, gap: bool = False) -> None:
        """Add the next segment (MSN order). Raises OSError when the disk refuses."""
        new_init = segment.init_name != self._last_init
        head = ["#EXT-X-DISCONTINUITY"] if segment.discontinuity and self.count else []
        map_line = f"{MapTag(segment.init_name).render()}\n".encode() if new_init else b""
        lines = render_segment(
            SegmentEntry(
                uri=segment_name(segment.msn),
                duration=segment.duration,
                pdt=segment.pdt,
                gap=gap,
            )
        )
        head_bytes = ("".join(f"{line}\n" for line in head)).encode() + map_line
        body = head_bytes + "".join(f"{line}\n" for line in lines).encode()
        offset = self._body_size
        map_at = self._map
        if new_init:
            map_at = (offset + len(head_bytes) - len(map_line), len(map_line))
        record = RECORD.pack(
            segment.msn,
            segment.pdt,
            segment.duration,
            segment.discontinuity_sequence,
            GAP if gap else 0,
            offset,
            len(head_bytes),
            len(body),
            *map_at,
        )
        _write_all(self._body, body, offset)
        _write_all(self._index, record, self.count * RECORD.size)
        self._body_size += len(body)
        self.count += 1
        self._last_init = segment.init_name
        self._map = map_at

    def fsync(self) -> None:
        os.fsync(self._body)
        os.fsync(self._index)

    # ------------------------------------------------------------------ reading
    def record(self, position: int) -> IndexRecord:
        data = os.pread(self._index, RECORD.size, position * RECORD.size)
        return IndexRecord(*RECORD.unpack(data))

    @property
    def first(self) -> IndexRecord | None:
        return self.record(0) if self.count else None

    @property
    def last(self) -> IndexRecord | None:
        return self.record(self.count - 1) if self.count else None

    def position_of_msn(self, msn: int) -> int | None:
        """Where segment ``msn`` is (records are in MSN order), None if it was never recorded."""
        low, high = 0, self.count
        while low < high:
            middle = (low + high) // 2
            if self.record(middle).msn < msn:
                low = middle + 1
            else:
                high = middle
        return low if low < self.count and self.record(low).msn == msn else None

    def find_pdt(self, moment: float) -> int:
        """The first segment that ends after ``moment`` (``count`` when none does)."""
        low, high = 0, self.count
        while low < high:
            middle = (low + high) // 2
            if self.record(middle).pdt_end <= moment:
                low = middle + 1
            else:
                high = middle
        return low

    def render(
        self,
        first: int,
        last: int,
        *,
        target_duration: int,
        playlist_type: str | None,
        endlist: bool,
    ) -> bytes:
        """The playlist of records ``first`` … ``last`` (inclusive)."""
        head_record, tail_record = self.record(first), self.record(last)
        header = MediaPlaylist(
            target_duration=target_duration,
            media_sequence=head_record.msn,
            discontinuity_sequence=head_record.discontinuity_sequence,
            playlist_type=playlist_type,
        )
        start = head_record.body_offset + head_record.head_length
        end = tail_record.body_offset + tail_record.body_length
        parts = [
            ("\n".join(render_media_header(header)) + "\n").encode(),
            os.pread(self._body, head_record.map_length, head_record.map_offset),
            os.pread(self._body, end - start, start),
        ]
        if endlist:
            parts.append(b"#EXT-X-ENDLIST\n")
        return b"".join(parts)


def _write_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written
