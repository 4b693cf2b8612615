# ruff: noqa: F811  (the ``stack`` fixture is imported from the shared rig)
"""Playback tokens checked at a real nginx edge (issue 15): the Lua check refuses what the
origin's ``verify`` refuses, for the same reason, and passes valid tokens by cookie or query —
while the cached objects stay shared (the cache key holds no token)."""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import replace

import pytest

from livecast.access.keys import KeyRing
from livecast.access.tokens import TokenClaims, issue, verify
from livecast.edge.nginx import LUA_HINT, find_lua_modules
from livecast.errors import AccessError
from tests.integration.test_edge_collapse import Stack, stack  # noqa: F401  (the fixture)
from tests.requirements import skip_unless

pytestmark = pytest.mark.integration

OLD, NEW = "k2026a", "k2026b"
RING = KeyRing({OLD: b"o" * 32, NEW: b"n" * 32}, NEW).validate()
LUA_MODULES = find_lua_modules()
WITH_TOKENS = pytest.mark.parametrize(
    "stack", [{"tier": {"lua_modules": LUA_MODULES, "token_ring": RING}}], indirect=True
)
PLAYLIST = "/live/720p/index.m3u8"  # the default stream ("main"), short form
MULTIVARIANT = "/live/main/main.m3u8"  # the same stream, long form


def token(event: str = "main", ring: KeyRing = RING, **changes: int) -> str:
    now = int(time.time())
    claims = TokenClaims(event=event, account="acct-1", session="s-1", exp=now + 600)
    return issue(replace(claims, **changes), ring)


def origin_reason(value: str, event: str = "main") -> str:
    try:
        verify(value, event=event, now=time.time(), key_ring=RING)
    except AccessError as exc:
        return exc.reason
    return "ok"


async def get(stack: Stack, target: str, cookie: str | None = None) -> tuple[int, str]:
    """Status and X-Livecast-Reason of one GET at the edge (the token in a cookie if given)."""
    header = "" if cookie is None else f"Cookie: theme=dark; livecast_token={cookie}\r\n"
    reader, writer = await asyncio.open_connection("127.0.0.1", stack.edge.conf.port)
    try:
        writer.write(
            f"GET {target} HTTP/1.1\r\nHost: edge\r\n{header}Connection: close\r\n\r\n".encode()
        )
        head = (await asyncio.wait_for(reader.read(-1), 10)).partition(b"\r\n\r\n")[0]
    finally:
        writer.close()
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines)}
    return int(status_line.split()[1]), headers.get("x-livecast-reason", "")


@WITH_TOKENS
@skip_unless(bool(LUA_MODULES), "lua", LUA_HINT)
async def test_the_edge_refuses_what_the_origin_refuses_for_the_same_reason(stack: Stack) -> None:
    now = int(time.time())
    valid = token()
    forged = valid[:-2] + ("AA" if not valid.endswith("AA") else "BB")
    cases = {
        "missing": None,
        "malformed": "v1." + "x" * 600,
        "unknown_key": token(ring=KeyRing({"k-gone": b"g" * 32}, "k-gone")),
        "bad_signature": forged,
        "wrong_event": token(event="other"),
        "expired": token(exp=now - 120),
        "not_yet_valid": token(nbf=now + 300),
    }
    for reason, value in cases.items():
        target = PLAYLIST if value is None else f"{PLAYLIST}?token={value}"
        assert await get(stack, target) == (403, reason), reason
        if value is not None:
            assert origin_reason(value) == reason
    # a server 20 s ahead issued it: within the default 60 s skew
    assert await get(stack, f"{PLAYLIST}?token={token(nbf=now + 20)}") == (200, "")
    # the old key still verifies while both are in the ring
    old_key = token(ring=RING.signing_with(OLD))
    assert await get(stack, f"{MULTIVARIANT}?token={old_key}") == (200, "")


@WITH_TOKENS
@skip_unless(bool(LUA_MODULES), "lua", LUA_HINT)
async def test_cookie_or_query_tokens_share_one_cached_object(stack: Stack) -> None:
    viewer, other_viewer = token(), token(exp=int(time.time()) + 900)
    playlist = stack.app.event.media_playlist_bytes("720p").decode()
    init = re.search(r'#EXT-X-MAP:URI="([^"]+)"', playlist)
    assert init is not None
    media = f"/live/main/720p/{init[1]}"  # the init segment: a media object
    assert await get(stack, media, cookie=viewer) == (200, "")
    assert await get(stack, f"{media}?token={other_viewer}") == (200, "")
    assert await get(stack, media, cookie="v1.garbage") == (403, "malformed")
    assert stack.origin_requests(media) == 1  # one fetch; the cache key holds no token
    # a path that is not a live URL is not the edge's to check (the origin's gate decides)
    status, reason = await get(stack, "/edge/status")
    assert (status, reason) == (200, "")
