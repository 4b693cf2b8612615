# ruff: noqa: F811  (the ``stack`` fixture is imported from the shared rig)
"""What the edge keeps and for whom (issue 4, evidence), on real nginx in front of the origin:
requests that differ only in CMCD share one cache entry; the LL-HLS directives do not; plain
playlists are served stale through a brief origin outage and fresh again once it is back."""

from __future__ import annotations

import asyncio
import time

import pytest

from livecast.edge.accesslog import parse_access_log_line
from livecast.hls.playlist import parse_media_playlist
from tests.requirements import skip_unless

from .test_edge_collapse import (  # noqa: F401  (the shared rig)
    LUA_HINT,
    LUA_MODULES,
    MODES,
    Stack,
    fetch,
    logged,
    stack,
)

pytestmark = pytest.mark.integration

CMCD_A = "CMCD=bl%3D21300%2Cbr%3D2500%2Csid%3D%226e2fb550-c457-11e9-bb97-0800200c9a66%22"
CMCD_B = "CMCD=bl%3D900%2Cbr%3D800%2Csid%3D%22f0e1d2c3-0000-4000-8000-000000000001%22"


async def test_requests_differing_only_in_cmcd_share_one_cache_entry(stack: Stack) -> None:
    port = stack.edge.conf.port
    msn, part = stack.next_part()
    cases = [
        "/live/720p/index.m3u8",  # plain playlist
        f"/live/720p/index.m3u8?_HLS_msn={msn}&_HLS_part={part - 1}",  # blocking, satisfied
        f"/live/720p/part-{msn}.{part - 1}.m4s",  # a part
    ]
    for path in cases:
        sep = "&" if "?" in path else "?"
        origin_before = stack.tap.total
        first = await fetch(port, f"{path}{sep}{CMCD_A}")
        second = await fetch(port, f"{path}{sep}{CMCD_B}&cachebuster=123")
        assert first.status == second.status == 200, (path, first, second)
        assert first.headers["x-cache-status"] == "MISS", path
        assert second.headers["x-cache-status"] == "HIT", path
        assert first.body == second.body
        assert stack.tap.total - origin_before == 1, (path, stack.tap.counts)


async def test_the_ll_hls_directives_are_part_of_the_key(stack: Stack) -> None:
    port = stack.edge.conf.port
    msn, part = stack.next_part()
    base = f"/live/720p/index.m3u8?_HLS_msn={msn}&_HLS_part={part - 1}"
    full = await fetch(port, base)
    delta = await fetch(port, base + "&_HLS_skip=YES")
    older = await fetch(port, f"/live/720p/index.m3u8?_HLS_msn={msn}&_HLS_part={part - 2}")
    assert [r.headers["x-cache-status"] for r in (full, delta, older)] == ["MISS"] * 3
    assert b"#EXT-X-SKIP:" in delta.body and b"#EXT-X-SKIP:" not in full.body
    assert stack.tap.count_path("/live/720p/index.m3u8") == 3


@pytest.mark.parametrize("stack", MODES, indirect=True)
async def test_plain_playlist_served_stale_through_an_origin_outage_then_fresh(
    stack: Stack,
) -> None:
    port = stack.edge.conf.port
    target = "/live/720p/index.m3u8"
    before = await fetch(port, target)
    # BYPASS: with Lua the plain playlist is refetched (and stored) once per part, see below
    assert before.status == 200 and before.headers["x-cache-status"] in ("MISS", "BYPASS")
    assert before.headers["cache-control"] == "public, max-age=1"  # the origin's TTL, kept

    await stack.tap.cut()  # the origin is unreachable for the edge …
    stack.advance(1.0)  # … while it keeps producing
    outage_started = time.monotonic()
    during = []
    while time.monotonic() - outage_started < 2.5:  # well past the 1 s TTL
        during.append(await fetch(port, target))
        await asyncio.sleep(0.25)
    assert {r.status for r in during} == {200}
    assert all(r.body == before.body for r in during)
    # the origin's Date is kept, so a player can tell how old the stale copy is (RFC 9111 §4.2.3)
    assert {r.headers["date"] for r in during} == {before.headers["date"]}
    late = [r.headers["x-cache-status"] for r in during if r.finished - outage_started > 1.2]
    print(f"cache statuses during the outage: {late}")
    assert "STALE" in late, late

    await stack.tap.restore()
    fresh_body = stack.app.event.media_playlist_bytes("720p")
    deadline = time.monotonic() + 5.0
    while True:
        reply = await fetch(port, target)
        assert reply.status == 200
        if reply.body == fresh_body:
            break
        assert time.monotonic() < deadline, "the edge did not come back to the origin's playlist"
        await asyncio.sleep(0.1)
    assert (
        parse_media_playlist(reply.body.decode()).last_part()
        != parse_media_playlist(before.body.decode()).last_part()
    )
    records = [
        parse_access_log_line(line) for line in stack.edge.access_log.read_text().split("\n")
    ]
    statuses = [r.cache_status for r in records if r is not None]
    print(f"plain playlist through the outage: {statuses}")


async def test_after_a_quiet_spell_the_first_viewer_gets_a_fresh_playlist(stack: Stack) -> None:
    """Stale-while-revalidate never hands the viewer who triggers the refresh the stale copy:
    after a quiet spell the playlist in the cache may be many seconds old (the pitfall: a join
    that far behind live)."""
    port = stack.edge.conf.port
    target = "/live/720p/index.m3u8"
    assert (await fetch(port, target)).headers["x-cache-status"] == "MISS"
    for _ in range(6):  # 3 s of media, nobody asking the edge
        await asyncio.sleep(0.5)
        stack.advance(0.5)
    reply = await fetch(port, target)
    assert reply.headers["x-cache-status"] == "EXPIRED", reply.headers  # refreshed, not stale
    assert reply.body == stack.app.event.media_playlist_bytes("720p")


@pytest.mark.parametrize("stack", [{"origins": 2}], indirect=True)
async def test_failover_to_the_other_origin_when_one_is_down(stack: Stack) -> None:
    port = stack.edge.conf.port
    down, up = stack.taps
    await down.cut()
    msn, part = stack.next_part()
    targets = [f"/live/{name}/index.m3u8" for name in ("720p", "360p", "audio")] + [
        f"/live/720p/index.m3u8?_HLS_msn={msn}&_HLS_part={p}" for p in range(part)
    ]
    replies = [await fetch(port, target) for target in targets]
    assert {r.status for r in replies} == {200}
    assert down.total == 0 and up.total == len(targets)
    await logged(stack, "edge-0", len(targets))
    records = [
        parse_access_log_line(line) for line in stack.edge.access_log.read_text().split("\n")
    ]
    attempts = [len(r.upstream_addrs) for r in records if r is not None]
    assert max(attempts) == 2, attempts  # tried the dead one, then the live one


async def test_a_part_asked_for_too_early_is_negatively_cached_for_a_second_only(
    stack: Stack,
) -> None:
    """A part beyond the preload hint is 404 (not held); the edge keeps that 404 for the origin's
    one second, and never serves it stale once the part exists."""
    port = stack.edge.conf.port
    msn, part = stack.next_part()
    target = f"/live/720p/part-{msn}.{part + 1}.m4s"  # one past the hinted part
    first = await fetch(port, target)
    again = await fetch(port, target)
    assert (first.status, first.headers["x-cache-status"]) == (404, "MISS")
    assert (again.status, again.headers["x-cache-status"]) == (404, "HIT")
    stack.advance(1.0)  # the part is produced
    deadline = time.monotonic() + 2.5  # max-age=1 counts whole seconds: 1–2 s
    while (reply := await fetch(port, target)).status == 404:
        assert reply.headers["x-cache-status"] == "HIT", reply.headers  # never STALE/UPDATING
        assert time.monotonic() < deadline, "the 404 outlived its second"
        await asyncio.sleep(0.1)
    assert reply.status == 200 and reply.headers["x-cache-status"] in ("EXPIRED", "MISS")
    assert stack.tap.count(target) == 2


@pytest.mark.parametrize("stack", [{"tier": {"lua_modules": LUA_MODULES}}], indirect=True)
@skip_unless(bool(LUA_MODULES), "lua", LUA_HINT)
async def test_playlists_from_the_cache_carry_their_age(stack: Stack) -> None:
    """RFC 9111 §5.1 Age on a playlist answered from the cache — now minus the origin's Date
    (kept in the stored response); a fresh fetch (MISS, or a plain playlist's refresh) carries
    none. Media carries none (docs/edge.md: what it costs, and no player reads it)."""
    port = stack.edge.conf.port
    msn, part = stack.next_part()
    blocking = f"/live/720p/index.m3u8?_HLS_msn={msn}&_HLS_part={part - 1}"  # exists: no hold
    media = f"/live/720p/part-{msn}.{part - 1}.m4s"
    first, first_media = await fetch(port, blocking), await fetch(port, media)
    assert first.headers["x-cache-status"] == "MISS" and "age" not in first.headers
    assert first_media.headers["x-cache-status"] == "MISS"
    plain = await fetch(port, "/live/720p/index.m3u8")
    assert plain.headers["x-cache-status"] == "BYPASS" and "age" not in plain.headers
    await asyncio.sleep(2.1)
    later, later_media = await fetch(port, blocking), await fetch(port, media)
    assert later.headers["x-cache-status"] == "HIT"
    assert later.headers["date"] == first.headers["date"]  # the origin's, not nginx's
    assert 2 <= int(later.headers["age"]) <= 4
    assert later_media.headers["x-cache-status"] == "HIT" and "age" not in later_media.headers


@pytest.mark.parametrize("stack", [{"tier": {"lua_modules": LUA_MODULES}}], indirect=True)
@skip_unless(bool(LUA_MODULES), "lua", LUA_HINT)
async def test_with_lua_a_joining_viewer_gets_a_plain_playlist_at_most_a_part_old(
    stack: Stack,
) -> None:
    """nginx keeps max-age in whole seconds (a max-age=1 entry lives 1–2 s); with Lua the plain
    playlist is refetched once per part (TD / 6) and the cache updated in between."""
    port = stack.edge.conf.port
    target = "/live/720p/index.m3u8"
    first = await fetch(port, target)
    assert first.headers["x-cache-status"] == "BYPASS"
    again = await fetch(port, target)  # within the part: from the cache the refetch filled
    assert again.headers["x-cache-status"] == "HIT" and again.body == first.body
    stack.advance(1 / 3)  # a new part
    await asyncio.sleep(stack.edge.conf.plain_freshness + 0.05)
    later = await fetch(port, target)
    assert later.body == stack.app.event.media_playlist_bytes("720p") != first.body
    assert stack.tap.count(target) == 2
