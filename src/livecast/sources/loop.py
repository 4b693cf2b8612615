"""The loop source's core: a pre-encoded ladder replayed as a live stream — sans-IO.

The pre-encode (``sources/loop_source.py``) leaves one fMP4 stream per rendition, a little longer
than the loop. :func:`load_track` turns each into a :class:`LoopTrack`: the init segment and the
fragments of exactly one loop, ``[0, loop)`` on the media timeline. The loop is a whole number of
segments, so video ends on a keyframe boundary. Audio does not divide evenly (an AAC frame is 1024
samples: 4 s at 48 kHz is 187.5 frames), so the fragment that straddles the loop end is *clipped*
(:func:`livecast.media.rewrite.rewrite_fragment` with ``clip_end``): its last frame is kept but
declared shorter, ending exactly on the boundary, and anything after it is dropped. Audio and
video therefore loop at the same instant, decode times never go backwards and segment boundaries
stay on ``k × segment_duration``. The cost is one partly heard AAC frame (≤ 21 ms) per loop.

Replay: global fragment ``n`` of a track is fragment ``k = n mod count`` of loop
``L = n div count``. It is *released* — handed to the packager — when it would be complete in a
live encode, at ``epoch + L × loop + end(k)`` (:meth:`LoopTrack.release_time`), with its ``tfdt``
moved to ``L × loop + start(k)`` (64-bit) and its ``mfhd`` sequence number ``n + 1``
(:meth:`LoopTrack.render`). :class:`ReplaySchedule` answers "which fragments are due at
``elapsed`` seconds after the epoch?" and "when is the next one?" — time is passed in.

Epoch lock: every fragment's bytes and release time depend only on ``n`` and the epoch, so
several replayers given the same epoch (redundant origins, or one restarted after a crash) produce
the same media under the same names. One that starts late does not start at fragment 0 but at the
first fragment of segment :func:`start_segment` — a whole segment, as the packager's cutter would
have opened it (:func:`segment_start_fragment`) — and releases what is already due at once, so its
packager ends up in the same state as one that ran from the start.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

from livecast.errors import MediaError
from livecast.media.fmp4 import FMP4StreamReader, Fragment, InitSegment, TrackInfo
from livecast.media.rewrite import rewrite_fragment

__all__ = [
    "LoopFragment",
    "LoopTrack",
    "ReplaySchedule",
    "load_track",
    "loop_ticks",
    "segment_start_fragment",
    "start_cursors",
    "start_segment",
]


@dataclass(frozen=True, slots=True)
class LoopFragment:
    data: bytes  # moof + mdat, 64-bit tfdt, clipped to the loop
    decode_time: int  # within the loop, track timescale
    duration: int


@dataclass(frozen=True)
class LoopTrack:
    """One rendition's loop: init segment + the fragments of ``[0, loop_ticks)``."""

    rendition: str
    init: bytes
    track: TrackInfo
    loop_ticks: int
    fragments: tuple[LoopFragment, ...]

    def __post_init__(self) -> None:
        if not self.fragments:
            raise MediaError(f"{self.rendition}: the loop has no fragments")

    @property
    def loop_seconds(self) -> float:
        return self.loop_ticks / self.track.timescale

    def locate(self, n: int) -> tuple[int, LoopFragment]:
        """``(loop number, fragment)`` of global fragment ``n``."""
        loop, index = divmod(n, len(self.fragments))
        return loop, self.fragments[index]

    def decode_time(self, n: int) -> int:
        """Rewritten ``tfdt`` of global fragment ``n`` (continues across loops)."""
        loop, fragment = self.locate(n)
        return loop * self.loop_ticks + fragment.decode_time

    def release_time(self, n: int) -> float:
        """Seconds after the epoch at which global fragment ``n`` is complete (its media end)."""
        loop, fragment = self.locate(n)
        end = loop * self.loop_ticks + fragment.decode_time + fragment.duration
        return end / self.track.timescale

    def render(self, n: int) -> bytes:
        """The bytes of global fragment ``n``: new ``tfdt`` and ``mfhd`` sequence number."""
        _, fragment = self.locate(n)
        return rewrite_fragment(
            fragment.data, self.track, decode_time=self.decode_time(n), sequence=n + 1
        )


def loop_ticks(loop_seconds: Fraction, timescale: int) -> int:
    """The loop's length in a track timescale; it must be a whole number of ticks."""
    ticks = loop_seconds * timescale
    if ticks.denominator != 1:
        raise MediaError(
            f"a loop of {float(loop_seconds):g} s is not a whole number of ticks at {timescale}/s"
        )
    return int(ticks)


def _split_stream(rendition: str, stream: bytes) -> tuple[InitSegment, list[Fragment]]:
    items = FMP4StreamReader().feed(stream)
    if not items or not isinstance(items[0], InitSegment):
        raise MediaError(f"{rendition}: the pre-encoded stream has no init segment")
    fragments = [item for item in items[1:] if isinstance(item, Fragment)]
    if len(fragments) != len(items) - 1:
        raise MediaError(f"{rendition}: more than one init segment in the pre-encoded stream")
    return items[0], fragments


def load_track(rendition: str, stream: bytes, loop_seconds: Fraction) -> LoopTrack:
    """Cut one loop out of a pre-encoded fMP4 stream (see the module doc).

    Fragments starting at or after the loop end are dropped; the one straddling it is clipped.
    A stream that ends before the loop does, or whose decode times go backwards, is refused.
    """
    init, fragments = _split_stream(rendition, stream)
    ticks = loop_ticks(loop_seconds, init.track.timescale)
    kept: list[LoopFragment] = []
    end = 0
    for fragment in fragments:
        if fragment.decode_time >= ticks:
            break
        if fragment.decode_time < end:
            raise MediaError(f"{rendition}: decode time {fragment.decode_time} goes backwards")
        data, duration = fragment.data, fragment.duration
        if fragment.decode_time + duration > ticks:
            data = rewrite_fragment(data, init.track, clip_end=ticks)
            duration = ticks - fragment.decode_time
        else:
            data = rewrite_fragment(data, init.track)  # 64-bit tfdt, so later rewrites are cheap
        kept.append(LoopFragment(data, fragment.decode_time, duration))
        end = fragment.decode_time + duration
    if end != ticks:
        raise MediaError(
            f"{rendition}: the pre-encode ends at {end / init.track.timescale:.3f} s, "
            f"before the {float(loop_seconds):g} s loop"
        )
    return LoopTrack(rendition, init.data, init.track, ticks, tuple(kept))


@dataclass
class ReplaySchedule:
    """Which fragments of which tracks are due; ``cursors`` holds each track's next ``n``."""

    tracks: tuple[LoopTrack, ...]
    cursors: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for track in self.tracks:
            self.cursors.setdefault(track.rendition, 0)

    def next_release(self) -> float:
        """Seconds after the epoch at which the next fragment (of any track) becomes due."""
        return min(t.release_time(self.cursors[t.rendition]) for t in self.tracks)

    def due(self, elapsed: float) -> list[tuple[LoopTrack, int]]:
        """Every ``(track, n)`` complete at ``elapsed`` seconds after the epoch and not yet
        released, in release order (ties: track order); advances the cursors."""
        out: list[tuple[float, int, LoopTrack, int]] = []
        for order, track in enumerate(self.tracks):
            n = self.cursors[track.rendition]
            while (at := track.release_time(n)) <= elapsed:
                out.append((at, order, track, n))
                n += 1
            self.cursors[track.rendition] = n
        out.sort(key=lambda item: (item[0], item[1], item[3]))
        return [(track, n) for _, _, track, n in out]


def start_segment(elapsed: float, segment_duration: float, history: float = 0.0) -> int:
    """The segment a replay started ``elapsed`` seconds after the epoch begins with: the one
    ``history`` seconds back (whole segments, never before 0), so that what a packager that ran
    from the epoch would still hold is rebuilt. ``elapsed`` ≤ ``history``: segment 0."""
    return max(0, math.floor((elapsed - history) / segment_duration + 1e-9))


def segment_start_fragment(track: LoopTrack, segment: int, segment_duration: Fraction) -> int:
    """The global fragment that opens media segment ``segment`` (``[segment × SD, …)``) when the
    fragments are cut from fragment 0 on: the one after the fragment that closes ``segment - 1``.

    The rule is :class:`~livecast.packager.cutter.SegmentCutter`'s: a fragment closes the segment
    when it ends within half its own duration of the boundary (ties close). Video fragments end
    exactly on it; audio ones straddle it. The loop is a whole number of segments and each loop
    ends with a fragment clipped to the boundary, so each loop starts a segment with fragment 0.
    """
    if segment <= 0:
        return 0
    timescale = track.track.timescale
    per_loop = Fraction(track.loop_ticks, timescale) / segment_duration
    if per_loop.denominator != 1:
        raise MediaError(f"{track.rendition}: the loop is not a whole number of segments")
    loop, within = divmod(segment, int(per_loop))
    count = len(track.fragments)
    if within == 0:
        return loop * count
    twice_boundary = 2 * within * segment_duration * timescale  # in ticks, doubled
    for index, fragment in enumerate(track.fragments):
        if 2 * (fragment.decode_time + fragment.duration) + fragment.duration >= twice_boundary:
            return loop * count + index + 1
    return (loop + 1) * count  # not reached: the last fragment ends on the loop boundary


def start_cursors(
    tracks: tuple[LoopTrack, ...], segment: int, segment_duration: Fraction
) -> dict[str, int]:
    """:class:`ReplaySchedule` cursors that begin every track with segment ``segment``."""
    return {t.rendition: segment_start_fragment(t, segment, segment_duration) for t in tracks}
