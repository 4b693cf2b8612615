"""Origin + optional shield + K nginx edges on loopback: ``livecast up`` and its async API.

    async with running_topology(config, TopologySpec(edges=2, shield=True)) as top:
        top.entry_urls          # multivariant playlist through each edge, one per edge
        top.origin_base_url     # the origin itself (http://127.0.0.1:PORT)
        top.edge_access_logs    # tier name → access log (edge-0 …, shield), see edge.accesslog
        top.tallies()           # tier name → requests by cache status, hit ratio, so far

:func:`edge_tier` alone puts the shield and edges in front of origins that are already running
(the rehearsal can steer viewers over ``tier.entry_base_urls`` the way DNS or a CDN would).
Every tier's directory (config, logs, cache) lives under ``TopologySpec.workdir``, or a temporary
directory removed on exit — copy the access logs out inside the ``async with`` if they are wanted
afterwards.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from livecast.access.keys import KeyRing
from livecast.access.tokens import DEFAULT_SKEW
from livecast.config import (
    CONTRIBUTION_SOURCES,
    MAX_ORIGINS,
    ORIGINS_NEED_LOOP,
    EdgeSettings,
    EventConfig,
    origins_allowed,
)
from livecast.edge.accesslog import Tally, tally
from livecast.edge.nginx import LUA_HINT, NginxTier, find_lua_modules, find_nginx
from livecast.edge.nginx_conf import EDGE_STATUS, TierConfig, Upstream
from livecast.edge.origins import MULTIVARIANT, OriginProcess, free_port, origin_replicas, url_host
from livecast.edge.token_lua import RevocationSource
from livecast.errors import ConfigError, LivecastError
from livecast.qoe.edge_logs import AccessLogTail, is_edge

if TYPE_CHECKING:
    from livecast.pipeline import LivePipeline

log = logging.getLogger(__name__)

MAX_EDGES = 64


@dataclass(frozen=True, slots=True)
class TopologySpec:
    edges: int = 2
    shield: bool = False
    host: str = "127.0.0.1"  # where the edges listen
    port: int = 0  # first edge's port, the others follow; 0: any free ports
    workers: int = 1  # nginx worker processes per tier
    nginx: str | None = None  # nginx binary; default $LIVECAST_NGINX or Debian's
    workdir: str | None = None  # tier directories; default: a temporary one, removed on exit
    # waiters woken when the object arrives (Lua, libnginx-mod-http-lua) instead of polling the
    # cache lock every 500 ms: None = when the modules are installed, True = required, False = off
    wakeup: bool | None = None
    # origin processes: 1 = the pipeline in this process; N ≥ 2 adds N - 1 epoch-locked
    # `livecast serve` children (loop or contribution source), all in every upstream block
    origins: int = 1
    # playback tokens checked at the edges (``[access]``, docs/access.md; needs the Lua modules)
    token_ring: KeyRing | None = None
    token_skew: float = DEFAULT_SKEW
    # where the edges poll the revocations (the admin API), with token_ring; None: they do not
    revocations: RevocationSource | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.origins <= MAX_ORIGINS:
            raise ConfigError("origins", f"{self.origins} is outside 1–{MAX_ORIGINS}")
        if not 1 <= self.edges <= MAX_EDGES:
            raise ConfigError("edges", f"{self.edges} is outside 1–{MAX_EDGES}")
        if not 0 <= self.port <= 65535 - self.edges:
            raise ConfigError("port", f"{self.port} leaves no room for {self.edges} edges")
        if self.workers < 1:
            raise ConfigError("workers", f"{self.workers} is not a worker count")


def spec_from_settings(
    settings: EdgeSettings,
    *,
    edges: int | None = None,
    shield: bool | None = None,
    port: int | None = None,
    origins: int | None = None,
) -> TopologySpec:
    """The event config's ``[edge]`` table, with command-line values (not None) on top."""
    wakeup = {"auto": None, "on": True, "off": False}[settings.wakeup]
    return TopologySpec(
        edges=settings.edges if edges is None else edges,
        shield=settings.shield if shield is None else shield,
        port=settings.port if port is None else port,
        workers=settings.workers,
        wakeup=wakeup,
        origins=settings.origins if origins is None else origins,
    )


def tier_configs(
    spec: TopologySpec,
    origins: Sequence[Upstream],
    target_duration: float,
    workdir: Path,
    lua_modules: tuple[str, ...] = (),
) -> list[TierConfig]:
    """The shield (first, if any) and the edges, each with its own prefix and port — pure but
    for choosing free ports when ``spec.port`` is 0."""
    configs: list[TierConfig] = []
    upstreams = tuple(origins)
    if spec.shield:
        shield = TierConfig(
            name="shield",
            prefix=str(workdir / "shield"),
            port=free_port("127.0.0.1"),
            upstreams=upstreams,
            target_duration=target_duration,
            workers=spec.workers,
            lua_modules=lua_modules,
        )
        configs.append(shield)
        upstreams = (Upstream(shield.host, shield.port),)
    for index in range(spec.edges):
        configs.append(
            TierConfig(
                name=f"edge-{index}",
                prefix=str(workdir / f"edge-{index}"),
                host=spec.host,
                port=spec.port + index if spec.port else free_port(spec.host),
                upstreams=upstreams,
                target_duration=target_duration,
                workers=spec.workers,
                lua_modules=lua_modules,
                token_ring=spec.token_ring,
                token_skew=spec.token_skew,
                revocations=spec.revocations if spec.token_ring is not None else None,
            )
        )
    return configs


@dataclass
class EdgeTier:
    """Running nginx tiers: ``tiers[0]`` is the shield when there is one."""

    tiers: list[NginxTier]

    @property
    def edges(self) -> list[NginxTier]:
        return [t for t in self.tiers if t.conf.name.startswith("edge-")]

    @property
    def entry_base_urls(self) -> list[str]:
        return [f"http://{url_host(t.conf.host)}:{t.conf.port}" for t in self.edges]

    @property
    def access_logs(self) -> dict[str, Path]:
        return {t.conf.name: t.access_log for t in self.tiers}

    def tallies(self) -> dict[str, Tally]:
        """Per-tier figures from the access logs so far: requests, cache statuses, hit ratio."""
        lines: list[str] = []
        for path in self.access_logs.values():
            with contextlib.suppress(FileNotFoundError):
                lines += path.read_text(errors="replace").splitlines()
        return tally(lines)


def wakeup_modules(spec: TopologySpec) -> tuple[str, ...]:
    """The Lua modules to load for ``spec.wakeup`` (a clear error when required and missing)."""
    if spec.wakeup is False:
        return ()
    modules = find_lua_modules()
    if spec.wakeup and not modules:
        raise ConfigError("wakeup", f"the nginx Lua modules are missing; {LUA_HINT}")
    if not modules:
        log.warning(
            "nginx Lua modules not found: cache-lock waiters poll every 500 ms, no /edge/metrics "
            "(%s)",
            LUA_HINT,
        )
    return modules


@contextlib.asynccontextmanager
async def edge_tier(
    spec: TopologySpec, origins: Sequence[Upstream], target_duration: float
) -> AsyncIterator[EdgeTier]:
    """Start the shield (if asked) then the edges in front of ``origins``; stop all on exit."""
    find_nginx(spec.nginx)  # a clear error before anything starts
    temporary = spec.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="livecast-edge-") if temporary else spec.workdir or "")
    workdir.mkdir(parents=True, exist_ok=True)
    tiers: list[NginxTier] = []
    try:
        for conf in tier_configs(spec, origins, target_duration, workdir, wakeup_modules(spec)):
            tier = NginxTier(conf, spec.nginx)
            tiers.append(tier)
            await tier.start()
        yield EdgeTier(tiers)
    finally:
        for tier in reversed(tiers):
            await tier.stop()
        if temporary:
            shutil.rmtree(workdir, ignore_errors=True)


@dataclass
class Topology:
    """A running origin (and its replicas) with the edge tier."""

    origin_base_url: str
    tier: EdgeTier
    pipeline: LivePipeline
    replicas: list[OriginProcess] = field(default_factory=list)

    @property
    def origin_base_urls(self) -> list[str]:
        """Every origin: this process's first, then the replicas'."""
        return [self.origin_base_url] + [r.base_url for r in self.replicas]

    @property
    def entry_urls(self) -> list[str]:
        """The multivariant playlist through each edge, in edge order."""
        return [base + MULTIVARIANT for base in self.tier.entry_base_urls]

    @property
    def edge_access_logs(self) -> dict[str, Path]:
        return self.tier.access_logs

    def tallies(self) -> dict[str, Tally]:
        return self.tier.tallies()


@contextlib.asynccontextmanager
async def running_topology(
    config: EventConfig, spec: TopologySpec, ready_timeout: float = 30.0
) -> AsyncIterator[Topology]:
    """Start the origin (``LivePipeline``), wait for its first segments, then — with
    ``spec.origins`` ≥ 2 — its epoch-locked replicas (:func:`origin_replicas`, the same epoch),
    then the edge tier with every origin in its upstream block."""
    from livecast.pipeline import LivePipeline

    if spec.origins > 1 and not origins_allowed(config.source):
        raise ConfigError("origins", ORIGINS_NEED_LOOP)
    find_nginx(spec.nginx)
    contribution = config.source in CONTRIBUTION_SOURCES
    async with contextlib.AsyncExitStack() as stack:
        pipeline = await stack.enter_async_context(
            LivePipeline(config).running(timeout=ready_timeout, ready=not contribution)
        )
        host = url_host(config.host).strip("[]")
        upstreams = [Upstream(host, pipeline.server.port)]
        replicas: list[OriginProcess] = []
        if spec.origins > 1:
            workdir = Path(
                stack.enter_context(tempfile.TemporaryDirectory(prefix="livecast-origins-"))
            )
            replicas = await stack.enter_async_context(
                origin_replicas(config, pipeline.event.epoch, spec.origins - 1, workdir)
            )
            upstreams += [Upstream(r.host, r.port) for r in replicas]
        target = pipeline.event.config.target_duration
        ring = config.access.key_ring()
        if ring is not None:  # the edges check the viewers' tokens too (the origin does)
            spec = replace(
                spec,
                token_ring=ring,
                token_skew=config.access.skew,
                wakeup=True,
                revocations=revocation_source(pipeline),
            )
        tier = await stack.enter_async_context(edge_tier(spec, upstreams, target))
        # the admin API's status asks each edge for its stub_status
        pipeline.edge_status_urls = tuple(base + EDGE_STATUS for base in tier.entry_base_urls)
        # the origin's livecast_qoe_*{source="edge"}: the edges' logs (not the shield's) tailed
        edge_logs = {name: path for name, path in tier.access_logs.items() if is_edge(name)}
        pipeline.qoe.edge_logs = AccessLogTail(edge_logs, pipeline.qoe.edge)
        yield Topology(pipeline.base_url, tier, pipeline, replicas)


def revocation_source(pipeline: LivePipeline) -> RevocationSource | None:
    """When the origin runs the admin API: its address and a new secret that may read the
    revocations (and nothing else), for the edges to poll; None otherwise."""
    from livecast.admin.api import hash_secret

    admin = pipeline.admin
    if admin is None:
        return None
    secret = secrets.token_urlsafe(32)
    admin.api.allow_reader(hash_secret(secret))
    host = pipeline.config.admin.host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return RevocationSource(host.strip("[]"), admin.port, secret)


async def run_up(config: EventConfig, spec: TopologySpec, targets: Path | None = None) -> int:
    """``livecast up``: print one entry URL per edge, run until SIGINT/SIGTERM (0) or until the
    source gives up (1); with ``targets``, Prometheus's file_sd JSON of every tier is kept
    there while it runs (``--prometheus-targets``, telemetry/targets_file.py)."""
    from livecast.pipeline import stop_on_signals
    from livecast.telemetry.targets_file import targets_written

    with stop_on_signals() as stop:
        async with running_topology(config, spec) as top:
            with targets_written(top, targets):
                announce(top, spec)
                if not await top.pipeline.serve_until(stop):
                    raise LivecastError("the source gave up; stopping")
                log.info("stopping")
        return 0


def announce(top: Topology, spec: TopologySpec) -> None:
    """The entry URLs on stdout (one per edge), the origins and ingest URLs in the log."""
    for url in top.entry_urls:
        print(url, flush=True)
    log.info(
        "origin%s %s; %d edge(s)%s; Ctrl-C stops",
        "s" if top.replicas else "",
        ", ".join(top.origin_base_urls),
        len(top.entry_urls),
        " behind a shield" if spec.shield else "",
    )
    ingest = top.pipeline.ingest_urls + [r.ingest_url for r in top.replicas]
    if ingest:
        log.info("the encoder publishes to every origin: %s", ", ".join(ingest))
