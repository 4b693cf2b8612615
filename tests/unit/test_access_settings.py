"""``[access]`` in an event file: the origin's token gate (and the edges') from the config."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from livecast.access.keys import keygen_stanza, load_key_ring
from livecast.access.leases import MemoryLeaseStore
from livecast.access.settings import AccessSettings, redacted
from livecast.access.tokens import TokenClaims, issue
from livecast.admin.settings import AdminSettings
from livecast.config import config_toml, load_config
from livecast.errors import ConfigError
from livecast.origin.contract import Request
from livecast.origin_access import lease_store, token_gate

OPEN_PATHS = ("/player.html", "/hls.min.js")


def _event_file(tmp_path: Path, access: str) -> Path:
    """An event file with ``access`` as its [access] table; KEYS stands for the key ring's path
    (relative paths are the working directory's, as every path of an event file)."""
    keys = tmp_path / "keys.toml"
    keys.write_text(keygen_stanza("k1"))
    path = tmp_path / "event.toml"
    path.write_text(f'source = "test"\n\n[access]\n{access.replace("KEYS", str(keys))}\n')
    return path


def test_tokens_on_gives_a_gate_that_refuses_the_stream_without_a_token(tmp_path: Path) -> None:
    config = load_config(_event_file(tmp_path, 'tokens = true\nkeys = "KEYS"'), env={})
    assert config.access == AccessSettings(tokens=True, keys=str(tmp_path / "keys.toml"))
    gate = token_gate(config, OPEN_PATHS)
    assert gate is not None
    refusal = gate.authorize(Request("GET", "/live/main.m3u8", ""), time.time())
    assert refusal is not None and refusal.reason == "missing"
    assert gate.authorize(Request("GET", "/player.html", "token=x"), time.time()) is None
    ring = load_key_ring(tmp_path / "keys.toml", env={})
    claims = TokenClaims("main", "acct", "s1", int(time.time()) + 60)
    cookie = ("cookie", f"livecast_token={issue(claims, ring)}")
    assert gate.authorize(Request("GET", "/live/720p/index.m3u8", "", (cookie,)), 0) is None


def test_tokens_off_by_default_and_the_table_survives_the_round_trip(tmp_path: Path) -> None:
    assert token_gate(load_config(None, env={}), OPEN_PATHS) is None
    config = load_config(_event_file(tmp_path, 'tokens = true\nkeys = "KEYS"\nskew = 20'), env={})
    copy = tmp_path / "copy.toml"
    copy.write_text(config_toml(config))
    keys = str(tmp_path / "keys.toml")
    assert load_config(copy, env={}).access == AccessSettings(True, keys, 20.0)


@pytest.mark.parametrize(
    ("access", "key"),
    [
        ("tokens = true\nskew = -1", "access.skew"),
        ('keys = "KEYS"', "access.keys"),
        ('tokens = "yes"', "access.tokens"),
        ("tokens = true\nttl = 5", "access.ttl"),
    ],
)
def test_bad_access_tables_name_the_key(tmp_path: Path, access: str, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(_event_file(tmp_path, access), env={})
    assert caught.value.key == key


def test_tokens_on_without_any_key_fails_at_start(tmp_path: Path) -> None:
    config = load_config(_event_file(tmp_path, "tokens = true"), env={})
    with pytest.raises(ConfigError):
        token_gate(config, OPEN_PATHS)  # neither a keys file nor $LIVECAST_TOKEN_KEYS


def test_the_admin_table_needs_tokens_and_hashes_not_secrets(tmp_path: Path) -> None:
    path = tmp_path / "admin.toml"
    path.write_text("[admin]\nenabled = true\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert caught.value.key == "admin.enabled"  # it issues tokens: [access] tokens = true
    path.write_text('[admin]\nsecret_hashes = "not-a-hash"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert caught.value.key == "admin.secret_hashes"
    settings = AdminSettings(enabled=True)
    with pytest.raises(ConfigError):
        settings.hashes(env={})  # no secret anywhere: no admin API
    digest = "ab" * 32
    assert settings.hashes(env={"LIVECAST_ADMIN_SECRET_HASHES": f" {digest.upper()} ,"}) == (
        digest,
    )


LEASES = 'tokens = true\nkeys = "KEYS"\nmax_streams = 2\n'


def test_the_lease_store_is_memory_by_default_or_redis_from_the_table_or_environment(
    tmp_path: Path,
) -> None:
    config = load_config(_event_file(tmp_path, LEASES), env={})
    assert (config.access.lease_store, config.access.on_store_error) == ("memory", "open")
    assert config.access.lease_store_url(env={}) is None
    assert isinstance(lease_store(config.access, env={}), MemoryLeaseStore)
    url = "redis://127.0.0.1:6390/2"
    table = LEASES + f'lease_store = "{url}"\non_store_error = "closed"\n'
    config = load_config(_event_file(tmp_path, table), env={})
    assert config.access.lease_store_url(env={}) == url
    assert config.access.lease_policy().on_store_error == "closed"
    copy = tmp_path / "copy.toml"
    copy.write_text(config_toml(config))  # how livecast up hands it to its origins
    assert load_config(copy, env={}).access == config.access
    other = "redis://:secret@10.0.0.5:6379/0"
    assert config.access.lease_store_url(env={"LIVECAST_LEASE_STORE": other}) == other
    memory = {"LIVECAST_LEASE_STORE": "memory"}
    assert config.access.lease_store_url(env=memory) is None


async def test_a_redis_lease_store_is_built_without_connecting() -> None:
    settings = AccessSettings(tokens=True, max_streams=2, lease_store="redis://127.0.0.1:1/0")
    store = lease_store(settings, env={})  # connections are opened by the first call
    assert type(store).__name__ == "RedisLeaseStore" and store.policy.max_streams == 2
    await store.close()


@pytest.mark.parametrize(
    ("access", "key"),
    [
        (LEASES + 'lease_store = "redis"', "access.lease_store"),
        (LEASES + 'lease_store = "http://127.0.0.1:6379/0"', "access.lease_store"),
        (LEASES + 'lease_store = "redis://127.0.0.1:notaport/0"', "access.lease_store"),
        (LEASES + 'lease_store = "redis://127.0.0.1:6379/zero"', "access.lease_store"),
        (LEASES + 'lease_store = "redis:///0"', "access.lease_store"),
        ('tokens = true\nkeys = "KEYS"\nlease_store = "redis://h:1/0"', "access.lease_store"),
        (LEASES + 'on_store_error = "sometimes"', "access.on_store_error"),
    ],
)
def test_bad_lease_stores_name_the_key(tmp_path: Path, access: str, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(_event_file(tmp_path, access), env={})
    assert caught.value.key == key


def test_a_bad_store_url_never_shows_its_password() -> None:
    settings = AccessSettings(tokens=True, max_streams=1)
    bad = "redis://user:hunter2@127.0.0.1:99999/0"
    with pytest.raises(ConfigError) as caught:
        settings.lease_store_url(env={"LIVECAST_LEASE_STORE": bad})
    assert caught.value.key == "access.lease_store ($LIVECAST_LEASE_STORE)"
    assert "hunter2" not in str(caught.value) and "user:***@127.0.0.1" in str(caught.value)
    assert redacted("redis://:pw@h:1/0") == "redis://:***@h:1/0"
