"""SRT contribution through FFmpeg's libsrt (adapter).

An encoder (OBS: ``srt://HOST:9000?streamid=#!::r=live/EVENT,m=publish&passphrase=…``, FFmpeg:
``-f mpegts srt://…``) calls an :class:`SrtListener`: FFmpeg in SRT listener mode on the input's
port, which remuxes the encoder's MPEG-TS into FLV on its standard output — video copied, audio
encoded to AAC (FLV cannot carry Opus, which OBS may send over SRT). The FLV goes through the pure
:class:`~livecast.ingest.flv_demux.FlvDemux` and every tag reaches the input's ``PublishSink``
exactly as an RTMP publish's messages do, so the relay, the input switch and the ladder do not
care which protocol carried the show.

What SRT decides, measured with the imageio-ffmpeg wheel's FFmpeg (libsrt):

* The **passphrase is the key.** libsrt rejects a caller with another passphrase (or none) during
  the handshake, before any media: the listener logs ``Incorrect passphrase`` (one warning line
  here, without the passphrase) and keeps listening; the caller fails with an I/O error.
* **One publisher per port.** FFmpeg's listener accepts one connection; each input of each event
  has a port of its own (``srt_port``; the backup ``srt_port + 1``), so the port, not the stream
  id, says which event and input a caller feeds. FFmpeg's listener sees the caller's
  ``streamid`` (``#!::r=live/EVENT,m=publish``) only after accepting it (a verbose log line) and
  cannot refuse a caller by it, so it is accepted and not checked.
* When the caller goes, FFmpeg's input ends (``Input/output error``): the sink gets ``on_end``
  and a new listener starts at once. A listener that fails quickly without a caller (the port is
  taken) is started again after a capped backoff, with one log line each time.

The passphrase is on FFmpeg's command line (libsrt has no other way in), so local users can read
it in the process list; every line of FFmpeg's stderr is scrubbed of it before it is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from livecast.errors import IngestError
from livecast.ingest.flv_demux import DEFAULT_MAX_TAG_BYTES, FlvDemux
from livecast.ingest.keys import fingerprint
from livecast.ingest.rtmp import MediaMessage

__all__ = ["PASSPHRASE_LENGTHS", "SrtListener", "SrtStats", "free_udp_port", "listener_argv"]

log = logging.getLogger("livecast.ingest")

PASSPHRASE_LENGTHS = (10, 79)  # SRT: SRTO_PASSPHRASE is 10..79 characters
READ_SIZE = 256 * 1024
QUICK_EXIT = 1.0  # a listener ending sooner than this without a caller backs off
BACKOFF_MAX = 10.0


def free_udp_port(host: str = "127.0.0.1") -> int:
    """A UDP port nothing is bound to right now (SRT runs over UDP): the kernel's choice."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class Sink(Protocol):
    def on_media(self, message: MediaMessage) -> None: ...

    def on_end(self, reason: str) -> None: ...


@dataclass
class SrtStats:
    listeners: int = 0  # FFmpeg listeners started
    connections: int = 0  # callers whose media arrived
    refused: int = 0  # handshakes libsrt rejected (wrong or missing passphrase)
    broken: int = 0  # remuxed streams that were not FLV (an FFmpeg failure)
    tags: int = 0
    bytes: int = 0


def listener_argv(
    ffmpeg: str, host: str, port: int, passphrase: str, *, latency_ms: int = 120
) -> list[str]:
    """FFmpeg as an SRT listener remuxing MPEG-TS to FLV on stdout (video copied, audio AAC).

    Probing is short (0.2 s): the MPEG-TS demuxer needs a PMT and the codecs' parameters; what it
    reads while probing is kept, so it only delays the first tag."""
    url = (
        f"srt://{host}:{port}?mode=listener&transtype=live&latency={latency_ms * 1000}"
        f"&passphrase={passphrase}&pbkeylen=16"
    )
    return [
        ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "warning",
        "-probesize", "200000", "-analyzeduration", "200000",
        "-i", url,
        "-map", "0:v:0", "-map", "0:a:0?", "-c:v", "copy", "-c:a", "aac", "-b:a", "160k",
        "-flush_packets", "1",
        "-f", "flv", "-flvflags", "no_duration_filesize", "pipe:1",
    ]  # fmt: skip


class SrtListener:
    """One input's SRT port (see the module doc); ``sink`` gets the caller's tags."""

    def __init__(
        self,
        ffmpeg: str,
        host: str,
        port: int,
        passphrase: str,
        sink: Sink,
        *,
        name: str = "srt",
        latency_ms: int = 120,
        max_tag_bytes: int = DEFAULT_MAX_TAG_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        low, high = PASSPHRASE_LENGTHS
        if not low <= len(passphrase) <= high:
            raise IngestError(f"{name}: an SRT passphrase has {low}–{high} characters")
        self.ffmpeg = ffmpeg
        self.host = host
        self.port = port
        self.name = name
        self.latency_ms = latency_ms
        self._passphrase = passphrase
        self._sink = sink
        self._max_tag_bytes = max_tag_bytes
        self._clock = clock
        self.stats = SrtStats()
        self._task: asyncio.Task[None] | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._stopping = False
        self.connected = False

    def __repr__(self) -> str:  # never the passphrase
        return f"SrtListener({self.name!r}, port={self.port}, key={fingerprint(self._passphrase)})"

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen_forever(), name=f"srt-{self.name}")

    async def stop(self) -> None:
        self._stopping = True
        proc = self._proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if proc is not None and proc.returncode is None:
            await proc.wait()
        if self.connected:  # a live publish ends with the server, as RTMP's do
            self.connected = False
            self._sink.on_end("the ingest server stopped")

    # ------------------------------------------------------------------ the listener loop
    async def _listen_forever(self) -> None:
        delay = 0.0
        while not self._stopping:
            started = self._clock()
            had_caller = await self._one_listener()
            if self._stopping:
                return
            quick = not had_caller and self._clock() - started < QUICK_EXIT
            delay = min(BACKOFF_MAX, max(1.0, 2 * delay)) if quick else 0.0
            if delay:
                log.warning("%s: the SRT listener on port %d ended at once; again in %.0f s",
                            self.name, self.port, delay)  # fmt: skip
                await asyncio.sleep(delay)

    async def _one_listener(self) -> bool:
        """Run one FFmpeg listener until its caller (if any) is gone; whether one came."""
        argv = listener_argv(
            self.ffmpeg, self.host, self.port, self._passphrase, latency_ms=self.latency_ms
        )
        proc = self._proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        self.stats.listeners += 1
        assert proc.stdout is not None and proc.stderr is not None
        errors = asyncio.create_task(self._read_stderr(proc.stderr))
        reason = "the SRT caller left"
        try:
            reason = await self._pump(proc.stdout) or reason
        finally:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
            await proc.wait()
            tail = await errors
        had_caller = self.connected
        if self.connected:
            self.connected = False
            log.info("%s: SRT publisher gone (%s%s)", self.name, reason,
                     f": {tail}" if tail else "")  # fmt: skip
            self._sink.on_end(reason)
        return had_caller

    async def _pump(self, stdout: asyncio.StreamReader) -> str | None:
        demux = FlvDemux(self._max_tag_bytes)
        while chunk := await stdout.read(READ_SIZE):
            self.stats.bytes += len(chunk)
            try:
                messages = demux.feed(chunk)
            except IngestError as exc:
                self.stats.broken += 1
                log.error("%s: the SRT remux is not usable FLV (%s); dropping the caller",
                          self.name, exc)  # fmt: skip
                return f"unusable remux: {exc}"
            if messages and not self.connected:
                self.connected = True
                self.stats.connections += 1
                log.info("%s: SRT publisher connected on port %d", self.name, self.port)
            for message in messages:
                self.stats.tags += 1
                self._sink.on_media(message)
        return None

    async def _read_stderr(self, stderr: asyncio.StreamReader) -> str:
        """Log refused handshakes (one line each); the last other line, scrubbed."""
        last = ""
        while raw := await stderr.readline():
            line = raw.decode(errors="replace").strip().replace(self._passphrase, "<passphrase>")
            if "rsp(REJECT)" in line:  # libsrt: "rsp(REJECT): 1010 - Incorrect passphrase"
                self.stats.refused += 1
                why = line.split("rsp(REJECT):", 1)[1].strip()
                log.warning("%s: an SRT caller was refused (%s; the key's fingerprint is %s)",
                            self.name, why, fingerprint(self._passphrase))  # fmt: skip
            elif line and "SRT" not in line[:40]:
                last = line
        return last
