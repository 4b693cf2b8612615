"""Miss collapsing through a real nginx edge (issue 4, evidence): N identical blocking requests
for a part that does not exist yet reach the origin once — for a blocking playlist reload, for a
preload-hinted part, and for a hold longer than nginx's default 5 s lock timeout.

The origin is the real OriginServer + OriginApp over a LiveEvent fed by hand (synthetic fMP4), so
the hold lasts exactly as long as the test wants; a RequestTap between nginx and the origin counts
what reaches the origin, by request target.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import pytest_asyncio

from livecast.edge.accesslog import parse_access_log_line, tally
from livecast.edge.nginx import LUA_HINT, NginxTier, find_lua_modules, find_nginx
from livecast.edge.nginx_conf import Upstream
from livecast.edge.tap import RequestTap
from livecast.edge.topology import TopologySpec, tier_configs
from livecast.errors import LivecastError
from livecast.hls.playlist import parse_media_playlist
from livecast.origin.app import OriginApp
from livecast.origin.http import OriginServer
from livecast.store.archive import Recording
from livecast.telemetry.metrics import Registry
from tests.requirements import skip_missing, skip_unless
from tests.unit.synth import Feeder, make_event

pytestmark = pytest.mark.integration

START = 20.5  # media seconds fed before the test starts: mid-segment, parts pending


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    finished: float  # time.monotonic() when the body was complete


async def fetch(port: int, target: str, timeout: float = 20.0) -> Reply:
    """One GET on a fresh connection (Connection: close), read to the end."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            f"GET {target} HTTP/1.1\r\nHost: edge\r\nConnection: close\r\n\r\n".encode("latin-1")
        )
        data = await asyncio.wait_for(reader.read(-1), timeout)
    finally:
        writer.close()
    finished = time.monotonic()
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Reply(int(status_line.split()[1]), headers, body, finished)


@dataclass
class Stack:
    feeder: Feeder
    app: OriginApp
    server: OriginServer
    taps: list[RequestTap]  # one per "origin" (all relaying to the same OriginServer)
    tiers: list[NginxTier]  # the shield first, if any, then the edges
    media_time: float

    @property
    def tap(self) -> RequestTap:
        return self.taps[0]

    @property
    def edges(self) -> list[NginxTier]:
        return [t for t in self.tiers if t.conf.name.startswith("edge-")]

    @property
    def edge(self) -> NginxTier:
        return self.edges[0]

    def origin_requests(self, target: str) -> int:
        return sum(tap.count(target) for tap in self.taps)

    def advance(self, seconds: float) -> None:
        """Publish ``seconds`` more media and wake the origin's parked requests."""
        self.media_time += seconds
        self.feeder.advance_to(self.media_time)
        self.server.notify()

    def next_part(self, rendition: str = "720p") -> tuple[int, int]:
        body = self.app.event.media_playlist_bytes(rendition).decode()
        last = parse_media_playlist(body).last_part()
        assert last is not None
        return last[0], last[1] + 1

    def hint(self, rendition: str = "720p") -> str:
        body = self.app.event.media_playlist_bytes(rendition).decode()
        return f"/live/{rendition}/{parse_media_playlist(body).preload_hints[0].uri}"

    async def active_connections(self, tier: NginxTier) -> int:
        reply = await fetch(tier.conf.port, "/edge/status")
        return int(reply.body.split(b"Active connections:")[1].split()[0])

    async def wait_waiting(self, count: int, tier: NginxTier | None = None) -> None:
        """Until ``count`` client connections are open at ``tier`` (our requests all sent)."""
        tier = tier or self.edge
        deadline = time.monotonic() + 10.0
        while await self.active_connections(tier) < count + 1:  # + the status request
            assert time.monotonic() < deadline, "the requests did not all reach the edge"
            await asyncio.sleep(0.05)


@pytest_asyncio.fixture
async def stack(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Stack]:
    """Origin (hand-fed) ← taps ← [shield] ← edges. ``request.param`` may set ``edges``,
    ``shield``, ``origins`` (taps, i.e. upstream servers), ``tier`` (TierConfig changes) and
    ``record`` (the event is recorded, in ``tmp_path / "recording"``)."""
    try:
        find_nginx()
    except LivecastError as exc:
        skip_missing("nginx", str(exc))
    param = getattr(request, "param", {})
    recording = Recording(tmp_path / "recording") if param.get("record") else None
    event = make_event(store=recording)
    feeder = Feeder(event)
    feeder.advance_to(START)
    app = OriginApp(event)
    server = OriginServer(app, Registry(), cache_key=app.cache_key)
    await server.start("127.0.0.1", 0)
    taps = [RequestTap("127.0.0.1", server.port) for _ in range(param.get("origins", 1))]
    for tap in taps:
        await tap.start()
    os.chmod(tmp_path, 0o755)
    spec = TopologySpec(edges=param.get("edges", 1), shield=param.get("shield", False))
    origins = [Upstream("127.0.0.1", tap.port) for tap in taps]
    confs = tier_configs(spec, origins, event.config.target_duration, tmp_path)
    tiers = [NginxTier(replace(conf, **param.get("tier", {}))) for conf in confs]
    try:
        for tier in tiers:
            await tier.start()
        yield Stack(feeder, app, server, taps, tiers, START)
    finally:
        for tier in reversed(tiers):
            await tier.stop()
        for tap in taps:
            await tap.stop()
        server.notify()
        await server.stop()
        if recording is not None:
            recording.close()
    for tier in tiers:  # nothing worse than the upstream errors a test provokes
        severe = [
            line for line in _lines(tier.error_log) if re.search(r"\[(crit|alert|emerg)\]", line)
        ]
        assert not severe, severe[:3]


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return []


async def logged(stack: Stack, tier: str, requests: int) -> dict[str, int]:
    """``tier``'s requests by cache status, once ``requests`` of them are logged (nginx buffers
    its access log and flushes it at least every second)."""
    deadline = time.monotonic() + 4.0
    while True:
        lines: list[str] = []
        for t in stack.tiers:
            lines += _lines(t.access_log)
        counts = tally(lines).get(tier)
        if (counts is not None and counts.requests >= requests) or time.monotonic() > deadline:
            return dict(counts.by_status) if counts is not None else {}
        await asyncio.sleep(0.02)


async def _collapse(
    stack: Stack, target: str, viewers: int, hold: float
) -> tuple[list[Reply], list[float]]:
    """``viewers`` identical requests for ``target``; release the origin after ``hold`` s."""
    requests = [asyncio.ensure_future(fetch(stack.edge.conf.port, target)) for _ in range(viewers)]
    await stack.wait_waiting(viewers)
    started = time.monotonic()
    while time.monotonic() - started < hold:
        await asyncio.sleep(0.1)
        done = [r for r in requests if r.done()]
        assert not done, (
            f"answered before the part existed: {done[0].exception() or done[0].result()}"
        )
    assert stack.tap.count(target) == 1  # one request went on to the origin, and it is parked
    released = time.monotonic()
    stack.advance(1 / 3)
    replies = await asyncio.gather(*requests)
    waits = sorted(r.finished - released for r in replies)
    print(
        f"{viewers} viewers of {target}: origin requests {stack.tap.count(target)}, "
        f"answered {waits[len(waits) // 2] * 1000:.0f} ms (p50) / {waits[-1] * 1000:.0f} ms "
        f"(max) after the part, cache statuses {await logged(stack, 'edge-0', viewers)}"
    )
    return replies, waits


LUA_MODULES = find_lua_modules()
# nginx's lock waiters re-check every 500 ms, so with the lock alone the median waiter is answered
# ≈ 0.5 s after the part (measured 0.52–0.53 s); woken waiters well before the first re-check
# (measured 0.05–0.14 s for 500, most of it this client reading 500 answers)
POLL_FREE = 0.3
# both ways of collapsing: nginx's cache lock alone (waiters poll it every 500 ms), and the
# wake-up collapse (Lua) on top of it
MODES = [
    pytest.param({}, id="lock"),
    pytest.param(
        {"tier": {"lua_modules": LUA_MODULES}},
        id="wakeup",
        marks=skip_unless(bool(LUA_MODULES), "lua", LUA_HINT),
    ),
]


@pytest.mark.parametrize("stack", MODES, indirect=True)
async def test_500_identical_blocking_playlist_requests_reach_the_origin_once(
    stack: Stack,
) -> None:
    msn, part = stack.next_part()
    target = f"/live/720p/index.m3u8?_HLS_msn={msn}&_HLS_part={part}"
    replies, waits = await _collapse(stack, target, viewers=500, hold=0.5)
    assert stack.tap.count(target) == 1
    assert {r.status for r in replies} == {200}
    assert len({r.body for r in replies}) == 1
    assert parse_media_playlist(replies[0].body.decode()).last_part() == (msn, part)
    statuses = await logged(stack, "edge-0", 500)
    assert statuses.get("MISS") == 1 and statuses.get("HIT") == 499, statuses
    assert replies[0].headers["cache-control"] == "public, max-age=12"  # the origin's TTL
    if stack.edge.conf.lua_modules:  # woken when the answer is cached, not at the next poll
        assert waits[len(waits) // 2] < POLL_FREE, waits[len(waits) // 2]


@pytest.mark.parametrize("stack", MODES, indirect=True)
async def test_500_identical_preload_hint_requests_reach_the_origin_once(stack: Stack) -> None:
    target = stack.hint()
    replies, waits = await _collapse(stack, target, viewers=500, hold=0.5)
    assert stack.tap.count(target) == 1
    assert {r.status for r in replies} == {200}
    assert len({r.body for r in replies}) == 1 and len(replies[0].body) > 0
    assert replies[0].headers["cache-control"] == "public, max-age=86400, immutable"
    if stack.edge.conf.lua_modules:
        assert waits[len(waits) // 2] < POLL_FREE, waits[len(waits) // 2]


@pytest.mark.parametrize("stack", MODES, indirect=True)
async def test_a_hold_longer_than_5_s_still_collapses(stack: Stack) -> None:
    msn, part = stack.next_part()
    target = f"/live/720p/index.m3u8?_HLS_msn={msn}&_HLS_part={part}"
    replies, _ = await _collapse(stack, target, viewers=50, hold=5.5)
    assert stack.tap.count(target) == 1
    assert {r.status for r in replies} == {200}


@pytest.mark.parametrize("stack", [{"tier": {"lock_timeout": 5.0}}], indirect=True)
async def test_control_nginx_default_lock_timeout_does_not_collapse_a_long_hold(
    stack: Stack,
) -> None:
    """The pitfall the config avoids, shown on the same rig: with nginx's default 5 s the waiters
    are sent to the origin after 5 s, uncached."""
    msn, part = stack.next_part()
    target = f"/live/720p/index.m3u8?_HLS_msn={msn}&_HLS_part={part}"
    requests = [asyncio.ensure_future(fetch(stack.edge.conf.port, target)) for _ in range(20)]
    await stack.wait_waiting(20)
    await asyncio.sleep(5.8)
    assert stack.tap.count(target) > 1
    stack.advance(1 / 3)
    await asyncio.gather(*requests)
    print(f"lock timeout 5 s, hold 5.8 s: {stack.tap.count(target)} origin requests for 20 viewers")


@pytest.mark.parametrize("stack", [{"edges": 2, "shield": True}], indirect=True)
async def test_behind_a_shield_two_edges_reach_the_origin_once(stack: Stack) -> None:
    msn, part = stack.next_part()
    target = f"/live/720p/index.m3u8?_HLS_msn={msn}&_HLS_part={part}"
    requests = [
        asyncio.ensure_future(fetch(edge.conf.port, target))
        for edge in stack.edges
        for _ in range(100)
    ]
    for edge in stack.edges:
        await stack.wait_waiting(100, edge)
    await asyncio.sleep(0.3)
    assert stack.origin_requests(target) == 1
    stack.advance(1 / 3)
    replies = await asyncio.gather(*requests)
    assert {r.status for r in replies} == {200} and len({r.body for r in replies}) == 1
    assert stack.origin_requests(target) == 1
    for name in ("edge-0", "edge-1"):
        assert await logged(stack, name, 100) == {"MISS": 1, "HIT": 99}, name
    shield = await logged(stack, "shield", 2)
    assert sum(shield.values()) == 2  # one per edge
    print(f"shield + 2 edges, 200 viewers: {shield} at the shield, 1 at origin")


@pytest.mark.parametrize("stack", MODES, indirect=True)
async def test_the_fetching_viewer_leaving_does_not_send_the_waiters_to_the_origin(
    stack: Stack,
) -> None:
    """Viewers leave all the time: the one whose request is the edge's fetch of a blocking
    playlist may close its connection during the hold. The fetch goes on for the others
    (proxy_ignore_client_abort) — else they would be released into a cache without the object
    and fetch it again (more origin requests, and the lock's 500 ms polls)."""
    msn, part = stack.next_part()
    target = f"/live/720p/index.m3u8?_HLS_msn={msn}&_HLS_part={part}"
    port = stack.edge.conf.port
    _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: edge\r\n\r\n".encode("latin-1"))
    deadline = time.monotonic() + 5.0
    while stack.tap.count(target) == 0:  # the fetch is at the origin, parked
        assert time.monotonic() < deadline, "the first request never reached the origin"
        await asyncio.sleep(0.02)
    others = [asyncio.ensure_future(fetch(port, target)) for _ in range(50)]
    await stack.wait_waiting(51)
    writer.close()  # the fetching viewer leaves
    await asyncio.sleep(0.3)
    stack.advance(1 / 3)
    replies = await asyncio.gather(*others)
    assert {r.status for r in replies} == {200}
    assert stack.tap.count(target) == 1, stack.tap.count(target)
    statuses = await logged(stack, "edge-0", 51)
    assert statuses.get("HIT") == 50, statuses


@pytest.mark.parametrize(
    "stack", [{"tier": {"lua_modules": LUA_MODULES, "workers": 2}}], indirect=True
)
@skip_unless(bool(LUA_MODULES), "lua", LUA_HINT)
async def test_two_workers_wake_each_others_waiters(stack: Stack) -> None:
    """With several nginx workers each has its own waiters; the one worker that fetches the
    object tells the others through a shared dict, so their waiters are not left to the cache
    lock's 500 ms re-checks — and the edge still asks the origin once."""
    msn, part = stack.next_part()
    target = f"/live/720p/index.m3u8?_HLS_msn={msn}&_HLS_part={part}"
    replies, waits = await _collapse(stack, target, viewers=300, hold=0.5)
    assert stack.tap.count(target) == 1
    assert {r.status for r in replies} == {200}
    await logged(stack, "edge-0", 300)
    records = [parse_access_log_line(line) for line in _lines(stack.edge.access_log)]
    workers = Counter(r.worker for r in records if r is not None and r.target == target)
    assert len(workers) == 2, workers  # both workers had waiters
    assert waits[-1] < POLL_FREE, (waits[-1], workers)  # all woken, none polled the lock
