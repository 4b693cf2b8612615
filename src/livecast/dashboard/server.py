"""The asyncio adapter that serves the dashboard page, its event stream and ``/metrics`` — and the
rehearsal's ``/metrics`` alone (``livecast rehearse --metrics-port``). GET and HEAD only; one
request per connection (``Connection: close``); the request head is parsed by
:mod:`livecast.dashboard.wire`.

Bounds: at most ``max_connections`` connections at once (more are answered 503), a request head
must arrive within :data:`HEAD_TIMEOUT`; the event stream has at most ``max_clients`` listeners
(more: 503), each with a queue of ``backlog`` events — a listener whose queue is full, or whose
socket does not drain within :data:`DRAIN_TIMEOUT`, is dropped and counted
(:attr:`SseHub.dropped`); the page reconnects by itself (EventSource does).

    hub = SseHub(hello=lambda: [frame(history_json, event="history")])
    server = HttpServer({"/": page, "/metrics": metrics}, hub)
    await server.start("127.0.0.1", 0)
    hub.publish(frame(point_json))   # once a second
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable, Mapping

from livecast.dashboard.wire import (
    MAX_HEAD,
    SSE_CONTENT_TYPE,
    comment,
    error_response,
    parse_request_head,
    response_head,
)
from livecast.errors import RequestError

log = logging.getLogger("livecast.dashboard")

HEAD_TIMEOUT = 10.0  # seconds for a request head to arrive
DRAIN_TIMEOUT = 5.0  # seconds an event may wait for the client's socket before it is dropped
Handler = Callable[[], tuple[bytes, str]]  # → (body, content type)


class SseHub:
    """The event stream's listeners: each gets what :meth:`publish` sends, through a bounded
    queue; a slow one is dropped (:attr:`dropped`), one too many refused (:attr:`refused`)."""

    def __init__(
        self,
        max_clients: int = 16,
        backlog: int = 8,
        hello: Callable[[], list[bytes]] | None = None,
    ) -> None:
        self.max_clients = max_clients
        self.backlog = backlog
        self.hello = hello  # the events a new listener gets first (the history so far)
        self.clients: dict[int, tuple[asyncio.Queue[bytes], asyncio.Task[None]]] = {}
        self.dropped = 0
        self.refused = 0
        self.published = 0
        self._ids = itertools.count(1)

    def publish(self, frame: bytes) -> None:
        """One event to every listener; a listener whose queue is full is dropped."""
        self.published += 1
        for client, (queue, task) in list(self.clients.items()):
            try:
                queue.put_nowait(frame)
            except asyncio.QueueFull:
                self._drop(client, task)

    def _drop(self, client: int, task: asyncio.Task[None]) -> None:
        if self.clients.pop(client, None) is not None:
            self.dropped += 1
            task.cancel()

    async def serve(self, writer: asyncio.StreamWriter) -> None:
        """Stream events to one listener until it goes away or is dropped."""
        if len(self.clients) >= self.max_clients:
            self.refused += 1
            writer.write(error_response(503, "too many event-stream listeners"))
            return
        task = asyncio.current_task()
        assert task is not None
        client = next(self._ids)
        queue: asyncio.Queue[bytes] = asyncio.Queue(self.backlog)
        self.clients[client] = (queue, task)
        try:
            writer.write(response_head(200, SSE_CONTENT_TYPE, None))
            writer.write(comment("livecast dashboard"))
            for hello in self.hello() if self.hello is not None else []:
                writer.write(hello)
            while True:
                try:
                    await asyncio.wait_for(writer.drain(), DRAIN_TIMEOUT)
                except TimeoutError:
                    self.dropped += 1  # the socket does not take what was sent
                    return
                writer.write(await queue.get())
        finally:
            self.clients.pop(client, None)


class HttpServer:
    """GET/HEAD ``routes`` (path → handler) and, with a hub, its event stream at ``sse_path``."""

    def __init__(
        self,
        routes: Mapping[str, Handler],
        hub: SseHub | None = None,
        *,
        sse_path: str = "/events",
        max_connections: int = 64,
    ) -> None:
        self.routes = dict(routes)
        self.hub = hub
        self.sse_path = sse_path
        self.max_connections = max_connections
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        assert self._server is not None, "not started"
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def host(self) -> str:
        assert self._server is not None, "not started"
        host: str = self._server.sockets[0].getsockname()[0]
        return host

    def url(self, path: str = "/") -> str:
        return f"http://{self.host}:{self.port}{path}"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = await asyncio.start_server(self._connection, host, port, limit=MAX_HEAD)

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):
            await self._server.wait_closed()
        self._server = None

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        try:
            if self.connections > self.max_connections:
                writer.write(error_response(503, "too many connections"))
            else:
                await self._answer(reader, writer)
            with contextlib.suppress(ConnectionError, TimeoutError):
                await asyncio.wait_for(writer.drain(), DRAIN_TIMEOUT)
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass
        finally:
            self.connections -= 1
            self._tasks.discard(task)
            writer.close()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT)
        except asyncio.LimitOverrunError:
            writer.write(error_response(431, "request head too large"))
            return
        try:
            request = parse_request_head(head[:-4])
        except RequestError as exc:
            writer.write(error_response(exc.status, str(exc)))
            return
        if self.hub is not None and request.path == self.sse_path:
            if request.method == "GET":
                await self.hub.serve(writer)
            else:
                writer.write(response_head(200, SSE_CONTENT_TYPE, None))
            return
        handler = self.routes.get(request.path)
        if handler is None:
            writer.write(error_response(404, f"no such page: {request.path}"))
            return
        body, content_type = handler()
        writer.write(response_head(200, content_type, len(body)))
        if request.method == "GET":
            writer.write(body)
