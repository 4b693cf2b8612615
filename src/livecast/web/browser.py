"""Watch the player page in a real headless Chromium and measure what a viewer sees.

Used by the end-to-end tests and by the latency benchmarks::

    result = await watch("http://127.0.0.1:8080/player.html", seconds=20)
    print(result.advance, result.latency_p50, result.fatal_error)

:func:`open_page` gives a test the loaded page itself, to drive it (the seek bar, "go live").
Playwright drives Debian's Chromium (its own browser download does not work on these machines),
so the binary comes from :func:`find_chromium`. The page's ``window.livecastStats()`` is sampled
every ``sample_every`` seconds; :class:`WatchResult` keeps every sample and the figures derived
from them.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import shutil
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from livecast.results.histogram import interpolated_percentile

if TYPE_CHECKING:
    from playwright.async_api import ConsoleMessage, Page

CHROMIUM_ENV = "LIVECAST_CHROMIUM"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
)

_STATS_JS = "() => typeof window.livecastStats === 'function' ? window.livecastStats() : null"


def find_chromium() -> str | None:
    """Chromium executable: ``$LIVECAST_CHROMIUM``, else the first of ``chromium``,
    ``chromium-browser``, ``google-chrome`` on ``PATH``; ``None`` when there is none."""
    env = os.environ.get(CHROMIUM_ENV)
    if env:
        return env if os.path.isfile(env) else shutil.which(env)
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def _opt_float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _opt_int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return int(value)


@dataclass(frozen=True, slots=True)
class PlayerStats:
    """One ``window.livecastStats()`` snapshot; ``raw`` keeps every key the page sent.

    Times are seconds except ``startup_ms``; ``latency`` is hls.js's live latency (live edge minus
    playhead), ``pdt_latency`` wall clock minus the program date time being shown (when the
    playlist carries ``EXT-X-PROGRAM-DATE-TIME``).
    """

    latency: float | None
    target_latency: float | None
    pdt_latency: float | None
    current_time: float
    buffered: float
    level: int | None
    bitrate: int | None
    stalls: int
    stalled_ms: int
    playing: bool
    startup_ms: float | None
    fatal_error: str | None
    errors: list[dict[str, Any]]
    raw: dict[str, Any]

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> PlayerStats:
        errors = raw.get("errors")
        fatal = raw.get("fatalError")
        return cls(
            latency=_opt_float(raw.get("latency")),
            target_latency=_opt_float(raw.get("targetLatency")),
            pdt_latency=_opt_float(raw.get("pdtLatency")),
            current_time=_opt_float(raw.get("currentTime")) or 0.0,
            buffered=_opt_float(raw.get("buffered")) or 0.0,
            level=_opt_int(raw.get("level")),
            bitrate=_opt_int(raw.get("bitrate")),
            stalls=_opt_int(raw.get("stalls")) or 0,
            stalled_ms=_opt_int(raw.get("stalledMs")) or 0,
            playing=raw.get("playing") is True,
            startup_ms=_opt_float(raw.get("startupMs")),
            fatal_error=None if fatal is None else str(fatal),
            errors=[e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else [],
            raw=raw,
        )


@dataclass(frozen=True, slots=True)
class Sample:
    """A snapshot taken ``t`` seconds after the page finished loading."""

    t: float
    stats: PlayerStats


@dataclass(slots=True)
class WatchResult:
    """What one viewer saw during :func:`watch`."""

    url: str
    seconds: float
    samples: list[Sample] = field(default_factory=list)
    #: JavaScript exceptions thrown on the page and console errors, in order.
    page_errors: list[str] = field(default_factory=list)

    @property
    def final(self) -> PlayerStats | None:
        """The last snapshot, or ``None`` when the page never exposed ``livecastStats``."""
        return self.samples[-1].stats if self.samples else None

    @property
    def advance(self) -> float:
        """Seconds of media played: ``currentTime`` at the end minus at the first playing sample."""
        first = next((s.stats for s in self.samples if s.stats.playing), None)
        final = self.final
        if first is None or final is None:
            return 0.0
        return max(0.0, final.current_time - first.current_time)

    @property
    def latencies(self) -> list[float]:
        """hls.js live latency of every sample taken while playing."""
        return [
            s.stats.latency
            for s in self.samples
            if s.stats.playing and s.stats.latency is not None and s.stats.latency > 0
        ]

    @property
    def latency_p50(self) -> float | None:
        return percentile(self.latencies, 50)

    @property
    def latency_p95(self) -> float | None:
        return percentile(self.latencies, 95)

    @property
    def startup_ms(self) -> float | None:
        final = self.final
        return None if final is None else final.startup_ms

    @property
    def fatal_error(self) -> str | None:
        """The player's fatal error, or a note when the page never exposed its stats."""
        for sample in reversed(self.samples):
            if sample.stats.fatal_error is not None:
                return sample.stats.fatal_error
        if not self.samples:
            return "window.livecastStats() never became available"
        return None

    def summary(self) -> dict[str, Any]:
        """A small JSON-able digest for logs and benchmark output."""
        final = self.final
        return {
            "url": self.url,
            "seconds": self.seconds,
            "samples": len(self.samples),
            "advance": round(self.advance, 3),
            "latency_p50": self.latency_p50,
            "latency_p95": self.latency_p95,
            "startup_ms": self.startup_ms,
            "stalls": None if final is None else final.stalls,
            "fatal_error": self.fatal_error,
            "page_errors": self.page_errors,
        }


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated ``q``-th percentile (0–100) of ``values``; ``None`` when empty."""
    return interpolated_percentile(values, min(max(q, 0.0), 100.0)) if values else None


@dataclass(slots=True)
class OpenPage:
    """A page opened by :func:`open_page`: the Playwright page, and what went wrong on it."""

    page: Page
    #: JavaScript exceptions thrown on the page and console errors, in order.
    errors: list[str] = field(default_factory=list)

    async def stats(self) -> PlayerStats | None:
        """The page's ``window.livecastStats()`` now, or ``None`` before it exists."""
        raw = await self.page.evaluate(_STATS_JS)
        return PlayerStats.from_json(raw) if isinstance(raw, dict) else None


@contextlib.asynccontextmanager
async def open_page(page_url: str, *, chromium: str | None = None) -> AsyncIterator[OpenPage]:
    """``page_url`` loaded in headless Chromium (:func:`find_chromium` unless ``chromium``), for
    a caller that drives the page itself; the browser is closed when the block is left.

    Raises :class:`RuntimeError` when there is no browser.
    """
    from playwright.async_api import async_playwright

    executable = chromium or find_chromium()
    if executable is None:
        raise RuntimeError(
            f"no Chromium found (set ${CHROMIUM_ENV} or install Debian's chromium package)"
        )
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=executable, headless=True, args=list(CHROMIUM_ARGS)
        )
        try:
            opened = OpenPage(await browser.new_page())
            opened.page.on("pageerror", lambda exc: opened.errors.append(f"pageerror: {exc}"))

            def on_console(msg: ConsoleMessage) -> None:
                if msg.type == "error":
                    where = msg.location.get("url", "")
                    opened.errors.append(f"console.error: {msg.text} ({where})")

            opened.page.on("console", on_console)
            await opened.page.goto(page_url, wait_until="load")
            yield opened
        finally:
            await browser.close()


async def watch(
    page_url: str,
    seconds: float,
    *,
    chromium: str | None = None,
    sample_every: float = 0.5,
    enough: Callable[[WatchResult], bool] | None = None,
) -> WatchResult:
    """Open ``page_url`` in headless Chromium for ``seconds`` and sample ``livecastStats()``.

    ``chromium`` defaults to :func:`find_chromium`; raises :class:`RuntimeError` when there is no
    browser. Sampling starts once the page has loaded; a final sample is always taken at the end
    — or, with ``enough``, at the first sample for which ``enough(result)`` holds (a test that
    needs "N s played within T s" may stop there: played time only grows).
    """
    result = WatchResult(url=page_url, seconds=seconds)
    async with open_page(page_url, chromium=chromium) as opened:
        result.page_errors = opened.errors
        start = time.monotonic()
        deadline = start + seconds
        while True:
            now = time.monotonic()
            stats = await opened.stats()
            if stats is not None:
                result.samples.append(Sample(now - start, stats))
                if enough is not None and enough(result):
                    break
            if now >= deadline:
                break
            await asyncio.sleep(min(sample_every, max(0.0, deadline - time.monotonic())))
    return result
