"""The origin's awaited endpoints (``OriginServer(async_endpoints=…)``) over real sockets on
127.0.0.1: a slow one delays only its own connection — whose later requests are answered after
it, in order — never another client's; it is cut at ``endpoint_timeout`` (503) and a failing one
is a 500; a client that leaves does not cancel the call (a store write stays whole); the
``collectors`` run before each /metrics answer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from livecast.origin.contract import AsyncEndpoint, Request, Response
from livecast.origin.http import OriginServer
from livecast.telemetry.metrics import Registry
from tests.integration.test_http_adapter import Client, FakeHandler

pytestmark = pytest.mark.integration


class SlowStore:
    """An endpoint that answers once ``release`` is set (or ``fail``s), recording its calls."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.started: list[str] = []
        self.finished: list[str] = []

    async def answer(self, request: Request, now: float) -> Response:
        self.started.append(request.query)
        await self.release.wait()
        self.finished.append(request.query)
        return Response(200, f"slow {request.query}".encode(), object_type="session")

    async def fail(self, request: Request, now: float) -> Response:
        raise RuntimeError("a bug")


@pytest.fixture
async def slow() -> AsyncIterator[tuple[OriginServer, SlowStore, list[int]]]:
    store, scrapes = SlowStore(), []
    routes: dict[str, AsyncEndpoint] = {"/slow": store.answer, "/fail": store.fail}
    server = OriginServer(
        FakeHandler(),
        Registry(),
        async_endpoints=routes,
        endpoint_timeout=0.5,
        collectors=[lambda: scrapes.append(1)],
    )
    await server.start("127.0.0.1", 0)
    yield server, store, scrapes
    store.release.set()
    await server.stop()


async def test_a_slow_endpoint_delays_only_its_own_connection_and_keeps_the_order(
    slow: tuple[OriginServer, SlowStore, list[int]],
) -> None:
    server, store, _ = slow
    waiting, other = await Client.connect(server.port), await Client.connect(server.port)
    waiting.get("/slow?a")
    waiting.get("/hello.txt")  # pipelined behind the awaited call
    waiting.get("/slow?b")
    while not store.started:
        await asyncio.sleep(0.005)
    for _ in range(3):  # meanwhile another client is answered at once
        other.get("/hello.txt")
        assert (await other.reply(timeout=0.5)).status == 200
    assert await waiting.nothing_within(0.1)
    store.release.set()
    replies = [await waiting.reply() for _ in range(3)]
    assert [reply.body for reply in replies] == [b"slow a", b"hello world\n", b"slow b"]
    assert replies[0].headers["connection"] == "keep-alive"
    assert server.metrics.requests.value("session", "200") == 2
    waiting.close()
    other.close()


async def test_an_endpoint_that_does_not_answer_in_time_is_a_503_and_a_bug_a_500(
    slow: tuple[OriginServer, SlowStore, list[int]],
) -> None:
    server, _, _ = slow
    client = await Client.connect(server.port)
    started = time.monotonic()
    client.get("/slow?never")
    reply = await client.reply()
    took = time.monotonic() - started
    assert (reply.status, reply.headers["retry-after"]) == (503, "1")
    assert 0.45 <= took < 1.5  # the endpoint timeout answered
    client.get("/fail")
    assert (await client.reply()).status == 500
    client.get("/hello.txt")  # the connection still serves
    assert (await client.reply()).status == 200
    client.close()


async def test_a_client_that_leaves_does_not_cancel_the_call(
    slow: tuple[OriginServer, SlowStore, list[int]],
) -> None:
    server, store, _ = slow
    client = await Client.connect(server.port)
    client.get("/slow?left")
    while not store.started:
        await asyncio.sleep(0.005)
    client.writer.transport.abort()  # gone before the answer
    while server.metrics.connections.value:
        await asyncio.sleep(0.005)
    store.release.set()
    while not store.finished:
        await asyncio.sleep(0.005)
    assert store.finished == ["left"]  # the call completed; its answer went nowhere
    assert server.metrics.requests.value("session", "200") == 0


async def test_the_collectors_run_before_each_metrics_answer(
    slow: tuple[OriginServer, SlowStore, list[int]],
) -> None:
    server, _, scrapes = slow
    client = await Client.connect(server.port)
    for count in (1, 2):
        client.get("/metrics")
        assert (await client.reply()).status == 200
        assert len(scrapes) == count
    client.close()
