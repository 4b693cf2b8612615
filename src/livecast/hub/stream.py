"""Streams and their readers — sans-IO.

A :class:`Stream` (one per stream id, held by the :class:`StreamHub`) carries the units its
publisher produces — a run starting, an init segment or a fragment of a rendition, the end — to
every reader attached to it. Each reader has its own bounded :class:`ReaderQueue`: a reader that
falls behind loses units (counted, and flagged on its next :meth:`ReaderQueue.take`) instead of
growing memory or slowing the publisher and the other readers. This is what MediaMTX's ``Stream``
does with its per-reader ring buffers ("reader is too slow, discarding N frames").

No event loop here: a queue calls ``wake`` when it goes from empty to non-empty, and the adapter
decides when the reader drains it (``loop.call_soon`` in the pipeline).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from livecast.errors import LivecastError
from livecast.media.fmp4 import Fragment, InitSegment

# Units a reader may fall behind by. A loop replica that starts late releases its whole history
# (two windows and more, every rendition: thousands of units) in one go, before anyone drains.
DEFAULT_QUEUE = 16_384


@dataclass(frozen=True, slots=True)
class RunStarted:
    """The source (re)started: media time 0 of ``generation`` was captured at ``epoch``."""

    generation: int
    epoch: float


@dataclass(frozen=True, slots=True)
class MediaUnit:
    """An init segment or a fragment of one rendition, from run ``generation``."""

    rendition: str
    generation: int
    item: InitSegment | Fragment


@dataclass(frozen=True, slots=True)
class StreamEnded:
    """The publisher is gone for good (the event is over)."""


Unit = RunStarted | MediaUnit | StreamEnded


@dataclass(frozen=True, slots=True)
class Batch:
    """What a reader takes at once: the units in order, and how many were dropped before them
    since its previous take (a reader that lost units must resynchronise: a new run)."""

    units: list[Unit]
    dropped: int


class ReaderQueue:
    """One reader's bounded queue; counts what it drops."""

    def __init__(self, name: str, capacity: int, wake: Callable[[], None]) -> None:
        if capacity < 1:
            raise LivecastError(f"reader {name!r}: a queue needs room for one unit")
        self.name = name
        self.capacity = capacity
        self._wake = wake
        self._units: deque[Unit] = deque()
        self._dropped_since_take = 0
        self.dropped = 0  # in the queue's life
        self.delivered = 0

    def offer(self, unit: Unit) -> bool:
        """Queue ``unit``; False (and counted) when the queue is full."""
        if len(self._units) >= self.capacity:
            self._dropped_since_take += 1
            self.dropped += 1
            return False
        was_empty = not self._units
        self._units.append(unit)
        if was_empty:
            self._wake()
        return True

    def take(self) -> Batch:
        units = list(self._units)
        self._units.clear()
        dropped, self._dropped_since_take = self._dropped_since_take, 0
        self.delivered += len(units)
        return Batch(units, dropped)


class Stream:
    """One stream: its renditions and the queues of its readers."""

    def __init__(self, stream_id: str, renditions: tuple[str, ...]) -> None:
        self.id = stream_id
        self.renditions = renditions
        self._readers: dict[str, ReaderQueue] = {}
        self.published = 0

    def attach(
        self, name: str, *, wake: Callable[[], None], capacity: int = DEFAULT_QUEUE
    ) -> ReaderQueue:
        if name in self._readers:
            raise LivecastError(f"stream {self.id!r} already has a reader named {name!r}")
        queue = ReaderQueue(name, capacity, wake)
        self._readers[name] = queue
        return queue

    def detach(self, name: str) -> None:
        self._readers.pop(name, None)

    def publish(self, unit: Unit) -> None:
        if isinstance(unit, MediaUnit) and unit.rendition not in self.renditions:
            raise LivecastError(f"stream {self.id!r} has no rendition {unit.rendition!r}")
        self.published += 1
        for queue in self._readers.values():
            queue.offer(unit)


class StreamHub:
    """Every stream of this server, by id."""

    def __init__(self) -> None:
        self._streams: dict[str, Stream] = {}

    def create(self, stream_id: str, renditions: tuple[str, ...]) -> Stream:
        if stream_id in self._streams:
            raise LivecastError(f"stream {stream_id!r} exists already")
        stream = self._streams[stream_id] = Stream(stream_id, renditions)
        return stream
