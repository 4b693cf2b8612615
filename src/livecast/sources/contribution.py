"""A contribution encoder (OBS, FFmpeg, a hardware encoder) as the pipeline's source (adapter).

The ingest server (RTMP now) checks the stream key and then hands every media message of the
accepted publisher to :class:`ContributionSource` (the ingest's ``PublishSink``). The pure
:class:`~livecast.ingest.relay.FlvRelay` turns them into FLV that starts at a keyframe; each such
start is a new *run*: one ladder FFmpeg (the same transcode as the test source's, see
:func:`contribution_spec`) reading that FLV on its standard input, fed as the messages arrive —
so the contribution paces the ladder, no ``-re``. Each run is a new generation for the
:class:`~livecast.hub.publisher.Publisher` (the packager continues after a discontinuity).

When the publisher leaves, the run's input is closed: FFmpeg encodes what it has and exits. When
the pipeline finds the media unusable (:meth:`ContributionSource.restart`), or FFmpeg dies, or
FFmpeg cannot keep up with its input (more than ``input_limit`` bytes unwritten), the run ends and
the next keyframe starts the next one. A run that fails quickly (an undecodable codec) delays the
next by a capped exponential backoff, so a broken encoder does not fork FFmpeg at its frame rate.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from livecast.hub.source import OnData, OnStart
from livecast.ingest.relay import FlvRelay, MediaLike, RelayOutput
from livecast.transcode.ladder import Ladder, build_argv
from livecast.transcode.source_spec import AUDIO_LABEL, VIDEO_LABEL, SourceSpec
from livecast.transcode.supervisor import Backoff, TranscodeSupervisor, describe_exit

__all__ = ["ContributionSource", "ContributionStats", "contribution_spec"]

log = logging.getLogger("livecast.ingest")

INPUT_LIMIT = 8 * 1024 * 1024  # FLV bytes waiting for FFmpeg before the run is given up
QUICK_FAILURE = 3.0  # a run that ends sooner than this (not by its publisher) backs off


def contribution_spec(ladder: Ladder, *, has_audio: bool) -> SourceSpec:
    """FLV on standard input → ``[v]`` at the ladder's frame rate and top-rung size (letterboxed:
    any encoder resolution, frame rate or aspect ratio) and ``[a]`` at the ladder's sample rate
    (silence when the contribution has no audio)."""
    top = ladder.rungs[0]
    w, h = top.width, top.height
    flv = ("-fflags", "+nobuffer", "-probesize", "65536", "-analyzeduration", "500000")
    input_args: tuple[str, ...] = (*flv, "-f", "flv", "-i", "pipe:0")
    video = (
        f"[0:v]fps={ladder.fps},scale={w}:{h}:force_original_aspect_ratio=decrease,"
        f"pad={w}:{h}:(ow-iw)/2:(oh-ih)/2,format=yuv420p,setsar=1[{VIDEO_LABEL}]"
    )
    layout = "stereo" if ladder.audio_channels == 2 else "mono"
    audio_format = f"aformat=sample_rates={ladder.audio_rate}:channel_layouts={layout}"
    if has_audio:
        audio = (
            f"[0:a]aresample={ladder.audio_rate}:async=1:first_pts=0,{audio_format}[{AUDIO_LABEL}]"
        )
    else:
        silence = f"anullsrc=r={ladder.audio_rate}:cl={layout}"
        input_args += ("-re", "-readrate_initial_burst", "0.001", "-f", "lavfi", "-i", silence)
        audio = f"[1:a]{audio_format}[{AUDIO_LABEL}]"
    return SourceSpec(
        input_args=input_args,
        filtergraph=f"{video};{audio}",
        description="contribution (FLV on stdin)" + ("" if has_audio else " + silence"),
    )


@dataclass
class ContributionStats:
    runs: int = 0
    input_overflows: int = 0  # runs given up because FFmpeg did not keep up with its input
    bytes_dropped: int = 0
    quick_failures: int = 0


@dataclass(eq=False)
class _Run:
    generation: int
    supervisor: TranscodeSupervisor
    started: float
    pending: list[bytes] = field(default_factory=list)  # written once FFmpeg has started
    ready: bool = False
    ended_by_publisher: bool = False


class ContributionSource:
    """The :class:`~livecast.hub.source.Source` seam for a publishing encoder; also the
    ingest server's sink for the accepted publisher (``on_media``, ``on_end``)."""

    def __init__(
        self,
        ladder: Ladder,
        ffmpeg: str,
        on_data: OnData,
        *,
        on_start: OnStart,
        input_limit: int = INPUT_LIMIT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ladder = ladder
        self.ffmpeg = ffmpeg
        self._on_data = on_data
        self._on_start = on_start
        self._input_limit = input_limit
        self._clock = clock
        self.relay = FlvRelay()
        self.stats = ContributionStats()
        self._run: _Run | None = None
        self._generation = -1
        self._stopped = asyncio.Event()
        self._backoff = Backoff(initial=1.0, maximum=10.0, stable_after=QUICK_FAILURE)
        self._not_before = 0.0
        self._tasks: set[asyncio.Task[None]] = set()
        self._live_runs: set[_Run] = set()  # runs whose FFmpeg may still be running
        self._last_stderr: list[str] = []

    # -------------------------------------------------------------- the Source seam
    async def start(self) -> None:
        """Nothing to start: runs begin when a publisher's first keyframe arrives."""

    async def stop(self) -> None:
        self._stopped.set()
        self._run = None
        for run in list(self._live_runs):
            run.supervisor.close_input()
            self._spawn(run.supervisor.stop())
        # every run's FFmpeg is stopped and reaped by the tasks: wait for them, cancel stragglers
        _, late = await asyncio.wait(set(self._tasks), timeout=10.0) if self._tasks else ((), ())
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)

    async def wait(self) -> int | None:
        """A contribution source never gives up on its own: until :meth:`stop`."""
        await self._stopped.wait()
        return 0

    def restart(self, reason: str) -> None:
        run = self._run
        if run is None:
            return
        log.warning("ending transcode run %d: %s; the next keyframe starts a new one",
                    run.generation, reason)  # fmt: skip
        self._end_run(run)

    @property
    def pid(self) -> int | None:
        return self._run.supervisor.pid if self._run is not None else None

    @property
    def stderr_tail(self) -> list[str]:
        return self._run.supervisor.stderr_tail if self._run is not None else self._last_stderr

    # -------------------------------------------------------------- the ingest sink
    def on_media(self, message: MediaLike) -> None:
        if self._stopped.is_set():
            return
        output = self.relay.feed(message)
        if output is None:
            return
        if output.jump_ms:
            log.warning("the encoder's timestamps jumped by %+d ms; re-based", output.jump_ms)
        if output.run_start:
            self._start_run(output)
        elif self._run is not None:
            self._write(self._run, output.data)

    def on_end(self, reason: str) -> None:
        """The publisher left: the run encodes what it has and ends; the next publisher's first
        keyframe starts the next run."""
        self.relay.restart()
        run, self._run = self._run, None
        if run is not None:
            log.info("publisher gone (%s): ending transcode run %d", reason, run.generation)
            run.ended_by_publisher = True
            if run.ready:
                run.supervisor.close_input()
            else:
                run.pending.append(b"")  # close once started

    # -------------------------------------------------------------- runs
    def _start_run(self, output: RelayOutput) -> None:
        now = self._clock()
        if now < self._not_before:
            self.relay.restart()  # still backing off: wait for a later keyframe
            return
        if self._run is not None:
            self._retire(self._run)  # the relay has just opened the next run: keep it
        self._generation += 1
        generation = self._generation
        spec = contribution_spec(self.ladder, has_audio=output.has_audio)

        def make_argv(fds: dict[str, int], epoch: float) -> list[str]:
            return build_argv(self.ffmpeg, spec, self.ladder, fds)

        supervisor = TranscodeSupervisor(
            make_argv,
            self.ladder.renditions,
            lambda rendition, _g, data: self._on_data(rendition, generation, data),
            on_start=lambda _g, epoch: self._on_start(generation, epoch),
            max_restarts=0,
            input_pipe=True,
        )
        run = _Run(generation, supervisor, now, pending=[output.data])
        self._run = run
        self._live_runs.add(run)
        self.stats.runs += 1
        log.info("keyframe from the encoder: transcode run %d starts (%s)",
                 generation, spec.description)  # fmt: skip
        self._spawn(self._launch(run))

    async def _launch(self, run: _Run) -> None:
        try:
            await self._supervise_run(run)
        finally:
            self._live_runs.discard(run)

    async def _supervise_run(self, run: _Run) -> None:
        try:
            await run.supervisor.start()
        except Exception as exc:  # TranscodeError: FFmpeg missing or not startable
            log.error("transcode run %d could not start: %s", run.generation, exc)
            self._after_run(run, quick=True)
            return
        run.ready = True
        for chunk in run.pending:
            if chunk:
                self._write(run, chunk)
            else:
                run.supervisor.close_input()
        run.pending.clear()
        code = await run.supervisor.wait()
        self._last_stderr = run.supervisor.stderr_tail
        if not run.ended_by_publisher and not self._stopped.is_set():
            tail = " | ".join(self._last_stderr[-2:])
            log.error(
                "transcode run %d ended with %s while the encoder publishes%s",
                run.generation, describe_exit(code), f"; {tail}" if tail else "",
            )  # fmt: skip
            self._after_run(run, quick=self._clock() - run.started < QUICK_FAILURE)

    def _after_run(self, run: _Run, *, quick: bool) -> None:
        if self._run is run:
            self._run = None
            self.relay.restart()
        if quick:
            self.stats.quick_failures += 1
            self._not_before = self._clock() + self._backoff.next_delay(0.0)

    def _write(self, run: _Run, data: bytes) -> None:
        if not run.ready:
            run.pending.append(data)
            if sum(len(c) for c in run.pending) > self._input_limit:
                self._overflow(run, data)
            return
        if not run.supervisor.write_input(data, limit=self._input_limit):
            self._overflow(run, data)

    def _overflow(self, run: _Run, data: bytes) -> None:
        self.stats.input_overflows += 1
        self.stats.bytes_dropped += len(data)
        log.error("the transcoder does not keep up with the encoder (over %d KB waiting): "
                  "ending run %d", self._input_limit // 1024, run.generation)  # fmt: skip
        self._end_run(run)

    def _end_run(self, run: _Run) -> None:
        """Stop a run for good; the relay waits for the next keyframe to start the next."""
        self.relay.restart()
        self._retire(run)

    def _retire(self, run: _Run) -> None:
        """Stop a run's FFmpeg (its remaining output still reaches the packager)."""
        if self._run is run:
            self._run = None
        run.ended_by_publisher = True  # not a failure to report again
        self._spawn(run.supervisor.stop())

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
