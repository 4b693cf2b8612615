"""A shedding origin's 503s at a real nginx edge (docs/edge.md, "Load shedding"): the refusal is
cached for its max-age and concurrent requests collapse onto one origin request; once it expired
while the origin still sheds, the *new* 503 is stored (not the expired one served as STALE over
and over, each request an origin request); when the origin recovers the 200 is served and cached.
A playlist's expired 200 is served stale rather than the 503. The upstream is a fake shedding
origin on loopback (503 + max-age=1 + Retry-After, then 200)."""

from __future__ import annotations

import concurrent.futures
import time
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path

import pytest

from livecast.edge.nginx import find_lua_modules, find_nginx
from livecast.edge.nginx_conf import Upstream
from livecast.edge.topology import TopologySpec, tier_configs
from livecast.errors import LivecastError
from tests.integration.fake_upstream import FakeUpstream, Scripted, running_tier
from tests.requirements import skip_missing

pytestmark = pytest.mark.integration

SHED = Scripted(
    503,
    (("Cache-Control", "public, max-age=1"), ("Retry-After", "1")),
    b"shed: classic\n",
)
SEGMENT = Scripted(200, (("Cache-Control", "public, max-age=86400, immutable"),), b"\x00" * 1000)
PLAYLIST = Scripted(
    200,
    (("Cache-Control", "public, max-age=1"), ("Content-Type", "application/vnd.apple.mpegurl")),
    b"#EXTM3U\n#EXT-X-ENDLIST\n",
)
MODES = ["lock", "wakeup"]


def get(port: int, path: str) -> tuple[int, str]:
    """Status and X-Cache-Status of one GET."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as answer:
            answer.read()
            return answer.status, answer.headers.get("X-Cache-Status", "")
    except urllib.error.HTTPError as refusal:
        refusal.read()
        return refusal.code, refusal.headers.get("X-Cache-Status", "")


def tier(tmp_path: Path, upstream: FakeUpstream, mode: str) -> object:
    try:
        find_nginx()
    except LivecastError as exc:
        skip_missing("nginx", str(exc))
    modules = find_lua_modules() if mode == "wakeup" else ()
    if mode == "wakeup" and not modules:
        pytest.skip("needs lua")
    tmp_path.chmod(0o755)
    conf = tier_configs(
        TopologySpec(edges=1), [Upstream("127.0.0.1", upstream.port)], 2.0, tmp_path, modules
    )[0]
    return running_tier(replace(conf))


@pytest.mark.parametrize("mode", MODES)
def test_a_shed_segment_is_cached_collapsed_renewed_then_served_once_the_origin_recovers(
    tmp_path: Path, mode: str
) -> None:
    path = "/live/main/720p/seg-7.m4s"
    with FakeUpstream() as upstream, tier(tmp_path, upstream, mode) as port:  # type: ignore[attr-defined]
        upstream.script(path, SHED)
        with concurrent.futures.ThreadPoolExecutor(20) as pool:
            first = list(pool.map(lambda _: get(port, path), range(20)))
        assert {status for status, _ in first} == {503}
        assert upstream.counts[path] == 1  # collapsed, then answered from the cached refusal
        # keep asking for 4 s (the cached 503 expires every 1–2 s, nginx counts whole seconds)
        statuses: list[str] = []
        deadline = time.monotonic() + 4.0
        while time.monotonic() < deadline:
            status, cache = get(port, path)
            assert status == 503
            statuses.append(cache)
            time.sleep(0.05)
        assert "STALE" not in statuses  # the expired 503 is never served in place of the new
        assert upstream.counts[path] <= 1 + 4  # one origin request per max-age, not per request
        assert len(statuses) > 30 and statuses.count("HIT") >= len(statuses) - 5
        upstream.script(path, SEGMENT)  # the origin recovers
        deadline = time.monotonic() + 4.0
        while get(port, path)[0] != 200:
            assert time.monotonic() < deadline, "the 503 outlived its max-age"
            time.sleep(0.05)
        recovered = upstream.counts[path]
        assert [get(port, path) for _ in range(5)] == [(200, "HIT")] * 5
        assert upstream.counts[path] == recovered


def test_an_expired_playlist_is_served_stale_rather_than_a_shed_503(tmp_path: Path) -> None:
    path = "/live/main/720p/index.m3u8"
    with FakeUpstream() as upstream, tier(tmp_path, upstream, "lock") as port:  # type: ignore[attr-defined]
        upstream.script(path, PLAYLIST)
        assert get(port, path) == (200, "MISS")
        upstream.script(path, SHED)
        deadline = time.monotonic() + 4.0
        while upstream.counts[path] < 2:  # until the entry expired and the origin was asked
            assert time.monotonic() < deadline
            assert get(port, path)[0] == 200
            time.sleep(0.05)
        assert get(port, path)[0] == 200  # the 200, stale, while the origin sheds
