"""What a rehearsal shows while it runs — the adapter behind ``livecast rehearse``'s progress:

* the terminal: the plain progress line a second, or on a terminal a ``rich`` live view
  (:mod:`livecast.rehearse.terminal`);
* ``--metrics-port PORT``: ``/metrics`` with the ``livecast_rehearsal_*`` metrics
  (:class:`~livecast.rehearse.progress.RehearsalMetrics`), PORT 0 for any free port;
* ``--dashboard-port PORT``: the dashboard (``livecast dashboard``) served from the rehearsal
  itself, with its own figures (read in-process) and the stack it started (the origin's
  ``/metrics`` and each nginx tier's ``/edge/metrics``, added once they run).

Every URL is printed on the stream when it starts. Everything is fed from the merged per-second
:class:`~livecast.rehearse.progress.Progress`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TextIO

from rich.console import Console
from rich.live import Live

from livecast.dashboard.feed import DashboardFeed
from livecast.dashboard.server import HttpServer
from livecast.errors import ConfigError
from livecast.rehearse.progress import Progress, RehearsalMetrics
from livecast.rehearse.terminal import TerminalView, plain_line
from livecast.telemetry.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE

REHEARSAL_SOURCE = "rehearsal"  # the dashboard's name for the rehearsal's own figures


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
