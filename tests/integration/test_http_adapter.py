"""The origin HTTP adapter over real sockets on 127.0.0.1, against an in-test fake Handler.

The fake implements the handler contract (origin/contract.py); what is under test is the adapter:
wire format, keep-alive and pipelining, limits, parking/notify/expiry, idle and slow clients,
and the metrics it keeps.
"""

from __future__ import annotations

import asyncio
import email.utils
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from dataclasses import dataclass

import pytest
import uvloop

from livecast.origin.contract import Hold, Request, Response
from livecast.origin.gate import Gate
from livecast.origin.http import OriginServer
from livecast.origin.wire import HttpLimits
from livecast.telemetry.metrics import Registry

pytestmark = pytest.mark.integration

BIG_BODY = b"\x00" * (1024 * 1024)


class FakeHandler:
    """A tiny origin: static files, an echo, a 1 MiB segment, and blocking ``/wait?<key>``."""

    def __init__(self, hold_seconds: float = 5.0) -> None:
        self.hold_seconds = hold_seconds
        self.requests: list[Request] = []
        self.ready: dict[Hashable, Response] = {}
        self.resume_calls: list[Hashable] = []
        self.expired_calls: list[Hashable] = []
        self.big = Response(200, BIG_BODY, "video/mp4", "max-age=31536000", "segment")

    def handle(self, request: Request, now: float) -> Response | Hold:
        self.requests.append(request)
        if request.path == "/hello.txt":
            return Response(
                200, b"hello world\n", "text/plain", "max-age=60", "static", (("X-Test", "1"),)
            )
        if request.path.startswith("/echo/"):
            return Response(200, f"{request.path}?{request.query}".encode(), object_type="other")
        if request.path == "/big":
            return self.big
        if request.path == "/wait":
            ready = self.ready.get(request.query)
            if ready is not None:
                return ready
            return Hold(request.query, now + self.hold_seconds, "playlist-blocking")
        return Response(404, b"not found\n", cache_control="max-age=1")

    def resume(self, key: Hashable, now: float) -> Response | None:
        self.resume_calls.append(key)
        return self.ready.get(key)

    def expired(self, key: Hashable, now: float) -> Response:
        self.expired_calls.append(key)
        return Response(503, b"expired\n", cache_control="max-age=1")


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


class Client:
    """A raw HTTP/1.1 client on one connection: send bytes, read replies in order."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int) -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    def get(self, target: str, method: str = "GET", extra: str = "") -> None:
        self.send(f"{method} {target} HTTP/1.1\r\nHost: t\r\n{extra}\r\n".encode())

    async def reply(self, head: bool = False, timeout: float = 3.0) -> Reply:
        return await asyncio.wait_for(self._reply(head), timeout)

    async def _reply(self, head: bool) -> Reply:
        lines = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        body = b"" if head else await self.reader.readexactly(int(headers["content-length"]))
        assert lines[0].startswith("HTTP/1.1 ")
        return Reply(int(lines[0].split()[1]), headers, body)

    async def closed_by_server(self, timeout: float = 3.0) -> bool:
        """True when the server closed the connection (EOF or reset) within ``timeout``."""
        try:
            rest = await asyncio.wait_for(self.reader.read(), timeout)
        except ConnectionError:
            return True
        return rest == b"" or self.reader.at_eof()

    async def nothing_within(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), seconds)
        except TimeoutError:
            return True
        return False

    def close(self) -> None:
        self.writer.close()


Serve = Callable[..., Awaitable[tuple[OriginServer, FakeHandler]]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    servers: list[OriginServer] = []

    async def start(
        handler: FakeHandler | None = None,
        limits: HttpLimits | None = None,
        clock: Callable[[], float] = time.monotonic,
        gate: Gate | None = None,
        cache_key: Callable[[bytes], bytes] | None = None,
    ) -> tuple[OriginServer, FakeHandler]:
        handler = handler or FakeHandler()
        server = OriginServer(
            handler, Registry(), limits=limits, clock=clock, gate=gate, cache_key=cache_key
        )
        await server.start("127.0.0.1", 0)
        servers.append(server)
        return server, handler

    yield start
    for server in servers:
        await server.stop()


def requests_counted(server: OriginServer, object_type: str, status: int) -> float:
    return server.metrics.requests.value(object_type, str(status))


def closed_for(server: OriginServer, reason: str) -> float:
    return server.metrics.closed[reason].value


async def until(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


def publish(server: OriginServer, handler: FakeHandler, key: str, body: bytes) -> Response:
    response = Response(200, body, "application/vnd.apple.mpegurl", "max-age=6", "playlist-plain")
    handler.ready[key] = response
    server.notify()
    return response


# --- plain exchanges ---------------------------------------------------------------------------


async def test_200_has_every_header_and_the_body(serve: Serve) -> None:
    server, handler = await serve()
    client = await Client.connect(server.port)
    client.get("/hello.txt?a=%20b&c", extra="X-Custom: Val\r\n")
    reply = await client.reply()

    assert reply.status == 200
    assert reply.body == b"hello world\n"
    assert reply.headers["content-type"] == "text/plain"
    assert reply.headers["content-length"] == "12"
    assert reply.headers["cache-control"] == "max-age=60"
    assert reply.headers["access-control-allow-origin"] == "*"
    assert reply.headers["access-control-expose-headers"] == "Age, Date"
    assert reply.headers["connection"] == "keep-alive"
    assert reply.headers["x-test"] == "1"
    sent_at = email.utils.parsedate_to_datetime(reply.headers["date"]).timestamp()
    assert abs(sent_at - time.time()) < 3
    assert handler.requests[-1] == Request(
        "GET", "/hello.txt", "a=%20b&c", (("host", "t"), ("x-custom", "Val"))
    )
    client.close()


async def test_path_reaches_the_handler_still_percent_encoded(serve: Serve) -> None:
    server, handler = await serve()
    client = await Client.connect(server.port)
    client.get("/echo/a%2Fb%20c")
    assert (await client.reply()).body == b"/echo/a%2Fb%20c?"
    assert handler.requests[-1].path == "/echo/a%2Fb%20c"
    client.close()


async def test_head_sends_the_same_headers_without_a_body(serve: Serve) -> None:
    server, handler = await serve()
    client = await Client.connect(server.port)
    client.get("/hello.txt", method="HEAD")
    client.get("/echo/next")  # would be misparsed if HEAD had carried a body
    head = await client.reply(head=True)
    following = await client.reply()
    assert head.status == 200 and head.headers["content-length"] == "12"
    assert head.headers["cache-control"] == "max-age=60"
    assert handler.requests[0].method == "HEAD"
    assert following.body == b"/echo/next?"
    client.close()


async def test_other_methods_get_405_and_the_connection_stays_usable(serve: Serve) -> None:
    server, handler = await serve()
    client = await Client.connect(server.port)
    client.send(b"POST /hello.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello")
    client.get("/echo/after")
    refused = await client.reply()
    assert refused.status == 405
    assert refused.headers["allow"] == "GET, HEAD"
    assert (await client.reply()).body == b"/echo/after?"
    assert [request.method for request in handler.requests] == ["GET"]
    client.close()


async def test_handler_404_passes_through(serve: Serve) -> None:
    server, _ = await serve()
    client = await Client.connect(server.port)
    client.get("/nope.m3u8")
    reply = await client.reply()
    assert (reply.status, reply.body) == (404, b"not found\n")
    assert reply.headers["cache-control"] == "max-age=1"
    client.close()


async def test_keep_alive_reuses_the_connection_and_pipelining_keeps_order(serve: Serve) -> None:
    server, _ = await serve()
    client = await Client.connect(server.port)
    client.get("/echo/first")
    assert (await client.reply()).body == b"/echo/first?"
    client.send(b"".join(f"GET /echo/{n} HTTP/1.1\r\nHost: t\r\n\r\n".encode() for n in range(5)))
    bodies = [(await client.reply()).body for _ in range(5)]
    assert bodies == [f"/echo/{n}?".encode() for n in range(5)]
    assert server.metrics.connections.value == 1
    client.close()


async def test_connection_close_is_honoured(serve: Serve) -> None:
    server, _ = await serve()
    client = await Client.connect(server.port)
    client.get("/hello.txt", extra="Connection: close\r\n")
    reply = await client.reply()
    assert reply.status == 200 and reply.headers["connection"] == "close"
    assert await client.closed_by_server()
    await until(lambda: closed_for(server, "client") == 1)


async def test_http_1_0_closes_unless_keep_alive_is_asked(serve: Serve) -> None:
    server, _ = await serve()
    plain = await Client.connect(server.port)
    plain.send(b"GET /hello.txt HTTP/1.0\r\n\r\n")
    assert (await plain.reply()).headers["connection"] == "close"
    assert await plain.closed_by_server()

    kept = await Client.connect(server.port)
    kept.send(b"GET /hello.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert (await kept.reply()).headers["connection"] == "keep-alive"
    kept.send(b"GET /echo/again HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert (await kept.reply()).body == b"/echo/again?"
    kept.close()


# --- limits and malformed requests ------------------------------------------------------------


async def test_oversized_url_gets_414_and_close(serve: Serve) -> None:
    server, handler = await serve(limits=HttpLimits(max_url_bytes=1024))
    client = await Client.connect(server.port)
    client.get("/echo/" + "a" * 1100)
    assert (await client.reply()).status == 414
    assert await client.closed_by_server()  # half-closed: the server lingers for our FIN
    assert handler.requests == []
    client.close()
    await until(lambda: closed_for(server, "bad_request") == 1)


@pytest.mark.parametrize(
    "headers",
    [
        "".join(f"X-H{n}: v\r\n" for n in range(120)),  # too many
        "X-Big: " + "b" * 20_000 + "\r\n",  # too many bytes
    ],
    ids=["count", "bytes"],
)
async def test_oversized_headers_get_431_and_close(serve: Serve, headers: str) -> None:
    server, handler = await serve()
    client = await Client.connect(server.port)
    client.get("/hello.txt", extra=headers)
    assert (await client.reply()).status == 431
    assert await client.closed_by_server()
    assert handler.requests == []


async def test_a_header_that_never_ends_is_cut_off_at_the_raw_limit(serve: Serve) -> None:
    server, _ = await serve(limits=HttpLimits(max_url_bytes=512, max_header_bytes=1024))
    client = await Client.connect(server.port)
    client.send(b"GET /hello.txt HTTP/1.1\r\nX-Endless: ")
    for _ in range(20):  # separate chunks; the parser buffers the unfinished value itself
        client.send(b"v" * 500)
        await client.writer.drain()
        await asyncio.sleep(0.005)
    assert (await client.reply()).status == 431
    assert await client.closed_by_server()


async def test_garbage_gets_400_and_close(serve: Serve) -> None:
    server, _ = await serve()
    client = await Client.connect(server.port)
    client.send(b"\x16\x03\x01 this is not http\r\n\r\n")
    reply = await client.reply()
    assert reply.status == 400 and reply.headers["connection"] == "close"
    assert await client.closed_by_server()
    assert requests_counted(server, "other", 400) == 1


# --- parked requests ---------------------------------------------------------------------------


async def test_parked_request_is_answered_by_notify(serve: Serve) -> None:
    server, handler = await serve()
    client = await Client.connect(server.port)
    client.get("/wait?k=1")
    await until(lambda: server.metrics.blocked.value == 1)
    assert await client.nothing_within(0.05)
    server.notify()  # state changed, but not for this key
    assert handler.resume_calls == ["k=1"]
    assert await client.nothing_within(0.05)

    publish(server, handler, "k=1", b"#EXTM3U\n")
    reply = await client.reply()
    assert (reply.status, reply.body) == (200, b"#EXTM3U\n")
    assert server.metrics.blocked.value == 0
    assert requests_counted(server, "playlist-blocking", 200) == 1
    client.close()


async def test_requests_pipelined_behind_a_parked_one_wait_and_keep_order(serve: Serve) -> None:
    server, handler = await serve()
    client = await Client.connect(server.port)
    client.get("/wait?k=p")
    client.get("/echo/after")
    client.get("/echo/head", method="HEAD")
    await until(lambda: server.metrics.blocked.value == 1)
    assert await client.nothing_within(0.05)
    publish(server, handler, "k=p", b"playlist")
    assert (await client.reply()).body == b"playlist"
    assert (await client.reply()).body == b"/echo/after?"
    assert (await client.reply(head=True)).headers["content-length"] == str(len(b"/echo/head?"))
    client.close()


async def test_too_many_requests_behind_a_parked_one_close_the_connection(serve: Serve) -> None:
    server, _ = await serve(limits=HttpLimits(max_pipelined=4))
    client = await Client.connect(server.port)
    client.get("/wait?k=q")
    for n in range(5):
        client.get(f"/echo/{n}")
    assert await client.closed_by_server()
    await until(lambda: closed_for(server, "bad_request") == 1)
    assert server.metrics.blocked.value == 0


async def test_one_notify_answers_500_parked_connections_with_one_encode(serve: Serve) -> None:
    server, handler = await serve()
    clients = await asyncio.gather(*(Client.connect(server.port) for _ in range(500)))
    for client in clients:
        client.get("/wait?k=live")
    await until(lambda: server.metrics.blocked.value == 500, timeout=10)
    encodes_before = server.encode_count

    response = publish(server, handler, "k=live", b"#EXTM3U\n#EXT-X-PART\n")

    assert handler.resume_calls == ["k=live"]
    assert server.encode_count == encodes_before + 1
    assert set(response._wire) >= {"keep-alive"}
    assert "close" not in response._wire and "head-keep-alive" not in response._wire
    replies = await asyncio.gather(*(client.reply() for client in clients))
    assert {(reply.status, reply.body) for reply in replies} == {(200, b"#EXTM3U\n#EXT-X-PART\n")}
    assert server.metrics.blocked.value == 0
    assert requests_counted(server, "playlist-blocking", 200) == 500
    for client in clients:
        client.close()


async def test_parked_request_past_its_deadline_gets_the_expired_503(serve: Serve) -> None:
    clock = FakeClock()
    server, handler = await serve(FakeHandler(hold_seconds=3.0), clock=clock)
    client = await Client.connect(server.port)
    client.get("/wait?k=late")
    await until(lambda: server.metrics.blocked.value == 1)

    clock.now += 2.9
    server.sweep()
    assert await client.nothing_within(0.05)  # not before the deadline

    clock.now += 0.2
    server.sweep()
    reply = await client.reply()
    assert (reply.status, reply.body) == (503, b"expired\n")
    assert handler.expired_calls == ["k=late"]
    assert requests_counted(server, "playlist-blocking", 503) == 1
    assert server.metrics.blocked.value == 0
    client.get("/echo/still-open")
    assert (await client.reply()).status == 200
    client.close()


async def test_the_running_loop_expires_holds_on_its_own(serve: Serve) -> None:
    limits = HttpLimits(sweep_interval=0.02)
    server, _ = await serve(FakeHandler(hold_seconds=0.1), limits=limits)
    client = await Client.connect(server.port)
    started = time.monotonic()
    client.get("/wait?k=tick")
    reply = await client.reply(timeout=2.0)
    assert reply.status == 503
    assert 0.09 <= time.monotonic() - started < 1.5
    client.close()


async def test_a_client_leaving_while_parked_is_forgotten(serve: Serve) -> None:
    server, handler = await serve()
    staying, leaving = await Client.connect(server.port), await Client.connect(server.port)
    staying.get("/wait?k=x")
    leaving.get("/wait?k=x")
    await until(lambda: server.metrics.blocked.value == 2)
    leaving.writer.write_eof()  # a FIN while parked means the client gave up, as nginx reads it
    await until(lambda: server.metrics.blocked.value == 1)
    await until(lambda: closed_for(server, "client") == 1)
    assert server.metrics.connections.value == 1
    publish(server, handler, "k=x", b"answer")
    assert (await staying.reply()).body == b"answer"
    staying.close()
    leaving.close()


async def test_stop_closes_parked_connections(serve: Serve) -> None:
    server, _ = await serve()
    client = await Client.connect(server.port)
    client.get("/wait?k=never")
    await until(lambda: server.metrics.blocked.value == 1)
    await server.stop()
    assert await client.closed_by_server()
    assert server.metrics.blocked.value == 0
    assert server.metrics.connections.value == 0


# --- idle and slow clients ---------------------------------------------------------------------


async def test_idle_keep_alive_connection_is_closed_after_idle_timeout(serve: Serve) -> None:
    server, _ = await serve(limits=HttpLimits(idle_timeout=0.2, sweep_interval=0.02))
    client = await Client.connect(server.port)
    client.get("/hello.txt")
    await client.reply()
    answered = time.monotonic()
    assert await client.closed_by_server(timeout=3.0)
    assert time.monotonic() - answered >= 0.19
    await until(lambda: closed_for(server, "idle_timeout") == 1)


async def test_a_parked_request_is_not_idle(serve: Serve) -> None:
    clock = FakeClock()
    server, handler = await serve(limits=HttpLimits(idle_timeout=1.0), clock=clock)
    client = await Client.connect(server.port)
    client.get("/wait?k=slow")
    await until(lambda: server.metrics.blocked.value == 1)
    clock.now += 3.0
    server.sweep()
    assert await client.nothing_within(0.05)
    publish(server, handler, "k=slow", b"late but fine")
    assert (await client.reply()).body == b"late but fine"
    assert closed_for(server, "idle_timeout") == 0

    clock.now += 1.5  # now idle for real
    server.sweep()
    assert await client.closed_by_server()
    await until(lambda: closed_for(server, "idle_timeout") == 1)


async def test_a_request_head_that_never_completes_counts_as_idle(serve: Serve) -> None:
    clock = FakeClock()
    server, _ = await serve(limits=HttpLimits(idle_timeout=1.0), clock=clock)
    client = await Client.connect(server.port)
    client.send(b"GET /hello.txt HTTP/1.1\r\nHost: t\r\n")
    await client.writer.drain()
    await asyncio.sleep(0.02)
    clock.now += 1.5
    server.sweep()
    assert await client.closed_by_server()


async def test_slow_reader_is_cut_off_without_delaying_others(serve: Serve) -> None:
    limits = HttpLimits(max_write_buffer=256 * 1024)
    server, _ = await serve(limits=limits)
    loop = asyncio.get_running_loop()
    slow = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.setblocking(False)
    await loop.sock_connect(slow, ("127.0.0.1", server.port))
    await loop.sock_sendall(slow, b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n" * 40)  # 40 MiB asked

    fast = await Client.connect(server.port)
    started = time.monotonic()
    fast.get("/hello.txt")
    assert (await fast.reply()).status == 200
    assert time.monotonic() - started < 0.5

    await until(lambda: closed_for(server, "slow_client") == 1)
    assert requests_counted(server, "segment", 200) < 40
    assert server.metrics.connections.value == 1
    fast.get("/echo/still-fine")
    assert (await fast.reply()).status == 200
    fast.close()
    slow.close()


# --- metrics endpoint ---------------------------------------------------------------------------


async def test_metrics_endpoint_counts_requests_by_type_and_status(serve: Serve) -> None:
    server, handler = await serve()
    client = await Client.connect(server.port)
    for target in ("/hello.txt", "/hello.txt", "/nope", "/big"):
        client.get(target)
        await client.reply()
    client.get("/metrics")
    first = await client.reply()
    client.get("/metrics", method="HEAD")
    await client.reply(head=True)
    client.get("/metrics")
    second = (await client.reply()).body.decode()

    assert first.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    text = first.body.decode()
    assert 'livecast_origin_requests_total{type="static",status="200"} 2' in text
    assert 'livecast_origin_requests_total{type="other",status="404"} 1' in text
    assert 'livecast_origin_requests_total{type="segment",status="200"} 1' in text
    assert "livecast_origin_connections 1" in text
    assert "livecast_origin_blocked_requests 0" in text
    assert "# TYPE livecast_origin_connections_closed_total counter" in text
    assert 'livecast_origin_requests_total{type="metrics",status="200"} 2' in second
    big_bytes = server.metrics.response_bytes.value("segment")
    assert len(BIG_BODY) < big_bytes < len(BIG_BODY) + 1024
    assert all(request.path != "/metrics" for request in handler.requests)
    client.close()


# --- uvloop -------------------------------------------------------------------------------------


async def _core_exchange() -> None:
    handler = FakeHandler()
    server = OriginServer(handler, Registry())  # FakeHandler must satisfy the Handler protocol
    await server.start("127.0.0.1", 0)
    try:
        client = await Client.connect(server.port)
        client.get("/hello.txt", method="HEAD")
        client.get("/wait?k=u")
        client.get("/echo/after")
        assert (await client.reply(head=True)).status == 200
        await until(lambda: server.metrics.blocked.value == 1)
        publish(server, handler, "k=u", b"uv")
        assert (await client.reply()).body == b"uv"
        assert (await client.reply()).body == b"/echo/after?"
        client.close()
    finally:
        await server.stop()


def test_the_same_exchange_works_on_uvloop() -> None:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        assert isinstance(runner.get_loop(), uvloop.Loop)
        runner.run(_core_exchange())
