"""The probe's LL-HLS client — sans-IO, in the manner of h11 and aioquic.

A :class:`ProbeSession` is told what happened (``on_multivariant``, ``on_playlist``, ``on_part``,
``on_error``, ``on_tick``) and answers with the :class:`ProbeRequest` objects to send next. Time is
passed in as ``now`` (wall-clock epoch seconds, the clock EXT-X-PROGRAM-DATE-TIME is written in);
nothing here opens a socket or reads a clock. The asyncio adapter is ``probe.client``.

How it follows a stream:
  * join: multivariant playlist → the variant chosen by ``rendition`` (a URI prefix such as
    ``720p`` or a resolution such as ``1280x720``; default the first listed, i.e. the highest) →
    its media playlist (a media playlist URL is accepted directly);
  * start at the live edge: the newest INDEPENDENT=YES part, then every newer listed part, then the
    EXT-X-PRELOAD-HINT part (requested at once: the origin holds it until it is complete);
  * follow with blocking reloads ``_HLS_msn=M&_HLS_part=N`` for the part after the newest listed
    one (after a segment's last part: part 0 of M + 1) — each answer queues the new parts and hint.

Requests run on two lanes, ``playlist`` and ``part``, each with at most one request in flight, so
an adapter needs two connections.

Measures: startup (start → first part in hand); per part, glass-to-glass latency = time received −
capture time of the part's media end (its segment's PDT + the durations of the parts before it in
the segment + its own); requests, bytes, errors by status, and how long each blocking reload waited.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

from livecast.errors import PlaylistError, ProbeError
from livecast.hls.playlist import (
    MediaPlaylist,
    parse_media_playlist,
    parse_multivariant_playlist,
)
from livecast.hls.tags import StreamInf
from livecast.results.histogram import interpolated_percentile as percentile

JOIN_TIMEOUT = 5.0  # multivariant, first media playlist, init segments
JOIN_RETRIES = 5  # 503 while the event is starting
MAX_CONSECUTIVE_ERRORS = 6  # per lane, while following
HOLD_MARGIN = 2.0  # seconds beyond the server's 3 × TD hold limit before the client gives up
_KEEP_SEGMENTS = 12  # part timings remembered behind the newest segment


def summarize(values: Sequence[float]) -> dict[str, float] | None:
    """p50/p95/max of ``values`` (None when empty)."""
    if not values:
        return None
    return {"p50": percentile(values, 50), "p95": percentile(values, 95), "max": max(values)}


def select_variant(variants: Sequence[StreamInf], rendition: str | None) -> StreamInf:
    """The first variant, or the one whose URI starts with / resolution equals ``rendition``."""
    if not variants:
        raise ProbeError("the multivariant playlist lists no variant")
    if rendition is None:
        return variants[0]
    for variant in variants:
        if variant.resolution and f"{variant.resolution[0]}x{variant.resolution[1]}" == rendition:
            return variant
    for variant in variants:
        if variant.uri.startswith(rendition):
            return variant
    names = ", ".join(v.uri for v in variants)
    raise ProbeError(f"no variant matches {rendition!r} (there are: {names})")


def directive_url(url: str, msn: int, part: int) -> str:
    """``url`` with ``_HLS_msn``/``_HLS_part`` (replacing any directives already there)."""
    split = urlsplit(url)
    kept = [p for p in split.query.split("&") if p and not p.startswith("_HLS_")]
    kept += [f"_HLS_msn={msn}", f"_HLS_part={part}"]
    return urlunsplit(split._replace(query="&".join(kept), fragment=""))


@dataclass(frozen=True, slots=True)
class ProbeRequest:
    kind: str  # "multivariant", "playlist", "init" or "part"
    url: str
    timeout: float  # seconds the adapter waits for the whole response
    delay: float = 0.0  # seconds to wait before sending (retry back-off, polling)
    msn: int | None = None  # blocking-reload directives (already in ``url``)
    part: int | None = None

    @property
    def lane(self) -> str:
        return "part" if self.kind in ("init", "part") else "playlist"


@dataclass(frozen=True, slots=True)
class _PartTiming:
    msn: int
    index: int
    capture_end: float | None  # epoch seconds; None without any PDT


@dataclass(slots=True)
class ProbeReport:
    url: str
    media_url: str | None
    seconds: float  # how long the session ran
    ok: bool
    error: str | None
    startup: float | None
    parts: int
    bytes: int
    requests: int
    errors: dict[str, int]
    latency: dict[str, float] | None
    blocking_wait: dict[str, float] | None
    max_part_gap: float | None  # longest time between two parts after the first
    target_duration: int | None
    part_target: float | None
    latencies: list[float] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "media_url": self.media_url,
            "seconds": round(self.seconds, 3),
            "ok": self.ok,
            "error": self.error,
            "startup_s": _round(self.startup),
            "parts": self.parts,
            "bytes": self.bytes,
            "requests": self.requests,
            "errors": dict(self.errors),
            "latency_s": _round_all(self.latency),
            "blocking_wait_s": _round_all(self.blocking_wait),
            "max_part_gap_s": _round(self.max_part_gap),
            "target_duration": self.target_duration,
            "part_target": self.part_target,
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _round_all(values: dict[str, float] | None) -> dict[str, float] | None:
    return None if values is None else {k: round(v, 4) for k, v in values.items()}


class ProbeSession:
    """State of one probe; see the module docstring. Call :meth:`start` first."""

    def __init__(self, url: str, rendition: str | None = None) -> None:
        self.url = url
        self.rendition = rendition
        self.media_url: str | None = None
        self.playlist: MediaPlaylist | None = None
        self.started_at: float | None = None
        self.startup: float | None = None
        self.error: str | None = None
        self.ended = False  # EXT-X-ENDLIST seen
        self.requests = 0
        self.bytes = 0
        self.parts = 0
        self.errors: dict[str, int] = {}
        self.latencies: list[float] = []
        self.blocking_waits: list[float] = []
        self.part_gaps: list[float] = []
        # lane → (request in flight, when it was sent)
        self._busy: dict[str, tuple[ProbeRequest, float] | None] = {"playlist": None, "part": None}
        self._part_queue: deque[ProbeRequest] = deque()
        self._timing: dict[str, _PartTiming] = {}
        self._pending_latency: dict[str, float] = {}  # part URL → received at, timing unknown
        self._queued_until: tuple[int, int] | None = None  # newest part position queued
        self._maps: set[str] = set()
        self._join_attempts = 0
        self._consecutive = {"playlist": 0, "part": 0}
        self._last_part_at: float | None = None

    # ------------------------------------------------------------------ configuration
    @property
    def target_duration(self) -> int | None:
        return self.playlist.target_duration if self.playlist else None

    @property
    def part_target(self) -> float | None:
        pl = self.playlist
        return pl.part_inf.part_target if pl and pl.part_inf else None

    @property
    def hold_timeout(self) -> float:
        td = self.target_duration or 2
        return 3 * td + HOLD_MARGIN

    @property
    def stall_limit(self) -> float:
        """No new part for this long while following is a failure."""
        return self.hold_timeout + 1.0

    @property
    def finished(self) -> bool:
        return self.ended or self.error is not None

    # ------------------------------------------------------------------ events
    def start(self, now: float) -> list[ProbeRequest]:
        self.started_at = now
        return self._issue([ProbeRequest("multivariant", self.url, JOIN_TIMEOUT)], now)

    def on_multivariant(self, text: str, now: float) -> list[ProbeRequest]:
        busy = self._complete("playlist", len(text))
        if "#EXT-X-TARGETDURATION" in text:  # the URL named a media playlist
            self.media_url = self.url
            return self._media_playlist(text, busy, now)
        try:
            variants = parse_multivariant_playlist(text).variants
        except PlaylistError as exc:
            raise self._fail(f"bad multivariant playlist at {self.url}: {exc}") from exc
        variant = select_variant(variants, self.rendition)
        self.media_url = urljoin(self.url, variant.uri)
        return self._issue([ProbeRequest("playlist", self.media_url, JOIN_TIMEOUT)], now)

    def on_playlist(self, text: str, now: float) -> list[ProbeRequest]:
        return self._media_playlist(text, self._complete("playlist", len(text)), now)

    def _media_playlist(
        self, text: str, busy: tuple[ProbeRequest, float] | None, now: float
    ) -> list[ProbeRequest]:
        assert self.media_url is not None
        try:
            pl = parse_media_playlist(text)
        except PlaylistError as exc:
            raise self._fail(f"bad media playlist at {self.media_url}: {exc}") from exc
        request = busy[0] if busy else None
        if busy is not None and busy[0].msn is not None:
            self.blocking_waits.append(max(0.0, now - busy[1]))
        self._consecutive["playlist"] = 0
        first = self.playlist is None
        self.playlist = pl
        last = pl.last_part()
        if last is None or pl.part_inf is None:
            if pl.endlist:
                return self._end(now)
            raise self._fail(f"{self.media_url} lists no EXT-X-PART: not a low-latency stream")
        self._learn_timing(pl)
        self._queue_parts(pl, first)
        if pl.endlist:
            self.ended = True
            return self._issue([], now)
        return self._issue([self._next_reload(pl, request)], now)

    def on_part(self, url: str, size: int, now: float) -> list[ProbeRequest]:
        busy = self._complete("part", size)
        self._consecutive["part"] = 0
        if busy is not None and busy[0].kind == "part":
            self.parts += 1
            if self.startup is None and self.started_at is not None:
                self.startup = now - self.started_at
            if self._last_part_at is not None:
                self.part_gaps.append(now - self._last_part_at)
            self._last_part_at = now
            timing = self._timing.get(url)
            if timing is not None and timing.capture_end is not None:
                self.latencies.append(now - timing.capture_end)
            else:
                self._pending_latency[url] = now
        return self._issue([], now)

    def on_error(
        self, request: ProbeRequest, status: int, now: float, detail: str = ""
    ) -> list[ProbeRequest]:
        """``request`` failed: HTTP ``status``, or 0 with ``detail`` for a transport failure."""
        lane = request.lane
        self._busy[lane] = None
        key = str(status) if status else (detail.split(":")[0] or "network")
        self.errors[key] = self.errors.get(key, 0) + 1
        what = f"HTTP {status}" if status else (detail or "network error")
        joining = self.playlist is None
        if joining:
            if status == 503 and self._join_attempts < JOIN_RETRIES:
                self._join_attempts += 1
                return self._issue([_replace_delay(request, 1.0)], now)
            raise self._fail(f"cannot load {request.url}: {what}")
        self._consecutive[lane] += 1
        if self._consecutive[lane] >= MAX_CONSECUTIVE_ERRORS:
            raise self._fail(f"{MAX_CONSECUTIVE_ERRORS} failed requests in a row: {what}")
        if lane == "part":
            return self._issue([], now)  # skip it; the playlist names what exists
        delay = min(2.0, 0.25 * 2 ** (self._consecutive[lane] - 1))
        assert self.media_url is not None
        return self._issue([ProbeRequest("playlist", self.media_url, JOIN_TIMEOUT, delay)], now)

    def on_tick(self, now: float) -> list[ProbeRequest]:
        """Call periodically: fails the session when the stream stopped producing parts."""
        if self.finished or self.playlist is None:
            return []
        since = self._last_part_at if self._last_part_at is not None else self.started_at
        if since is not None and now - since > self.stall_limit:
            raise self._fail(f"no new part for {now - since:.1f} s: the stream stalled")
        return []

    # ------------------------------------------------------------------ report
    def report(self, now: float) -> ProbeReport:
        ran = now - self.started_at if self.started_at is not None else 0.0
        error = self.error
        if error is None and self.ended:
            error = "the stream ended (EXT-X-ENDLIST)"
        if error is None and not self.parts:
            error = "no part received"
        return ProbeReport(
            url=self.url,
            media_url=self.media_url,
            seconds=ran,
            ok=error is None,
            error=error,
            startup=self.startup,
            parts=self.parts,
            bytes=self.bytes,
            requests=self.requests,
            errors=dict(self.errors),
            latency=summarize(self.latencies),
            blocking_wait=summarize(self.blocking_waits),
            max_part_gap=max(self.part_gaps) if self.part_gaps else None,
            target_duration=self.target_duration,
            part_target=self.part_target,
            latencies=list(self.latencies),
        )

    # ------------------------------------------------------------------ internals
    def _fail(self, message: str) -> ProbeError:
        self.error = message
        return ProbeError(message)

    def _end(self, now: float) -> list[ProbeRequest]:
        self.ended = True
        return self._issue([], now)

    def _complete(self, lane: str, size: int) -> tuple[ProbeRequest, float] | None:
        busy = self._busy[lane]
        self._busy[lane] = None
        self.bytes += size
        return busy

    def _issue(self, playlist_requests: list[ProbeRequest], now: float) -> list[ProbeRequest]:
        """Send what each idle lane should send next (at most one in flight per lane)."""
        out: list[ProbeRequest] = []
        if self.finished and not self.ended:
            return out
        if playlist_requests and self._busy["playlist"] is None and not self.ended:
            request = playlist_requests[0]
            out.append(self._send(request, now))
        if self._busy["part"] is None and self._part_queue:
            out.append(self._send(self._part_queue.popleft(), now))
        return out

    def _send(self, request: ProbeRequest, now: float) -> ProbeRequest:
        self._busy[request.lane] = (request, now + request.delay)
        self.requests += 1
        return request

    def _learn_timing(self, pl: MediaPlaylist) -> None:
        """Capture end time of every listed part; settles latencies of parts received early."""
        assert self.media_url is not None
        pdt: float | None = None
        for position, seg in enumerate(pl.segments):
            msn = pl.msn_of(position)
            if seg.pdt is not None:
                pdt = seg.pdt
            offset = 0.0
            for index, part in enumerate(seg.parts):
                offset += part.duration
                url = urljoin(self.media_url, part.uri)
                end = pdt + offset if pdt is not None else None
                self._timing[url] = _PartTiming(msn, index, end)
                received = self._pending_latency.pop(url, None)
                if received is not None and end is not None:
                    self.latencies.append(received - end)
            if pdt is not None:
                pdt += seg.duration if seg.uri is not None else offset
        oldest = pl.msn_of(len(pl.segments) - 1) - _KEEP_SEGMENTS
        for url in [u for u, t in self._timing.items() if t.msn < oldest]:
            del self._timing[url]
            self._pending_latency.pop(url, None)

    def _queue_parts(self, pl: MediaPlaylist, first: bool) -> None:
        """Queue every listed part newer than the last queued one (from the live edge on the
        first playlist), the init segments they need, then the preload-hinted part."""
        assert self.media_url is not None
        start = _live_edge(pl) if first else None
        current_map: str | None = None
        for position, seg in enumerate(pl.segments):
            msn = pl.msn_of(position)
            if seg.map is not None:
                current_map = urljoin(self.media_url, seg.map.uri)
            for index, part in enumerate(seg.parts):
                where = (msn, index)
                if start is not None and where < start:
                    continue
                if self._queued_until is not None and where <= self._queued_until:
                    continue
                if current_map is not None and current_map not in self._maps:
                    self._maps.add(current_map)
                    self._part_queue.append(ProbeRequest("init", current_map, JOIN_TIMEOUT))
                url = urljoin(self.media_url, part.uri)
                self._part_queue.append(ProbeRequest("part", url, self.hold_timeout))
                self._queued_until = where
        hint = next((h for h in pl.preload_hints if h.type == "PART"), None)
        upcoming = pl.next_part()
        newer = upcoming is not None and (
            self._queued_until is None or upcoming > self._queued_until
        )
        if hint is not None and newer:
            url = urljoin(self.media_url, hint.uri)
            self._part_queue.append(ProbeRequest("part", url, self.hold_timeout))
            self._queued_until = upcoming

    def _next_reload(self, pl: MediaPlaylist, answered: ProbeRequest | None) -> ProbeRequest:
        """The blocking reload for the part after the newest listed one."""
        assert self.media_url is not None
        upcoming = pl.next_part()
        assert upcoming is not None
        part_target = self.part_target or 1.0
        can_block = pl.server_control is not None and pl.server_control.can_block_reload
        if not can_block:  # poll, about once per part
            return ProbeRequest("playlist", self.media_url, JOIN_TIMEOUT, delay=part_target)
        msn, part = upcoming
        delay = 0.0
        if answered is not None and answered.msn is not None and answered.part is not None:
            last = pl.last_part()
            if last is not None and last < (answered.msn, answered.part):
                delay = part_target / 2  # answered without the part asked for: do not spin
        url = directive_url(self.media_url, msn, part)
        return ProbeRequest("playlist", url, self.hold_timeout, delay, msn, part)


def _replace_delay(request: ProbeRequest, delay: float) -> ProbeRequest:
    return ProbeRequest(
        request.kind, request.url, request.timeout, delay, request.msn, request.part
    )


def _live_edge(pl: MediaPlaylist) -> tuple[int, int]:
    """The newest INDEPENDENT=YES part (else the first part of the newest segment with parts)."""
    fallback: tuple[int, int] | None = None
    for position in range(len(pl.segments) - 1, -1, -1):
        parts = pl.segments[position].parts
        for index in range(len(parts) - 1, -1, -1):
            if parts[index].independent:
                return pl.msn_of(position), index
        if parts and fallback is None:
            fallback = (pl.msn_of(position), 0)
    assert fallback is not None, "caller checked that parts are listed"
    return fallback
