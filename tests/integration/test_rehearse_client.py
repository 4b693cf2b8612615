"""The rehearsal's lean HTTP client against a real server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Hashable

import pytest

from livecast.origin.contract import Hold, Request, Response
from livecast.origin.http import OriginServer
from livecast.origin.wire import HttpLimits
from livecast.player.tunein import parse_age
from livecast.rehearse.client import ClientConnection, Exchange
from livecast.rehearse.driver import Driver, DriverConfig
from livecast.scenario.audience import ViewerPlan
from livecast.telemetry.metrics import Registry

from ..unit.test_player_tunein import playlist

pytestmark = pytest.mark.integration


class Handler:
    def handle(self, request: Request, now: float) -> Response | Hold:
        if request.path == "/hold":
            return Hold("k", now + 30, "playlist-blocking")
        if request.path == "/big":
            return Response(200, b"x" * 300_000, object_type="part")
        if request.path == "/aged":
            return Response(200, b"old", extra_headers=(("Age", request.query),))
        return Response(200, f"hello {request.query}".encode())

    def resume(self, key: Hashable, now: float) -> Response | None:
        return None

    def expired(self, key: Hashable, now: float) -> Response:
        return Response(503, b"late\n")


class Recorder:
    def __init__(self) -> None:
        self.exchanges: list[Exchange] = []
        self.failures: list[tuple[int, str]] = []
        self.event = asyncio.Event()

    def on_exchange(self, exchange: Exchange) -> None:
        self.exchanges.append(exchange)
        self.event.set()

    def on_failure(self, request_id: int, kind: str) -> None:
        self.failures.append((request_id, kind))
        self.event.set()

    async def next(self) -> None:
        await asyncio.wait_for(self.event.wait(), 5)
        self.event.clear()


async def server(limits: HttpLimits | None = None) -> OriginServer:
    origin = OriginServer(Handler(), Registry(), limits=limits)
    await origin.start("127.0.0.1", 0)
    return origin


async def test_requests_reuse_one_keep_alive_connection() -> None:
    origin = await server()
    rec = Recorder()
    conn = ClientConnection("127.0.0.1", origin.port, rec.on_exchange, rec.on_failure)
    try:
        for i in range(3):
            conn.send(i, f"/x?n={i}", keep_body=True, timeout=5)
            await rec.next()
        conn.send(9, "/big", keep_body=False, timeout=5)
        await rec.next()
    finally:
        conn.close()
        await origin.stop()
    assert [e.body for e in rec.exchanges[:3]] == [b"hello n=0", b"hello n=1", b"hello n=2"]
    big = rec.exchanges[3]
    assert (big.request_id, big.status, big.body, big.size) == (9, 200, None, 300_000)
    assert big.started <= big.first_byte <= big.finished
    assert conn.requests == 4 and conn.connects == 1 and conn.reconnects == 0
    assert not rec.failures


async def test_nothing_listening_is_a_connect_failure() -> None:
    origin = await server()
    port = origin.port
    await origin.stop()
    rec = Recorder()
    conn = ClientConnection("127.0.0.1", port, rec.on_exchange, rec.on_failure)
    conn.send(1, "/x", keep_body=True, timeout=5)
    await rec.next()
    assert rec.failures == [(1, "connect")] and not conn.busy


async def test_a_request_past_its_timeout_fails_once() -> None:
    origin = await server()
    rec = Recorder()
    conn = ClientConnection("127.0.0.1", origin.port, rec.on_exchange, rec.on_failure)
    try:
        conn.send(5, "/hold", keep_body=True, timeout=0.2)
        await asyncio.sleep(0.3)
        conn.check_timeout(asyncio.get_running_loop().time() + 1e9)
        conn.check_timeout(asyncio.get_running_loop().time() + 1e9)
        assert rec.failures == [(5, "timeout")]
        rec.event.clear()
        conn.send(6, "/x", keep_body=True, timeout=5)  # usable again on a new connection
        await rec.next()
    finally:
        conn.close()
        await origin.stop()
    assert rec.exchanges[-1].request_id == 6 and rec.exchanges[-1].status == 200


async def test_an_idle_connection_closed_by_the_server_is_reopened() -> None:
    origin = await server(HttpLimits(idle_timeout=0.2, sweep_interval=0.05))
    rec = Recorder()
    conn = ClientConnection("127.0.0.1", origin.port, rec.on_exchange, rec.on_failure)
    try:
        conn.send(1, "/x", keep_body=True, timeout=5)
        await rec.next()
        await asyncio.sleep(1.0)  # the server's idle sweep closes it meanwhile
        conn.send(2, "/x", keep_body=True, timeout=5)
        await rec.next()
    finally:
        conn.close()
        await origin.stop()
    assert [e.request_id for e in rec.exchanges] == [1, 2] and not rec.failures


async def test_the_age_header_is_kept_raw_and_parsed_by_the_player_helper() -> None:
    origin = await server()
    rec = Recorder()
    conn = ClientConnection("127.0.0.1", origin.port, rec.on_exchange, rec.on_failure)
    try:
        for i, target in enumerate(["/aged?1.2", "/x", "/aged?soon", "/big"]):
            conn.send(i, target, keep_body=i < 3, timeout=5)
            await rec.next()
    finally:
        conn.close()
        await origin.stop()
    ages = [e.age for e in rec.exchanges]
    assert ages == [b"1.2", None, b"soon", None]  # reset between responses on one connection
    assert [parse_age(a) for a in ages] == [1.2, None, None, None]  # malformed: ignored


class AgedPlaylists:
    """One LL-HLS media playlist served with ``Age: 1.2``; blocking reloads are held."""

    def __init__(self) -> None:
        self.playlist_queries: list[str] = []

    def handle(self, request: Request, now: float) -> Response | Hold:
        if request.path.endswith(".m3u8"):
            self.playlist_queries.append(request.query)
            if "_HLS_msn" in request.query:
                return Hold(request.query, now + 30, "playlist-blocking")
            return Response(200, playlist().encode(), extra_headers=(("Age", "1.2"),))
        return Response(200, b"p" * 100, object_type="part")

    def resume(self, key: Hashable, now: float) -> Response | None:
        return None

    def expired(self, key: Hashable, now: float) -> Response:
        return Response(503, b"late\n")


async def test_the_driver_hands_the_age_header_to_the_player() -> None:
    handler = AgedPlaylists()
    origin = OriginServer(handler, Registry())
    await origin.start("127.0.0.1", 0)
    url = f"http://127.0.0.1:{origin.port}/live/720p/index.m3u8"
    plan = ViewerPlan(0, arrive=0.0, leave=None, low_latency=True, downlink_bps=1e9, seed=1)
    try:
        await Driver([plan], DriverConfig((url,), duration=1.0, show_start=time.time())).run()
    finally:
        await origin.stop()
    blocking = [q for q in handler.playlist_queries if "_HLS_msn" in q]
    # without the Age header: _HLS_msn=102&_HLS_part=2 (the part after the newest listed one);
    # Age 1.2 s → goal 0.867 s → 3 parts further (tests/unit/test_player_tunein.py)
    assert blocking and blocking[0].startswith("_HLS_msn=102&_HLS_part=5"), blocking
