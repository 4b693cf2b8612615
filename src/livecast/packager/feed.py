"""The packager as a reader of its stream: hub units in, LiveEvent changes out — sans-IO.

:class:`PackagerFeed` applies a :class:`~livecast.hub.stream.Batch` taken from the packager's
queue to the :class:`~livecast.packager.event.LiveEvent`: a run starting opens a new generation,
init segments and fragments go to their rendition, the end closes every playlist. A run the
packager cannot follow — the queue dropped units (the packager fell behind), or the media breaks a
packaging rule (a fragment before its init, time going backwards) — is *broken*: the rest of it is
skipped and the result says so once, so that the adapter asks the source for a new run; the
playlist continues after a discontinuity.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from livecast.errors import MediaError
from livecast.hub.stream import Batch, MediaUnit, RunStarted, StreamEnded
from livecast.media.fmp4 import InitSegment
from livecast.packager.cutter import PartCut
from livecast.packager.event import LiveEvent


@dataclass(slots=True)
class FeedResult:
    parts: Counter[str] = field(default_factory=Counter)  # parts published, per rendition
    changed: bool = False  # playlists changed: wake the held requests
    runs_started: list[int] = field(default_factory=list)  # generations that began
    broken: tuple[str, MediaError] | None = None  # (rendition, why) when a run broke here
    ended: bool = False


class PackagerFeed:
    def __init__(self, event: LiveEvent) -> None:
        self.event = event
        self.broken_generation = -1

    def apply(self, batch: Batch) -> FeedResult:
        result = FeedResult()
        if batch.dropped:
            error = MediaError(f"the packager fell behind: {batch.dropped} units dropped")
            self._break(result, "*", error)
        for unit in batch.units:
            if isinstance(unit, RunStarted):
                self.event.start_generation(unit.generation, unit.epoch)
                result.runs_started.append(unit.generation)
            elif isinstance(unit, MediaUnit):
                self._media(unit, result)
            elif isinstance(unit, StreamEnded):
                self.event.end()
                result.changed = result.ended = True
        return result

    def _media(self, unit: MediaUnit, result: FeedResult) -> None:
        if unit.generation != self.event.generation or unit.generation == self.broken_generation:
            return
        try:
            if isinstance(unit.item, InitSegment):
                self.event.on_init(unit.rendition, unit.item)
                result.changed = True
                return
            cuts = self.event.on_fragment(unit.rendition, unit.item)
        except MediaError as exc:
            self._break(result, unit.rendition, exc)
            return
        published = sum(isinstance(cut, PartCut) for cut in cuts)
        if published:
            result.parts[unit.rendition] += published
        result.changed = result.changed or bool(cuts)

    def _break(self, result: FeedResult, rendition: str, error: MediaError) -> None:
        self.broken_generation = self.event.generation
        if result.broken is None:
            result.broken = (rendition, error)
