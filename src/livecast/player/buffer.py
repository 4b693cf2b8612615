"""The media buffer against wall time: startup, playback, stalls, resume (pure).

Media time here is *program time*: epoch seconds from EXT-X-PROGRAM-DATE-TIME (segment PDT plus
the durations of the parts before it), so the frame being presented at the playhead has PDT
``playhead`` and latency behind live is simply ``now − playhead``.

Each track (video, audio — or one muxed track) has a contiguous buffered range, extended as its
media arrives in order. What can be played is up to the smallest track end (the browser's
SourceBuffer intersection).

Definitions (mirroring what an HTML media element does under hls.js):
  * start position: where playback begins (see ``player.model``: hls.js's live sync position,
    inside the first fragment the player chose);
  * **first frame** (startup complete): the moment every track holds media from the start position
    and more than ``start_buffer`` seconds are playable beyond it (the model's default 0.1 s of
    video *and* audio beyond the start position; HAVE_FUTURE_DATA). The playhead
    then starts at the latest track start, never before the start position;
  * playback: the playhead moves at rate 1 with wall time (hls.js ``maxLiveSyncPlaybackRate`` 1:
    no catch-up);
  * **stall**: the playhead reaches the playable end — counted at the exact wall time it got there,
    even when the model learns it later;
  * **resume**: at least ``resume_buffer`` seconds playable ahead of the playhead again (or the
    stream ended);
  * **holes**: media that never arrived (a position skipped after falling out of the playlist
    window, the PDT gap of an encoder restart) leaves a hole in a track's buffered ranges; the
    playhead stalls at it and, once every track holds media beyond it, jumps to that media —
    hls.js's gap controller (``_trySkipBufferHole``) does the same. Skipped media is neither
    played nor stalled time, and the latency drops by the hole;
  * played / stalled seconds accumulate exactly between events; average bitrate is the video
    bitrate of the media under the playhead, weighted by the time it was played.
"""

from __future__ import annotations

from collections import deque
from enum import StrEnum

TOLERANCE = 0.05  # seconds: ranges closer than this are contiguous (PDT has ms precision)
DRAIN_STEP = 1e-3  # seconds past a playhead already at the end: when the stall registers


class PlaybackState(StrEnum):
    WAITING = "waiting"  # before the first frame
    PLAYING = "playing"
    STALLED = "stalled"
    ENDED = "ended"


class MediaBuffer:
    def __init__(self, tracks: tuple[str, ...], start_buffer: float, resume_buffer: float) -> None:
        self.tracks = tracks
        self.start_buffer = start_buffer
        self.resume_buffer = resume_buffer
        self.state = PlaybackState.WAITING
        self.start_position: float | None = None
        self.track_starts: dict[str, float | None] = dict.fromkeys(tracks)
        self.playhead: float | None = None
        self.clock: float | None = None  # wall time the playhead was last advanced to
        self.first_frame_at: float | None = None
        self.played = 0.0
        self.stalled = 0.0
        self.stall_count = 0
        self.skipped = 0.0  # seconds of media jumped over (holes)
        self.bitrate_seconds = 0.0  # ∫ bitrate dt over played time
        self.complete = False  # the stream ended and every track holds its last media
        self._ranges: dict[str, list[list[float]]] = {track: [] for track in tracks}
        self._bitrates: deque[tuple[float, float, int]] = deque()  # (start, end, bps) of video

    # ------------------------------------------------------------------ queries
    def _reference(self) -> float | None:
        """Where playback is (or will start): the playhead, else the start position."""
        if self.playhead is not None:
            return self.playhead
        reference = self.start_position
        if reference is None:
            return None
        for start in self.track_starts.values():  # the latest track start, if later
            if start is not None and start > reference:
                reference = start
        return reference

    def _contiguous_end(self, track: str, at: float) -> float | None:
        for start, end in self._ranges[track]:
            if start - TOLERANCE <= at <= end + TOLERANCE:
                return end
        return None

    @property
    def playable_end(self) -> float | None:
        """End of the media every track holds contiguously from the playhead."""
        at = self._reference()
        if at is None:
            return None
        end = None  # the smallest track end (no list: asked several times per answer)
        for track in self.tracks:
            track_end = self._contiguous_end(track, at)
            if track_end is None:
                return None
            if end is None or track_end < end:
                end = track_end
        return end

    def ahead(self) -> float:
        """Seconds playable ahead of the playhead (before startup: beyond the start position)."""
        at, end = self._reference(), self.playable_end
        return 0.0 if at is None or end is None else max(0.0, end - at)

    def track_ahead(self, track: str) -> float:
        at = self._reference()
        end = self._contiguous_end(track, at) if at is not None else None
        return 0.0 if at is None or end is None else max(0.0, end - at)

    def drain_at(self) -> float | None:
        """Wall time at which the playhead reaches the end of what every track holds if nothing
        more arrives — a stall, a hole to jump, or the end of a complete stream; None unless
        playing. A playhead already at the end stalls as soon as time passes: then
        :data:`DRAIN_STEP` after the clock. Allocates nothing (asked after every answer)."""
        playhead, clock = self.playhead, self.clock
        if self.state is not PlaybackState.PLAYING or playhead is None or clock is None:
            return None
        end = None
        for track in self.tracks:
            track_end = self._contiguous_end(track, playhead)
            if track_end is None:
                return clock + DRAIN_STEP
            if end is None or track_end < end:
                end = track_end
        if end is None or end <= playhead:
            return clock + DRAIN_STEP
        return clock + (end - playhead)

    def ranges(self, track: str) -> list[tuple[float, float]]:
        return [(start, end) for start, end in self._ranges[track]]

    # ------------------------------------------------------------------ events
    def set_start(self, position: float) -> None:
        self.start_position = position

    def add(
        self, track: str, start: float, end: float, now: float, bitrate: int | None = None
    ) -> None:
        """Media of ``track`` covering [start, end) program time arrived at ``now``."""
        self.advance(now)
        if self.track_starts[track] is None:
            self.track_starts[track] = start
        _insert(self._ranges[track], start, end)
        if bitrate is not None:
            self._bitrates.append((start, end, bitrate))
        self._maybe_play(now)

    def mark_complete(self, now: float) -> None:
        """No more media will come (EXT-X-ENDLIST): reaching the end is the end, not a stall."""
        self.advance(now)
        self.complete = True
        self._maybe_play(now)

    def advance(self, now: float) -> None:
        """Move the playhead to wall time ``now``, detecting a stall where it happened."""
        if self.clock is None or now <= self.clock:
            self.clock = now if self.clock is None else self.clock
            return
        elapsed = now - self.clock
        self.clock = now
        if self.state is PlaybackState.STALLED:
            self.stalled += elapsed
        elif self.state is PlaybackState.PLAYING:
            self._play(elapsed)

    def stop(self, now: float) -> None:
        self.advance(now)
        self.state = PlaybackState.ENDED

    # ------------------------------------------------------------------ internals
    def _play(self, elapsed: float) -> None:
        assert self.playhead is not None
        while elapsed > 0:
            end = self.playable_end
            room = max(0.0, (end if end is not None else self.playhead) - self.playhead)
            step = min(elapsed, room)
            self._count_bitrate(self.playhead, self.playhead + step)
            self.playhead += step
            self.played += step
            elapsed -= step
            if elapsed <= 0:
                break
            target = self._hole_target()
            if target is None:
                if self.complete:
                    self.state = PlaybackState.ENDED
                    return
                self.state = PlaybackState.STALLED
                self.stall_count += 1
                self.stalled += elapsed
                break
            self.skipped += target - self.playhead
            self.playhead = target
        self._prune()

    def _maybe_play(self, now: float) -> None:
        if self.state is PlaybackState.WAITING:
            at, end = self._reference(), self.playable_end
            if at is None or end is None:
                return
            if end - at > self.start_buffer or (self.complete and end > at):
                self.playhead = at
                self.state = PlaybackState.PLAYING
                self.first_frame_at = now
                self.clock = now
        elif self.state is PlaybackState.STALLED:
            assert self.playhead is not None
            target = self._hole_target()
            if target is not None and self.ahead() <= 0:
                self.skipped += target - self.playhead
                self.playhead = target
            enough = self.ahead() >= self.resume_buffer
            if enough or target is not None or (self.complete and self.ahead() > 0):
                self.state = PlaybackState.PLAYING

    def _hole_target(self) -> float | None:
        """Where playback continues past a hole at the playable end: the first point every track
        holds media again — None when some track has nothing beyond it yet."""
        assert self.playhead is not None
        end = self.playable_end
        base = end if end is not None else self.playhead
        beyond = [_next_start(self._ranges[t], base) for t in self.tracks]
        if any(start is None for start in beyond):
            return None
        target = max(start for start in beyond if start is not None)
        if target <= base + TOLERANCE:
            return None
        for track in self.tracks:
            track_end = self._contiguous_end(track, target)
            if track_end is None or track_end <= target:
                return None
        return target

    def _prune(self) -> None:
        """Forget ranges well behind the playhead."""
        assert self.playhead is not None
        horizon = self.playhead - 30.0
        for ranges in self._ranges.values():
            while len(ranges) > 1 and ranges[0][1] < horizon:
                ranges.pop(0)

    def _count_bitrate(self, start: float, end: float) -> None:
        while self._bitrates and self._bitrates[0][1] <= start:
            self._bitrates.popleft()
        for range_start, range_end, bps in self._bitrates:
            if range_start >= end:
                break
            overlap = min(end, range_end) - max(start, range_start)
            if overlap > 0:
                self.bitrate_seconds += overlap * bps


def _insert(ranges: list[list[float]], start: float, end: float) -> None:
    """Add [start, end) to sorted, disjoint ``ranges``, merging what touches it."""
    if ranges and start >= ranges[-1][0]:  # in order, the usual case: at the end, no sort
        last = ranges[-1]
        if start <= last[1] + TOLERANCE:
            if end > last[1]:
                last[1] = end
        else:
            ranges.append([start, end])
        return
    ranges.append([start, end])
    ranges.sort()
    merged: list[list[float]] = []
    for current in ranges:
        if merged and current[0] <= merged[-1][1] + TOLERANCE:
            merged[-1][1] = max(merged[-1][1], current[1])
        else:
            merged.append(current)
    ranges[:] = merged


def _next_start(ranges: list[list[float]], at: float) -> float | None:
    """``at`` itself when a range holds it, else the start of the first range after it."""
    for start, end in ranges:
        if start - TOLERANCE <= at <= end + TOLERANCE and end > at + TOLERANCE:
            return at
        if start > at:
            return start
    return None
