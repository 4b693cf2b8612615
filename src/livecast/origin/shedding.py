"""Load shedding by priority — pure: no clock reads (``now`` is passed in), no I/O.

Design brief §5: "An origin that sheds load answers 503 with a short max-age so the edge caches the
refusal instead of retrying (Netflix's live origin does this, with live-edge traffic prioritised
over DVR)"; §9: "Netflix's live origin answers low-priority (DVR) requests with 503 + max-age=5
under storage load so the CDN caches the refusal". Issue 15: over capacity the origin answers the
lowest class first, in the order DVR/VOD < classic live segments < LL-HLS live-edge parts and
playlists.

* :class:`Priority` — the request classes, lowest (shed first) to highest; :func:`classify` reads
  them off a request's raw path and query, decoding the path exactly as the router does
  (``origin.streams``) and reading ``start``/``end`` and ``_HLS_msn`` as ``origin.dvr`` and
  ``hls.directives`` do. It never raises: a path the router cannot serve is ``classic``.
* :class:`Headroom` — what the adapter measures: the event loop's lag (how late its periodic
  sweep timer fires), a sample per tick. Every request that arrives waits about that long before
  the loop reads it, so the lag is the origin's queue delay. The estimate is the p90 of the
  samples of the last ``window`` seconds: one GC pause does not shed anything, a loop that stays
  late does.
* :class:`Shedder` — thresholds per class with hysteresis: a class is shed once the estimate is
  above its threshold, and served again only once the estimate has fallen below ``recover`` × the
  threshold *and* ``hold`` seconds passed since it was last above it (no flapping). The shed
  classes are always the lowest ones (the thresholds rise with the priority), so the state is one
  number, :attr:`Shedder.level`: requests whose priority is below it are shed. The 503 of each
  class is built once (``Cache-Control: public, max-age=N``, ``Retry-After: N``,
  ``shed: <class>``), so that an edge caches the refusal for N seconds and collapses identical
  requests meanwhile (docs/edge.md, "Load shedding").
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, fields
from enum import IntEnum

from livecast.errors import ConfigError
from livecast.origin.contract import Response
from livecast.origin.streams import decode_path, parse_live_path
from livecast.telemetry.metrics import CounterCell, GaugeCell, Registry

MAX_SAMPLES = 1024  # per window: a bound, whatever the tick rate


class Priority(IntEnum):
    """Request classes, lowest first: a lower class is shed before a higher one."""

    DVR = 0  # start-over / DVR / VOD ranges (``start=``/``end=``) and recording.json
    CLASSIC = 1  # segments and anything else the router serves (static files, 404s)
    LIVE_EDGE = 2  # parts, blocking reloads (_HLS_msn), init segments, the multivariant

    @property
    def label(self) -> str:
        """``dvr``, ``classic`` or ``live_edge`` (the ``class`` label of the metrics)."""
        return self.name.lower()


def _query_names(query: str) -> set[str]:
    """The argument names of a raw query string (not decoded, as the origin's parsers read them)."""
    return {pair.partition("=")[0] for pair in query.split("&")} if query else set()


def classify(path: str, query: str) -> Priority:
    """The class of a request for the raw (still percent-encoded) ``path`` and ``query``.

    ``/metrics`` is ``live_edge``: an overloaded origin must still be observable.
    """
    if path == "/metrics":
        return Priority.LIVE_EDGE
    decoded = decode_path(path)
    live = None if decoded is None else parse_live_path(decoded)
    if live is None:  # static files, 404s
        return Priority.CLASSIC
    if live.file == "recording.json":
        return Priority.DVR
    if live.file in ("main.m3u8", "index.m3u8"):
        names = _query_names(query)
        if "start" in names or "end" in names:  # a recorded range (origin.dvr.parse_range)
            return Priority.DVR
        # the live playlists, blocking or plain: a viewer's start (its first reload is plain)
        # and its live edge — the "LL-HLS live-edge parts and playlists"
        return Priority.LIVE_EDGE
    if live.file == "seg":
        return Priority.CLASSIC
    return Priority.LIVE_EDGE  # "part" (hinted or not) and "init"


@dataclass(frozen=True, slots=True)
class SheddingConfig:
    """The ``[shedding]`` table of the event file (docs/edge.md, "Load shedding").

    Thresholds are the p90 event-loop lag, in milliseconds, above which a class is shed;
    ``inf`` never sheds it. They must rise with the priority.
    """

    enabled: bool = False
    dvr_ms: float = 20.0
    classic_ms: float = 50.0
    live_edge_ms: float = math.inf  # live-edge parts and playlists are never shed
    recover: float = 0.5  # a shed class is served again below recover × its threshold …
    hold: float = 2.0  # … and this many seconds after the lag was last above it
    window: float = 1.0  # seconds of lag samples behind the p90
    dvr_max_age: int = 2  # Cache-Control max-age and Retry-After of the 503, per class
    classic_max_age: int = 1
    live_edge_max_age: int = 1

    def validate(self) -> SheddingConfig:
        thresholds = self.thresholds_ms()
        for name, value in zip(("dvr_ms", "classic_ms", "live_edge_ms"), thresholds, strict=True):
            if math.isnan(value) or value < 0:
                raise ConfigError(f"shedding.{name}", f"{value} is not a lag in ms (or inf)")
        if sorted(thresholds) != list(thresholds):
            raise ConfigError(
                "shedding.classic_ms", "thresholds must rise: dvr_ms ≤ classic_ms ≤ live_edge_ms"
            )
        if not 0 <= self.recover <= 1:
            raise ConfigError("shedding.recover", f"{self.recover} is outside 0–1")
        for name in ("hold", "window"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"shedding.{name}", f"{value} is not a positive duration")
        for name in ("dvr_max_age", "classic_max_age", "live_edge_max_age"):
            if not 1 <= getattr(self, name) <= 3600:
                raise ConfigError(f"shedding.{name}", f"{getattr(self, name)} is outside 1–3600")
        return self

    def thresholds_ms(self) -> tuple[float, float, float]:
        """By priority (dvr, classic, live_edge)."""
        return (self.dvr_ms, self.classic_ms, self.live_edge_ms)

    def max_ages(self) -> tuple[int, int, int]:
        return (self.dvr_max_age, self.classic_max_age, self.live_edge_max_age)


FIELDS = tuple(f.name for f in fields(SheddingConfig))


def shed_response(priority: Priority, max_age: int) -> Response:
    """The 503 a shed request of ``priority`` gets: cacheable by the edges for ``max_age``."""
    return Response(
        503,
        f"shed: {priority.label}\n".encode(),
        cache_control=f"public, max-age={max_age}",
        object_type="playlist-dvr" if priority is Priority.DVR else "other",
        extra_headers=(("Retry-After", str(max_age)),),
    )


class Headroom:
    """The p90 of the lag samples of the last ``window`` seconds (0 without samples)."""

    def __init__(self, window: float) -> None:
        self.window = window
        self._samples: deque[tuple[float, float]] = deque(maxlen=MAX_SAMPLES)

    def observe(self, lag: float, now: float) -> float:
        """Add a sample (seconds; negative counts as 0) taken at ``now``; the new estimate."""
        samples = self._samples
        samples.append((now, max(0.0, lag)))
        horizon = now - self.window
        while samples[0][0] < horizon:
            samples.popleft()
        return self.estimate()

    def estimate(self) -> float:
        if not self._samples:
            return 0.0
        lags = sorted(lag for _, lag in self._samples)
        return lags[min(len(lags) - 1, int(0.9 * len(lags)))]


class Shedder:
    """Which classes to shed, from lag samples; their 503s and per-class counters."""

    def __init__(self, config: SheddingConfig, registry: Registry | None = None) -> None:
        self.config = config.validate()
        self.headroom = Headroom(config.window)
        self.level = 0  # requests with a priority below this are shed
        self._thresholds = tuple(ms / 1000 for ms in config.thresholds_ms())
        self._last_over: list[float | None] = [None] * len(Priority)  # None: not shed
        self.responses = tuple(
            shed_response(p, age) for p, age in zip(Priority, config.max_ages(), strict=True)
        )
        registry = registry or Registry()
        counter = registry.counter(
            "livecast_origin_shed_total", "Requests answered 503 by load shedding.", ("class",)
        )
        self.counts: tuple[CounterCell, ...] = tuple(counter.labels(p.label) for p in Priority)
        self._lag: GaugeCell = registry.gauge(
            "livecast_origin_loop_lag_seconds", "p90 event-loop lag (load shedding's estimate)."
        ).labels()
        self._level: GaugeCell = registry.gauge(
            "livecast_origin_shed_level", "Classes being shed (0: none, 1: dvr, 2: +classic, …)."
        ).labels()

    def observe(self, lag: float, now: float) -> int:
        """A lag sample (seconds) at ``now``: update and return :attr:`level`."""
        estimate = self.headroom.observe(lag, now)
        self._lag.set(estimate)
        hold, recover = self.config.hold, self.config.recover
        level = 0
        for priority, threshold in enumerate(self._thresholds):
            last = self._last_over[priority]
            if estimate > threshold:
                self._last_over[priority] = now
            elif last is not None and estimate < recover * threshold and now - last >= hold:
                self._last_over[priority] = None
            if self._last_over[priority] is not None:
                level = priority + 1
        self.level = level
        self._level.set(level)
        return level

    def check(self, path: str, query: str) -> Response | None:
        """The 503 for a request while shedding (counted), None to serve it."""
        priority = classify(path, query)
        if priority >= self.level:
            return None
        self.counts[priority].value += 1
        return self.responses[priority]

    def check_target(self, target: bytes) -> Response | None:
        """:meth:`check` for a raw origin-form request target (``/path?query``); None for any
        other form (the caller parses it and asks :meth:`check`)."""
        if target[:1] != b"/":
            return None
        path, _, query = target.partition(b"?")
        return self.check(path.decode("latin-1"), query.decode("latin-1"))


def make_shedder(config: SheddingConfig | None, registry: Registry) -> Shedder | None:
    """A shedder when ``config`` enables shedding, else None (the adapter skips it)."""
    return Shedder(config, registry) if config is not None and config.enabled else None
