"""Stream leases on a real Redis (Debian's redis-server on 127.0.0.1, started per test): two
nodes share an account's limit, end_oldest across nodes, ttl expiry, a Redis that dies, hangs or
restarts empty (fail-open and fail-closed, each answered within the store timeout; the limit
back within one ttl, nobody locked out) and the round trips — one per admit and per heartbeat,
counted by the store and by Redis itself. Time is injected, so the ttl costs no waiting. Redis
is started by ``livecast.access.redis_server``, whose own behaviour is checked last."""

from __future__ import annotations

import heapq
import importlib.util
import random
import shutil
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from livecast.access.leases import (
    ENDED_BY_NEWER_STREAM,
    LEASE_EXPIRED,
    LEASE_STORE_UNAVAILABLE,
    TOO_MANY_STREAMS,
    LeasePolicy,
)
from livecast.access.redis_server import RedisServer
from livecast.errors import AccessError
from tests.requirements import skip_missing

pytestmark = pytest.mark.integration

HAVE_REDIS_MODULE = importlib.util.find_spec("redis") is not None
if HAVE_REDIS_MODULE:
    from livecast.access.redis_leases import RedisLeaseStore, round_trips_per_viewer_minute

SHORT = LeasePolicy(max_streams=3, ttl=3.0, heartbeat_interval=1.0)
BOUND = SHORT.store_timeout + 0.25  # an answer without Redis: the timeout plus slack


Node = Callable[[LeasePolicy], "RedisLeaseStore"]


@pytest.fixture
async def node(redis_server: RedisServer) -> AsyncIterator[Node]:
    """``node(policy)``: a store with its own connection pool, as on another origin node."""
    made: list[RedisLeaseStore] = []

    def make(policy: LeasePolicy) -> RedisLeaseStore:
        made.append(RedisLeaseStore.connect(redis_server.url, policy))
        return made[-1]

    yield make
    for store in made:
        await store.close()


async def timed(call: Any) -> tuple[Any, float]:
    started = time.monotonic()
    result = await call
    return result, time.monotonic() - started


async def test_two_nodes_share_the_limit_of_an_account(node: Node) -> None:
    a, b = node(SHORT), node(SHORT)
    assert (await a.admit("acct", "s1", 100)).admitted
    assert (await a.admit("acct", "s2", 100.2)).admitted
    assert (await b.admit("acct", "s3", 100.5)).admitted
    for store in (a, b):
        answer = await store.admit("acct", "s4", 101)
        assert (answer.admitted, answer.reason) == (False, TOO_MANY_STREAMS)
        with pytest.raises(AccessError):
            answer.check()
    assert (await b.admit("acct", "s1", 101)).admitted  # the same session again: a renewal
    assert [lease.session for lease in await b.sessions("acct", 101)] == ["s1", "s2", "s3"]
    assert (await b.admit("other", "s4", 101)).admitted
    assert await a.end("acct", "s2") is True
    assert (await b.admit("acct", "s4", 102)).admitted


async def test_end_oldest_ends_the_oldest_stream_across_nodes(node: Node) -> None:
    policy = LeasePolicy(max_streams=2, ttl=3.0, heartbeat_interval=1.0, on_limit="end_oldest")
    a, b = node(policy), node(policy)
    await a.admit("acct", "s1", 100)
    await b.admit("acct", "s2", 100.5)
    await a.heartbeat("acct", "s1", 101)  # renewed, still the oldest
    newer = await b.admit("acct", "s3", 101.5)
    assert (newer.admitted, newer.ended) == (True, "s1")
    assert (await a.heartbeat("acct", "s1", 102)).reason == ENDED_BY_NEWER_STREAM
    assert (await b.heartbeat("acct", "s2", 102)).admitted
    assert [lease.session for lease in await a.sessions("acct", 102)] == ["s2", "s3"]


async def test_a_lease_expires_after_the_ttl_and_idle_accounts_vanish(
    node: Node, redis_server: RedisServer
) -> None:
    a, b = node(SHORT), node(SHORT)
    for session in ("s1", "s2", "s3"):
        await a.admit("acct", session, 100)
    assert (await b.admit("acct", "s4", 102.9)).reason == TOO_MANY_STREAMS
    assert (await b.admit("acct", "s4", 103)).admitted  # the three expired at 103
    assert (await a.heartbeat("acct", "s1", 103.5)).reason == LEASE_EXPIRED
    assert [lease.session for lease in await b.sessions("acct", 103.5)] == ["s4"]
    ttl_ms = await a.client.pttl("livecast:leases:acct")
    assert 0 < ttl_ms <= 3000  # Redis forgets the account one ttl after its last write


async def test_redis_down_fail_open_admits_and_counts(
    node: Node, redis_server: RedisServer
) -> None:
    store = node(SHORT)
    await store.admit("acct", "s1", 100)
    redis_server.stop()
    answer, took = await timed(store.admit("acct", "s2", 101))
    assert (answer.admitted, answer.unverified) == (True, True) and took < BOUND
    beat, took = await timed(store.heartbeat("acct", "s1", 101))
    assert (beat.admitted, beat.unverified, beat.expires) == (True, True, 104) and took < BOUND
    with pytest.raises(AccessError) as caught:
        await store.sessions("acct", 101)
    assert caught.value.reason == LEASE_STORE_UNAVAILABLE
    assert isinstance(caught.value.__cause__, Exception)
    stats = store.stats()
    assert (stats.store_errors_total, stats.admitted_fail_open_total) == (3, 1)
    assert stats.heartbeats_unverified_total == 1


async def test_redis_down_fail_closed_refuses_new_streams_and_lets_leases_run_out(
    node: Node, redis_server: RedisServer
) -> None:
    store = node(
        LeasePolicy(max_streams=3, ttl=3.0, heartbeat_interval=1.0, on_store_error="closed")
    )
    await store.admit("acct", "s1", 100)
    redis_server.stop()
    answer, took = await timed(store.admit("acct", "s2", 101))
    assert (answer.admitted, answer.reason) == (False, LEASE_STORE_UNAVAILABLE) and took < BOUND
    beat = await store.heartbeat("acct", "s1", 101)  # a live lease runs to its expiry …
    assert (beat.admitted, beat.unverified, beat.expires) == (True, True, 103)
    assert (await store.heartbeat("acct", "s1", 103)).reason == LEASE_EXPIRED  # … and no further
    assert store.stats().refused_fail_closed_total == 1
    redis_server.start()  # back (empty): nobody is locked out
    assert (await store.admit("acct", "s3", 104)).admitted


async def test_a_hung_redis_is_answered_within_the_timeout_both_ways(
    node: Node, redis_server: RedisServer
) -> None:
    open_store = node(SHORT)
    closed_store = node(
        LeasePolicy(max_streams=3, ttl=3.0, heartbeat_interval=1.0, on_store_error="closed")
    )
    await open_store.admit("warm", "s0", 100)
    await closed_store.admit("warm", "s0", 100)
    redis_server.pause()
    try:
        opened, took_open = await timed(open_store.admit("acct", "s1", 101))
        closed, took_closed = await timed(closed_store.admit("acct", "s2", 101))
    finally:
        redis_server.resume()
    assert opened.admitted and opened.unverified
    assert closed.reason == LEASE_STORE_UNAVAILABLE
    assert took_open < BOUND and took_closed < BOUND
    assert took_open >= SHORT.store_timeout * 0.9  # it was the timeout that answered
    # the connection that timed out is not reused with a late reply in it: answers stay right
    later = await open_store.admit("acct", "s3", 102)
    assert (later.admitted, later.unverified, later.expires) == (True, False, 105)
    assert [lease.session for lease in await closed_store.sessions("warm", 102)] == ["s0"]


async def test_a_restart_restores_the_limit_within_one_ttl_and_locks_nobody_out(
    node: Node, redis_server: RedisServer
) -> None:
    """Two streams allowed; s1, s2 admitted before Redis restarts empty, s3 admitted fail-open
    while it is down, s4 admitted right after (the store is empty). Every stream heartbeats
    on jittered intervals: within one ttl of the restart the account is back to two."""
    policy = LeasePolicy(max_streams=2, ttl=3.0, heartbeat_interval=1.0)
    a, b = node(policy), node(policy)
    await a.admit("acct", "s1", 100)
    await b.admit("acct", "s2", 100.2)
    redis_server.stop()
    assert (await a.admit("acct", "s3", 100.4)).unverified
    redis_server.start()
    restarted = 100.5
    assert (await b.admit("acct", "s4", restarted)).admitted
    owner = {"s1": a, "s2": b, "s3": a, "s4": b}
    watching = set(owner)
    rng = random.Random(15)
    beats = [(restarted + policy.jittered_interval(rng) * rng.random(), s) for s in owner]
    heapq.heapify(beats)
    while beats and beats[0][0] <= restarted + 2 * policy.ttl:
        now, session = heapq.heappop(beats)
        answer = await owner[session].heartbeat("acct", session, now)
        if not answer.admitted:
            assert answer.reason == TOO_MANY_STREAMS
            watching.discard(session)
            continue
        heapq.heappush(beats, (now + policy.jittered_interval(rng), session))
        if now >= restarted + policy.ttl:
            assert len(watching) <= 2, f"{sorted(watching)} still watching at {now}"
    assert len(watching) == 2  # the limit holds, and two streams still play
    live = {lease.session for lease in await a.sessions("acct", restarted + 2 * policy.ttl)}
    assert live == watching
    assert a.stats().reregistered_total + b.stats().reregistered_total >= 1


async def test_one_round_trip_per_admit_and_per_heartbeat(
    node: Node, redis_server: RedisServer
) -> None:
    store = node(SHORT)
    await store.admit("warm", "s0", 100)
    await store.heartbeat("warm", "s0", 100)  # both scripts are loaded now

    async def evalsha_calls() -> int:
        stats = await store.client.info("commandstats")
        calls = int(stats["cmdstat_evalsha"]["calls"])
        assert redis_server.commandstats()["evalsha"] == calls  # the adapter reads the same
        return calls

    for operation in (
        lambda: store.admit("acct", "s1", 101),
        lambda: store.heartbeat("acct", "s1", 102),
        lambda: store.admit("acct", "s2", 102),
        lambda: store.heartbeat("acct", "s2", 103),
    ):
        counted, served = store.stats().round_trips_total, await evalsha_calls()
        assert (await operation()).admitted
        assert store.stats().round_trips_total - counted == 1
        assert await evalsha_calls() - served == 1  # Redis agrees


async def test_round_trips_per_viewer_per_minute(node: Node) -> None:
    """30 viewers on 10 accounts watch for three minutes with the default policy (heartbeat
    every 10 s ± 20 %): one admit each plus six heartbeats a minute."""
    policy = LeasePolicy()
    stores = [node(policy), node(policy)]
    rng = random.Random(42)
    viewers, start, minutes = 30, 1000.0, 3
    beats = []
    for viewer in range(viewers):
        joined = start + rng.uniform(0, 1)
        store, account = stores[viewer % 2], f"acct{viewer % 10}"
        assert (await store.admit(account, f"v{viewer}", joined)).admitted
        beats.append((joined + policy.jittered_interval(rng), viewer))
    heapq.heapify(beats)
    calls = viewers
    while beats[0][0] < start + 60 * minutes:
        now, viewer = heapq.heappop(beats)
        beat = await stores[viewer % 2].heartbeat(f"acct{viewer % 10}", f"v{viewer}", now)
        assert beat.admitted
        calls += 1
        heapq.heappush(beats, (now + policy.jittered_interval(rng), viewer))
    trips = sum(store.stats().round_trips_total for store in stores)
    assert trips == calls + 2 * 2  # + loading the two scripts once (NOSCRIPT, SCRIPT LOAD)
    rate = round_trips_per_viewer_minute(trips, viewers, 60 * minutes)
    print(f"\nRedis round trips per viewer per minute: {rate:.2f} ({trips} for {viewers} viewers)")
    assert 6.0 <= rate <= 6.8, rate


def test_the_redis_server_adapter_restarts_on_its_port_empty_and_counts_commands(
    tmp_path: Path,
) -> None:
    binary = shutil.which("redis-server")
    if binary is None:
        skip_missing("redis", "redis-server is not on PATH")
    with RedisServer(binary=binary) as server:  # a directory of its own, removed at the end
        directory, port = server.directory, server.port
        assert server.url == f"redis://127.0.0.1:{port}/0"
        assert server.commandstats() == {"ping": 1}  # the start-up check
        assert server.ping() and server.commandstats() == {"ping": 2, "info": 1}
        server.pause()
        assert not server.ping()  # hung: connects, never answers
        server.resume()
        server.stop()
        assert not server.running and not server.ping()
        server.start()
        assert server.port == port and server.commandstats() == {"ping": 1}  # restarted empty
        assert not any(directory.glob("*.rdb")) and not any(directory.glob("*.aof"))
    assert not server.running and not directory.exists()
