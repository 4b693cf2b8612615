"""What publishes into a stream: the seam every source implements (adapters).

Sources: :class:`~livecast.transcode.supervisor.TranscodeSupervisor` (the test pattern through
the FFmpeg ladder), :class:`~livecast.sources.loop_source.LoopSource` (a pre-encoded loop replayed
as live); next, RTMP/SRT ingest. Each is built with the :class:`~livecast.hub.publisher.Publisher`'s
``on_start(generation, epoch)`` and ``on_data(rendition, generation, bytes)`` as its callbacks.
Restarting is part of the seam: whoever finds the media unusable asks the source to
:meth:`Source.restart`, never reaches around it to the process.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

OnStart = Callable[[int, float], None]  # (generation, epoch)
OnData = Callable[[str, int, bytes], None]  # (rendition, generation, fMP4 bytes)


class Source(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def wait(self) -> int | None:
        """Until the source gives up for good or is stopped; its exit code."""

    def restart(self, reason: str) -> None:
        """The current run's media is unusable: start the next run (a new generation), or give
        up if this source cannot (then :meth:`wait` returns)."""

    @property
    def pid(self) -> int | None:
        """The process producing the media now, if there is one."""

    @property
    def stderr_tail(self) -> list[str]: ...
