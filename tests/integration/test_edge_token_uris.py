# ruff: noqa: F811  (the ``stack`` fixture is imported from the shared rig)
"""Players without cookies through a real nginx edge (issue 15): with only ``?token=`` on the
multivariant URL a client follows every URI of the answers with 200s — the edge's Lua body
filter puts the token on every URI of each playlist — while the cache keeps one shared,
un-rewritten playlist (the token goes upstream as the cookie, never in the query), and the same
URIs without the token are 403 ``missing``. The Lua rewrite is checked against
``access.uri_tokens`` on generated playlists (Hypothesis), served by a fake upstream."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from livecast.access.keys import KeyRing
from livecast.access.tokens import TokenClaims, issue
from livecast.access.uri_tokens import add_argument
from livecast.edge.nginx import LUA_HINT, find_lua_modules
from livecast.edge.nginx_conf import Upstream
from livecast.edge.topology import TopologySpec, tier_configs
from livecast.hls.playlist import parse_media_playlist
from tests.integration.fake_upstream import FakeUpstream, running_tier
from tests.integration.test_edge_collapse import Stack, stack  # noqa: F401  (the fixture)
from tests.integration.token_crawl import (
    Answer,
    Getter,
    crawl,
    get,
    kinds,
    playlist_uris,
    without_token,
)
from tests.requirements import skip_unless

pytestmark = pytest.mark.integration

RING = KeyRing({"k1": b"k" * 32}, "k1").validate()
LUA_MODULES = find_lua_modules()
WITH_TOKENS = pytest.mark.parametrize(
    "stack", [{"tier": {"lua_modules": LUA_MODULES, "token_ring": RING}}], indirect=True
)
NEEDS_LUA = skip_unless(bool(LUA_MODULES), "lua", LUA_HINT)


def token(session: str = "s1") -> str:
    return issue(TokenClaims("main", "a1", session, int(time.time()) + 600), RING)


@contextlib.asynccontextmanager
async def publishing(stack: Stack, step: float = 0.2) -> AsyncIterator[None]:
    async def run() -> None:
        while True:
            await asyncio.sleep(step)
            stack.advance(step)

    task = asyncio.create_task(run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def edge_get(stack: Stack, cookie: str | None = None) -> Getter:
    async def fetch(target: str) -> Answer:
        headers = {"Cookie": f"livecast_token={cookie}"} if cookie else None
        return await get(stack.edge.conf.port, target, headers)

    return fetch


@WITH_TOKENS
@NEEDS_LUA
async def test_only_the_query_token_opens_every_uri_through_the_edge(stack: Stack) -> None:
    viewer = token()
    fetch = edge_get(stack)
    async with publishing(stack):
        answers = await crawl(fetch, f"/live/main.m3u8?token={viewer}")
    assert {t: a.status for t, a in answers.items() if a.status != 200} == {}
    assert kinds(list(answers)) == {"main.m3u8", "index.m3u8", "init-", "seg-", "part-"}
    assert all(t.endswith(f"token={viewer}") for t in answers), "a URI without the token"
    for target, answer in answers.items():
        if target.partition("?")[0].endswith(".m3u8"):
            uris = playlist_uris(answer.body.decode())
            assert uris and all(u.endswith(f"token={viewer}") for u in uris), target
            assert answer.headers["cache-control"].startswith("private")
            assert "content-length" not in answer.headers or int(
                answer.headers["content-length"]
            ) == len(answer.body)
    # the origin never saw a token in a query: the cached objects are the shared answers
    assert not [t for t in stack.tap.counts if "token=" in t]
    for target in answers:
        refused = await get(stack.edge.conf.port, without_token(target))
        assert (refused.status, refused.headers.get("x-livecast-reason")) == (403, "missing")


@WITH_TOKENS
@NEEDS_LUA
async def test_the_cached_playlist_stays_shared_and_a_cookie_gets_it_unmodified(
    stack: Stack,
) -> None:
    first, second = token("s1"), token("s2")
    last = parse_media_playlist(stack.app.event.media_playlist_bytes("720p").decode()).last_part()
    assert last is not None
    blocking = f"/live/720p/index.m3u8?_HLS_msn={last[0]}&_HLS_part={last[1] + 1}"
    port = stack.edge.conf.port
    held = [
        asyncio.ensure_future(get(port, f"{blocking}&token={first}")),
        asyncio.ensure_future(get(port, f"{blocking}&token={second}")),
        asyncio.ensure_future(get(port, blocking, {"Cookie": f"livecast_token={first}"})),
    ]
    await stack.wait_waiting(3)
    stack.advance(0.5)
    one, two, plain = await asyncio.gather(*held)
    assert (one.status, two.status, plain.status) == (200, 200, 200)
    shared = stack.app.event.media_playlist_bytes("720p")
    assert plain.body == shared  # the cookie: the answer as the origin gave it
    assert one.body == add_argument(shared, "token", first)  # the Lua rewrite = the Python one
    assert two.body == add_argument(shared, "token", second)
    assert sum(n for t, n in stack.tap.counts.items() if "_HLS_msn" in t) == 1  # collapsed
    again = await get(port, f"{blocking}&token={second}")
    assert again.headers["x-cache-status"] == "HIT" and again.body == two.body


# ------------------------------------------------- the Lua rewrite against the Python one

LINES = st.sampled_from(
    [
        "seg-1.m4s",
        "720p/index.m3u8?x=1",
        "seg-2.m4s?",
        "/abs/seg.m4s#frag",
        "https://other.example/seg.m4s",
        "//127.0.0.1:{port}/same-host.m4s",
        "http://127.0.0.1:{port}/same.m4s?a=b&",
        "{$base}/seg.m4s",
        "data:text/plain,x",
        '#EXT-X-MAP:URI="init-0.mp4"',
        '#EXT-X-PART:DURATION=0.333,URI="part-1.0.m4s",INDEPENDENT=YES',
        '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part-1.1.m4s"',
        '#EXT-X-RENDITION-REPORT:URI="../360p/index.m3u8",LAST-MSN=1,LAST-PART=0',
        '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="a",NAME="en, x=1",URI="audio/index.m3u8"',
        '#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=1,URI="if.m3u8"',
        '#EXT-X-SESSION-DATA:DATA-ID="d",URI=""',
        '#EXT-X-KEY:METHOD=AES-128,URI="https://keys.example/k"',
        '#EXT-X-DATERANGE:ID="i",X-ASSET-URI="ads/a.m3u8"',
        '#EXT-X-MAP:URI="unterminated',
        '#EXT-X-MAP:BYTERANGE=1@0 junk,URI="after-junk.mp4"',
        '#EXTINF:2.0,URI="title.m4s"',
        '#EXT-X-STREAM-INF:BANDWIDTH=1,CODECS="avc1,mp4a"',
        '# comment URI="x"',
        "",
        "   ",
    ]
)
PLAYLISTS = st.tuples(st.lists(LINES, max_size=10), st.sampled_from(["\n", "\r\n"]), st.booleans())


@pytest.fixture(scope="module")
def lua_edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeUpstream, int]]:
    """One edge with tokens in front of a fake upstream that serves whatever it is given."""
    if not LUA_MODULES:
        pytest.skip("needs lua")
    workdir: Path = tmp_path_factory.mktemp("lua-rewrite")
    workdir.chmod(0o755)
    with FakeUpstream() as upstream:
        conf = tier_configs(
            TopologySpec(edges=1),
            [Upstream("127.0.0.1", upstream.port)],
            2.0,
            workdir,
            LUA_MODULES,
        )[0]
        with running_tier(replace(conf, token_ring=RING)) as port:
            yield upstream, port


@NEEDS_LUA
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(playlist=PLAYLISTS)
def test_the_edge_rewrites_exactly_as_the_python_module(
    lua_edge: tuple[FakeUpstream, int], playlist: tuple[list[str], str, bool]
) -> None:
    upstream, port = lua_edge
    lines, newline, final_newline = playlist
    text = newline.join(["#EXTM3U", *(line.replace("{port}", str(port)) for line in lines)])
    body = (text + (newline if final_newline else "")).encode()
    path = upstream.serve_playlist(body)
    viewer = token()
    answer = asyncio.run(get(port, f"{path}?token={viewer}"))
    assert answer.status == 200
    assert answer.body == add_argument(body, "token", viewer, host=f"127.0.0.1:{port}".encode())
