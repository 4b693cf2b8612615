"""The media buffer against wall time: startup, playback, stalls, resume (pure).

Media time here is *program time*: epoch seconds from EXT-X-PROGRAM-DATE-TIME (segment PDT plus
the durations of the parts before it), so the frame being presented at the playhead has PDT
``playhead`` and latency behind live is simply ``now − playhead``.

Each track (video, audio — or one muxed track) has a contiguous buffered range, extended as its
media arrives in order. What can be played is up to the smallest track end (the browser's
SourceBuffer intersection).

Definitions (mirroring what an HTML media element does under hls.js):
  * start position: the program time of the first fragment the player chose (see ``player.model``);
  * **first frame** (startup complete): the moment every track holds media from the start position
    and more than ``start_buffer`` seconds are playable beyond it (default 0: the first whole part
    — or segment in classic mode — of video *and* audio is in hand; HAVE_FUTURE_DATA). The playhead
    then starts at the latest track start, never before the start position;
  * playback: the playhead moves at rate 1 with wall time (hls.js ``maxLiveSyncPlaybackRate`` 1:
    no catch-up);
  * **stall**: the playhead reaches the playable end — counted at the exact wall time it got there,
    even when the model learns it later;
  * **resume**: at least ``resume_buffer`` seconds playable ahead of the playhead again (or the
    stream ended);
  * played / stalled seconds accumulate exactly between events; average bitrate is the video
    bitrate of the media under the playhead, weighted by the time it was played.
"""

from __future__ import annotations

from collections import deque
from enum import StrEnum


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
        self.track_ends: dict[str, float | None] = dict.fromkeys(tracks)
        self.playhead: float | None = None
        self.clock: float | None = None  # wall time the playhead was last advanced to
        self.first_frame_at: float | None = None
        self.played = 0.0
        self.stalled = 0.0
        self.stall_count = 0
        self.bitrate_seconds = 0.0  # ∫ bitrate dt over played time
        self.complete = False  # the stream ended and every track holds its last media
        self._bitrates: deque[tuple[float, float, int]] = deque()  # (start, end, bps) of video

    # ------------------------------------------------------------------ queries
    @property
    def playable_end(self) -> float | None:
        ends = list(self.track_ends.values())
        if any(end is None for end in ends):
            return None
        return min(end for end in ends if end is not None)

    def ahead(self) -> float:
        """Seconds playable ahead of the playhead (before startup: beyond the start position)."""
        end = self.playable_end
        origin = self.playhead if self.playhead is not None else self.start_position
        if end is None or origin is None:
            return 0.0
        return max(0.0, end - origin)

    def track_ahead(self, track: str) -> float:
        end = self.track_ends.get(track)
        origin = self.playhead if self.playhead is not None else self.start_position
        if end is None or origin is None:
            return 0.0
        return max(0.0, end - origin)

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
        previous = self.track_ends[track]
        self.track_ends[track] = end if previous is None else max(previous, end)
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
        end = self.playable_end
        room = max(0.0, (end if end is not None else self.playhead) - self.playhead)
        step = min(elapsed, room)
        self._count_bitrate(self.playhead, self.playhead + step)
        self.playhead += step
        self.played += step
        if elapsed > room or (room == 0.0 and elapsed > 0):
            if self.complete:
                self.state = PlaybackState.ENDED
                return
            self.state = PlaybackState.STALLED
            self.stall_count += 1
            self.stalled += elapsed - step

    def _maybe_play(self, now: float) -> None:
        end = self.playable_end
        if end is None:
            return
        if self.state is PlaybackState.WAITING:
            assert self.start_position is not None, "set_start() before media arrives"
            starts = [s for s in self.track_starts.values() if s is not None]
            playhead = max([self.start_position, *starts])
            if end - playhead > self.start_buffer or (self.complete and end > playhead):
                self.playhead = playhead
                self.state = PlaybackState.PLAYING
                self.first_frame_at = now
                self.clock = now
        elif self.state is PlaybackState.STALLED:
            assert self.playhead is not None
            if end - self.playhead >= self.resume_buffer or self.complete:
                self.state = PlaybackState.PLAYING

    def _count_bitrate(self, start: float, end: float) -> None:
        while self._bitrates and self._bitrates[0][1] <= start:
            self._bitrates.popleft()
        for range_start, range_end, bps in self._bitrates:
            if range_start >= end:
                break
            overlap = min(end, range_end) - max(start, range_start)
            if overlap > 0:
                self.bitrate_seconds += overlap * bps
