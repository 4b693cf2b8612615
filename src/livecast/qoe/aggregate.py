"""Per-event QoE figures from the CMCD of requests — pure: every request carries its own times
and every question is asked at a ``now`` passed in.

An *event* is the stream a request is for: its id out of the URL path as the origin routes it
(``/live/<stream>/…``; the default stream "main" for ``/live/main.m3u8``, ``/live/<rendition>/…``,
see ``origin.streams``). A *session* is one CMCD ``sid`` (CTA-5004: "A GUID identifying the
current playback session"). Requests without a ``sid`` count as media requests but not as
sessions.

Figures (see docs/qoe.md):

* **sessions** — distinct ``sid`` values; the windowed figure counts those with a request that
  finished in the last :data:`WINDOW` seconds.
* **startup estimate** of a session — from the start of its first CMCD request (the finish time
  minus the request's duration, as the edge logs both) to the *earlier* of (a) the end of its
  last media request (``ot`` a/v/av) flagged ``su`` and (b) the start of its first request
  without ``su``. CTA-5004 ``su``: "the object is needed urgently due to startup … The media
  SHOULD not be rendering when this request is made": the first frame follows the answer to an
  ``su`` request, and a request without ``su`` is sent only once rendering began — both ends are
  upper bounds of the first frame, the earlier is the tighter. A session with no request without
  ``su`` has not started (no estimate).
* **buffer starvations** — requests carrying ``bs`` ("the buffer was starved at some point
  between the prior request and this object request"): a stall flags every request sent while it
  lasts and the first one after it, so they are counted as requests, and the sessions that
  starved are at most the viewers that stalled.
* **bitrate mix** — media requests (``ot`` v or av: video, one per object) and their bytes by
  ``br`` (kbit/s, the rendition's declared bitrate).
* **throughput** — median ``mtp`` (kbit/s, the client's estimate) of requests carrying it.
* **buffer ahead** — median ``bl`` of media requests after startup (s). CMCD v1 has no key for
  the latency behind live: it is not derivable in general (the server does not know the playhead's
  wall-clock time). For a player fetching at the live edge (LL-HLS, a blocking part request as
  soon as a part exists) the buffer ahead of the playhead is a *lower bound* of its latency
  behind live; that bound is what is reported, named for what it is.
"""

from __future__ import annotations

import statistics
from collections import Counter, deque
from dataclasses import dataclass, field

from livecast.qoe.cmcd import Cmcd

WINDOW = 30.0  # seconds: the windowed (metrics) figures look this far back
MAX_SESSIONS = 200_000  # sessions kept per aggregator; later new sessions are counted as dropped
MAX_SAMPLES = 100_000  # windowed samples kept per event
MAX_RUN_SAMPLES = 1_000_000  # whole-run mtp/bl samples kept per event (later ones not kept)
MEDIA = frozenset({"v", "a", "av"})
VIDEO = frozenset({"v", "av"})


@dataclass(frozen=True, slots=True)
class CmcdRequest:
    """One request that carried CMCD: when it ran (seconds, same clock as ``now``), for which
    event, how it was answered, and its CMCD."""

    started: float
    finished: float
    event: str
    status: int
    bytes_sent: int
    cmcd: Cmcd


@dataclass(slots=True)
class SessionState:
    """What one CMCD session's requests told so far (order-independent: min/max only)."""

    event: str
    first_start: float
    last_seen: float
    su_media_end: float | None = None  # end of the last su-flagged media request
    plain_start: float | None = None  # start of the first request without su
    requests: int = 0
    starvations: int = 0

    @property
    def startup_end(self) -> float | None:
        if self.plain_start is None:
            return None
        if self.su_media_end is None:
            return self.plain_start
        return min(self.plain_start, self.su_media_end)

    @property
    def startup(self) -> float | None:
        """The startup estimate (s), None while the session has not started."""
        end = self.startup_end
        return None if end is None else max(0.0, end - self.first_start)


@dataclass(slots=True)
class EventTotals:
    """Cumulative figures of one event (the metrics' counters and the whole-run report)."""

    requests: int = 0
    starvations: int = 0
    media_requests: Counter[int] = field(default_factory=Counter)  # br (kbit/s) → requests
    media_bytes: Counter[int] = field(default_factory=Counter)  # br (kbit/s) → bytes sent
    throughputs: list[int] = field(default_factory=list)  # mtp (kbit/s), whole run
    buffers: list[int] = field(default_factory=list)  # bl (ms) of media requests after startup


@dataclass(frozen=True, slots=True)
class WindowFigures:
    """One event's figures over the last :data:`WINDOW` seconds (the metrics' gauges)."""

    sessions: int
    throughput_kbps: float | None  # median mtp
    startup_s: float | None  # median startup of sessions that started in the window


@dataclass(frozen=True, slots=True)
class RunFigures:
    """One event's whole-run figures (the report and the comparison with the players)."""

    sessions: int
    started_sessions: int
    startup_median_s: float | None
    startup_p90_s: float | None
    starvations: int
    sessions_with_starvation: int
    media_requests_by_bitrate: dict[int, int]  # br kbit/s → video requests
    media_bytes_by_bitrate: dict[int, int]
    throughput_median_kbps: float | None
    buffer_ahead_median_s: float | None  # lower bound of the latency behind live (see above)

    def bitrate_shares(self) -> dict[int, float]:
        """Share of the video requests per ``br``."""
        total = sum(self.media_requests_by_bitrate.values())
        return {br: n / total for br, n in self.media_requests_by_bitrate.items()} if total else {}


def _median(values: list[float] | list[int]) -> float | None:
    return float(statistics.median(values)) if values else None


def _nearest_rank(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q * len(ordered) + 0.5) - 1))]


class QoeAggregator:
    """CMCD requests of one source (edges or origin) folded into per-event QoE figures."""

    def __init__(self, *, window: float = WINDOW, max_sessions: int = MAX_SESSIONS) -> None:
        self.window = window
        self.max_sessions = max_sessions
        self.sessions: dict[str, SessionState] = {}
        self.events: dict[str, EventTotals] = {}
        self.dropped_sessions = 0
        self.malformed = 0  # requests whose CMCD could not be read (counted by the adapters)
        self._throughputs: dict[str, deque[tuple[float, int]]] = {}

    def add(self, request: CmcdRequest) -> None:
        """Fold one request in."""
        cmcd, event = request.cmcd, request.event
        totals = self.events.get(event)
        if totals is None:
            totals = self.events[event] = EventTotals()
        totals.requests += 1
        totals.starvations += cmcd.bs
        if cmcd.ot in VIDEO and cmcd.br is not None:
            totals.media_requests[cmcd.br] += 1
            totals.media_bytes[cmcd.br] += request.bytes_sent
        if cmcd.mtp is not None:
            if len(totals.throughputs) < MAX_RUN_SAMPLES:
                totals.throughputs.append(cmcd.mtp)
            samples = self._throughputs.setdefault(event, deque(maxlen=MAX_SAMPLES))
            samples.append((request.finished, cmcd.mtp))
        after_startup = cmcd.ot in MEDIA and not cmcd.su and cmcd.bl is not None
        if after_startup and cmcd.bl is not None and len(totals.buffers) < MAX_RUN_SAMPLES:
            totals.buffers.append(cmcd.bl)
        if cmcd.sid is not None:
            self._session(cmcd, request)

    def _session(self, cmcd: Cmcd, request: CmcdRequest) -> None:
        key = f"{request.event}\n{cmcd.sid}"
        state = self.sessions.get(key)
        if state is None:
            if len(self.sessions) >= self.max_sessions:
                self.dropped_sessions += 1
                return
            state = self.sessions[key] = SessionState(
                request.event, request.started, request.finished
            )
        state.first_start = min(state.first_start, request.started)
        state.last_seen = max(state.last_seen, request.finished)
        state.requests += 1
        state.starvations += cmcd.bs
        if cmcd.su:
            if cmcd.ot in MEDIA:
                end = state.su_media_end
                state.su_media_end = request.finished if end is None else max(end, request.finished)
        elif state.plain_start is None or request.started < state.plain_start:
            state.plain_start = request.started

    def window_figures(self, now: float) -> dict[str, WindowFigures]:
        """Per event, the figures of the last :attr:`window` seconds before ``now``."""
        since = now - self.window
        seen: Counter[str] = Counter()
        startups: dict[str, list[float]] = {}
        for state in self.sessions.values():
            if since <= state.last_seen:
                seen[state.event] += 1
            end, startup = state.startup_end, state.startup
            if end is not None and startup is not None and since <= end <= now:
                startups.setdefault(state.event, []).append(startup)
        out: dict[str, WindowFigures] = {}
        for event in self.events:
            samples = self._throughputs.get(event, deque())
            while samples and samples[0][0] < since:
                samples.popleft()
            recent = [mtp for at, mtp in samples if at <= now]
            out[event] = WindowFigures(
                sessions=seen[event],
                throughput_kbps=_median(recent),
                startup_s=_median(startups.get(event, [])),
            )
        return out

    def run_figures(self) -> dict[str, RunFigures]:
        """Per event, the whole-run figures."""
        by_event: dict[str, list[SessionState]] = {}
        for state in self.sessions.values():
            by_event.setdefault(state.event, []).append(state)
        out: dict[str, RunFigures] = {}
        for event, totals in self.events.items():
            states = by_event.get(event, [])
            startups = [s.startup for s in states if s.startup is not None]
            buffers = _median(totals.buffers)
            out[event] = RunFigures(
                sessions=len(states),
                started_sessions=len(startups),
                startup_median_s=_median(startups),
                startup_p90_s=_nearest_rank(startups, 0.9),
                starvations=totals.starvations,
                sessions_with_starvation=sum(1 for s in states if s.starvations),
                media_requests_by_bitrate=dict(sorted(totals.media_requests.items())),
                media_bytes_by_bitrate=dict(sorted(totals.media_bytes.items())),
                throughput_median_kbps=_median(totals.throughputs),
                buffer_ahead_median_s=None if buffers is None else buffers / 1000,
            )
        return out
