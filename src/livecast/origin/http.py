"""The origin's HTTP/1.1 server: a thin asyncio adapter around the pure :class:`Handler`.

Built for thousands of LL-HLS clients per core: a bare :class:`asyncio.Protocol` per connection
(uvloop when installed), httptools parsing, bytes encoded once per :class:`Response` and second
(memoised in ``Response._wire``). What is not about sockets lives in pure parts: the gate
(``origin.gate``) asked first, the answer cache by request target (``origin.answer_cache``), and
the parking lot of held requests by hold key (``origin.parking``), so that
:meth:`OriginServer.notify` answers all waiters of a key with one ``resume`` and one encode.
One periodic sweep handles deadlines and idle connections — no task or timer per request,
except for the few paths served by an awaited endpoint (``async_endpoints``: the session
endpoints over a lease store), each call on its own task, bounded by ``endpoint_timeout``, its
connection's later requests queued behind it (answers stay in order), nobody else waiting.

GET and HEAD only (else 405); keep-alive by default; pipelined requests answered in order; URL too
long → 414, headers too large → 431, malformed → 400 (each then closes). A client that stops
reading is cut off once ``max_write_buffer`` bytes wait for it or its output stalls for
``idle_timeout``; it never delays anyone else.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Mapping
from email.utils import formatdate
from typing import NamedTuple, cast

import httptools

from livecast.origin.answer_cache import AnswerCache
from livecast.origin.contract import AsyncEndpoint, Handler, Hold, Request, Response
from livecast.origin.gate import Gate, active
from livecast.origin.parking import ParkingLot
from livecast.origin.shedding import SheddingConfig, make_shedder
from livecast.origin.wire import (
    BAD_REQUEST,
    CONNECTION_LINE,
    HEADERS_TOO_LARGE,
    HOLD_EXPIRED,
    INTERNAL_ERROR,
    METHOD_NOT_ALLOWED,
    METHODS,
    REFUSALS,
    URI_TOO_LONG,
    WIRE_KEY,
    HttpLimits,
    OriginMetrics,
    encode_head,
)
from livecast.telemetry.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from livecast.telemetry.metrics import Registry

log = logging.getLogger(__name__)

ENDPOINT_TIMED_OUT = Response(
    503,
    b"the endpoint did not answer in time\n",
    cache_control="no-store",
    extra_headers=(("Retry-After", "1"),),
)


class _Parked(NamedTuple):
    """Under which key a parked request waits and how to answer it."""

    key: Hashable
    object_type: str
    head: bool
    keep_alive: bool


class _Awaiting(NamedTuple):
    """The connection's request being answered by an awaited endpoint (on ``task``)."""

    task: asyncio.Task[Response]
    head: bool
    keep_alive: bool


_Queued = tuple[Request | Response, bool]  # a request (or a protocol error to send) + keep-alive


class _StopParsing(Exception):
    """Raised from a parser callback to abandon the rest of the received bytes."""


class OriginServer:
    """HTTP/1.1 front of a :class:`Handler`; call :meth:`notify` after every state change.

    Each request meets, in this order: load shedding (``shedding``, off by default; over
    capacity the 503 of a shed class, ``origin.shedding``); the ``gate`` (a refusal is the
    answer, never remembered); the ``answers`` cache (an answer or hold already given to the same
    target); the handler, whose held requests wait in the ``parking`` lot until :meth:`notify` or
    their deadline. Between the cache and the handler, a path of ``async_endpoints`` is
    awaited instead (one dict lookup per request that reaches the handler; see the module).
    ``collectors`` are called before each ``/metrics`` answer (figures kept elsewhere).
    """

    def __init__(
        self,
        handler: Handler,
        registry: Registry,
        *,
        limits: HttpLimits | None = None,
        clock: Callable[[], float] = time.monotonic,
        cache_key: Callable[[bytes], bytes] | None = None,
        gate: Gate | None = None,
        shedding: SheddingConfig | None = None,
        async_endpoints: Mapping[str, AsyncEndpoint] | None = None,
        endpoint_timeout: float = 5.0,
        collectors: Iterable[Callable[[], None]] = (),
    ) -> None:
        self.handler = handler
        self.async_endpoints = dict(async_endpoints or {})
        self.endpoint_timeout = endpoint_timeout
        self.collectors = tuple(collectors)
        self._endpoint_calls: set[asyncio.Task[Response]] = set()  # strong references
        self.gate = active(gate)  # None: every request may have an answer
        # Maps a raw request target to the key of the answer cache; the handler may know that
        # some query arguments (CMCD, cache busters) never change its answer.
        self.cache_key = cache_key or (lambda target: target)
        self.registry = registry
        self.limits = limits = limits or HttpLimits()
        self.clock = clock
        self.metrics = OriginMetrics(registry)
        # Load shedding (origin.shedding): None when off; ``shed_level`` is 0 unless a class is
        # being shed, the one test the fast path makes
        self.shedder = make_shedder(shedding, registry)
        self.shed_level = 0
        self.answers = AnswerCache()
        self.parking: ParkingLot[_Connection] = ParkingLot(resolution=limits.sweep_interval)
        self.port = 0
        self.encode_count = 0  # responses serialised; stays flat when a memo is reused
        self.date_line = b""
        self._date_second = -1
        self.refresh_date()
        self._connections: dict[_Connection, None] = {}
        self._idle_check_every = max(limits.sweep_interval, min(1.0, limits.idle_timeout / 4))
        self._next_idle_check = 0.0
        self._server: asyncio.AbstractServer | None = None
        self._timer: asyncio.TimerHandle | None = None

    async def start(self, host: str, port: int, *, reuse_port: bool = False) -> None:
        """Listen on ``host:port`` (port 0 picks a free one, then exposed as ``.port``)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self), host, port, backlog=4096, reuse_port=reuse_port or None
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._next_idle_check = self.clock() + self._idle_check_every
        self._timer = loop.call_later(self.limits.sweep_interval, self._tick)

    async def stop(self) -> None:
        """Stop listening, cut every connection, forget every parked request."""
        if self._timer is not None:
            self._timer.cancel()
        server, self._server, self._timer = self._server, None, None
        if server is not None:
            server.close()
        for connection in list(self._connections):
            connection.close("shutdown", abort=True)
        calls = list(self._endpoint_calls)
        for call in calls:
            call.cancel()
        await asyncio.gather(*calls, return_exceptions=True)
        if server is not None:
            await server.wait_closed()
        await asyncio.sleep(0)  # let the transports report connection_lost

    def notify(self) -> None:
        """Resume parked requests after the handler's state changed (one resume per key)."""
        self.answers.state_changed()
        parking = self.parking
        if not parking:
            return
        self.refresh_date()
        now = self.clock()
        for key in parking.held_keys():
            try:
                response = self.handler.resume(key, now)
            except Exception:
                log.exception("handler.resume failed for %r", key)
                continue
            if response is None:
                continue
            for connection in parking.release(key):
                connection.answer_parked(response, now)

    def sweep(self) -> None:
        """Answer parked requests past their deadline; close idle and stalled connections."""
        self.refresh_date()
        now = self.clock()
        for key, connections in self.parking.due(now):
            response = self.expire_now(key, now)
            for connection in connections:
                connection.answer_parked(response, now)
        if now >= self._next_idle_check:
            self._next_idle_check = now + self._idle_check_every
            for connection in list(self._connections):
                connection.check_idle(now, self.limits.idle_timeout)

    def refresh_date(self) -> None:
        """Re-format the ``Date`` header line when the wall-clock second changed."""
        second = int(time.time())
        if second != self._date_second:
            self._date_second = second
            self.date_line = f"Date: {formatdate(second, usegmt=True)}\r\n".encode()

    def _tick(self) -> None:
        try:
            if self.shedder is not None and self._timer is not None:
                lag = asyncio.get_running_loop().time() - self._timer.when()  # loop lag probe
                self.shed_level = self.shedder.observe(lag, self.clock())
            self.sweep()
        finally:
            if self._server is not None:
                interval = self.limits.sweep_interval
                self._timer = asyncio.get_running_loop().call_later(interval, self._tick)

    def route(self, request: Request, now: float) -> Response | Hold:
        """``/metrics`` from the registry, everything else from the handler."""
        if request.path == "/metrics":
            for collect in self.collectors:
                collect()
            return Response(
                200, self.registry.render(), METRICS_CONTENT_TYPE, "no-cache", "metrics"
            )
        try:
            return self.handler.handle(request, now)
        except Exception:
            log.exception("handler failed for %s %s", request.method, request.path)
            return INTERNAL_ERROR

    def call_endpoint(
        self, endpoint: AsyncEndpoint, request: Request, now: float
    ) -> asyncio.Task[Response]:
        """``endpoint``'s answer to ``request``, on a task of its own (kept until done)."""
        task = asyncio.ensure_future(self.answer_endpoint(endpoint, request, now))
        self._endpoint_calls.add(task)
        task.add_done_callback(self._endpoint_calls.discard)
        return task

    async def answer_endpoint(
        self, endpoint: AsyncEndpoint, request: Request, now: float
    ) -> Response:
        """``endpoint``'s answer within ``endpoint_timeout`` (else a 503; a bug: a 500)."""
        try:
            async with asyncio.timeout(self.endpoint_timeout):
                return await endpoint(request, now)
        except TimeoutError:
            log.warning("%s did not answer within %g s", request.path, self.endpoint_timeout)
            return ENDPOINT_TIMED_OUT
        except Exception:
            log.exception("endpoint failed for %s %s", request.method, request.path)
            return INTERNAL_ERROR

    def wire(self, response: Response, *, head: bool, keep_alive: bool) -> bytes:
        """The bytes to send for ``response``, encoded at most once per kind and second."""
        memo = response._wire
        date_line = self.date_line
        if memo.get("date") != date_line:
            prefix = memo.get("prefix") or encode_head(response)
            memo.clear()
            memo["prefix"] = prefix
            memo["date"] = date_line
        key = WIRE_KEY[head][keep_alive]
        data = memo.get(key)
        if data is None:
            data = memo["prefix"] + date_line + CONNECTION_LINE[keep_alive]
            if not head:
                data += response.body
            memo[key] = data
            self.encode_count += 1
        return data

    def park(self, connection: _Connection, hold: Hold, *, head: bool, keep_alive: bool) -> None:
        """Hold ``connection``'s request under ``hold`` (TypeError: an unhashable key)."""
        self.parking.park(connection, hold.key, hold.deadline)
        connection.parked = _Parked(hold.key, hold.object_type, head, keep_alive)
        self.metrics.blocked.value += 1

    def unpark(self, connection: _Connection) -> None:
        """Forget a parked connection that will not be answered (it closed)."""
        parked = connection.parked
        if parked is None:
            return
        if isinstance(parked, _Awaiting):  # the call completes (a store write stays whole);
            connection.parked = None  # its answer has nowhere to go
            return
        self.parking.unpark(connection, parked.key)
        connection.parked = None
        self.metrics.blocked.value -= 1

    def expire_now(self, key: Hashable, now: float) -> Response:
        """The handler's answer to a hold past its deadline (a plain 503 if it fails)."""
        try:
            return self.handler.expired(key, now)
        except Exception:
            log.exception("handler.expired failed for %r", key)
            return HOLD_EXPIRED

    def opened(self, connection: _Connection) -> None:
        self._connections[connection] = None
        self.metrics.connections.value += 1

    def forget(self, connection: _Connection, reason: str) -> None:
        """A connection is gone: drop it from every table and count why it closed."""
        if connection not in self._connections:
            return
        del self._connections[connection]
        self.unpark(connection)
        self.metrics.connections.value -= 1
        self.metrics.closed[reason].value += 1


class _Connection(asyncio.Protocol):
    """One client connection: parse requests, answer them in order, park blocking ones."""

    def __init__(self, server: OriginServer) -> None:
        self.server = server
        self.limits = server.limits
        self.parked: _Parked | _Awaiting | None = None  # not None: later requests queue
        self.transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._queue: deque[_Queued] = deque()
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
            if self._accepting:  # else our own _StopParsing, already answered
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
            raise _StopParsing

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))
        self._header_bytes += len(name) + len(value) + 4
        limits = self.limits
        if self._header_bytes > limits.max_header_bytes or len(self._headers) > limits.max_headers:
            self._reject(HEADERS_TOO_LARGE)
            raise _StopParsing

    def on_headers_complete(self) -> None:
        self._in_head = False
        parser = self._parser
        self._keep_alive = parser.should_keep_alive() and not parser.should_upgrade()

    def on_message_complete(self) -> None:
        server = self.server
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
            raise _StopParsing
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
            raise _StopParsing

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
        self.parked = _Awaiting(task, head, keep_alive)
        task.add_done_callback(self._endpoint_answered)

    def _endpoint_answered(self, task: asyncio.Task[Response]) -> None:
        awaiting = self.parked
        if not isinstance(awaiting, _Awaiting) or awaiting.task is not task or task.cancelled():
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
        if parked is None or isinstance(parked, _Awaiting):
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
