"""The fault proxy: a Toxiproxy-style TCP link with an HTTP-aware mode (asyncio adapter).

:class:`FaultProxy` listens on ``host:port`` and forwards every connection to one upstream. The
faults of its :class:`~livecast.scenario.timeline.Timeline` whose ``target`` is the proxy's
``name`` apply while active (the ``clock`` gives rehearsal time); what to do is decided by the
pure :func:`~livecast.rehearse.faults.policy.decide` with a seeded :class:`random.Random`.

* TCP mode (``http=False``): one decision per connection — reset it, or delay (latency ± jitter)
  and throttle (bandwidth cap) the downstream bytes. Only faults matching ``any`` apply.
* In both modes a reset fault matching ``any`` also cuts the connections open when it starts
  (each with its probability).
* HTTP-aware mode (``http=True``): requests are parsed with httptools and forwarded one at a
  time (pipelined requests wait their turn); each gets its own decision by object type — an
  injected status (keep-alive preserved), a reset, a delayed first byte, latency, a bandwidth
  cap — and a stopped upstream is answered with 502, as nginx would.

Both directions are bounded (see :class:`~livecast.rehearse.faults.outlet.Outlet`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, cast

import httptools

from livecast.rehearse.faults.outlet import Outlet
from livecast.rehearse.faults.policy import (
    Action,
    FaultCounters,
    chunk_delay,
    cut_open_links,
    decide,
    injected_response,
    resets_starting,
)
from livecast.scenario.timeline import NETWORK_KINDS, Fault, Timeline

log = logging.getLogger(__name__)

TICK: Final = 0.05  # seconds between checks for reset faults starting
MAX_PENDING_REQUESTS: Final = 32
MAX_REQUEST_HEAD: Final = 64 * 1024
MAX_REQUEST_BODY: Final = 1024 * 1024
_HOP_HEADERS: Final = frozenset({b"transfer-encoding", b"content-length"})


class FaultProxy:
    """A fault-injecting proxy in front of ``upstream``; :meth:`start`, then :meth:`stop`."""

    def __init__(
        self,
        name: str,
        upstream: tuple[str, int],
        timeline: Timeline,
        *,
        http: bool = False,
        clock: Callable[[], float] | None = None,
        seed: int = 0,
        max_buffer: int = 256 * 1024,
        connect_timeout: float = 5.0,
    ) -> None:
        self.name = name
        self.upstream = upstream
        self.timeline = timeline
        self.http = http
        self.rng = random.Random(seed)
        self.max_buffer = max_buffer
        self.connect_timeout = connect_timeout
        self.counters = FaultCounters()
        self.port = 0
        self._clock = clock
        self._started_at = time.monotonic()
        self._server: asyncio.AbstractServer | None = None
        self._links: dict[_Link, None] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._prev = -math.inf

    def now(self) -> float:
        """Rehearsal time: the given clock, else seconds since :meth:`start`."""
        if self._clock is not None:
            return self._clock()
        return time.monotonic() - self._started_at

    def active(self) -> list[Fault]:
        """The network faults on this link right now."""
        return [
            fault
            for fault in self.timeline.active(self.now(), self.name)
            if fault.kind in NETWORK_KINDS
        ]

    def decide(self, target: str | None) -> Action:
        action = decide(target, self.active(), self.rng)
        self.counters.record(action)
        return action

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen on ``host:port`` (0 picks a free port, then exposed as ``.port``)."""
        loop = asyncio.get_running_loop()
        self._started_at = time.monotonic()
        self._server = await loop.create_server(
            lambda: _ClientProtocol(_HttpLink(self) if self.http else _TcpLink(self)),
            host,
            port,
            backlog=1024,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._prev = self.now()
        self._timer = loop.call_later(TICK, self._tick)

    def _tick(self) -> None:
        """Cut the open connections when a reset fault starts (new ones are cut as they come)."""
        try:
            now = self.now()
            step = self.timeline.transitions(self._prev, now)
            self._prev = now
            resets = resets_starting(step.started, self.name)
            if resets:
                links = list(self._links)
                for link, cut in zip(
                    links, cut_open_links(resets, len(links), self.rng), strict=True
                ):
                    if cut:
                        self.counters.injected["reset"] += 1
                        link.reset()
        finally:
            if self._server is not None:
                self._timer = asyncio.get_running_loop().call_later(TICK, self._tick)

    async def stop(self) -> None:
        """Stop listening and cut every link."""
        server, self._server = self._server, None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if server is not None:
            server.close()
        for link in list(self._links):
            link.abort()
        if server is not None:
            await server.wait_closed()
        await asyncio.sleep(0)

    def opened(self, link: _Link) -> None:
        self._links[link] = None
        self.counters.connections += 1

    def forget(self, link: _Link) -> None:
        self._links.pop(link, None)


class _ClientProtocol(asyncio.Protocol):
    def __init__(self, link: _Link) -> None:
        self.link = link

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.link.client_made(cast(asyncio.Transport, transport))

    def data_received(self, data: bytes) -> None:
        self.link.client_data(data)

    def eof_received(self) -> bool:
        return self.link.client_eof()

    def connection_lost(self, exc: Exception | None) -> None:
        self.link.client_lost()

    def pause_writing(self) -> None:
        self.link.down.dest_paused(True)

    def resume_writing(self) -> None:
        self.link.down.dest_paused(False)


class _UpstreamProtocol(asyncio.Protocol):
    def __init__(self, link: _Link) -> None:
        self.link = link
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self.link.upstream is self:
            self.link.upstream_data(data)

    def eof_received(self) -> bool:
        return False  # close; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        if self.link.upstream is self:
            self.link.upstream_lost()

    def pause_writing(self) -> None:
        self.link.up.dest_paused(True)

    def resume_writing(self) -> None:
        self.link.up.dest_paused(False)


class _Link:
    """One client connection and its upstream connection; subclasses differ in what they parse."""

    def __init__(self, proxy: FaultProxy) -> None:
        self.proxy = proxy
        self.client: asyncio.Transport | None = None
        self.upstream: _UpstreamProtocol | None = None
        self.closed = False
        self._connecting: asyncio.Task[None] | None = None
        self.down = Outlet(self._upstream_transport, high=proxy.max_buffer)
        self.up = Outlet(lambda: self.client, high=proxy.max_buffer)

    def _upstream_transport(self) -> asyncio.Transport | None:
        return None if self.upstream is None else self.upstream.transport

    def client_made(self, transport: asyncio.Transport) -> None:
        self.client = transport
        self.down.attach(transport)
        self.proxy.opened(self)

    def connect(self) -> None:
        """Open the upstream connection (the up outlet queues until it is made)."""
        if self._connecting is None and self.upstream is None and not self.closed:
            self._connecting = asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        host, port = self.proxy.upstream
        loop = asyncio.get_running_loop()
        try:
            _, protocol = await asyncio.wait_for(
                loop.create_connection(lambda: _UpstreamProtocol(self), host, port),
                self.proxy.connect_timeout,
            )
        except (TimeoutError, OSError):
            self._connecting = None
            self.proxy.counters.upstream_errors += 1
            self.upstream_failed()
            return
        self._connecting = None
        if self.closed:
            if protocol.transport is not None:
                protocol.transport.close()
            return
        self.upstream = protocol
        if protocol.transport is not None:
            self.up.attach(protocol.transport)

    def reset(self) -> None:
        """Cut both sides with a TCP reset."""
        self.closed = True
        self.down.reset()
        self.up.reset()
        self.upstream = None

    def abort(self) -> None:
        self.closed = True
        if self._connecting is not None:
            self._connecting.cancel()
        for transport in (self.client, self._upstream_transport()):
            if transport is not None:
                transport.abort()

    def client_lost(self) -> None:
        self.closed = True
        self.down.detach()
        self.up.finish("close")
        if self._connecting is not None:
            self._connecting.cancel()
            self._connecting = None
        self.proxy.forget(self)

    def upstream_lost(self) -> None:
        self.upstream = None
        self.up.detach()
        self.down.finish("close")

    def client_data(self, data: bytes) -> None:
        raise NotImplementedError

    def client_eof(self) -> bool:
        raise NotImplementedError

    def upstream_data(self, data: bytes) -> None:
        raise NotImplementedError

    def upstream_failed(self) -> None:
        raise NotImplementedError


class _TcpLink(_Link):
    """Bytes both ways; one decision per connection."""

    def client_made(self, transport: asyncio.Transport) -> None:
        super().client_made(transport)
        self.action = self.proxy.decide(None)
        self._first = True
        if self.action.reset:
            self.reset()
        else:
            self.connect()

    def client_data(self, data: bytes) -> None:
        self.up.push(data)

    def client_eof(self) -> bool:
        self.up.finish("eof")
        return True

    def upstream_data(self, data: bytes) -> None:
        action = self.action
        delay = chunk_delay(action, self.proxy.rng, self._first)
        self._first = False
        self.down.push(data, delay, action.rate)

    def upstream_failed(self) -> None:
        if self.client is not None:
            self.client.abort()


@dataclass(frozen=True)
class _Request:
    method: bytes
    target: str
    raw: bytes
    keep_alive: bool

    @property
    def head(self) -> bool:
        return self.method == b"HEAD"


class _HttpLink(_Link):
    """Requests parsed and forwarded one at a time, each with its own decision."""

    def __init__(self, proxy: FaultProxy) -> None:
        super().__init__(proxy)
        self._parser = httptools.HttpRequestParser(self)
        self._pending: deque[_Request] = deque()
        self.current: tuple[_Request, Action] | None = None
        self._first = True
        self._client_done = False
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._head_bytes = 0
        self._body: list[bytes] = []
        self._response: httptools.HttpResponseParser | None = None
        self.response_done = False

    # -- client side: requests ------------------------------------------------------------

    def client_data(self, data: bytes) -> None:
        if self._client_done or self.closed:
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._client_done = True
        except httptools.HttpParserError:
            self._client_done = True
            self._pending.append(_Request(b"", "", b"", False))  # answered with 400 in turn
        self._next()

    def client_eof(self) -> bool:
        self._client_done = True
        if self.current is None and not self._pending:
            self.down.finish("close")
        return True

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = []
        self._head_bytes = 0
        self._body = []

    def on_url(self, fragment: bytes) -> None:
        self._url += fragment
        self._head_bytes += len(fragment)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))
        self._head_bytes += len(name) + len(value)
        if self._head_bytes > MAX_REQUEST_HEAD:
            raise ValueError("request head too large")

    def on_body(self, body: bytes) -> None:
        self._body.append(body)
        self._head_bytes += len(body)
        if self._head_bytes > MAX_REQUEST_HEAD + MAX_REQUEST_BODY:
            raise ValueError("request body too large")

    def on_message_complete(self) -> None:
        parser = self._parser
        method = parser.get_method()
        keep_alive = parser.should_keep_alive()
        body = b"".join(self._body)
        lines = [method + b" " + self._url + b" HTTP/1.1\r\n"]
        lines += [
            name + b": " + value + b"\r\n"
            for name, value in self._headers
            if name.lower() not in _HOP_HEADERS
        ]
        if body or method in (b"POST", b"PUT", b"PATCH"):
            lines.append(b"Content-Length: %d\r\n" % len(body))
        lines += [b"\r\n", body]
        target = self._url.decode("latin-1")
        self._pending.append(_Request(method, target, b"".join(lines), keep_alive))
        if not keep_alive:
            self._client_done = True
        if len(self._pending) > MAX_PENDING_REQUESTS and self.client is not None:
            self.client.pause_reading()

    def _next(self) -> None:
        """Start the next request unless one is in flight."""
        while self.current is None and self._pending and not self.closed:
            request = self._pending.popleft()
            if len(self._pending) == MAX_PENDING_REQUESTS // 2 and self.client is not None:
                self.client.resume_reading()
            if not request.method:  # a request the parser refused
                self.down.push(injected_response(400, keep_alive=False, head=False))
                self.down.finish("close")
                return
            self.proxy.counters.requests += 1
            action = self.proxy.decide(request.target)
            if action.reset:
                self.reset()
                return
            if action.status is not None:
                self._answer(request, action.status, action.body, action.cache_control)
                continue
            self.proxy.counters.forwarded += 1
            self.current = (request, action)
            self._first = True
            self.response_done = False
            self.connect()
            self.up.push(request.raw)
        if self.current is None and not self._pending and self._client_done:
            self.down.finish("close")

    def _answer(
        self, request: _Request, status: int, body: str = "", cache_control: str = ""
    ) -> None:
        data = injected_response(
            status,
            body,
            keep_alive=request.keep_alive,
            head=request.head,
            cache_control=cache_control,
        )
        self.down.push(data)
        if not request.keep_alive:
            self._client_done = True
            self._pending.clear()

    # -- upstream side: responses ---------------------------------------------------------

    def connect(self) -> None:
        if self.upstream is None and self._connecting is None:
            self._response = httptools.HttpResponseParser(_ResponseEvents(self))
        super().connect()

    def upstream_data(self, data: bytes) -> None:
        current = self.current
        if current is None or self._response is None:
            return  # nothing asked: drop what an upstream sends unsolicited
        request, action = current
        self.down.push(data, chunk_delay(action, self.proxy.rng, self._first), action.rate)
        self._first = False
        try:
            self._response.feed_data(data)
        except httptools.HttpParserError:
            if not self.response_done:
                log.warning("%s: malformed upstream response", self.proxy.name)
                self.abort()
                return
            self._response = httptools.HttpResponseParser(
                _ResponseEvents(self)
            )  # after a HEAD response
        if self.response_done:
            self.current = None
            if not request.keep_alive:
                self._client_done = True
            self._next()

    def upstream_failed(self) -> None:
        current, self.current = self.current, None
        if current is not None:
            self._answer(current[0], 502, "upstream unreachable\n")
        self._next()

    def upstream_lost(self) -> None:
        self.upstream = None
        self.up.detach()
        current = self.current
        if current is None:
            return  # an idle keep-alive connection closed: reconnect on the next request
        if self._first:  # nothing came back: answer as a gateway would
            self.current = None
            self.proxy.counters.upstream_errors += 1
            self._answer(current[0], 502, "upstream closed the connection\n")
            self._next()
        else:  # a response cut short, or delimited by the close: pass the close on
            self.current = None
            self._client_done = True
            self._pending.clear()
            self.down.finish("close")


class _HeadDone(Exception):
    """Raised from a parser callback once a HEAD response's head is complete."""


class _ResponseEvents:
    """Callbacks of the upstream response parser (the link itself takes the request parser's)."""

    def __init__(self, link: _HttpLink) -> None:
        self.link = link

    def on_headers_complete(self) -> None:
        current = self.link.current
        if current is not None and current[0].head:
            self.link.response_done = True
            raise _HeadDone  # no body follows, whatever Content-Length says

    def on_message_complete(self) -> None:
        self.link.response_done = True
