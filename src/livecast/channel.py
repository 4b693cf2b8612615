"""One event on a server: source → hub stream → packager, with its own ready flag (adapter).

A :class:`Channel` is what :class:`~livecast.pipeline.LivePipeline` runs once per event: the
source (the FFmpeg supervisor, the loop replayer, or the contribution encoders of this event's
keys) publishes fMP4 into its :class:`~livecast.hub.stream.Stream` through a
:class:`~livecast.hub.publisher.Publisher`; the packager reads that stream from its own bounded
queue (:class:`~livecast.packager.feed.PackagerFeed` on the sans-IO :class:`LiveEvent`). Media
that cannot be read or packaged makes the channel ask *its* source for a new run
(:meth:`Source.restart`) — one event's broken encoder never restarts another event's. Changes
are reported through ``on_changed`` (the origin wakes the requests parked on them).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from livecast.errors import LivecastError, MediaError
from livecast.hub.publisher import Publisher
from livecast.hub.source import Source
from livecast.hub.stream import Stream
from livecast.packager.event import LiveEvent
from livecast.packager.feed import FeedResult, PackagerFeed
from livecast.telemetry.metrics import Counter

__all__ = ["Channel", "ChannelMetrics"]

log = logging.getLogger("livecast.pipeline")


@dataclass(frozen=True)
class ChannelMetrics:
    """The pipeline's counters a channel adds to (shared by every channel)."""

    parts: Counter  # (rendition)
    media_errors: Counter  # (rendition)
    restarts: Counter  # ()
    dropped: Counter  # (stream, reader)


class Channel:
    def __init__(
        self,
        event: LiveEvent,
        stream: Stream,
        metrics: ChannelMetrics,
        *,
        source_name: str,
        on_changed: Callable[[], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.event = event
        self.stream = stream
        self.id = stream.id
        self.source_name = source_name
        self.metrics = metrics
        self._on_changed = on_changed
        self._clock = clock
        self.last_media_at: float | None = None  # ``clock`` when a part was last packaged
        self.publisher = Publisher(stream, self._on_broken)
        self._source: Source | None = None
        self._feed = PackagerFeed(event)
        self._queue = stream.attach("packager", wake=self._wake_packager)
        self._drain_scheduled = False
        self.ready = asyncio.Event()
        if event.ready:  # restored from a recording
            self.ready.set()

    @property
    def source(self) -> Source:
        if self._source is None:
            raise LivecastError(f"event {self.id!r} has no source yet")
        return self._source

    @source.setter
    def source(self, source: Source) -> None:
        self._source = source

    async def wait_ready(self, timeout: float) -> None:
        """Until every rendition has a complete segment (so the multivariant playlist is real)."""
        waiter = asyncio.ensure_future(self.ready.wait())
        ended = asyncio.ensure_future(self.source.wait())
        await asyncio.wait({waiter, ended}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        ended.cancel()
        if not self.ready.is_set():
            tail = " | ".join(self.source.stderr_tail[-3:])
            raise LivecastError(f"the stream did not start within {timeout:g} s: {tail}")

    def media_age(self) -> float | None:
        """Seconds since a part was last packaged (None: none yet), by the channel's clock."""
        return None if self.last_media_at is None else self._clock() - self.last_media_at

    async def stop(self, *, end: bool = True) -> None:
        """Stop the source (it delivers its last bytes), package what is left; ``end``: the
        stream ends too (EXT-X-ENDLIST)."""
        if self._source is not None:
            await self._source.stop()
        if end and not self.event.ended:
            self.publisher.end()
        self.drain()

    # ------------------------------------------------------------------ source → hub → packager
    def _on_broken(self, rendition: str, error: MediaError) -> None:
        """The current run's media is unusable (read by the publisher or packaged by the feed):
        the one log line, then a new run from this channel's source."""
        self.metrics.media_errors.inc(rendition)
        log.error(
            "unusable media on %s from the %s source (%s; event %s); restarting it",
            rendition, self.source_name, error, self.id,
        )  # fmt: skip
        self.source.restart(f"unusable media on {rendition}: {error}")

    def _wake_packager(self) -> None:
        if not self._drain_scheduled:
            self._drain_scheduled = True
            asyncio.get_running_loop().call_soon(self.drain)

    def drain(self) -> None:
        self._drain_scheduled = False
        batch = self._queue.take()
        if batch.dropped:
            self.metrics.dropped.inc(self.id, "packager", amount=batch.dropped)
        self._after_feed(self._feed.apply(batch))

    def _after_feed(self, result: FeedResult) -> None:
        for generation in result.runs_started:
            if generation > 0:
                self.metrics.restarts.inc()
        for rendition, parts in result.parts.items():
            self.metrics.parts.inc(rendition, amount=parts)
        if any(result.parts.values()):
            self.last_media_at = self._clock()
        if result.broken is not None:
            self.publisher.broken(*result.broken)
        if result.changed:
            self._on_changed()
        if not self.ready.is_set() and self.event.ready:
            self.ready.set()
