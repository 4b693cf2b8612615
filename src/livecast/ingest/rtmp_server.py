"""The RTMP ingest server: asyncio sockets around the sans-IO :mod:`livecast.ingest.rtmp`.

One :class:`asyncio.Protocol` per TCP connection feeds what it reads to an
:class:`~livecast.ingest.rtmp.RtmpServerConnection` and writes back what that has to send. When a
client asks to publish, the server asks its owner — ``authorize(app, stream_key)`` — for a
:class:`PublishSink` or the reason for a refusal. A refused client gets ``onStatus`` with level
*error* and is closed, with one warning that names the peer and the key's fingerprint (the first 8
hex digits of its SHA-256) but never the key. An accepted one has every media message handed to
its sink, and ``on_end`` once when it stops publishing, disconnects, goes quiet, or the server
stops.

A protocol error closes that connection alone, with one log line naming the peer and the reason.
A client that has not finished the handshake after ``handshake_timeout`` seconds, or sent nothing
for ``idle_timeout`` seconds, is closed too (``loop.call_later`` timers, no sleeping tasks). A
client that does not read what we send (more than ``max_write_buffer`` bytes waiting) is aborted.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, cast

from livecast.errors import IngestError
from livecast.ingest.keys import fingerprint as key_fingerprint
from livecast.ingest.rtmp import (
    MediaMessage,
    PublishEnded,
    PublishRequested,
    RtmpEvent,
    RtmpServerConnection,
    RtmpState,
)

__all__ = ["Authorize", "PublishSink", "RtmpServer", "RtmpServerStats"]

log = logging.getLogger("livecast.ingest")


class PublishSink(Protocol):
    def on_media(self, message: MediaMessage) -> None: ...

    def on_end(self, reason: str) -> None: ...


Authorize = Callable[[str, str], "PublishSink | str"]
"""``(app, stream_key)`` → the sink for an accepted publish, or the reason it is refused."""


@dataclass
class RtmpServerStats:
    connections: int = 0  # TCP connections accepted so far
    accepted: int = 0  # publishes accepted
    refused: int = 0  # publishes refused by authorize
    protocol_errors: int = 0
    timeouts: int = 0  # closed by the handshake or idle timeout
    write_overflows: int = 0


def _peer_name(transport: asyncio.BaseTransport) -> str:
    peer = transport.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        host = str(peer[0])
        return f"[{host}]:{peer[1]}" if ":" in host else f"{host}:{peer[1]}"
    return str(peer or "unknown peer")


class _RtmpProtocol(asyncio.Protocol):
    def __init__(self, server: RtmpServer) -> None:
        self.server = server
        self.rtmp = RtmpServerConnection(max_message_bytes=server.max_message_bytes)
        self.peer = "unknown peer"
        self.sink: PublishSink | None = None
        self._transport: asyncio.Transport | None = None
        self._closed = False
        self._last_data = 0.0
        self._handshake_timer: asyncio.TimerHandle | None = None
        self._idle_timer: asyncio.TimerHandle | None = None

    # -------------------------------------------------------------- asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCPTransport is a transport without deriving from asyncio.Transport
        self._transport = transport = cast(asyncio.Transport, transport)
        self.peer = _peer_name(transport)
        self.server._connections.add(self)
        self.server.stats.connections += 1
        loop = asyncio.get_running_loop()
        self._last_data = loop.time()
        self._handshake_timer = loop.call_later(
            self.server.handshake_timeout, self._handshake_expired
        )
        self._idle_timer = loop.call_later(self.server.idle_timeout, self._idle_check)
        log.debug("rtmp %s: connected", self.peer)

    def data_received(self, data: bytes) -> None:
        if self._closed:
            return
        self._last_data = asyncio.get_running_loop().time()
        try:
            events = self.rtmp.receive_data(data)
        except IngestError as exc:
            self._protocol_error(exc)
            return
        if self.rtmp.state is not RtmpState.HANDSHAKE and self._handshake_timer is not None:
            self._handshake_timer.cancel()
            self._handshake_timer = None
        self._process(events)
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        reason = f"connection lost: {exc}" if exc else "the publisher disconnected"
        self._closed = True
        self._cancel_timers()
        self.server._connections.discard(self)
        self._end(reason)
        log.debug("rtmp %s: %s", self.peer, reason)

    # -------------------------------------------------------------- events

    def _protocol_error(self, exc: IngestError) -> None:
        self.server.stats.protocol_errors += 1
        log.warning("rtmp %s: protocol error, closing: %s", self.peer, exc)
        self.close(f"protocol error: {exc}")

    def _process(self, events: list[RtmpEvent]) -> None:
        queue = deque(events)
        while queue and not self._closed:
            event = queue.popleft()
            if isinstance(event, MediaMessage):
                if self.sink is not None:
                    self.sink.on_media(event)
            elif isinstance(event, PublishRequested):
                try:
                    queue.extend(self._on_publish(event))
                except IngestError as exc:  # in the input held back during the request
                    self._protocol_error(exc)
            elif isinstance(event, PublishEnded):
                self._end(event.reason)
            else:
                log.debug("rtmp %s: connect to app %r", self.peer, event.app)

    def _on_publish(self, event: PublishRequested) -> list[RtmpEvent]:
        """Ask the owner; the events of the input held back while it decided."""
        answer = self.server.authorize(event.app, event.stream_key)
        fingerprint = key_fingerprint(event.stream_key)
        if isinstance(answer, str):
            self.server.stats.refused += 1
            reason = answer.replace(event.stream_key, fingerprint) if event.stream_key else answer
            log.warning(
                "rtmp %s: publish to app %r with key %s refused: %s",
                self.peer,
                event.app,
                fingerprint,
                reason,
            )
            self.rtmp.reject_publish(reason)
            self.close("publish refused")
            return []
        self.server.stats.accepted += 1
        for other in list(self.server._connections):  # one publisher per sink: a takeover
            if other is not self and other.sink is answer:
                log.warning(
                    "rtmp %s: taken over by %s (key %s)", other.peer, self.peer, fingerprint
                )
                other.close("taken over by another publisher")
        self.sink = answer
        log.info("rtmp %s: publishing to app %r, key %s", self.peer, event.app, fingerprint)
        return self.rtmp.accept_publish()

    def _end(self, reason: str) -> None:
        """Tell the sink the publish is over — once."""
        sink, self.sink = self.sink, None
        if sink is not None:
            sink.on_end(reason)

    # -------------------------------------------------------------- output, timers, closing

    def _flush(self) -> None:
        data = self.rtmp.data_to_send()
        transport = self._transport
        if not data or transport is None or self._closed:
            return
        transport.write(data)
        if transport.get_write_buffer_size() > self.server.max_write_buffer:
            self.server.stats.write_overflows += 1
            log.warning("rtmp %s: the client does not read what it is sent, closing", self.peer)
            self._closed = True
            self._end("the publisher stopped reading")
            transport.abort()

    def close(self, reason: str) -> None:
        """Send what is pending, close, and end the publish (if any) with ``reason``."""
        if self._closed:
            return
        self._flush()
        self._closed = True
        self._cancel_timers()
        self._end(reason)
        if self._transport is not None:
            self._transport.close()

    def _cancel_timers(self) -> None:
        for timer in (self._handshake_timer, self._idle_timer):
            if timer is not None:
                timer.cancel()
        self._handshake_timer = self._idle_timer = None

    def _handshake_expired(self) -> None:
        self._handshake_timer = None
        if self.rtmp.state is RtmpState.HANDSHAKE and not self._closed:
            self.server.stats.timeouts += 1
            timeout = self.server.handshake_timeout
            log.warning("rtmp %s: no RTMP handshake within %g s, closing", self.peer, timeout)
            self.close(f"handshake timeout ({timeout:g} s)")

    def _idle_check(self) -> None:
        loop = asyncio.get_running_loop()
        quiet = loop.time() - self._last_data
        timeout = self.server.idle_timeout
        if quiet < timeout:
            self._idle_timer = loop.call_later(timeout - quiet, self._idle_check)
            return
        self._idle_timer = None
        if self._closed:
            return
        self.server.stats.timeouts += 1
        log.warning("rtmp %s: nothing received for %g s, closing", self.peer, timeout)
        self.close(f"idle: nothing received for {timeout:g} s")


class RtmpServer:
    """Listens for RTMP publishers; see the module docstring."""

    def __init__(
        self,
        authorize: Authorize,
        *,
        handshake_timeout: float = 5.0,
        idle_timeout: float = 10.0,
        max_message_bytes: int = 16 * 2**20,
        max_write_buffer: int = 1 << 20,
    ) -> None:
        self.authorize = authorize
        self.handshake_timeout = handshake_timeout
        self.idle_timeout = idle_timeout
        self.max_message_bytes = max_message_bytes
        self.max_write_buffer = max_write_buffer
        self.stats = RtmpServerStats()
        self._connections: set[_RtmpProtocol] = set()
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> None:
        """Listen on ``host:port`` (port 0: any free port, then see :attr:`port`)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _RtmpProtocol(self), host or None, port)

    @property
    def port(self) -> int:
        """The port listened on (0 before :meth:`start`)."""
        if self._server is None or not self._server.sockets:
            return 0
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def connections(self) -> int:
        """Open TCP connections."""
        return len(self._connections)

    @property
    def active_publishers(self) -> int:
        return sum(1 for connection in self._connections if connection.sink is not None)

    def has_publisher(self, sink: PublishSink) -> bool:
        """Whether an accepted publisher feeds ``sink`` now (from its accept on)."""
        return any(connection.sink is sink for connection in self._connections)

    async def stop(self) -> None:
        """Stop listening and close every connection (live sinks get ``on_end``)."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for connection in list(self._connections):
            connection.close("the ingest server stopped")
        self._connections.clear()
        if server is not None:
            await server.wait_closed()
