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
worker sends the master one :class:`~livecast.rehearse.progress.Progress` a second.

Concurrency (gevent, as Locust is): each viewer is a
:class:`~livecast.rehearse.locust_viewer.ViewerSession` — its requests in greenlets of their own
on its keep-alive lanes (a gevent socket and an httptools parser each), its own greenlet sleeping
until the harness's next deadline; see :mod:`~livecast.rehearse.locust_viewer`.

Reporting: with ``locust -f`` every request fires Locust's ``request`` event (``request_type`` and
``name`` = the request kind: multivariant, playlist, init, part, segment; a 4xx/5xx status or a
transport failure is a failure), so Locust's own statistics, CSV and UI work; in plan mode nothing
reads them (the rehearsal judges its own records), so the event is not fired there. QoE goes to
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
import time
from collections import deque
from pathlib import Path
from typing import Any

import gevent  # type: ignore[import-untyped]
from locust import User, constant, events, task
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from livecast.player.config import PlayerConfig
from livecast.player.harness import RunRecorder
from livecast.player.lanes import Router
from livecast.player.parsed import PlaylistCache
from livecast.player.requests import Request
from livecast.rehearse.locust_shape import Assignment
from livecast.rehearse.locust_viewer import OnRequest, ViewerSession
from livecast.rehearse.progress import ProgressMeter
from livecast.rehearse.viewer_access import cookie_header, session_id
from livecast.results.histogram import Histogram
from livecast.results.stats import TIMELINE_LAYOUT, RunStats
from livecast.scenario.audience import ViewerPlan

log = logging.getLogger("livecast.locust")

REPORT_KEY = "livecast_stats"
FINISH_MESSAGE = "livecast_finish"  # master → workers: end your viewers, send the rest
FINAL_MESSAGE = "livecast_final"  # worker → master: the last RunStats increment
FINAL_WAIT = 10.0  # seconds the master waits for them
PROGRESS_MESSAGE = "livecast_progress"  # worker → master, plan mode: a Progress a second
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
        self.tokens: dict[int, str] = {}  # plan mode: plan index → playback token, if any
        self.environment: Environment | None = None
        self.second_requests = 0  # plan mode: this second's outcomes for the progress line
        self.second_errors = 0
        self.meter = ProgressMeter()  # plan mode: starts, failures, rebuffering per second

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
    RESULTS.tokens = {p.index: t for p, t in zip(assignment.plans, assignment.tokens, strict=False)}
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
    stalls = 0
    for stats in (RESULTS.shipped, RESULTS.delta):
        closed = stats.timeline.seconds.get(second)
        if closed is not None:
            latency.merge(closed.live_latency_s)
            stalls += closed.stalls
    stalled = 0.0
    for session in RESULTS.sessions:
        player = session.player
        buffer = player.buffer
        if buffer is None:
            continue
        stalled += buffer.stalled
        if buffer.first_frame_at is not None and player.started_at is not None:
            RESULTS.meter.playing(id(session), buffer.first_frame_at - player.started_at)
    report = RESULTS.meter.close(
        second,
        active=RESULTS.active,
        requests=RESULTS.second_requests,
        errors=RESULTS.second_errors,
        stalls=stalls,
        stalled_playing_s=stalled,
        latency=latency,
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
def _locust_request(environment: Environment) -> OnRequest:
    """Locust's ``request`` event for each request (its statistics, CSV and UI)."""
    request_event: Any = environment.events.request

    def fire(
        request: Request, status: int, failure: str | None, started: float, finished: float,
        size: int,
    ) -> None:  # fmt: skip
        exception: Exception | None = None
        if failure is not None:
            exception = TransportError(failure)
        elif status >= 400:
            exception = HttpStatusError(f"HTTP {status}")
        request_event.fire(
            request_type=request.kind,
            name=request.kind,
            response_time=(finished - started) * 1000.0,
            response_length=size,
            response=None,
            context={},
            exception=exception,
        )

    return fire


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
            RESULTS,
            self.url(),
            self._config(index, rng),
            rng.getrandbits(32),
            _locust_request(self.environment),  # Locust's own statistics
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
            session_id=session_id(plan.index, plan.seed),  # the driver's
            mode="llhls" if plan.low_latency else "classic",
            downlink_bps=plan.downlink_bps,
            leave_at=assignment.show_start + plan.leave if plan.leave is not None else None,
            seek_back=plan.seek_back,
            session_url=assignment.session_url,
        )
        token = RESULTS.tokens.get(plan.index)
        if not assignment.retry_jitter:
            config = config.without_jitter()
        url = urls[plan.index % len(urls)]
        headers = cookie_header(token) if token else b""
        self.session = ViewerSession(RESULTS, url, config, plan.seed, headers=headers)
        self.session.run()

    def on_stop(self) -> None:
        if self.session is not None:
            self.session.finish(time.time())
