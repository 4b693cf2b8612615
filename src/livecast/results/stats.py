"""The aggregate a rehearsal (or a simulation) produces: mergeable, JSON-serialisable, pure.

    stats = RunStats(seed=worker_index)
    stats.record_request("part", 200, latency_s=0.031, t_s=12.4)
    stats.record_request("playlist", "reset", latency_s=None, t_s=12.5)   # no HTTP status
    stats.record_viewer(ViewerOutcome(startup_s=1.2, played_s=29.0, ...))
    stats.record_request("segment-dvr", 200, latency_s=0.09, t_s=12.6)   # a start-over viewer's
    stats.record_viewer(ViewerOutcome(...), dvr=True)                     # counted apart
    stats.record_stall(t_s=14.0)
    stats.record_live_latency(t_s=14.0, latency_s=1.9)
    stats.set_active_viewers(t_s=14.0, viewers=180)
    stats.record_tier_sample("origin", t_s=14.0, requests_total=5123, responses_5xx_total=0)
    parent.merge(RunStats.from_dict(json.loads(worker_json)))

Per-viewer QoE follows the Mux/Conviva definitions (design brief §6): startup time, video start
failure (fatal error before the first frame), exit before video start (left, no error), stalls and
stalled time, rebuffering ratio = stalled / (stalled + played), latency behind live (wall clock −
PDT of the presented frame), average bitrate, switches. Viewer distributions are histograms over
viewers plus a bounded reservoir sample of the per-viewer values, which ``compare`` tests.
Start-over (DVR) viewers are counted apart (``dvr_viewers``, request kinds ``<kind>-dvr``, their
request latency per second beside the live requests'): the QoE SLOs judge the live viewers.

Merging sums every counter and histogram; time-series seconds are aligned on whole seconds since
the show start (``t_s``), so workers must share that origin. Tier counter series come from one
scraper; merging concatenates them by tier.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from livecast.results.histogram import Histogram, Reservoir, percentile
from livecast.results.indicators import Indicators

REQUEST_KINDS = ("multivariant", "playlist", "part", "segment", "init")
DVR_SUFFIX = "-dvr"  # a start-over viewer's requests: "playlist-dvr", "segment-dvr", …

SECONDS = (1e-6, 3600.0)
RATIO = (1e-6, 1.0)
BITS_PER_SECOND = (1.0, 1e11)
COUNT = (1.0, 1e9)

# metric name → (lowest, highest) of its histogram over viewers
VIEWER_DISTRIBUTIONS: dict[str, tuple[float, float]] = {
    "startup_s": SECONDS,
    "stalls": COUNT,
    "stalled_s": SECONDS,
    "rebuffering_ratio": RATIO,
    "latency_behind_live_s": SECONDS,
    "avg_bitrate_bps": BITS_PER_SECOND,
    "switches": COUNT,
}
# viewer counters, all summed on merge
VIEWER_COUNTERS = (
    "viewers",
    "started",
    "start_failures",
    "exits_before_start",
    "fatal_errors",
    "stalls",
    "stalled_s",
    "played_s",
    "switches",
)
SAMPLE_CAPACITY = 5000
TIMELINE_LAYOUT = (1e-4, 3600.0, 0.02)


@dataclass(frozen=True)
class LatencySummary:
    """One viewer's latency-behind-live samples, summarised (seconds)."""

    samples: int
    mean_s: float
    p95_s: float
    max_s: float

    @classmethod
    def of(cls, latencies_s: Iterable[float]) -> LatencySummary | None:
        ordered = sorted(latencies_s)
        if not ordered:
            return None
        mean = math.fsum(ordered) / len(ordered)
        return cls(len(ordered), mean, percentile(ordered, 95), ordered[-1])


@dataclass(frozen=True)
class ViewerOutcome:
    """What one virtual viewer experienced; produced by the player model at the viewer's exit."""

    startup_s: float | None  # play request → first frame; None if playback never started
    start_failed: bool = False  # fatal error before the first frame
    exited_before_start: bool = False  # left before the first frame, no error
    stalls: int = 0
    stalled_s: float = 0.0
    played_s: float = 0.0
    latency: LatencySummary | None = None
    avg_bitrate_bps: float | None = None
    switches: int = 0
    fatal_error: str | None = None  # error type when the viewer ended on a fatal error

    @property
    def rebuffering_ratio(self) -> float | None:
        watched = self.stalled_s + self.played_s
        return self.stalled_s / watched if watched > 0 else None


def dvr_kind(kind: str) -> str:
    """The request kind a start-over (DVR) viewer's ``kind`` request is counted under."""
    return kind + DVR_SUFFIX


def is_dvr_kind(kind: str) -> bool:
    return kind.endswith(DVR_SUFFIX)


_HTTP_STATUS_KEYS = {status: str(status) for status in range(100, 600)}


def _status_key(status: int | str) -> str:
    if isinstance(status, str):
        return status
    return _HTTP_STATUS_KEYS.get(status) or str(status)


def is_http_error(status_key: str) -> bool:
    """True for 4xx/5xx and for transport failures ("reset", "timeout", ...)."""
    return not (status_key.isdigit() and int(status_key) < 400)


_NOT_ERRORS = frozenset(key for key in _HTTP_STATUS_KEYS.values() if not is_http_error(key))


class RequestKindStats:
    """Status counts and latency of one request kind (multivariant, playlist, part, ...)."""

    __slots__ = ("latency_s", "latency_sample", "status_counts")

    def __init__(self, seed: int = 0) -> None:
        self.status_counts: dict[str, int] = {}
        self.latency_s = Histogram(*SECONDS)
        self.latency_sample = Reservoir(SAMPLE_CAPACITY, seed)

    def record(self, status: int | str, latency_s: float | None) -> None:
        key = _status_key(status)
        self.status_counts[key] = self.status_counts.get(key, 0) + 1
        if latency_s is not None:
            self.latency_s.record(latency_s)
            self.latency_sample.record(latency_s)

    @property
    def total(self) -> int:
        return sum(self.status_counts.values())

    def count_where(self, status_class: str) -> int:
        """Requests whose status starts with ``status_class`` ("5", "4", "200", "reset")."""
        return sum(n for key, n in self.status_counts.items() if key.startswith(status_class))

    @property
    def errors(self) -> int:
        return sum(n for key, n in self.status_counts.items() if is_http_error(key))

    def merge(self, other: RequestKindStats) -> None:
        for key, n in other.status_counts.items():
            self.status_counts[key] = self.status_counts.get(key, 0) + n
        self.latency_s.merge(other.latency_s)
        self.latency_sample.merge(other.latency_sample)

    def to_dict(self) -> dict[str, Any]:
        return {
            "status_counts": dict(sorted(self.status_counts.items())),
            "latency_s": self.latency_s.to_dict(),
            "latency_sample": self.latency_sample.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RequestKindStats:
        kind = cls()
        kind.status_counts = {str(k): int(v) for k, v in data["status_counts"].items()}
        kind.latency_s = Histogram.from_dict(data["latency_s"])
        kind.latency_sample = Reservoir.from_dict(data["latency_sample"])
        return kind


class ViewerStats:
    """QoE over viewers: counters, a histogram and a reservoir sample per distribution."""

    __slots__ = ("counters", "distributions", "fatal_errors_by_type", "samples")

    def __init__(self, seed: int = 0) -> None:
        self.counters: dict[str, float] = dict.fromkeys(VIEWER_COUNTERS, 0.0)
        self.fatal_errors_by_type: dict[str, int] = {}
        self.distributions = {
            name: Histogram(*bounds) for name, bounds in VIEWER_DISTRIBUTIONS.items()
        }
        self.samples = {
            name: Reservoir(SAMPLE_CAPACITY, seed * 101 + i)
            for i, name in enumerate(VIEWER_DISTRIBUTIONS)
        }

    def _observe(self, name: str, value: float, count: int) -> None:
        self.distributions[name].record(value, count)
        self.samples[name].record(value, count)

    def record(self, outcome: ViewerOutcome, count: int = 1) -> None:
        """One viewer's outcome, or ``count`` identical viewers' (a simulated cohort)."""
        self._count(outcome, count)
        if outcome.startup_s is None:
            return
        self.record_startup(outcome.startup_s, count)
        self._observe_watching(outcome, count)

    def record_startup(self, startup_s: float, count: int = 1) -> None:
        """Viewers who started (the simulator records them then, their outcome later)."""
        self.counters["started"] += count
        self._observe("startup_s", startup_s, count)

    def record_after_start(self, outcome: ViewerOutcome, count: int = 1) -> None:
        """The outcome of viewers whose start ``record_startup`` already counted."""
        self._count(outcome, count)
        self._observe_watching(outcome, count)

    def _count(self, outcome: ViewerOutcome, count: int) -> None:
        counters = self.counters
        counters["viewers"] += count
        counters["stalls"] += outcome.stalls * count
        counters["stalled_s"] += outcome.stalled_s * count
        counters["played_s"] += outcome.played_s * count
        counters["switches"] += outcome.switches * count
        counters["start_failures"] += outcome.start_failed * count
        counters["exits_before_start"] += outcome.exited_before_start * count
        if outcome.fatal_error is not None:
            counters["fatal_errors"] += count
            self.fatal_errors_by_type[outcome.fatal_error] = (
                self.fatal_errors_by_type.get(outcome.fatal_error, 0) + count
            )

    def _observe_watching(self, outcome: ViewerOutcome, count: int) -> None:
        self._observe("stalls", outcome.stalls, count)
        self._observe("stalled_s", outcome.stalled_s, count)
        self._observe("switches", outcome.switches, count)
        ratio = outcome.rebuffering_ratio
        if ratio is not None:
            self._observe("rebuffering_ratio", ratio, count)
        if outcome.latency is not None:
            self._observe("latency_behind_live_s", outcome.latency.mean_s, count)
        if outcome.avg_bitrate_bps is not None:
            self._observe("avg_bitrate_bps", outcome.avg_bitrate_bps, count)

    def rate(self, counter: str) -> float | None:
        """``counter`` per viewer (e.g. "fatal_errors" → fatal error rate); None with no viewers."""
        viewers = self.counters["viewers"]
        return self.counters[counter] / viewers if viewers else None

    @property
    def rebuffering_ratio(self) -> float | None:
        """Aggregate ratio: total stalled time / (total stalled + played time)."""
        watched = self.counters["stalled_s"] + self.counters["played_s"]
        return self.counters["stalled_s"] / watched if watched > 0 else None

    def merge(self, other: ViewerStats) -> None:
        for name, value in other.counters.items():
            self.counters[name] = self.counters.get(name, 0.0) + value
        for error, n in other.fatal_errors_by_type.items():
            self.fatal_errors_by_type[error] = self.fatal_errors_by_type.get(error, 0) + n
        for name, histogram in other.distributions.items():
            self.distributions[name].merge(histogram)
        for name, reservoir in other.samples.items():
            self.samples[name].merge(reservoir)

    def to_dict(self) -> dict[str, Any]:
        return {
            "counters": dict(self.counters),
            "fatal_errors_by_type": dict(sorted(self.fatal_errors_by_type.items())),
            "distributions": {n: h.to_dict() for n, h in self.distributions.items()},
            "samples": {n: r.to_dict() for n, r in self.samples.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ViewerStats:
        viewers = cls()
        viewers.counters.update({k: float(v) for k, v in data["counters"].items()})
        viewers.fatal_errors_by_type = {
            str(k): int(v) for k, v in data["fatal_errors_by_type"].items()
        }
        for name, histogram in data["distributions"].items():
            viewers.distributions[name] = Histogram.from_dict(histogram)
        for name, reservoir in data["samples"].items():
            viewers.samples[name] = Reservoir.from_dict(reservoir)
        return viewers


class TierCounters:
    """Cumulative request counters of one tier of the stack, scraped over time.

    ``samples`` holds ``(t_s, requests_total, responses_5xx_total)``; a counter that goes down
    (the process restarted) counts from zero again, as Prometheus ``rate()`` does. A caching tier
    (nginx edge, shield) also has ``cache_lookups`` / ``cache_hits`` over the whole run.
    """

    __slots__ = ("cache_hits", "cache_lookups", "samples")

    def __init__(
        self,
        samples: Iterable[tuple[float, float, float]] = (),
        cache_lookups: float | None = None,
        cache_hits: float | None = None,
    ) -> None:
        self.samples: list[tuple[float, float, float]] = sorted(samples)
        self.cache_lookups = cache_lookups
        self.cache_hits = cache_hits

    @property
    def hit_ratio(self) -> float | None:
        """Share of the cache lookups answered from the cache; None for a tier without one."""
        if not self.cache_lookups or self.cache_hits is None:
            return None
        return self.cache_hits / self.cache_lookups

    def record(self, t_s: float, requests_total: float, responses_5xx_total: float) -> None:
        self.samples.append((t_s, requests_total, responses_5xx_total))
        self.samples.sort()

    def _increases(self) -> list[tuple[float, float, float, float]]:
        """(t_s, dt, Δrequests, Δ5xx) between consecutive samples."""
        steps = []
        for (t0, r0, e0), (t1, r1, e1) in zip(self.samples, self.samples[1:], strict=False):
            d_requests = r1 - r0 if r1 >= r0 else r1
            d_errors = e1 - e0 if e1 >= e0 else e1
            steps.append((t1, t1 - t0, d_requests, d_errors))
        return steps

    def requests_per_s(self) -> list[tuple[float, float]]:
        return [(t, dr / dt) for t, dt, dr, _ in self._increases() if dt > 0]

    @property
    def requests(self) -> float:
        return sum(dr for _, _, dr, _ in self._increases())

    @property
    def responses_5xx(self) -> float:
        return sum(de for _, _, _, de in self._increases())

    @property
    def five_xx_rate(self) -> float | None:
        """Share of the tier's responses that were 5xx over the run; None with no requests."""
        steps = self._increases()
        requests = sum(dr for _, _, dr, _ in steps)
        return sum(de for _, _, _, de in steps) / requests if requests > 0 else None

    @property
    def mean_requests_per_s(self) -> float | None:
        if len(self.samples) < 2 or self.samples[-1][0] <= self.samples[0][0]:
            return None
        return self.requests / (self.samples[-1][0] - self.samples[0][0])

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"samples": [list(sample) for sample in self.samples]}
        if self.cache_lookups is not None:
            out["cache"] = {"lookups": self.cache_lookups, "hits": self.cache_hits}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TierCounters:
        cache = data.get("cache") or {}
        return cls(
            ((float(t), float(r), float(e)) for t, r, e in data["samples"]),
            cache.get("lookups"),
            cache.get("hits"),
        )


class Second:
    """What happened during one second of the run (all workers added together)."""

    __slots__ = (
        "active_viewers",
        "dvr_request_latency_s",
        "errors_by_type",
        "live_latency_s",
        "request_latency_s",
        "request_tenths",
        "requests",
        "retry_tenths",
        "stalls",
    )

    def __init__(self) -> None:
        self.active_viewers = 0
        self.requests = 0
        self.stalls = 0
        self.request_tenths = [0] * 10  # requests sent, per tenth of the second
        self.retry_tenths = [0] * 10  # … of which retries of a failed request
        self.errors_by_type: dict[str, int] = {}
        self.request_latency_s = Histogram(*TIMELINE_LAYOUT)  # live viewers' requests
        self.dvr_request_latency_s = Histogram(*TIMELINE_LAYOUT)  # start-over viewers'
        self.live_latency_s = Histogram(*TIMELINE_LAYOUT)  # live viewers' latency behind live

    def merge(self, other: Second) -> None:
        self.active_viewers += other.active_viewers
        self.requests += other.requests
        self.stalls += other.stalls
        for i in range(10):
            self.request_tenths[i] += other.request_tenths[i]
            self.retry_tenths[i] += other.retry_tenths[i]
        for error, n in other.errors_by_type.items():
            self.errors_by_type[error] = self.errors_by_type.get(error, 0) + n
        self.request_latency_s.merge(other.request_latency_s)
        self.dvr_request_latency_s.merge(other.dvr_request_latency_s)
        self.live_latency_s.merge(other.live_latency_s)


class Timeline:
    """Per-second samples keyed by whole seconds since the show start."""

    __slots__ = ("seconds",)

    def __init__(self) -> None:
        self.seconds: dict[int, Second] = {}

    def at(self, t_s: float) -> Second:
        key = math.floor(t_s)
        second = self.seconds.get(key)
        if second is None:
            second = self.seconds[key] = Second()
        return second

    def times(self) -> list[int]:
        return sorted(self.seconds)

    def column(self, name: str) -> list[float]:
        """One per-second series: a ``Second`` attribute, or "request_latency_p50_s" style."""
        ordered = [self.seconds[t] for t in self.times()]
        for prefix in ("request_latency", "dvr_request_latency", "live_latency"):
            if name.startswith(prefix + "_p") and name.endswith("_s"):
                percent = float(name[len(prefix) + 2 : -2])
                return [getattr(s, prefix + "_s").percentile(percent) for s in ordered]
        return [float(getattr(s, name)) for s in ordered]

    def errors_by_type(self) -> dict[str, list[float]]:
        ordered = [self.seconds[t] for t in self.times()]
        types = sorted({error for s in ordered for error in s.errors_by_type})
        return {e: [float(s.errors_by_type.get(e, 0)) for s in ordered] for e in types}

    def merge(self, other: Timeline) -> None:
        for t, second in other.seconds.items():
            self.at(t).merge(second)

    def to_dict(self) -> dict[str, Any]:
        ordered = [self.seconds[t] for t in self.times()]
        return {
            "t_s": self.times(),
            "active_viewers": [s.active_viewers for s in ordered],
            "requests": [s.requests for s in ordered],
            "stalls": [s.stalls for s in ordered],
            "request_tenths": [s.request_tenths for s in ordered],
            "retry_tenths": [s.retry_tenths for s in ordered],
            "errors_by_type": [dict(sorted(s.errors_by_type.items())) for s in ordered],
            "request_latency_s": [s.request_latency_s.to_dict() for s in ordered],
            "live_latency_s": [s.live_latency_s.to_dict() for s in ordered],
        } | self._dvr_dict(ordered)

    @staticmethod
    def _dvr_dict(ordered: list[Second]) -> dict[str, Any]:
        """Start-over requests' latency per second, written when there were any."""
        if not any(s.dvr_request_latency_s.count for s in ordered):
            return {}
        return {"dvr_request_latency_s": [s.dvr_request_latency_s.to_dict() for s in ordered]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Timeline:
        timeline = cls()
        for i, t in enumerate(data["t_s"]):
            second = timeline.at(int(t))
            second.active_viewers = int(data["active_viewers"][i])
            second.requests = int(data["requests"][i])
            second.stalls = int(data["stalls"][i])
            if "request_tenths" in data:  # results written before the indicators have none
                second.request_tenths = [int(v) for v in data["request_tenths"][i]]
                second.retry_tenths = [int(v) for v in data["retry_tenths"][i]]
            second.errors_by_type = {k: int(v) for k, v in data["errors_by_type"][i].items()}
            second.request_latency_s = Histogram.from_dict(data["request_latency_s"][i])
            second.live_latency_s = Histogram.from_dict(data["live_latency_s"][i])
            if "dvr_request_latency_s" in data:
                dvr = data["dvr_request_latency_s"][i]
                second.dvr_request_latency_s = Histogram.from_dict(dvr)
        return timeline


class RunStats:
    """Everything one run measured; ``merge`` adds a worker's stats, ``to_dict`` ships them."""

    __slots__ = ("dvr_viewers", "indicators", "requests", "tiers", "timeline", "viewers")

    def __init__(self, seed: int = 0) -> None:
        self.requests = {
            kind: RequestKindStats(seed * 7 + i) for i, kind in enumerate(REQUEST_KINDS)
        }
        self.viewers = ViewerStats(seed)  # live viewers: the QoE SLOs judge these
        self.dvr_viewers = ViewerStats(seed + 1_000_003)  # start-over viewers, reported apart
        self.tiers: dict[str, TierCounters] = {}
        self.timeline = Timeline()
        self.indicators = Indicators()

    def record_request(
        self, kind: str, status: int | str, latency_s: float | None, t_s: float
    ) -> None:
        """One request outcome: an HTTP status, or a transport failure name ("reset"). A DVR kind's
        latency goes to the per-second DVR histogram, apart from the live requests'."""
        kind_stats = self.requests.get(kind)
        if kind_stats is None:
            kind_stats = self.requests[kind] = RequestKindStats()
        key = _status_key(status)
        kind_stats.record(key, latency_s)
        second = self.timeline.at(t_s)
        second.requests += 1
        if key not in _NOT_ERRORS:
            second.errors_by_type[key] = second.errors_by_type.get(key, 0) + 1
        if latency_s is not None:
            if kind.endswith(DVR_SUFFIX):  # is_dvr_kind
                second.dvr_request_latency_s.record(latency_s)
            else:
                second.request_latency_s.record(latency_s)

    def record_requests(
        self, kind: str, status: int | str, latency_s: float | None, t_s: float, count: int
    ) -> None:
        """``count`` identical request outcomes (a simulated cohort's), as ``record_request``."""
        if count <= 0:
            return
        kind_stats = self.requests.get(kind)
        if kind_stats is None:
            kind_stats = self.requests[kind] = RequestKindStats()
        key = _status_key(status)
        kind_stats.status_counts[key] = kind_stats.status_counts.get(key, 0) + count
        second = self.timeline.at(t_s)
        second.requests += count
        if key not in _NOT_ERRORS:
            second.errors_by_type[key] = second.errors_by_type.get(key, 0) + count
        if latency_s is not None:
            kind_stats.latency_s.record(latency_s, count)
            kind_stats.latency_sample.record(latency_s, count)
            latencies = (
                second.dvr_request_latency_s if is_dvr_kind(kind) else second.request_latency_s
            )
            latencies.record(latency_s, count)

    def record_sent_over(self, t_s: float, requests: int, retries: int, burst: bool) -> None:
        """``requests`` sent during the second at ``t_s`` (a simulated step), ``retries`` of
        them repeats: spread evenly over its tenths, or (``burst``: synchronised retries) the
        retries all in its first tenth."""
        second = self.timeline.at(t_s)
        fresh = max(requests - retries, 0)
        for tenth in range(10):
            second.request_tenths[tenth] += fresh // 10 + (tenth < fresh % 10)
        if burst:
            second.request_tenths[0] += retries
            second.retry_tenths[0] += retries
            return
        for tenth in range(10):
            share = retries // 10 + (tenth < retries % 10)
            second.request_tenths[tenth] += share
            second.retry_tenths[tenth] += share

    def record_sent(self, t_s: float, retry: bool) -> None:
        """A request leaving a viewer (``retry``: it repeats a failed one), per tenth of a second
        — the retry wave after a fault is measured on these."""
        second = self.timeline.at(t_s)
        tenth = min(9, int((t_s - math.floor(t_s)) * 10))
        second.request_tenths[tenth] += 1
        if retry:
            second.retry_tenths[tenth] += 1

    def record_viewer(self, outcome: ViewerOutcome, count: int = 1, *, dvr: bool = False) -> None:
        """A viewer's outcome: a live viewer's, or (``dvr``) a start-over viewer's."""
        (self.dvr_viewers if dvr else self.viewers).record(outcome, count)

    def record_stall(self, t_s: float) -> None:
        self.timeline.at(t_s).stalls += 1

    def record_live_latency(self, t_s: float, latency_s: float) -> None:
        self.timeline.at(t_s).live_latency_s.record(max(0.0, latency_s))

    def set_active_viewers(self, t_s: float, viewers: int) -> None:
        self.timeline.at(t_s).active_viewers = viewers

    def record_tier_sample(
        self, tier: str, t_s: float, requests_total: float, responses_5xx_total: float
    ) -> None:
        self.tiers.setdefault(tier, TierCounters()).record(t_s, requests_total, responses_5xx_total)

    def set_tier_series(
        self, series_by_tier: Mapping[str, Sequence[tuple[float, float, float]]]
    ) -> None:
        """Tier → [(t_s, requests_total, responses_5xx_total), ...] from the stack's counters."""
        for tier, samples in series_by_tier.items():
            self.tiers[tier] = TierCounters(samples)

    @property
    def total_requests(self) -> int:
        return sum(kind.total for kind in self.requests.values())

    def request_share(self, status_class: str) -> float | None:
        """Share of all requests whose status starts with ``status_class`` (e.g. "5")."""
        total = self.total_requests
        hits = sum(kind.count_where(status_class) for kind in self.requests.values())
        return hits / total if total else None

    def merge(self, other: RunStats) -> None:
        for kind, kind_stats in other.requests.items():
            self.requests.setdefault(kind, RequestKindStats()).merge(kind_stats)
        self.viewers.merge(other.viewers)
        self.dvr_viewers.merge(other.dvr_viewers)
        for tier, counters in other.tiers.items():
            mine = self.tiers.setdefault(tier, TierCounters())
            mine.samples = sorted(mine.samples + counters.samples)
            if counters.cache_lookups is not None:
                mine.cache_lookups = (mine.cache_lookups or 0) + counters.cache_lookups
                mine.cache_hits = (mine.cache_hits or 0) + (counters.cache_hits or 0)
        self.timeline.merge(other.timeline)
        self.indicators.merge(other.indicators)

    def to_dict(self) -> dict[str, Any]:
        out = {
            "requests": {kind: s.to_dict() for kind, s in self.requests.items()},
            "viewers": self.viewers.to_dict(),
            "tiers": {tier: c.to_dict() for tier, c in sorted(self.tiers.items())},
            "timeline": self.timeline.to_dict(),
            "indicators": self.indicators.to_dict(),
        }
        if self.dvr_viewers.counters["viewers"]:  # a run with start-over viewers
            out["dvr_viewers"] = self.dvr_viewers.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunStats:
        stats = cls()
        stats.requests = {
            str(kind): RequestKindStats.from_dict(s) for kind, s in data["requests"].items()
        }
        stats.viewers = ViewerStats.from_dict(data["viewers"])
        if "dvr_viewers" in data:
            stats.dvr_viewers = ViewerStats.from_dict(data["dvr_viewers"])
        stats.tiers = {str(t): TierCounters.from_dict(c) for t, c in data["tiers"].items()}
        stats.timeline = Timeline.from_dict(data["timeline"])
        if "indicators" in data:  # results written before the indicators have none
            stats.indicators = Indicators.from_dict(data["indicators"])
        return stats
