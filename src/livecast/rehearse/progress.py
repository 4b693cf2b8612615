"""One second of a rehearsal's audience — what every engine's viewer process reports (the local
driver's workers over a queue, Locust's workers as a message), how the reports of one second are
merged, and the meter a viewer process keeps to make them. Pure: no I/O, no clock.

A :class:`Progress` feeds the live terminal line, the rehearsal's ``/metrics``
(``livecast_rehearsal_*``) and the dashboard. Besides the per-second sums (viewers playing,
viewers started, start failures, stalls, rebuffer seconds, requests, errors) it carries two
mergeable histograms with fixed buckets — startup times of the viewers who started in that second
and the latency-behind-live samples taken in it — so that merging processes adds counts and the
Prometheus histograms are fed exactly.

:class:`RehearsalMetrics` is what the reports feed: the ``livecast_rehearsal_*`` metrics the
rehearsal serves with ``--metrics-port`` (names agreed with the dashboard and docs/metrics.md):
``livecast_rehearsal_viewers`` (gauge, playing now), ``…_viewers_started_total``,
``…_start_failures_total``, ``…_stalls_total``, ``…_rebuffer_seconds_total``,
``…_requests_total``, ``…_request_errors_total`` and the histograms ``…_startup_seconds`` and
``…_latency_seconds`` (latency behind live), with the buckets of the reports.

    metrics = RehearsalMetrics()
    metrics.observe(progress)      # once a second, the merged report of all viewer processes
    metrics.registry.render()      # Prometheus text format 0.0.4

Wire form (:meth:`Progress.to_dict`): a flat JSON object. :meth:`Progress.from_dict` tolerates the
older form (``t``, ``active``, ``requests``, ``errors``, ``latency_p50``, ``latency_p95`` only):
what is missing counts as zero.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from livecast.results.histogram import Histogram
from livecast.results.stats import ViewerOutcome
from livecast.telemetry.metrics import Registry

# upper bounds (seconds) of the fixed buckets; +Inf is implicit
STARTUP_BUCKETS = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 20.0)
LATENCY_BUCKETS = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 15.0, 20.0, 30.0, 60.0)


@dataclass(frozen=True, slots=True)
class BucketCounts:
    """Observations in fixed buckets: ``counts[i]`` of values ≤ ``bounds[i]`` (and above the
    previous bound); the last count is the ``+Inf`` bucket. Mergeable by adding counts."""

    bounds: tuple[float, ...]
    counts: tuple[int, ...]
    sum: float = 0.0

    def __post_init__(self) -> None:
        if len(self.counts) != len(self.bounds) + 1:
            raise ValueError(
                f"{len(self.counts)} bucket counts for {len(self.bounds)} bounds (+Inf)"
            )
        if any(n < 0 for n in self.counts):
            raise ValueError(f"negative bucket counts {self.counts}")

    @classmethod
    def empty(cls, bounds: tuple[float, ...]) -> BucketCounts:
        return cls(bounds, (0,) * (len(bounds) + 1))

    @classmethod
    def of(cls, bounds: tuple[float, ...], values: Iterable[tuple[float, int]]) -> BucketCounts:
        """``(value, count)`` pairs counted into ``bounds`` (upper bounds inclusive)."""
        counts = [0] * (len(bounds) + 1)
        total = 0.0
        for value, n in values:
            counts[bisect.bisect_left(bounds, value)] += n
            total += value * n
        return cls(bounds, tuple(counts), total)

    @classmethod
    def of_histogram(cls, bounds: tuple[float, ...], histogram: Histogram) -> BucketCounts:
        """A log-linear :class:`Histogram` re-counted into ``bounds`` (each value at its bucket's
        reported value, within the histogram's relative error); its exact sum is kept."""
        counted = cls.of(bounds, histogram.buckets())
        return cls(bounds, counted.counts, histogram.sum if histogram.count else 0.0)

    @property
    def count(self) -> int:
        return sum(self.counts)

    def merged(self, other: BucketCounts) -> BucketCounts:
        if other.bounds != self.bounds:
            raise ValueError(f"cannot merge buckets {other.bounds} into {self.bounds}")
        counts = tuple(a + b for a, b in zip(self.counts, other.counts, strict=True))
        return BucketCounts(self.bounds, counts, self.sum + other.sum)

    def to_dict(self) -> dict[str, Any]:
        return {"counts": list(self.counts), "sum": self.sum}

    @classmethod
    def from_dict(cls, bounds: tuple[float, ...], data: Any) -> BucketCounts:
        """The wire form; missing (an older sender) is empty; counts for other bounds are an
        error."""
        if not isinstance(data, Mapping):
            return cls.empty(bounds)
        return cls(bounds, tuple(int(n) for n in data["counts"]), float(data.get("sum", 0.0)))


def _empty_startup() -> BucketCounts:
    return BucketCounts.empty(STARTUP_BUCKETS)


def _empty_latency() -> BucketCounts:
    return BucketCounts.empty(LATENCY_BUCKETS)


@dataclass(frozen=True, slots=True)
class Progress:
    """One second of one viewer process's run (or of all of them, merged)."""

    t: int
    active: int  # viewers playing (joined and not gone) at the end of the second
    requests: int
    errors: int  # 4xx/5xx or no answer
    latency_p50: float | None
    latency_p95: float | None
    started: int = 0  # viewers whose first frame came in this second
    start_failures: int = 0  # viewers who gave up before their first frame
    stalls: int = 0
    rebuffer_s: float = 0.0  # seconds spent stalled during this second, all viewers
    startup: BucketCounts = field(default_factory=_empty_startup)  # of the ones started
    latency: BucketCounts = field(default_factory=_empty_latency)  # behind live, samples

    def to_dict(self) -> dict[str, Any]:
        return {
            "t": self.t,
            "active": self.active,
            "requests": self.requests,
            "errors": self.errors,
            "latency_p50": self.latency_p50,
            "latency_p95": self.latency_p95,
            "started": self.started,
            "start_failures": self.start_failures,
            "stalls": self.stalls,
            "rebuffer_s": self.rebuffer_s,
            "startup": self.startup.to_dict(),
            "latency": self.latency.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Progress:
        def opt(key: str) -> float | None:
            value = data.get(key)
            return None if value is None else float(value)

        return cls(
            int(data["t"]), int(data["active"]), int(data["requests"]), int(data["errors"]),
            opt("latency_p50"), opt("latency_p95"),
            started=int(data.get("started", 0)),
            start_failures=int(data.get("start_failures", 0)),
            stalls=int(data.get("stalls", 0)),
            rebuffer_s=float(data.get("rebuffer_s", 0.0)),
            startup=BucketCounts.from_dict(STARTUP_BUCKETS, data.get("startup")),
            latency=BucketCounts.from_dict(LATENCY_BUCKETS, data.get("latency")),
        )  # fmt: skip


def merge_progress(t: int, parts: Sequence[Progress]) -> Progress:
    """The processes' reports of second ``t``: sums, merged histograms, and the worst process's
    latency percentiles (a conservative figure)."""

    def worst(values: list[float | None]) -> float | None:
        known = [v for v in values if v is not None]
        return max(known) if known else None

    startup, latency = _empty_startup(), _empty_latency()
    for p in parts:
        startup = startup.merged(p.startup)
        latency = latency.merged(p.latency)
    return Progress(
        t=t,
        active=sum(p.active for p in parts),
        requests=sum(p.requests for p in parts),
        errors=sum(p.errors for p in parts),
        latency_p50=worst([p.latency_p50 for p in parts]),
        latency_p95=worst([p.latency_p95 for p in parts]),
        started=sum(p.started for p in parts),
        start_failures=sum(p.start_failures for p in parts),
        stalls=sum(p.stalls for p in parts),
        rebuffer_s=sum(p.rebuffer_s for p in parts),
        startup=startup,
        latency=latency,
    )


class ProgressMeter:
    """What one viewer process counts between two reports: viewers started (each once, by key)
    and their startup times, start failures, and the rebuffering so far (of the viewers gone, and
    of the ones playing as the engine sums it at each report).

    An engine calls :meth:`playing` for each viewer whose first frame it sees (once a second is
    enough), :meth:`finished` with each viewer's outcome, and :meth:`close` once a second."""

    __slots__ = ("_counted", "_failures", "_rebuffer_reported", "_stalled_gone", "_startups")

    def __init__(self) -> None:
        self._counted: set[int] = set()  # viewers playing whose startup is counted
        self._startups: list[float] = []
        self._failures = 0
        self._stalled_gone = 0.0  # stalled seconds of the viewers gone
        self._rebuffer_reported = 0.0

    def playing(self, key: int, startup_s: float) -> None:
        """A viewer whose first frame came ``startup_s`` after its play request (counted once)."""
        if key not in self._counted:
            self._counted.add(key)
            self._startups.append(max(0.0, startup_s))

    def finished(self, key: int, outcome: ViewerOutcome) -> None:
        """A viewer's end: its start (if not counted yet), its failure to start, its stalls."""
        if outcome.startup_s is not None:
            self.playing(key, outcome.startup_s)
        self._counted.discard(key)
        if outcome.start_failed:
            self._failures += 1
        self._stalled_gone += outcome.stalled_s

    def close(
        self,
        t: int,
        *,
        active: int,
        requests: int,
        errors: int,
        stalls: int,
        stalled_playing_s: float,
        latency: Histogram,
    ) -> Progress:
        """The report of second ``t``: ``stalled_playing_s`` is the stalled time so far of the
        viewers still playing, ``latency`` the second's latency-behind-live samples."""
        rebuffered = self._stalled_gone + stalled_playing_s
        rebuffer_s = max(0.0, rebuffered - self._rebuffer_reported)
        self._rebuffer_reported = max(self._rebuffer_reported, rebuffered)
        known = latency.count > 0
        report = Progress(
            t=t,
            active=active,
            requests=requests,
            errors=errors,
            latency_p50=latency.percentile(50) if known else None,
            latency_p95=latency.percentile(95) if known else None,
            started=len(self._startups),
            start_failures=self._failures,
            stalls=stalls,
            rebuffer_s=rebuffer_s,
            startup=BucketCounts.of(STARTUP_BUCKETS, ((s, 1) for s in self._startups)),
            latency=BucketCounts.of_histogram(LATENCY_BUCKETS, latency),
        )
        self._startups = []
        self._failures = 0
        return report


# ---------------------------------------------------------------- the rehearsal's /metrics

METRIC_VIEWERS = "livecast_rehearsal_viewers"
METRIC_VIEWERS_STARTED = "livecast_rehearsal_viewers_started_total"
METRIC_START_FAILURES = "livecast_rehearsal_start_failures_total"
METRIC_STALLS = "livecast_rehearsal_stalls_total"
METRIC_REBUFFER_SECONDS = "livecast_rehearsal_rebuffer_seconds_total"
METRIC_REQUESTS = "livecast_rehearsal_requests_total"
METRIC_REQUEST_ERRORS = "livecast_rehearsal_request_errors_total"
METRIC_STARTUP_SECONDS = "livecast_rehearsal_startup_seconds"
METRIC_LATENCY_SECONDS = "livecast_rehearsal_latency_seconds"


class RehearsalMetrics:
    """A registry of the ``livecast_rehearsal_*`` metrics and what one progress report adds."""

    def __init__(self, registry: Registry | None = None) -> None:
        self.registry = registry = registry if registry is not None else Registry()
        self.viewers = registry.gauge(METRIC_VIEWERS, "Virtual viewers playing now.").labels()
        self.started = registry.counter(
            METRIC_VIEWERS_STARTED, "Virtual viewers whose first frame played."
        ).labels()
        self.start_failures = registry.counter(
            METRIC_START_FAILURES, "Virtual viewers that gave up before their first frame."
        ).labels()
        self.stalls = registry.counter(
            METRIC_STALLS, "Playback stalls of the virtual viewers."
        ).labels()
        self.rebuffer = registry.counter(
            METRIC_REBUFFER_SECONDS, "Seconds the virtual viewers spent stalled, all added."
        ).labels()
        self.requests = registry.counter(
            METRIC_REQUESTS, "HTTP requests of the virtual viewers that ended (answered or failed)."
        ).labels()
        self.errors = registry.counter(
            METRIC_REQUEST_ERRORS,
            "Requests of the virtual viewers answered 4xx/5xx or not answered.",
        ).labels()
        self.startup = registry.histogram(
            METRIC_STARTUP_SECONDS,
            "Startup time of the virtual viewers (play request to first frame).",
            STARTUP_BUCKETS,
        ).labels()
        self.latency = registry.histogram(
            METRIC_LATENCY_SECONDS,
            "Latency behind live of the virtual viewers, sampled while playing.",
            LATENCY_BUCKETS,
        ).labels()
        self.last_t: int | None = None  # the newest second observed

    def observe(self, progress: Progress) -> None:
        """One closed second, merged over the viewer processes."""
        self.viewers.set(progress.active)
        self.started.inc(progress.started)
        self.start_failures.inc(progress.start_failures)
        self.stalls.inc(progress.stalls)
        self.rebuffer.inc(progress.rebuffer_s)
        self.requests.inc(progress.requests)
        self.errors.inc(progress.errors)
        self.startup.add_counts(progress.startup.counts, progress.startup.sum)
        self.latency.add_counts(progress.latency.counts, progress.latency.sum)
        self.last_t = progress.t

    def render(self) -> bytes:
        return self.registry.render()
