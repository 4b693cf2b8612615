"""The fault proxy over real sockets on 127.0.0.1, in front of a tiny keep-alive HTTP upstream.

Timings assert lower bounds (the fault is at least as bad as configured) and generous upper bounds
only where the point is that a fault did *not* apply.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio

from livecast.rehearse.faults.proxy import FaultProxy
from livecast.scenario.timeline import Timeline, parse_timeline
from tests.requirements import missing

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

BIG = b"\x01" * (200 * 1000)
BODIES = {
    "/live/main.m3u8": b"#EXTM3U\n",
    "/live/720p/index.m3u8": b"#EXTM3U\n#EXT-X-VERSION:9\n",
    "/live/720p/part-7.0.m4s": b"\x00" * 3000,
    "/live/720p/seg-7.m4s": BIG,
}


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            target = head.split(b" ", 2)[1].decode()
            body = BODIES.get(target.partition("?")[0])
            status = b"200 OK" if body is not None else b"404 Not Found"
            body = body if body is not None else b"nope"
            writer.write(
                b"HTTP/1.1 %s\r\nContent-Length: %d\r\nContent-Type: application/octet-stream"
                b"\r\n\r\n" % (status, len(body))
            )
            if not head.startswith(b"HEAD"):
                writer.write(body)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


@dataclass
class Clock:
    """Rehearsal time the test moves by hand."""

    now: float = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Stack:
    upstream_port: int
    clock: Clock
    make: Callable[..., Any]


@pytest_asyncio.fixture
async def stack() -> AsyncIterator[Stack]:
    server = await asyncio.start_server(_serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    clock = Clock()
    proxies: list[FaultProxy] = []

    async def make(faults: list[dict[str, Any]], *, http: bool = True) -> FaultProxy:
        timeline = parse_timeline(faults)
        proxy = FaultProxy("origin", ("127.0.0.1", port), timeline, http=http, clock=clock, seed=1)
        await proxy.start()
        proxies.append(proxy)
        return proxy

    try:
        yield Stack(port, clock, make)
    finally:
        for proxy in proxies:
            await proxy.stop()
        server.close()
        await server.wait_closed()


@dataclass
class Reply:
    status: int
    body: bytes
    first_byte: float  # seconds from request to the first response byte
    total: float
    head: bytes


class Client:
    """One keep-alive HTTP/1.1 connection, timing each response."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def get(self, target: str, method: str = "GET") -> Reply:
        start = time.monotonic()
        self.writer.write(f"{method} {target} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
        first = await self.reader.readexactly(1)
        first_byte = time.monotonic() - start
        head = first + await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        body = b"" if method == "HEAD" else await self.reader.readexactly(length)
        return Reply(status, body, first_byte, time.monotonic() - start, head)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(TimeoutError, ConnectionError):
            await asyncio.wait_for(self.writer.wait_closed(), 2)


PART = "/live/720p/part-7.0.m4s"
PLAYLIST = "/live/720p/index.m3u8?_HLS_msn=7&_HLS_part=0"


async def test_passes_everything_through_without_faults(stack: Stack) -> None:
    proxy = await stack.make([])
    client = await Client.open(proxy.port)
    for target, body in BODIES.items():
        reply = await client.get(target)
        assert (reply.status, reply.body) == (200, body)
    head = await client.get(PART, "HEAD")
    assert head.status == 200 and b"Content-Length: 3000" in head.head
    assert (await client.get("/missing")).status == 404
    await client.close()
    assert proxy.counters.forwarded == len(BODIES) + 2
    assert not proxy.counters.injected


async def test_latency_applies_to_matching_requests_only_while_active(stack: Stack) -> None:
    fault = {"at": 10.0, "duration": 5.0, "kind": "latency", "target": "origin"}
    proxy = await stack.make([{**fault, "latency_ms": 400, "match": "part"}])
    client = await Client.open(proxy.port)
    before = await client.get(PART)
    stack.clock.now = 11.0
    during = await client.get(PART)
    playlist = await client.get(PLAYLIST)
    stack.clock.now = 15.0
    after = await client.get(PART)
    await client.close()
    assert during.total >= 0.4 and during.body == BODIES[PART]
    assert before.total < 0.3 and after.total < 0.3 and playlist.total < 0.3
    assert proxy.counters.injected["latency"] == 1
    assert proxy.counters.by_object["part:latency"] == 1


async def test_http_status_for_parts_while_playlists_pass(stack: Stack) -> None:
    faults = [
        {"at": 0.0, "kind": "http_status", "target": "origin", "status": 503, "match": "part"}
    ]
    proxy = await stack.make(faults)
    client = await Client.open(proxy.port)
    refused = await client.get(PART)
    playlist = await client.get(PLAYLIST)
    again = await client.get(PART)  # the same connection: keep-alive preserved
    await client.close()
    assert refused.status == 503 and again.status == 503
    assert b"X-Livecast-Fault: http_status" in refused.head
    assert playlist.status == 200 and playlist.body == BODIES["/live/720p/index.m3u8"]
    assert proxy.counters.injected["http_status:503"] == 2
    assert proxy.counters.forwarded == 1


async def test_reset_closes_the_connection(stack: Stack) -> None:
    proxy = await stack.make([{"at": 5.0, "kind": "reset", "target": "origin", "match": "part"}])
    client = await Client.open(proxy.port)
    assert (await client.get(PART)).status == 200
    stack.clock.now = 5.0
    assert (await client.get(PLAYLIST)).status == 200
    with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
        await client.get(PART)
    await client.close()
    assert proxy.counters.injected["reset"] == 1


@pytest.mark.parametrize("http", [True, False])
async def test_reset_cuts_open_connections_and_refuses_new_ones(stack: Stack, http: bool) -> None:
    fault = {"at": 1.0, "duration": 1.0, "kind": "reset", "target": "origin"}
    proxy = await stack.make([fault], http=http)
    client = await Client.open(proxy.port)
    assert (await client.get(PART)).status == 200
    stack.clock.now = 1.0
    await asyncio.sleep(0.2)  # the proxy notices the fault starting
    with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
        await client.get(PART)
    fresh = await Client.open(proxy.port)
    with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
        await fresh.get(PART)
    stack.clock.now = 2.0
    after = await Client.open(proxy.port)
    assert (await after.get(PART)).status == 200
    for each in (client, fresh, after):
        await each.close()
    assert proxy.counters.injected["reset"] == 2


@pytest.mark.parametrize("http", [True, False])
async def test_bandwidth_cap_paces_a_large_body(stack: Stack, http: bool) -> None:
    rate_kbps = 2000.0  # 250 kB/s: 200 kB take ≥ 0.8 s
    fault = {"at": 0.0, "kind": "bandwidth", "target": "origin", "rate_kbps": rate_kbps}
    proxy = await stack.make([fault], http=http)
    client = await Client.open(proxy.port)
    reply = await client.get("/live/720p/seg-7.m4s")
    await client.close()
    assert reply.body == BIG
    assert reply.total >= len(BIG) / (rate_kbps * 1000 / 8)


async def test_slow_first_byte_delays_only_the_first_byte(stack: Stack) -> None:
    fault = {"at": 0.0, "kind": "slow_first_byte", "target": "origin", "delay_ms": 500}
    proxy = await stack.make([{**fault, "match": ["segment"]}])
    client = await Client.open(proxy.port)
    reply = await client.get("/live/720p/seg-7.m4s")
    part = await client.get(PART)
    await client.close()
    assert reply.first_byte >= 0.5 and reply.body == BIG
    assert reply.total - reply.first_byte < 0.4  # the rest is not slowed
    assert part.total < 0.3


async def test_pipelined_requests_answered_in_order_around_an_injected_status(
    stack: Stack,
) -> None:
    fault = {"at": 0.0, "kind": "http_status", "target": "origin", "status": 500}
    proxy = await stack.make([{**fault, "match": "part"}])
    client = await Client.open(proxy.port)
    request = "GET {} HTTP/1.1\r\nHost: t\r\n\r\n"
    targets = [PLAYLIST, PART, "/live/main.m3u8", "/live/720p/seg-7.m4s", PART]
    client.writer.write("".join(request.format(target) for target in targets).encode())
    replies = []
    for _ in targets:
        head = await client.reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        replies.append((int(head.split(b" ")[1]), await client.reader.readexactly(length)))
    await client.close()
    assert [status for status, _ in replies] == [200, 500, 200, 200, 500]
    assert replies[2][1] == BODIES["/live/main.m3u8"] and replies[3][1] == BIG


async def test_a_malformed_request_is_refused_with_400(stack: Stack) -> None:
    proxy = await stack.make([])
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(b"GET / HTTP/1.1\r\nBad Header\r\n\r\n")
    answer = await asyncio.wait_for(reader.read(), 2)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 400 ")


async def test_latency_in_tcp_mode_delays_the_response(stack: Stack) -> None:
    proxy = await stack.make(
        [{"at": 0.0, "kind": "latency", "target": "origin", "latency_ms": 300}], http=False
    )
    client = await Client.open(proxy.port)
    reply = await client.get(PART)
    await client.close()
    assert reply.first_byte >= 0.3 and reply.body == BODIES[PART]


async def test_stopped_upstream_is_answered_with_502(stack: Stack) -> None:
    timeline = Timeline()
    proxy = FaultProxy("origin", ("127.0.0.1", 1), timeline, http=True)
    await proxy.start()
    try:
        client = await Client.open(proxy.port)
        reply = await client.get(PART)
        again = await client.get(PLAYLIST)
        await client.close()
    finally:
        await proxy.stop()
    assert reply.status == 502 and again.status == 502
    assert proxy.counters.upstream_errors == 2


@pytest.mark.parametrize("latency_ms", [0, 50])
async def test_slow_reader_bounds_the_proxy_buffer(stack: Stack, latency_ms: int) -> None:
    fault = {"at": 0.0, "kind": "latency", "target": "origin", "latency_ms": latency_ms}
    proxy = await stack.make([fault], http=True)
    _reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port, limit=1024)
    writer.transport.pause_reading()  # type: ignore[attr-defined]
    request = b"GET /live/720p/seg-7.m4s HTTP/1.1\r\nHost: t\r\n\r\n"
    writer.write(request * 20)  # 4 MB of answers asked for, none read
    await asyncio.sleep(0.5)
    links = list(proxy._links)
    assert len(links) == 1
    link = links[0]
    assert link.client is not None
    held = link.down.queued + link.client.get_write_buffer_size()
    assert 0 < held < 1_000_000
    writer.close()


async def _uvloop_exchange() -> None:
    server = await asyncio.start_server(_serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    clock = Clock()
    faults = [
        {"at": 0.0, "kind": "http_status", "target": "origin", "match": "part"},
        {"at": 0.0, "kind": "bandwidth", "target": "origin", "rate_kbps": 4000},
        {"at": 1.0, "kind": "reset", "target": "origin"},
    ]
    proxy = FaultProxy(
        "origin", ("127.0.0.1", port), parse_timeline(faults), http=True, clock=clock
    )
    await proxy.start()
    try:
        client = await Client.open(proxy.port)
        assert (await client.get(PART)).status == 503
        big = await client.get("/live/720p/seg-7.m4s")
        assert big.body == BIG and big.total >= len(BIG) / 500_000
        clock.now = 1.0
        await asyncio.sleep(0.2)
        # uvloop refuses to write to the transport the reset already closed: RuntimeError
        with pytest.raises((ConnectionError, asyncio.IncompleteReadError, RuntimeError)):
            await client.get(PLAYLIST)
        await client.close()
    finally:
        await proxy.stop()
        server.close()
        await server.wait_closed()


def test_the_same_faults_work_on_uvloop() -> None:
    uvloop = pytest.importorskip("uvloop", reason=missing("uvloop"))
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        assert isinstance(runner.get_loop(), uvloop.Loop)
        runner.run(_uvloop_exchange())
