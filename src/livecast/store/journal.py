"""The recording's journal: an append-only text file per rendition saying what is on disk — pure.

The recorder (:mod:`livecast.store.archive`) appends one line per fact, *after* the fact is on disk,
so that a process killed at any instant leaves a journal that describes only files that exist:

    livecast-journal 1                          the first line (format version)
    init <name>                                 init segment <name> was renamed into place
    open <msn> <start> <pdt> <disc> <dseq> <init>
                                                segment <msn> began (its parts are appended to
                                                seg-<msn>.m4s.partial)
    part <msn> <index> <size> <duration> <independent>
                                                part <index> (<size> bytes) is in that file
    seg <msn>                                   the segment is complete: renamed to seg-<msn>.m4s
    gap <msn> <start> <pdt> <duration> <disc> <dseq> <init>
                                                segment <msn> was live but is not recorded
    end                                         the event ended (EXT-X-ENDLIST)

Floats are written with ``repr`` (exact round trip). A torn last line (no newline: the process died
mid-write) is ignored; an unreadable line elsewhere is counted and skipped, never fatal.

:func:`replay` turns the text back into :class:`RecordedSegment` objects. A segment that was opened
but never completed is returned with ``complete=False``: its parts are on disk, and the recorder
closes it as a (short) segment at recovery, so that every part a viewer fetched stays valid.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from livecast.errors import StoreError

HEADER = "livecast-journal 1"


@dataclass(frozen=True, slots=True)
class RecordedPart:
    index: int
    size: int
    duration: float
    independent: bool


@dataclass(slots=True)
class RecordedSegment:
    """A segment as the journal knows it (implements ``store.contract.SegmentInfo``)."""

    msn: int
    start: float
    pdt: float
    discontinuity: bool
    discontinuity_sequence: int
    init_name: str
    parts: list[RecordedPart] = field(default_factory=list)
    complete: bool = False
    gap: bool = False  # live, but not recorded (the disk failed)
    duration_without_parts: float = 0.0  # what the packager said (gaps: the journal's line)

    @property
    def duration(self) -> float:
        if self.gap or not self.parts:
            return self.duration_without_parts
        return sum(p.duration for p in self.parts)

    @property
    def size(self) -> int:
        return sum(p.size for p in self.parts)


@dataclass(slots=True)
class Replayed:
    """What a journal says: the segments in order, the inits on disk, whether the event ended."""

    segments: list[RecordedSegment] = field(default_factory=list)
    inits: list[str] = field(default_factory=list)
    ended: bool = False
    bad_lines: int = 0  # unreadable lines skipped (not the torn last line)
    torn_tail: bool = False  # the last line was incomplete


# ---------------------------------------------------------------------------- writing


def _flag(value: bool) -> str:
    return "1" if value else "0"


def init_line(name: str) -> str:
    return f"init {name}\n"


def open_line(segment: RecordedSegment) -> str:
    s = segment
    return (
        f"open {s.msn} {s.start!r} {s.pdt!r} {_flag(s.discontinuity)} "
        f"{s.discontinuity_sequence} {s.init_name}\n"
    )


def part_line(msn: int, part: RecordedPart) -> str:
    p = part
    return f"part {msn} {p.index} {p.size} {p.duration!r} {_flag(p.independent)}\n"


def segment_line(msn: int) -> str:
    return f"seg {msn}\n"


def gap_line(segment: RecordedSegment) -> str:
    s = segment
    return (
        f"gap {s.msn} {s.start!r} {s.pdt!r} {s.duration!r} {_flag(s.discontinuity)} "
        f"{s.discontinuity_sequence} {s.init_name}\n"
    )


END_LINE = "end\n"


# ---------------------------------------------------------------------------- reading


def _lines(text: str, replayed: Replayed) -> Iterator[list[str]]:
    lines = text.split("\n")
    if lines and lines[-1] != "":
        replayed.torn_tail = True  # no newline: the writer died in the middle of this line
    for line in lines[:-1]:
        if line and line != HEADER:
            yield line.split(" ")


def _bool(word: str) -> bool:
    if word not in ("0", "1"):
        raise ValueError(word)
    return word == "1"


def replay(text: str) -> Replayed:
    """The journal's segments in MSN order. Raises :class:`StoreError` for a file that is not a
    journal at all (another program's file), never for damage a crash can cause."""
    if text and not text.startswith(HEADER):
        raise StoreError(f"not a livecast journal (it starts {text[:30]!r})")
    replayed = Replayed()
    by_msn: dict[int, RecordedSegment] = {}
    for words in _lines(text, replayed):
        try:
            _apply(words, replayed, by_msn)
        except (ValueError, IndexError, KeyError):
            replayed.bad_lines += 1
    replayed.segments.sort(key=lambda s: s.msn)
    return replayed


def _apply(words: list[str], replayed: Replayed, by_msn: dict[int, RecordedSegment]) -> None:
    kind = words[0]
    if kind == "init" and len(words) == 2:
        replayed.inits.append(words[1])
    elif kind == "open" and len(words) == 7:
        segment = RecordedSegment(
            msn=int(words[1]),
            start=float(words[2]),
            pdt=float(words[3]),
            discontinuity=_bool(words[4]),
            discontinuity_sequence=int(words[5]),
            init_name=words[6],
        )
        _add(segment, replayed, by_msn)
    elif kind == "part" and len(words) == 6:
        segment = by_msn[int(words[1])]
        part = RecordedPart(int(words[2]), int(words[3]), float(words[4]), _bool(words[5]))
        if part.index != len(segment.parts) or segment.complete:
            raise ValueError("part out of order")
        segment.parts.append(part)
    elif kind == "seg" and len(words) == 2:
        by_msn[int(words[1])].complete = True
    elif kind == "gap" and len(words) == 8:
        segment = RecordedSegment(
            msn=int(words[1]),
            start=float(words[2]),
            pdt=float(words[3]),
            discontinuity=_bool(words[5]),
            discontinuity_sequence=int(words[6]),
            init_name=words[7],
            complete=True,
            gap=True,
            duration_without_parts=float(words[4]),
        )
        _add(segment, replayed, by_msn)
    elif kind == "end" and len(words) == 1:
        replayed.ended = True
    else:
        raise ValueError(kind)


def _add(segment: RecordedSegment, replayed: Replayed, by_msn: dict[int, RecordedSegment]) -> None:
    previous = by_msn.get(segment.msn)
    if previous is not None:  # reopened after a failed attempt: the newer line wins
        replayed.segments.remove(previous)
    by_msn[segment.msn] = segment
    replayed.segments.append(segment)
