"""Per-viewer quality of experience, with the Mux/Conviva definitions (brief §6) — as the results
package counts it: the player emits a :class:`~livecast.results.stats.ViewerOutcome` directly.

  * startup time: ``start(now)`` (the play request) → first frame (``player.buffer`` defines it);
  * video start failure: a fatal error before the first frame;
  * exit before video start: the viewer left (``leave_at``) before the first frame, no error;
  * stalls, stalled and played seconds (``player.buffer``); the rebuffering ratio is
    :attr:`ViewerOutcome.rebuffering_ratio` — stalls before the first frame are startup, not
    rebuffering;
  * latency behind live: wall clock − PDT of the frame being presented, sampled while playing every
    ``latency_sample_interval`` seconds (:class:`LatencySampler`), summarised by
    :class:`~livecast.results.stats.LatencySummary` (nearest-rank percentiles);
  * average bitrate: video bitrate under the playhead, weighted by played time;
  * switches: rendition changes after the start rendition.
"""

from __future__ import annotations

from livecast.player.buffer import MediaBuffer, PlaybackState
from livecast.results.stats import LatencySummary, ViewerOutcome

FAILED = frozenset({"fatal", "start_failure"})  # player statuses that end on an error


class LatencySampler:
    """Latency behind live every ``interval`` seconds of wall time while playing (pure)."""

    __slots__ = ("interval", "last_at", "samples")

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.samples: list[float] = []
        self.last_at: float | None = None

    def due_at(self, buffer: MediaBuffer) -> float | None:
        """When the next sample is due (possibly already past); None while not playing — playback
        only (re)starts on an answer, after which this is asked again."""
        if buffer.state is not PlaybackState.PLAYING or buffer.playhead is None:
            return None
        last = self.last_at
        return buffer.clock if last is None else last + self.interval

    def observe(self, buffer: MediaBuffer, now: float) -> None:
        """A sample if one is due at ``now`` (``buffer`` already advanced to it)."""
        due = self.due_at(buffer)
        if due is not None and now >= due and buffer.playhead is not None:
            self.last_at = now
            self.samples.append(now - buffer.playhead)


def viewer_outcome(
    *,
    status: str,
    started_at: float | None,
    error: str | None,
    buffer: MediaBuffer | None,
    latency_samples: list[float],
    switches: int,
) -> ViewerOutcome:
    """The outcome of a viewer from its buffer (already advanced to the moment wanted);
    ``status`` is the player's (``"watching"``, ``"ended"``, ``"left"``, ``"exit_before_start"``,
    ``"start_failure"``, ``"fatal"``)."""
    startup = None
    if buffer is None:
        stalls, stalled, played, average_bitrate = 0, 0.0, 0.0, None
    else:
        stalls, stalled, played = buffer.stall_count, buffer.stalled, buffer.played
        average_bitrate = buffer.bitrate_seconds / played if played > 0 else None
        if buffer.first_frame_at is not None and started_at is not None:
            startup = buffer.first_frame_at - started_at
    return ViewerOutcome(
        startup_s=startup,
        start_failed=status == "start_failure",
        exited_before_start=status == "exit_before_start",
        stalls=stalls,
        stalled_s=stalled,
        played_s=played,
        latency=LatencySummary.of(latency_samples),
        avg_bitrate_bps=average_bitrate,
        switches=switches,
        fatal_error=error if status in FAILED else None,
    )
