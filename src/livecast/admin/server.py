"""The admin API on a socket: a thin asyncio + httptools adapter around :class:`AdminApi`.

HTTP/1.1 with keep-alive; request bodies by ``Content-Length`` only (a chunked request is answered
411 and the connection closed); the URL, the headers and the body are bounded (414, 431, 413 —
each then closes the connection); a connection idle for ``idle_timeout`` seconds is closed.
Requests are answered in order as soon as they are complete. An operation that acts on the
world (the API answers an :class:`~livecast.admin.state.AdminCall`: create, start or stop an
event, the sessions of a Redis lease store, the status) is awaited on the state's
:class:`~livecast.admin.state.AdminControl` on a task of its own, then finished by the API; the
connection's later requests wait behind it (answers stay in order, at most ``max_waiting``), other
connections do not. A call runs to its end even if its client goes away (an event is never left
half-started); :meth:`AdminServer.stop` waits for those under way. ``now`` for the API is
wall-clock Unix seconds (token expiry).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from typing import cast

import httptools

from livecast.admin.api import MAX_BODY_BYTES, AdminApi, AdminResponse, error
from livecast.admin.state import AdminCall, AdminControl

__all__ = ["AdminLimits", "AdminServer"]

log = logging.getLogger(__name__)

REASONS = {
    200: "OK",
    201: "Created",
    204: "No Content",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    411: "Length Required",
    413: "Content Too Large",
    414: "URI Too Long",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


@dataclass(frozen=True, slots=True)
class AdminLimits:
    """Bounds on one connection's requests and how long it may sit idle."""

    max_url_bytes: int = 4096
    max_header_bytes: int = 16 * 1024
    max_headers: int = 64
    max_body_bytes: int = MAX_BODY_BYTES
    idle_timeout: float = 30.0
    max_waiting: int = 16  # answers a connection may have pending behind an awaited call
    stop_wait: float = 15.0  # how long stop() lets calls under way finish


async def perform(control: AdminControl, call: AdminCall, now: float) -> object:
    """``call`` done on ``control``: what the API's ``finish`` takes."""
    if call.operation == "create_event":
        return await control.create_event(call.event_id)
    if call.operation == "start_event":
        await control.start_event(call.event_id)
        return None
    if call.operation == "stop_event":
        await control.stop_event(call.event_id)
        return None
    if call.operation == "list_sessions":
        return await control.sessions(call.account, now)
    return await control.status(now)


class _Stop(Exception):
    """Raised from a parser callback once the connection has been answered and is closing."""


def encode(response: AdminResponse, *, keep_alive: bool) -> bytes:
    """The bytes of ``response`` with Date, Content-Length and Connection."""
    lines = [f"HTTP/1.1 {response.status} {REASONS.get(response.status, 'Unknown')}"]
    lines += [f"{name}: {value}" for name, value in response.headers]
    lines.append(f"Date: {formatdate(usegmt=True)}")
    if response.status != 204:
        lines.append(f"Content-Length: {len(response.body)}")
    lines.append("Connection: keep-alive" if keep_alive else "Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + response.body


class AdminServer:
    """Serves an :class:`AdminApi`; :meth:`start` on a host and port (0: any, see :attr:`port`)."""

    def __init__(
        self,
        api: AdminApi,
        *,
        limits: AdminLimits | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.api = api
        self.limits = limits or AdminLimits()
        self.clock = clock
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[_Connection] = set()
        self._calls: set[asyncio.Task[AdminResponse]] = set()  # strong references
        self._port = 0

    @property
    def port(self) -> int:
        """The port listened on (after :meth:`start`)."""
        return self._port

    async def start(self, host: str, port: int) -> None:
        """Listen on ``host:port``."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), host, port)
        self._port = self._server.sockets[0].getsockname()[1]

    def answer(self, call: AdminCall) -> asyncio.Task[AdminResponse]:
        """The answer to ``call``, on a task of its own (kept until done)."""
        task = asyncio.ensure_future(self._answer(call))
        self._calls.add(task)
        task.add_done_callback(self._calls.discard)
        return task

    async def _answer(self, call: AdminCall) -> AdminResponse:
        control = self.api.state.control
        result: object
        if control is None:  # the API asks for calls only with a control
            result = RuntimeError("an admin call without a control")
        else:
            try:
                result = await perform(control, call, self.clock())
            except Exception as exc:  # refusals (404/409/503) and bugs (500): the API says which
                result = exc
        return self.api.finish(call, result, self.clock())

    async def stop(self) -> None:
        """Stop listening, let the calls under way finish (``stop_wait``), close every
        connection."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        if self._calls:
            _, late = await asyncio.wait(set(self._calls), timeout=self.limits.stop_wait)
            for task in late:
                task.cancel()
        for connection in list(self._connections):
            connection.close()
        if server is not None:
            await server.wait_closed()


class _Connection(asyncio.Protocol):
    """One client connection: parse requests, answer each when complete."""

    def __init__(self, server: AdminServer) -> None:
        self.server = server
        self.limits = server.limits
        self.transport: asyncio.Transport | None = None
        self.client = "unknown"
        self._parser = httptools.HttpRequestParser(self)
        self._idle: asyncio.TimerHandle | None = None
        self._waiting: deque[tuple[asyncio.Future[AdminResponse], bool]] = deque()
        self._reset()

    def _reset(self) -> None:
        self._url = b""
        self._headers: list[tuple[str, str]] = []
        self._header_bytes = 0
        self._body = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.client = str(peer[0]) if isinstance(peer, tuple) else "unknown"
        self.server._connections.add(self)
        self._arm_idle()

    def connection_lost(self, exc: Exception | None) -> None:
        self.server._connections.discard(self)
        if self._idle is not None:
            self._idle.cancel()
        self.transport = None

    def _arm_idle(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
        loop = asyncio.get_running_loop()
        self._idle = loop.call_later(self.limits.idle_timeout, self.close)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        self._arm_idle()
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._refuse(error(400, "upgrades are not supported"))
        except httptools.HttpParserError as failure:
            if isinstance(failure, httptools.HttpParserCallbackError) and not isinstance(
                failure.__context__, _Stop
            ):
                log.error("admin connection failed", exc_info=failure.__context__)
            if self.transport is not None and not self.transport.is_closing():
                self._refuse(error(400, "malformed HTTP request"))

    def _refuse(self, response: AdminResponse) -> None:
        """Answer ``response`` and close (the rest of the bytes cannot be trusted)."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(encode(response, keep_alive=False))
            self.transport.close()

    def on_message_begin(self) -> None:
        self._reset()

    def on_url(self, fragment: bytes) -> None:
        self._url += fragment
        if len(self._url) > self.limits.max_url_bytes:
            self._refuse(error(414, "the URL is too long"))
            raise _Stop

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.decode("latin-1"), value.decode("latin-1")))
        self._header_bytes += len(name) + len(value) + 4
        if self._header_bytes > self.limits.max_header_bytes or (
            len(self._headers) > self.limits.max_headers
        ):
            self._refuse(error(431, "the headers are too large"))
            raise _Stop

    def on_headers_complete(self) -> None:
        names = {name.lower(): value for name, value in self._headers}
        if "transfer-encoding" in names:
            self._refuse(error(411, "send a Content-Length body"))
            raise _Stop
        length = names.get("content-length", "0").strip()
        if length.isdigit() and int(length) > self.limits.max_body_bytes:
            self._refuse(error(413, f"the body is over {self.limits.max_body_bytes} bytes"))
            raise _Stop

    def on_body(self, chunk: bytes) -> None:
        self._body += chunk
        if len(self._body) > self.limits.max_body_bytes:
            self._refuse(error(413, f"the body is over {self.limits.max_body_bytes} bytes"))
            raise _Stop

    def on_message_complete(self) -> None:
        if self.transport is None or self.transport.is_closing():
            raise _Stop
        method = self._parser.get_method().decode("latin-1")
        keep_alive = bool(self._parser.should_keep_alive())
        try:
            url = httptools.parse_url(self._url)
        except httptools.HttpParserInvalidURLError:
            self._refuse(error(400, "malformed URL"))
            raise _Stop from None
        path = (url.path or b"/").decode("latin-1")
        query = (url.query or b"").decode("latin-1")
        outcome = self.server.api.handle(
            method, path, query, self._headers, bytes(self._body), self.client, self.server.clock()
        )
        self._reset()
        if isinstance(outcome, AdminResponse) and not self._waiting:
            self._send(outcome, keep_alive)
            return
        if len(self._waiting) >= self.limits.max_waiting:
            self.close()
            raise _Stop
        if isinstance(outcome, AdminResponse):
            ready: asyncio.Future[AdminResponse] = asyncio.get_running_loop().create_future()
            ready.set_result(outcome)
        else:
            ready = self.server.answer(outcome)
        self._waiting.append((ready, keep_alive))
        ready.add_done_callback(self._send_ready)

    def _send_ready(self, _: object = None) -> None:
        """Send the answers now complete, in request order."""
        while self._waiting and self._waiting[0][0].done():
            ready, keep_alive = self._waiting.popleft()
            if ready.cancelled():  # the server stopped meanwhile
                self.close()
                return
            self._send(ready.result(), keep_alive)

    def _send(self, response: AdminResponse, keep_alive: bool) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.transport.write(encode(response, keep_alive=keep_alive))
        self._arm_idle()
        if not keep_alive:
            self.transport.close()
            self._waiting.clear()
