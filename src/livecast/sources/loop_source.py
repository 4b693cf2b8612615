"""The ``loop`` source: pre-encode the ladder once (cached), replay it as live (adapter).

Pre-encode: the ladder's own FFmpeg command (:func:`livecast.transcode.ladder.build_argv`) on the
test source, limited to the loop plus one part (``-t`` before each input) and *not* read in real
time (no ``-re``), so it runs as fast as the CPU allows. Each rendition's fMP4 goes to a file
instead of a pipe. The files land in ``<cache_dir>/<key>/`` where the key hashes the ladder, the
loop length, the font and FFmpeg's version line; they are written to a temporary directory that
is renamed into place once FFmpeg succeeded, so a directory under its final name is complete.
The overlay clock starts at 00:00:00.000 (epoch 0): on a looped stream it shows the position in
the loop, not the wall clock — PDT still follows the wall clock.

Replay: :class:`LoopSource` loads the files into :class:`~livecast.sources.loop.LoopTrack`\\ s and
hands the bytes to ``on_data(rendition, 0, bytes)`` paced by the wall clock
(:class:`~livecast.sources.loop.ReplaySchedule`): first every init segment, right after
``on_start(0, epoch)``, then each fragment when it would be complete in a live encode. The epoch
is the clock at start, or the one given (``epoch``): then the replay begins with the segment
``history`` seconds before now (:func:`~livecast.sources.loop.start_segment`) and releases what is
due at once — redundant origins given the same epoch serve the same bytes under the same names
(docs/edge.md, "Several origins"). It implements
the :class:`~livecast.hub.source.Source` seam; it has no process to restart, so
:meth:`LoopSource.restart` (the cached media turned out unusable) ends the replay.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

from livecast.errors import ConfigError, LivecastError, TranscodeError
from livecast.sources.loop import (
    LoopTrack,
    ReplaySchedule,
    load_track,
    start_cursors,
    start_segment,
)
from livecast.sources.testsrc import test_source
from livecast.transcode.ladder import Ladder, build_argv
from livecast.transcode.source_spec import SourceSpec

__all__ = ["CACHE_FORMAT", "LoopSource", "default_cache_dir", "offline", "pre_encode"]

log = logging.getLogger("livecast.sources")

CACHE_FORMAT = 1  # bump when the cached layout or the pre-encode command changes meaning
MANIFEST = "manifest.json"
OnData = Callable[[str, int, bytes], None]
OnStart = Callable[[int, float], None]


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/livecast/loop``, else ``~/.cache/livecast/loop``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "livecast" / "loop"


def offline(spec: SourceSpec) -> SourceSpec:
    """The same inputs read as fast as possible: ``-re`` and its burst option removed."""
    args: list[str] = []
    skip = False
    for arg in spec.input_args:
        if skip:
            skip = False
        elif arg == "-readrate_initial_burst":
            skip = True
        elif arg != "-re":
            args.append(arg)
    return replace(spec, input_args=tuple(args))


def ffmpeg_version(ffmpeg: str) -> str:
    """FFmpeg's first ``-version`` line (part of the cache key)."""
    try:
        proc = subprocess.run(
            [ffmpeg, "-hide_banner", "-version"], capture_output=True, text=True, timeout=30
        )
    except OSError as exc:
        raise TranscodeError(f"cannot run {ffmpeg}: {exc}") from exc
    return (proc.stdout.splitlines() or ["unknown"])[0]


def cache_key(
    ladder: Ladder, loop: Fraction, font: str | None, version: str, label: str = "loop"
) -> str:
    parts: tuple[object, ...] = (CACHE_FORMAT, ladder, str(loop), font, version)
    text = repr(parts if label == "loop" else (*parts, label))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _complete(directory: Path, ladder: Ladder) -> bool:
    return (directory / MANIFEST).is_file() and all(
        (directory / f"{name}.mp4").is_file() for name in ladder.renditions
    )


async def _run_ffmpeg(argv: list[str], fds: tuple[int, ...]) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        pass_fds=fds,
    )
    try:
        _, err = await proc.communicate()
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise
    return proc.returncode or 0, err.decode(errors="replace")


SourceFor = Callable[[float], SourceSpec]  # seconds of input → what to pre-encode


async def pre_encode(
    ladder: Ladder,
    ffmpeg: str,
    font: str | None,
    loop: Fraction,
    root: Path,
    *,
    source_for: SourceFor | None = None,
    label: str = "loop",
) -> tuple[Path, bool]:
    """The cache directory holding one fMP4 file per rendition, and whether FFmpeg ran now.

    The input is the test source, or ``source_for(seconds)`` (the slate); ``label`` names what
    is encoded (part of the cache key: a slate and a loop of the same ladder differ)."""
    version = await asyncio.to_thread(ffmpeg_version, ffmpeg)
    final = root / cache_key(ladder, loop, font, version, label)
    if _complete(final, ladder):
        return final, False
    try:
        root.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".partial-", dir=root))
    except OSError as exc:
        raise ConfigError("cache_dir", f"cannot write to {root}: {exc.strerror or exc}") from exc
    try:
        seconds = float(loop) + ladder.part_duration  # slack: the last AAC frame, then clipped
        if source_for is None:
            source = offline(test_source(ladder, 0.0, font, duration=seconds))
        else:
            source = offline(source_for(seconds))
        files = {name: open(work / f"{name}.mp4", "wb") for name in ladder.renditions}  # noqa: SIM115
        try:
            fds = {name: f.fileno() for name, f in files.items()}
            argv = build_argv(ffmpeg, source, ladder, fds)
            started = time.monotonic()
            code, err = await _run_ffmpeg(argv, tuple(fds.values()))
        finally:
            for f in files.values():
                f.close()
        took = time.monotonic() - started
        if code != 0:
            tail = " | ".join(err.strip().splitlines()[-3:])
            raise TranscodeError(f"the {label} pre-encode failed (exit code {code}): {tail}")
        manifest = {
            "loop_seconds": float(loop),
            "encode_seconds": round(took, 3),
            "ffmpeg": version,
        }
        (work / MANIFEST).write_text(json.dumps(manifest) + "\n", encoding="utf-8")
        log.info("pre-encoded a %.1f s %s in %.1f s into %s", float(loop), label, took, final)
        try:
            os.rename(work, final)
        except OSError:
            if not _complete(final, ladder):  # not a concurrent run that finished first
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return final, True


def load_tracks(directory: Path, ladder: Ladder, loop: Fraction) -> tuple[LoopTrack, ...]:
    return tuple(
        load_track(name, (directory / f"{name}.mp4").read_bytes(), loop)
        for name in ladder.renditions
    )


class LoopSource:
    """Replays the cached loop as generation 0 of a live encode (see the module doc)."""

    def __init__(
        self,
        ladder: Ladder,
        ffmpeg: str,
        on_data: OnData,
        *,
        on_start: OnStart,
        loop_seconds: float,
        cache_dir: Path,
        font: str | None = None,
        clock: Callable[[], float] = time.time,
        epoch: float | None = None,
        history: float = 0.0,
    ) -> None:
        segments = round(loop_seconds / ladder.segment_duration)
        self.segment = Fraction(ladder.segment_frames, ladder.fps)
        self.loop = segments * self.segment
        self.ladder = ladder
        self.ffmpeg = ffmpeg
        self.font = font
        self.cache_dir = cache_dir
        self._on_data = on_data
        self._on_start = on_start
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self.directory: Path | None = None
        self.encoded = False  # True when start() ran FFmpeg, False when it reused the cache
        self.given_epoch = epoch or None  # None (or 0): the clock at start
        self.history = history  # seconds rebuilt at once when starting after the given epoch
        self.epoch = 0.0
        self.first_segment = 0  # media segment the replay began with (0: from the epoch on)
        self.schedule: ReplaySchedule | None = None
        self.broken: str | None = None  # why the replay stopped, if it did by itself

    @property
    def stderr_tail(self) -> list[str]:
        return []

    @property
    def pid(self) -> int | None:
        return None  # the replay runs in this process

    def restart(self, reason: str) -> None:
        """Replaying the same cached bytes again would fail the same way: stop, say why."""
        if self.broken is not None:
            return
        self.broken = reason
        log.error(
            "loop: the cached media is unusable (%s); the replay stops (remove %s to encode "
            "it again)",
            reason,
            self.directory,
        )
        if self._task is not None:
            self._task.cancel()

    async def start(self) -> None:
        if self._task is not None:
            raise LivecastError("the loop source was already started")
        self.directory, self.encoded = await pre_encode(
            self.ladder, self.ffmpeg, self.font, self.loop, self.cache_dir
        )
        if not self.encoded:
            log.info("loop: reusing the pre-encode in %s", self.directory)
        tracks = await asyncio.to_thread(load_tracks, self.directory, self.ladder, self.loop)
        now = self._clock()
        self.epoch = now if self.given_epoch is None else self.given_epoch
        self.first_segment = start_segment(now - self.epoch, float(self.segment), self.history)
        cursors = start_cursors(tracks, self.first_segment, self.segment)
        self.schedule = ReplaySchedule(tracks, cursors)
        if self.first_segment:
            log.info(
                "loop: epoch %.3f, %.1f s ago: starting with segment %d (media %.1f s)",
                self.epoch,
                now - self.epoch,
                self.first_segment,
                float(self.first_segment * self.segment),
            )
        self._on_start(0, self.epoch)
        for track in tracks:
            self._on_data(track.rendition, 0, track.init)
        self._release(self.schedule)  # what is already due (a late start), before start returns
        self._task = asyncio.create_task(self._replay(self.schedule), name="loop-replay")

    def _release(self, schedule: ReplaySchedule) -> None:
        for track, n in schedule.due(self._clock() - self.epoch):
            try:
                self._on_data(track.rendition, 0, track.render(n))
            except Exception:
                log.exception("on_data(%r, 0, fragment %d) raised", track.rendition, n)

    async def _replay(self, schedule: ReplaySchedule) -> None:
        while True:
            self._release(schedule)
            await asyncio.sleep(max(0.0, schedule.next_release() - (self._clock() - self.epoch)))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def wait(self) -> int | None:
        """Until stopped (0) or ended by :meth:`restart` (1); a loop never ends by itself."""
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait([self._task])
        return 0 if self.broken is None else 1
