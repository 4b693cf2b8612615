"""The dashboard's scraping loop and what it serves — the asyncio adapter around
:class:`~livecast.dashboard.model.DashboardModel`.

Once a second: every URL is scraped (in threads, :data:`SCRAPE_TIMEOUT` each, all at once) and
every local source read (the rehearsal's own registry: no HTTP), the model ticks, and the new
point goes to the page's listeners as one server-sent event (``event: point``); a new listener
first gets the history so far (``event: history``). ``/metrics`` shows the dashboard's own
figures (listeners, dropped listeners, scrape failures) beside the local sources'.

    feed = DashboardFeed(["http://127.0.0.1:9100/metrics"])
    await feed.start("127.0.0.1", 8080)       # the page at feed.server.url()
    ...
    await feed.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from importlib import resources

from livecast.dashboard.model import DashboardModel
from livecast.dashboard.server import HttpServer, SseHub
from livecast.dashboard.wire import frame
from livecast.telemetry.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from livecast.telemetry.metrics import Registry

SCRAPE_TIMEOUT = 2.0  # seconds per scrape
INTERVAL = 1.0  # seconds between ticks
PAGE = "page.html"
LocalSource = Callable[[], bytes]  # → Prometheus text, read in-process


def fetch_text(url: str, timeout: float = SCRAPE_TIMEOUT) -> str:
    """One scrape: the body of ``url`` (OSError/ValueError when it cannot be had)."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        if response.status != 200:
            raise ValueError(f"{url} answered {response.status}")
        body: bytes = response.read()
    return body.decode("utf-8", "replace")


def page_html() -> bytes:
    """The dashboard page (plain HTML and JS, no build step, nothing from a CDN)."""
    return resources.files("livecast.dashboard").joinpath(PAGE).read_bytes()


class DashboardFeed:
    """Scrape ``urls`` and ``local`` sources once a second, serve the page and its events."""

    def __init__(
        self,
        urls: Sequence[str] = (),
        local: Mapping[str, LocalSource] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        interval: float = INTERVAL,
        max_clients: int = 16,
    ) -> None:
        self.urls = list(urls)
        self.local = dict(local or {})
        self.clock = clock
        self.interval = interval
        self.model = DashboardModel()
        self.started_at = clock()
        self.hub = SseHub(max_clients=max_clients, hello=self._hello)
        self.registry = Registry()
        self._listeners = self.registry.gauge(
            "livecast_dashboard_listeners", "Pages listening to the event stream."
        ).labels()
        self._dropped = self.registry.counter(
            "livecast_dashboard_dropped_listeners_total",
            "Event-stream listeners dropped for being slow.",
        ).labels()
        self._failures = self.registry.counter(
            "livecast_dashboard_scrape_failures_total", "Scrapes that failed, per URL.", ("url",)
        )
        self.server = HttpServer(
            {
                "/": lambda: (page_html(), "text/html; charset=utf-8"),
                "/metrics": self._metrics,
                "/history.json": lambda: (self._history_json().encode(), "application/json"),
            },
            self.hub,
        )
        self._task: asyncio.Task[None] | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        await self.server.start(host, port)
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.server.stop()

    async def _run(self) -> None:
        while True:
            started = self.clock()
            await self.step()
            await asyncio.sleep(max(0.0, self.interval - (self.clock() - started)))

    async def step(self) -> None:
        """One tick: scrape everything, tick the model, send the point."""
        results = await asyncio.gather(
            *(asyncio.to_thread(fetch_text, url) for url in self.urls), return_exceptions=True
        )
        now = self.clock() - self.started_at
        for url, result in zip(self.urls, results, strict=True):
            if isinstance(result, str):
                with contextlib.suppress(ValueError):
                    self.model.observe(url, result, now)
                    continue
            self.model.failed(url, now)
            self._failures.inc(url)
        for name, read in self.local.items():
            try:
                self.model.observe(name, read().decode("utf-8", "replace"), now)
            except ValueError:
                self.model.failed(name, now)
        point = self.model.tick(now)
        self.hub.publish(frame(json.dumps(point.to_dict()), event="point"))

    def _hello(self) -> list[bytes]:
        return [frame(self._history_json(), event="history")]

    def _history_json(self) -> str:
        return json.dumps([point.to_dict() for point in self.model.history])

    def _metrics(self) -> tuple[bytes, str]:
        self._listeners.set(len(self.hub.clients))
        self._dropped.value = float(self.hub.dropped)
        body = self.registry.render() + b"".join(read() for read in self.local.values())
        return body, METRICS_CONTENT_TYPE


async def serve_dashboard(urls: Sequence[str], host: str = "127.0.0.1", port: int = 0) -> int:
    """``livecast dashboard``: scrape ``urls``, serve the page until SIGINT/SIGTERM; exit code."""
    if not urls:
        print("livecast dashboard: give at least one --scrape URL", file=sys.stderr)
        return 2
    for url in urls:
        if not url.startswith(("http://", "https://")):
            print(f"livecast dashboard: --scrape {url!r} is not an http(s) URL", file=sys.stderr)
            return 2
    feed = DashboardFeed(urls)
    try:
        await feed.start(host, port)
    except OSError as exc:
        print(f"livecast dashboard: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        return 2
    print(f"dashboard: {feed.server.url('/')}", file=sys.stderr, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await feed.stop()
    return 0
