"""The session endpoints: a stream is a lease on one of its account's slots, taken at the join,
renewed by heartbeats, freed at the end — answered per request, never cached; a session's
heartbeats and joins reach the store at most once per floor (the rest: 429, nothing stored).
The pure core and floor with injected time; the async adapter over the in-memory store."""

from __future__ import annotations

import json
import random
from dataclasses import replace

import pytest

from livecast.access.heartbeat import (
    END_PATH,
    HEARTBEAT_PATH,
    RESULTS,
    HeartbeatFloor,
    SessionCore,
    SessionEndpoints,
    StoreCall,
)
from livecast.access.keys import KeyRing
from livecast.access.leases import (
    LEASE_STORE_UNAVAILABLE,
    TOO_MANY_STREAMS,
    LeasePolicy,
    LeaseTable,
    MemoryLeaseStore,
    refused,
)
from livecast.access.tokens import RevocationList, TokenClaims, issue
from livecast.origin.contract import Request, Response
from livecast.telemetry.metrics import Registry

RING = KeyRing({"k1": b"s" * 32}, "k1").validate()
NOW = 1_800_000_000.0
POLICY = LeasePolicy(max_streams=1, ttl=30.0, heartbeat_interval=10.0)
FLOOR = 2.5  # a quarter of the heartbeat interval


def endpoints(revoked: RevocationList | None = None) -> SessionEndpoints:
    return SessionEndpoints(RING, LeaseTable(POLICY), revoked=revoked, rng=random.Random(1))


def request(session: str, query: str = "", account: str = "a1") -> Request:
    token = issue(TokenClaims("main", account, session, int(NOW) + 3600), RING)
    return Request("GET", HEARTBEAT_PATH, query, (("cookie", f"livecast_token={token}"),))


def end_request(session: str, account: str = "a1") -> Request:
    return replace(request(session, account=account), path=END_PATH)


def refused_for(response: Response, status: int = 403) -> str:
    assert response.status == status and response.cache_control == "no-store"
    return dict(response.extra_headers)["X-Livecast-Reason"]


# -- the async endpoints over the in-memory store --------------------------------------------------


async def test_a_join_admits_and_says_when_to_beat_again() -> None:
    answer = await endpoints().heartbeat(request("s1", "join=1"), NOW)
    assert answer.status == 200 and answer.cache_control == "no-store"
    assert not answer.reusable and not answer.permanent  # never in the origin's answer cache
    body = json.loads(answer.body)
    assert 8.0 <= body["next_s"] <= 12.0 and body["expires"] == NOW + 30.0


async def test_the_account_limit_holds_and_the_end_frees_the_slot() -> None:
    sessions = endpoints()
    assert (await sessions.heartbeat(request("s1", "join=1"), NOW)).status == 200
    second = await sessions.heartbeat(request("s2", "join=1"), NOW + 1)
    assert refused_for(second) == TOO_MANY_STREAMS
    assert (await sessions.heartbeat(request("s1"), NOW + 10)).status == 200  # renewed
    assert (await sessions.heartbeat(request("s2", "join=1", account="a2"), NOW + 2)).status == 200
    assert (await sessions.end(end_request("s1"), NOW + 11)).status == 204
    assert (await sessions.heartbeat(request("s2", "join=1"), NOW + 12)).status == 200


async def test_a_lapsed_lease_is_not_renewed_by_a_heartbeat() -> None:
    sessions = endpoints()
    assert (await sessions.heartbeat(request("s1", "join=1"), NOW)).status == 200
    assert refused_for(await sessions.heartbeat(request("s1"), NOW + 31)) == "lease_expired"
    assert refused_for(await sessions.heartbeat(request("s9"), NOW)) == "lease_expired"


async def test_tokens_are_checked_as_the_gate_checks_them() -> None:
    revoked = RevocationList()
    sessions = endpoints(revoked)
    nothing = Request("GET", HEARTBEAT_PATH, "join=1")
    assert refused_for(await sessions.heartbeat(nothing, NOW)) == "missing"
    genuine = request("s1", "join=1")
    forged = replace(genuine, headers=(("cookie", genuine.headers[0][1][:-3] + "AAA"),))
    assert refused_for(await sessions.heartbeat(forged, NOW)) == "bad_signature"
    revoked.revoke_session("s1", NOW)
    assert refused_for(await sessions.heartbeat(request("s1", "join=1"), NOW)) == "revoked"
    assert refused_for(await sessions.end(end_request("s1"), NOW)) == "revoked"
    assert sessions.store.figures().round_trips_total == 0  # no refused token reached it


async def test_a_heartbeat_flood_costs_one_store_call_and_stores_nothing_more() -> None:
    sessions = endpoints()
    answers = [
        await sessions.heartbeat(request("s1", "join=1"), NOW + i * 0.01) for i in range(200)
    ]
    assert answers[0].status == 200
    assert {refused_for(answer, 429) for answer in answers[1:]} == {"heartbeat_too_soon"}
    assert {dict(answer.extra_headers)["Retry-After"] for answer in answers[1:]} <= {"1", "2", "3"}
    assert sessions.store.figures().round_trips_total == 1
    assert sessions.leases is not None
    stats = sessions.leases.stats()
    assert (stats.accounts, stats.leases, stats.ended_markers) == (1, 1, 0)
    assert sessions.core.floor.stats().sessions == 1
    assert sessions.core.answered["heartbeat_too_soon"] == 199
    beat = await sessions.heartbeat(request("s1"), NOW + FLOOR)  # the floor passed: renewed
    assert beat.status == 200 and sessions.store.figures().round_trips_total == 2


async def test_an_end_always_reaches_the_store_once_and_repeats_are_answered_from_memory() -> None:
    sessions = endpoints()
    assert (await sessions.heartbeat(request("s1", "join=1"), NOW)).status == 200
    for offset in (0.1, 0.2, 0.3):  # the viewer stops right after joining, and insists
        assert (await sessions.end(end_request("s1"), NOW + offset)).status == 204
    assert sessions.store.figures().round_trips_total == 2  # the join and one end
    assert sessions.leases is not None and sessions.leases.stats().leases == 0
    again = await sessions.heartbeat(request("s1", "join=1"), NOW + 1)  # a join right after
    assert refused_for(again, 429) == "heartbeat_too_soon"
    assert (await sessions.heartbeat(request("s1", "join=1"), NOW + 0.1 + FLOOR)).status == 200


async def test_the_metrics_count_round_trips_and_answers_by_result() -> None:
    sessions = endpoints()
    registry = Registry()
    collect = sessions.collector(registry)
    text = registry.render().decode()
    assert "livecast_lease_store_round_trips_total 0" in text
    for result in RESULTS:  # every result present from the start, at 0
        assert f'livecast_sessions_answered_total{{result="{result}"}} 0' in text
    await sessions.heartbeat(request("s1", "join=1"), NOW)
    await sessions.heartbeat(request("s1"), NOW + 1)
    await sessions.heartbeat(request("s2", "join=1"), NOW + 1)
    collect()
    text = registry.render().decode()
    assert "livecast_lease_store_round_trips_total 2" in text
    assert "livecast_lease_store_errors_total 0" in text
    assert 'livecast_sessions_answered_total{result="admitted"} 1' in text
    assert 'livecast_sessions_answered_total{result="heartbeat_too_soon"} 1' in text
    assert 'livecast_sessions_answered_total{result="too_many_streams"} 1' in text


# -- the pure core ---------------------------------------------------------------------------------


def core() -> SessionCore:
    return SessionCore(RING, POLICY, rng=random.Random(1), unix_time=lambda mono: mono + NOW)


def test_the_core_says_what_to_ask_the_store_in_unix_time() -> None:
    sessions = core()  # the origin's clock is monotonic: the store and the token get Unix time
    assert sessions.ask(request("s1", "join=1"), 5.0) == StoreCall("admit", "a1", "s1", NOW + 5)
    assert sessions.ask(request("s1", "x=1"), 5.0 + FLOOR) == StoreCall(
        "heartbeat", "a1", "s1", NOW + 5 + FLOOR
    )
    assert sessions.ask(end_request("s1"), 6.0, ending=True) == StoreCall(
        "end", "a1", "s1", NOW + 6
    )


def test_the_core_answers_a_fail_closed_store_with_a_503_to_retry() -> None:
    answer = core().answer(refused(LEASE_STORE_UNAVAILABLE))
    assert refused_for(answer, 503) == LEASE_STORE_UNAVAILABLE
    assert dict(answer.extra_headers)["Retry-After"] == "5"
    assert refused_for(core().answer(refused("nonsense")), 503) == LEASE_STORE_UNAVAILABLE


def test_retry_after_is_the_rest_of_the_floor_in_whole_seconds() -> None:
    sessions = core()
    assert isinstance(sessions.ask(request("s1"), 0.0), StoreCall)
    for at, seconds in ((0.1, "3"), (1.0, "2"), (1.6, "1"), (2.49, "1")):
        answer = sessions.ask(request("s1"), at)
        assert isinstance(answer, Response) and answer.status == 429
        assert dict(answer.extra_headers)["Retry-After"] == seconds
    assert sessions.ask(request("s1"), 0.1) is sessions.ask(request("s1"), 0.2)  # encoded once


# -- the floor ------------------------------------------------------------------------------------


def test_the_floor_counts_from_the_last_call_that_reached_the_store() -> None:
    floor = HeartbeatFloor(2.5)
    key = ("a1", "s1")
    assert floor.wait(key, 100.0) == 0.0
    assert floor.wait(key, 101.0) == pytest.approx(1.5)
    assert floor.wait(key, 102.0) == pytest.approx(0.5)  # refusals do not push it further
    assert floor.wait(key, 102.5) == 0.0
    assert floor.wait(("a1", "s2"), 102.5) == 0.0  # per session
    assert floor.stats().too_soon_total == 2


def test_an_end_passes_once_then_joins_and_ends_wait_for_the_floor() -> None:
    floor = HeartbeatFloor(2.5)
    key = ("a1", "s1")
    assert floor.wait(key, 100.0) == 0.0
    assert floor.end(key, 100.1) is True  # a viewer stops whenever
    assert floor.end(key, 100.2) is False  # nothing left to end
    assert floor.wait(key, 100.3) == pytest.approx(2.3)
    assert floor.end(key, 102.6) is True
    assert floor.stats().repeated_ends_total == 1


def test_the_floor_forgets_stale_sessions_and_caps_live_ones_counting_evictions() -> None:
    floor = HeartbeatFloor(2.5, max_sessions=100, prune_batch=8)
    for i in range(100):
        floor.wait(("a", f"s{i}"), 100.0 + i * 0.001)
    assert floor.stats().sessions == 100
    for i in range(100, 150):  # still within the floor of the first: the oldest are evicted
        floor.wait(("a", f"s{i}"), 100.2)
    assert (floor.stats().sessions, floor.stats().evicted_total) == (100, 50)
    assert floor.wait(("a", "s0"), 100.3) == 0.0  # evicted: it may reach the store once more
    assert floor.stats().evicted_total == 51
    floor.wait(("b", "s0"), 200.0)  # long after: a new call prunes up to 8 stale entries
    assert floor.stats().sessions == 100 - 8 + 1
    for i in range(1, 13):
        floor.wait(("b", f"s{i}"), 200.0)
    assert floor.stats().sessions == 13  # only the live ones are left
    assert floor.stats().evicted_total == 51  # pruning is not eviction


async def test_the_memory_store_counts_calls_and_sweeps_at_most_once_a_second() -> None:
    table = LeaseTable(LeasePolicy(max_streams=1, ttl=3.0, heartbeat_interval=1.0), sweep_batch=2)
    store = MemoryLeaseStore(table)
    for i in range(6):
        assert (await store.admit(f"acct{i}", "s", 100.0)).admitted
    assert table.stats().accounts == 6
    assert (await store.heartbeat("acct0", "s", 104.0)).reason == "lease_expired"
    assert table.stats().accounts == 4  # one sweep: the two least recently used
    await store.heartbeat("acct2", "s", 104.5)  # expired on access, but no sweep this second
    assert table.stats().accounts == 3
    await store.end("acct5", "s")
    assert store.figures().round_trips_total == 9
    assert store.policy is table.policy
