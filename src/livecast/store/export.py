"""``livecast export``: a recorded event (or a PDT range of it) as one MP4, without re-encoding.

The thin adapter around :mod:`livecast.store.export_plan`: it reads each rendition's journal and
init segment under ``<record dir>/<event>/``, lets the planner choose the renditions, segments and
chunks, writes one ffconcat list per track and runs FFmpeg once — the concat demuxer over chunks
that are themselves the concat protocol over ``init + segments`` — with ``-c copy``:

    ffmpeg -f concat -safe 0 -protocol_whitelist file,concat -i video.ffconcat
           -f concat -safe 0 -protocol_whitelist file,concat -i audio.ffconcat
           -map 0:v:0 -map 1:a:0 -c copy -movflags +faststart -f mp4 .out.mp4.<random>.part

No segment is copied before FFmpeg reads it (the concat protocol reads the recording's files in
place), and ``+faststart`` puts the ``moov`` first so that the file plays while it downloads.
FFmpeg writes a temporary file next to ``out``, renamed onto it only once FFmpeg succeeded: an
export that fails or is interrupted never leaves a half-written ``out``.

Every bad input is a :class:`StoreError` with a one-line reason (no recording directory, unknown
event or rendition, an empty range, an output that cannot be written); FFmpeg missing or failing is
a :class:`~livecast.errors.TranscodeError`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from livecast.errors import MediaError, StoreError, TranscodeError
from livecast.media.fmp4 import parse_init
from livecast.store import journal
from livecast.store.archive import JOURNAL
from livecast.store.contract import segment_name
from livecast.store.export_plan import (
    VIDEO,
    ExportPlan,
    TrackRecording,
    choose_tracks,
    ffconcat,
    plan_export,
)
from livecast.transcode.ffmpeg import find_ffmpeg

__all__ = ["ExportResult", "export_recording", "read_tracks"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ExportResult:
    out: Path
    duration: float  # seconds of media written (the video's; audio ends within one frame of it)
    segments: int  # segments of the main rendition remuxed
    renditions: tuple[str, ...]  # the main rendition first, then the audio
    runs: int = 1  # encoder runs (init segments) the export joined
    skipped: int = 0  # segments of the range left out: gaps, missing files
    seconds: float = 0.0  # how long the export took


def export_recording(
    record_dir: Path,
    event: str,
    out: Path,
    *,
    rendition: str | None = None,
    start: float | None = None,
    end: float | None = None,
    ffmpeg: str | None = None,
) -> ExportResult:
    """Remux event ``event`` recorded under ``record_dir`` (from PDT ``start`` to ``end``, Unix
    seconds; None: its beginning, its end) into the MP4 file ``out``: the video of ``rendition``
    (default: the highest video rendition) and the audio. Raises :class:`StoreError` for a bad
    input, :class:`TranscodeError` when FFmpeg is missing or fails."""
    began = time.monotonic()
    event_dir = event_directory(record_dir, event)
    tracks = choose_tracks(read_tracks(event_dir), rendition)
    plan = plan_export(tracks, start=start, end=end)
    executable = find_ffmpeg(ffmpeg)
    _remux(executable, event_dir, plan, [t.kind for t in tracks], Path(out))
    result = ExportResult(
        out=Path(out),
        duration=plan.duration,
        segments=plan.segments,
        renditions=plan.renditions,
        runs=plan.runs,
        skipped=plan.skipped,
        seconds=time.monotonic() - began,
    )
    log.info(
        "exported %s (%s) to %s: %.1f s of media, %d segments, %d encoder runs, %d skipped, "
        "in %.2f s",
        event, "+".join(result.renditions), out, result.duration, result.segments,
        result.runs, result.skipped, result.seconds,
    )  # fmt: skip
    return result


# ---------------------------------------------------------------------------- reading


def event_directory(record_dir: Path, event: str) -> Path:
    """``record_dir/event``, or a StoreError naming what is wrong (and the events there are)."""
    if not record_dir.is_dir():
        what = "is not a directory" if record_dir.exists() else "does not exist"
        raise StoreError(f"no recording directory: {record_dir} {what}")
    if not event or event != Path(event).name or event.startswith("."):
        raise StoreError(f"{event!r} is not an event id")
    event_dir = record_dir / event
    if not event_dir.is_dir():
        events = sorted(p.name for p in record_dir.iterdir() if _renditions_of(p))
        known = ", ".join(events) or "none"
        raise StoreError(f"no recorded event {event!r} in {record_dir} (recorded: {known})")
    return event_dir


def _renditions_of(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if (p / JOURNAL).is_file())


def read_tracks(event_dir: Path) -> list[TrackRecording]:
    """Every rendition recorded in ``event_dir``: its journal, what its init segment declares,
    and which of its segment files are not on disk as journaled."""
    found = _renditions_of(event_dir)
    if not found:
        raise StoreError(f"{event_dir} holds no recorded rendition (no {JOURNAL})")
    try:
        return [_read_track(directory) for directory in found]
    except OSError as exc:
        raise StoreError(f"cannot read the recording in {event_dir}: {exc}") from exc


def _read_track(directory: Path) -> TrackRecording:
    text = (directory / JOURNAL).read_text(encoding="utf-8", errors="replace")
    try:
        replayed = journal.replay(text)
    except StoreError as exc:
        raise StoreError(f"{directory / JOURNAL}: {exc}") from exc
    inits = {name for name in replayed.inits if (directory / name).is_file()}
    kind, width, height = "", 0, 0
    for name in reversed(replayed.inits):  # the newest init says what the rendition is
        if name in inits:
            try:
                info = parse_init((directory / name).read_bytes())
            except MediaError as exc:
                raise StoreError(f"{directory / name} is not a usable init segment: {exc}") from exc
            kind, width, height = info.kind, info.width, info.height
            break
    missing = frozenset(
        s.msn
        for s in replayed.segments
        if s.complete and not s.gap and not _on_disk(directory, s, inits)
    )
    return TrackRecording(
        name=directory.name,
        kind=kind,
        segments=tuple(replayed.segments),
        missing=missing,
        width=width,
        height=height,
    )


def _on_disk(directory: Path, segment: journal.RecordedSegment, inits: set[str]) -> bool:
    if segment.init_name not in inits:
        return False
    try:
        return (directory / segment_name(segment.msn)).stat().st_size == segment.size
    except OSError:
        return False


# ---------------------------------------------------------------------------- writing


def _remux(ffmpeg: str, event_dir: Path, plan: ExportPlan, kinds: list[str], out: Path) -> None:
    temporary = _temporary_next_to(out)
    try:
        with tempfile.TemporaryDirectory(prefix="livecast-export-") as lists:
            argv = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
            for track in range(len(plan.renditions)):
                listed = Path(lists) / f"{track}.ffconcat"
                listed.write_text(ffconcat(plan, track), encoding="utf-8")
                argv += ["-f", "concat", "-safe", "0", "-protocol_whitelist", "file,concat"]
                argv += ["-i", str(listed)]
            for track, kind in enumerate(kinds):
                argv += ["-map", f"{track}:{'v' if kind == VIDEO else 'a'}:0"]
            argv += ["-c", "copy", "-movflags", "+faststart", "-f", "mp4", str(temporary)]
            _run(argv, event_dir)
        os.replace(temporary, out)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


def _temporary_next_to(out: Path) -> Path:
    """An empty file beside ``out`` (same file system: the final rename is atomic)."""
    if out.is_dir():
        raise StoreError(f"cannot write {out}: it is a directory")
    parent = out.absolute().parent
    if not parent.is_dir():
        what = "is not a directory" if parent.exists() else "does not exist"
        raise StoreError(f"cannot write {out}: {parent} {what}")
    temporary = parent / f".{out.name}.{secrets.token_hex(4)}.part"
    try:
        os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666))
    except OSError as exc:
        raise StoreError(f"cannot write {out}: {exc.strerror or exc}") from exc
    return temporary


def _run(argv: list[str], cwd: Path) -> None:
    try:
        done = subprocess.run(
            argv, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, check=False
        )
    except OSError as exc:
        raise TranscodeError(f"cannot run {argv[0]}: {exc}") from exc
    if done.returncode != 0:
        lines = done.stderr.decode(errors="replace").strip().splitlines()
        tail = lines[-1] if lines else f"exit code {done.returncode}"
        raise TranscodeError(f"ffmpeg could not remux the recording: {tail}")
