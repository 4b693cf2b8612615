"""The viewer harness: what every driver of players keeps beside each one, minus the I/O (pure).

The asyncio driver (``rehearse.driver``), the Locust user (``rehearse.locust_user``) and, later,
the simulator run the same :class:`~livecast.player.model.Player`; around it they all need

  * **link pacing** (:class:`LinkPacer`): the viewer's downlink cap is applied to what the player
    sees, not to the socket — an answer is handed to the player when its bytes would have crossed
    the viewer's link (one first-in first-out link per viewer, from the first byte on);
  * **the run's records** (:class:`RunRecorder`): each request sent (per tenth of a second,
    retries), answered or failed (status, latency, bytes, answers held too long, media 404s that
    answer 200 a moment later), the age of each playlist received, each viewer's outcome. A
    start-over viewer's (``PlayerConfig.seek_back``) are kept apart: its requests under their
    own kinds (``playlist-dvr``, ``segment-dvr``…), its outcome with the DVR viewers', its
    playlists' age and latency behind live out of the live figures — it adds to the load
    (requests sent, bytes, retries), not to what judges the live viewers;
  * **per-second sampling** (:class:`TimelineSampler`): a viewer's new stalls and latency samples
    go to the run's per-second timeline once at the start of each second of the show and at its
    end;
  * **deadlines** (:meth:`ViewerHarness.next_deadline`): the player's own
    (:meth:`~livecast.player.model.Player.next_deadline`) or the next per-second sample, whichever
    comes first — a driver arms one timer per viewer instead of ticking every viewer all the time.

:class:`ViewerHarness` bundles these for one viewer; connection choice is ``player.lanes``. Time
is whatever clock the driver passes in as ``now`` (wall-clock seconds for the rehearsal); nothing
here reads one.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence

from livecast.player.model import Player
from livecast.player.requests import Request
from livecast.results.stats import RunStats, ViewerOutcome, dvr_kind

TEXT_KINDS = frozenset({"multivariant", "playlist", "session"})  # answers the player reads
MEDIA_KINDS = frozenset({"init", "part", "segment"})
NOT_FOUND_MEMORY = 20_000  # media URLs answered 404, remembered to spot a 200 a moment later
SAMPLE_TOLERANCE = 1e-6  # seconds: a sample timer may fire a rounding error before its second


class LinkPacer:
    """One viewer's downlink: answers leave it one after another at ``downlink_bps``."""

    __slots__ = ("downlink_bps", "free_at")

    def __init__(self, downlink_bps: float | None) -> None:
        self.downlink_bps = downlink_bps  # None: no cap
        self.free_at = 0.0  # when the link has carried everything handed to it so far

    def delivery_time(self, first_byte: float, finished: float, size: int) -> float:
        """When the player may see an answer of ``size`` bytes whose first byte arrived at
        ``first_byte`` and its last at ``finished``: after its bytes crossed the link, behind
        whatever was on it before (never before ``finished``)."""
        cap = self.downlink_bps
        if not cap:
            return finished
        start = self.free_at if self.free_at > first_byte else first_byte
        self.free_at = start + 8 * size / cap
        return self.free_at if self.free_at > finished else finished


class RunRecorder:
    """What a driver records into its :class:`~livecast.results.stats.RunStats`; ``origin`` is
    the clock at t = 0 (the show start). A Locust worker swaps ``stats`` at every report."""

    __slots__ = ("_not_found", "held_limit", "origin", "stats")

    def __init__(self, stats: RunStats, origin: float, held_limit: float | None = None) -> None:
        self.stats = stats
        self.origin = origin
        self.held_limit = held_limit  # 3 × target duration: an answer slower was held too long
        self._not_found: OrderedDict[str, int] = OrderedDict()  # media URL → 404s so far

    def sent(self, request: Request, now: float) -> None:
        """``request`` leaves the viewer now (retries counted, with the failed requests)."""
        self.stats.record_sent(now - self.origin, request.retry > 0)
        if request.retry:
            client = self.stats.indicators.client
            client.count("retries")
            if request.retry == 1:
                client.count("retried_requests")

    def answered(
        self, request: Request, status: int, size: int, latency: float, now: float
    ) -> None:
        """An HTTP answer, ``latency`` seconds after the request was written."""
        client = self.stats.indicators.client
        if request.dvr:  # the load, not the live delivery indicators
            kind = dvr_kind(request.kind)
            self.stats.record_request(kind, status, latency, now - self.origin)
            client.add_bytes(kind, size)
            return
        self.stats.record_request(request.kind, status, latency, now - self.origin)
        client.add_bytes(request.kind, size)
        if self.held_limit is not None and latency > self.held_limit:
            client.count("held_past")
        if request.kind not in MEDIA_KINDS:
            return
        client.count("media_requests")
        url = request.url.partition("?")[0]
        not_found = self._not_found
        if status == 404:
            client.count("media_404")
            not_found[url] = not_found.get(url, 0) + 1
            not_found.move_to_end(url)
            if len(not_found) > NOT_FOUND_MEMORY:
                not_found.popitem(last=False)
        elif 200 <= status < 300 and not_found:
            early = not_found.pop(url, 0)
            if early:
                client.count("early_404", early)

    def failed(self, request: Request, failure: str, now: float) -> None:
        """No HTTP answer: ``failure`` is "connect", "reset", "timeout" or "protocol"."""
        kind = dvr_kind(request.kind) if request.dvr else request.kind
        self.stats.record_request(kind, failure, None, now - self.origin)

    def playlist_age(self, age: float) -> None:
        """A media playlist handed to a player, ``age`` s behind its newest media's end."""
        client = self.stats.indicators.client
        client.count("playlists")
        client.playlist_age_s.record(max(0.0, age))


class TimelineSampler:
    """One viewer's new stalls and latency samples into the run's per-second timeline: at the
    start of every second of the show (``t`` in seconds since it) and once at the end."""

    __slots__ = ("next_second", "samples_seen", "stalls_seen")

    def __init__(self, t: float) -> None:
        self.next_second = math.floor(t) + 1  # the next sample is due at its start
        self.stalls_seen = 0
        self.samples_seen = 0

    def due(self, t: float) -> bool:
        return t >= self.next_second - SAMPLE_TOLERANCE

    def on_second(self, stalls: int, latencies: Sequence[float], t: float, stats: RunStats) -> None:
        """The sample due at the start of the second (``t`` at or after it)."""
        t = max(t, float(self.next_second))
        self.flush(stalls, latencies, t, stats)
        self.next_second = math.floor(t) + 1

    def flush(self, stalls: int, latencies: Sequence[float], t: float, stats: RunStats) -> None:
        """What is new since the last sample, at ``t`` (the viewer's end: whenever it is)."""
        for _ in range(stalls - self.stalls_seen):
            stats.record_stall(t)
        self.stalls_seen = stalls
        for latency in latencies[self.samples_seen :]:
            stats.record_live_latency(t, latency)
        self.samples_seen = len(latencies)


class ViewerHarness:
    """One player with its link, its per-second sampler and the run's recorder: a driver performs
    the requests (sockets, timers, connection lanes) and calls these with its clock's ``now``."""

    __slots__ = ("dvr", "link", "player", "recorder", "sampler")

    def __init__(self, player: Player, recorder: RunRecorder, now: float) -> None:
        self.player = player
        self.dvr = player.config.start_over  # counted apart from the live viewers
        self.recorder = recorder
        self.link = LinkPacer(player.downlink_bps)
        self.sampler = TimelineSampler(now - recorder.origin)

    def start(self, now: float) -> list[Request]:
        return self.player.start(now)

    def on_response(
        self,
        request_id: int,
        status: int,
        body: bytes | None,
        size: int,
        now: float,
        *,
        first_byte_at: float | None,
        age: float | None,
    ) -> list[Request]:
        """An answer, once :meth:`LinkPacer.delivery_time` allows it (the player's
        ``on_response``; the age of a playlist is recorded)."""
        requests = self.player.on_response(
            request_id, status, body, size, now, first_byte_at=first_byte_at, age=age
        )
        playlist_age = self.player.last_playlist_age
        if playlist_age is not None and not self.dvr:
            self.recorder.playlist_age(playlist_age)
        return requests

    def on_error(self, request_id: int, failure: str, now: float) -> list[Request]:
        return self.player.on_error(request_id, failure, now)

    def next_deadline(self) -> float:
        """When :meth:`wake` has something to do if no answer comes first (possibly past): the
        player's deadline or the next per-second sample."""
        deadline = self.recorder.origin + self.sampler.next_second
        player_deadline = self.player.next_deadline()
        if player_deadline is not None and player_deadline < deadline:
            return player_deadline
        return deadline

    def wake(self, now: float) -> list[Request]:
        """Time passed (a timer set for :meth:`next_deadline`; waking early or more often
        changes nothing): the player's ``tick`` and the per-second sample when due."""
        requests = self.player.tick(now)
        t = now - self.recorder.origin
        if self.sampler.due(t):
            self.sampler.on_second(self._stalls(), self._live_latencies(), t, self._stats)
        return requests

    def finish(self, now: float) -> ViewerOutcome:
        """The viewer's end (its player finished, or the run did): the last sample and its
        outcome, recorded."""
        outcome = self.player.outcome(now)  # the buffer advanced to ``now`` first
        t = now - self.recorder.origin
        self.sampler.flush(self._stalls(), self._live_latencies(), t, self._stats)
        self._stats.record_viewer(outcome, dvr=self.dvr)
        return outcome

    @property
    def _stats(self) -> RunStats:
        return self.recorder.stats

    def _live_latencies(self) -> Sequence[float]:
        """Latency samples for the live timeline: none of a start-over viewer's (it plays
        minutes behind on purpose; its own figures are in its outcome)."""
        return () if self.dvr else self.player.latency_samples

    def _stalls(self) -> int:
        buffer = self.player.buffer
        return buffer.stall_count if buffer is not None else 0
