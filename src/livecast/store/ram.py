"""The RAM ring: the live window's media in memory, dropped as soon as it is retired — sans-IO.

The first :class:`~livecast.store.contract.Store`. It holds exactly what the live window serves
(the packager retires the rest), so its size is bounded by the window, whatever the event length;
``held_bytes`` and ``held_objects`` say how much it holds (the tests that bound memory read
them). Data are kept as the ``bytes`` objects the packager produced: no copy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from livecast.store.contract import PartInfo, SegmentInfo


@dataclass(slots=True)
class RamRendition:
    """One rendition's inits, parts and segments (implements ``RenditionStore``)."""

    inits: dict[str, bytes] = field(default_factory=dict)
    parts: dict[tuple[int, int], bytes] = field(default_factory=dict)
    segments: dict[int, bytes] = field(default_factory=dict)
    part_counts: dict[int, int] = field(default_factory=dict)  # msn → parts held
    held_bytes: int = 0

    def put_init(self, name: str, data: bytes) -> None:
        self.held_bytes += len(data) - len(self.inits.get(name, b""))
        self.inits[name] = data

    def put_part(self, segment: SegmentInfo, part: PartInfo, data: bytes) -> None:
        msn, index = segment.msn, part.index
        previous = self.parts.get((msn, index))
        if previous is None:
            self.part_counts[msn] = max(self.part_counts.get(msn, 0), index + 1)
        self.held_bytes += len(data) - len(previous or b"")
        self.parts[(msn, index)] = data

    def put_segment(self, segment: SegmentInfo, data: bytes) -> None:
        msn = segment.msn
        self.held_bytes += len(data) - len(self.segments.get(msn, b""))
        self.segments[msn] = data

    def put_gap(self, segment: SegmentInfo) -> None:
        """Nothing to hold: a gap has no media."""

    def init(self, name: str) -> bytes | None:
        return self.inits.get(name)

    def part(self, msn: int, index: int) -> bytes | None:
        return self.parts.get((msn, index))

    def segment(self, msn: int) -> bytes | None:
        return self.segments.get(msn)

    def retire_init(self, name: str) -> None:
        self.held_bytes -= len(self.inits.pop(name, b""))

    def retire_parts(self, msn: int) -> None:
        for index in range(self.part_counts.pop(msn, 0)):
            self.held_bytes -= len(self.parts.pop((msn, index), b""))

    def retire_segment(self, msn: int) -> None:
        self.retire_parts(msn)
        self.held_bytes -= len(self.segments.pop(msn, b""))

    @property
    def held_objects(self) -> int:
        return len(self.inits) + len(self.parts) + len(self.segments)


class RamRing:
    """The live window in memory, per (stream, rendition) (implements ``Store``)."""

    def __init__(self) -> None:
        self._renditions: dict[tuple[str, str], RamRendition] = {}

    def open(self, stream: str, rendition: str) -> RamRendition:
        key = (stream, rendition)
        opened = self._renditions.get(key)
        if opened is None:
            opened = self._renditions[key] = RamRendition()
        return opened

    @property
    def held_bytes(self) -> int:
        return sum(r.held_bytes for r in self._renditions.values())

    @property
    def held_objects(self) -> int:
        return sum(r.held_objects for r in self._renditions.values())
