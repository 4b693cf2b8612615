"""The scenario's ``[access]`` table (``scenario.access``) and what it gives the stack and the
virtual viewers (``rehearse.viewer_access``): the event file's table, one token per viewer on
its account, the cookie each request carries."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from livecast.access.keys import KeyRing
from livecast.access.token_gate import COOKIE_NAME
from livecast.access.tokens import verify
from livecast.errors import ConfigError
from livecast.rehearse.viewer_access import SESSION_PATH, ViewerAccess
from livecast.scenario.access import AccessSpec, parse_access
from livecast.scenario.file import parse_scenario

RING = KeyRing({"k1": b"s" * 32}, "k1")
STACK = {"target": {"stack": True}}


def test_defaults_and_a_full_table() -> None:
    assert parse_access({}) == AccessSpec()
    spec = parse_access(
        {
            "accounts": 150,
            "max_streams": 3,
            "lease_store": "redis",
            "lease_ttl": 24,
            "on_limit": "end_oldest",
            "on_store_error": "closed",
        }
    )
    assert (spec.accounts, spec.max_streams, spec.lease_ttl) == (150, 3, 24.0)
    assert spec.leases and spec.redis


def test_the_scenario_puts_it_on_the_stack() -> None:
    scenario = parse_scenario({**STACK, "access": {"accounts": 7}})
    assert scenario.stack is not None and scenario.stack.access == AccessSpec(accounts=7)
    assert parse_scenario(STACK).stack.access is None  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ({"accounts": 0}, "access.accounts"),
        ({"accounts": "many"}, "access.accounts"),
        ({"max_streams": -1}, "access.max_streams"),
        ({"lease_store": "etcd"}, "access.lease_store"),
        ({"on_limit": "kick"}, "access.on_limit"),
        ({"on_store_error": "maybe"}, "access.on_store_error"),
        ({"lease_ttl": 0.5}, "access.lease_ttl"),
        ({"lease_ttl": True}, "access.lease_ttl"),
        ({"max_streams": 0, "lease_store": "redis"}, "access.max_streams"),
        ({"token": "x"}, "access.token"),
    ],
)
def test_bad_keys_are_named(table: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_access(table)
    assert caught.value.key == key


def test_access_needs_a_stack_the_rehearsal_starts() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_scenario({"target": {"urls": ["http://h/live/main.m3u8"]}, "access": {}})
    assert caught.value.key == "access"


def test_the_event_table_reads_back_as_the_stack_reads_it() -> None:
    lines = AccessSpec(max_streams=2, lease_store="redis").event_table(
        '/tmp/a "b"/keys.toml', "redis://127.0.0.1:6390/0"
    )
    table = tomllib.loads("\n".join(lines))["access"]
    assert table == {
        "tokens": True,
        "keys": '/tmp/a "b"/keys.toml',
        "max_streams": 2,
        "lease_ttl": 30.0,
        "on_limit": "refuse",
        "on_store_error": "open",
        "lease_store": "redis://127.0.0.1:6390/0",
    }
    tokens_only = tomllib.loads("\n".join(AccessSpec(max_streams=0).event_table("k", None)))
    assert tokens_only["access"] == {"tokens": True, "keys": "k"}


def test_viewers_share_the_accounts_round_robin_with_a_token_each() -> None:
    access = ViewerAccess(RING, "main", accounts=3, leases=True, token_life=600).validate()
    assert access.session_url == SESSION_PATH
    assert [access.account(i) for i in range(5)] == [
        "acct-000000", "acct-000001", "acct-000002", "acct-000000", "acct-000001",
    ]  # fmt: skip
    token = access.token(4, "v4", 1_800_000_000.0)
    claims = verify(token, event="main", now=1_800_000_000.0, key_ring=RING)
    assert (claims.account, claims.session, claims.exp) == ("acct-000001", "v4", 1_800_000_600)
    with pytest.raises(Exception, match="expired"):
        verify(token, event="main", now=1_800_000_600.0 + 61, key_ring=RING)
    header = access.cookie_header(4, "v4", 1_800_000_000.0)
    assert header == f"Cookie: {COOKIE_NAME}={token}\r\n".encode()
    assert ViewerAccess(RING, "main", accounts=3).session_url is None  # tokens only


def test_an_audience_without_accounts_is_refused() -> None:
    with pytest.raises(ConfigError):
        ViewerAccess(RING, "main", accounts=0).validate()
