"""One client connection of the origin's HTTP/1.1 server (:mod:`livecast.origin.http`).

A bare :class:`asyncio.Protocol` per connection: httptools parses the requests, which are answered
in order — from the answer cache on the fast path, else through :meth:`OriginServer.route`, parked
in the server's parking lot while the handler holds them, or awaited from an ``async_endpoints``
task — with later pipelined requests queued behind a parked or awaited one. The server owns every
table (parking lot, answer cache, metrics); a connection only knows its own requests.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Hashable
from typing import TYPE_CHECKING, NamedTuple, cast

import httptools

from livecast.origin.contract import AsyncEndpoint, Request, Response
from livecast.origin.wire import (
    BAD_REQUEST,
    HEADERS_TOO_LARGE,
    INTERNAL_ERROR,
    METHOD_NOT_ALLOWED,
    METHODS,
    REFUSALS,
    URI_TOO_LONG,
)

if TYPE_CHECKING:
    from livecast.origin.http import OriginServer

__all__ = ["Awaiting", "Connection", "Parked", "StopParsing"]

log = logging.getLogger("livecast.origin.http")  # the server's logger: one name for its lines


class Parked(NamedTuple):
    """Under which key a parked request waits and how to answer it."""

    key: Hashable
    object_type: str
    head: bool
    keep_alive: bool


class Awaiting(NamedTuple):
    """The connection's request being answered by an awaited endpoint (on ``task``)."""

    task: asyncio.Task[Response]
    head: bool
    keep_alive: bool


Queued = tuple[Request | Response, bool]  # a request (or a protocol error to send) + keep-alive


class StopParsing(Exception):
    """Raised from a parser callback to abandon the rest of the received bytes."""


class Connection(asyncio.Protocol):
    """One client connection: parse requests, answer them in order, park blocking ones."""

    def __init__(self, server: OriginServer) -> None:
        self.server = server
        self.limits = server.limits
        self.parked: Parked | Awaiting | None = None  # not None: later requests queue
        self.transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._queue: deque[Queued] = deque()
        self._accepting = True  # False once no further request will be read
        self._close_reason: str | None = None
        self._idle_since: float | None = None  # None while a request is parked or in progress
        self._last_buffer_size = 0
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._header_bytes = 0
        self._keep_alive = True
        self._in_head = False
        self._began_in_chunk = False
        self._raw_head_bytes = 0
        self._max_raw_head_bytes = self.limits.max_url_bytes + self.limits.max_header_bytes + 4096

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport = cast(asyncio.Transport, transport)
        high = max(64 * 1024, self.limits.max_write_buffer // 4)
        transport.set_write_buffer_limits(high=high, low=high // 4)
        self._idle_since = self.server.clock()
        self.server.opened(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._accepting = False
        self.server.forget(self, self._close_reason or "client")
        self.transport = None

    def eof_received(self) -> bool:
        # As nginx does: a client that closes while its request is parked has given up.
        self._accepting = False
        return False

    def pause_writing(self) -> None:
        if self.transport is not None and self._close_reason is None:
            self.transport.pause_reading()  # no new requests from a client not reading answers

    def resume_writing(self) -> None:
        if self.transport is not None and self._close_reason is None:
            self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        if not self._accepting:
            return
        self.server.refresh_date()
        self._began_in_chunk = False
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            return  # the upgrade request is answered with Connection: close
        except httptools.HttpParserError as error:
            if self._accepting:  # else our own StopParsing, already answered
                bug = isinstance(error, httptools.HttpParserCallbackError)
                if bug:
                    log.error("request handling failed", exc_info=error.__context__)
                self._reject(INTERNAL_ERROR if bug else BAD_REQUEST)
            return
        if self._in_head and not self._began_in_chunk:
            self._raw_head_bytes += len(data)
            if self._raw_head_bytes > self._max_raw_head_bytes:  # memory guard
                self._reject(HEADERS_TOO_LARGE)

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = []
        self._header_bytes = 0
        self._in_head = True
        self._began_in_chunk = True
        self._raw_head_bytes = 0

    def on_url(self, fragment: bytes) -> None:
        self._url += fragment
        if len(self._url) > self.limits.max_url_bytes:
            self._reject(URI_TOO_LONG)
            raise StopParsing

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))
        self._header_bytes += len(name) + len(value) + 4
        limits = self.limits
        if self._header_bytes > limits.max_header_bytes or len(self._headers) > limits.max_headers:
            self._reject(HEADERS_TOO_LARGE)
            raise StopParsing

    def on_headers_complete(self) -> None:
        self._in_head = False
        parser = self._parser
        self._keep_alive = parser.should_keep_alive() and not parser.should_upgrade()

    def on_message_complete(self) -> None:
        server = self.server
        if server.cmcd_tap is not None and b"CMCD=" in self._url:  # QoE (qoe.origin_tap)
            server.cmcd_tap(self._url, server.clock())
        if (  # fast path, without a gate: a keep-alive GET answered without building a Request
            server.gate is None
            and self.parked is None
            and not self._queue
            and self._keep_alive
            and self._parser.get_method() == b"GET"
            and (
                (server.shed_level and self._shed(self._url))
                or self._answered_from_cache(server.cache_key(self._url), server.clock())
            )
        ):
            return
        request = self._build_request()
        if request is None:
            self._reject(BAD_REQUEST)
            raise StopParsing
        keep_alive = self._keep_alive
        if not keep_alive:
            self._accepting = False
        if self.parked is None and not self._queue:
            self._idle_since = None
            self._dispatch(request, keep_alive=keep_alive, target=server.cache_key(self._url))
        elif len(self._queue) < self.limits.max_pipelined:
            self._idle_since = None
            self._queue.append((request, keep_alive))
        else:
            self.close("bad_request", abort=True)
            raise StopParsing

    def _shed(self, target: bytes) -> bool:
        """While shedding, for a keep-alive GET: answer its class's 503 if it is shed."""
        assert self.server.shedder is not None
        response = self.server.shedder.check_target(target)
        if response is None:
            return False
        self._idle_since = None
        now = self.server.clock()
        self._respond(response, response.object_type, now, head=False, keep_alive=True)
        return True

    def _answered_from_cache(self, target: bytes, now: float) -> bool:
        """For a keep-alive GET of a target seen since the last state change: send the same
        answer, or park it under the same hold (False: nothing known, ask the handler)."""
        server = self.server
        answers = server.answers
        cached = answers.answer(target)
        if cached is not None:
            self._idle_since = None
            self._respond(cached, cached.object_type, now, head=False, keep_alive=True)
            return True
        hold = answers.hold(target, now)
        if hold is not None:
            self._idle_since = None
            server.park(self, hold, head=False, keep_alive=True)
            return True
        return False

    def _build_request(self) -> Request | None:
        url = self._url
        if url[:1] == b"/":
            path, _, query = url.partition(b"?")
        else:  # absolute-form, as a proxy would send
            try:
                parsed = httptools.parse_url(url)
            except httptools.HttpParserInvalidURLError:
                return None
            path, query = parsed.path or b"/", parsed.query or b""
        method = self._parser.get_method()
        name = METHODS.get(method) or method.decode("latin-1")
        headers = tuple(
            (key.decode("latin-1").lower(), value.decode("latin-1")) for key, value in self._headers
        )
        return Request(name, path.decode("latin-1"), query.decode("latin-1"), headers)

    def _dispatch(self, request: Request, *, keep_alive: bool, target: bytes = b"") -> None:
        """Answer ``request`` now or park it until the handler can: the gate first, then the
        answer cache (when a gate kept the fast path from it), then the handler."""
        server = self.server
        now = server.clock()
        head = request.method == "HEAD"
        if not head and request.method != "GET":
            self._respond(METHOD_NOT_ALLOWED, "other", now, head=False, keep_alive=keep_alive)
            return
        if server.shed_level and server.shedder is not None:  # before the gate, cache, handler
            shed = server.shedder.check(request.path, request.query)
            if shed is not None:
                self._respond(shed, shed.object_type, now, head=head, keep_alive=keep_alive)
                return
        cacheable = not head and target[:1] == b"/"
        gate = server.gate
        if gate is not None:
            refusal = gate.authorize(request, now)
            if refusal is not None:
                self._respond(refusal.response, "other", now, head=head, keep_alive=keep_alive)
                return
            if cacheable and keep_alive and self._answered_from_cache(target, now):
                return
        endpoint = server.async_endpoints.get(request.path)
        if endpoint is not None:
            self._await(endpoint, request, now, head=head, keep_alive=keep_alive)
            return
        outcome = server.route(request, now)
        if isinstance(outcome, Response):
            if cacheable:
                server.answers.remember(target, outcome)
            self._respond(outcome, outcome.object_type, now, head=head, keep_alive=keep_alive)
        elif outcome.deadline <= now:
            expired = server.expire_now(outcome.key, now)
            self._respond(expired, outcome.object_type, now, head=head, keep_alive=keep_alive)
        else:
            try:
                server.park(self, outcome, head=head, keep_alive=keep_alive)
                if cacheable and keep_alive:
                    server.answers.remember_hold(target, outcome, now)
            except TypeError:  # an unhashable key
                log.exception("handler returned an unusable hold key %r", outcome.key)
                self._respond(
                    INTERNAL_ERROR, outcome.object_type, now, head=head, keep_alive=keep_alive
                )

    def _await(
        self, endpoint: AsyncEndpoint, request: Request, now: float, *, head: bool, keep_alive: bool
    ) -> None:
        """Answer ``request`` from ``endpoint`` once it has, meanwhile queueing what follows."""
        task = self.server.call_endpoint(endpoint, request, now)
        self.parked = Awaiting(task, head, keep_alive)
        task.add_done_callback(self._endpoint_answered)

    def _endpoint_answered(self, task: asyncio.Task[Response]) -> None:
        awaiting = self.parked
        if not isinstance(awaiting, Awaiting) or awaiting.task is not task or task.cancelled():
            return  # the connection closed meanwhile
        self.parked = None
        server = self.server
        server.refresh_date()
        now = server.clock()
        response = task.result()
        self._respond(
            response,
            response.object_type,
            now,
            head=awaiting.head,
            keep_alive=awaiting.keep_alive,
        )
        if self._queue:
            self._run_queue(now)

    def answer_parked(self, response: Response, now: float) -> None:
        """Send ``response`` to the parked request (already out of the parking lot)."""
        parked = self.parked
        if parked is None or isinstance(parked, Awaiting):
            return
        self.parked = None
        self.server.metrics.blocked.value -= 1
        self._respond(
            response, parked.object_type, now, head=parked.head, keep_alive=parked.keep_alive
        )
        if self._queue:
            self._run_queue(now)

    def _run_queue(self, now: float) -> None:
        while self._queue and self.parked is None and self._close_reason is None:
            item, keep_alive = self._queue.popleft()
            if isinstance(item, Response):
                self._respond(item, "other", now, head=False, keep_alive=False)
            else:
                self._dispatch(item, keep_alive=keep_alive)

    def _respond(
        self, response: Response, object_type: str, now: float, *, head: bool, keep_alive: bool
    ) -> None:
        transport = self.transport
        if transport is None or self._close_reason is not None:
            return
        if transport.get_write_buffer_size() > self.limits.max_write_buffer:
            self.close("slow_client", abort=True)
            return
        data = self.server.wire(response, head=head, keep_alive=keep_alive)
        transport.write(data)
        self.server.metrics.count_response(object_type, response.status, len(data))
        if not keep_alive:
            refused = response.status in REFUSALS  # linger, so that the client can read it
            self.close("bad_request" if refused else "client", linger=refused)
        elif self.parked is None and not self._queue:
            self._idle_since = now
            self._last_buffer_size = 0

    def _reject(self, error: Response) -> None:
        """Answer a protocol error (after any earlier pending answers), then close."""
        self._accepting = False
        if self.parked is None and not self._queue:
            self._respond(error, "other", self.server.clock(), head=False, keep_alive=False)
        else:
            self._queue.append((error, False))

    def close(self, reason: str, *, abort: bool = False, linger: bool = False) -> None:
        """Close once (flushing unless ``abort``); ``reason`` is counted when the socket goes.

        ``linger`` only half-closes and keeps discarding input until the peer closes (or the idle
        sweep cuts it), so that unread request bytes do not turn our close into a reset that
        destroys the error response before the client reads it.
        """
        self._accepting = False
        transport = self.transport
        if self._close_reason is not None or transport is None:
            return
        self._close_reason = reason
        self.server.unpark(self)
        self._queue.clear()
        self._idle_since = self.server.clock()
        if abort:
            transport.abort()
        elif linger and transport.can_write_eof():
            transport.write_eof()
        else:
            transport.close()
        if reason == "shutdown":
            self.server.forget(self, reason)

    def check_idle(self, now: float, timeout: float) -> None:
        """Close when idle too long; cut a client whose unread output stopped draining."""
        since = self._idle_since
        transport = self.transport
        if since is None or transport is None:
            return
        pending = transport.get_write_buffer_size()
        if pending:
            if pending < self._last_buffer_size:  # the client is reading: progress
                self._idle_since = now
            self._last_buffer_size = pending
            if now - since > timeout and self._idle_since == since:
                self._close_reason = None  # replace a pending graceful close
                self.close("slow_client", abort=True)
        elif now - since > timeout:
            if self._close_reason is None:
                self.close("idle_timeout")
            else:  # a lingering close the peer never finished
                transport.abort()
