"""One direction of a fault-proxy link: bytes delivered at planned times, with flow control.

An :class:`Outlet` holds the bytes for one destination transport until their due time (from the
pure :class:`~livecast.rehearse.faults.policy.Pacer`), with one timer for the head of its queue.
Its buffer is bounded: once ``high`` bytes wait here, or the destination pauses writing (its own
write buffer is full), it pauses reading on the *source* transport, and
resumes it when the backlog drains below ``high // 4`` — so a delayed or throttled link never
reads unboundedly from its peer.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections import deque
from collections.abc import Callable

from livecast.rehearse.faults.policy import Pacer

SourceGetter = Callable[[], asyncio.Transport | None]


class Outlet:
    """Paced, delayed, bounded delivery of bytes to one transport."""

    def __init__(self, source: SourceGetter, *, high: int = 256 * 1024) -> None:
        self.transport: asyncio.Transport | None = None
        self.pacer = Pacer()
        self.source = source
        self.high = high
        self.low = high // 4
        self.queued = 0
        self.delivered = 0
        self._queue: deque[tuple[float, bytes]] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._dest_paused = False
        self._source_paused = False
        self._finish: str | None = None  # "eof" or "close" once the queue is empty

    @property
    def idle(self) -> bool:
        return not self._queue

    def attach(self, transport: asyncio.Transport) -> None:
        """The destination is connected: start delivering what waits."""
        self.transport = transport
        self._dest_paused = False
        self._pump()

    def detach(self) -> None:
        """The destination went away: drop what waits for it."""
        self.transport = None
        self._clear()

    def push(self, data: bytes, delay: float = 0.0, rate: float | None = None) -> None:
        """Queue ``data`` for delivery after ``delay`` seconds, paced at ``rate`` bytes/s."""
        if not data or self._finish is not None:
            return
        now = asyncio.get_running_loop().time()
        direct = not delay and rate is None and not self._queue and self.pacer.last_due <= now
        if direct and self.transport is not None:
            self._write(data)
            self._update_flow()
            return
        offset = 0
        for due, length in self.pacer.plan(now, len(data), delay, rate):
            self._queue.append((due, data[offset : offset + length]))
            offset += length
        self.queued += len(data)
        self._pump()

    def finish(self, mode: str = "close") -> None:
        """After the queue drains: ``eof`` half-closes the destination, ``close`` closes it."""
        if self._finish is None or mode == "close":
            self._finish = mode
        self._pump()

    def discard(self) -> None:
        """Forget everything queued (the source or destination is gone)."""
        self._clear()
        self._finish = None

    def dest_paused(self, paused: bool) -> None:
        """Called from the destination protocol's ``pause_writing``/``resume_writing``."""
        self._dest_paused = paused
        self._update_flow()

    def reset(self) -> None:
        """Abort the destination with a TCP reset (SO_LINGER 0) and drop the queue."""
        self._clear()
        transport, self.transport = self.transport, None
        if transport is not None:
            abort_with_reset(transport)

    def _clear(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._queue.clear()
        self.queued = 0
        self._update_flow()

    def _pump(self) -> None:
        self._timer = None
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        queue = self._queue
        while queue and queue[0][0] <= now:
            _, data = queue.popleft()
            self.queued -= len(data)
            self._write(data)
        if queue:
            self._timer = loop.call_at(queue[0][0], self._pump)
        elif self._finish is not None:
            self._do_finish(transport)
        self._update_flow()

    def _write(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)
            self.delivered += len(data)

    def _do_finish(self, transport: asyncio.Transport) -> None:
        mode, self._finish = self._finish, None
        if mode == "eof" and transport.can_write_eof():
            transport.write_eof()
        else:
            transport.close()

    def _update_flow(self) -> None:
        source = self.source()
        if source is None or source.is_closing():
            return
        backlog = self.queued  # the destination's own buffer is covered by its pause_writing
        if not self._source_paused and (self._dest_paused or backlog > self.high):
            self._source_paused = True
            source.pause_reading()
        elif self._source_paused and not self._dest_paused and backlog <= self.low:
            self._source_paused = False
            source.resume_reading()


def abort_with_reset(transport: asyncio.Transport) -> None:
    """Abort so that the peer sees a TCP RST, not an orderly FIN."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError, AttributeError, TypeError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
