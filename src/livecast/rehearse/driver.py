"""The rehearsal driver: virtual viewers run by the sans-IO player model — the asyncio adapter.

One :class:`Driver` runs in one process (``rehearse.workers`` starts one per core). For each
planned viewer it creates a :class:`~livecast.player.model.Player`, performs the requests the
player asks for on keep-alive connections (:mod:`livecast.rehearse.client`, at most four per
viewer, as the player keeps at most one playlist and one media request in flight per track), and
feeds the answers back. Nothing here decides anything a player would: retries, ABR, buffering
and QoE are the model's.

The viewer's downlink cap is applied to what the player sees, not to the socket: a response is
handed to the player when its bytes would have crossed the viewer's link (one FIFO link per
viewer, starting at the first byte), so thousands of capped viewers cost no extra syscalls.

Time: the player works in wall-clock seconds (latency behind live comes from PROGRAM-DATE-TIME);
rehearsal time ``t`` is wall clock minus the show start.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from livecast.player.config import PlayerConfig
from livecast.player.model import Player
from livecast.player.parsed import PlaylistCache
from livecast.player.qoe import QoeRecord
from livecast.player.requests import Request
from livecast.player.tunein import parse_age
from livecast.rehearse.audience import ViewerPlan
from livecast.rehearse.client import ClientConnection, Exchange
from livecast.results.stats import LatencySummary, RunStats, ViewerOutcome

MAX_CONNECTIONS_PER_VIEWER = 4
TEXT_KINDS = frozenset({"multivariant", "playlist"})
MEDIA_KINDS = frozenset({"init", "part", "segment"})
NOT_FOUND_MEMORY = 20_000  # media URLs answered 404, remembered to spot a 200 a moment later


@dataclass(frozen=True, slots=True)
class DriverConfig:
    entry_urls: tuple[str, ...]  # multivariant playlists; viewer i joins entry i % len
    duration: float  # seconds of rehearsal from the show start
    show_start: float  # wall clock of t = 0
    retry_jitter: bool = True
    tick_interval: float = 0.1
    held_limit: float | None = None  # 3 × target duration: an answer slower was held too long


@dataclass(frozen=True, slots=True)
class Progress:
    """One second of this worker's run, for the live terminal line."""

    t: int
    active: int
    requests: int
    errors: int
    latency_p50: float | None
    latency_p95: float | None


class _Viewer:
    __slots__ = (
        "conns",
        "index",
        "inflight",
        "link_free_at",
        "plan",
        "player",
        "samples_seen",
        "stalls_seen",
        "waiting",
    )

    def __init__(self, plan: ViewerPlan, player: Player) -> None:
        self.plan = plan
        self.index = plan.index
        self.player = player
        self.conns: list[ClientConnection] = []
        self.inflight: dict[int, Request] = {}
        self.waiting: deque[Request] = deque()
        self.link_free_at = 0.0
        self.stalls_seen = 0
        self.samples_seen = 0


def outcome_of(record: QoeRecord) -> ViewerOutcome:
    """The player's QoE record as the results package counts it."""
    samples = record.latency_samples
    return ViewerOutcome(
        startup_s=record.startup_time,
        start_failed=record.video_start_failure,
        exited_before_start=record.exit_before_video_start,
        stalls=record.stall_count,
        stalled_s=record.stalled_time,
        played_s=record.played_time,
        latency=LatencySummary.of(samples) if samples else None,
        avg_bitrate_bps=record.average_bitrate,
        switches=record.switches,
        fatal_error=record.error if record.outcome in ("fatal", "start_failure") else None,
    )


class Driver:
    def __init__(
        self,
        plans: list[ViewerPlan],
        config: DriverConfig,
        stats: RunStats | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.plans = plans
        self.config = config
        self.stats = stats or RunStats()
        self.on_progress = on_progress
        self.clock = clock
        self.viewers: dict[int, _Viewer] = {}
        self.playlists = PlaylistCache(size=256)  # one parse per playlist version, all viewers
        self._authorities: dict[str, tuple[str, int]] = {}
        self._not_found: OrderedDict[str, int] = OrderedDict()  # media URL → 404s so far
        self._second = -1
        self._second_requests = 0
        self._second_errors = 0
        self._done = asyncio.Event()

    # ------------------------------------------------------------------ run
    async def run(self) -> RunStats:
        loop = asyncio.get_running_loop()
        offset = loop.time() - self.clock()  # wall clock → loop clock
        start = self.config.show_start
        for plan in self.plans:
            loop.call_at(start + plan.arrive + offset, self._arrive, plan)
        ticker = loop.create_task(self._tick_forever())
        end = start + self.config.duration
        await asyncio.sleep(max(0.0, end - self.clock()))
        ticker.cancel()
        now = self.clock()
        for viewer in list(self.viewers.values()):
            self._finish(viewer, now)
        return self.stats

    def _t(self, now: float) -> float:
        return now - self.config.show_start

    # ------------------------------------------------------------------ viewers
    def _arrive(self, plan: ViewerPlan) -> None:
        now = self.clock()
        if self._t(now) >= self.config.duration:
            return
        urls = self.config.entry_urls
        config = PlayerConfig(
            session_id=f"v{plan.index:06d}-{plan.seed:08x}",
            mode="llhls" if plan.low_latency else "classic",
            downlink_bps=plan.downlink_bps,
            leave_at=self.config.show_start + plan.leave if plan.leave is not None else None,
        )
        if not self.config.retry_jitter:
            config = config.without_jitter()
        player = Player(
            urls[plan.index % len(urls)], config, random.Random(plan.seed), self.playlists
        )
        viewer = self.viewers[plan.index] = _Viewer(plan, player)
        self._dispatch(viewer, player.start(now), now)

    def _finish(self, viewer: _Viewer, now: float) -> None:
        if self.viewers.pop(viewer.index, None) is None:
            return
        self._sample(viewer, now)
        self.stats.record_viewer(outcome_of(viewer.player.qoe(now)))
        for conn in viewer.conns:
            conn.close()
        viewer.conns.clear()

    def _dispatch(self, viewer: _Viewer, requests: list[Request], now: float) -> None:
        if viewer.player.finished:
            self._finish(viewer, now)
            return
        loop = asyncio.get_running_loop()
        for request in requests:
            delay = request.not_before - now
            if delay > 0.001:
                loop.call_later(delay, self._send_later, viewer, request)
            else:
                self._send(viewer, request)

    # ------------------------------------------------------------------ requests
    def _send_later(self, viewer: _Viewer, request: Request) -> None:
        """A delayed request (retry backoff, classic poll) the player may no longer want."""
        if viewer.index in self.viewers and viewer.player.wanted(request.id):
            self._send(viewer, request)

    def _send(self, viewer: _Viewer, request: Request) -> None:
        if viewer.index not in self.viewers:
            return
        host, port, target = self._route(request.url)
        conn = next(
            (c for c in viewer.conns if not c.busy and c.port == port and c.host == host), None
        )
        if conn is None:
            if len(viewer.conns) >= MAX_CONNECTIONS_PER_VIEWER:
                viewer.waiting.append(request)
                return
            conn = self._connection(viewer, host, port)
        viewer.inflight[request.id] = request
        self.stats.record_sent(self._t(self.clock()), request.retry > 0)
        if request.retry:
            client = self.stats.indicators.client
            client.count("retries")
            if request.retry == 1:
                client.count("retried_requests")
        conn.send(request.id, target, keep_body=request.kind in TEXT_KINDS, timeout=request.timeout)

    def _route(self, url: str) -> tuple[str, int, str]:
        """Host, port and request target of an absolute http URL (authorities memoised: a
        handful of entry points serve every request of the run)."""
        authority, slash, path = url.partition("://")[2].partition("/")
        address = self._authorities.get(authority)
        if address is None:
            split = urlsplit(f"http://{authority}/")
            address = self._authorities[authority] = (
                split.hostname or "127.0.0.1",
                split.port or 80,
            )
        return address[0], address[1], (slash + path) or "/"

    def _connection(self, viewer: _Viewer, host: str, port: int) -> ClientConnection:
        holder: list[ClientConnection] = []

        def on_exchange(exchange: Exchange) -> None:
            self._on_exchange(viewer, holder[0], exchange)

        def on_failure(request_id: int, kind: str) -> None:
            self._on_failure(viewer, request_id, kind)

        conn = ClientConnection(host, port, on_exchange, on_failure, clock=self.clock)
        holder.append(conn)
        viewer.conns.append(conn)
        return conn

    def _next_waiting(self, viewer: _Viewer) -> None:
        if viewer.waiting and viewer.index in self.viewers:
            self._send(viewer, viewer.waiting.popleft())

    def _on_exchange(self, viewer: _Viewer, conn: ClientConnection, exchange: Exchange) -> None:
        request = viewer.inflight.pop(exchange.request_id, None)
        now = self.clock()
        self._next_waiting(viewer)
        if request is None:
            return
        latency = exchange.finished - exchange.started
        self._count(request.kind, exchange.status, latency, now)
        self._indicators(request, exchange.status, exchange.size, latency)
        cap = viewer.player.downlink_bps
        deliver_at = exchange.finished
        if cap:
            link_start = max(viewer.link_free_at, exchange.first_byte)
            viewer.link_free_at = link_start + 8 * exchange.size / cap
            deliver_at = max(deliver_at, viewer.link_free_at)
        if deliver_at - now > 0.001:
            asyncio.get_running_loop().call_later(deliver_at - now, self._deliver, viewer, exchange)
        else:
            self._deliver(viewer, exchange)

    def _deliver(self, viewer: _Viewer, exchange: Exchange) -> None:
        if viewer.index not in self.viewers:
            return
        now = self.clock()
        actions = viewer.player.on_response(
            exchange.request_id,
            exchange.status,
            exchange.body,
            exchange.size,
            now,
            first_byte_at=exchange.first_byte,
            age=parse_age(exchange.age),
        )
        playlist_age = viewer.player.last_playlist_age
        if playlist_age is not None:
            self.stats.indicators.client.count("playlists")
            self.stats.indicators.client.playlist_age_s.record(max(0.0, playlist_age))
        self._dispatch(viewer, actions, now)

    def _indicators(self, request: Request, status: int, size: int, latency: float) -> None:
        """Bytes per kind, answers held too long, and media 404s that turn into 200 later (an
        early request answered — and perhaps cached — negative)."""
        client = self.stats.indicators.client
        client.add_bytes(request.kind, size)
        held_limit = self.config.held_limit
        if held_limit is not None and latency > held_limit:
            client.count("held_past")
        if request.kind not in MEDIA_KINDS:
            return
        client.count("media_requests")
        url = request.url.partition("?")[0]
        if status == 404:
            client.count("media_404")
            self._not_found[url] = self._not_found.get(url, 0) + 1
            self._not_found.move_to_end(url)
            if len(self._not_found) > NOT_FOUND_MEMORY:
                self._not_found.popitem(last=False)
        elif 200 <= status < 300 and self._not_found:
            early = self._not_found.pop(url, 0)
            if early:
                client.count("early_404", early)

    def _on_failure(self, viewer: _Viewer, request_id: int, kind: str) -> None:
        request = viewer.inflight.pop(request_id, None)
        now = self.clock()
        self._next_waiting(viewer)
        if request is None or viewer.index not in self.viewers:
            return
        self._count(request.kind, kind, None, now)
        self._dispatch(viewer, viewer.player.on_error(request_id, kind, now), now)

    def _count(self, kind: str, status: int | str, latency: float | None, now: float) -> None:
        self.stats.record_request(kind, status, latency, self._t(now))
        self._second_requests += 1
        if not (isinstance(status, int) and status < 400):
            self._second_errors += 1

    # ------------------------------------------------------------------ time
    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(self.config.tick_interval)
            self._tick(self.clock())

    def _tick(self, now: float) -> None:
        for viewer in list(self.viewers.values()):
            for conn in viewer.conns:
                conn.check_timeout(now)
            if viewer.index in self.viewers:
                self._dispatch(viewer, viewer.player.tick(now), now)
        second = int(self._t(now))
        if second != self._second:
            self._close_second(second, now)

    def _close_second(self, second: int, now: float) -> None:
        for viewer in self.viewers.values():
            self._sample(viewer, now)
        self.stats.set_active_viewers(second, len(self.viewers))
        if self.on_progress is not None and self._second >= 0:
            latency = self.stats.timeline.at(self._second).live_latency_s
            self.on_progress(
                Progress(
                    t=self._second,
                    active=len(self.viewers),
                    requests=self._second_requests,
                    errors=self._second_errors,
                    latency_p50=latency.percentile(50) if latency.count else None,
                    latency_p95=latency.percentile(95) if latency.count else None,
                )
            )
        self._second = second
        self._second_requests = self._second_errors = 0

    def _sample(self, viewer: _Viewer, now: float) -> None:
        """New stalls and latency samples of one viewer into the per-second timeline."""
        t = self._t(now)
        player = viewer.player
        stalls = player.buffer.stall_count if player.buffer is not None else 0
        for _ in range(stalls - viewer.stalls_seen):
            self.stats.record_stall(t)
        viewer.stalls_seen = stalls
        samples = player.latency_samples
        for latency in samples[viewer.samples_seen :]:
            self.stats.record_live_latency(t, latency)
        viewer.samples_seen = len(samples)
