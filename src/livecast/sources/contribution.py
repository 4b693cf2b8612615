"""Contribution encoders (OBS, FFmpeg, a hardware encoder) as the pipeline's source (adapter).

An event has one or two *inputs* (``primary``, optionally ``backup``: two encoders on two keys).
The ingest server (RTMP, SRT) checks the stream key and then hands every media message of the
accepted publisher to that input's :class:`ContributionInput` (the ingest's ``PublishSink``). The
pure :class:`~livecast.ingest.switch.InputSwitch` decides what is on air — an input, or the slate
(:class:`~livecast.sources.slate.SlateReplay`) after ``input_loss`` seconds without usable input —
and each input's pure :class:`~livecast.ingest.relay.FlvRelay` turns the on-air input's messages
into FLV that starts at a keyframe (the newest one cached, on a switch). Each such start is a new
*run*: one ladder FFmpeg (the same transcode as the test source's, see :func:`contribution_spec`)
reading that FLV on its standard input, fed as the messages arrive — so the contribution paces
the ladder, no ``-re``. Every run and every slate play is a new generation for the
:class:`~livecast.hub.publisher.Publisher` (the packager continues after a discontinuity).

A switch is made without a gap where it can be: the new run goes on air (``on_start``) only with
its first output, so the slate or the old input stays on air while the new FFmpeg starts. Program
date-time follows the wall clock: a run's epoch (the wall time of its first frame) is the least
``arrival − media time`` over the run's tags until it goes on air — the arrival of the freshest
frame, so a backlog delivered at once (the cached GOP, an SRT listener's first second) does not
make the media look younger than it is. At a switch or after a short loss, what goes on air
continues the PDT timeline instead (no hole: hls.js waited at one for good); the slate, paced
from the PDT where the programme stopped, releases the seconds of the gap at once and so brings
PDT back to the wall clock.

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

from livecast.errors import LivecastError
from livecast.hub.source import OnData, OnStart
from livecast.ingest.relay import FlvRelay, MediaLike, RelayOutput
from livecast.ingest.switch import SLATE, InputSwitch, Switch, SwitchPolicy
from livecast.sources.slate import SlateReplay
from livecast.transcode.ladder import Ladder, build_argv
from livecast.transcode.source_spec import AUDIO_LABEL, VIDEO_LABEL, SourceSpec
from livecast.transcode.supervisor import Backoff, TranscodeSupervisor, describe_exit

__all__ = ["ContributionInput", "ContributionSource", "ContributionStats", "contribution_spec"]

log = logging.getLogger("livecast.ingest")

INPUT_LIMIT = 8 * 1024 * 1024  # FLV bytes waiting for FFmpeg before the run is given up
QUICK_FAILURE = 3.0  # a run that ends sooner than this (not by its publisher) backs off
TICK = 0.25  # the switch is asked at least this often (and at its next_check)
CONTIGUOUS = 5.0  # seconds: what goes on air after a shorter gap continues the PDT timeline
OnSwitch = Callable[[Switch], None]
OnAired = Callable[[str, "float | None"], None]  # (input or slate, seconds without programme)


def contribution_spec(ladder: Ladder, *, has_audio: bool) -> SourceSpec:
    """FLV on standard input → ``[v]`` at the ladder's frame rate and top-rung size (letterboxed:
    any encoder resolution, frame rate or aspect ratio) and ``[a]`` at the ladder's sample rate
    (silence when the contribution has no audio)."""
    top = ladder.rungs[0]
    w, h = top.width, top.height
    # No probing: the relay opens every run with the FLV header's stream flags and the codec
    # sequence headers, which is all the FLV demuxer needs. Probing (0.5 s analyzeduration) cost
    # 2.1 s before the first frame, and with +nobuffer those seconds were skipped, so media time
    # 0 was no longer the keyframe's arrival: a 2 s error in PDT (benchmarks/bench_contribution.py).
    flv = ("-fflags", "+nobuffer", "-probesize", "32", "-analyzeduration", "0")
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


CLEAN_UNPUBLISH = "the publisher sent"  # how the RTMP server words FCUnpublish & co.


@dataclass(eq=False)
class _Run:
    generation: int
    input: str
    supervisor: TranscodeSupervisor
    started: float
    epoch: float  # wall-clock time of the run's first frame (the estimate, until on air)
    pending: list[bytes] = field(default_factory=list)  # written once FFmpeg has started
    ready: bool = False
    ended_by_publisher: bool = False


class ContributionInput:
    """One input's ``PublishSink``: what the ingest server hands an accepted publisher to."""

    def __init__(self, source: ContributionSource, name: str) -> None:
        self.source = source
        self.name = name

    def on_media(self, message: MediaLike) -> None:
        self.source.on_input_media(self.name, message)

    def on_end(self, reason: str) -> None:
        self.source.on_input_end(self.name, reason)

    def __repr__(self) -> str:
        return f"ContributionInput({self.name!r})"


class ContributionSource:
    """The :class:`~livecast.hub.source.Source` seam for publishing encoders (module doc)."""

    def __init__(
        self,
        ladder: Ladder,
        ffmpeg: str,
        on_data: OnData,
        *,
        on_start: OnStart,
        inputs: tuple[str, ...] = ("primary",),
        policy: SwitchPolicy | None = None,
        slate: SlateReplay | None = None,
        on_switch: OnSwitch | None = None,
        on_aired: OnAired | None = None,
        input_limit: int = INPUT_LIMIT,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        name: str = "main",
        on_unpublished: Callable[[], None] | None = None,
    ) -> None:
        self.name = name  # the event's stream id, in log lines
        # the end-of-event flag: called when the last publisher unpublishes cleanly (FCUnpublish,
        # deleteStream, closeStream — OBS's "Stop Streaming", FFmpeg at the end of its input);
        # the source then puts nothing more on air (no slate), only drains what it has
        self._on_unpublished = on_unpublished
        self._ending = False
        self.ladder = ladder
        self.ffmpeg = ffmpeg
        self._on_data = on_data
        self._on_start = on_start
        self._on_switch = on_switch
        self._on_aired = on_aired
        self._input_limit = input_limit
        self._clock = clock
        self._wall = wall
        self.switch = InputSwitch(inputs, policy or SwitchPolicy())
        self.inputs = {name: ContributionInput(self, name) for name in inputs}
        self.relays = {name: FlvRelay() for name in inputs}
        self.slate = slate
        self.stats = ContributionStats()
        self._run: _Run | None = None
        self._generation = -1
        self._aired = -1  # the generation on air (a run's or the slate's)
        self._aired_until = 0.0  # program date-time the media on air has reached
        self._stopped = asyncio.Event()
        self._backoff = Backoff(initial=1.0, maximum=10.0, stable_after=QUICK_FAILURE)
        self._not_before = 0.0
        self._tasks: set[asyncio.Task[None]] = set()
        self._live_runs: set[_Run] = set()  # runs whose FFmpeg may still be running
        self._last_stderr: list[str] = []
        self._ticker: asyncio.Task[None] | None = None
        self.aired: list[tuple[float, int, str]] = []  # (clock, generation, input or slate)

    @property
    def on_air(self) -> str | None:
        return self.switch.on_air

    # -------------------------------------------------------------- the Source seam
    async def start(self) -> None:
        """Prepare the slate (pre-encoded once, cached); runs begin with a publisher's first
        keyframe."""
        if self.slate is not None:
            try:
                await self.slate.prepare()
            except LivecastError as exc:
                log.error("no slate: %s; viewers will stall when the input is lost", exc)
        self._ticker = asyncio.create_task(self._tick(), name="contribution-switch")

    async def stop(self) -> None:
        self._stopped.set()
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.gather(self._ticker, return_exceptions=True)
        if self.slate is not None:
            await self.slate.close()
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
        if self.slate is not None and self._aired == self.slate.generation:
            log.error("the slate's media is unusable (%s): slate off air", reason)
            self.slate.stop()
            return
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

    # -------------------------------------------------------------- the ingest sinks
    def on_input_media(self, name: str, message: MediaLike) -> None:
        if self._stopped.is_set():
            return
        self.switch.on_media(name, self._clock())
        relay = self.relays[name]
        if name != self.switch.on_air:
            relay.watch(message)
            self._decide()  # fresh media may put this input on air (from its cached GOP)
            return
        output = relay.feed(message)
        if output is None:
            return
        if output.jump_ms:
            log.warning("%s: the encoder's timestamps jumped by %+d ms; re-based",
                        name, output.jump_ms)  # fmt: skip
        if output.run_start:
            self._start_run(name, output)
        elif self._run is not None and self._run.input == name:
            run = self._run
            self._write(run, output.data)
            media = output.timestamp_ms / 1000
            if run.generation == self._aired:  # the PDT the programme has reached
                self._aired_until = max(self._aired_until, run.epoch + media)
            else:  # not on air yet: the freshest arrival dates it
                run.epoch = min(run.epoch, self._wall() - media)

    def on_input_end(self, name: str, reason: str) -> None:
        """The input's publisher left: its run encodes what it has and ends; the switch puts
        the other input (at once) or the slate (after ``input_loss``) on air."""
        log.info("%s/%s: publisher gone (%s)", self.name, name, reason)
        old = self.relays[name]
        self.relays[name] = FlvRelay(stats=old.stats)  # the next publisher may differ
        self.switch.on_end(name, self._clock())
        run = self._run
        if run is not None and run.input == name:
            self._run = None
            run.ended_by_publisher = True
            if run.ready:
                run.supervisor.close_input()
            else:
                run.pending.append(b"")  # close once started
        if self._on_unpublished is not None and reason.startswith(CLEAN_UNPUBLISH):
            now = self._clock()
            if not any(self.switch.healthy(other, now) for other in self.inputs if other != name):
                log.info("%s: the publisher ended the event (%s)", self.name, reason)
                self._ending = True
                self._on_unpublished()
                return
        self._decide()

    async def drain(self, timeout: float) -> None:
        """Until every run's FFmpeg has encoded what it was given and exited (``timeout``)."""
        deadline = self._clock() + timeout
        while self._live_runs and self._clock() < deadline:
            await asyncio.sleep(0.05)

    # -------------------------------------------------------------- switching
    async def _tick(self) -> None:
        while True:
            self._decide()
            now = self._clock()
            due = self.switch.next_check(now)
            wait = TICK if due is None else min(TICK, max(0.01, due - now))
            await asyncio.sleep(wait)

    def _decide(self) -> None:
        if self._ending:
            return  # the publisher ended the event: nothing more goes on air
        change = self.switch.decide(self._clock())
        if change is None:
            return
        before = change.before or "nothing"
        level = logging.INFO if change.before is None else logging.WARNING
        log.log(level, "%s on air: %s → %s (%s)", self.name, before, change.after, change.reason)
        if self._on_switch is not None:
            self._on_switch(change)
        if change.before is not None and change.before != SLATE:
            self.relays[change.before].restart()  # watched from now on
        if change.after == SLATE:
            self._play_slate()
        else:  # at its newest keyframe, else its next one (relay.feed)
            self._start_from_cache(change.after)

    def _start_from_cache(self, name: str) -> None:
        output = self.relays[name].resume()
        if output is not None:
            self._start_run(name, output)

    def _play_slate(self) -> None:
        run, self._run = self._run, None
        if run is not None:
            self._retire(run)
        if self.slate is None or not self.slate.ready:
            log.error("no slate to put on air: viewers stall until an input returns")
            return
        self._generation += 1
        self._aired = self._generation
        self._record_air(self._generation, SLATE)
        self.slate.play(self._generation, self._contiguous(self._wall()))

    def _air(self, run: _Run) -> None:
        """The run's first output: it goes on air, replacing the slate or the previous run."""
        if self.slate is not None and self._aired == self.slate.generation:
            self._aired_until = max(self._aired_until, self.slate.aired_until())
            self.slate.stop()
        run.epoch = self._contiguous(run.epoch)
        self._aired = run.generation
        self._record_air(run.generation, run.input)
        self._on_start(run.generation, run.epoch)

    def _contiguous(self, epoch: float) -> float:
        """The epoch of what goes on air next: right after the program date-time already on
        air when that ended less than :data:`CONTIGUOUS` before (a switch, a short loss) — a
        hole in PDT at a discontinuity left hls.js waiting for media at the hole for good — else
        (a long silence without a slate) ``epoch`` itself."""
        if self._aired_until and epoch - self._aired_until <= CONTIGUOUS:
            return self._aired_until
        return epoch

    def _record_air(self, generation: int, name: str) -> None:
        """One more entry in :attr:`aired`; ``on_aired`` learns how long the programme was
        without new media when one input replaced another (the switch time viewers saw)."""
        now = self._clock()
        previous = self.aired[-1][2] if self.aired else SLATE
        last = None if previous == SLATE else self.switch.last_media(previous)
        gap = None if last is None or name == SLATE else now - last
        self.aired.append((now, generation, name))
        if self._on_aired is not None:
            self._on_aired(name, gap)

    def _run_output(self, generation: int, rendition: str, data: bytes) -> None:
        if generation != self._aired:
            run = self._run
            if run is None or run.generation != generation:
                return  # a run replaced before it went on air
            self._air(run)
        self._on_data(rendition, generation, data)

    # -------------------------------------------------------------- runs
    def _start_run(self, name: str, output: RelayOutput) -> None:
        now = self._clock()
        if now < self._not_before:
            self.relays[name].restart()  # still backing off: wait for a later keyframe
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
            lambda rendition, _g, data: self._run_output(generation, rendition, data),
            on_start=lambda _g, _epoch: None,  # on air with its first output (_air)
            max_restarts=0,
            input_pipe=True,
        )
        epoch = self._wall() - output.timestamp_ms / 1000
        run = _Run(generation, name, supervisor, now, epoch, [output.data])
        self._run = run
        self._live_runs.add(run)
        self.stats.runs += 1
        log.info("keyframe from %s/%s: transcode run %d starts (%s%s)", self.name, name, generation,
                 spec.description,
                 f", {output.backlog_ms} ms cached" if output.backlog_ms else "")  # fmt: skip
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
            delay = self._after_run(run, quick=self._clock() - run.started < QUICK_FAILURE)
            tail = " | ".join(self._last_stderr[-3:])
            log.error(
                "%s/%s: transcode run %d ended with %s while the encoder publishes%s; %s",
                self.name, run.input, run.generation, describe_exit(code),
                f" ({tail})" if tail else "",
                f"the next keyframe after {delay:.1f} s starts another" if delay
                else "the next keyframe starts another",
            )  # fmt: skip

    def _after_run(self, run: _Run, *, quick: bool) -> float:
        """Forget a failed run; the backoff before the next one (0 after a run that lasted)."""
        if self._run is run:
            self._run = None
            self.relays[run.input].restart()
        if not quick:
            return 0.0
        self.stats.quick_failures += 1
        delay = self._backoff.next_delay(0.0)
        self._not_before = self._clock() + delay
        return delay

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
        self.relays[run.input].restart()
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
