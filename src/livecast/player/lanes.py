"""Connection choice and timers for drivers of many players (pure; ``player.harness`` is the rest).

  * :class:`Router` — host, port and request target of a request URL (authorities memoised: a
    handful of entry points serve every request of a run);
  * :class:`LanePool` — a viewer's keep-alive connections ("lanes"), at most
    :data:`MAX_LANES`: the player keeps at most one playlist and one media request in flight per
    track (video, audio), as a browser would on HTTP/1.1. A request takes an idle lane to its
    host:port, else opens one while there is room — closing an idle lane to another host when
    there is not — else waits, first in first out, for a lane to come free;
  * :class:`DeadlineWheel` — the deadlines of many viewers in slots of a fixed resolution: a
    driver arms each viewer once for its next deadline and, from one periodic timer, wakes only
    the viewers due — never early, at most one slot plus the timer's period late.

Lanes are the driver's own connection objects (an asyncio protocol, a gevent HTTP client); the
pool only needs their host, port, whether they are busy and how to close them (:class:`Lane`).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar
from urllib.parse import urlsplit

from livecast.player.requests import Request

MAX_LANES = 4  # connections per viewer: a playlist and a media request per track


class Router:
    """``(host, port, target)`` of absolute http URLs; the target keeps the query."""

    __slots__ = ("_authorities",)

    def __init__(self) -> None:
        self._authorities: dict[str, tuple[str, int]] = {}

    def route(self, url: str) -> tuple[str, int, str]:
        authority, slash, path = url.partition("://")[2].partition("/")
        address = self._authorities.get(authority)
        if address is None:
            split = urlsplit(f"http://{authority}/")
            address = self._authorities[authority] = (
                split.hostname or "127.0.0.1",
                split.port or 80,
            )
        return address[0], address[1], (slash + path) or "/"


class Lane(Protocol):
    """One keep-alive connection as the pool sees it."""

    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...

    @property
    def busy(self) -> bool: ...

    def close(self) -> None: ...


L = TypeVar("L", bound=Lane)


class LanePool(Generic[L]):
    """One viewer's lanes; ``open_lane(host, port)`` makes a new one (connecting lazily)."""

    __slots__ = ("lanes", "limit", "open_lane", "waiting")

    def __init__(self, open_lane: Callable[[str, int], L], limit: int = MAX_LANES) -> None:
        self.open_lane = open_lane
        self.limit = limit
        self.lanes: list[L] = []
        self.waiting: deque[Request] = deque()

    def acquire(self, host: str, port: int) -> L | None:
        """An idle lane to ``host:port`` — reused, opened, or opened in place of an idle lane to
        another host — or None when every lane is busy (then :meth:`wait`)."""
        lanes = self.lanes
        for lane in lanes:
            if not lane.busy and lane.port == port and lane.host == host:
                return lane
        if len(lanes) >= self.limit:
            idle = next((lane for lane in lanes if not lane.busy), None)
            if idle is None:
                return None
            lanes.remove(idle)
            idle.close()
        lane = self.open_lane(host, port)
        lanes.append(lane)
        return lane

    def wait(self, request: Request) -> None:
        """``request`` found every lane busy: it goes when one comes free."""
        self.waiting.append(request)

    def next_waiting(self) -> Request | None:
        """The request that waited longest (call when a lane comes free)."""
        return self.waiting.popleft() if self.waiting else None

    def discard(self, lane: L) -> None:
        """A lane that failed, closed: the next request opens a new one."""
        lane.close()
        if lane in self.lanes:
            self.lanes.remove(lane)

    def close_all(self) -> None:
        for lane in self.lanes:
            lane.close()
        self.lanes.clear()
        self.waiting.clear()


class Armable(Protocol):
    """What the wheel keeps on an item: the slot it is armed for (None: not armed)."""

    armed_slot: int | None


A = TypeVar("A", bound=Armable)


class DeadlineWheel(Generic[A]):
    """Items armed for deadlines, handed out by :meth:`due` once their slot (of ``resolution``
    seconds, rounded up) has begun. Arming for a later deadline than the one armed changes
    nothing — the item wakes at the earlier one and is armed again then — so arming after every
    event is cheap: no allocation unless the deadline moves earlier."""

    __slots__ = ("_next_slot", "_slots", "resolution")

    def __init__(self, resolution: float, now: float) -> None:
        if resolution <= 0:
            raise ValueError("resolution must be > 0")
        self.resolution = resolution
        self._slots: dict[int, list[A]] = {}
        self._next_slot = math.floor(now / resolution) + 1  # the first slot not handed out

    def arm(self, item: A, deadline: float) -> None:
        """Wake ``item`` at ``deadline`` (or at the next :meth:`due` if it is past)."""
        slot = math.ceil(deadline / self.resolution)
        if slot < self._next_slot:
            slot = self._next_slot
        armed = item.armed_slot
        if armed is not None and armed <= slot:
            return
        item.armed_slot = slot
        bucket = self._slots.get(slot)
        if bucket is None:
            self._slots[slot] = [item]
        else:
            bucket.append(item)

    def disarm(self, item: A) -> None:
        item.armed_slot = None  # its entry is skipped when its slot comes

    def due(self, now: float) -> list[A]:
        """Every item whose deadline is at or before ``now``, no longer armed (arm it again)."""
        last = math.floor(now / self.resolution)
        first = self._next_slot
        if last < first:
            return []
        self._next_slot = last + 1
        slots = self._slots
        if last - first < len(slots):
            ready = [s for s in range(first, last + 1) if s in slots]
        else:
            ready = sorted(s for s in slots if s <= last)
        out: list[A] = []
        for slot in ready:
            for item in slots.pop(slot):
                if item.armed_slot == slot:
                    item.armed_slot = None
                    out.append(item)
        return out

    def __len__(self) -> int:
        """Entries waiting, stale ones included (for tests and gauges)."""
        return sum(len(bucket) for bucket in self._slots.values())
