"""The parking lot of held requests — pure (no I/O, no clock reads: ``now`` is passed in).

A blocking playlist reload or a hinted part that does not exist yet is held (RFC 8216bis
§6.2.5.2: "_HLS_msn=<M>: ... the Server MUST hold the request until a Playlist contains a Media
Segment with a Media Sequence Number of M or later or it times out" — after three Target
Durations, with a 503, here). The adapter parks such a request here under the handler's hold key
with its deadline; then either the key is released (the handler can answer every waiter of the
key with one response) or the deadline comes and the request is due for the handler's expiry
answer.

Deadlines are kept at ``resolution`` seconds: a request parked with deadline *d* is due from the
first multiple of ``resolution`` at or after *d* (up to floating-point rounding), so that one
periodic sweep finds every due request by popping a heap of deadline slots — no timer per
request. Waiters are any hashable objects (the adapter parks its connections); a waiter is parked
under one key at a time.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Collection, Hashable
from typing import Generic, TypeVar

W = TypeVar("W", bound=Hashable)


class ParkingLot(Generic[W]):
    """Waiters by hold key, with their deadlines in slots of ``resolution`` seconds."""

    def __init__(self, *, resolution: float) -> None:
        if not resolution > 0:
            raise ValueError(f"resolution must be positive, got {resolution}")
        self.resolution = resolution
        self._by_key: dict[Hashable, dict[W, int]] = {}  # key → waiter → deadline slot
        self._by_slot: dict[int, dict[W, Hashable]] = {}  # deadline slot → waiter → key
        self._slot_heap: list[int] = []
        self._count = 0

    def park(self, waiter: W, key: Hashable, deadline: float) -> None:
        """Hold ``waiter`` under ``key`` until released or due (TypeError: unhashable key)."""
        slot = math.ceil(deadline / self.resolution)
        waiters = self._by_key.get(key)
        if waiters is None:
            waiters = self._by_key[key] = {}
        waiters[waiter] = slot
        due = self._by_slot.get(slot)
        if due is None:
            due = self._by_slot[slot] = {}
            heapq.heappush(self._slot_heap, slot)
        due[waiter] = key
        self._count += 1

    def unpark(self, waiter: W, key: Hashable) -> bool:
        """Forget ``waiter`` parked under ``key`` (it will not be answered); False if it was not
        parked there."""
        waiters = self._by_key.get(key)
        if waiters is None or waiter not in waiters:
            return False
        slot = waiters.pop(waiter)
        if not waiters:
            del self._by_key[key]
        self._unlink_slot(waiter, slot)
        self._count -= 1
        return True

    def release(self, key: Hashable) -> Collection[W]:
        """Take every waiter of ``key`` out of the lot, to be answered (empty if none)."""
        waiters = self._by_key.pop(key, None)
        if waiters is None:
            return ()
        for waiter, slot in waiters.items():
            self._unlink_slot(waiter, slot)
        self._count -= len(waiters)
        return waiters.keys()

    def release_all(self) -> list[tuple[Hashable, Collection[W]]]:
        """Take every waiter out of the lot, grouped by key."""
        released: list[tuple[Hashable, Collection[W]]] = [
            (key, waiters.keys()) for key, waiters in self._by_key.items()
        ]
        self._by_key = {}
        self._by_slot = {}
        self._slot_heap = []
        self._count = 0
        return released

    def due(self, now: float) -> list[tuple[Hashable, list[W]]]:
        """Take the waiters whose deadline has come by ``now`` out of the lot, grouped by key
        (each group is answered with one expiry answer)."""
        heap, resolution = self._slot_heap, self.resolution
        expired: dict[Hashable, list[W]] = {}
        while heap and heap[0] * resolution <= now:
            due = self._by_slot.pop(heapq.heappop(heap), None)
            if not due:
                continue
            for waiter, key in due.items():
                expired.setdefault(key, []).append(waiter)
                waiters = self._by_key[key]
                del waiters[waiter]
                if not waiters:
                    del self._by_key[key]
            self._count -= len(due)
        return list(expired.items())

    def held_keys(self) -> list[Hashable]:
        """The keys with waiters, as a list (safe to release them while iterating)."""
        return list(self._by_key)

    def waiting(self, key: Hashable) -> int:
        """How many waiters ``key`` has."""
        waiters = self._by_key.get(key)
        return 0 if waiters is None else len(waiters)

    def __len__(self) -> int:
        return self._count

    def __bool__(self) -> bool:
        return self._count > 0

    def _unlink_slot(self, waiter: W, slot: int) -> None:
        due = self._by_slot.get(slot)
        if due is not None:
            due.pop(waiter, None)
            if not due:
                del self._by_slot[slot]
