"""From a source's bytes to a stream's units — sans-IO.

A source (the FFmpeg supervisor, the loop replayer, later RTMP/SRT ingest) calls
``on_start(generation, epoch)`` when a run begins and ``on_data(rendition, generation, bytes)``
with fMP4 as it arrives. The :class:`Publisher` reads the boxes (one
:class:`~livecast.media.fmp4.FMP4StreamReader` per rendition and run), drops late bytes of a run
already replaced, and publishes init segments and fragments to its :class:`Stream`. Bytes that are
not fMP4 (a :class:`~livecast.errors.MediaError`) end the run for every reader: the publisher
ignores the rest of it and reports it once through ``on_broken`` — the adapter asks the source to
restart, which starts the next run (the packager continues after a discontinuity).
"""

from __future__ import annotations

from collections.abc import Callable

from livecast.errors import MediaError
from livecast.hub.stream import MediaUnit, RunStarted, Stream, StreamEnded
from livecast.media.fmp4 import FMP4StreamReader

OnBroken = Callable[[str, MediaError], None]  # (rendition, error)


class Publisher:
    def __init__(self, stream: Stream, on_broken: OnBroken) -> None:
        self.stream = stream
        self._on_broken = on_broken
        self._readers: dict[str, FMP4StreamReader] = {}
        self.generation = -1
        self.broken_generation = -1
        self.media_errors = 0

    def on_start(self, generation: int, epoch: float) -> None:
        self.generation = generation
        self._readers = {name: FMP4StreamReader() for name in self.stream.renditions}
        self.stream.publish(RunStarted(generation, epoch))

    def on_data(self, rendition: str, generation: int, data: bytes) -> None:
        if generation != self.generation or generation == self.broken_generation:
            return  # late bytes of a run already replaced, or of one being replaced
        reader = self._readers.get(rendition)
        if reader is None:
            self.broken(rendition, MediaError(f"no rendition {rendition!r} in this stream"))
            return
        try:
            items = reader.feed(data)
        except MediaError as exc:
            self.broken(rendition, exc)
            return
        for item in items:
            self.stream.publish(MediaUnit(rendition, generation, item))

    def broken(self, rendition: str, error: MediaError) -> None:
        """The current run is unusable (here, or as a reader found): ignore the rest of it and
        report it once."""
        if self.broken_generation == self.generation:
            return
        self.broken_generation = self.generation
        self.media_errors += 1
        self._on_broken(rendition, error)

    def end(self) -> None:
        self.stream.publish(StreamEnded())
