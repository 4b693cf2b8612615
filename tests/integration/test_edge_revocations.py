# ruff: noqa: F811  (the ``stack`` fixture is imported from the shared rig)
"""Revocations reach a real nginx edge (issue 15): a viewer's token works through the edge, an
operator revokes it through the admin API, and the edge — which had cached the token's "valid"
verdict — answers 403 ``revoked`` within 2 s, without asking anyone per request: one worker polls
``GET /admin/v1/revocations?since=<seq>`` twice a second (edge/token_lua.py)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from livecast.access.keys import KeyRing
from livecast.access.tokens import RevocationList, TokenClaims, issue
from livecast.admin.api import AdminApi, hash_secret
from livecast.admin.server import AdminServer
from livecast.admin.state import AdminState
from livecast.edge.nginx import LUA_HINT, find_lua_modules
from livecast.edge.origins import free_port
from livecast.edge.token_lua import RevocationSource
from tests.integration.test_edge_collapse import Stack, stack  # noqa: F401  (the fixture)
from tests.integration.token_crawl import get
from tests.requirements import skip_unless

pytestmark = pytest.mark.integration

RING = KeyRing({"k1": b"k" * 32}, "k1").validate()
LUA_MODULES = find_lua_modules()
ADMIN_SECRET = "admin-secret-for-the-revocation-test"
READER_SECRET = "edge-reader-secret-0123456789abcdef"
ADMIN_PORT = free_port()
SOURCE = RevocationSource("127.0.0.1", ADMIN_PORT, READER_SECRET, interval=0.5)
WITH_REVOCATIONS = pytest.mark.parametrize(
    "stack",
    [{"tier": {"lua_modules": LUA_MODULES, "token_ring": RING, "revocations": SOURCE}}],
    indirect=True,
)
LIMIT = 2.0  # seconds from the admin API's 204 to the edge's 403


@pytest_asyncio.fixture
async def admin() -> AsyncIterator[AdminServer]:
    state = AdminState(key_ring=RING, revocations=RevocationList())
    api = AdminApi(state, [hash_secret(ADMIN_SECRET)])
    api.allow_reader(hash_secret(READER_SECRET))
    server = AdminServer(api)
    await server.start("127.0.0.1", ADMIN_PORT)
    try:
        yield server
    finally:
        await server.stop()


def token(session: str) -> str:
    return issue(TokenClaims("main", "a1", session, int(time.time()) + 600), RING)


async def revoke(body: dict[str, str]) -> int:
    data = json.dumps(body)
    reader, writer = await asyncio.open_connection("127.0.0.1", ADMIN_PORT)
    writer.write(
        (
            "POST /admin/v1/revocations HTTP/1.1\r\nHost: admin\r\n"
            f"Authorization: Bearer {ADMIN_SECRET}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n{data}"
        ).encode()
    )
    status = int((await reader.readline()).split()[1])
    writer.close()
    return status


async def refused_after(stack: Stack, target: str, cookie: str | None, since: float) -> float:
    """Seconds from ``since`` until the edge answers ``target`` 403 revoked (bounded: 5 s)."""
    headers = {"Cookie": f"livecast_token={cookie}"} if cookie else None
    while time.monotonic() - since < 5.0:
        answer = await get(stack.edge.conf.port, target, headers)
        if answer.status == 403:
            assert answer.headers["x-livecast-reason"] == "revoked"
            return time.monotonic() - since
        assert answer.status == 200
        await asyncio.sleep(0.02)
    raise AssertionError(f"{target} still served 5 s after the revocation")


@WITH_REVOCATIONS
@skip_unless(bool(LUA_MODULES), "lua", LUA_HINT)
async def test_a_revocation_reaches_the_edge_within_2_s(stack: Stack, admin: AdminServer) -> None:
    media = f"/live/main/720p/seg-{stack.next_part()[0] - 1}.m4s"  # a complete segment
    s1, s2, s3 = token("s1"), token("s2"), token("s3")
    for cookie in (s1, s2, s3):  # valid, and the verdicts are now cached at the edge
        answer = await get(stack.edge.conf.port, media, {"Cookie": f"livecast_token={cookie}"})
        assert answer.status == 200
    playlist = f"/live/720p/index.m3u8?token={s1}"
    assert (await get(stack.edge.conf.port, playlist)).status == 200

    started = time.monotonic()
    assert await revoke({"session": "s1"}) == 204
    by_cookie = await refused_after(stack, media, s1, started)
    by_query = await refused_after(stack, playlist, None, started)
    assert by_cookie < LIMIT and by_query < LIMIT, (by_cookie, by_query)

    started = time.monotonic()
    assert await revoke({"token": s2}) == 204  # one token, by its id
    by_token = await refused_after(stack, media, s2, started)
    assert by_token < LIMIT, by_token
    # the others were never refused
    answer = await get(stack.edge.conf.port, media, {"Cookie": f"livecast_token={s3}"})
    assert answer.status == 200
    print(f"revocation delays: session {by_cookie:.3f} s, token {by_token:.3f} s")
