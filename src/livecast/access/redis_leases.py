"""Stream leases shared by many nodes: the Redis store (``redis.asyncio``).

The rules are those of :class:`livecast.access.leases.LeaseTable`; every operation is ONE round
trip — an ``EVALSHA`` of a Lua script (registered with ``register_script``) that runs atomically
on three keys per account:

    livecast:leases:<account>          sorted set: session → lease expiry (ms), PEXPIRE ttl
    livecast:leases:<account>:started  hash: session → admission time (ms), for end_oldest
    livecast:leases:<account>:ended    hash: session → until when "ended_by_newer_stream" is
                                       answered (ms; one ttl), PEXPIRE ttl

Each script first drops the account's stale leases (``ZREMRANGEBYSCORE -inf now``), then counts
(``ZCARD``), adds or renews (``ZADD``) and re-arms the keys' expiry (``PEXPIRE``), so an idle
account vanishes from Redis one ttl after its last heartbeat. Time is the caller's ``now`` passed
as an argument — never Redis ``TIME`` — so the nodes' clocks must agree (NTP) to well within a
ttl. A media request costs no round trip: only admits and heartbeats reach Redis.

Redis failures (``RedisError``, ``OSError``, no answer within ``policy.store_timeout``) never
reach the caller as such. ``on_store_error = "open"`` admits without Redis (counted, recorded
locally); ``"closed"`` refuses new streams with ``lease_store_unavailable`` and lets live leases
run out (at most one ttl). State comes back by itself: a heartbeat for a session Redis does not
know (after a restart or a failover, or a fail-open admission) re-registers it when the account
has room and is refused ``too_many_streams`` when not — so within one ttl of Redis returning the
limit holds again, and since a restarted Redis is empty nobody is locked out.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, RedisError

from livecast.access.leases import (
    ENDED_PER_ACCOUNT,
    LEASE_EXPIRED,
    LEASE_STORE_UNAVAILABLE,
    Admission,
    Lease,
    LeasePolicy,
    StoreFigures,
    refused,
)
from livecast.errors import AccessError

PREFIX = "livecast:leases:"
REREGISTERED = "reregistered"

_PRELUDE = """
local function purge(now)
  local stale = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
  if #stale > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
    redis.call('HDEL', KEYS[2], unpack(stale))
  end
  local ended = redis.call('HGETALL', KEYS[3])
  for i = 1, #ended, 2 do
    if tonumber(ended[i + 1]) <= now then redis.call('HDEL', KEYS[3], ended[i]) end
  end
end
local function keep(ttl)
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
end
"""

_ADMIT = (
    _PRELUDE
    + """
local now, session, ttl = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
purge(now)
redis.call('HDEL', KEYS[3], session)
local expires, ended = now + ttl, ''
if not redis.call('ZSCORE', KEYS[1], session) then
  if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then
    if ARGV[5] ~= '1' then return {'too_many_streams', 0, ''} end
    local started, best = redis.call('HGETALL', KEYS[2]), nil
    for i = 1, #started, 2 do
      if best == nil or tonumber(started[i + 1]) < best then
        ended, best = started[i], tonumber(started[i + 1])
      end
    end
    if ended == '' then ended = redis.call('ZRANGE', KEYS[1], 0, 0)[1] end
    redis.call('ZREM', KEYS[1], ended)
    redis.call('HDEL', KEYS[2], ended)
    redis.call('HSET', KEYS[3], ended, expires)
    if redis.call('HLEN', KEYS[3]) > tonumber(ARGV[6]) then
      local marks, first, at = redis.call('HGETALL', KEYS[3]), nil, nil
      for i = 1, #marks, 2 do
        local until_ms = tonumber(marks[i + 1])
        if at == nil or until_ms < at then first, at = marks[i], until_ms end
      end
      redis.call('HDEL', KEYS[3], first)
    end
    redis.call('PEXPIRE', KEYS[3], ttl)
  end
  redis.call('HSET', KEYS[2], session, now)
end
redis.call('ZADD', KEYS[1], expires, session)
keep(ttl)
return {'', expires, ended}
"""
)

_HEARTBEAT = (
    _PRELUDE
    + """
local now, session, ttl = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
purge(now)
if redis.call('HEXISTS', KEYS[3], session) == 1 then return {'ended_by_newer_stream', 0, ''} end
local expires = now + ttl
if redis.call('ZSCORE', KEYS[1], session) then
  redis.call('ZADD', KEYS[1], expires, session)
  keep(ttl)
  return {'', expires, ''}
end
if ARGV[6] == '1' then return {'lease_expired', 0, ''} end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return {'too_many_streams', 0, ''} end
redis.call('ZADD', KEYS[1], expires, session)
redis.call('HSET', KEYS[2], session, ARGV[5])
keep(ttl)
return {'reregistered', expires, ''}
"""
)

_END = """
redis.call('HDEL', KEYS[2], ARGV[1])
return redis.call('ZREM', KEYS[1], ARGV[1])
"""

_SESSIONS = (
    _PRELUDE
    + """
purge(tonumber(ARGV[1]))
local live, out = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES'), {}
for i = 1, #live, 2 do
  local started = redis.call('HGET', KEYS[2], live[i]) or live[i + 1]
  table.insert(out, live[i]); table.insert(out, started); table.insert(out, live[i + 1])
end
return out
"""
)


@dataclass(slots=True)
class StoreStats:
    """Counters of one node's store. ``round_trips_total`` counts every request sent to Redis
    (a script reload after a Redis restart adds two, once per script)."""

    round_trips_total: int = 0
    store_errors_total: int = 0
    admitted_fail_open_total: int = 0
    refused_fail_closed_total: int = 0
    heartbeats_unverified_total: int = 0
    reregistered_total: int = 0
    local_dropped_total: int = 0


@dataclass(slots=True)
class _Local:
    """What this node knows of a session it served: for the answers Redis cannot give."""

    started: float
    expires: float


def round_trips_per_viewer_minute(round_trips: int, viewers: int, seconds: float) -> float:
    """The report's figure: Redis round trips per viewer per minute of watching."""
    return round_trips / viewers / (seconds / 60) if viewers and seconds > 0 else 0.0


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisLeaseStore:
    """One node's view of the shared lease store (a :class:`~livecast.access.leases.LeaseStore`).
    Safe for concurrent tasks of one loop."""

    def __init__(
        self,
        client: Redis,
        policy: LeasePolicy,
        *,
        prefix: str = PREFIX,
        max_local: int = 100_000,
    ) -> None:
        self.policy = policy.validate()
        self.client = client
        self.prefix = prefix
        self.max_local = max(1, max_local)
        self._scripts = {
            name: client.register_script(text)
            for name, text in (
                ("admit", _ADMIT),
                ("heartbeat", _HEARTBEAT),
                ("end", _END),
                ("sessions", _SESSIONS),
            )
        }
        self._local: OrderedDict[tuple[str, str], _Local] = OrderedDict()
        self._stats = StoreStats()

    @classmethod
    def connect(cls, url: str, policy: LeasePolicy, **options: Any) -> RedisLeaseStore:
        """A store on its own connection pool to ``url`` (``redis://host:port/db``): socket
        timeouts of ``policy.store_timeout`` and one immediate retry (a pooled connection
        that died with a Redis restart is replaced at once, not after a back-off)."""
        policy.validate()
        client = Redis.from_url(
            url,
            socket_timeout=policy.store_timeout,
            socket_connect_timeout=policy.store_timeout,
            retry=Retry(NoBackoff(), 1),
        )
        return cls(client, policy, **options)

    async def close(self) -> None:
        await self.client.aclose()

    def stats(self) -> StoreStats:
        return replace(self._stats)

    def figures(self) -> StoreFigures:
        """The figures every :class:`~livecast.access.leases.LeaseStore` counts (the origin's
        ``/metrics``)."""
        return StoreFigures(self._stats.round_trips_total, self._stats.store_errors_total)

    # -- the operations ------------------------------------------------------------------------

    async def admit(self, account: str, session: str, now: float) -> Admission:
        """Admit ``session`` as a stream of ``account`` (the rules of ``LeaseTable.admit``);
        while Redis is unavailable, by ``policy.on_store_error``."""
        args = [_ms(now), session, _ms(self.policy.ttl), self.policy.max_streams]
        args += [1 if self.policy.on_limit == "end_oldest" else 0, ENDED_PER_ACCOUNT]
        try:
            reason, expires, ended = await self._run("admit", account, args)
        except AccessError:
            if self.policy.on_store_error == "closed":
                self._stats.refused_fail_closed_total += 1
                return refused(LEASE_STORE_UNAVAILABLE)
            self._stats.admitted_fail_open_total += 1
            self._remember(account, session, _Local(now, now + self.policy.ttl))
            return Admission(admitted=True, expires=now + self.policy.ttl, unverified=True)
        if reason:
            return refused(reason)
        self._remember(account, session, _Local(now, expires / 1000))
        return Admission(admitted=True, expires=expires / 1000, ended=ended or None)

    async def heartbeat(self, account: str, session: str, now: float) -> Admission:
        """Renew the lease of ``session``. A session Redis does not know is re-registered
        when the account has room (state after a restart, a failover or a fail-open admit),
        unless this node saw its lease lapse: then it is ``lease_expired`` (another node may
        still have renewed it, so Redis decides)."""
        local = self._local.get((account, session))
        started = local.started if local is not None else now
        lapsed = 1 if local is not None and local.expires <= now else 0
        args = [_ms(now), session, _ms(self.policy.ttl), self.policy.max_streams, _ms(started)]
        args.append(lapsed)
        try:
            reason, expires, _ = await self._run("heartbeat", account, args)
        except AccessError:
            return self._heartbeat_without_store(account, session, local, now)
        if reason and reason != REREGISTERED:
            self._local.pop((account, session), None)
            return refused(reason)
        if reason == REREGISTERED:
            self._stats.reregistered_total += 1
        self._remember(account, session, _Local(started, expires / 1000))
        return Admission(admitted=True, expires=expires / 1000)

    async def end(self, account: str, session: str) -> bool:
        """The viewer stopped: free the slot; whether Redis held it. Without Redis the lease
        simply expires within one ttl."""
        self._local.pop((account, session), None)
        try:
            removed = await self._eval("end", account, [session])
        except AccessError:
            return False
        return bool(removed)

    async def sessions(self, account: str, now: float) -> list[Lease]:
        """The account's live leases across all nodes, oldest first; raises
        ``AccessError(lease_store_unavailable)`` without Redis."""
        reply = await self._eval("sessions", account, [_ms(now)])
        items = [_text(item) for item in reply]
        leases = [
            Lease(account, items[i], int(items[i + 1]) / 1000, int(float(items[i + 2])) / 1000)
            for i in range(0, len(items), 3)
        ]
        return sorted(leases, key=lambda lease: lease.started)

    # -- Redis and the local record ------------------------------------------------------------

    def _heartbeat_without_store(
        self, account: str, session: str, local: _Local | None, now: float
    ) -> Admission:
        if local is not None and local.expires <= now:
            self._local.pop((account, session), None)
            return refused(LEASE_EXPIRED)
        if self.policy.on_store_error == "open":
            self._stats.heartbeats_unverified_total += 1
            started = local.started if local is not None else now
            self._remember(account, session, _Local(started, now + self.policy.ttl))
            return Admission(admitted=True, expires=now + self.policy.ttl, unverified=True)
        if local is not None:
            self._stats.heartbeats_unverified_total += 1
            return Admission(admitted=True, expires=local.expires, unverified=True)
        self._stats.refused_fail_closed_total += 1
        return refused(LEASE_STORE_UNAVAILABLE)

    async def _run(self, name: str, account: str, args: list[Any]) -> tuple[str, int, str]:
        reason, expires, ended = await self._eval(name, account, args)
        return _text(reason), int(expires), _text(ended)

    async def _eval(self, name: str, account: str, args: list[Any]) -> Any:
        """One script run (one round trip; three after a Redis restart forgot the script),
        within ``policy.store_timeout``; any failure as ``AccessError(lease_store_unavailable)``."""
        script = self._scripts[name]
        base = self.prefix + account
        keys = [base, base + ":started", base + ":ended"]
        try:
            async with asyncio.timeout(self.policy.store_timeout):
                return await self._evalsha(script, keys, args)
        except (RedisError, OSError, TimeoutError) as exc:
            self._stats.store_errors_total += 1
            raise AccessError(
                LEASE_STORE_UNAVAILABLE, f"the lease store did not answer: {type(exc).__name__}"
            ) from exc

    async def _evalsha(self, script: AsyncScript, keys: list[str], args: list[Any]) -> Any:
        self._stats.round_trips_total += 1
        try:
            return await self.client.evalsha(script.sha, len(keys), *keys, *args)
        except NoScriptError:
            self._stats.round_trips_total += 2
            script.sha = await self.client.script_load(script.script)
            return await self.client.evalsha(script.sha, len(keys), *keys, *args)

    def _remember(self, account: str, session: str, local: _Local) -> None:
        key = (account, session)
        self._local[key] = local
        self._local.move_to_end(key)
        while len(self._local) > self.max_local:
            self._local.popitem(last=False)
            self._stats.local_dropped_total += 1
