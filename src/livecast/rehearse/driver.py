"""The rehearsal driver: virtual viewers run by the sans-IO player model — the asyncio adapter.

One :class:`Driver` runs in one process (``rehearse.workers`` starts one per core). For each
planned viewer it creates a :class:`~livecast.player.model.Player` in a
:class:`~livecast.player.harness.ViewerHarness`, performs the requests the player asks for on
keep-alive connections (:mod:`livecast.rehearse.client`, chosen by a
:class:`~livecast.player.lanes.LanePool`), and feeds the answers back. Nothing here decides
anything a player would — retries, ABR, buffering and QoE are the model's — nor anything the
Locust user does the same way: link pacing, connection choice, per-second sampling and the run's
records are the harness's. What is left is I/O: sockets, timers, the clock.

Timers: each viewer is armed on one :class:`~livecast.player.lanes.DeadlineWheel` for its next
deadline (the player's, the next per-second sample, the timeout of a request in flight), and one
periodic tick wakes only the viewers due. Delayed requests (retry backoff, classic polls) get a
``call_later`` each. Answers held back by link pacing are handed over in batches: one timer per
:data:`PACE_GRID` slot (the loop's millisecond, as a timer per answer would round it) delivers
every answer due in it — one timer handle per slot rather than one per answer.

Time: the player works in wall-clock seconds (latency behind live comes from PROGRAM-DATE-TIME);
rehearsal time ``t`` is wall clock minus the show start.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from livecast.player.config import PlayerConfig
from livecast.player.harness import TEXT_KINDS, RunRecorder, ViewerHarness
from livecast.player.lanes import MAX_LANES, DeadlineWheel, LanePool, Router
from livecast.player.model import Player
from livecast.player.parsed import PlaylistCache
from livecast.player.requests import Request
from livecast.player.tunein import parse_age
from livecast.rehearse.client import ClientConnection, Exchange
from livecast.rehearse.progress import Progress, ProgressMeter
from livecast.rehearse.viewer_access import ViewerAccess
from livecast.rehearse.viewer_access import session_id as viewer_session_id
from livecast.results.stats import RunStats
from livecast.scenario.audience import ViewerPlan

SEND_SLACK = 0.001  # seconds: a request or an answer due sooner goes now
# seconds: answers held back by link pacing go at the nearest multiple of this — the event loop's
# own timer resolution: uvloop rounds a timer's delay to the nearest millisecond, so a slot brings
# an answer when a timer of its own would have (a 4 ms grid, rounded up, moved the smoke
# rehearsal's startup p95 up by 1–2 %)
PACE_GRID = 0.001
WHEEL_SLOT = 0.01  # seconds: resolution of the viewers' deadlines
# Young-generation GC threshold while a driver runs: a request allocates a few dozen short-lived
# objects, and with the default (700) the collector ran every few requests (≈ 3 % of the CPU).
GC_THRESHOLD = 20_000


@dataclass(frozen=True, slots=True)
class DriverConfig:
    entry_urls: tuple[str, ...]  # multivariant playlists; viewer i joins entry i % len
    duration: float  # seconds of rehearsal from the show start
    show_start: float  # wall clock of t = 0
    retry_jitter: bool = True
    tick_interval: float = 0.1  # seconds between wakes of the viewers due
    held_limit: float | None = None  # 3 × target duration: an answer slower was held too long
    access: ViewerAccess | None = None  # tokens (and leases) when the stack checks who watches


class _Viewer:
    __slots__ = ("armed_slot", "harness", "headers", "index", "inflight", "lanes", "plan")

    def __init__(self, plan: ViewerPlan, harness: ViewerHarness, headers: bytes = b"") -> None:
        self.plan = plan
        self.headers = headers  # on every request of the viewer: its token's cookie
        self.index = plan.index
        self.harness = harness
        self.lanes: LanePool[ClientConnection]
        self.inflight: dict[int, Request] = {}
        self.armed_slot: int | None = None  # on the driver's DeadlineWheel


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
        self.recorder = RunRecorder(self.stats, config.show_start, config.held_limit)
        self.router = Router()
        self.wheel: DeadlineWheel[_Viewer] = DeadlineWheel(WHEEL_SLOT, clock())
        self._second = -1
        self._second_requests = 0
        self._second_errors = 0
        self.meter = ProgressMeter()  # starts, start failures, rebuffering for the progress
        # the running loop, kept: asyncio.get_running_loop() costs a getpid() syscall per call
        self._loop: asyncio.AbstractEventLoop | None = None
        self._paced: dict[int, list[tuple[_Viewer, Exchange]]] = {}  # PACE_GRID slot → answers

    # ------------------------------------------------------------------ run
    async def run(self) -> RunStats:
        thresholds = gc.get_threshold()
        gc.freeze()  # what exists now (modules, plans) is never garbage: out of every collection
        gc.set_threshold(max(thresholds[0], GC_THRESHOLD), *thresholds[1:])
        try:
            return await self._run()
        finally:
            gc.set_threshold(*thresholds)
            gc.unfreeze()

    async def _run(self) -> RunStats:
        loop = self._loop = asyncio.get_running_loop()
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
        urls, access = self.config.entry_urls, self.config.access
        session_id = viewer_session_id(plan.index, plan.seed)
        config = PlayerConfig(
            session_id=session_id,
            mode="llhls" if plan.low_latency else "classic",
            downlink_bps=plan.downlink_bps,
            leave_at=self.config.show_start + plan.leave if plan.leave is not None else None,
            seek_back=plan.seek_back,  # a start-over viewer
            session_url=access.session_url if access is not None else None,
        )
        if not self.config.retry_jitter:
            config = config.without_jitter()
        player = Player(
            urls[plan.index % len(urls)], config, random.Random(plan.seed), self.playlists
        )
        headers = b"" if access is None else access.cookie_header(plan.index, session_id, now)
        viewer = _Viewer(plan, ViewerHarness(player, self.recorder, now), headers)
        # a lease's heartbeats get a lane of their own (a browser has 6 per host)
        lanes = MAX_LANES + 1 if config.session_url is not None else MAX_LANES
        viewer.lanes = LanePool(functools.partial(self._connection, viewer), lanes)
        self.viewers[plan.index] = viewer
        self._dispatch(viewer, viewer.harness.start(now), now)

    def _finish(self, viewer: _Viewer, now: float) -> None:
        if self.viewers.pop(viewer.index, None) is None:
            return
        self.wheel.disarm(viewer)
        outcome = viewer.harness.finish(now)
        if self.on_progress is not None:
            self.meter.finished(viewer.index, outcome)
        viewer.lanes.close_all()

    def _dispatch(self, viewer: _Viewer, requests: list[Request], now: float) -> None:
        if viewer.harness.player.finished:
            self._finish(viewer, now)
            return
        if requests:
            loop = self._loop
            assert loop is not None
            for request in requests:
                delay = request.not_before - now
                if delay > SEND_SLACK:
                    loop.call_later(delay, self._send_later, viewer, request)
                else:
                    self._send(viewer, request)
        # armed for a request's timeout when sent (and again at each wake): an answer only
        # moves the harness's deadline
        self.wheel.arm(viewer, viewer.harness.next_deadline())

    # ------------------------------------------------------------------ time
    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(self.config.tick_interval)
            self._tick(self.clock())

    def _tick(self, now: float) -> None:
        for viewer in self.wheel.due(now):
            if viewer.index in self.viewers:
                self._wake(viewer, now)
        second = int(self._t(now))
        if second != self._second:
            self._close_second(second)

    def _wake(self, viewer: _Viewer, now: float) -> None:
        """A deadline of the viewer: its requests' timeouts, then the harness's; armed again
        for the earliest of the next harness deadline and the timeouts still ahead."""
        for conn in tuple(viewer.lanes.lanes):
            conn.check_timeout(now)  # a failure goes to the player
        if viewer.index not in self.viewers:
            return
        self._dispatch(viewer, viewer.harness.wake(now), now)
        for conn in viewer.lanes.lanes:
            timeout_at = conn.deadline
            if timeout_at is not None:
                self.wheel.arm(viewer, timeout_at)

    def _close_second(self, second: int) -> None:
        self.stats.set_active_viewers(second, len(self.viewers))
        if self.on_progress is not None and self._second >= 0:
            self.on_progress(self._progress(self._second))
        self._second = second
        self._second_requests = self._second_errors = 0

    def _progress(self, second: int) -> Progress:
        """The closed second's report: the viewers playing are looked at once (their first
        frame, their stalled time so far)."""
        meter = self.meter
        stalled = 0.0
        for viewer in self.viewers.values():
            player = viewer.harness.player
            buffer = player.buffer
            if buffer is None:
                continue
            stalled += buffer.stalled
            if buffer.first_frame_at is not None and player.started_at is not None:
                meter.playing(viewer.index, buffer.first_frame_at - player.started_at)
        closed = self.stats.timeline.at(second)
        return meter.close(
            second,
            active=len(self.viewers),
            requests=self._second_requests,
            errors=self._second_errors,
            stalls=closed.stalls,
            stalled_playing_s=stalled,
            latency=closed.live_latency_s,
        )

    # ------------------------------------------------------------------ requests
    def _send_later(self, viewer: _Viewer, request: Request) -> None:
        """A delayed request (retry backoff, classic poll) the player may no longer want."""
        if viewer.index in self.viewers and viewer.harness.player.wanted(request.id):
            self._send(viewer, request)

    def _send(self, viewer: _Viewer, request: Request) -> None:
        host, port, target = self.router.route(request.url)
        conn = viewer.lanes.acquire(host, port)
        if conn is None:
            viewer.lanes.wait(request)
            return
        viewer.inflight[request.id] = request
        now = self.clock()
        self.recorder.sent(request, now)
        conn.send(request.id, target, keep_body=request.kind in TEXT_KINDS, timeout=request.timeout)
        timeout_at = conn.deadline
        if timeout_at is not None:
            self.wheel.arm(viewer, timeout_at)

    def _connection(self, viewer: _Viewer, host: str, port: int) -> ClientConnection:
        holder: list[ClientConnection] = []

        def on_exchange(exchange: Exchange) -> None:
            self._on_exchange(viewer, holder[0], exchange)

        def on_failure(request_id: int, kind: str) -> None:
            self._on_failure(viewer, request_id, kind)

        conn = ClientConnection(
            host, port, on_exchange, on_failure, clock=self.clock, extra_headers=viewer.headers
        )
        holder.append(conn)
        return conn

    def _next_waiting(self, viewer: _Viewer) -> None:
        """A lane came free: the request that waited longest, if the player still wants it."""
        if viewer.index not in self.viewers:
            return
        while (request := viewer.lanes.next_waiting()) is not None:
            if viewer.harness.player.wanted(request.id):
                self._send(viewer, request)
                return

    def _on_exchange(self, viewer: _Viewer, conn: ClientConnection, exchange: Exchange) -> None:
        request = viewer.inflight.pop(exchange.request_id, None)
        now = self.clock()
        if viewer.lanes.waiting:
            self._next_waiting(viewer)
        if request is None:
            return
        status = exchange.status
        self.recorder.answered(
            request, status, exchange.size, exchange.finished - exchange.started, now
        )
        self._second_requests += 1  # _count_second, inlined
        if status >= 400:
            self._second_errors += 1
        deliver_at = viewer.harness.link.delivery_time(
            exchange.first_byte, exchange.finished, exchange.size
        )
        if deliver_at - now > SEND_SLACK:
            self._deliver_later(viewer, exchange, deliver_at - now)
        else:
            self._deliver(viewer, exchange)

    def _deliver_later(self, viewer: _Viewer, exchange: Exchange, delay: float) -> None:
        """With the other answers due in the same :data:`PACE_GRID` slot (one timer per slot)."""
        loop = self._loop
        assert loop is not None
        slot = round((loop.time() + delay) / PACE_GRID)
        batch = self._paced.get(slot)
        if batch is None:
            batch = self._paced[slot] = []
            loop.call_at(slot * PACE_GRID, self._deliver_slot, slot)
        batch.append((viewer, exchange))

    def _deliver_slot(self, slot: int) -> None:
        for viewer, exchange in self._paced.pop(slot, ()):
            self._deliver(viewer, exchange)

    def _deliver(self, viewer: _Viewer, exchange: Exchange) -> None:
        if viewer.index not in self.viewers:
            return
        now = self.clock()
        actions = viewer.harness.on_response(
            exchange.request_id,
            exchange.status,
            exchange.body,
            exchange.size,
            now,
            first_byte_at=exchange.first_byte,
            age=parse_age(exchange.age),
        )
        self._dispatch(viewer, actions, now)

    def _on_failure(self, viewer: _Viewer, request_id: int, kind: str) -> None:
        request = viewer.inflight.pop(request_id, None)
        now = self.clock()
        self._next_waiting(viewer)
        if request is None or viewer.index not in self.viewers:
            return
        self.recorder.failed(request, kind, now)
        self._count_second(error=True)
        self._dispatch(viewer, viewer.harness.on_error(request_id, kind, now), now)

    def _count_second(self, *, error: bool) -> None:
        """A request outcome for the progress line (an error: 4xx/5xx or no answer)."""
        self._second_requests += 1
        if error:
            self._second_errors += 1
