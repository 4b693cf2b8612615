"""The player state machine — sans-IO, in the manner of h11 and aioquic.

The adapter tells a :class:`Player` what happened and performs the :class:`Request` objects it
answers with; nothing here opens a socket, reads a clock or uses global randomness:

  * ``start(now)`` — the play request;
  * ``on_response(request_id, status, body, size, now, first_byte_at=None, age=None)`` — a
    complete response (``body`` for playlists, ``size`` for all; ``first_byte_at`` if known: held
    requests measure transfer, not waiting; ``age``: its ``Age`` header — ``player.tunein``);
  * ``on_error(request_id, kind, now)`` — a transport failure (``"timeout"``, ``"reset"``…);
  * ``tick(now)`` — time passed (leave time, stall accounting, latency samples, ABR checks);
  * ``next_deadline()`` — when ``tick`` next has work if no answer comes first (a driver's timer);
  * ``wanted(request_id)`` — ask before sending a delayed request: False once abandoned;
  * ``outcome(now)`` — the viewer's QoE as the results count it (``ViewerOutcome``, ``player.qoe``).

Every request carries ``not_before`` (absolute wall time; retries and classic-mode polls are
delayed) and ``timeout``. At most one playlist and one media request are in flight per track
(video variant; audio rendition of its AUDIO group) — an adapter needs up to four connections.

How it plays, after hls.js (``stream-controller``, ``audio-stream-controller``, ``abr-controller``):
  * join: multivariant → start rendition (``lowest``/``highest``/``estimate`` = the highest the
    default estimate allows with the up factor) → its media playlist and the AUDIO group's;
  * LL-HLS mode: load from the newest INDEPENDENT part at least PART-HOLD-BACK behind the newest
    part, and start playback at PART-HOLD-BACK behind that newest part's end (hls.js seeks to
    ``liveSyncPosition``; the decoder starts at the keyframe before it); fetch init, then every
    part in order; request the EXT-X-PRELOAD-HINT part as soon as it is next; reload the
    playlist with ``_HLS_msn``/``_HLS_part`` for the part after the newest listed one (hls.js
    ``lowLatencyMode``); behind the part tags' window, whole segments;
  * classic mode: whole segments, starting at the segment holding ``edge − 3 × target duration``
    (``liveSyncDurationCount``); reload every target duration (half when it did not change);
  * start-over (``PlayerConfig.seek_back``): join ``main.m3u8?start=<now − seek_back>`` and play
    its EVENT playlists (no parts) the classic way from the segment holding that time;
  * audio starts at the part/segment holding the start position;
  * ABR after every video fetch (``player.abr``) and, while a video fetch loads slower than real
    time, from that evidence (hls.js abandon rules, without aborting the fetch, checked every
    ``slow_fetch_check_interval`` from the fetch's start as hls.js's timer does): an emergency
    switch down also resets the bandwidth estimator to that figure, as hls.js does, so that the
    next regular decision does not undo it; a switch takes effect at the next INDEPENDENT
    part (every segment in classic mode): new playlist (blocking for that position), new init;
  * the stream's lease (``PlayerConfig.session_url``, ``player.session``): a join beside the
    multivariant request, then the heartbeats the origin schedules; a refusal ends the viewer;
  * a failed request is retried per its :class:`RetryPolicy` (``player.retry``); when retries
    run out the viewer ends: ``start_failure`` before the first frame, else ``fatal``. A failed
    preload-hint part is not retried: the next playlist says what exists.
"""

from __future__ import annotations

import math
import random
from urllib.parse import urljoin

from livecast.errors import PlaylistError
from livecast.hls.playlist import MediaPlaylist
from livecast.hls.tags import StreamInf
from livecast.player.abr import (
    AbrInputs,
    BandwidthEstimator,
    choose_level,
    slow_fetch_bound,
    slow_fetch_check_at,
    start_level,
)
from livecast.player.buffer import MediaBuffer, PlaybackState
from livecast.player.cmcd import CmcdQuery, object_type, with_query
from livecast.player.config import PlayerConfig
from livecast.player.parsed import PlaylistCache
from livecast.player.qoe import LatencySampler, viewer_outcome
from livecast.player.requests import InFlight, Request, RequestLedger
from livecast.player.retry import backoff_delay, can_retry
from livecast.player.session import Beat, Refused, SessionLease
from livecast.player.track import (
    SEGMENT,
    MediaItem,
    Position,
    TrackState,
    blocking_url,
    fragment_duration,
    item_at,
    join_tracks,
    live_offset,
    live_start,
    newest_position,
    seek_start,
    start_over_url,
)
from livecast.player.tunein import blocking_reload_url, on_playlist, waits_for_tune_in
from livecast.results.stats import ViewerOutcome


class Player:
    """One viewer; see the module docstring. ``rng`` draws backoff jitter; ``cache`` may be
    shared by all the viewers of a driver (``player.parsed``)."""

    def __init__(
        self,
        url: str,
        config: PlayerConfig,
        rng: random.Random,
        cache: PlaylistCache | None = None,
    ) -> None:
        self.url = url
        self.config = config
        self.rng = rng
        self.cache = cache if cache is not None else PlaylistCache(size=4)
        self.estimator = BandwidthEstimator(
            config.ewma_fast_half_life,
            config.ewma_slow_half_life,
            config.default_estimate_bps,
            config.min_sample_seconds,
        )
        self.variants: list[StreamInf] = []  # ascending bandwidth
        self.level: int | None = None
        self.pending_level: int | None = None
        self.start_bitrate: int | None = None
        self.switches = 0
        self.tracks: dict[str, TrackState] = {}
        self.buffer: MediaBuffer | None = None
        self.low_latency = config.mode == "llhls"
        self.started_at: float | None = None
        self.finished_at: float | None = None
        # "idle", "watching", then how it ended: "ended", "left", "exit_before_start",
        # "start_failure" or "fatal"
        self.status = "idle"
        self.error: str | None = None
        self.ledger = RequestLedger(dvr=config.start_over)
        self._cmcd_query = CmcdQuery(config.session_id, config.content_id)
        self._cmcd_stalls = 0  # the buffer's stall count at the last request (CMCD bs)
        self.latency_sampler = LatencySampler(config.latency_sample_interval)
        # now − program time at the end of the newest media in the playlist just received (set by
        # on_response for a playlist with PROGRAM-DATE-TIME, else None): staleness at an edge
        self.last_playlist_age: float | None = None
        self._slow_checked_at = -math.inf  # when a loading video fetch was last checked
        self._start_time: float | None = None  # program time of the video start position
        self.seek_to: float | None = None  # start-over: the program time asked for
        self._received: dict[str, dict[Position, int]] = {}  # media whose timing is unknown
        # the stream's lease at an origin that limits streams per account (player.session)
        session_url = config.session_url
        self.session = SessionLease(urljoin(url, session_url)) if session_url else None

    # ------------------------------------------------------------------ properties
    @property
    def finished(self) -> bool:
        return self.finished_at is not None

    @property
    def downlink_bps(self) -> float | None:
        """The viewer's downlink cap, for the adapter or simulator to enforce."""
        return self.config.downlink_bps

    @property
    def latency_samples(self) -> list[float]:
        """Latency behind live sampled so far (seconds; the list itself, appended to)."""
        return self.latency_sampler.samples

    @property
    def state(self) -> str:
        if self.finished:
            return self.status
        return self.buffer.state.value if self.buffer else "joining"

    @property
    def bitrate(self) -> int | None:
        return self.variants[self.level].bandwidth if self.level is not None else None

    # ------------------------------------------------------------------ events
    def start(self, now: float) -> list[Request]:
        self.started_at = now
        self.status = "watching"
        if self.config.seek_back is not None:
            self.seek_to = now - self.config.seek_back
            self.url = start_over_url(self.url, self.seek_to)
        policy = self.config.multivariant_retry
        requests = [self._send("multivariant", self.url, policy.timeout, now, None)]
        if self.session is not None:  # beside the play request: media never waits for it
            requests.append(self._send_beat(self.session.join(now)))
        return requests

    def on_response(
        self,
        request_id: int,
        status: int,
        body: bytes | None,
        size: int,
        now: float,
        first_byte_at: float | None = None,
        age: float | None = None,
    ) -> list[Request]:
        self.last_playlist_age = None
        flight = self.ledger.settle(request_id, str(status), size)
        if flight is None or self.finished:
            return []
        kind = flight.request.kind
        self._release(flight.track, flight.request.id)
        if not self._observe(now):
            return []
        if kind == "session":
            return self._on_session(status, body, now)
        if not 200 <= status < 300:
            return self._failed(flight, f"HTTP {status}", now)
        try:
            if kind == "multivariant":
                self._on_multivariant((body or b"").decode("utf-8", "replace"))
            elif kind == "playlist":
                self._on_playlist(flight, (body or b"").decode("utf-8", "replace"), now, age)
            elif kind == "init":
                self.tracks[flight.track or "video"].loaded_inits.add(flight.base_url)
            else:
                self._on_media(flight, size, now, first_byte_at)
        except PlaylistError as exc:
            return self._fail(f"bad playlist at {flight.base_url}: {exc}", now)
        return self._plan(now)

    def on_error(self, request_id: int, kind: str, now: float) -> list[Request]:
        flight = self.ledger.settle(request_id, kind, 0)
        if flight is None or self.finished:
            return []
        self._release(flight.track, flight.request.id)
        if not self._observe(now):
            return []
        if flight.request.kind == "session" and self.session is not None:
            return self._session_step(self.session.on_failure(now, self.rng), now)
        return self._failed(flight, kind, now)

    def wanted(self, request_id: int) -> bool:
        """Whether a request not sent yet (``not_before`` in the future) is still wanted: an
        adapter may drop one the player abandoned (a poll of the rendition it switched from)."""
        return self.ledger.wanted(request_id)

    def tick(self, now: float) -> list[Request]:
        if self.finished or self.started_at is None or not self._observe(now):
            return []
        check_at = self._slow_check_at()
        if check_at is not None and now >= check_at:
            self._slow_checked_at = now
            self._check_slow_fetch(now)
        return self._plan(now)

    def next_deadline(self) -> float | None:
        """The earliest wall time at which :meth:`tick` has something to do if no answer arrives
        first — leaving, the next latency sample, the buffer running dry (a stall, a hole, the
        end), the next check of a loading video fetch — possibly already past; None before
        ``start`` and once finished. Ticking only then gives what ticking all the time gives;
        the adapter asks again after every event (an answer can move it either way)."""
        if self.finished_at is not None or self.started_at is None:
            return None
        due = [self.config.leave_at, self._slow_check_at()]
        if (buf := self.buffer) is not None and buf.state is PlaybackState.PLAYING:
            due += (self.latency_sampler.due_at(buf), buf.drain_at())
        return min((at for at in due if at is not None), default=None)

    # ------------------------------------------------------------------ QoE
    def outcome(self, now: float) -> ViewerOutcome:
        """What this viewer experienced up to ``now`` (or its end), as the results count it."""
        if not self.finished:
            self._observe(now)
        return viewer_outcome(
            status=self.status,
            started_at=self.started_at,
            error=self.error,
            buffer=self.buffer,
            latency_samples=self.latency_sampler.samples,
            switches=self.switches,
        )

    # ------------------------------------------------------------------ bookkeeping
    def _release(self, track_name: str | None, request_id: int) -> None:
        track = self.tracks.get(track_name or "")
        if track is not None:
            track.release(request_id)

    def _observe(self, now: float) -> bool:
        """Advance the buffer to ``now``; False once the viewer is gone."""
        if self.finished:
            return False
        leave_at = self.config.leave_at
        if leave_at is not None and now >= leave_at:
            clock = self.buffer.clock if self.buffer is not None else None
            when = leave_at if clock is None or clock <= leave_at else now  # left exactly then
            self._finish("left" if self._has_started else "exit_before_start", when)
            return False
        buf = self.buffer
        if buf is None:
            return True
        buf.advance(now)
        if buf.state is PlaybackState.ENDED:
            self._finish("ended", now)
            return False
        self.latency_sampler.observe(buf, now)
        return True

    @property
    def _has_started(self) -> bool:
        return self.buffer is not None and self.buffer.first_frame_at is not None

    def _finish(self, status: str, now: float) -> None:
        if self.buffer is not None:
            self.buffer.stop(now)
        self.status = status
        self.finished_at = now
        self.ledger.abandon_all()

    def _fail(self, message: str, now: float) -> list[Request]:
        self.error = message
        self._finish("fatal" if self._has_started else "start_failure", now)
        return []

    # ------------------------------------------------------------------ requests
    def _send(
        self,
        kind: str,
        url: str,
        timeout: float,
        not_before: float,
        track: TrackState | None,
        retries: int = 0,
        position: Position | None = None,
        hinted: bool = False,
    ) -> Request:
        flight = self.ledger.issue(
            kind,
            url,
            with_query(url, self._cmcd(kind, track)),
            timeout,
            not_before,
            track.name if track else None,
            track.generation if track else 0,
            retries,
            position,
            hinted,
        )
        request = flight.request
        if track is not None:
            if kind == "playlist":
                track.playlist_request = request.id
            else:
                track.media_request = request.id
        return request

    def _send_beat(self, beat: Beat) -> Request:
        """A join or heartbeat of the stream's lease (no CMCD: not a media object)."""
        timeout = self.session.policy.timeout if self.session is not None else 5.0
        flight = self.ledger.issue(
            "session", beat.url, beat.url, timeout, beat.at, retries=beat.retries
        )
        return flight.request

    def _on_session(self, status: int, body: bytes | None, now: float) -> list[Request]:
        if self.session is None:
            return []
        return self._session_step(self.session.on_answer(status, body, now, self.rng), now)

    def _session_step(self, step: Beat | Refused | None, now: float) -> list[Request]:
        """The lease's next heartbeat, or the end of a stream the origin refused."""
        if step is None:
            return []
        if isinstance(step, Refused):
            return self._fail(f"session refused: {step.reason}", now)
        return [self._send_beat(step)]

    def _cmcd(self, kind: str, track: TrackState | None) -> str:
        estimator, buffer, variants, level = self.estimator, self.buffer, self.variants, self.level
        return self._cmcd_query.query(
            object_type=object_type(kind, track.object_type if track else "av"),
            bitrate_bps=variants[level].bandwidth if level is not None else None,
            buffer_s=buffer.track_ahead(track.name) if buffer is not None and track else 0.0,
            measured_bps=estimator.estimate() if estimator.has_samples else None,
            top_bitrate_bps=variants[-1].bandwidth if variants else None,
            starting=buffer is None or buffer.first_frame_at is None,
            starved=self._starved_since_last_request(),
        )

    def _starved_since_last_request(self) -> bool:
        """CMCD ``bs``: the buffer ran dry (a stall began, or goes on) since the request before."""
        buffer = self.buffer
        if buffer is None:
            return False
        stalls, self._cmcd_stalls = self._cmcd_stalls, buffer.stall_count
        return buffer.stall_count > stalls or buffer.state is PlaybackState.STALLED

    def _failed(self, flight: InFlight, what: str, now: float) -> list[Request]:
        request = flight.request
        track = self.tracks.get(flight.track or "")
        if flight.hinted:
            return self._plan(now)  # not again as a hint: fetched once a playlist lists it
        stale = track is not None and flight.generation != track.generation
        if stale:
            return self._plan(now)
        policy = self.config.retry_policy(request.kind)
        if not can_retry(policy, flight.retries):
            return self._fail(
                f"{request.kind} {flight.base_url}: {what} after {flight.retries} retries", now
            )
        delay = backoff_delay(policy, flight.retries, self.rng)
        retry = self._send(
            request.kind,
            flight.base_url,
            request.timeout,
            now + delay,
            track,
            flight.retries + 1,
            flight.position,
        )
        return [retry, *self._plan(now)]

    # ------------------------------------------------------------------ responses
    def _on_multivariant(self, text: str) -> None:
        config, estimate = self.config, self.estimator.estimate()
        self.variants, self.level, self.tracks = join_tracks(
            self.url,
            text,
            lambda bitrates: start_level(
                bitrates, config.start_level, estimate, config.bandwidth_up_factor
            ),
        )
        self.start_bitrate = self.bitrate
        self._received = {name: {} for name in self.tracks}
        self.buffer = MediaBuffer(
            tuple(self.tracks), self.config.start_buffer, self.config.resume_buffer
        )

    def _on_playlist(self, flight: InFlight, text: str, now: float, age: float | None) -> None:
        track = self.tracks[flight.track or "video"]
        if flight.generation != track.generation:
            return  # answered for the rendition we switched away from
        parsed = self.cache.parse(text, track.playlist_url, self.low_latency)
        pl = parsed.playlist
        if parsed.newest_end is not None:
            self.last_playlist_age = now - parsed.newest_end
        if track.playlist is None and track.generation == 0 and pl.part_inf is None:
            self.low_latency = False  # no parts: follow it the classic way
            parsed = self.cache.parse(text, track.playlist_url, False)
        previous = None if track.playlist is None else newest_position(track.playlist)
        track.playlist = pl
        on_playlist(track, previous, now, age, self.low_latency)  # player.tunein
        track.items = parsed.items  # shared with other viewers: never mutated
        track.hint = parsed.hint
        track.init_url = parsed.init_url
        if track.hint_requested in track.items and track.hint_listed_at is None:
            track.hint_listed_at = now  # the hinted part exists now: the rest is transfer
        track.normalize_next()
        track.skip_if_behind(self._received[track.name])
        self._settle_received(track, now)
        if pl.endlist and not track.ended and track.past_last_item():
            self._end_track(track, now)

    def _end_track(self, track: TrackState, now: float) -> None:
        track.ended = True
        if all(t.ended for t in self.tracks.values()) and self.buffer is not None:
            self.buffer.mark_complete(now)

    def _settle_received(self, track: TrackState, now: float) -> None:
        pending = self._received[track.name]
        for position in sorted(pending):
            item = track.items.get(position)
            if item is not None:
                pending.pop(position)
                self._buffer_item(track, item, now)

    def _buffer_item(self, track: TrackState, item: MediaItem, now: float) -> None:
        assert self.buffer is not None
        bitrate = self.bitrate if track.name == "video" else None
        self.buffer.add(track.name, item.start, item.end, now, bitrate)

    def _on_media(
        self, flight: InFlight, size: int, now: float, first_byte_at: float | None
    ) -> None:
        track = self.tracks[flight.track or "video"]
        position = flight.position
        assert position is not None
        if track.name == "video":  # hls.js samples main-variant fragments only
            if first_byte_at is not None:
                self.estimator.sample(now - first_byte_at, size)
            elif not flight.hinted:
                self.estimator.sample(now - flight.request.not_before, size)
        item = track.items.get(position)
        if item is not None:
            self._buffer_item(track, item, now)
            track.next_position = item.successor
        else:
            self._received[track.name][position] = size
            track.next_position = (position[0], position[1] + 1)
        track.normalize_next()
        if track.name == "video":
            self._evaluate_abr()
        if track.playlist is not None and track.playlist.endlist and track.past_last_item():
            self._end_track(track, now)

    def _video_fetch(self) -> tuple[float, float] | None:
        """(when the video fetch in flight began loading, its media duration), if there is one."""
        track = self.tracks.get("video")
        if track is None or self.level is None:
            return None
        began = self.ledger.loading_since(track.media_request, track.hint_listed_at)
        if began is None:
            return None
        return began, fragment_duration(track.playlist, self.low_latency)

    def _slow_check_at(self) -> float | None:
        if (fetch := self._video_fetch()) is None:
            return None
        interval = self.config.slow_fetch_check_interval
        return slow_fetch_check_at(*fetch, self._slow_checked_at, interval)

    def _check_slow_fetch(self, now: float) -> None:
        """Re-decide while a video fetch loads slower than real time."""
        if (fetch := self._video_fetch()) is None or self.level is None:
            return
        began, duration = fetch
        bound = slow_fetch_bound(self.variants[self.level].bandwidth, duration, now - began)
        if bound is not None:
            self._evaluate_abr(bound)
            if self.pending_level is not None and self.pending_level < self.level:
                self.estimator.reset(bound)  # an emergency switch down sticks (hls.js)

    def _evaluate_abr(self, cap_bps: float | None = None) -> None:
        if len(self.variants) < 2 or self.level is None or self.buffer is None:
            return
        estimate = self.estimator.estimate()
        inputs = AbrInputs(
            bitrates=[v.bandwidth for v in self.variants],
            current=self.level,
            estimate_bps=estimate if cap_bps is None else min(estimate, cap_bps),
            buffer_ahead=self.buffer.ahead(),
            fragment_duration=fragment_duration(self.tracks["video"].playlist, self.low_latency),
            playing=self._has_started,
            down_factor=self.config.bandwidth_factor,
            up_factor=self.config.bandwidth_up_factor,
        )
        chosen = choose_level(inputs)
        self.pending_level = chosen if chosen != self.level else None

    # ------------------------------------------------------------------ planning
    def _plan(self, now: float) -> list[Request]:
        out: list[Request] = []
        if self.finished:
            return out
        for track in self.tracks.values():
            media = self._plan_media(track, now)
            if media is not None:
                out.append(media)
            playlist = self._plan_playlist(track, now)
            if playlist is not None:
                out.append(playlist)
        return out

    def _hold_timeout(self, pl: MediaPlaylist | None) -> float:
        target = pl.target_duration if pl is not None else 2
        return 3.0 * target + self.config.hold_margin

    def _plan_playlist(self, track: TrackState, now: float) -> Request | None:
        if track.playlist_request is not None or track.ended:
            return None
        policy = self.config.playlist_retry
        pl = track.playlist
        if pl is None:
            if self.low_latency and track.next_position is not None and track.generation > 0:
                msn, part = track.next_position  # block until the switch position exists
                url = blocking_url(track.playlist_url, msn, None if part == SEGMENT else part)
                return self._send("playlist", url, self._hold_timeout(None), now, track)
            return self._send("playlist", track.playlist_url, policy.timeout, now, track)
        if pl.endlist:
            return None  # the playlist is final
        can_block = pl.server_control is not None and pl.server_control.can_block_reload
        upcoming = pl.next_part()
        if self.low_latency and can_block and upcoming is not None:
            url = blocking_reload_url(track, upcoming)  # with the CDN tune-in
            return self._send("playlist", url, self._hold_timeout(pl), now, track)
        if self.low_latency and pl.part_inf is not None:
            interval = pl.part_inf.part_target
        else:
            interval = float(pl.target_duration)
        if track.unchanged_reloads:
            interval /= 2  # hls.js: half the target duration when the playlist did not change
        when = max(now, (track.last_playlist_at or now) + interval)
        return self._send("playlist", track.playlist_url, policy.timeout, when, track)

    def _plan_media(self, track: TrackState, now: float) -> Request | None:
        busy = track.media_request is not None or waits_for_tune_in(track)  # waitForCdnTuneIn
        if busy or track.playlist is None or track.ended:
            return None
        if track.next_position is None and not self._choose_start(track):
            return None
        assert track.next_position is not None
        timeout = self.config.fragment_retry.timeout
        item = track.items.get(track.next_position)
        if item is not None:
            if self._should_switch(track, item):
                self._switch(track)
                return None
            init_url = item.init_url or track.init_url
            if init_url is not None and init_url not in track.loaded_inits:
                return self._send("init", init_url, timeout, now, track)
            kind = "segment" if item.position[1] == SEGMENT else "part"
            return self._send(kind, item.url, timeout, now, track, position=item.position)
        hint = track.hint
        if hint is not None and hint[0] == track.next_position and track.hint_requested != hint[0]:
            if self._should_switch(track, None):
                self._switch(track)
                return None
            if track.init_url is not None and track.init_url not in track.loaded_inits:
                return self._send("init", track.init_url, timeout, now, track)
            track.hint_requested = hint[0]
            track.hint_listed_at = None
            hold = self._hold_timeout(track.playlist)
            return self._send("part", hint[1], hold, now, track, position=hint[0], hinted=True)
        return None

    def _choose_start(self, track: TrackState) -> bool:
        pl = track.playlist
        assert pl is not None
        if track.name == "video":
            if self.seek_to is not None:
                start = seek_start(track.items, self.seek_to)
            else:
                behind = live_offset(pl, self.low_latency, self.config.live_sync_duration_count)
                start = live_start(track.items, behind)
            if start is None:
                return False
            first, self._start_time = start
            assert self.buffer is not None
            self.buffer.set_start(self._start_time)
        else:
            at = None if self._start_time is None else item_at(track.items, self._start_time)
            if at is None:
                return False
            first = at
        track.next_position = first.position
        return True

    def _should_switch(self, track: TrackState, item: MediaItem | None) -> bool:
        """A pending switch happens at the video track's next switch point."""
        pending = track.name == "video" and self.pending_level not in (None, self.level)
        return pending and track.at_switch_point(item)

    def _switch(self, track: TrackState) -> None:
        assert self.pending_level is not None
        self.level = self.pending_level
        self.pending_level = None
        self.switches += 1
        track.switch_to(urljoin(self.url, self.variants[self.level].uri))
        if track.playlist_request is not None:  # its answer, if any, is ignored
            self.ledger.abandon(track.playlist_request)
            track.playlist_request = None
