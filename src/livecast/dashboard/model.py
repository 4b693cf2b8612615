"""The dashboard's figures from Prometheus scrapes — the pure core of ``livecast dashboard``.

Scrapes go in as text with the caller's ``now`` (seconds on any clock that only goes forward);
one :class:`Point` a tick comes out, kept in a bounded history (:data:`HISTORY_POINTS`, 10 min at
one tick a second). No I/O, no clock.

    model = DashboardModel()
    model.observe("http://127.0.0.1:9100/metrics", text, now)   # each scrape
    model.failed("http://127.0.0.1:9200/edge/metrics", now)     # a scrape that did not answer
    point = model.tick(now)                                     # once a second → the page

What is read (names as the processes expose them; sources are told apart by what they hold, so
any set of endpoints can be scraped):

* the rehearsal driver's ``livecast_rehearsal_*``: viewers playing (gauge, summed over sources),
  startup p50/p95 (``histogram_quantile`` over the last :data:`STARTUP_WINDOW` s of the startup
  histogram), latency behind live p50/p95 (last :data:`LATENCY_WINDOW` s), rebuffering ratio
  (rebuffer seconds per viewer-second over :data:`LATENCY_WINDOW`), the viewers' req/s and
  errors/s;
* the origin's ``livecast_origin_requests_total{type,status}``: tier ``origin``'s req/s, 4xx/s,
  5xx/s;
* the nginx tiers' ``livecast_edge_requests_total{tier,kind,cache,code}``: the same per ``tier``
  label, the edge hit ratio (``cache`` HIT, STALE, UPDATING or REVALIDATED among the lookups of
  the tiers not named ``shield…``) and the origin offload: 1 − the origin's media and playlist
  req/s ÷ the edges' (tiers ``edge-…``, kinds playlist, part, segment, init) — the origin's own
  scrapes and the shield left out, as the Grafana dashboard (``telemetry/dashboard.py``) does;
* the origin's CMCD figures ``livecast_qoe_*{event,source}`` (what real players report): the
  edges' view (``source="edge"``) when there is one, else the origin's — sessions (summed over
  events), the slowest event's startup and throughput medians, buffer starvations per second and
  the mean bitrate of the media requested.

Counters become rates the way Prometheus' ``rate()`` does: per series, a value lower than the
previous one is a reset (the process restarted) and counts from zero; the increase over a window
is divided by the time between the first and the last scrape in it. Histogram quantiles follow
``histogram_quantile``: linear interpolation inside the bucket the rank falls in, the highest
finite bound when it falls in ``+Inf``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from livecast.results.scrape import PrometheusSample, parse_prometheus_text

HISTORY_POINTS = 600  # ticks kept (10 min at one a second)
RATE_WINDOW = 5.0  # seconds: req/s, errors/s, hit ratio, offload
LATENCY_WINDOW = 10.0  # seconds: latency quantiles, rebuffering ratio
STARTUP_WINDOW = 30.0  # seconds: startup quantiles (viewers start in waves)
STALE_AFTER = 5.0  # seconds: a source not scraped since is left out of the gauges
KEPT = max(RATE_WINDOW, LATENCY_WINDOW, STARTUP_WINDOW) + 2.0  # seconds of scrapes kept

VIEWERS = "livecast_rehearsal_viewers"
REHEARSAL_REQUESTS = "livecast_rehearsal_requests_total"
REHEARSAL_ERRORS = "livecast_rehearsal_request_errors_total"
REBUFFER = "livecast_rehearsal_rebuffer_seconds_total"
STARTUP = "livecast_rehearsal_startup_seconds"
LATENCY = "livecast_rehearsal_latency_seconds"
ORIGIN_REQUESTS = "livecast_origin_requests_total"
EDGE_REQUESTS = "livecast_edge_requests_total"
QOE_SESSIONS = "livecast_qoe_sessions"
QOE_STARVATIONS = "livecast_qoe_buffer_starvations_total"
QOE_MEDIA = "livecast_qoe_media_requests_total"
QOE_THROUGHPUT = "livecast_qoe_throughput_bits_per_second"
QOE_STARTUP = "livecast_qoe_startup_seconds"
CACHE_HITS = frozenset({"HIT", "STALE", "UPDATING", "REVALIDATED"})
EDGE_MEDIA = frozenset({"playlist", "part", "segment", "init"})  # the edges' object kinds
ORIGIN_MEDIA = frozenset({"multivariant", "part", "segment", "init"})  # and playlist-*
NO_LOOKUP = frozenset({"", "none", "-", "BYPASS"})  # not a cache lookup

Labels = tuple[tuple[str, str], ...]
SeriesKey = tuple[str, Labels]


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """The ``q`` quantile (0–1) of cumulative ``(le, count)`` buckets, as Prometheus'
    ``histogram_quantile``; None with no observations or no ``+Inf`` bucket."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile {q} is not within [0, 1]")
    ordered = sorted(buckets)
    if not ordered or not math.isinf(ordered[-1][0]):
        return None
    total = ordered[-1][1]
    if total <= 0:
        return None
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for le, count in ordered:
        if count >= rank and count > lower_count:
            if math.isinf(le):
                return lower_bound if len(ordered) > 1 else None
            if le <= 0:
                return le
            return lower_bound + (le - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = le, max(lower_count, count)
    return lower_bound


@dataclass(frozen=True, slots=True)
class TierRates:
    """One tier's requests per second and its 4xx/5xx answers per second."""

    requests_per_s: float
    client_errors_per_s: float
    server_errors_per_s: float

    def to_dict(self) -> dict[str, float]:
        return {
            "rps": round(self.requests_per_s, 3),
            "4xx": round(self.client_errors_per_s, 3),
            "5xx": round(self.server_errors_per_s, 3),
        }


@dataclass(frozen=True, slots=True)
class CmcdFigures:
    """What real players tell through CMCD (the origin's ``livecast_qoe_*``), from the edges'
    access logs when they are there (``source="edge"``), else from the origin's requests."""

    source: str  # "edge" or "origin"
    sessions: float  # distinct CMCD sessions in the last 30 s, all events
    startup_s: float | None  # the slowest event's median startup estimate
    throughput_bps: float | None  # the slowest event's median measured throughput
    starvations_per_s: float | None  # requests flagged buffer-starved, per second
    mean_bitrate_kbps: float | None  # of the media requested (the bitrate mix)

    def to_dict(self) -> dict[str, Any]:
        def r(value: float | None) -> float | None:
            return None if value is None else round(value, 4)

        return {
            "source": self.source,
            "sessions": r(self.sessions),
            "startup_s": r(self.startup_s),
            "throughput_bps": r(self.throughput_bps),
            "starvations_per_s": r(self.starvations_per_s),
            "mean_bitrate_kbps": r(self.mean_bitrate_kbps),
        }


@dataclass(frozen=True, slots=True)
class Point:
    """The dashboard's figures at one tick; None where nothing measured them."""

    t: float
    viewers: float | None = None
    startup_p50: float | None = None
    startup_p95: float | None = None
    latency_p50: float | None = None
    latency_p95: float | None = None
    rebuffering_ratio: float | None = None
    viewer_requests_per_s: float | None = None
    viewer_errors_per_s: float | None = None
    origin_offload: float | None = None
    edge_hit_ratio: float | None = None
    tiers: dict[str, TierRates] = field(default_factory=dict)
    cmcd: CmcdFigures | None = None

    def to_dict(self) -> dict[str, Any]:
        def r(value: float | None) -> float | None:
            return None if value is None else round(value, 4)

        return {
            "t": round(self.t, 3),
            "viewers": r(self.viewers),
            "startup_p50": r(self.startup_p50),
            "startup_p95": r(self.startup_p95),
            "latency_p50": r(self.latency_p50),
            "latency_p95": r(self.latency_p95),
            "rebuffering_ratio": r(self.rebuffering_ratio),
            "viewer_rps": r(self.viewer_requests_per_s),
            "viewer_errors_per_s": r(self.viewer_errors_per_s),
            "origin_offload": r(self.origin_offload),
            "edge_hit_ratio": r(self.edge_hit_ratio),
            "tiers": {name: rates.to_dict() for name, rates in sorted(self.tiers.items())},
            "cmcd": None if self.cmcd is None else self.cmcd.to_dict(),
        }


@dataclass(slots=True)
class _Scrape:
    at: float
    gauges: dict[SeriesKey, float]  # as scraped
    counters: dict[SeriesKey, float]  # reset-corrected cumulative values


class _Source:
    """One endpoint's recent scrapes, its counters corrected for resets."""

    __slots__ = ("errors", "last_raw", "scrapes")

    def __init__(self) -> None:
        self.scrapes: deque[_Scrape] = deque()
        self.last_raw: dict[SeriesKey, float] = {}
        self.errors = 0

    def add(self, samples: Iterable[PrometheusSample], now: float) -> None:
        if self.scrapes and now < self.scrapes[-1].at:
            raise ValueError(f"scrape at {now} is older than the last one ({self.scrapes[-1].at})")
        previous = self.scrapes[-1].counters if self.scrapes else {}
        gauges: dict[SeriesKey, float] = {}
        counters: dict[SeriesKey, float] = {}
        raw: dict[SeriesKey, float] = {}
        for sample in samples:
            key = (sample.name, sample.labels)
            if not _is_counter(sample.name):
                gauges[key] = sample.value
                continue
            value = sample.value
            if math.isnan(value):
                continue
            last = self.last_raw.get(key)
            # a new series counts what it holds; a lower value is a reset: counted from zero
            increase = value if last is None or value < last else value - last
            counters[key] = previous.get(key, 0.0) + increase
            raw[key] = value
        self.last_raw = raw
        self.scrapes.append(_Scrape(now, gauges, counters))
        while len(self.scrapes) > 2 and now - self.scrapes[1].at > KEPT:
            self.scrapes.popleft()

    def window(self, now: float, seconds: float) -> tuple[_Scrape, _Scrape] | None:
        """The oldest scrape within ``seconds`` of ``now`` (or just before) and the newest."""
        if len(self.scrapes) < 2 or now - self.scrapes[-1].at > STALE_AFTER:
            return None
        newest = self.scrapes[-1]
        oldest = self.scrapes[0]
        for scrape in self.scrapes:
            if scrape.at >= now - seconds:
                break
            oldest = scrape
        return (oldest, newest) if newest.at > oldest.at else None


def _is_counter(name: str) -> bool:
    """Counters, and a histogram's ``_bucket``/``_sum``/``_count`` (cumulative too)."""
    return name.endswith(("_total", "_bucket", "_count", "_sum"))


Select = Callable[[str, Labels], str | None]  # a series → its group, or None: not wanted


class DashboardModel:
    """Scrapes of any number of endpoints in; a :class:`Point` per :meth:`tick` out."""

    def __init__(self, history: int = HISTORY_POINTS) -> None:
        self.sources: dict[str, _Source] = {}
        self.history: deque[Point] = deque(maxlen=history)

    def observe(self, source: str, text: str, now: float) -> None:
        """One scrape of ``source`` (its Prometheus text) at ``now``; ValueError if malformed."""
        samples = parse_prometheus_text(text)
        self.sources.setdefault(source, _Source()).add(samples, now)

    def failed(self, source: str, now: float) -> None:
        """A scrape of ``source`` that failed (counted; its figures go stale)."""
        self.sources.setdefault(source, _Source()).errors += 1

    def scrape_errors(self) -> dict[str, int]:
        return {name: source.errors for name, source in self.sources.items() if source.errors}

    def tick(self, now: float) -> Point:
        """The figures at ``now``, appended to :attr:`history`."""
        requests = self._rate(now, RATE_WINDOW, _named(REHEARSAL_REQUESTS))
        errors = self._rate(now, RATE_WINDOW, _named(REHEARSAL_ERRORS))
        viewers = self._gauge(now, VIEWERS)
        rebuffer = self._rate(now, LATENCY_WINDOW, _named(REBUFFER))
        ratio = None
        if rebuffer is not None and viewers:
            ratio = min(1.0, rebuffer.get("all", 0.0) / viewers)
        tiers = self._tiers(now)
        point = Point(
            t=now,
            viewers=viewers,
            startup_p50=self._quantile(now, STARTUP, 0.50, STARTUP_WINDOW),
            startup_p95=self._quantile(now, STARTUP, 0.95, STARTUP_WINDOW),
            latency_p50=self._quantile(now, LATENCY, 0.50, LATENCY_WINDOW),
            latency_p95=self._quantile(now, LATENCY, 0.95, LATENCY_WINDOW),
            rebuffering_ratio=ratio,
            viewer_requests_per_s=None if requests is None else requests.get("all", 0.0),
            viewer_errors_per_s=None if errors is None else errors.get("all", 0.0),
            origin_offload=self._offload(now),
            edge_hit_ratio=self._hit_ratio(now),
            tiers=tiers,
            cmcd=self._cmcd(now),
        )
        self.history.append(point)
        return point

    # ------------------------------------------------------------------ reading
    def _gauge(self, now: float, name: str) -> float | None:
        """Sum of gauge ``name`` over the fresh sources that expose it."""
        values = [
            value
            for source in self.sources.values()
            if source.scrapes and now - source.scrapes[-1].at <= STALE_AFTER
            for (metric, _), value in source.scrapes[-1].gauges.items()
            if metric == name
        ]
        return sum(values) if values else None

    def _gauges(self, now: float, name: str) -> list[tuple[dict[str, str], float]]:
        """Every series of gauge ``name`` in the fresh sources: (labels, value)."""
        return [
            (dict(labels), value)
            for source in self.sources.values()
            if source.scrapes and now - source.scrapes[-1].at <= STALE_AFTER
            for (metric, labels), value in source.scrapes[-1].gauges.items()
            if metric == name
        ]

    def _cmcd(self, now: float) -> CmcdFigures | None:
        """The CMCD figures, from the edges' view when there is one; None without any."""
        sessions = self._gauges(now, QOE_SESSIONS)
        if not sessions:
            return None
        source = (
            "edge" if any(labels.get("source") == "edge" for labels, _ in sessions) else "origin"
        )

        def mine(series: list[tuple[dict[str, str], float]]) -> list[float]:
            return [
                v for labels, v in series if labels.get("source") == source and not math.isnan(v)
            ]

        startup = mine(self._gauges(now, QOE_STARTUP))
        throughput = [v for v in mine(self._gauges(now, QOE_THROUGHPUT)) if v > 0]

        def starved(metric: str, labels: Labels) -> str | None:
            ok = metric == QOE_STARVATIONS and dict(labels).get("source") == source
            return "all" if ok else None

        def bitrate(metric: str, labels: Labels) -> str | None:
            label = dict(labels)
            if metric != QOE_MEDIA or label.get("source") != source:
                return None
            return label.get("bitrate_kbps")

        starvations = self._rate(now, RATE_WINDOW, starved)
        mix = self._rate(now, RATE_WINDOW, bitrate) or {}
        weighted = [(float(kbps), rate) for kbps, rate in mix.items() if _is_number(kbps)]
        total = sum(rate for _, rate in weighted)
        return CmcdFigures(
            source=source,
            sessions=sum(mine(sessions)),
            startup_s=max(startup, default=None),
            throughput_bps=min(throughput, default=None),
            starvations_per_s=None if starvations is None else starvations.get("all", 0.0),
            mean_bitrate_kbps=sum(k * r for k, r in weighted) / total if total > 0 else None,
        )

    def _rate(self, now: float, seconds: float, select: Select) -> dict[str, float] | None:
        """Per group, the summed per-second increase of the selected counters over the last
        ``seconds``; None when no source has two scrapes of them in the window."""
        rates: dict[str, float] = {}
        found = False
        for source in self.sources.values():
            span = source.window(now, seconds)
            if span is None:
                continue
            oldest, newest = span
            elapsed = newest.at - oldest.at
            for key, value in newest.counters.items():
                group = select(*key)
                if group is None:
                    continue
                found = True
                increase = value - oldest.counters.get(key, 0.0)
                rates[group] = rates.get(group, 0.0) + increase / elapsed
        return rates if found else None

    def _quantile(self, now: float, name: str, q: float, seconds: float) -> float | None:
        bucket = name + "_bucket"

        def select(metric: str, labels: Labels) -> str | None:
            return dict(labels).get("le") if metric == bucket else None

        rates = self._rate(now, seconds, select)
        if not rates:
            return None
        buckets = [(_parse_le(le), rate) for le, rate in rates.items()]
        return histogram_quantile(q, buckets)

    def _tiers(self, now: float) -> dict[str, TierRates]:
        def origin(metric: str, labels: Labels) -> str | None:
            if metric != ORIGIN_REQUESTS:
                return None
            return "origin\t" + _status_class(dict(labels).get("status", ""))

        def edges(metric: str, labels: Labels) -> str | None:
            if metric != EDGE_REQUESTS:
                return None
            label = dict(labels)
            return label.get("tier", "edge") + "\t" + _status_class(label.get("code", ""))

        tiers: dict[str, list[float]] = {}
        for select in (origin, edges):
            for group, rate in (self._rate(now, RATE_WINDOW, select) or {}).items():
                tier, status = group.split("\t")
                figures = tiers.setdefault(tier, [0.0, 0.0, 0.0])
                figures[0] += rate
                if status == "4":
                    figures[1] += rate
                elif status == "5":
                    figures[2] += rate
        return {tier: TierRates(*figures) for tier, figures in tiers.items()}

    def _offload(self, now: float) -> float | None:
        """1 − origin media/playlist req/s ÷ the edges' (None without edge traffic)."""
        origin = self._rate(now, RATE_WINDOW, _origin_media)
        edges = self._rate(now, RATE_WINDOW, _edge_media)
        if origin is None or edges is None or edges.get("edge", 0.0) <= 0:
            return None
        return max(0.0, min(1.0, 1.0 - origin.get("origin", 0.0) / edges["edge"]))

    def _hit_ratio(self, now: float) -> float | None:
        def select(metric: str, labels: Labels) -> str | None:
            if metric != EDGE_REQUESTS:
                return None
            label = dict(labels)
            if label.get("tier", "").startswith("shield"):
                return None
            cache = label.get("cache", "none")
            if cache in NO_LOOKUP:
                return None
            return "hit" if cache in CACHE_HITS else "miss"

        rates = self._rate(now, RATE_WINDOW, select)
        if not rates:
            return None
        lookups = rates.get("hit", 0.0) + rates.get("miss", 0.0)
        return rates.get("hit", 0.0) / lookups if lookups > 0 else None


def _origin_media(metric: str, labels: Labels) -> str | None:
    if metric != ORIGIN_REQUESTS:
        return None
    kind = dict(labels).get("type", "")
    return "origin" if kind in ORIGIN_MEDIA or kind.startswith("playlist-") else None


def _edge_media(metric: str, labels: Labels) -> str | None:
    if metric != EDGE_REQUESTS:
        return None
    label = dict(labels)
    if not label.get("tier", "").startswith("edge-") or label.get("kind") not in EDGE_MEDIA:
        return None
    return "edge"


def _named(name: str) -> Select:
    def select(metric: str, labels: Labels) -> str | None:
        return "all" if metric == name else None

    return select


def _status_class(code: str) -> str:
    """``"404"`` or ``"4xx"`` → ``"4"``."""
    return code[:1] if code[:1].isdigit() else "?"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _parse_le(text: str) -> float:
    if text in ("+Inf", "Inf", "inf"):
        return math.inf
    return float(text)
