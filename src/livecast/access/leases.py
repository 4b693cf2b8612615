"""Concurrent streams per account: session leases — the pure core and the in-memory store.

A viewer's session holds a *lease* on one of its account's ``max_streams`` stream slots. The
player renews it with a heartbeat every ``heartbeat_interval`` seconds (jittered ±20 % so a
crowd that tuned in together does not heartbeat together); a lease not renewed within ``ttl``
seconds expires and frees its slot. The N+1th stream of an account is refused with the reason
``too_many_streams`` or, with ``on_limit = "end_oldest"``, admitted by ending the account's
oldest stream, whose next heartbeat answers ``ended_by_newer_stream``.

Nothing here reads a clock or does I/O: ``now`` (seconds, any epoch shared by the caller) is
passed in, so every rule is testable with injected time. :class:`LeaseTable` is the store for
one node; :mod:`livecast.access.redis_leases` shares the same rules between many nodes. Both
are :class:`LeaseStore` s — async, so that the origin's session endpoints
(``access.heartbeat``) serve either: :class:`MemoryLeaseStore` is the table behind that interface.

Work per call is bounded by the account's own leases (at most ``max_streams``) and ended
markers (at most :data:`ENDED_PER_ACCOUNT`), never by the number of accounts: expiry is lazy on
access plus :meth:`LeaseTable.sweep`, which visits a bounded number of accounts per call. The
table tracks at most ``max_accounts`` accounts and counts what it has to drop.
"""

from __future__ import annotations

import math
import random
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from itertools import islice
from typing import Literal, Protocol

from livecast.errors import AccessError, ConfigError

TOO_MANY_STREAMS = "too_many_streams"
ENDED_BY_NEWER_STREAM = "ended_by_newer_stream"
LEASE_EXPIRED = "lease_expired"
LEASE_STORE_UNAVAILABLE = "lease_store_unavailable"

JITTER = 0.2
"""Full jitter of the heartbeat interval: uniform within ±20 % of it."""
ENDED_PER_ACCOUNT = 16
"""Ended-session markers kept per account (each for one ttl); beyond, the oldest is dropped."""

OnLimit = Literal["refuse", "end_oldest"]
OnStoreError = Literal["open", "closed"]

_MESSAGES = {
    TOO_MANY_STREAMS: "the account already watches its maximum number of concurrent streams",
    ENDED_BY_NEWER_STREAM: "this stream was ended by a newer stream of the same account",
    LEASE_EXPIRED: "the stream's lease expired (no heartbeat within the ttl)",
    LEASE_STORE_UNAVAILABLE: "the stream lease store is unavailable (fail-closed)",
}


@dataclass(frozen=True, slots=True)
class LeasePolicy:
    """How many streams an account may watch at once, and what happens at the limit and when
    the shared store (Redis) cannot be reached. Keys are named ``leases.<field>``."""

    max_streams: int = 3
    ttl: float = 30.0
    heartbeat_interval: float = 10.0
    on_limit: OnLimit = "refuse"
    on_store_error: OnStoreError = "open"
    store_timeout: float = 0.25

    def validate(self) -> LeasePolicy:
        """This policy, or a :class:`ConfigError` naming the first bad key."""
        if self.max_streams < 1:
            raise ConfigError("leases.max_streams", f"must be at least 1, got {self.max_streams}")
        if not self.ttl > 0:
            raise ConfigError("leases.ttl", f"must be positive seconds, got {self.ttl}")
        if not self.heartbeat_interval > 0:
            raise ConfigError(
                "leases.heartbeat_interval", f"must be positive, got {self.heartbeat_interval}"
            )
        if self.heartbeat_interval * (1 + JITTER) * 2 > self.ttl:
            raise ConfigError(
                "leases.heartbeat_interval",
                f"{self.heartbeat_interval} s (+20 % jitter) must fit twice in the ttl "
                f"{self.ttl} s, so that one lost heartbeat does not end a stream",
            )
        if self.on_limit not in ("refuse", "end_oldest"):
            raise ConfigError("leases.on_limit", f"{self.on_limit!r} is not refuse or end_oldest")
        if self.on_store_error not in ("open", "closed"):
            raise ConfigError(
                "leases.on_store_error", f"{self.on_store_error!r} is not open or closed"
            )
        if not self.store_timeout > 0:
            raise ConfigError("leases.store_timeout", f"must be positive, got {self.store_timeout}")
        return self

    def jittered_interval(self, rng: random.Random) -> float:
        """The wait before the next heartbeat: uniform within ±20 % of the interval."""
        return self.heartbeat_interval * rng.uniform(1 - JITTER, 1 + JITTER)


@dataclass(frozen=True, slots=True)
class Lease:
    """One session's hold on a stream slot of its account, valid until ``expires``."""

    account: str
    session: str
    started: float
    expires: float


@dataclass(frozen=True, slots=True)
class Admission:
    """The answer to an admit or a heartbeat. ``reason`` is empty when admitted, else the
    stable refusal code; ``ended`` names the session ended to make room (``end_oldest``);
    ``unverified`` marks an answer given without the shared store (fail-open, or the grace of
    a live lease while the store is down)."""

    admitted: bool
    reason: str = ""
    expires: float = 0.0
    ended: str | None = None
    unverified: bool = False

    def check(self) -> Admission:
        """This admission, or the refusal raised as an :class:`AccessError`."""
        if not self.admitted:
            raise AccessError(self.reason, _MESSAGES.get(self.reason, self.reason))
        return self


def refused(reason: str) -> Admission:
    return Admission(admitted=False, reason=reason)


@dataclass(slots=True)
class _Account:
    """One account's live leases and the markers of its sessions ended by newer streams
    (session → until when the marker is kept)."""

    leases: dict[str, Lease] = field(default_factory=dict)
    ended: dict[str, float] = field(default_factory=dict)


@dataclass(slots=True)
class TableStats:
    """What the table holds and has done; ``examined_total`` counts leases and markers looked
    at (the work), the ``*_dropped_total`` what the bounds cost."""

    accounts: int = 0
    leases: int = 0
    ended_markers: int = 0
    examined_total: int = 0
    expired_total: int = 0
    accounts_dropped_total: int = 0
    leases_dropped_total: int = 0
    ended_markers_dropped_total: int = 0


class LeaseTable:
    """The lease store of one node, in memory. Not thread-safe: one event loop owns it."""

    def __init__(
        self, policy: LeasePolicy, *, max_accounts: int = 100_000, sweep_batch: int = 64
    ) -> None:
        if max_accounts < 1:
            raise ConfigError("leases.max_accounts", f"must be at least 1, got {max_accounts}")
        self.policy = policy.validate()
        self.max_accounts = max_accounts
        self.sweep_batch = max(1, sweep_batch)
        self._accounts: OrderedDict[str, _Account] = OrderedDict()
        self._stats = TableStats()

    # -- the operations ------------------------------------------------------------------------

    def admit(self, account: str, session: str, now: float) -> Admission:
        """Admit ``session`` as a stream of ``account``: a renewal when it already holds a
        lease, refused (``too_many_streams``) or admitted by ending the oldest at the limit."""
        entry = self._touch(account, now, create=True)
        assert entry is not None
        entry.ended.pop(session, None)
        expires = now + self.policy.ttl
        current = entry.leases.get(session)
        if current is not None:
            entry.leases[session] = replace(current, expires=expires)
            return Admission(admitted=True, expires=expires)
        ended = None
        if len(entry.leases) >= self.policy.max_streams:
            if self.policy.on_limit == "refuse":
                self._forget_if_empty(account, entry)
                return refused(TOO_MANY_STREAMS)
            ended = self._end_oldest(entry, now)
        entry.leases[session] = Lease(account, session, now, expires)
        return Admission(admitted=True, expires=expires, ended=ended)

    def heartbeat(self, account: str, session: str, now: float) -> Admission:
        """Renew the lease of ``session``: ``lease_expired`` when it lapsed (or was never
        admitted), ``ended_by_newer_stream`` when a newer stream took its slot."""
        entry = self._touch(account, now, create=False)
        if entry is None:
            return refused(LEASE_EXPIRED)
        current = entry.leases.get(session)
        if current is not None:
            expires = now + self.policy.ttl
            entry.leases[session] = replace(current, expires=expires)
            return Admission(admitted=True, expires=expires)
        reason = ENDED_BY_NEWER_STREAM if session in entry.ended else LEASE_EXPIRED
        self._forget_if_empty(account, entry)
        return refused(reason)

    def end(self, account: str, session: str) -> bool:
        """The viewer stopped: free the slot. Whether ``session`` held one."""
        entry = self._accounts.get(account)
        if entry is None:
            return False
        held = entry.leases.pop(session, None) is not None
        self._forget_if_empty(account, entry)
        return held

    def sessions(self, account: str, now: float) -> list[Lease]:
        """The account's live leases, oldest first."""
        entry = self._touch(account, now, create=False)
        if entry is None:
            return []
        leases = sorted(entry.leases.values(), key=lambda lease: lease.started)
        self._forget_if_empty(account, entry)
        return leases

    def accounts(self, limit: int) -> list[str]:
        """At most ``limit`` of the accounts tracked (least recently touched first)."""
        return list(islice(self._accounts, limit))

    def sweep(self, now: float, limit: int | None = None) -> int:
        """Expire the stale leases of at most ``limit`` (default ``sweep_batch``) accounts,
        the least recently used first, forgetting those left empty; returns how many leases
        expired. Call it periodically: lazy expiry never visits an account nobody asks about.
        Recency order is kept (the least recently used are the likeliest to have expired)."""
        expired_before = self._stats.expired_total
        batch = list(islice(self._accounts.items(), limit or self.sweep_batch))
        for account, entry in batch:
            self._expire(entry, now)
            self._forget_if_empty(account, entry)
        return self._stats.expired_total - expired_before

    def stats(self) -> TableStats:
        """A snapshot of the counters and of what the table holds."""
        counts = self._accounts.values()
        return replace(
            self._stats,
            accounts=len(self._accounts),
            leases=sum(len(entry.leases) for entry in counts),
            ended_markers=sum(len(entry.ended) for entry in counts),
        )

    # -- the bounded bookkeeping -----------------------------------------------------------------

    def _touch(self, account: str, now: float, *, create: bool) -> _Account | None:
        """The account's entry with its stale leases and markers expired (most recently used
        from now on); a new one when ``create`` (making room under ``max_accounts``)."""
        entry = self._accounts.get(account)
        if entry is None:
            if not create:
                return None
            self._make_room(now)
            entry = self._accounts[account] = _Account()
            return entry
        self._accounts.move_to_end(account)
        self._expire(entry, now)
        return entry

    def _expire(self, entry: _Account, now: float) -> None:
        self._stats.examined_total += len(entry.leases) + len(entry.ended)
        stale = [session for session, lease in entry.leases.items() if lease.expires <= now]
        for session in stale:
            del entry.leases[session]
        self._stats.expired_total += len(stale)
        for session in [s for s, until in entry.ended.items() if until <= now]:
            del entry.ended[session]

    def _end_oldest(self, entry: _Account, now: float) -> str:
        oldest = min(entry.leases.values(), key=lambda lease: lease.started)
        del entry.leases[oldest.session]
        entry.ended[oldest.session] = now + self.policy.ttl
        if len(entry.ended) > ENDED_PER_ACCOUNT:
            first = min(entry.ended, key=entry.ended.__getitem__)
            del entry.ended[first]
            self._stats.ended_markers_dropped_total += 1
        return oldest.session

    def _make_room(self, now: float) -> None:
        """Before a new account: forget the least recently used ones; those that still held
        live leases or markers are counted as dropped."""
        while len(self._accounts) >= self.max_accounts:
            _, dropped = self._accounts.popitem(last=False)
            self._expire(dropped, now)
            if dropped.leases or dropped.ended:
                self._stats.accounts_dropped_total += 1
                self._stats.leases_dropped_total += len(dropped.leases)
                self._stats.ended_markers_dropped_total += len(dropped.ended)

    def _forget_if_empty(self, account: str, entry: _Account) -> None:
        if not entry.leases and not entry.ended:
            self._accounts.pop(account, None)


# -- the stores' common interface ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoreFigures:
    """What every lease store counts: ``round_trips_total`` — calls that reached the store
    (Redis: one ``EVALSHA`` each, plus two once per script after a Redis restart; memory: one
    table call each) — and ``errors_total``, those that failed (Redis down, hung or refusing)."""

    round_trips_total: int = 0
    errors_total: int = 0


class LeaseStore(Protocol):
    """The lease operations the origin's session endpoints ask for, async. A store never raises
    for these three: an unreachable backend is answered by ``policy.on_store_error`` within
    ``policy.store_timeout`` (``RedisLeaseStore``); an in-memory one never waits."""

    @property
    def policy(self) -> LeasePolicy: ...

    async def admit(self, account: str, session: str, now: float) -> Admission: ...

    async def heartbeat(self, account: str, session: str, now: float) -> Admission: ...

    async def end(self, account: str, session: str) -> bool: ...

    def figures(self) -> StoreFigures: ...

    async def close(self) -> None: ...


class MemoryLeaseStore:
    """A :class:`LeaseTable` as a :class:`LeaseStore` (one node; no I/O, never waits). It also
    sweeps: at most once per ``sweep_every`` seconds of the callers' ``now``, one bounded
    :meth:`LeaseTable.sweep` (``sweep_batch`` accounts), so leases nobody asks about again
    expire without a timer."""

    def __init__(self, table: LeaseTable, *, sweep_every: float = 1.0) -> None:
        self.table = table
        self.sweep_every = sweep_every
        self._next_sweep = -math.inf
        self._calls = 0

    @property
    def policy(self) -> LeasePolicy:
        return self.table.policy

    async def admit(self, account: str, session: str, now: float) -> Admission:
        self._count(now)
        return self.table.admit(account, session, now)

    async def heartbeat(self, account: str, session: str, now: float) -> Admission:
        self._count(now)
        return self.table.heartbeat(account, session, now)

    async def end(self, account: str, session: str) -> bool:
        self._calls += 1
        return self.table.end(account, session)

    def figures(self) -> StoreFigures:
        return StoreFigures(round_trips_total=self._calls)

    async def close(self) -> None:
        return None

    def _count(self, now: float) -> None:
        self._calls += 1
        if now >= self._next_sweep:
            self._next_sweep = now + self.sweep_every
            self.table.sweep(now)
