"""Players without cookies at the origin (issue 15): with only ``?token=`` on the multivariant URL
a client follows every URI of the answers — media playlists, init, segments, parts, the preload
hint, blocking reloads — with 200s, each playlist rewritten for its request; the same URIs
without the token are 403 ``missing``; a cookie request still gets the shared, unmodified answer.

Real sockets: the origin's HTTP adapter with the token gate, over a hand-fed event."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import pytest_asyncio

from livecast.access.keys import KeyRing
from livecast.access.token_gate import TokenGate
from livecast.access.tokens import TokenClaims, issue
from livecast.hls.playlist import parse_media_playlist
from livecast.origin.app import OriginApp
from livecast.origin.http import OriginServer
from livecast.telemetry.metrics import Registry
from tests.integration.token_crawl import (
    Answer,
    crawl,
    get,
    kinds,
    playlist_uris,
    without_token,
)
from tests.unit.synth import Feeder, make_event

pytestmark = pytest.mark.integration

RING = KeyRing({"k1": b"k" * 32}, "k1").validate()


def token(session: str = "s1") -> str:
    return issue(TokenClaims("main", "a1", session, int(time.time()) + 600), RING)


@dataclass
class Origin:
    feeder: Feeder
    app: OriginApp
    server: OriginServer
    media_time: float = 20.5

    def advance(self, seconds: float) -> None:
        self.media_time += seconds
        self.feeder.advance_to(self.media_time)
        self.server.notify()

    async def get(self, target: str, cookie: str | None = None) -> Answer:
        headers = {"Cookie": f"livecast_token={cookie}"} if cookie else None
        return await get(self.server.port, target, headers)


@pytest_asyncio.fixture
async def origin() -> AsyncIterator[Origin]:
    event = make_event()
    feeder = Feeder(event)
    feeder.advance_to(20.5)
    app = OriginApp(event)
    gate = TokenGate(RING, unix_time=lambda _: time.time())
    server = OriginServer(app, Registry(), cache_key=app.cache_key, gate=gate)
    await server.start("127.0.0.1", 0)
    try:
        yield Origin(feeder, app, server)
    finally:
        server.notify()
        await server.stop()


@contextlib.asynccontextmanager
async def publishing(origin: Origin, step: float = 0.2) -> AsyncIterator[None]:
    """Publish media in small steps meanwhile (a preload-hinted part then gets produced)."""

    async def run() -> None:
        while True:
            await asyncio.sleep(step)
            origin.advance(step)

    task = asyncio.create_task(run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_only_the_query_token_opens_every_uri_at_the_origin(origin: Origin) -> None:
    viewer = token()
    async with publishing(origin):
        answers = await crawl(origin.get, f"/live/main.m3u8?token={viewer}")
    assert {t: a.status for t, a in answers.items() if a.status != 200} == {}
    assert kinds(list(answers)) == {"main.m3u8", "index.m3u8", "init-", "seg-", "part-"}
    assert all(t.endswith(f"token={viewer}") for t in answers), "a URI without the token"
    for target, answer in answers.items():
        if target.partition("?")[0].endswith(".m3u8"):
            assert answer.headers["cache-control"].startswith("private")  # carries a credential
            uris = playlist_uris(answer.body.decode())
            assert uris and all(u.endswith(f"token={viewer}") for u in uris)
    for target in answers:  # the same URIs without the token
        refused = await origin.get(without_token(target))
        assert (refused.status, refused.headers.get("x-livecast-reason")) == (403, "missing")


async def test_a_cookie_request_gets_the_shared_answer_unmodified(origin: Origin) -> None:
    viewer = token()
    shared = origin.app.event.media_playlist_bytes("720p")
    rewritten = await origin.get(f"/live/720p/index.m3u8?token={viewer}")
    assert rewritten.status == 200 and b"token=" in rewritten.body
    for _ in range(2):  # the second from the answer cache
        plain = await origin.get("/live/720p/index.m3u8", cookie=viewer)
        assert (plain.status, plain.body) == (200, shared)
    assert plain.headers["cache-control"].startswith("public")


async def test_a_blocking_reload_is_held_and_answered_rewritten_per_viewer(origin: Origin) -> None:
    viewers = [token("s1"), token("s2")]
    last = parse_media_playlist(origin.app.event.media_playlist_bytes("720p").decode()).last_part()
    assert last is not None
    directives = f"_HLS_msn={last[0]}&_HLS_part={last[1] + 1}"
    held = [
        asyncio.ensure_future(origin.get(f"/live/720p/index.m3u8?token={v}&{directives}"))
        for v in viewers
    ]
    await asyncio.sleep(0.3)
    assert not any(h.done() for h in held)  # held until the part exists
    origin.advance(0.5)
    answers = await asyncio.gather(*held)
    for viewer, answer in zip(viewers, answers, strict=True):
        uris = playlist_uris(answer.body.decode())
        assert answer.status == 200 and uris
        assert all(u.endswith(f"token={viewer}") for u in uris)
    shared = origin.app.event.media_playlist_bytes("720p")
    assert answers[0].body.replace(f"?token={viewers[0]}".encode(), b"") == shared


async def test_a_long_or_injected_token_is_refused_without_rewriting(origin: Origin) -> None:
    huge = await origin.get(f"/live/720p/index.m3u8?token=v1.{'x' * 10_000}")
    assert huge.status == 414  # the adapter's URL bound, before any token work
    for value in ("v1." + "x" * 1200, "v1.a%0D%0ASet-Cookie:%20x=1"):
        answer = await origin.get(f"/live/720p/index.m3u8?token={value}")
        assert (answer.status, answer.headers.get("x-livecast-reason")) == (403, "malformed")
        assert "set-cookie" not in answer.headers and len(answer.body) < 100
