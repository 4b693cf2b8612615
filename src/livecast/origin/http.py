"""The origin's HTTP/1.1 server: a thin asyncio adapter around the pure :class:`Handler`.

Built for thousands of LL-HLS clients per core: a bare :class:`asyncio.Protocol` per connection
(uvloop when installed), httptools parsing, bytes encoded once per :class:`Response` and second
(memoised in ``Response._wire``). What is not about sockets lives in pure parts: the gate
(``origin.gate``) asked first, the answer cache by request target (``origin.answer_cache``), and
the parking lot of held requests by hold key (``origin.parking``), so that
:meth:`OriginServer.notify` answers all waiters of a key with one ``resume`` and one encode.
Each connection is a :class:`~livecast.origin.connection.Connection`.
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
from collections.abc import Callable, Hashable, Iterable, Mapping
from email.utils import formatdate

from livecast.origin.answer_cache import AnswerCache
from livecast.origin.connection import Awaiting, Connection, Parked
from livecast.origin.contract import AsyncEndpoint, Handler, Hold, Request, Response
from livecast.origin.gate import Gate, active
from livecast.origin.parking import ParkingLot
from livecast.origin.shedding import SheddingConfig, make_shedder
from livecast.origin.wire import (
    CONNECTION_LINE,
    HOLD_EXPIRED,
    INTERNAL_ERROR,
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
        # Called with the raw target of each request holding "CMCD=" and its now (qoe.origin_tap:
        # a bounded append, parsed before /metrics); None: CMCD is not looked at
        self.cmcd_tap: Callable[[bytes, float], None] | None = None
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
        self.parking: ParkingLot[Connection] = ParkingLot(resolution=limits.sweep_interval)
        self.port = 0
        self.encode_count = 0  # responses serialised; stays flat when a memo is reused
        self.date_line = b""
        self._date_second = -1
        self.refresh_date()
        self._connections: dict[Connection, None] = {}
        self._idle_check_every = max(limits.sweep_interval, min(1.0, limits.idle_timeout / 4))
        self._next_idle_check = 0.0
        self._server: asyncio.AbstractServer | None = None
        self._timer: asyncio.TimerHandle | None = None

    async def start(self, host: str, port: int, *, reuse_port: bool = False) -> None:
        """Listen on ``host:port`` (port 0 picks a free one, then exposed as ``.port``)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: Connection(self), host, port, backlog=4096, reuse_port=reuse_port or None
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

    def park(self, connection: Connection, hold: Hold, *, head: bool, keep_alive: bool) -> None:
        """Hold ``connection``'s request under ``hold`` (TypeError: an unhashable key)."""
        self.parking.park(connection, hold.key, hold.deadline)
        connection.parked = Parked(hold.key, hold.object_type, head, keep_alive)
        self.metrics.blocked.value += 1

    def unpark(self, connection: Connection) -> None:
        """Forget a parked connection that will not be answered (it closed)."""
        parked = connection.parked
        if parked is None:
            return
        if isinstance(parked, Awaiting):  # the call completes (a store write stays whole);
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

    def opened(self, connection: Connection) -> None:
        self._connections[connection] = None
        self.metrics.connections.value += 1

    def forget(self, connection: Connection, reason: str) -> None:
        """A connection is gone: drop it from every table and count why it closed."""
        if connection not in self._connections:
            return
        del self._connections[connection]
        self.unpark(connection)
        self.metrics.connections.value -= 1
        self.metrics.closed[reason].value += 1
