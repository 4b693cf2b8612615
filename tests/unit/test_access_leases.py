"""The pure lease rules (livecast.access.leases): limits, end_oldest, renewals, expiry with
injected time, jitter, configuration errors and the memory and work bounds."""

from __future__ import annotations

import random

import pytest

from livecast.access.leases import (
    ENDED_BY_NEWER_STREAM,
    LEASE_EXPIRED,
    TOO_MANY_STREAMS,
    Admission,
    LeasePolicy,
    LeaseTable,
)
from livecast.errors import AccessError, ConfigError


def table(**policy: object) -> LeaseTable:
    return LeaseTable(LeasePolicy(**policy))  # type: ignore[arg-type]


def test_the_defaults() -> None:
    policy = LeasePolicy().validate()
    assert (policy.max_streams, policy.ttl, policy.heartbeat_interval) == (3, 30.0, 10.0)
    assert (policy.on_limit, policy.on_store_error, policy.store_timeout) == (
        "refuse",
        "open",
        0.25,
    )


def test_the_n_plus_first_stream_is_refused_with_a_reason() -> None:
    leases = table(max_streams=2)
    assert leases.admit("acct", "s1", 0).admitted
    assert leases.admit("acct", "s2", 1).admitted
    third = leases.admit("acct", "s3", 2)
    assert (third.admitted, third.reason) == (False, TOO_MANY_STREAMS)
    with pytest.raises(AccessError) as caught:
        third.check()
    assert caught.value.reason == TOO_MANY_STREAMS
    assert [lease.session for lease in leases.sessions("acct", 2)] == ["s1", "s2"]
    assert leases.admit("other", "s3", 2).admitted  # the limit is per account


def test_end_oldest_admits_and_tells_the_ended_session() -> None:
    leases = table(max_streams=2, on_limit="end_oldest")
    leases.admit("acct", "s1", 0)
    leases.admit("acct", "s2", 1)
    leases.heartbeat("acct", "s1", 2)  # renewing does not make s1 younger
    third = leases.admit("acct", "s3", 3)
    assert third == Admission(admitted=True, expires=33.0, ended="s1")
    assert leases.heartbeat("acct", "s1", 4).reason == ENDED_BY_NEWER_STREAM
    assert leases.heartbeat("acct", "s2", 4).admitted
    assert [lease.session for lease in leases.sessions("acct", 4)] == ["s2", "s3"]


def test_the_ended_marker_lasts_one_ttl_then_it_is_an_expired_lease() -> None:
    leases = table(max_streams=1, on_limit="end_oldest", ttl=30)
    leases.admit("acct", "s1", 0)
    leases.admit("acct", "s2", 1)
    leases.heartbeat("acct", "s2", 25)
    assert leases.heartbeat("acct", "s1", 30).reason == ENDED_BY_NEWER_STREAM
    assert leases.heartbeat("acct", "s1", 31).reason == LEASE_EXPIRED
    assert leases.admit("acct", "s1", 31).ended == "s2"  # coming back is a new stream


def test_admitting_the_same_session_twice_is_a_renewal() -> None:
    leases = table(max_streams=1)
    assert leases.admit("acct", "s1", 0).expires == 30
    again = leases.admit("acct", "s1", 5)
    assert (again.admitted, again.expires, again.ended) == (True, 35, None)
    assert len(leases.sessions("acct", 5)) == 1
    assert leases.sessions("acct", 5)[0].started == 0


def test_a_heartbeat_renews_the_lease() -> None:
    leases = table(ttl=30, heartbeat_interval=10)
    leases.admit("acct", "s1", 0)
    for now in (10, 20, 30, 40, 50):
        assert leases.heartbeat("acct", "s1", now).expires == now + 30
    assert leases.sessions("acct", 79)[0].expires == 80


def test_a_lease_expires_after_the_ttl_and_frees_its_slot() -> None:
    leases = table(max_streams=1, ttl=30)
    leases.admit("acct", "s1", 0)
    assert leases.admit("acct", "s2", 29.9).reason == TOO_MANY_STREAMS
    assert leases.admit("acct", "s2", 30).admitted  # expired exactly at the ttl
    assert leases.heartbeat("acct", "s1", 31).reason == LEASE_EXPIRED
    assert leases.heartbeat("nobody", "s9", 31).reason == LEASE_EXPIRED


def test_end_frees_the_slot() -> None:
    leases = table(max_streams=1)
    leases.admit("acct", "s1", 0)
    assert leases.end("acct", "s1") is True
    assert leases.end("acct", "s1") is False
    assert leases.admit("acct", "s2", 1).admitted
    assert leases.stats().accounts == 1


def test_sweep_is_bounded_per_call_and_forgets_idle_accounts() -> None:
    leases = LeaseTable(LeasePolicy(), sweep_batch=10)
    for i in range(25):
        leases.admit(f"acct{i}", "s", 0)
    assert leases.sweep(100) == 10
    assert leases.stats().accounts == 15
    assert leases.sweep(100, limit=100) == 15
    assert leases.stats().accounts == 0
    assert leases.stats().expired_total == 25


def test_the_jittered_interval_stays_within_twenty_percent() -> None:
    policy = LeasePolicy(heartbeat_interval=10)
    rng = random.Random(7)
    waits = [policy.jittered_interval(rng) for _ in range(2000)]
    assert min(waits) >= 8.0 and max(waits) <= 12.0
    assert min(waits) < 8.2 and max(waits) > 11.8  # full jitter: the whole band is used
    assert 9.8 < sum(waits) / len(waits) < 10.2


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"max_streams": 0}, "leases.max_streams"),
        ({"ttl": 0}, "leases.ttl"),
        ({"heartbeat_interval": -1}, "leases.heartbeat_interval"),
        ({"heartbeat_interval": 13}, "leases.heartbeat_interval"),  # 15.6 s twice > 30 s
        ({"on_limit": "kick"}, "leases.on_limit"),
        ({"on_store_error": "maybe"}, "leases.on_store_error"),
        ({"store_timeout": 0}, "leases.store_timeout"),
    ],
)
def test_validate_names_the_bad_key(change: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        LeasePolicy(**change).validate()  # type: ignore[arg-type]
    assert caught.value.key == key
    with pytest.raises(ConfigError):
        LeaseTable(LeasePolicy(**change))  # type: ignore[arg-type]


def test_memory_is_bounded_by_the_account_cap_and_drops_are_counted() -> None:
    leases = LeaseTable(LeasePolicy(), max_accounts=100)
    for i in range(250):
        leases.admit(f"acct{i}", "s", float(i) / 1000)  # all live: nothing to sweep
    stats = leases.stats()
    assert stats.accounts == 100
    assert stats.accounts_dropped_total == 150
    assert stats.leases_dropped_total == 150
    assert leases.heartbeat("acct249", "s", 1).admitted  # the most recent are kept
    assert leases.heartbeat("acct0", "s", 1).reason == LEASE_EXPIRED


def test_expired_accounts_make_room_before_live_ones_are_dropped() -> None:
    leases = LeaseTable(LeasePolicy(ttl=30), max_accounts=10, sweep_batch=10)
    for i in range(10):
        leases.admit(f"old{i}", "s", 0)
    for i in range(10):
        leases.admit(f"new{i}", "s", 60)
    assert leases.stats().accounts_dropped_total == 0
    assert leases.stats().expired_total == 10


def test_ended_markers_per_account_are_bounded() -> None:
    leases = table(max_streams=1, on_limit="end_oldest")
    for i in range(100):
        leases.admit("acct", f"s{i}", i / 100)
    stats = leases.stats()
    assert stats.ended_markers == 16
    assert stats.ended_markers_dropped_total == 99 - 16


def test_a_heartbeat_flood_is_constant_work_and_stores_nothing_new() -> None:
    leases = table(max_streams=3)
    for i in range(5000):
        leases.admit(f"acct{i}", "s", 0)
    leases.admit("acct", "a", 0)
    leases.admit("acct", "b", 0)
    before = leases.stats()
    for i in range(10_000):
        assert leases.heartbeat("acct", "a", 1 + i / 1000).admitted
    after = leases.stats()
    assert (after.accounts, after.leases, after.ended_markers) == (
        before.accounts,
        before.leases,
        before.ended_markers,
    )
    # each heartbeat looks at the account's own two leases, never at the 5,000 others
    assert after.examined_total - before.examined_total == 2 * 10_000
