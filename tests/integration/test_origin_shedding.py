# ruff: noqa: F811  (the ``stack`` fixture is imported from the shared rig)
"""Load shedding on the real adapter (issue 15): the origin (OriginServer + OriginApp over a
hand-fed synthetic event) overloaded deterministically — a lag sample injected into its shedder,
or its event loop really blocked — answers DVR requests 503 with max-age and Retry-After while
live-edge parts and blocking playlists still get 200; with shedding off nothing is shed; a
malformed query on a shed path gets a clean answer; and a real nginx edge keeps the shed 503 for
its max-age and sends identical requests to the origin once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from livecast.hls.playlist import parse_media_playlist
from livecast.origin.app import OriginApp
from livecast.origin.http import OriginServer
from livecast.origin.shedding import Shedder, SheddingConfig
from livecast.telemetry.metrics import Registry
from tests.integration.test_http_adapter import Client, Reply, until
from tests.unit.synth import EPOCH, Feeder, make_event

from .test_edge_collapse import (  # noqa: F401  (the shared rig)
    Stack,
    fetch,
    stack,
)

pytestmark = pytest.mark.integration

START = 20.5  # media seconds fed: mid-segment, the next part pending
HOLD = SheddingConfig(enabled=True, hold=60.0)  # once shed, shed for the whole test
DVR = f"/live/720p/index.m3u8?start={EPOCH + 2}"


class Origin:
    def __init__(self, server: OriginServer, app: OriginApp, feeder: Feeder) -> None:
        self.server, self.app, self.feeder = server, app, feeder
        self.media_time = START

    def next_part(self) -> tuple[int, int]:
        body = self.app.event.media_playlist_bytes("720p").decode()
        last = parse_media_playlist(body).last_part()
        assert last is not None
        return last[0], last[1] + 1

    def init(self) -> str:
        body = self.app.event.media_playlist_bytes("720p").decode()
        uri = body.split('#EXT-X-MAP:URI="', 1)[1].split('"', 1)[0]
        return f"/live/720p/{uri}"

    def advance(self, seconds: float) -> None:
        self.media_time += seconds
        self.feeder.advance_to(self.media_time)
        self.server.notify()

    async def overload(self, lag: float) -> None:
        """One lag sample of ``lag`` seconds, as if the sweep timer fired that late."""
        shedder = self.server.shedder
        assert shedder is not None
        level = shedder.observe(lag, self.server.clock())
        await until(lambda: self.server.shed_level == level)


Start = Callable[[SheddingConfig | None], Awaitable[Origin]]


@pytest.fixture
async def origin() -> AsyncIterator[Start]:
    servers: list[OriginServer] = []

    async def start(shedding: SheddingConfig | None) -> Origin:
        event = make_event()
        feeder = Feeder(event)
        feeder.advance_to(START)
        app = OriginApp(event)
        server = OriginServer(app, Registry(), cache_key=app.cache_key, shedding=shedding)
        await server.start("127.0.0.1", 0)
        servers.append(server)
        return Origin(server, app, feeder)

    yield start
    for server in servers:
        server.notify()
        await server.stop()


async def ask(client: Client, target: str, method: str = "GET") -> Reply:
    client.get(target, method)
    return await client.reply(head=method == "HEAD")


async def test_over_capacity_dvr_gets_503_and_the_live_edge_200(origin: Start) -> None:
    live = await origin(SheddingConfig(enabled=True, classic_ms=1e6, live_edge_ms=1e9, hold=60))
    client = await Client.connect(live.server.port)
    msn, part = live.next_part()
    assert (await ask(client, f"/live/720p/part-{msn}.{part - 1}.m4s")).status == 200  # cached
    await live.overload(0.5)  # 500 ms late: DVR only (classic at 1000 s, live edge at 10⁶ s)
    for target in (DVR, f"/live/main.m3u8?start={EPOCH + 2}", "/live/recording.json"):
        shed = await ask(client, target)
        assert shed.status == 503, target
        assert shed.headers["cache-control"] == "public, max-age=2"
        assert shed.headers["retry-after"] == "2"
        assert shed.body == b"shed: dvr\n"
    head = await ask(client, DVR, "HEAD")
    assert head.status == 503 and head.headers["content-length"] == "10"
    served = [
        f"/live/720p/part-{msn}.{part - 1}.m4s",  # from the answer cache (the fast path)
        f"/live/720p/index.m3u8?_HLS_msn={msn}&_HLS_part={part - 1}",
        "/live/main.m3u8",
        live.init(),
        "/live/720p/index.m3u8",  # classic: not shed at this lag
        f"/live/720p/seg-{msn - 1}.m4s",
    ]
    for target in served:
        assert (await ask(client, target)).status == 200, target
    # a blocking reload and a preload-hinted part are held, then answered as the media arrives
    blocking, hinted = (
        await Client.connect(live.server.port),
        await Client.connect(live.server.port),
    )
    blocking.get(f"/live/720p/index.m3u8?_HLS_msn={msn}&_HLS_part={part}")
    hinted.get(f"/live/720p/part-{msn}.{part}.m4s")
    assert await blocking.nothing_within(0.1)
    live.advance(0.4)
    assert (await blocking.reply()).status == 200
    assert (await hinted.reply()).status == 200
    metrics = (await ask(client, "/metrics")).body.decode()
    assert 'livecast_origin_shed_total{class="dvr"} 4' in metrics
    assert 'livecast_origin_shed_total{class="live_edge"} 0' in metrics
    assert 'livecast_origin_requests_total{type="playlist-dvr",status="503"} 4' in metrics
    for c in (client, blocking, hinted):
        c.close()


async def test_more_lag_sheds_classic_too_never_the_live_edge(origin: Start) -> None:
    live = await origin(HOLD)  # the defaults: dvr 20 ms, classic 50 ms, live edge never
    client = await Client.connect(live.server.port)
    await live.overload(5.0)
    for target in ("/live/720p/seg-3.m4s", "/player.html"):
        reply = await ask(client, target)
        assert (reply.status, reply.body) == (503, b"shed: classic\n"), target
        assert reply.headers["cache-control"] == "public, max-age=1"
        assert reply.headers["retry-after"] == "1"
    msn, part = live.next_part()
    for target in (
        f"/live/720p/index.m3u8?_HLS_msn={msn}&_HLS_part={part - 1}&_HLS_skip=YES",
        f"/live/720p/part-{msn}.{part - 1}.m4s",
        "/live/720p/index.m3u8",  # plain: how a live viewer starts
        "/live/main.m3u8",
        "/metrics",
    ):
        assert (await ask(client, target)).status == 200, target
    client.close()


def keep_loop_busy(seconds: float) -> Callable[[], None]:
    """Block the running loop 40 ms per iteration for ``seconds``; the function that stops it."""
    busy_until = [time.monotonic() + seconds]
    loop = asyncio.get_running_loop()

    def busy() -> None:
        time.sleep(0.04)
        if time.monotonic() < busy_until[0]:
            loop.call_soon(busy)

    loop.call_soon(busy)
    return lambda: busy_until.__setitem__(0, 0.0)


async def test_a_really_blocked_loop_sheds_dvr_and_keeps_the_live_edge(origin: Start) -> None:
    """No injected sample: the adapter's own probe (how late its sweep timer fires) sees a loop
    kept busy 40 ms per iteration (p90 ≈ 36 ms: over DVR's 20 ms)."""
    live = await origin(HOLD)
    client = await Client.connect(live.server.port)
    stop = keep_loop_busy(30.0)
    try:
        await until(lambda: live.server.shed_level >= 1, timeout=5.0)
        assert (await ask(client, DVR)).status == 503
        msn, part = live.next_part()
        blocking = f"/live/720p/index.m3u8?_HLS_msn={msn}&_HLS_part={part - 1}"
        assert (await ask(client, blocking)).status == 200
    finally:
        stop()
    client.close()


async def test_with_shedding_off_nothing_is_shed(origin: Start) -> None:
    live = await origin(SheddingConfig(enabled=False, dvr_ms=0.0, classic_ms=0.0))
    assert live.server.shedder is None
    client = await Client.connect(live.server.port)
    keep_loop_busy(0.5)
    await asyncio.sleep(0.6)
    assert live.server.shed_level == 0
    for target in (DVR, "/live/recording.json", "/live/720p/seg-3.m4s"):
        assert (await ask(client, target)).status != 503, target
    assert b"livecast_origin_shed_total" not in (await ask(client, "/metrics")).body
    client.close()


async def test_malformed_requests_on_shed_paths_get_clean_answers(origin: Start) -> None:
    live = await origin(HOLD)
    client = await Client.connect(live.server.port)
    malformed = "/live/720p/index.m3u8?start=%zz&end&start=&&="
    assert (await ask(client, malformed)).status == 400  # not shed: the router's 400
    await live.overload(0.03)
    for target in (
        malformed,
        "/live/%ff%fe/index.m3u8?start=%00",
        "/live/720p/index.m3u8?start=1&_HLS_msn=x",
        "/live/720p/index.m3u8?start=\x7f",  # not even HTTP: the adapter's 400, then close
    ):
        other = await Client.connect(live.server.port)
        reply = await ask(other, target)
        assert reply.status in (400, 404, 503), target
        other.close()
    # pipelined, absolute-form and HEAD requests go through the slow path, shed the same way
    client.send(
        f"GET http://origin{DVR} HTTP/1.1\r\nHost: t\r\n\r\n"
        f"HEAD {DVR} HTTP/1.1\r\nHost: t\r\n\r\n"
        "GET /live/main.m3u8 HTTP/1.1\r\nHost: t\r\n\r\n".encode()
    )
    assert (await client.reply()).status == 503
    assert (await client.reply(head=True)).status == 503
    assert (await client.reply()).status == 200
    assert (await ask(client, "/live/main.m3u8")).status == 200  # the connection is fine
    client.close()


# ---------------------------------------------------------------- through a real nginx edge


async def test_the_edge_caches_the_shed_503_for_its_max_age_and_collapses(stack: Stack) -> None:
    stack.server.shedder = shedder = Shedder(HOLD, stack.server.registry)
    stack.server.shed_level = shedder.observe(0.03, stack.server.clock())  # DVR shed
    port = stack.edge.conf.port
    first = await fetch(port, DVR)
    assert (first.status, first.headers["x-cache-status"]) == (503, "MISS")
    assert first.headers["retry-after"] == "2"
    concurrent = await asyncio.gather(
        *(fetch(port, DVR + "&CMCD=sid%3D" + str(i)) for i in range(20))
    )
    assert {(r.status, r.headers["x-cache-status"]) for r in concurrent} == {(503, "HIT")}
    assert stack.tap.count(DVR) == 1 and shedder.counts[0].value == 1
    deadline = time.monotonic() + 4.0  # max-age=2, counted by nginx in whole seconds: 2–3 s
    while (reply := await fetch(port, DVR)).headers["x-cache-status"] == "HIT":
        assert time.monotonic() < deadline, "the 503 outlived its max-age"
        await asyncio.sleep(0.1)
    # Expired, the entry is refetched; the origin sheds again and, as proxy_cache_use_stale
    # lists http_503, nginx answers the expired 503 (STALE) without storing the new one: from now
    # on every request is one origin request, but concurrent ones still collapse (UPDATING).
    assert (reply.status, reply.headers["x-cache-status"]) == (503, "STALE")
    assert stack.tap.count(DVR) == 2
    burst = await asyncio.gather(*(fetch(port, DVR) for _ in range(20)))
    assert {r.status for r in burst} == {503}
    assert {r.headers["x-cache-status"] for r in burst} <= {"STALE", "UPDATING"}
    assert stack.tap.count(DVR) <= 4  # one refetch at a time, not one per request
    msn, part = stack.next_part()
    live = await fetch(port, f"/live/720p/part-{msn}.{part - 1}.m4s")
    assert live.status == 200
