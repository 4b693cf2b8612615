"""A lean keep-alive HTTP/1.1 client for thousands of virtual viewers — the driver's adapter.

One :class:`asyncio.Protocol` per connection, httptools response parsing, one request in flight per
connection, results delivered by callback (no task or future per request). A viewer uses one
connection per lane (playlists, media) as a browser would with HTTP/1.1. Timeouts are enforced by
the owner calling :meth:`ClientConnection.check_timeout` at (or after) its
:attr:`~ClientConnection.deadline` — from the timer it keeps anyway, no timer per request.

The connection reconnects by itself when the server closed an idle keep-alive connection; a
request that fails is reported once through ``on_error`` with a short kind ("connect", "reset",
"timeout", "protocol") and never retried here — retry policy belongs to the player model.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import httptools

from livecast.httpsink import ResponseSink, scan_head

USER_AGENT = "livecast-rehearse"


@dataclass(slots=True)
class Exchange:
    """The outcome of one request, as the player model needs it (read-only by convention: not
    frozen, whose ``__init__`` goes through ``object.__setattr__`` field by field)."""

    request_id: int
    status: int
    body: bytes | None  # kept only when asked (playlists); media bodies are only counted
    size: int
    started: float  # clock() when the request was written
    first_byte: float  # clock() when the response head arrived
    finished: float  # clock() when the body was complete
    age: bytes | None = None  # the raw Age header, if any (hls.js's CDN tune-in reads it)


OnExchange = Callable[[Exchange], None]
OnFailure = Callable[[int, str], None]  # request id, kind


class _Wire(asyncio.Protocol):
    """One TCP connection; forwards to its owner only while it is the owner's current one."""

    def __init__(self, owner: ClientConnection) -> None:
        self.owner = owner

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.owner._wire is self:
            self.owner._on_connected(cast(asyncio.Transport, transport))  # uvloop's too
        else:
            transport.close()  # superseded while connecting

    def connection_lost(self, exc: Exception | None) -> None:
        if self.owner._wire is self:
            self.owner._on_lost()

    def data_received(self, data: bytes) -> None:
        if self.owner._wire is self:
            self.owner._on_data(data)


class ClientConnection:
    """A keep-alive connection to ``host:port``; ``send`` one request at a time."""

    def __init__(
        self,
        host: str,
        port: int,
        on_exchange: OnExchange,
        on_failure: OnFailure,
        clock: Callable[[], float] = time.monotonic,
        extra_headers: bytes = b"",
    ) -> None:
        self.host = host
        self.port = port
        self._host_header = f"{host}:{port}"
        self._extra_headers = extra_headers.decode("latin-1")  # CRLF-terminated lines: a cookie
        self._on_exchange = on_exchange
        self._on_failure = on_failure
        self._clock = clock
        self._transport: asyncio.Transport | None = None
        self._wire: _Wire | None = None
        self._connecting = False
        self._pending: tuple[int, bytes, bool, float] | None = None  # id, wire, keep, deadline
        self._started = 0.0
        self._sink: ResponseSink | None = None
        self._head = b""  # the response head so far, while its end is not in
        self._in_head = False
        self._age: bytes | None = None
        self._reused = False
        self.requests = 0
        self.connects = 0
        self.reconnects = 0

    # ------------------------------------------------------------------ public
    @property
    def busy(self) -> bool:
        return self._pending is not None

    @property
    def deadline(self) -> float | None:
        """clock() by which the request in flight must be answered (None when idle)."""
        pending = self._pending
        return pending[3] if pending is not None else None

    def send(self, request_id: int, target: str, *, keep_body: bool, timeout: float) -> None:
        """GET ``target`` (path + query); the result arrives through the callbacks."""
        if self._pending is not None:
            raise RuntimeError("one request at a time per connection")
        wire = (
            f"GET {target} HTTP/1.1\r\nHost: {self._host_header}\r\n"
            f"User-Agent: {USER_AGENT}\r\nAccept: */*\r\n{self._extra_headers}\r\n"
        ).encode("latin-1")
        self._pending = (request_id, wire, keep_body, self._clock() + timeout)
        if self._transport is not None and not self._transport.is_closing():
            self._reused = True
            self._write()
        elif not self._connecting:
            self._reused = False
            self._connect()

    def check_timeout(self, now: float) -> None:
        pending = self._pending
        if pending is not None and now >= pending[3]:
            self._fail("timeout")

    def close(self) -> None:
        transport, self._transport, self._wire = self._transport, None, None
        self._sink = None
        self._connecting = False
        if transport is not None:
            transport.close()

    # ------------------------------------------------------------------ from the current _Wire
    def _on_connected(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._sink = ResponseSink(False, self._clock)  # one parser per TCP connection
        self._connecting = False
        if self._pending is not None:
            self._write()

    def _on_lost(self) -> None:
        sink = self._sink
        self._transport, self._wire, self._sink = None, None, None
        if self._pending is None:
            return
        if self._reused and sink is not None and sink.first_byte == 0.0:
            self._reused = False  # an idle keep-alive connection the server had closed: retry once
            self.reconnects += 1
            self._connect()
            return
        self._fail("reset")

    def _on_data(self, data: bytes) -> None:
        sink = self._sink
        if sink is None or self._pending is None:
            return  # nothing asked: a server talking out of turn is ignored until the next ask
        if self._in_head:
            self._scan_head(data)
        try:
            sink.parser.feed_data(data)
        except httptools.HttpParserError:
            self._fail("protocol")
            return
        if sink.complete:
            self._complete(sink)

    # ------------------------------------------------------------------ internals
    def _connect(self) -> None:
        self._connecting = True
        self.connects += 1
        wire = self._wire = _Wire(self)
        loop = asyncio.get_running_loop()
        task = loop.create_task(loop.create_connection(lambda: wire, self.host, self.port))
        task.add_done_callback(lambda done: self._connected(done, wire))

    def _connected(self, task: asyncio.Task[tuple[asyncio.Transport, _Wire]], wire: _Wire) -> None:
        if wire is not self._wire:
            return
        self._connecting = False
        if task.cancelled() or task.exception() is not None:
            self._wire = None
            self._fail("connect")

    def _write(self) -> None:
        assert self._pending is not None and self._transport is not None
        assert self._sink is not None
        _, wire, keep_body, _ = self._pending
        self._sink.reset(keep_body)
        self._in_head, self._head, self._age = True, b"", None
        self._started = self._clock()
        self.requests += 1
        self._transport.write(wire)

    def _scan_head(self, data: bytes) -> None:
        """The Age header, once the head of the response is in (it may span reads)."""
        head, self._age = scan_head(self._head, data)
        if head is None:
            self._in_head, self._head = False, b""
        else:
            self._head = head

    def _complete(self, sink: ResponseSink) -> None:
        pending = self._pending
        assert pending is not None
        self._pending = None
        if not sink.keep_alive:
            self.close()
        body = sink.body if sink.keep_body else None
        exchange = Exchange(
            request_id=pending[0],
            status=sink.status,
            body=body,
            size=sink.size,
            started=self._started,
            first_byte=sink.first_byte or self._clock(),
            finished=self._clock(),
            age=self._age,
        )
        self._on_exchange(exchange)

    def _fail(self, kind: str) -> None:
        pending = self._pending
        self._pending = None
        self.close()
        if pending is not None:
            self._on_failure(pending[0], kind)
