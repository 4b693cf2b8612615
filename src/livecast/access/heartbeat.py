"""The session endpoints of the origin: a viewer's stream is a lease on one of its account's
slots (``access.leases``), taken when it joins and renewed by heartbeats.

    GET /session/heartbeat?join=1   the stream starts: admit the session (a renewal if it holds a
                                    lease already; at the limit refused, or the oldest ended)
    GET /session/heartbeat          renew it: ``lease_expired`` once it lapsed,
                                    ``ended_by_newer_stream`` once a newer stream took its slot
    GET /session/end                the viewer stopped: its slot is free at once

The account and session are the playback token's (cookie or ``token`` query argument, as the
token gate reads them), verified here for any event. An admitted answer is ``200`` with
``{"next_s": …, "expires": …}``: when to send the next heartbeat (the policy's interval, ±20 %
full jitter so that a flash crowd's heartbeats spread out) and until when the lease holds (Unix
seconds). A refusal is ``403`` with its reason code in ``X-Livecast-Reason`` (the token gate's
reasons, ``too_many_streams``, ``lease_expired``, ``ended_by_newer_stream``); a fail-closed store
that cannot be reached is ``503 lease_store_unavailable`` with ``Retry-After``. Every answer is
``no-store`` and per request: never in the origin's answer cache.

**Flood bound.** Per session, joins and heartbeats reach the store at most once per *floor* —
a quarter of the heartbeat interval (2.5 s by default; a player beats every 8–12 s): one that
comes sooner after the last that reached the store is ``429 heartbeat_too_soon`` with
``Retry-After`` and touches nothing else. An end always reaches the store once (a viewer stops
whenever); a repeated end within the floor is answered ``204`` from memory. So a session costs
the store at most two round trips per floor whatever it sends, and the per-session memory is an
LRU of at most ``max_floor_sessions`` entries (evictions counted).

Three parts: :class:`HeartbeatFloor` and :class:`SessionCore` are pure (``now`` passed in; the
core turns a request into the :class:`StoreCall` to make, or the answer, and an
:class:`~livecast.access.leases.Admission` into the answer); :class:`SessionEndpoints` is the
thin async adapter over a :class:`~livecast.access.leases.LeaseStore` — the in-memory table of
one origin or Redis shared by many — whose :meth:`~SessionEndpoints.routes` the origin's HTTP
adapter serves as ``async_endpoints`` (``origin.http``).
"""

from __future__ import annotations

import json
import math
import random
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

from livecast.access.keys import KeyRing
from livecast.access.leases import (
    ENDED_BY_NEWER_STREAM,
    LEASE_EXPIRED,
    LEASE_STORE_UNAVAILABLE,
    TOO_MANY_STREAMS,
    Admission,
    LeasePolicy,
    LeaseStore,
    LeaseTable,
    MemoryLeaseStore,
)
from livecast.access.token_gate import REFUSALS, MalformedCarrier, UnixTime, find_token
from livecast.access.tokens import DEFAULT_SKEW, RevocationList, TokenClaims, verify
from livecast.errors import AccessError
from livecast.origin.contract import AsyncEndpoint, Request, Response
from livecast.telemetry.metrics import Registry

HEARTBEAT_PATH = "/session/heartbeat"
END_PATH = "/session/end"
HEARTBEAT_TOO_SOON = "heartbeat_too_soon"
FLOOR_FRACTION = 0.25
"""The floor between one session's store calls, as a fraction of the heartbeat interval."""
MAX_FLOOR_SESSIONS = 100_000
PRUNE_BATCH = 8
LEASE_REASONS = (TOO_MANY_STREAMS, LEASE_EXPIRED, ENDED_BY_NEWER_STREAM)
ADMITTED, ENDED_RESULT, TOKEN_REFUSED = "admitted", "ended", "token_refused"
RESULTS = (
    ADMITTED,
    *LEASE_REASONS,
    HEARTBEAT_TOO_SOON,
    LEASE_STORE_UNAVAILABLE,
    ENDED_RESULT,
    TOKEN_REFUSED,
)
"""The ``result`` label of ``livecast_sessions_answered_total``."""


def _answer(status: int, reason: str = "", retry_after: int = 0) -> Response:
    """A session answer: never stored, its reason code as body and header."""
    headers: tuple[tuple[str, str], ...] = (
        (("Retry-After", str(retry_after)),) if retry_after else ()
    )
    headers += (("X-Livecast-Reason", reason),) if reason else ()
    body = (reason + "\n").encode() if reason else b""
    return Response(
        status, body, cache_control="no-store", object_type="session", extra_headers=headers
    )


_LEASE_REFUSALS = {reason: _answer(403, reason) for reason in LEASE_REASONS}
_LEASE_REFUSALS[LEASE_STORE_UNAVAILABLE] = _answer(503, LEASE_STORE_UNAVAILABLE, retry_after=5)
ENDED = _answer(204)

Operation = Literal["admit", "heartbeat", "end"]
SessionKey = tuple[str, str]  # (account, session)


@dataclass(frozen=True, slots=True)
class StoreCall:
    """What one request asks of the lease store: ``operation`` on the account's session at
    ``now`` — Unix seconds, the clock every node shares."""

    operation: Operation
    account: str
    session: str
    now: float


# -- the flood bound -------------------------------------------------------------------------------


@dataclass(slots=True)
class FloorStats:
    """What the floor holds and has refused; ``evicted_total`` counts sessions forgotten while
    their floor still ran (the LRU cap), each of which may then reach the store once more."""

    sessions: int = 0
    too_soon_total: int = 0
    repeated_ends_total: int = 0
    evicted_total: int = 0


@dataclass(slots=True)
class _LastCall:
    at: float
    ended: bool


class HeartbeatFloor:
    """Per session, when its last call reached the store — pure: ``now`` is passed in, from a
    clock that does not go back (the origin's monotonic one). Entries older than the floor are
    pruned as new ones arrive (at most :data:`PRUNE_BATCH` per call: they are the oldest, at the
    front of the LRU); at most ``max_sessions`` are kept, the least recent evicted and counted."""

    def __init__(
        self,
        floor: float,
        *,
        max_sessions: int = MAX_FLOOR_SESSIONS,
        prune_batch: int = PRUNE_BATCH,
    ) -> None:
        self.floor = floor
        self.max_sessions = max(1, max_sessions)
        self.prune_batch = max(1, prune_batch)
        self._last: OrderedDict[SessionKey, _LastCall] = OrderedDict()
        self._stats = FloorStats()

    def wait(self, key: SessionKey, now: float) -> float:
        """0: a join or heartbeat of ``key`` may reach the store now (remembered as its last
        call); else the seconds until it may (nothing remembered)."""
        last = self._last.get(key)
        if last is not None and now - last.at < self.floor:
            self._stats.too_soon_total += 1
            return min(self.floor, self.floor - (now - last.at))
        self._remember(key, now, ended=False)
        return 0.0

    def end(self, key: SessionKey, now: float) -> bool:
        """Whether an end of ``key`` may reach the store: not when its last call, within the
        floor, was an end already (there is nothing left to end)."""
        last = self._last.get(key)
        if last is not None and last.ended and now - last.at < self.floor:
            self._stats.repeated_ends_total += 1
            return False
        self._remember(key, now, ended=True)
        return True

    def stats(self) -> FloorStats:
        return replace(self._stats, sessions=len(self._last))

    def _remember(self, key: SessionKey, now: float, *, ended: bool) -> None:
        last = self._last
        for _ in range(self.prune_batch):
            oldest = next(iter(last.items()), None)
            if oldest is None or now - oldest[1].at < self.floor:
                break
            del last[oldest[0]]
        last[key] = _LastCall(now, ended)
        last.move_to_end(key)
        while len(last) > self.max_sessions:
            last.popitem(last=False)
            self._stats.evicted_total += 1


# -- the pure protocol -----------------------------------------------------------------------------


class SessionCore:
    """The session endpoints without I/O: :meth:`ask` reads and verifies the request's token and
    applies the floor — the :class:`StoreCall` to make, or the answer already; :meth:`answer`
    turns the store's :class:`Admission` into the response (with a jittered ``next_s``).
    ``answered`` counts every answer by result (:data:`RESULTS`)."""

    def __init__(
        self,
        key_ring: KeyRing,
        policy: LeasePolicy,
        *,
        skew: float = DEFAULT_SKEW,
        revoked: RevocationList | None = None,
        rng: random.Random | None = None,
        unix_time: UnixTime | None = None,
        max_floor_sessions: int = MAX_FLOOR_SESSIONS,
    ) -> None:
        self.key_ring = key_ring
        self.policy = policy
        self.skew = skew
        self.revoked = revoked
        self.rng = rng or random.Random()
        # the origin's monotonic now → Unix seconds (the tokens' and the store's clock); None:
        # ``now`` is Unix time already. The floor runs on the origin's own ``now``.
        self.unix_time = unix_time
        floor = policy.heartbeat_interval * FLOOR_FRACTION
        self.floor = HeartbeatFloor(floor, max_sessions=max_floor_sessions)
        self.answered: dict[str, int] = dict.fromkeys(RESULTS, 0)
        self._too_soon: dict[int, Response] = {}

    def ask(self, request: Request, now: float, *, ending: bool = False) -> StoreCall | Response:
        """For a heartbeat (a join with ``join=1``) or, ``ending``, an end: what to ask the store,
        or the answer when the token is refused or the floor has not passed."""
        unix_now = now if self.unix_time is None else self.unix_time(now)
        claims = self._claims(request, unix_now)
        if isinstance(claims, Response):
            self.answered[TOKEN_REFUSED] += 1
            return claims
        key = (claims.account, claims.session)
        if ending:
            if self.floor.end(key, now):
                return StoreCall("end", claims.account, claims.session, unix_now)
            return self.ended()
        wait = self.floor.wait(key, now)
        if wait > 0:
            self.answered[HEARTBEAT_TOO_SOON] += 1
            return self._too_soon_answer(wait)
        operation: Operation = "admit" if _joins(request.query) else "heartbeat"
        return StoreCall(operation, claims.account, claims.session, unix_now)

    def answer(self, admission: Admission) -> Response:
        """The answer to a join or heartbeat the store admitted or refused."""
        if not admission.admitted:
            reason = admission.reason
            if reason not in _LEASE_REFUSALS:  # not a lease reason: a store bug, never a 200
                reason = LEASE_STORE_UNAVAILABLE
            self.answered[reason] += 1
            return _LEASE_REFUSALS[reason]
        self.answered[ADMITTED] += 1
        next_s = self.policy.jittered_interval(self.rng)
        body = json.dumps({"next_s": round(next_s, 3), "expires": admission.expires})
        return Response(
            200, body.encode(), "application/json", cache_control="no-store", object_type="session"
        )

    def ended(self) -> Response:
        self.answered[ENDED_RESULT] += 1
        return ENDED

    def _claims(self, request: Request, now: float) -> TokenClaims | Response:
        """The token's claims, or the refusal to answer."""
        try:
            token = find_token(request)
            return verify(
                token,
                event=None,
                now=now,
                key_ring=self.key_ring,
                skew=self.skew,
                revoked=self.revoked,
            )
        except MalformedCarrier:
            return REFUSALS["malformed"].response
        except AccessError as exc:
            return REFUSALS[exc.reason].response

    def _too_soon_answer(self, wait: float) -> Response:
        seconds = max(1, math.ceil(wait))
        response = self._too_soon.get(seconds)
        if response is None:  # one per whole second of wait (≤ the floor): encoded once each
            response = self._too_soon[seconds] = _answer(429, HEARTBEAT_TOO_SOON, seconds)
        return response


def _joins(query: str) -> bool:
    return "join=1" in query.split("&")


# -- the async adapter -----------------------------------------------------------------------------


class SessionEndpoints:
    """``/session/heartbeat`` and ``/session/end`` over a :class:`LeaseStore` (see the module):
    the :class:`SessionCore` decides, the store is awaited for what reaches it."""

    def __init__(
        self,
        key_ring: KeyRing,
        store: LeaseStore | LeaseTable,
        *,
        skew: float = DEFAULT_SKEW,
        revoked: RevocationList | None = None,
        rng: random.Random | None = None,
        unix_time: UnixTime | None = None,
        max_floor_sessions: int = MAX_FLOOR_SESSIONS,
    ) -> None:
        self.store: LeaseStore = MemoryLeaseStore(store) if isinstance(store, LeaseTable) else store
        self.core = SessionCore(
            key_ring,
            self.store.policy,
            skew=skew,
            revoked=revoked,
            rng=rng,
            unix_time=unix_time,
            max_floor_sessions=max_floor_sessions,
        )

    @property
    def leases(self) -> LeaseTable | None:
        """The lease table of an in-memory store (the admin API lists it); None over Redis."""
        return self.store.table if isinstance(self.store, MemoryLeaseStore) else None

    def routes(self) -> dict[str, AsyncEndpoint]:
        """The paths to serve, for ``OriginServer(async_endpoints=…)``."""
        return {HEARTBEAT_PATH: self.heartbeat, END_PATH: self.end}

    async def heartbeat(self, request: Request, now: float) -> Response:
        call = self.core.ask(request, now)
        if isinstance(call, Response):
            return call
        if call.operation == "admit":
            admission = await self.store.admit(call.account, call.session, call.now)
        else:
            admission = await self.store.heartbeat(call.account, call.session, call.now)
        return self.core.answer(admission)

    async def end(self, request: Request, now: float) -> Response:
        call = self.core.ask(request, now, ending=True)
        if isinstance(call, Response):
            return call
        await self.store.end(call.account, call.session)
        return self.core.ended()

    def collector(self, registry: Registry) -> Callable[[], None]:
        """Registers the sessions' and the store's metrics in ``registry``; the returned
        callable brings them up to date (``OriginServer(collectors=…)`` calls it per scrape)."""
        trips = registry.counter(
            "livecast_lease_store_round_trips_total",
            "Calls that reached the lease store (Redis: one EVALSHA each; memory: one table call).",
        ).labels()
        errors = registry.counter(
            "livecast_lease_store_errors_total",
            "Lease store calls that failed (Redis down, hung or refusing): answered by "
            "on_store_error.",
        ).labels()
        answered = registry.counter(
            "livecast_sessions_answered_total",
            "Answers of the session endpoints (joins, heartbeats, ends), by result.",
            ("result",),
        )
        results = {result: answered.labels(result) for result in RESULTS}
        evicted = registry.counter(
            "livecast_sessions_floor_evicted_total",
            "Sessions the heartbeat floor forgot within their floor (its memory cap).",
        ).labels()

        def collect() -> None:
            figures = self.store.figures()
            trips.value = figures.round_trips_total
            errors.value = figures.errors_total
            for result, count in self.core.answered.items():
                results[result].value = count
            evicted.value = self.core.floor.stats().evicted_total

        collect()
        return collect

    async def close(self) -> None:
        """Close the store (its connections to Redis)."""
        await self.store.close()
