"""One viewer of a Locust worker: a sans-IO player on its keep-alive lanes, in gevent.

:class:`ViewerSession` runs one :class:`~livecast.player.model.Player` in a
:class:`~livecast.player.harness.ViewerHarness` (the model and harness the asyncio driver runs);
:mod:`~livecast.rehearse.locust_user` makes Locust users of it. What a viewer of this process
shares with the others (the run's recorder, the URL router, the parsed-playlist cache, the counts
of the progress line) comes in as a :class:`Shared` — this module never imports the locustfile,
which Locust loads under a name of its own.

Concurrency: a player keeps at most one playlist and one media request in flight per track and
LL-HLS playlist reloads are *held* by the server, so requests cannot be performed one after
another. Each request runs in a raw greenlet (``gevent.spawn_raw``: no links, no spawn tree —
the lanes' sockets are what a finished viewer closes to end them), sleeping until its
``not_before`` if it has one; the greenlet goes on with the first request the answer makes the
player ask (no spawn for it), the others get greenlets of their own. Requests go on the viewer's
keep-alive connections ("lanes", at most :data:`~livecast.player.lanes.MAX_LANES`) chosen by a
:class:`~livecast.player.lanes.LanePool` as in the driver — a request that finds every lane busy
waits for one. The viewer's own greenlet sleeps until the harness's next deadline, woken early
when an answer moves it. The player is only touched between greenlet switches, so it needs no
lock.

A lane (:class:`HttpLane`) is a gevent socket and an httptools parser, as lean as the driver's
client: one request written in one ``send``, the answer awaited before the first read (no read
failing first) and read into one buffer of the lane, the whole answer under a deadline (a timer
the lane keeps per timeout value and restarts: no ``gevent.Timeout`` per request). A kept-alive
connection the server had closed before answering gets the request once more on a new connection
(as the driver's client); any other failure ("connect", "reset", "timeout", "protocol") closes the
lane and goes to the player, which owns the retries.
"""

from __future__ import annotations

import functools
import logging
import math
import random
import socket
import time
from collections.abc import Callable
from typing import Any, Protocol

import gevent  # type: ignore[import-untyped]
import gevent.event  # type: ignore[import-untyped]
import gevent.socket  # type: ignore[import-untyped]
import httptools

from livecast.httpsink import scan_head
from livecast.player.config import PlayerConfig
from livecast.player.harness import TEXT_KINDS, RunRecorder, ViewerHarness
from livecast.player.lanes import MAX_LANES, LanePool, Router
from livecast.player.model import Player
from livecast.player.parsed import PlaylistCache
from livecast.player.requests import Request
from livecast.player.tunein import parse_age
from livecast.rehearse.progress import ProgressMeter

log = logging.getLogger("livecast.locust")

USER_AGENT = "livecast-rehearse-locust"
SEND_SLACK = 0.001  # seconds: a request or an answer due sooner goes now
READ_BLOCK = 65536  # bytes read at once
CONNECT_TIMEOUT = 10.0  # seconds (the request's own deadline applies too)


class Shared(Protocol):
    """What the viewers of one process share (``locust_user._Results``)."""

    recorder: RunRecorder
    router: Router
    playlists: PlaylistCache
    active: int
    sessions: set[ViewerSession]
    second_requests: int
    second_errors: int
    meter: ProgressMeter  # starts, start failures, rebuffering for the progress reports


# request, status (0: none), failure kind or None, started, finished, bytes
OnRequest = Callable[[Request, int, str | None, float, float, int], None]


class LaneFailure(Exception):
    """No HTTP answer; ``kind`` is "connect", "reset", "timeout" or "protocol"."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


class _Dropped(Exception):
    """The connection ended before any byte of the answer."""


class _Expired(Exception):
    """The request's deadline passed (thrown into the greenlet performing it)."""


def _expire(greenlet: Any) -> None:
    greenlet.throw(_Expired())


class Answer:
    """One HTTP answer as the harness needs it."""

    __slots__ = ("age", "body", "first_byte", "size", "status")

    def __init__(
        self, status: int, body: bytes | None, size: int, first_byte: float, age: float | None
    ) -> None:
        self.status = status
        self.body = body  # kept only when asked (playlists)
        self.size = size
        self.first_byte = first_byte
        self.age = age


class HttpLane:
    """One keep-alive HTTP/1.1 connection of a viewer (connecting lazily); one request at a time.
    It is its own httptools protocol: the parser calls the ``on_*`` methods."""

    __slots__ = (
        "_buffer", "_chunks", "_closed", "_complete", "_keep_alive", "_keep_body", "_parser",
        "_size", "_sock", "_suffix", "_timers", "busy", "host", "port",
    )  # fmt: skip

    def __init__(self, host: str, port: int, headers: bytes = b"") -> None:
        self.host = host
        self.port = port
        self.busy = False
        self._closed = False
        self._suffix = (
            (
                f" HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: {USER_AGENT}\r\nAccept: */*\r\n"
            ).encode("latin-1")
            + headers
            + b"\r\n"
        )  # headers: CRLF-terminated lines (a cookie)
        self._sock: Any = None
        self._parser: Any = None
        self._buffer = bytearray(READ_BLOCK)
        self._timers: dict[float, Any] = {}  # seconds → a libev timer, (re)started per request
        self._keep_body = False
        self._chunks: list[bytes] = []
        self._size = 0
        self._complete = False
        self._keep_alive = False

    def get(self, target: str, keep_body: bool, timeout: float) -> Answer:
        """GET ``target`` (path and query) within ``timeout`` seconds; LaneFailure otherwise
        (the lane is closed then)."""
        timer = self._timers.get(timeout)
        if timer is None:  # repeating, so that ``again`` restarts it from its full length
            timer = self._timers[timeout] = gevent.get_hub().loop.timer(timeout, timeout)
        timer.again(_expire, gevent.getcurrent())
        try:
            return self._exchange(b"GET " + target.encode("latin-1") + self._suffix, keep_body)
        except _Expired:
            self._drop()
            raise LaneFailure("timeout") from None
        finally:
            timer.stop()

    def close(self) -> None:
        """For good: a request in flight fails, none connects again."""
        self._closed = True
        self._drop()

    # ------------------------------------------------------------ httptools callbacks
    def on_headers_complete(self) -> None:
        self._keep_alive = bool(self._parser.should_keep_alive())

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._keep_body:
            self._chunks.append(body)

    def on_message_complete(self) -> None:
        self._complete = True

    # ------------------------------------------------------------ internals
    def _exchange(self, wire: bytes, keep_body: bool) -> Answer:
        if self._sock is not None:  # kept alive: the server may have closed it meanwhile
            try:
                return self._send_and_read(wire, keep_body)
            except _Dropped:
                self._drop()
        self._connect()
        try:
            return self._send_and_read(wire, keep_body)
        except _Dropped:
            self._drop()
            raise LaneFailure("reset") from None

    def _drop(self) -> None:
        sock, self._sock, self._parser = self._sock, None, None
        if sock is not None:
            sock.close()

    def _connect(self) -> None:
        if self._closed:
            raise LaneFailure("reset")
        try:
            sock = gevent.socket.create_connection((self.host, self.port), CONNECT_TIMEOUT)
        except OSError:
            raise LaneFailure("connect") from None
        sock.settimeout(None)  # the request's deadline applies
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock
        self._parser = httptools.HttpResponseParser(self)

    def _send_and_read(self, wire: bytes, keep_body: bool) -> Answer:
        sock, parser, buffer = self._sock, self._parser, self._buffer
        self._keep_body, self._chunks, self._size = keep_body, [], 0
        self._complete = self._keep_alive = False
        head = b"" if keep_body else None  # playlists: the head is scanned for Age
        first_byte, age = 0.0, None
        try:
            sent = sock.send(wire)  # a request fits a socket buffer: sendall's machinery
            if sent < len(wire):  # (a getsockopt and a memoryview per call) is rarely needed
                sock.sendall(wire[sent:])
            sock._wait(sock._read_event)  # the answer is not in yet: no recv failing first
            while not self._complete:
                count = sock.recv_into(buffer)
                if not count:
                    raise ConnectionResetError("closed by the server")
                if not first_byte:
                    first_byte = time.time()
                data = memoryview(buffer)[:count]
                if head is not None:
                    head, raw_age = scan_head(head, data)
                    age = parse_age(raw_age)
                parser.feed_data(data)
        except OSError:
            if not first_byte:
                raise _Dropped from None
            self._drop()
            raise LaneFailure("reset") from None
        except httptools.HttpParserError:
            self._drop()
            raise LaneFailure("protocol") from None
        if not self._keep_alive:
            self._drop()
        body = b"".join(self._chunks) if keep_body else None
        return Answer(parser.get_status_code(), body, self._size, first_byte, age)


class ViewerSession:
    """One player on its lanes, inside a Locust user's greenlet; ``on_request`` (Locust's request
    event, when its statistics are wanted) hears of every request's outcome."""

    def __init__(
        self,
        shared: Shared,
        url: str,
        config: PlayerConfig,
        seed: int,
        on_request: OnRequest | None = None,
        headers: bytes = b"",
    ) -> None:
        self.shared = shared
        self.recorder = shared.recorder
        self.on_request = on_request
        self.player = Player(url, config, random.Random(seed), shared.playlists)
        self.harness = ViewerHarness(self.player, shared.recorder, time.time())
        # a lease's heartbeats get a lane of their own (a browser has 6 per host)
        lanes = MAX_LANES + 1 if config.session_url is not None else MAX_LANES
        self.lanes: LanePool[HttpLane] = LanePool(
            functools.partial(HttpLane, headers=headers), lanes
        )
        self.wakeup = gevent.event.Event()
        self.sleeping_until = math.inf  # the deadline the viewer's greenlet sleeps until
        self.done = False
        shared.active += 1
        shared.sessions.add(self)

    # ------------------------------------------------------------ lifecycle
    def run(self) -> None:
        """Until the player finishes; a GreenletExit (the user stopped) ends it too."""
        try:
            now = time.time()
            self._dispatch(self.harness.start(now), now)
            while not self.player.finished and not self.done:
                deadline = self.harness.next_deadline()
                self.wakeup.clear()
                self.sleeping_until = deadline
                self.wakeup.wait(max(0.0, deadline - time.time()))
                self.sleeping_until = math.inf
                now = time.time()
                self._dispatch(self.harness.wake(now), now)
        finally:
            self.finish(time.time())

    def finish(self, now: float) -> None:
        """The viewer's end: its requests in flight end with their lanes' sockets."""
        if self.done:
            return
        self.done = True
        self.shared.active -= 1
        self.shared.sessions.discard(self)
        self.lanes.close_all()
        self.shared.meter.finished(id(self), self.harness.finish(now))

    def _dispatch(self, requests: list[Request], now: float, keep: bool = False) -> Request | None:
        """Each request in a greenlet of its own — but the first one when ``keep``: it is the
        caller's to perform (a request's greenlet goes on with the next, no spawn)."""
        if self.done or self.player.finished:
            self.wakeup.set()  # the viewer's greenlet notices and finishes it
            return None
        kept = requests[0] if keep and requests else None
        for request in requests[1:] if kept is not None else requests:
            gevent.spawn_raw(self._perform, request)
        asleep_until = self.sleeping_until
        if asleep_until < math.inf and self.harness.next_deadline() < asleep_until:
            self.wakeup.set()  # sooner than the viewer's greenlet sleeps: it looks again
        return kept

    # ------------------------------------------------------------ requests
    def _perform(self, request: Request) -> None:
        """A request's greenlet: the request, then whatever its outcome makes the player ask
        first."""
        follow: Request | None = request
        try:
            while follow is not None:
                request = follow
                follow = self._send(request)
        except Exception:  # a raw greenlet: nobody else would see it
            log.exception("livecast: request %s failed in the Locust worker", request.url)

    def _send(self, request: Request) -> Request | None:
        delay = request.not_before - time.time()
        if delay > SEND_SLACK:
            gevent.sleep(delay)
        if self.done or not self.player.wanted(request.id):
            return None  # a delayed request (retry backoff, classic poll) no longer wanted
        host, port, target = self.shared.router.route(request.url)
        lane = self.lanes.acquire(host, port)
        if lane is None:
            self.lanes.wait(request)  # every lane busy: sent when one comes free
            return None
        lane.busy = True
        started = time.time()
        self.recorder.sent(request, started)
        answer: Answer | str
        try:
            answer = lane.get(target, request.kind in TEXT_KINDS, request.timeout)
        except LaneFailure as failure:
            self.lanes.discard(lane)
            answer = failure.kind
        finally:
            lane.busy = False
            self._next_waiting()
        if self.done:
            return None  # the viewer ended (its lanes closed) while this was in flight
        if isinstance(answer, str):
            return self._failed(request, answer, started)
        return self._answered(request, answer, started)

    def _failed(self, request: Request, kind: str, started: float) -> Request | None:
        finished = time.time()
        self._report(request, 0, kind, started, finished, 0)
        if self.done:
            return None
        return self._dispatch(self.harness.on_error(request.id, kind, finished), finished, True)

    def _answered(self, request: Request, answer: Answer, started: float) -> Request | None:
        finished = time.time()
        self._report(request, answer.status, None, started, finished, answer.size)
        if self.done:
            return None
        deliver_at = self.harness.link.delivery_time(answer.first_byte, finished, answer.size)
        wait = deliver_at - time.time()
        if wait > SEND_SLACK:
            gevent.sleep(wait)
        if self.done:
            return None
        now = time.time()
        actions = self.harness.on_response(
            request.id,
            answer.status,
            answer.body,
            answer.size,
            now,
            first_byte_at=answer.first_byte,
            age=answer.age,
        )
        return self._dispatch(actions, now, keep=True)

    def _next_waiting(self) -> None:
        """A lane came free: the request that waited longest, if the player still wants it."""
        if self.done:
            return
        while (request := self.lanes.next_waiting()) is not None:
            if self.player.wanted(request.id):
                gevent.spawn_raw(self._perform, request)
                return

    def _report(
        self,
        request: Request,
        status: int,
        failure: str | None,
        started: float,
        finished: float,
        size: int,
    ) -> None:
        shared = self.shared
        shared.second_requests += 1
        if failure is not None or status >= 400:
            shared.second_errors += 1
        if self.on_request is not None:
            self.on_request(request, status, failure, started, finished, size)
        if failure is not None:
            self.recorder.failed(request, failure, finished)
        else:
            self.recorder.answered(request, status, size, finished - started, finished)
