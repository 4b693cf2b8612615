"""Stopping a serving command by signal (adapter): SIGTERM ends the event, SIGINT only stops the
server (docs/recording.md). Used by ``livecast serve`` and ``livecast up``; re-exported by
:mod:`livecast.pipeline`."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator

__all__ = ["StopRequest", "stop_on_signals"]


class StopRequest(asyncio.Event):
    """Set by SIGINT or SIGTERM; ``signum`` says which (SIGTERM ends the event, SIGINT only stops
    the server: docs/recording.md)."""

    signum: signal.Signals | None = None

    def request(self, signum: signal.Signals) -> None:
        if self.signum is None:
            self.signum = signum
        self.set()

    @property
    def ends_event(self) -> bool:
        return self.signum == signal.SIGTERM


@contextlib.contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """A :class:`StopRequest` set by SIGINT or SIGTERM while the block runs (the commands that
    serve)."""
    stop = StopRequest()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.request, sig)
    try:
        yield stop
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
