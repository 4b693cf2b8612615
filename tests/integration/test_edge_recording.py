# ruff: noqa: F811  (the ``stack`` fixture is imported from the shared rig)
"""The recording through a real nginx edge: start-over playlists with different ranges are
different cache entries; once the event ends, the VOD playlist at the live URL is cached for a
day (immutable) and segments older than the live window come from the origin's disk."""

from __future__ import annotations

import asyncio

import pytest

from livecast.hls.playlist import parse_media_playlist
from tests.unit.synth import EPOCH

from .test_edge_collapse import Stack, fetch, stack  # noqa: F401  (the shared rig)

pytestmark = pytest.mark.integration
RECORDED = [pytest.param({"record": True}, id="recorded")]


@pytest.mark.parametrize("stack", RECORDED, indirect=True)
async def test_start_over_and_vod_playlists_through_the_edge(stack: Stack) -> None:
    port = stack.edge.conf.port
    stack.advance(60.0)  # 80 s recorded: the first segments have left the 30 s window
    early = f"/live/720p/index.m3u8?start={EPOCH + 2:.3f}"
    later = f"/live/720p/index.m3u8?start={EPOCH + 10:.3f}"
    first, second = await fetch(port, early), await fetch(port, later)
    assert first.status == second.status == 200
    assert [r.headers["x-cache-status"] for r in (first, second)] == ["MISS", "MISS"]
    assert first.body != second.body  # the range is part of the cache key
    assert b"#EXT-X-PLAYLIST-TYPE:EVENT" in first.body
    oldest = parse_media_playlist(first.body.decode()).media_sequence
    segment = await fetch(port, f"/live/720p/seg-{oldest}.m4s")  # long gone from RAM
    assert segment.status == 200 and segment.body == stack.app.event.renditions[
        "720p"
    ].segment_data(oldest)

    stack.app.event.end()
    stack.server.notify()
    await asyncio.sleep(1.1)  # the live playlist the edge holds expires (max-age=1)
    vod = await fetch(port, "/live/720p/index.m3u8")
    assert vod.status == 200 and b"#EXT-X-PLAYLIST-TYPE:VOD" in vod.body
    assert vod.headers["cache-control"] == "public, max-age=86400, immutable"
    asked = stack.tap.count_path("/live/720p/index.m3u8")
    again = [await fetch(port, "/live/720p/index.m3u8") for _ in range(3)]
    assert [r.headers["x-cache-status"] for r in again] == ["HIT"] * 3
    assert all(r.body == vod.body for r in again)
    assert stack.tap.count_path("/live/720p/index.m3u8") == asked  # the origin is not asked
