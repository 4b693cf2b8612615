"""The encoders of a contribution-fed rehearsal (``[target] source = "rtmp"``): real FFmpeg
processes publishing a live test pattern over RTMP to the stack, as OBS would.

One publisher feeds the primary input; with ``publishers = 2`` a second one, which looks and
sounds different (``testsrc`` and 880 Hz instead of ``testsrc2`` and 440 Hz), feeds the backup.
Their stream keys are random, made per rehearsal, given to the stack through the environment
(``$LIVECAST_STREAM_KEY``, ``$LIVECAST_BACKUP_KEY``) and never printed: a log tail shown in an
error has them replaced by ``<key>``.

Each publisher is a process-fault target (``publisher``, ``backup_publisher``): ``pause`` stops it
with SIGSTOP (its connection stays open and silent, a stalled link), ``kill`` terminates it (the
encoder crashed: its connection closes) and the fault's end starts a new one with the same key.
Publishers run until the rehearsal closes them; every process is reaped, and each one dies with
the rehearsal even if that is killed (``die_with_parent``).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin

from livecast.edge.nginx import die_with_parent
from livecast.edge.origins import MULTIVARIANT
from livecast.errors import LivecastError, PlaylistError
from livecast.hls.playlist import parse_multivariant_playlist
from livecast.ingest.settings import BACKUP_KEY_ENV, KEY_ENV
from livecast.rehearse.faults.processes import Processes
from livecast.results.report_ingest import accepted_publishes, on_air_input
from livecast.scenario.file import PUBLISHER_NAMES, StackSpec

WIDTH, HEIGHT, FPS = 640, 360, 30  # cheap to encode; the ladder scales it to every rung
GOP_SECONDS = 2
ON_AIR_TIMEOUT = 60.0  # publishers started → every playlist answers 200 (the ladder's start)
STOP_TIMEOUT = 5.0  # SIGTERM → exit, before SIGKILL
POLL = 0.25
LOOKS = (("testsrc2", 440), ("testsrc", 880))  # (video pattern, tone Hz): primary, backup


def stream_keys(count: int) -> tuple[str, ...]:
    """``count`` random stream keys (URL-safe, 24 characters: valid RTMP keys)."""
    return tuple(secrets.token_urlsafe(18) for _ in range(count))


def key_env(keys: Sequence[str]) -> dict[str, str]:
    """The stack's environment for ``keys``: the primary's and, with two, the backup's."""
    return dict(zip((KEY_ENV, BACKUP_KEY_ENV), keys, strict=False))


def ingest_config(spec: StackSpec) -> list[str]:
    """The ``[ingest]`` table of the stack's event file (keys come from the environment)."""
    if not spec.contribution:
        return []
    return ["[ingest]", "rtmp_port = 0", f"switch_back_after = {spec.switch_back_after}"]


def publisher_argv(ffmpeg: str, url: str, index: int) -> list[str]:
    """A live FFmpeg encoder publishing an endless test pattern and tone to ``url`` (FLV over
    RTMP): x264 ultrafast/zerolatency, a keyframe every 2 s, AAC mono."""
    pattern, tone = LOOKS[index]
    return [
        ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error",
        "-re", "-f", "lavfi", "-i", f"{pattern}=size={WIDTH}x{HEIGHT}:rate={FPS}",
        "-re", "-f", "lavfi", "-i", f"sine=frequency={tone}:sample_rate=48000",
        "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency",
        "-g", str(GOP_SECONDS * FPS), "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", "64k", "-ac", "1",
        "-f", "flv", url,
    ]  # fmt: skip


@dataclass
class Publisher:
    """One FFmpeg encoder; :meth:`start` again replaces it (after reaping the previous one)."""

    name: str
    argv: list[str]
    log_path: Path
    process: asyncio.subprocess.Process | None = None
    starts: int = 0
    closed: bool = False
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def pid(self) -> int | None:
        """The running encoder's pid (None once it has exited)."""
        process = self.process
        return process.pid if process is not None and process.returncode is None else None

    async def start(self) -> None:
        """Start the encoder — or, after a ``kill`` fault, a new one in its place. Does
        nothing once closed."""
        async with self._lock:
            if self.closed:
                return
            await self._reap()
            with open(self.log_path, "ab") as log:
                self.process = await asyncio.create_subprocess_exec(
                    *self.argv,
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                    preexec_fn=die_with_parent,  # no encoder outlives a rehearsal killed mid-run
                )  # fmt: skip
            self.starts += 1

    async def close(self) -> None:
        """Stop the encoder for good and reap it."""
        async with self._lock:
            self.closed = True
            await self._reap()

    async def _reap(self) -> None:
        process = self.process
        if process is None:
            return
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGCONT)  # a paused encoder cannot act on SIGTERM
                process.terminate()
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
        await process.wait()


class Publishers:
    """The rehearsal's encoders: ``keys[0]`` feeds the primary input, ``keys[1]`` the backup."""

    def __init__(self, ffmpeg: str, rtmp_url: str, keys: Sequence[str], workdir: Path) -> None:
        self.keys = tuple(keys)
        self.items = [
            Publisher(name, publisher_argv(ffmpeg, f"{rtmp_url}/{key}", i), workdir / f"{name}.log")
            for i, (name, key) in enumerate(zip(PUBLISHER_NAMES, keys, strict=False))
        ]

    async def go_on_air(
        self, base_url: str, stack_log: Path, timeout: float = ON_AIR_TIMEOUT
    ) -> float:
        """Start the primary encoder and wait until its media plays at the stack, then the
        backup and wait until the stack has accepted it (in that order: whichever input
        delivers media first goes on air, and the show must start on the primary). The seconds
        it took; LivecastError if it does not happen (:func:`wait_on_air`)."""
        started = time.monotonic()
        for publisher in self.items:
            await publisher.start()
            await wait_on_air(base_url, self, stack_log, timeout)
        return time.monotonic() - started

    def register(self, processes: Processes) -> None:
        """Each encoder as a process-fault target: signals to its current pid, ``kill``'s end
        starts a new one."""
        for publisher in self.items:
            processes.register_pid(publisher.name, publisher.pid, restart=publisher.start)

    async def close(self) -> None:
        """Stop and reap every encoder (also one a fault's restart is starting right now)."""
        await asyncio.gather(*(publisher.close() for publisher in self.items))

    def restarts(self) -> dict[str, int]:
        return {p.name: max(0, p.starts - 1) for p in self.items}

    def log_tail(self, chars: int = 400) -> str:
        """The end of every encoder's log, with the stream keys replaced by ``<key>``."""
        tails = []
        for publisher in self.items:
            with contextlib.suppress(OSError):
                text = publisher.log_path.read_text(errors="replace")[-chars:].strip()
                if text:
                    tails.append(f"{publisher.name}: {text}")
        return self.scrub(" | ".join(tails))

    def scrub(self, text: str) -> str:
        for key in self.keys:
            text = text.replace(key, "<key>")
        return text

    def exited(self) -> Publisher | None:
        """An encoder that has exited on its own (it cannot reach the stack, a bad argv)."""
        return next(
            (p for p in self.items if p.process is not None and p.process.returncode is not None),
            None,
        )


def _status(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except OSError:
        return 0, ""


def on_air(base_url: str, publishers: int) -> bool:
    """Whether the multivariant playlist and every media playlist answer 200, the primary input
    is on air and the stack has accepted ``publishers`` encoders."""
    status, text = _status(base_url + MULTIVARIANT)
    if status != 200:
        return False
    try:
        variants = parse_multivariant_playlist(text)
    except PlaylistError:
        return False
    uris = [v.uri for v in variants.variants] + [m.uri for m in variants.media if m.uri]
    if any(_status(urljoin(base_url + MULTIVARIANT, uri))[0] != 200 for uri in uris):
        return False
    metrics_status, metrics = _status(f"{base_url}/metrics")
    if metrics_status != 200:
        return False
    return on_air_input(metrics) == "primary" and accepted_publishes(metrics) >= publishers


async def wait_on_air(
    base_url: str, publishers: Publishers, stack_log: Path, timeout: float = ON_AIR_TIMEOUT
) -> None:
    """Wait until the primary's media plays at the stack and every encoder started so far is
    accepted (:func:`on_air`). LivecastError, with the stack's and the encoders' log tails,
    when an encoder exits or that has not happened after ``timeout``."""
    started = time.monotonic()
    count = sum(1 for p in publishers.items if p.starts)
    while not await asyncio.to_thread(on_air, base_url, count):
        gone = publishers.exited()
        waited = time.monotonic() - started
        if gone is None and waited < timeout:
            await asyncio.sleep(POLL)
            continue
        why = (
            f"the encoder {gone.name!r} exited" if gone is not None
            else f"no primary on air and {count} encoder(s) accepted {timeout:g} s after start"
        )  # fmt: skip
        tail = stack_log.read_text(errors="replace")[-500:].strip() if stack_log.exists() else ""
        raise LivecastError(
            f"the contribution stack did not go on air: {why}; "
            f"stack log: {publishers.scrub(tail) or 'empty'}; "
            f"encoders: {publishers.log_tail() or 'no output'}"
        )
