"""A real origin for the HTTP targets: :class:`~livecast.origin.http.OriginServer` in front of
an :class:`~livecast.origin.app.OriginApp` (behind a token gate or open) on 127.0.0.1 (a free
port), its asyncio loop in a thread of its own, fed 20 s of synthetic encoder output (three
renditions, built by :mod:`livecast.media.boxes`; no FFmpeg) before it listens, then live in real
time, so that blocking playlist and part requests are held and answered. The packaging of that
media is not traced (it is not the request path); the answers it releases are.

:class:`RunningOrigin` is the thin adapter: start, stop, and the URIs it publishes (read from its
own playlists over HTTP), which the HTTP targets mutate."""

from __future__ import annotations

import asyncio
import re
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from livecast.access.keys import KeyRing
from livecast.access.token_gate import TokenGate
from livecast.access.tokens import TokenClaims, issue
from livecast.fuzzing.core import ArcTracer
from livecast.media import boxes
from livecast.media.fmp4 import FMP4StreamReader, Fragment, InitSegment
from livecast.origin.app import OriginApp
from livecast.origin.http import OriginServer
from livecast.origin.wire import HttpLimits
from livecast.packager.event import LiveEvent, RenditionSpec
from livecast.packager.live import PackagingConfig
from livecast.telemetry.metrics import Registry

RING = KeyRing({"fuzz": b"\x05" * 32}, "fuzz")
EVENT = "main"
VIDEO_TIMESCALE, FPS, AUDIO_RATE, AAC_FRAME = 15360, 30, 48000, 1024
MEDIA_SECONDS = 20.5
IO_TIMEOUT = 3.0
PUBLISH_EVERY = 0.1  # seconds between deliveries of new media while the origin runs


def viewer_token(now: float) -> str:
    """A token the origin accepts for an hour from ``now`` (Unix seconds)."""
    return issue(TokenClaims(EVENT, "fuzz", "fuzz-session", int(now) + 3600), RING)


def _one(data: bytes, reader: FMP4StreamReader) -> InitSegment | Fragment:
    (item,) = reader.feed(data)
    return item


class Feeder:
    """Delivers media time in order: 10-frame video fragments (a keyframe every 60 frames) on
    both video renditions, one AAC frame per audio fragment, interleaved as an encoder would."""

    def __init__(self, event: LiveEvent, epoch: float) -> None:
        self.event = event
        self.video, self.audio = FMP4StreamReader(), FMP4StreamReader()
        self.v = self.a = 0
        event.start_generation(0, epoch)
        video_init = _one(boxes.init_segment("video", timescale=VIDEO_TIMESCALE), self.video)
        audio_init = _one(boxes.init_segment("audio", timescale=AUDIO_RATE), self.audio)
        assert isinstance(video_init, InitSegment) and isinstance(audio_init, InitSegment)
        for name, init in (("720p", video_init), ("360p", video_init), ("audio", audio_init)):
            event.on_init(name, init)

    def advance_to(self, seconds: float) -> None:
        """Deliver every fragment that ends at or before ``seconds`` of media time."""
        frame = VIDEO_TIMESCALE // FPS
        while True:
            v, a = self.v, self.a
            video_end, audio_end = (v + 1) * 10 / FPS, (a + 1) * AAC_FRAME / AUDIO_RATE
            if min(video_end, audio_end) > seconds:
                return
            if audio_end <= video_end:
                data = boxes.fragment(
                    sequence=a + 1,
                    decode_time=a * AAC_FRAME,
                    sample_durations=[AAC_FRAME],
                    sample_sizes=[64],
                    first_is_sync=True,
                )
                fragment = _one(data, self.audio)
                assert isinstance(fragment, Fragment)
                self.event.on_fragment("audio", fragment)
                self.a += 1
            else:
                data = boxes.fragment(
                    sequence=v + 1,
                    decode_time=v * 10 * frame,
                    sample_durations=[frame] * 10,
                    sample_sizes=[200] * 10,
                    first_is_sync=v * 10 % 60 == 0,
                )
                fragment = _one(data, self.video)
                assert isinstance(fragment, Fragment)
                for name in ("720p", "360p"):
                    self.event.on_fragment(name, fragment)
                self.v += 1


def make_event() -> LiveEvent:
    config = PackagingConfig(part_target=0.33334, segment_duration=2.0, window=30.0)
    specs = [RenditionSpec("720p", "video"), RenditionSpec("360p", "video")]
    return LiveEvent(config, [*specs, RenditionSpec("audio", "audio")])


def exchange(port: int, data: bytes, *, timeout: float = IO_TIMEOUT) -> bytes:
    """Send ``data``, half-close, and read until the server closes (what a fuzz input gets)."""
    received = bytearray()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before reading everything: allowed
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionResetError:
            pass  # an abort (a flood of pipelined requests) is a clean refusal
    return bytes(received)


@dataclass
class RunningOrigin:
    """The origin of one HTTP fuzz session, and what a normal viewer requests of it."""

    port: int
    token: str
    uris: tuple[str, ...]  # paths the origin publishes (playlists, init, segments, parts)

    def get(self, target: str) -> bytes:
        request = f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        return exchange(self.port, request.encode())


def _uris(origin: RunningOrigin) -> tuple[str, ...]:
    found = ["/live/main.m3u8"]
    multivariant = origin.get(f"/live/main.m3u8?token={origin.token}").decode("latin-1")
    for line in multivariant.split("\r\n\r\n", 1)[-1].splitlines():
        if line and not line.startswith("#"):
            found.append("/live/" + line.split("?")[0])
    answer = origin.get(f"{found[1]}?token={origin.token}").decode("latin-1")
    playlist = answer.split("\r\n\r\n", 1)[-1]
    base = found[1].rsplit("/", 1)[0]
    for uri in re.findall(r'URI="([^"?]+)|^([^#\s][^?\s]*)', playlist, re.M):
        path = uri[0] or uri[1]
        if path:
            found.append(f"{base}/{path}")
    return tuple(dict.fromkeys(found))


@contextmanager
def running_origin(
    tracer: ArcTracer | None = None, *, gated: bool = True
) -> Iterator[RunningOrigin]:
    """An origin listening on 127.0.0.1 in its own thread until the block ends; its livecast
    frames are traced by ``tracer`` while the tracer is enabled. ``gated``: behind a token gate
    (else open, which takes the server's fast path for keep-alive GETs)."""
    event = make_event()
    feeder = Feeder(event, time.time())
    feeder.advance_to(MEDIA_SECONDS)
    app = OriginApp(event)
    gate = TokenGate(RING, unix_time=lambda _: time.time()) if gated else None
    limits = HttpLimits(idle_timeout=5.0)
    server = OriginServer(app, Registry(), cache_key=app.cache_key, gate=gate, limits=limits)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    started = time.monotonic()

    def publish() -> None:  # live: media keeps arriving, held requests get answered
        sys.settrace(None)  # packaging is not the request path
        try:
            feeder.advance_to(MEDIA_SECONDS + time.monotonic() - started)
        finally:
            if tracer is not None:
                tracer.install_in_thread()
        server.notify()
        loop.call_later(PUBLISH_EVERY, publish)

    def serve() -> None:
        if tracer is not None:
            tracer.install_in_thread()
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.start("127.0.0.1", 0))
        loop.call_later(PUBLISH_EVERY, publish)
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, name="fuzz-origin", daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("the fuzz origin did not start within 10 s")
    origin = RunningOrigin(server.port, viewer_token(time.time()), ())
    try:
        origin.uris = _uris(origin)
        yield origin
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
