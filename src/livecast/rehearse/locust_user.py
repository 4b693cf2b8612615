"""The rehearsal's player model as a Locust ``User`` — large audiences over many Locust workers.

    locust -f src/livecast/rehearse/locust_user.py --headless -u 500 -r 50 -t 60s \\
        --host http://origin:8080 [--livecast-path /live/main.m3u8] [--livecast-results q.json]

Each Locust user plays viewers, one after another: a viewer is one sans-IO
:class:`~livecast.player.model.Player` in a :class:`~livecast.player.harness.ViewerHarness` (the
same model and harness the asyncio driver runs; nothing here decides anything a player would —
retries, ABR, buffering and QoE are the model's — nor what the harness does the same way for both
drivers: link pacing, connection choice, per-second sampling, the run's records). A viewer lasts
until its player finishes (stream end, fatal error, or ``--livecast-session`` seconds) or the test
stops; then the user starts the next one.

Plan mode (``livecast rehearse --engine locust``, :mod:`~livecast.rehearse.locust_master`): the
master hands each worker an :class:`~livecast.rehearse.locust_shape.Assignment` — its share of
the scenario's planned viewers and the show start. Then each user plays exactly one plan (the
j-th user the j-th plan, waiting for its arrival time; the driver's session id, mode, downlink,
seek-back, seed and leave time), then idles; every viewer ends at the end of the show, and the
worker sends the master one :class:`~livecast.rehearse.locust_shape.SecondReport` a second.

Concurrency (gevent, as Locust is): a player keeps at most one playlist and one media request in
flight per track and LL-HLS playlist reloads are *held* by the server, so requests cannot be
performed one after another. Each request runs in its own greenlet (sleeping until its
``not_before``), on the viewer's keep-alive connections ("lanes", at most
:data:`~livecast.player.lanes.MAX_LANES`, a geventhttpclient ``HTTPClient`` of one socket each)
chosen by a :class:`~livecast.player.lanes.LanePool` as in the driver — a request that finds every
lane busy waits for one. The whole response has a deadline (the request's ``timeout``, a
``gevent.Timeout``); a lane that failed is closed and replaced (geventhttpclient re-sends a request
once on a kept-alive socket the server had closed, as the driver's client does; any other failure
goes to the player, which owns the retries). The viewer's own greenlet sleeps until the harness's
next deadline, woken early when an answer moves it. The player itself is only touched between
greenlet switches, so it needs no lock.

Reporting: every request fires Locust's ``request`` event (``request_type`` and ``name`` = the
request kind: multivariant, playlist, init, part, segment; a 4xx/5xx status or a transport failure
is a failure), so Locust's own statistics, CSV and UI work. QoE goes to
:class:`~livecast.results.stats.RunStats`: each process records its viewers and requests and a
worker ships the increment with every Locust stats report (``report_to_master``). When the test
stops, the master first sends ``livecast_finish`` to its workers; each ends its viewers and answers
with its last increment (``livecast_final``) — Locust itself waits only 0.5 s for a quitting
worker's last report. The master (or a local runner) merges them, logs a QoE line at the end and
writes ``RunStats.to_dict()`` as JSON to ``--livecast-results`` when given.

Options (command line or environment): ``--livecast-path`` (``LIVECAST_PATH``, the multivariant
playlist path below ``--host``, default ``/live/main.m3u8``), ``--livecast-downlink-kbps``
(``LIVECAST_DOWNLINK_KBPS``, ±10 % per viewer; 0 = no cap), ``--livecast-classic-share``
(``LIVECAST_CLASSIC_SHARE``, share of classic-HLS players), ``--livecast-session``
(``LIVECAST_SESSION``, seconds a viewer stays; 0 = until the test ends), ``--livecast-seed``,
``--livecast-results`` (``LIVECAST_RESULTS``).
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import random
import socket
import time
from collections import deque
from pathlib import Path
from typing import Any

import gevent  # type: ignore[import-untyped]
import gevent.event  # type: ignore[import-untyped]
import gevent.pool  # type: ignore[import-untyped]
from geventhttpclient import HTTPClient
from locust import User, constant, events, task
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from livecast.player.config import PlayerConfig
from livecast.player.harness import TEXT_KINDS, RunRecorder, ViewerHarness
from livecast.player.lanes import LanePool, Router
from livecast.player.model import Player
from livecast.player.parsed import PlaylistCache
from livecast.player.requests import Request
from livecast.player.tunein import parse_age
from livecast.rehearse.locust_shape import Assignment, SecondReport
from livecast.results.histogram import Histogram
from livecast.results.stats import TIMELINE_LAYOUT, RunStats
from livecast.scenario.audience import ViewerPlan

log = logging.getLogger("livecast.locust")

USER_AGENT = "livecast-rehearse-locust"
SEND_SLACK = 0.001  # seconds: a request or an answer due sooner goes now
READ_BLOCK = 65536
REPORT_KEY = "livecast_stats"
FINISH_MESSAGE = "livecast_finish"  # master → workers: end your viewers, send the rest
FINAL_MESSAGE = "livecast_final"  # worker → master: the last RunStats increment
FINAL_WAIT = 10.0  # seconds the master waits for them
PROGRESS_MESSAGE = "livecast_progress"  # worker → master, plan mode: a SecondReport a second
IDLE_SLEEP = 1.0  # seconds: a user without a viewer to play looks again this often


class HttpStatusError(Exception):
    """A 4xx/5xx answer, as Locust counts a failure."""


class TransportError(Exception):
    """No HTTP answer: connect, reset, timeout or protocol failure."""


# ---------------------------------------------------------------- per-process results
class _Results:
    """What this process measured since its last report, and (master/local) the merged total."""

    def __init__(self) -> None:
        self.delta = RunStats()
        self.shipped = RunStats()  # the last increment taken for a report
        self.total = RunStats()
        self.show_start = time.time()
        self.recorder = RunRecorder(self.delta, self.show_start)  # records into ``delta``
        self.router = Router()
        self.viewer_counter = itertools.count()
        self.active = 0  # viewers playing in this process
        self.playlists = PlaylistCache()  # parse results shared by this process's viewers
        self.sampler: Any = None  # the greenlet of the per-second active-viewers sample
        self.sessions: set[ViewerSession] = set()  # playing in this process
        self.closing = False  # the test is ending: no new viewers
        self.awaiting: set[str] = set()  # master: workers whose final QoE has not arrived
        self.assignment: Assignment | None = None  # plan mode: this worker's viewers
        self.plans: deque[ViewerPlan] = deque()  # plan mode: not yet taken by a user
        self.environment: Environment | None = None
        self.second_requests = 0  # plan mode: this second's outcomes for the progress line
        self.second_errors = 0

    def take(self) -> RunStats:
        delta, self.delta = self.delta, RunStats()
        self.shipped = delta  # plan mode: a second's latency may be half in each
        self.recorder.stats = self.delta
        return delta


RESULTS = _Results()


_OPTIONS: tuple[tuple[str, str, type, object, str], ...] = (  # flag, env, type, default, help
    ("--livecast-path", "LIVECAST_PATH", str, "/live/main.m3u8",
     "multivariant playlist path below --host"),
    ("--livecast-downlink-kbps", "LIVECAST_DOWNLINK_KBPS", float, 20_000.0,
     "viewer downlink (±10 %%); 0: no cap"),
    ("--livecast-classic-share", "LIVECAST_CLASSIC_SHARE", float, 0.0,
     "share of classic-HLS players (the others are LL-HLS)"),
    ("--livecast-session", "LIVECAST_SESSION", float, 0.0,
     "seconds a viewer stays; 0: until the test ends"),
    ("--livecast-seed", "LIVECAST_SEED", int, 1, "seed of the viewers' randomness"),
    ("--livecast-results", "LIVECAST_RESULTS", str, "",
     "master/local: write the merged QoE RunStats JSON here at the end"),
)  # fmt: skip


def _options(parser: Any, **_: Any) -> None:
    group = parser.add_argument_group("livecast viewers")
    for flag, env_var, kind, default, text in _OPTIONS:
        group.add_argument(flag, env_var=env_var, type=kind, default=default, help=text)


def start_plans(environment: Environment, assignment: Assignment) -> None:
    """Plan mode: this process plays ``assignment`` (called before its users are spawned)."""
    RESULTS.assignment = assignment
    RESULTS.plans = deque(assignment.plans)
    RESULTS.environment = environment
    RESULTS.show_start = RESULTS.recorder.origin = assignment.show_start
    RESULTS.recorder.held_limit = assignment.held_limit
    end = assignment.show_start + assignment.duration
    gevent.spawn_later(max(0.0, end - time.time()), _finish_all)  # the show is over


def _init(environment: Environment, **_: Any) -> None:
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        runner.register_message(FINISH_MESSAGE, _on_finish)
    elif isinstance(runner, MasterRunner):
        runner.register_message(FINAL_MESSAGE, _on_final)


def _test_start(environment: Environment, **_: Any) -> None:
    if RESULTS.assignment is None:  # plan mode: the show start is the master's
        RESULTS.show_start = RESULTS.recorder.origin = time.time()
        RESULTS.closing = False
    if not isinstance(environment.runner, MasterRunner) and RESULTS.sampler is None:
        RESULTS.sampler = gevent.spawn(_sample_active)


def _test_stop(environment: Environment, **_: Any) -> None:
    sampler, RESULTS.sampler = RESULTS.sampler, None
    if sampler is not None:
        sampler.kill(block=False)


def _test_stopping(environment: Environment, **_: Any) -> None:
    """Master: before the workers are told to stop or quit, have each end its viewers and send
    their QoE (Locust waits only 0.5 s for a quitting worker's last report)."""
    runner = environment.runner
    if not isinstance(runner, MasterRunner):
        return
    workers = [c.id for c in runner.clients.all if c.state in ("running", "spawning")]
    if not workers:
        return
    RESULTS.awaiting = set(workers)
    runner.send_message(FINISH_MESSAGE)
    deadline = time.monotonic() + FINAL_WAIT
    while RESULTS.awaiting and time.monotonic() < deadline:
        gevent.sleep(0.05)
    if RESULTS.awaiting:
        log.warning("livecast: no final QoE from %d worker(s)", len(RESULTS.awaiting))


def _finish_all() -> None:
    RESULTS.closing = True
    now = time.time()
    for session in list(RESULTS.sessions):
        session.finish(now)


def _on_finish(environment: Environment, msg: Any, **_: Any) -> None:
    """Worker: end every viewer now and send everything not yet reported."""
    _finish_all()
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        runner.send_message(FINAL_MESSAGE, {"client_id": runner.client_id, **_payload()})


def _on_final(environment: Environment, msg: Any, **_: Any) -> None:
    data = msg.data or {}
    payload = data.get(REPORT_KEY)
    if payload is not None:
        RESULTS.total.merge(RunStats.from_dict(payload))
    RESULTS.awaiting.discard(data.get("client_id", msg.node_id))


def _payload() -> dict[str, Any]:
    delta = RESULTS.take()
    if delta.total_requests or delta.viewers.counters.get("viewers", 0):
        return {REPORT_KEY: delta.to_dict()}
    return {}


def _sample_active() -> None:
    """Active viewers of this process once a second (merging sums them over workers)."""
    while True:
        t = time.time() - RESULTS.show_start
        gevent.sleep(max(0.0, math.floor(t) + 1 - t))
        t = time.time() - RESULTS.show_start
        if t < 0:
            continue
        RESULTS.delta.set_active_viewers(t, RESULTS.active)
        if RESULTS.assignment is not None:
            _send_progress(int(t) - 1)


def _send_progress(second: int) -> None:
    """Plan mode, worker: the closed ``second`` for the master's progress line."""
    runner = RESULTS.environment.runner if RESULTS.environment is not None else None
    if second < 0 or not isinstance(runner, WorkerRunner):
        return
    latency = Histogram(*TIMELINE_LAYOUT)  # the second's latency, reported or not yet
    for stats in (RESULTS.shipped, RESULTS.delta):
        closed = stats.timeline.seconds.get(second)
        if closed is not None:
            latency.merge(closed.live_latency_s)
    known = latency.count > 0
    report = SecondReport(
        t=second,
        active=RESULTS.active,
        requests=RESULTS.second_requests,
        errors=RESULTS.second_errors,
        latency_p50=latency.percentile(50) if known else None,
        latency_p95=latency.percentile(95) if known else None,
    )
    RESULTS.second_requests = RESULTS.second_errors = 0
    runner.send_message(PROGRESS_MESSAGE, {"client_id": runner.client_id, **report.to_dict()})


def _report_to_master(client_id: str, data: dict[str, Any], **_: Any) -> None:
    data.update(_payload())


def _worker_report(client_id: str, data: dict[str, Any], **_: Any) -> None:
    payload = data.get(REPORT_KEY)
    if payload is not None:
        RESULTS.total.merge(RunStats.from_dict(payload))


def _quitting(environment: Environment, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        return
    if not isinstance(environment.runner, MasterRunner):
        _finish_all()
        RESULTS.total.merge(RESULTS.take())  # a local runner: its own users
    total = RESULTS.total
    counters = total.viewers.counters
    log.info(
        "livecast QoE: %d viewers, %d started, %d start failures, %d fatal errors, %d requests",
        counters.get("viewers", 0),
        counters.get("started", 0),
        counters.get("start_failures", 0),
        counters.get("fatal_errors", 0),
        total.total_requests,
    )
    options = environment.parsed_options
    path = getattr(options, "livecast_results", "") if options is not None else ""
    if path:
        Path(path).write_text(json.dumps(total.to_dict()))


_hooks: Any = events
_hooks.init_command_line_parser.add_listener(_options)
_hooks.init.add_listener(_init)
_hooks.test_start.add_listener(_test_start)
_hooks.test_stopping.add_listener(_test_stopping)
_hooks.test_stop.add_listener(_test_stop)
_hooks.report_to_master.add_listener(_report_to_master)
_hooks.worker_report.add_listener(_worker_report)
_hooks.quitting.add_listener(_quitting)


# ---------------------------------------------------------------- one viewer
def _failure_kind(exc: BaseException) -> str:
    if isinstance(exc, gevent.Timeout):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError | socket.gaierror):
        return "connect"
    if type(exc).__name__ == "HTTPParseError":
        return "protocol"
    return "reset"


class _Lane:
    """One keep-alive connection of a viewer."""

    __slots__ = ("busy", "client", "host", "port")

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.busy = False
        self.client = HTTPClient(
            host,
            port,
            headers={"User-Agent": USER_AGENT, "Accept": "*/*"},
            connection_timeout=10.0,
            network_timeout=600.0,  # the request's own deadline applies (gevent.Timeout)
            concurrency=1,
        )

    def close(self) -> None:
        self.client.close()


class ViewerSession:
    """One player on its lanes, inside a Locust user's greenlet."""

    def __init__(self, environment: Environment, url: str, config: PlayerConfig, seed: int):
        self.environment = environment
        self.player = Player(url, config, random.Random(seed), RESULTS.playlists)
        self.harness = ViewerHarness(self.player, RESULTS.recorder, time.time())
        self.lanes: LanePool[_Lane] = LanePool(_Lane)
        self.group = gevent.pool.Group()
        self.wakeup = gevent.event.Event()
        self.sleeping_until = math.inf  # the deadline the viewer's greenlet sleeps until
        self.done = False
        RESULTS.active += 1
        RESULTS.sessions.add(self)

    # ------------------------------------------------------------ lifecycle
    def run(self) -> None:
        """Until the player finishes; a GreenletExit (the user stopped) ends it too."""
        try:
            now = time.time()
            self._dispatch(self.harness.start(now), now)
            while not self.player.finished and not self.done:
                deadline = self.harness.next_deadline()
                self.wakeup.clear()
                self.sleeping_until = deadline
                self.wakeup.wait(max(0.0, deadline - time.time()))
                self.sleeping_until = math.inf
                now = time.time()
                self._dispatch(self.harness.wake(now), now)
        finally:
            self.finish(time.time())

    def finish(self, now: float) -> None:
        if self.done:
            return
        self.done = True
        RESULTS.active -= 1
        RESULTS.sessions.discard(self)
        self.group.kill(block=False)
        self.lanes.close_all()
        self.harness.finish(now)

    def _dispatch(self, requests: list[Request], now: float) -> None:
        if self.done or self.player.finished:
            self.wakeup.set()  # the viewer's greenlet notices and finishes it
            return
        for request in requests:
            self.group.spawn(self._perform, request)
        asleep_until = self.sleeping_until
        if asleep_until < math.inf and self.harness.next_deadline() < asleep_until:
            self.wakeup.set()  # sooner than the viewer's greenlet sleeps: it looks again

    # ------------------------------------------------------------ requests
    def _perform(self, request: Request) -> None:
        delay = request.not_before - time.time()
        if delay > SEND_SLACK:
            gevent.sleep(delay)
        if self.done or not self.player.wanted(request.id):
            return  # a delayed request (retry backoff, classic poll) no longer wanted
        host, port, target = RESULTS.router.route(request.url)
        lane = self.lanes.acquire(host, port)
        if lane is None:
            self.lanes.wait(request)  # every lane busy: sent when one comes free
            return
        keep_body = request.kind in TEXT_KINDS
        failure: str | None = None
        status, body, size, age = 0, b"", 0, None
        lane.busy = True
        started = first_byte = time.time()
        RESULTS.recorder.sent(request, started)
        try:
            with gevent.Timeout(request.timeout):
                response = lane.client.get(target)
                first_byte = time.time()
                status = response.status_code
                if keep_body:
                    age = parse_age(response.get("age"))  # hls.js CDN tune-in
                    body = response.read()
                    size = len(body)
                else:
                    while chunk := response.read(READ_BLOCK):
                        size += len(chunk)
                response.release()
        except (gevent.Timeout, Exception) as exc:
            failure = _failure_kind(exc)
            self.lanes.discard(lane)
        finally:
            lane.busy = False
            self._next_waiting()
        finished = time.time()
        self._report(request, status, failure, started, finished, size)
        if self.done:
            return
        if failure is not None:
            self._dispatch(self.harness.on_error(request.id, failure, finished), finished)
            return
        deliver_at = self.harness.link.delivery_time(first_byte, finished, size)
        wait = deliver_at - time.time()
        if wait > SEND_SLACK:
            gevent.sleep(wait)
        if self.done:
            return
        now = time.time()
        actions = self.harness.on_response(
            request.id,
            status,
            body if keep_body else None,
            size,
            now,
            first_byte_at=first_byte,
            age=age,
        )
        self._dispatch(actions, now)

    def _next_waiting(self) -> None:
        """A lane came free: the request that waited longest, if the player still wants it."""
        if self.done:
            return
        while (request := self.lanes.next_waiting()) is not None:
            if self.player.wanted(request.id):
                self.group.spawn(self._perform, request)
                return

    def _report(
        self,
        request: Request,
        status: int,
        failure: str | None,
        started: float,
        finished: float,
        size: int,
    ) -> None:
        exception: Exception | None = None
        if failure is not None:
            exception = TransportError(failure)
        elif status >= 400:
            exception = HttpStatusError(f"HTTP {status}")
        RESULTS.second_requests += 1
        if exception is not None:
            RESULTS.second_errors += 1
        request_event: Any = self.environment.events.request
        request_event.fire(
            request_type=request.kind,
            name=request.kind,
            response_time=(finished - started) * 1000.0,
            response_length=size,
            response=None,
            context={},
            exception=exception,
        )
        if failure is not None:
            RESULTS.recorder.failed(request, failure, finished)
        else:
            RESULTS.recorder.answered(request, status, size, finished - started, finished)


# ---------------------------------------------------------------- the Locust user
class LivecastViewer(User):
    """A Locust user that plays one viewer after another with the livecast player model."""

    wait_time = constant(0)

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self.session: ViewerSession | None = None
        self.planned = False  # plan mode: this user took its plan (or found none)

    def _config(self, index: int, rng: random.Random) -> PlayerConfig:
        options = self.environment.parsed_options
        downlink = float(getattr(options, "livecast_downlink_kbps", 20_000.0) or 0.0)
        classic = float(getattr(options, "livecast_classic_share", 0.0) or 0.0)
        session = float(getattr(options, "livecast_session", 0.0) or 0.0)
        runner = self.environment.runner
        worker = runner.worker_index if isinstance(runner, WorkerRunner) else 0
        return PlayerConfig(
            session_id=f"L{worker:03d}-{index:06d}-{rng.getrandbits(32):08x}",
            mode="classic" if rng.random() < classic else "llhls",
            downlink_bps=downlink * 1000 * rng.uniform(0.9, 1.1) if downlink > 0 else None,
            leave_at=time.time() + session if session > 0 else None,
        )

    def url(self) -> str:
        options = self.environment.parsed_options
        path = getattr(options, "livecast_path", "/live/main.m3u8") or "/live/main.m3u8"
        base = (self.host or "http://127.0.0.1:8080").rstrip("/")
        return path if path.startswith(("http://", "https://")) else f"{base}/{path.lstrip('/')}"

    @task
    def watch(self) -> None:
        if RESULTS.assignment is not None:
            self._watch_plan(RESULTS.assignment)
            return
        if RESULTS.closing:
            gevent.sleep(1.0)  # the test is ending
            return
        index = next(RESULTS.viewer_counter)
        options = self.environment.parsed_options
        base_seed = int(getattr(options, "livecast_seed", 1) or 1)
        runner = self.environment.runner
        worker = runner.worker_index if isinstance(runner, WorkerRunner) else 0
        rng = random.Random(f"{base_seed}:{worker}:{index}")
        self.session = ViewerSession(
            self.environment, self.url(), self._config(index, rng), rng.getrandbits(32)
        )
        self.session.run()

    def _watch_plan(self, assignment: Assignment) -> None:
        """Plan mode: the next plan of this worker at its arrival time, once; then idle."""
        if self.planned or not RESULTS.plans:
            self.planned = True
            gevent.sleep(IDLE_SLEEP)  # a slack user, or its viewer has left
            return
        self.planned = True
        plan = RESULTS.plans.popleft()
        arrive = assignment.show_start + plan.arrive
        gevent.sleep(max(0.0, arrive - time.time()))
        if RESULTS.closing or time.time() - assignment.show_start >= assignment.duration:
            return
        urls = assignment.entry_urls
        config = PlayerConfig(
            session_id=f"v{plan.index:06d}-{plan.seed:08x}",  # the driver's
            mode="llhls" if plan.low_latency else "classic",
            downlink_bps=plan.downlink_bps,
            leave_at=assignment.show_start + plan.leave if plan.leave is not None else None,
            seek_back=plan.seek_back,
        )
        if not assignment.retry_jitter:
            config = config.without_jitter()
        url = urls[plan.index % len(urls)]
        self.session = ViewerSession(self.environment, url, config, plan.seed)
        self.session.run()

    def on_stop(self) -> None:
        if self.session is not None:
            self.session.finish(time.time())
