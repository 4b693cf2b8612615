"""Run the transcoding FFmpeg, stream its pipes into the event loop, restart it (adapter).

:class:`TranscodeSupervisor` creates one ``os.pipe`` per rendition, starts FFmpeg with the write
ends in ``pass_fds`` (argv from ``make_argv(fds, epoch)``, e.g. a ``functools.partial`` of
:func:`livecast.transcode.ladder.build_argv`), and reads every pipe with ``loop.add_reader``,
handing each chunk to ``on_data(rendition, generation, data)`` as it arrives. Chunks are raw bytes:
box boundaries are the packager's business.

When FFmpeg exits unexpectedly the supervisor logs one line on ``livecast.transcode`` and starts a
new process after a capped exponential backoff (reset after a stable run). Each process is a new
*generation* (0, 1, …) with a new *epoch* — the wall-clock time of its pts 0 — passed to
``on_restart(generation, epoch)`` before any of its data (``on_start`` is the same for every
generation, 0 included: wire a packager's ``start_generation`` to it). Every chunk of the old
generation is delivered before the callbacks; if spawning then fails they run again, with a new
epoch, for the retry.

No orphaned FFmpeg: :meth:`stop` sends SIGTERM, then SIGKILL after a grace period, and reaps it; use
the supervisor as an ``async with`` block (or ``try/finally``) so SIGINT's ``KeyboardInterrupt``
/ task cancellation runs it. If Python dies without stopping it, the child has
``PR_SET_PDEATHSIG=SIGKILL`` (Linux) and an ``atexit`` hook kills any FFmpeg still running.
Note: the death signal follows the *thread* that started the process, i.e. the event loop's.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import ctypes.util
import fcntl
import logging
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from types import TracebackType

from livecast.errors import TranscodeError

__all__ = ["Backoff", "MakeArgv", "OnData", "OnRestart", "TranscodeSupervisor", "describe_exit"]

log = logging.getLogger("livecast.transcode")

OnData = Callable[[str, int, bytes], None]
OnRestart = Callable[[int, float], None]
MakeArgv = Callable[[dict[str, int], float], list[str]]

READ_SIZE = 256 * 1024
PIPE_SIZE = 1024 * 1024  # slack for an event loop that stalls for a moment
DRAIN_TIMEOUT = 2.0
_PR_SET_PDEATHSIG = 1

# ------------------------------------------------------------------ pure policy


def describe_exit(code: int | None) -> str:
    """``"code -9 (killed by SIGKILL)"`` / ``"code 1"`` / ``"unknown code"``."""
    if code is None:
        return "unknown code"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"code {code} (killed by {name})"
    return f"code {code}"


@dataclass
class Backoff:
    """Capped exponential restart delay: initial, ×2 each quick failure, back to initial after a
    run of at least ``stable_after`` seconds."""

    initial: float = 0.5
    maximum: float = 10.0
    stable_after: float = 30.0
    _next: float = field(default=-1.0, repr=False)

    def next_delay(self, run_seconds: float) -> float:
        if self._next < 0 or run_seconds >= self.stable_after:
            self._next = self.initial
        delay = self._next
        self._next = min(self.maximum, delay * 2)
        return delay


def _stderr_tail(lines: Sequence[str], count: int = 3, limit: int = 300) -> str:
    tail = " | ".join(line.strip() for line in list(lines)[-count:] if line.strip())
    if not tail:
        return ""
    return f"; stderr: {tail[:limit]}"


# ------------------------------------------------------------------ process hygiene

_LIVE_PIDS: set[int] = set()


def _kill_leftovers() -> None:  # atexit: never leave an FFmpeg behind
    for pid in list(_LIVE_PIDS):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


atexit.register(_kill_leftovers)


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None
    prctl: Callable[..., int] = libc.prctl
    return prctl


_PRCTL = _load_prctl()


def _child_setup(parent_pid: int) -> Callable[[], None]:
    """preexec_fn: die with the parent (Linux). Exit at once if the parent is already gone."""

    def setup() -> None:
        if _PRCTL is not None:
            _PRCTL(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent_pid:
            os._exit(1)

    return setup


def _make_pipe() -> tuple[int, int]:
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    with contextlib.suppress(OSError, AttributeError):
        fcntl.fcntl(read_fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    return read_fd, write_fd


# ------------------------------------------------------------------ one process


@dataclass
class _Run:
    generation: int
    epoch: float
    started: float
    proc: asyncio.subprocess.Process
    read_fds: dict[str, int]
    all_eof: asyncio.Event = field(default_factory=asyncio.Event)
    stderr_task: asyncio.Task[None] | None = None


class TranscodeSupervisor:
    """Keeps one FFmpeg process running and streams its per-rendition pipes (see module doc)."""

    def __init__(
        self,
        make_argv: MakeArgv,
        renditions: Sequence[str],
        on_data: OnData,
        on_restart: OnRestart | None = None,
        *,
        on_start: OnRestart | None = None,
        backoff: Backoff | None = None,
        stop_grace: float = 3.0,
        restart_on_clean_exit: bool = False,
        max_restarts: int | None = None,
        stderr_lines: int = 50,
        clock: Callable[[], float] = time.time,
        input_pipe: bool = False,
    ) -> None:
        if not renditions or len(set(renditions)) != len(renditions):
            raise TranscodeError(f"renditions must be distinct and non-empty: {renditions!r}")
        self._make_argv = make_argv
        self._renditions = tuple(renditions)
        self._on_data = on_data
        self._on_restart = on_restart
        self._on_start = on_start
        self._backoff = backoff or Backoff()
        self._stop_grace = stop_grace
        self._restart_on_clean_exit = restart_on_clean_exit
        self._max_restarts = max_restarts
        self._clock = clock
        self._input_pipe = input_pipe
        self._stderr: deque[str] = deque(maxlen=stderr_lines)
        self._run: _Run | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._restarts = 0
        self._returncode: int | None = None

    # -------------------------------------------------------------- public surface

    @property
    def pid(self) -> int | None:
        """The running FFmpeg's pid, or None between processes / when stopped."""
        run = self._run
        return run.proc.pid if run is not None and run.proc.returncode is None else None

    @property
    def generation(self) -> int:
        return self._run.generation if self._run is not None else -1

    @property
    def epoch(self) -> float:
        """Wall-clock time (Unix seconds) of the current process's pts 0."""
        if self._run is None:
            raise TranscodeError("the supervisor has not started")
        return self._run.epoch

    @property
    def restarts(self) -> int:
        return self._restarts

    @property
    def returncode(self) -> int | None:
        """The last process's exit code once one has exited."""
        return self._returncode

    @property
    def stderr_tail(self) -> list[str]:
        """The last lines the current (or last) FFmpeg wrote to stderr."""
        return list(self._stderr)

    async def start(self) -> None:
        """Start generation 0; raises :class:`TranscodeError` if FFmpeg cannot be started."""
        if self._task is not None:
            raise TranscodeError("the supervisor was already started")
        self._run = await self._spawn(0)
        self._task = asyncio.create_task(self._supervise(), name="ffmpeg-supervisor")

    async def stop(self) -> None:
        """Stop FFmpeg (SIGTERM, SIGKILL after the grace period), deliver its last bytes, close."""
        self._stopping.set()
        if self._run is not None:
            await self._terminate(self._run.proc)
        if self._task is not None:
            await asyncio.wait([self._task])  # it terminates a process it was just starting
        if self._run is not None:
            await self._finish_run(self._run)

    async def wait(self) -> int | None:
        """Wait until the supervisor gives up or is stopped; the last exit code."""
        if self._task is not None:
            await asyncio.wait([self._task])
        return self._returncode

    def restart(self, reason: str) -> None:
        """The running FFmpeg's output is unusable (``reason``): kill it; the supervisor starts
        the next generation after its backoff, as after any exit."""
        run = self._run
        if run is None or run.proc.returncode is not None or self._stopping.is_set():
            return
        log.warning("killing ffmpeg (pid %d) to restart it: %s", run.proc.pid, reason)
        with contextlib.suppress(ProcessLookupError):
            run.proc.kill()

    def write_input(self, data: bytes, *, limit: int) -> bool:
        """Write to the running FFmpeg's standard input (``input_pipe=True``): False, and nothing
        written, if there is no process reading it or ``limit`` bytes already wait unwritten
        (FFmpeg is not keeping up; the caller decides what to drop)."""
        run = self._run
        if run is None or run.proc.returncode is not None:
            return False
        stdin = run.proc.stdin
        if stdin is None or stdin.is_closing():
            return False
        if stdin.transport.get_write_buffer_size() + len(data) > limit:
            return False
        stdin.write(data)
        return True

    def close_input(self) -> None:
        """End of input: FFmpeg encodes what it has and exits (code 0)."""
        run = self._run
        if run is not None and run.proc.stdin is not None and not run.proc.stdin.is_closing():
            run.proc.stdin.close()

    async def __aenter__(self) -> TranscodeSupervisor:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -------------------------------------------------------------- spawning

    async def _spawn(self, generation: int) -> _Run:
        self._stderr.clear()  # the exit message quotes this process only
        pipes = {name: _make_pipe() for name in self._renditions}
        write_fds = {name: w for name, (_, w) in pipes.items()}
        read_fds = {name: r for name, (r, _) in pipes.items()}
        epoch = self._clock()
        try:
            argv = self._make_argv(dict(write_fds), epoch)
            if self._on_start is not None:
                self._on_start(generation, epoch)
            if generation > 0 and self._on_restart is not None:
                self._on_restart(generation, epoch)
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE if self._input_pipe else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                pass_fds=tuple(write_fds.values()),
                start_new_session=False,
                preexec_fn=_child_setup(os.getpid()),
            )
        except OSError as exc:
            _close_all(read_fds.values())
            raise TranscodeError(f"cannot start ffmpeg: {exc}") from exc
        except BaseException:
            _close_all(read_fds.values())
            raise
        finally:
            _close_all(write_fds.values())
        _LIVE_PIDS.add(proc.pid)
        run = _Run(generation, epoch, time.monotonic(), proc, read_fds)
        self._attach(run)
        return run

    def _attach(self, run: _Run) -> None:
        loop = asyncio.get_running_loop()
        for name, fd in run.read_fds.items():
            loop.add_reader(fd, self._on_readable, run, name, fd)
        if run.proc.stderr is not None:
            run.stderr_task = asyncio.create_task(self._read_stderr(run.proc.stderr))

    def _on_readable(self, run: _Run, name: str, fd: int) -> None:
        try:
            data = os.read(fd, READ_SIZE)
        except BlockingIOError:
            return
        except OSError as exc:
            log.warning("reading the %s pipe failed: %s", name, exc)
            data = b""
        if not data:
            self._close_reader(run, name)
            return
        try:
            self._on_data(name, run.generation, data)
        except Exception:
            log.exception("on_data(%r, %d, <%d bytes>) raised", name, run.generation, len(data))

    def _close_reader(self, run: _Run, name: str) -> None:
        fd = run.read_fds.pop(name, None)
        if fd is not None:
            asyncio.get_running_loop().remove_reader(fd)
            _close_all((fd,))
        if not run.read_fds:
            run.all_eof.set()

    async def _read_stderr(self, stream: asyncio.StreamReader) -> None:
        pending = b""
        while chunk := await stream.read(4096):
            *lines, pending = (pending + chunk).split(b"\n")
            self._stderr.extend(line.decode(errors="replace") for line in lines if line.strip())
            pending = pending[-4096:]
        if pending.strip():
            self._stderr.append(pending.decode(errors="replace"))

    # -------------------------------------------------------------- supervising

    async def _supervise(self) -> None:
        try:
            await self._supervise_loop()
        except Exception:
            log.exception("the ffmpeg supervisor failed; stopping ffmpeg")
            if self._run is not None:
                await self._terminate(self._run.proc)
                await self._finish_run(self._run)

    async def _supervise_loop(self) -> None:
        while (run := self._run) is not None:
            if self._stopping.is_set():
                await self._terminate(run.proc)
            code = await run.proc.wait()
            await self._finish_run(run)
            if self._stopping.is_set():
                return
            delay = self._restart_delay(code, run)
            if delay is None:
                return
            new_run = await self._restart(run.generation + 1, delay)
            if new_run is None:
                return
            self._run = new_run

    async def _finish_run(self, run: _Run) -> None:
        """After exit: reap, deliver what is left in the pipes, close them."""
        code = await run.proc.wait()
        _LIVE_PIDS.discard(run.proc.pid)
        self._returncode = code
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(run.all_eof.wait(), DRAIN_TIMEOUT)
        for name in list(run.read_fds):
            self._close_reader(run, name)
        if run.stderr_task is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(run.stderr_task, DRAIN_TIMEOUT)

    def _restart_delay(self, code: int, run: _Run) -> float | None:
        """Log the exit (one line); the backoff before the restart, or None for no restart."""
        ran = time.monotonic() - run.started
        if code == 0 and not self._restart_on_clean_exit:
            log.info("ffmpeg finished (exit code 0) after %.1f s", ran)
            return None
        if self._max_restarts == 0:  # a one-shot run: its owner reports the exit
            log.debug("ffmpeg exited with %s after %.1f s", describe_exit(code), ran)
            return None
        if self._max_restarts is not None and self._restarts >= self._max_restarts:
            log.error(
                "ffmpeg exited with %s after %.1f s; giving up after %d restarts%s",
                describe_exit(code), ran, self._restarts, _stderr_tail(self._stderr),
            )  # fmt: skip
            return None
        delay = self._backoff.next_delay(ran)
        self._restarts += 1
        log.warning(
            "ffmpeg exited with %s after %.1f s; restarting in %.1f s (restart %d)%s",
            describe_exit(code), ran, delay, self._restarts, _stderr_tail(self._stderr),
        )  # fmt: skip
        return delay

    async def _restart(self, generation: int, delay: float) -> _Run | None:
        """Sleep the backoff, then spawn the next generation; retry spawning until stopped."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            if self._stopping.is_set():
                return None
            try:
                return await self._spawn(generation)
            except TranscodeError as exc:
                delay = self._backoff.next_delay(0.0)
                log.error("%s; retrying in %.1f s", exc, delay)

    async def _terminate(self, proc: asyncio.subprocess.Process) -> None:
        if proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), self._stop_grace)
        except TimeoutError:
            log.warning("ffmpeg ignored SIGTERM for %.1f s; killing it", self._stop_grace)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()


def _close_all(fds: Iterable[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)
