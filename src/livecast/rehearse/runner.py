"""``livecast rehearse``: start the stack (or use the given entry points), put fault proxies in
the path, run the audience, scrape the stack's own counters, judge the SLOs, write the report.

Order of events: stack up and answering (``source = "rtmp"``: its encoders started and their
media on air, ``rehearse/publishers.py``) → fault proxies → with start-over viewers, a recording
that goes as far back as they seek (the stack records under ``DIR/recording``) → show start
(t = 0) → viewers arrive on their plan, faults fire on the timeline, one progress line a second →
after ``duration``: every viewer's QoE is recorded, tiers are scraped one last time →
results.json + report.html → exit code 0 GO, 1 NO-GO, 2 could not run.

The audience runs on the local driver processes (``rehearse/workers.py``) or, with the Locust
engine, on Locust's master and workers (``rehearse/locust_engine.py``: its master picks the show
start once every worker is in; a run that lost workers is marked partial); nothing else differs.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import shutil
import sys
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator, Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urljoin

from livecast import accel
from livecast.edge.nginx import NginxTier
from livecast.edge.nginx_conf import Upstream
from livecast.edge.origins import MULTIVARIANT
from livecast.edge.topology import TopologySpec, edge_tier
from livecast.errors import LivecastError, PlaylistError
from livecast.qoe.edge_logs import ACCESS_LOGS_DIR, keep_access_logs, run_qoe
from livecast.rehearse.driver import DriverConfig
from livecast.rehearse.faults.processes import FaultDriver, Processes, check_targets
from livecast.rehearse.faults.proxy import FaultProxy
from livecast.rehearse.freshness import OriginFollower, PlaylistFacts, playlist_facts
from livecast.rehearse.live import LiveOptions, LiveOutputs, plain_line
from livecast.rehearse.locust_engine import LocustOptions, LocustSwarm
from livecast.rehearse.objects import ObjectLedger
from livecast.rehearse.progress import Progress
from livecast.rehearse.publishers import (
    Publishers,
    stream_keys,
)
from livecast.rehearse.stack import Stack
from livecast.rehearse.stack_access import StackAccess, describe_access
from livecast.rehearse.tiers import AccessLogFollower
from livecast.rehearse.workers import raise_open_files_limit, run_workers
from livecast.results.histogram import Histogram
from livecast.results.indicators import AGE_LAYOUT, RunContext
from livecast.results.report import summary_figures, write_results
from livecast.results.report_cmcd import cmcd_meta, players_of
from livecast.results.report_ingest import IngestLog, stall_figures
from livecast.results.scrape import (
    ORIGIN_REQUESTS_METRIC,
    ORIGIN_SHED_METRIC,
    counts_by_label,
    request_totals,
    responses_of_type,
)
from livecast.results.slo import EXIT_COULD_NOT_RUN, verdict
from livecast.results.stats import RunStats
from livecast.scenario.audience import ViewerPlan, plan_audience
from livecast.scenario.file import Scenario, StackSpec
from livecast.scenario.timeline import NETWORK_KINDS
from livecast.transcode.ffmpeg import find_ffmpeg

log = logging.getLogger("livecast.rehearse")
RECORDING_DIR = "recording"  # under the rehearsal's --out: the stack's recording (start-over)
EDGE_METRICS = "/edge/metrics"  # each nginx tier's Prometheus text (for the dashboard)
RECORDING_WAIT_MARGIN = 60.0  # seconds beyond the longest seek-back to wait for the recording


def _pid_of(nginx: NginxTier) -> Callable[[], int | None]:
    """The tier's current pid, looked up when a fault signals it (a restart changes it)."""
    return lambda: nginx.pid


def fetch_metrics(base_url: str) -> str:
    """The origin's /metrics (Prometheus text)."""
    with urllib.request.urlopen(f"{base_url}/metrics", timeout=5) as response:
        text: str = response.read().decode()
    return text


def stream_facts(url: str) -> PlaylistFacts:
    """Target duration and part target behind ``url`` (the edges' hold timeouts and the
    indicators follow them); LivecastError when the playlists cannot be read."""
    try:
        return playlist_facts(url)
    except (OSError, ValueError, PlaylistError) as exc:
        raise LivecastError(f"cannot read the stream's playlists at {url}: {exc}") from exc


def fetch_recording_info(url: str) -> dict[str, Any]:
    """The origin's ``recording.json``; LivecastError when the target keeps no recording."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            info = json.loads(response.read())
    except (OSError, ValueError) as exc:
        raise LivecastError(
            f"start-over viewers need a recording: {url} answered {exc} "
            "(the stack records with [record] dir or serve --record-dir)"
        ) from exc
    if not isinstance(info, dict):
        raise LivecastError(f"{url} is not a recording description: {info!r}")
    return info


def recording_span(info: dict[str, Any], most: float, url: str) -> float | None:
    """Seconds of recording a start-over viewer may seek into (live end − oldest start), None
    before anything is recorded; LivecastError when the DVR window is shorter than ``most``."""
    if not info.get("recorded"):
        return None
    window = float(info.get("dvr_window") or 0.0)
    if 0 < window < most:
        raise LivecastError(
            f"the DVR window at {url} is {window:g} s: start-over viewers seek up to {most:g} s"
        )
    return float(info["live_end"]) - float(info["oldest_start"])


def check_reachable(url: str) -> None:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            body = response.read(7)
    except OSError as exc:
        raise LivecastError(f"target {url} is unreachable: {exc}") from exc
    if body != b"#EXTM3U":
        raise LivecastError(f"target {url} does not answer with a playlist")


class Rehearsal:
    def __init__(
        self,
        scenario: Scenario,
        out_dir: Path,
        stream: TextIO = sys.stderr,
        locust: LocustOptions | None = None,
        live: LiveOutputs | None = None,
    ) -> None:
        self.scenario = scenario
        self.live = live  # the terminal view, /metrics, the dashboard (else the plain line)
        self.locust = locust  # the Locust engine (master/workers) instead of the local driver
        self.swarm: LocustSwarm | None = None
        self.out_dir = out_dir
        self.stream = stream
        self.show_start = 0.0
        self.stack: Stack | None = None
        self.proxies: list[FaultProxy] = []
        self.tiers: dict[str, str] = {}  # tier → base URL of its /metrics
        self.processes = Processes()
        self.access_logs: AccessLogFollower | None = None  # the edges' and shield's logs
        self.facts: PlaylistFacts | None = None  # target duration, part target
        self.follower: OriginFollower | None = None  # the origin's own playlist age
        self.origin_bytes: list[tuple[float, float]] = []
        self.publishers: Publishers | None = None  # a contribution stack's encoders
        self.ingest: IngestLog | None = None  # what the origin said about its inputs
        self.recording_held_s: float | None = None  # start-over: recorded at the show start
        self.origin_metrics = ""  # the origin's last /metrics text
        self.access: StackAccess | None = None  # [access]: keys, Redis, the probes' token

    def clock(self) -> float:
        return time.time() - self.show_start

    @contextlib.asynccontextmanager
    async def _stack(self) -> AsyncIterator[tuple[str, ...]]:
        spec = self.scenario.stack
        if spec is None:
            yield self.scenario.urls
            return
        with tempfile.TemporaryDirectory(prefix="livecast-rehearse-") as tmp, ExitStack() as exits:
            keys = stream_keys(spec.publishers) if spec.contribution else ()
            tables: list[str] = []
            if spec.access is not None:
                access = StackAccess(spec.access, Path(tmp), self.scenario.duration)
                self.access = exits.enter_context(access)
                exits.enter_context(access.probes_carry_a_token())
                tables = access.event_lines()
            stack = Stack(spec, Path(tmp), keys, self._record_dir(), tables)
            self.stack = stack
            try:
                await stack.start()
                self.tiers["origin"] = stack.base_url
                self._dashboard_scrapes(stack.base_url + "/metrics")
                assert stack.process is not None
                self.processes.register_pid("origin", stack.process.pid)
                if spec.contribution:
                    await self._publish(stack, keys)
                upstream = await self._origin_upstream(stack)
                self.facts = await asyncio.to_thread(stream_facts, stack.base_url + MULTIVARIANT)
                self.follower = OriginFollower(self.facts.media_url, Histogram(*AGE_LAYOUT))
                if not spec.edges:
                    yield (f"http://{upstream[0]}:{upstream[1]}{MULTIVARIANT}",)
                    return
                async with self._edges(spec, upstream, Path(tmp)) as urls:
                    yield urls
            finally:
                for proxy in self.proxies:
                    await proxy.stop()
                self.processes.restore()
                if self.publishers is not None:
                    await self.publishers.close()
                await stack.stop()

    def _record_dir(self) -> Path | None:
        """With start-over viewers the stack records under ``DIR/recording``, emptied first (a
        recording left by an earlier run would be continued, not started)."""
        if not self.scenario.audience.start_over:
            return None
        path = (self.out_dir / RECORDING_DIR).resolve()
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path

    async def _wait_for_recording(self, urls: tuple[str, ...]) -> None:
        """Start-over viewers seek up to ``seek_back``'s most behind live: the show starts once
        the recording holds that much (``recording.json``; a target without one is exit 2)."""
        audience = self.scenario.audience
        if not audience.start_over:
            return
        most = audience.seek_back[1]
        base = self.stack.base_url + MULTIVARIANT if self.stack is not None else urls[0]
        url = urljoin(base, "recording.json")
        deadline = time.monotonic() + most + RECORDING_WAIT_MARGIN
        told = False
        while True:
            info = await asyncio.to_thread(fetch_recording_info, url)
            held = recording_span(info, most, url)
            if held is not None and held >= most:
                break
            if time.monotonic() > deadline:
                raise LivecastError(
                    f"the recording at {url} holds {held or 0:.0f} s after waiting; start-over "
                    f"viewers seek up to {most:g} s back"
                )
            if not told:
                told = True
                print(
                    f"recording holds {held or 0:.0f} s; start-over viewers seek up to "
                    f"{most:g} s back: waiting for it",
                    file=self.stream, flush=True,
                )  # fmt: skip
            await asyncio.sleep(1.0)
        self.recording_held_s = held
        print(f"recording holds {held:.0f} s: the show starts", file=self.stream, flush=True)

    def _start_over_meta(self, plans: list[ViewerPlan]) -> dict[str, object]:
        """``meta.start_over``: the share asked for, who was planned, what the origin counted."""
        audience = self.scenario.audience
        statuses = responses_of_type(self.origin_metrics, "playlist-dvr")
        record_dir = self.stack.record_dir if self.stack is not None else None
        return {
            "share": audience.start_over,
            "seek_back_s": list(audience.seek_back),
            "viewers_planned": sum(1 for plan in plans if plan.seek_back is not None),
            "recording": None if record_dir is None else str(record_dir),
            "recording_held_s_at_start": self.recording_held_s,
            "origin_playlist_dvr_responses": statuses,
        }

    async def _publish(self, stack: Stack, keys: tuple[str, ...]) -> None:
        """Start the encoders, make them process-fault targets and wait until their media plays
        at the origin (the audience arrives at a show that is on air)."""
        publishers = self.publishers = Publishers(
            find_ffmpeg(None), stack.rtmp_url, keys, stack.workdir
        )
        publishers.register(self.processes)
        took = await publishers.go_on_air(stack.base_url, stack.log_path)
        self.ingest = IngestLog(publishers=len(keys))
        print(f"on air {took:.1f} s after {len(keys)} encoder(s) started", file=self.stream)

    async def _origin_upstream(self, stack: Stack) -> tuple[str, int]:
        """Where the next tier (viewers, or the edges) reaches the origin: the origin itself, or
        a fault proxy in front of it when the timeline has network faults on "origin"."""
        timeline = self.scenario.faults
        if not any(f.kind in NETWORK_KINDS and f.target == "origin" for f in timeline.faults):
            return ("127.0.0.1", stack.port)
        proxy = FaultProxy(
            "origin",
            ("127.0.0.1", stack.port),
            timeline,
            http=True,
            clock=self.clock,
            seed=self.scenario.seed,
        )
        await proxy.start("127.0.0.1", 0)
        self.proxies.append(proxy)
        return ("127.0.0.1", proxy.port)

    @contextlib.asynccontextmanager
    async def _edges(
        self, spec: StackSpec, upstream: tuple[str, int], workdir: Path
    ) -> AsyncIterator[tuple[str, ...]]:
        """nginx edges (and a shield) in front of the origin; viewers are spread over the
        edges; each tier's access log is followed for its requests and cache hits."""
        topology = TopologySpec(
            edges=spec.edges,
            shield=spec.shield,
            workdir=str(workdir / "edges"),
            token_ring=self.access.key_ring if self.access is not None else None,
        )
        facts = self.facts
        assert facts is not None  # read by _stack before the edges start
        target_duration = facts.target_duration
        ledger = ObjectLedger(facts.part_target or target_duration, 3 * target_duration)
        async with edge_tier(topology, [Upstream(*upstream)], target_duration) as tier:
            self.access_logs = AccessLogFollower(tier.access_logs, ledger)
            self._dashboard_scrapes(*(nginx.base_url + EDGE_METRICS for nginx in tier.tiers))
            for nginx in tier.tiers:  # pausable as a whole: master and workers share a group
                assert nginx.pid is not None  # started by edge_tier
                # killed by a fault: started again when it ends (a new pid, looked up each time)
                self.processes.register_pid(
                    nginx.conf.name, _pid_of(nginx), restart=nginx.start, group=True
                )
            yield tuple(base + MULTIVARIANT for base in tier.entry_base_urls)
        # nginx stopped (its log buffers flushed): the logs kept beside the results (qoe.edge_logs)
        keep_access_logs(tier.access_logs, self.out_dir / ACCESS_LOGS_DIR)

    async def run(self) -> tuple[RunStats, dict[str, object]]:
        raise_open_files_limit()
        scenario = self.scenario
        async with self._stack() as urls:
            check_targets(scenario.faults, self.processes.names())
            for url in urls:
                await asyncio.to_thread(check_reachable, url)
            if self.facts is None:  # external entry points
                self.facts = await asyncio.to_thread(stream_facts, urls[0])
            await self._wait_for_recording(urls)
            plans = plan_audience(
                scenario.audience, scenario.duration,
                low_latency_share=scenario.low_latency_share,
                downlink=list(scenario.downlink), seed=scenario.seed,
            )  # fmt: skip
            config = DriverConfig(
                urls,
                scenario.duration,
                0.0,
                retry_jitter=scenario.retry_jitter,
                held_limit=3 * self.facts.target_duration,
                access=self.access.viewer_access() if self.access is not None else None,
            )
            self.show_start = await self._show_start(plans, config)
            config = dataclasses.replace(config, show_start=self.show_start)
            if self.access_logs is not None and self.access_logs.ledger is not None:
                self.access_logs.ledger.show_start = self.show_start
            if self.follower is not None:
                self.follower.start()
            faults = FaultDriver(scenario.faults, self.processes, clock=self.clock)
            tier_samples: dict[str, list[tuple[float, float, float]]] = {}
            scraper = asyncio.create_task(self._scrape_tiers(tier_samples))
            faults.start()
            try:
                if self.swarm is not None:
                    stats = await self.swarm.run(self._progress)
                else:
                    stats = await run_workers(plans, config, scenario.workers, self._progress)
            finally:
                if self.swarm is not None:
                    await self.swarm.close()
                faults.stop()
                scraper.cancel()
                if self.follower is not None:
                    self.follower.stop()
            await self._scrape_once(tier_samples)
            stats.set_tier_series(tier_samples)
            self._cache_figures(stats)
            self._indicators(stats)
            injected = {p.name: p.counters.as_dict() for p in self.proxies}
            meta: dict[str, object] = {
                "scenario": scenario.name,
                "duration_s": scenario.duration,
                "viewers_planned": len(plans),
                "entry_points": list(urls),
                "faults_injected": injected,
                "fault_events": [str(e) for e in faults.events],
            }
            meta.update(self._engine_meta())
            if scenario.audience.start_over:
                meta["start_over"] = self._start_over_meta(plans)
            if scenario.stack is not None and scenario.stack.shedding:  # 503s by design
                shed = counts_by_label(self.origin_metrics, ORIGIN_SHED_METRIC, "class")
                meta["shedding"] = {"origin_shed_by_class": shed}
            if self.access is not None:  # Redis still runs: its command counts
                meta["access"] = self.access.meta(stats)
            if self.ingest is not None and self.publishers is not None:
                restarts = {"encoder_restarts": self.publishers.restarts()}
                meta["contribution"] = self.ingest.to_dict() | restarts | stall_figures(stats)
        cmcd = self._cmcd_meta(stats)  # the edges stopped: their logs are kept and complete
        if cmcd is not None:
            meta["cmcd"] = cmcd
        return stats, meta

    def _cmcd_meta(self, stats: RunStats) -> dict[str, object] | None:
        """``meta.cmcd``: the edges' CMCD QoE of the run beside the players' (report_cmcd);
        None without edges."""
        logs = sorted((self.out_dir / ACCESS_LOGS_DIR).glob("edge-*.log"))
        if not logs:
            return None
        figures, aggregator = run_qoe(logs)
        players = players_of(summary_figures(stats), stats.viewers.counters)
        return cmcd_meta(figures, aggregator.malformed, players)

    async def _show_start(self, plans: list[ViewerPlan], config: DriverConfig) -> float:
        """The driver's show starts a second from now; the Locust engine's once its master has
        every worker in (the master picks it)."""
        if self.locust is None:
            return time.time() + 1.0
        self.swarm = LocustSwarm(self.locust, self.out_dir, self.stream)
        return await self.swarm.start(plans, config)

    def _engine_meta(self) -> dict[str, object]:
        """``meta.viewer_core`` (compiled or interpreted: the cost per viewer differs),
        ``meta.engine`` for a Locust run, and ``meta.partial`` when it lost workers."""
        meta: dict[str, object] = {"viewer_core": accel.state()}
        if self.swarm is None or self.locust is None:
            return meta
        meta["engine"] = {"name": "locust", "workers": self.locust.workers}
        if self.swarm.losses:
            meta["partial"] = {"workers_lost": [loss.to_dict() for loss in self.swarm.losses]}
        return meta

    async def _scrape_tiers(self, samples: dict[str, list[tuple[float, float, float]]]) -> None:
        while True:
            await self._scrape_once(samples)
            await asyncio.sleep(1.0)

    async def _scrape_once(self, samples: dict[str, list[tuple[float, float, float]]]) -> None:
        for tier, base in self.tiers.items():
            with contextlib.suppress(OSError, ValueError):
                text = await asyncio.to_thread(fetch_metrics, base)
                scraped = request_totals(text, ORIGIN_REQUESTS_METRIC)
                if tier == "origin":
                    self.origin_metrics = text
                now = self.clock()
                samples.setdefault(tier, []).append((now, scraped.requests, scraped.responses_5xx))
                self.origin_bytes.append((now, scraped.bytes))
                self._ingest_sample(now, text)
        if self.access_logs is not None:
            totals = await asyncio.to_thread(self.access_logs.poll)
            now = self.clock()
            for kind, figures in totals.items():
                samples.setdefault(kind, []).append(
                    (now, float(figures.requests), float(figures.responses_5xx))
                )

    def _ingest_sample(self, now: float, text: str) -> None:
        """A contribution stack: the origin's input switches (one line per on-air change)."""
        if self.ingest is None:
            return
        change = self.ingest.observe(now, text)
        if change is not None:
            print(change.describe(), file=self.stream, flush=True)

    def _cache_figures(self, stats: RunStats) -> None:
        """Each caching tier's lookups and hits over the run, beside its request series."""
        if self.access_logs is None:
            return
        for kind, figures in self.access_logs.totals.items():
            counters = stats.tiers.get(kind)
            if counters is not None:
                counters.cache_lookups = figures.cache_lookups
                counters.cache_hits = figures.cache_hits

    def _indicators(self, stats: RunStats) -> None:
        """The run's per-object tallies, the origin's own playlist age and the context the
        indicator figures need (``results.fidelity``), into ``stats.indicators``."""
        indicators = stats.indicators
        scenario = self.scenario
        if self.access_logs is not None and self.access_logs.ledger is not None:
            indicators.tiers = dict(self.access_logs.ledger.tiers)
        if self.follower is not None:
            indicators.origin_age_s = self.follower.snapshot()
        indicators.origin_bytes = list(self.origin_bytes)
        spec = scenario.stack
        facts = self.facts
        windows = tuple((f.at, min(f.end, scenario.duration)) for f in scenario.faults.faults)
        indicators.context = RunContext(
            part_target=facts.part_target if facts else None,
            target_duration=facts.target_duration if facts else None,
            edges=spec.edges if spec else 0,
            shield=spec.shield if spec else False,
            fault_windows=windows,
            target_viewers=scenario.target_viewers,
            target_edges=scenario.target_edges,
            capacity=scenario.capacity,
        )

    def _dashboard_scrapes(self, *urls: str) -> None:
        """Endpoints of the stack for a dashboard served by the rehearsal (--dashboard-port)."""
        if self.live is not None:
            for url in urls:
                self.live.scrape(url)

    def _progress(self, p: Progress) -> None:
        if self.live is not None:
            self.live.progress(p)
        else:
            print(plain_line(p), file=self.stream, flush=True)


async def rehearse(
    scenario: Scenario,
    out_dir: Path,
    stream: TextIO = sys.stderr,
    locust: LocustOptions | None = None,
    live: LiveOptions | None = None,
) -> int:
    """Run ``scenario`` (on the local driver, or Locust's master/workers with ``locust``); write
    DIR/results.json and DIR/report.html; the exit code. A run that lost workers is judged on
    what was measured and marked partial (``meta.partial``). ``live``: the terminal view,
    ``/metrics`` and the dashboard while it runs (default: the terminal only)."""
    outputs = LiveOutputs(live or LiveOptions(), stream, scenario.duration)
    rehearsal = Rehearsal(scenario, out_dir, stream, locust, outputs)
    try:
        await outputs.start()
        stats, meta = await rehearsal.run()
    except (LivecastError, OSError) as exc:
        if rehearsal.swarm is not None:
            await rehearsal.swarm.close()
        await outputs.stop()
        print(f"livecast rehearse: could not run: {exc}", file=stream)
        return EXIT_COULD_NOT_RUN
    await outputs.stop()
    counters = stats.viewers.counters
    if counters["started"] == 0 and counters["start_failures"] == 0:
        print("livecast rehearse: could not run: no viewer started or failed to start", file=stream)
        return EXIT_COULD_NOT_RUN
    result = verdict(stats, scenario.slos)
    paths = write_results(out_dir, stats, result, meta)
    for check in result.checks:
        print(f"  {check.describe()}", file=stream)
    access = meta.get("access")
    if isinstance(access, dict):
        print(describe_access(access), file=stream)
    partial = meta.get("partial")
    if isinstance(partial, dict):
        lost = len(partial.get("workers_lost", []))
        print(f"PARTIAL: {lost} worker(s) lost mid-run (results.json meta.partial)", file=stream)
    print(result.summary(), file=stream)
    print(f"report: {paths.html_path}", file=stream)
    return result.exit_code
