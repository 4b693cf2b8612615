"""The recording: every init, part and segment on disk as it is cut, the live window in RAM.

:class:`Recording` is a :class:`~livecast.store.contract.Store`; each (stream, rendition) gets a
:class:`RecordedRendition` in ``<directory>/<stream>/<rendition>/``:

    init-<id>.mp4          init segments (temporary file + rename)
    seg-<msn>.m4s.partial  the segment being produced: each part is appended as it is cut
    seg-<msn>.m4s          a complete segment (the partial file renamed: its parts, concatenated)
    journal.log            what is on disk, one line per fact (``store.journal``)
    playlist.body/.idx     DVR/VOD playlists over the whole recording (``store.index``)

Reads go to the RAM ring first (the live window: no disk I/O on the hot path) and to the files for
everything older. Retiring drops from RAM only: the recording keeps the whole event, so memory stays
bounded by the live window however long the event runs.

Durability (``fsync``): every write reaches the kernel before the packager publishes the object, so
a killed process (SIGKILL, a crash) loses nothing it served. Surviving a power cut as well takes
fsync: ``"off"`` never calls it; ``"segment"`` (default) flushes each completed segment, the journal
and the index on a background thread, so at most the segment in production is lost and the event
loop never waits for the disk; ``"part"`` flushes every part and the journal before returning (the
cost is in ``benchmarks/bench_recording.py``).

A disk that is full or refuses writes never stops the show: live serves from RAM; the failing
segment and those after it become *gaps* — written as ``gap`` journal lines (EXT-X-GAP in the VOD)
once the disk accepts writes again — logged once per outage and counted (``errors``,
``gap_segments``: ``livecast_record_*`` in /metrics).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from livecast.errors import StoreError
from livecast.store import journal
from livecast.store.contract import PartInfo, SegmentInfo, segment_name
from livecast.store.index import PlaylistIndex
from livecast.store.journal import RecordedPart, RecordedSegment, Replayed
from livecast.store.ram import RamRendition

log = logging.getLogger(__name__)

FSYNC_POLICIES = ("off", "segment", "part")
BACKLOG_LIMIT = 100_000  # segments remembered while the disk refuses writes (~2 days at 2 s)
JOURNAL = "journal.log"
PARTIAL = ".partial"


class Syncer:
    """fsync off the event loop: one background thread, calls queued in order."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="record-fsync")

    def submit(self, call: Callable[[], None]) -> None:
        self._pool.submit(_quietly, call)

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def _quietly(call: Callable[[], None]) -> None:
    try:
        call()
    except OSError as exc:  # the next write will fail too and be reported there
        log.warning("recording: fsync failed: %s", exc)


class RecordedRendition:
    """One rendition's recording (implements ``RenditionStore`` and ``RenditionRecording``)."""

    def __init__(self, directory: Path, *, fsync: str = "segment", syncer: Syncer) -> None:
        if fsync not in FSYNC_POLICIES:
            raise StoreError(f"fsync must be one of {', '.join(FSYNC_POLICIES)}, got {fsync!r}")
        self.directory = directory
        self._prefix = f"{directory}{os.sep}"  # file names joined as text: see _path
        self.fsync = fsync
        self._syncer = syncer
        self.ram = RamRendition()
        self.errors = 0  # writes the disk refused
        self.gap_segments = 0  # segments lost to the recording
        self.ended = False
        self._on_disk_inits: set[str] = set()
        self._open_msn: int | None = None  # segment whose partial file is open
        self._open_fd: int | None = None
        self._failed_msn: int | None = None  # segment that could not be recorded
        self._outage = False  # the disk refuses writes (logged once per outage)
        self._journal_torn = False  # the last journal write failed, perhaps half-way
        # Segments waiting to be indexed (and journaled, for gaps) while the disk refuses writes.
        self._backlog: deque[tuple[RecordedSegment, bool]] = deque(maxlen=BACKLOG_LIMIT)
        # part sizes of the recovered segments in the live window (their parts are read from disk;
        # the others' are in the RAM ring)
        self._part_sizes: dict[int, list[int]] = {}
        directory.mkdir(parents=True, exist_ok=True)
        self.recovered = self._recover()
        self.ended = self.recovered.ended
        self._journal = os.open(
            directory / JOURNAL, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644
        )
        if os.fstat(self._journal).st_size == 0:
            os.write(self._journal, f"{journal.HEADER}\n".encode())

    # ------------------------------------------------------------------ recovery
    def _recover(self) -> Replayed:
        path = self.directory / JOURNAL
        text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
        replayed = journal.replay(text)
        if replayed.torn_tail:  # cut the torn line so that the next append starts clean
            with open(path, "r+b") as file:
                file.truncate(len(text.encode("utf-8", errors="replace").rsplit(b"\n", 1)[0]) + 1)
        if replayed.bad_lines:
            log.warning(
                "recording %s: %d unreadable journal lines skipped", path, replayed.bad_lines
            )
        kept = [s for s in (self._recover_segment(s, path) for s in replayed.segments) if s]
        replayed.segments = kept
        self._on_disk_inits = {n for n in replayed.inits if (self.directory / n).exists()}
        for stray in self.directory.glob(f"*{PARTIAL}"):
            stray.unlink(missing_ok=True)
        for stray in self.directory.glob("*.tmp"):
            stray.unlink(missing_ok=True)
        self.index = PlaylistIndex(self.directory)
        for segment in kept:
            self.index.append(segment, gap=segment.gap)
        self.gap_segments = sum(s.gap for s in kept)
        return replayed

    def _recover_segment(
        self, segment: RecordedSegment, journal_path: Path
    ) -> RecordedSegment | None:
        """A complete segment whose file is missing becomes a gap; one that was being produced
        is closed with the parts that reached the disk (they may have been served)."""
        if segment.gap:
            return segment
        final = self.directory / segment_name(segment.msn)
        if segment.complete:
            if final.exists() and final.stat().st_size == segment.size:
                return segment
            return _as_gap(segment)
        if final.exists() and final.stat().st_size >= segment.size:  # renamed, not journaled
            segment.complete = True
            return segment
        partial = final.with_name(final.name + PARTIAL)
        size = partial.stat().st_size if partial.exists() else 0
        parts, total = [], 0
        for part in segment.parts:
            if total + part.size > size:
                break
            parts.append(part)
            total += part.size
        if not parts:
            return None  # opened, nothing published: as if never begun
        with open(partial, "r+b") as file:
            file.truncate(total)
        os.replace(partial, final)
        with open(journal_path, "a", encoding="utf-8") as file:
            file.write(journal.segment_line(segment.msn))
        segment.parts, segment.complete = parts, True
        return segment

    # ------------------------------------------------------------------ RenditionStore: writes
    def put_init(self, name: str, data: bytes) -> None:
        self.ram.put_init(name, data)
        self._write_init(name, data)

    def put_part(self, segment: SegmentInfo, part: PartInfo, data: bytes) -> None:
        self.ram.put_part(segment, part, data)
        msn = segment.msn
        if msn == self._failed_msn:
            return
        try:
            if self._open_msn != msn:
                self._open_segment(segment)
            assert self._open_fd is not None
            _write_all(self._open_fd, data)
            recorded = RecordedPart(part.index, len(data), part.duration, part.independent)
            self._append(journal.part_line(msn, recorded))
            if self.fsync == "part":
                os.fsync(self._open_fd)
                os.fsync(self._journal)
        except OSError as exc:
            self._fail(segment, exc)

    def put_segment(self, segment: SegmentInfo, data: bytes) -> None:
        self.ram.put_segment(segment, data)
        msn = segment.msn
        if msn == self._failed_msn or self._open_msn != msn or self._open_fd is None:
            self._close_partial(msn, keep=False)
            self._lost(segment)
            return
        final = self._path(segment_name(msn))
        try:
            os.replace(final + PARTIAL, final)
        except OSError as exc:
            self._fail(segment, exc)
            self._lost(segment)
            return
        fd, self._open_fd, self._open_msn = self._open_fd, None, None
        recorded = _recorded(segment)
        recorded.complete = True
        try:
            self._append(journal.segment_line(msn))
        except OSError as exc:  # the file is in place: recovery completes the segment from it
            self._count_error(exc, f"the journal line of segment {msn}")
        self._backlog.append((recorded, False))
        try:
            self._drain_backlog()
        except OSError as exc:
            self._count_error(exc, f"the playlist index at segment {msn}")
        else:
            self._outage_over(msn)
        self._sync_segment(fd)

    def _lost(self, segment: SegmentInfo) -> None:
        """The segment did not reach the disk: journaled and indexed as a gap when it can be."""
        self._backlog.append((_gap_of(segment), True))
        self._failed_msn = None

    def put_gap(self, segment: SegmentInfo) -> None:
        self._backlog.append((_gap_of(segment), True))
        try:
            self._drain_backlog()
        except OSError as exc:
            self._count_error(exc, f"the gap at segment {segment.msn}")

    def _sync_segment(self, fd: int) -> None:
        if self.fsync == "segment":
            journal_fd, index = self._journal, self.index
            self._syncer.submit(lambda: _fsync_close(fd))
            self._syncer.submit(lambda: _fsync_journal(journal_fd, index))
        else:
            os.close(fd)

    def end(self) -> None:
        """The event is over: flush pending gaps, write the end mark."""
        if self.ended:
            return
        self.ended = True
        try:
            self._drain_backlog()
            self._append(journal.END_LINE)
            os.fsync(self._journal)
        except OSError as exc:
            self._count_error(exc, "the end of the event")

    def close(self) -> None:
        self._close_partial(self._open_msn, keep=True)
        with contextlib.suppress(OSError):
            os.close(self._journal)
        self.index.close()

    # ------------------------------------------------------------------ writing helpers
    def _open_segment(self, segment: SegmentInfo) -> None:
        self._close_partial(self._open_msn, keep=False)  # never completed (encoder restart)
        self._drain_backlog()
        if segment.init_name not in self._on_disk_inits:
            init = self.ram.init(segment.init_name)
            if init is None:
                raise OSError(f"init segment {segment.init_name} was never written")
            self._write_init(segment.init_name, init, raise_errors=True)
        path = self._path(segment_name(segment.msn) + PARTIAL)
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
        self._open_fd = os.open(path, flags, 0o644)
        self._open_msn = segment.msn
        self._append(journal.open_line(_recorded(segment)))

    def _write_init(self, name: str, data: bytes, *, raise_errors: bool = False) -> None:
        path = self._path(name)
        temporary = path + ".tmp"
        try:
            with open(temporary, "wb") as file:
                file.write(data)
            os.replace(temporary, path)
            self._append(journal.init_line(name))
            self._on_disk_inits.add(name)
        except OSError as exc:
            if raise_errors:
                raise
            self._count_error(exc, f"init segment {name}")

    def _drain_backlog(self) -> None:
        """Index (and journal, for gaps) what waits, in MSN order; stops at the first refusal."""
        while self._backlog:
            segment, needs_journal = self._backlog[0]
            if needs_journal:
                self._append(journal.gap_line(segment))
                self._backlog[0] = (segment, False)
                self.gap_segments += 1
            self.index.append(segment, gap=segment.gap)
            self._backlog.popleft()

    def _append(self, line: str) -> None:
        """One journal line. After a failed write (perhaps a short one: a full disk), the next
        line starts with a newline, so that the fragment stays a line of its own (skipped at
        replay) instead of spoiling the next fact."""
        data = ("\n" + line if self._journal_torn else line).encode()
        try:
            _write_all(self._journal, data)
        except OSError:
            self._journal_torn = True
            raise
        self._journal_torn = False

    def _fail(self, segment: SegmentInfo, exc: OSError) -> None:
        self._failed_msn = segment.msn
        self._close_partial(segment.msn, keep=False)
        self._count_error(exc, f"segment {segment.msn}")

    def _outage_over(self, msn: int) -> None:
        """A whole segment was recorded: an outage (if any) is over."""
        if self._outage:
            self._outage = False
            log.info(
                "recording %s: recording again from segment %d (%d segments lost so far)",
                self.directory,
                msn,
                self.gap_segments,
            )

    def _count_error(self, exc: OSError, what: str) -> None:
        if not self._outage:
            self._outage = True
            log.warning(
                "recording %s: cannot write %s (%s); live continues from memory, the recording "
                "has a gap until the disk accepts writes",
                self.directory,
                what,
                exc.strerror or exc,
            )
        self.errors += 1

    def _close_partial(self, msn: int | None, *, keep: bool) -> None:
        if self._open_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._open_fd)
        if msn is not None and not keep:
            with contextlib.suppress(OSError):
                os.unlink(self._path(segment_name(msn) + PARTIAL))
        if msn is not None and msn == self._open_msn:
            self._open_fd, self._open_msn = None, None

    def _path(self, name: str) -> str:
        """A file of this rendition. Plain strings on the hot path: pathlib interns every name
        it parses, a table that would grow with the event."""
        return self._prefix + name

    # ------------------------------------------------------------------ RenditionStore: reads
    def init(self, name: str) -> bytes | None:
        data = self.ram.init(name)
        if data is None and name in self._on_disk_inits:
            data = _read(self._path(name))
        return data

    def part(self, msn: int, index: int) -> bytes | None:
        data = self.ram.part(msn, index)
        sizes = self._part_sizes.get(msn)
        if data is None and sizes is not None and index < len(sizes):
            path = self._path(segment_name(msn))
            with contextlib.suppress(OSError), open(path, "rb") as file:
                file.seek(sum(sizes[:index]))
                data = file.read(sizes[index])
        return data

    def segment(self, msn: int) -> bytes | None:
        data = self.ram.segment(msn)
        if data is None and self.index.position_of_msn(msn) is not None:
            data = _read(self._path(segment_name(msn)))
        return data

    def retire_init(self, name: str) -> None:
        self.ram.retire_init(name)

    def retire_parts(self, msn: int) -> None:
        self.ram.retire_parts(msn)
        self._part_sizes.pop(msn, None)

    def retire_segment(self, msn: int) -> None:
        self.ram.retire_segment(msn)
        self._part_sizes.pop(msn, None)

    def take_recovered(self) -> list[RecordedSegment]:
        """The segments the journal listed at the start, handed over once: the whole event's
        worth of them is not kept (a 2-hour recording's came to ~15 MB)."""
        segments, self.recovered.segments = self.recovered.segments, []
        return segments

    def restore_parts(self, segment: RecordedSegment) -> None:
        """A recovered segment in the live window: its part files are served from disk."""
        self._part_sizes[segment.msn] = [p.size for p in segment.parts]


class Recording:
    """The recording of every stream and rendition under ``directory`` (implements ``Store``)."""

    def __init__(self, directory: Path, *, fsync: str = "segment") -> None:
        self.directory = directory
        self.fsync = fsync
        self.syncer = Syncer()
        self._renditions: dict[tuple[str, str], RecordedRendition] = {}

    def open(self, stream: str, rendition: str) -> RecordedRendition:
        key = (stream, rendition)
        opened = self._renditions.get(key)
        if opened is None:
            path = self.directory / stream / rendition
            try:
                opened = RecordedRendition(path, fsync=self.fsync, syncer=self.syncer)
            except OSError as exc:
                raise StoreError(f"cannot open the recording in {path}: {exc}") from exc
            self._renditions[key] = opened
        return opened

    def renditions(self) -> list[tuple[str, str, RecordedRendition]]:
        return [(s, r, rendition) for (s, r), rendition in self._renditions.items()]

    def close(self) -> None:
        self.syncer.close()
        for rendition in self._renditions.values():
            rendition.close()

    @property
    def held_bytes(self) -> int:
        return sum(r.ram.held_bytes for r in self._renditions.values())


# ---------------------------------------------------------------------------- helpers


def _recorded(segment: SegmentInfo) -> RecordedSegment:
    return RecordedSegment(
        msn=segment.msn,
        start=segment.start,
        pdt=segment.pdt,
        discontinuity=segment.discontinuity,
        discontinuity_sequence=segment.discontinuity_sequence,
        init_name=segment.init_name,
        duration_without_parts=segment.duration,
    )


def _gap_of(segment: SegmentInfo) -> RecordedSegment:
    gap = _recorded(segment)
    gap.complete, gap.gap, gap.duration_without_parts = True, True, segment.duration
    return gap


def _as_gap(segment: RecordedSegment) -> RecordedSegment:
    segment.duration_without_parts = segment.duration
    segment.gap, segment.parts = True, []
    return segment


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _fsync_close(fd: int) -> None:
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_journal(fd: int, index: PlaylistIndex) -> None:
    os.fsync(fd)
    index.fsync()


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError:
        return None
