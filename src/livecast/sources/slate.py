"""The slate: "we'll be right back", encoded once for the ladder, replayed when the input is lost.

When the contribution goes away (the encoder crashed, the link dropped) viewers should see a
slate, not a spinner and then a fatal error. :func:`slate_source` is the slate as a
:class:`~livecast.transcode.source_spec.SourceSpec`: a solid :data:`SLATE_RGB` background, the
message in the middle (when a font is available) and silence. :class:`SlateReplay` pre-encodes it
through the ladder's own FFmpeg command when the event starts
(:func:`~livecast.sources.loop_source.pre_encode`, cached like the loop source's media: every
rendition, the same sizes, codecs and fragment layout as the programme), so putting it on air is
instant: :meth:`SlateReplay.play` hands the packager a new run — its init segments at once, then
each fragment when it would be complete live (:class:`~livecast.sources.loop.ReplaySchedule`,
paced by the wall clock from the epoch given), looping for as long as the slate stays on air.

The slate is a run like any other: the packager cuts it after an ``EXT-X-DISCONTINUITY`` and the
programme returns after another; media sequence numbers continue and the program date-time
follows the epoch, which the caller takes from the wall clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

from livecast.errors import LivecastError
from livecast.hub.source import OnData, OnStart
from livecast.sources.loop import LoopTrack, ReplaySchedule
from livecast.sources.loop_source import load_tracks, pre_encode
from livecast.sources.testsrc import escape_filter_value
from livecast.transcode.ladder import Ladder
from livecast.transcode.source_spec import AUDIO_LABEL, VIDEO_LABEL, SourceSpec

__all__ = ["SLATE_MESSAGE", "SLATE_RGB", "SLATE_SEGMENTS", "SlateReplay", "slate_source"]

log = logging.getLogger("livecast.ingest")

SLATE_RGB = (0x1D, 0x35, 0x57)  # the background: a test finds it in a decoded frame
SLATE_MESSAGE = "We'll be right back"
SLATE_SEGMENTS = 2  # the slate loops every two segments


def slate_source(ladder: Ladder, font: str | None, duration: float) -> SourceSpec:
    """``duration`` seconds of the slate at the top rung's size and the ladder's frame rate."""
    top = ladder.rungs[0]
    color = "0x{:02X}{:02X}{:02X}".format(*SLATE_RGB)
    layout = "stereo" if ladder.audio_channels == 2 else "mono"
    limit = ("-t", f"{duration:.6f}")
    video = f"color=c={color}:size={top.width}x{top.height}:rate={ladder.fps}"
    silence = f"anullsrc=r={ladder.audio_rate}:cl={layout}"
    chain = ["format=yuv420p"]
    if font is not None:
        size = max(16, top.height // 12)
        options = {
            "fontfile": font,
            "fontsize": str(size),
            "fontcolor": "white",
            "x": "(w-text_w)/2",
            "y": "(h-text_h)/2",
            "text": SLATE_MESSAGE,
        }
        chain.append(
            "drawtext=" + ":".join(f"{k}={escape_filter_value(v)}" for k, v in options.items())
        )
    return SourceSpec(
        input_args=(*limit, "-f", "lavfi", "-i", video, *limit, "-f", "lavfi", "-i", silence),
        filtergraph=f"[0:v]{','.join(chain)}[{VIDEO_LABEL}];[1:a]anull[{AUDIO_LABEL}]",
        description=f"slate {top.width}x{top.height}@{ladder.fps} + silence",
    )


class SlateReplay:
    """The pre-encoded slate, put on air as a run of its own (see the module doc)."""

    def __init__(
        self,
        ladder: Ladder,
        ffmpeg: str,
        on_data: OnData,
        *,
        on_start: OnStart,
        cache_dir: Path,
        font: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.ladder = ladder
        self.ffmpeg = ffmpeg
        self.font = font
        self.cache_dir = cache_dir
        self.loop = SLATE_SEGMENTS * Fraction(ladder.segment_frames, ladder.fps)
        self._on_data = on_data
        self._on_start = on_start
        self._clock = clock
        self._tracks: tuple[LoopTrack, ...] | None = None
        self._task: asyncio.Task[None] | None = None
        self._schedule: ReplaySchedule | None = None
        self._released_seconds = 0.0  # media released in the current play
        self.generation: int | None = None  # the run on air, if any
        self.epoch = 0.0

    @property
    def ready(self) -> bool:
        return self._tracks is not None

    def aired_until(self) -> float:
        """Wall-clock end of the slate media released so far (the epoch when none)."""
        return self.epoch + self._released_seconds

    async def prepare(self) -> None:
        """Pre-encode (or reuse) the slate and load it; once, when the event starts."""
        directory, encoded = await pre_encode(
            self.ladder,
            self.ffmpeg,
            self.font,
            self.loop,
            self.cache_dir,
            source_for=lambda seconds: slate_source(self.ladder, self.font, seconds),
            label="slate",
        )
        self._tracks = await asyncio.to_thread(load_tracks, directory, self.ladder, self.loop)
        log.info("slate ready (%s, %s)", directory, "encoded now" if encoded else "cached")

    def play(self, generation: int, epoch: float) -> None:
        """Put the slate on air as run ``generation`` whose media time 0 is at ``epoch``."""
        if self._tracks is None:
            raise LivecastError("the slate is not prepared")
        self.stop()
        self.generation, self.epoch = generation, epoch
        self._schedule = ReplaySchedule(self._tracks)
        self._released_seconds = 0.0
        self._on_start(generation, epoch)
        for track in self._tracks:
            self._on_data(track.rendition, generation, track.init)
        self._task = asyncio.create_task(self._replay(self._schedule, generation), name="slate")

    def stop(self) -> None:
        """Off air: no more fragments (what was released stays in the playlist)."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self.generation = None

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _release(self, schedule: ReplaySchedule, generation: int) -> None:
        for track, n in schedule.due(self._clock() - self.epoch):
            end = track.release_time(n)
            self._released_seconds = max(self._released_seconds, end)
            self._on_data(track.rendition, generation, track.render(n))

    async def _replay(self, schedule: ReplaySchedule, generation: int) -> None:
        while True:
            self._release(schedule, generation)
            wait = schedule.next_release() - (self._clock() - self.epoch)
            await asyncio.sleep(max(0.0, wait))
