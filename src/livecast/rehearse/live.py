"""What a rehearsal shows while it runs — the adapter behind ``livecast rehearse``'s progress:

* the terminal: the plain progress line a second (for logs and pipes — CI and the tests read
  it, its format does not change: :func:`plain_line`), or on a terminal a ``rich`` live view
  (:class:`TerminalView`, pure: the reports in, a renderable out): viewers, req/s, errors,
  startup, rebuffering, latency behind live and a sparkline of the viewers over time;
* ``--metrics-port PORT``: ``/metrics`` with the ``livecast_rehearsal_*`` metrics
  (:class:`~livecast.rehearse.progress.RehearsalMetrics`), PORT 0 for any free port;
* ``--dashboard-port PORT``: the dashboard (``livecast dashboard``) served from the rehearsal
  itself, with its own figures (read in-process) and the stack it started (the origin's
  ``/metrics`` and each nginx tier's ``/edge/metrics``, added once they run).

Every URL is printed on the stream when it starts. Everything is fed from the merged per-second
:class:`~livecast.rehearse.progress.Progress`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from livecast.dashboard.feed import DashboardFeed
from livecast.dashboard.model import histogram_quantile
from livecast.dashboard.server import HttpServer
from livecast.errors import ConfigError
from livecast.rehearse.progress import (
    STARTUP_BUCKETS,
    BucketCounts,
    Progress,
    RehearsalMetrics,
)
from livecast.telemetry.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE

REHEARSAL_SOURCE = "rehearsal"  # the dashboard's name for the rehearsal's own figures


# ---------------------------------------------------------------- the terminal (pure)

SPARK = "▁▂▃▄▅▆▇█"
KEPT_SECONDS = 600  # reports kept for the sparkline (10 min)
SPARK_WIDTH = 60  # characters


def plain_line(p: Progress) -> str:
    """The one-line-a-second progress output (unchanged: logs and tests read it)."""

    def fmt(value: float | None) -> str:
        return "—" if value is None else f"{value:.2f}s"

    return (
        f"t={p.t:4d}s viewers={p.active:6d} req/s={p.requests:7d} errors={p.errors:5d} "
        f"latency p50={fmt(p.latency_p50)} p95={fmt(p.latency_p95)}"
    )


def sparkline(values: Sequence[float], width: int = SPARK_WIDTH) -> str:
    """The last ``width`` values as block characters, scaled from 0 to their maximum."""
    shown = list(values)[-width:]
    top = max(shown, default=0.0)
    if top <= 0:
        return SPARK[0] * len(shown)
    last = len(SPARK) - 1
    return "".join(SPARK[min(last, round(v / top * last))] for v in shown)


def quantile_of(buckets: BucketCounts, q: float) -> float | None:
    """``q`` quantile of bucket counts (``histogram_quantile``'s estimate)."""
    cumulative: list[tuple[float, float]] = []
    running = 0
    for bound, n in zip((*buckets.bounds, float("inf")), buckets.counts, strict=True):
        running += n
        cumulative.append((bound, float(running)))
    return histogram_quantile(q, cumulative)


class TerminalView:
    """The reports so far, and the live view of them."""

    def __init__(self, duration: float | None = None) -> None:
        self.duration = duration
        self.reports: deque[Progress] = deque(maxlen=KEPT_SECONDS)
        self.startup = BucketCounts.empty(STARTUP_BUCKETS)  # whole run
        self.started = 0
        self.start_failures = 0
        self.stalls = 0
        self.rebuffer_s = 0.0
        self.viewer_seconds = 0.0  # viewers playing, summed over the seconds
        self.requests = 0
        self.errors = 0

    def add(self, p: Progress) -> None:
        self.reports.append(p)
        self.startup = self.startup.merged(p.startup)
        self.started += p.started
        self.start_failures += p.start_failures
        self.stalls += p.stalls
        self.rebuffer_s += p.rebuffer_s
        self.viewer_seconds += p.active
        self.requests += p.requests
        self.errors += p.errors

    @property
    def rebuffering_ratio(self) -> float | None:
        """Stalled time over viewer time, the run so far."""
        return self.rebuffer_s / self.viewer_seconds if self.viewer_seconds > 0 else None

    def render(self) -> RenderableType:
        latest = self.reports[-1] if self.reports else None

        def secs(value: float | None) -> str:
            return "—" if value is None else f"{value:.2f} s"

        clock = "—" if latest is None else f"t = {latest.t} s"
        if latest is not None and self.duration is not None:
            clock += f" of {self.duration:g} s"
        table = Table(title=f"livecast rehearse · {clock}", show_header=True, expand=False)
        for column in ("viewers", "req/s", "errors/s", "startup p50 / p95", "rebuffering",
                       "latency p50 / p95"):  # fmt: skip
            table.add_column(column, justify="right")
        ratio = self.rebuffering_ratio
        table.add_row(
            "—" if latest is None else str(latest.active),
            "—" if latest is None else str(latest.requests),
            "—" if latest is None else str(latest.errors),
            f"{secs(quantile_of(self.startup, 0.5))} / {secs(quantile_of(self.startup, 0.95))}",
            "—" if ratio is None else f"{100 * ratio:.2f} %",
            "—" if latest is None else f"{secs(latest.latency_p50)} / {secs(latest.latency_p95)}",
        )
        totals = Text(
            f"started {self.started}  start failures {self.start_failures}  stalls {self.stalls}"
            f"  requests {self.requests}  errors {self.errors}",
            style="dim",
        )
        viewers = [float(p.active) for p in self.reports]
        peak = max(viewers, default=0.0)
        spark = Text.assemble(
            ("viewers ", "bold"), (sparkline(viewers), "cyan"), f"  peak {peak:.0f}"
        )
        return Group(table, spark, totals)


# ---------------------------------------------------------------- the adapter


@dataclass(frozen=True, slots=True)
class LiveOptions:
    """Where the live figures go besides the terminal (None: nowhere; 0: any free port)."""

    metrics_port: int | None = None
    dashboard_port: int | None = None
    host: str = "127.0.0.1"
    rich: bool | None = None  # None: when the stream is a terminal

    def __post_init__(self) -> None:
        for flag, port in (("--metrics-port", self.metrics_port),
                           ("--dashboard-port", self.dashboard_port)):  # fmt: skip
            if port is not None and not 0 <= port <= 65535:
                raise ConfigError(flag, f"{port} is not a TCP port (0–65535)")


class LiveOutputs:
    """The rehearsal's live figures: terminal, ``/metrics`` server, dashboard."""

    def __init__(self, options: LiveOptions, stream: TextIO, duration: float | None = None) -> None:
        self.options = options
        self.stream = stream
        self.metrics = RehearsalMetrics()
        self.view = TerminalView(duration)
        self.metrics_server: HttpServer | None = None
        self.dashboard: DashboardFeed | None = None
        use_rich = options.rich if options.rich is not None else _is_terminal(stream)
        self._live: Live | None = None
        self._live_started = False
        if use_rich:
            console = Console(file=stream, force_terminal=True)
            self._live = Live(self.view.render(), console=console, refresh_per_second=4)

    async def start(self) -> None:
        options = self.options
        if options.metrics_port is not None:
            routes = {"/metrics": lambda: (self.metrics.render(), METRICS_CONTENT_TYPE)}
            self.metrics_server = HttpServer(routes)
            await self.metrics_server.start(options.host, options.metrics_port)
            print(f"metrics: {self.metrics_server.url('/metrics')}", file=self.stream, flush=True)
        if options.dashboard_port is not None:
            self.dashboard = DashboardFeed(local={REHEARSAL_SOURCE: self.metrics.render})
            await self.dashboard.start(options.host, options.dashboard_port)
            print(f"dashboard: {self.dashboard.server.url('/')}", file=self.stream, flush=True)

    def scrape(self, url: str) -> None:
        """A stack endpoint for the dashboard (the origin's /metrics, an edge's /edge/metrics)."""
        if self.dashboard is not None and url not in self.dashboard.urls:
            self.dashboard.urls.append(url)

    def progress(self, p: Progress) -> None:
        """One merged second: to the metrics, then the terminal."""
        self.metrics.observe(p)
        if self._live is not None:
            self.view.add(p)
            if not self._live_started:  # from the show start: the stack's lines come before
                self._live_started = True
                self._live.start()
            self._live.update(self.view.render())
        else:
            print(plain_line(p), file=self.stream, flush=True)

    async def stop(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        if self.dashboard is not None:
            await self.dashboard.stop()
        if self.metrics_server is not None:
            await self.metrics_server.stop()


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if isatty is not None else False
    except ValueError:  # a closed stream
        return False
