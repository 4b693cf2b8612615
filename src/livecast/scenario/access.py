"""The ``[access]`` table of a rehearsal scenario — pure: the stack checks who watches
(signed playback tokens at the origin and the edges, docs/access.md) and, with ``max_streams``,
limits each account's concurrent streams with leases the virtual viewers join and heartbeat.

    [access]
    accounts = 150          # the audience's accounts: viewer i watches on account i % accounts
    max_streams = 3         # the stack's limit per account (0: tokens only, no leases)
    lease_store = "redis"   # "memory" (one origin) or "redis": the rehearsal starts Debian's
                            # redis-server on loopback and reports its round trips per viewer
    lease_ttl = 30.0        # seconds a lease holds without a heartbeat (heartbeats every third)
    on_limit = "refuse"     # or "end_oldest"
    on_store_error = "open" # Redis unreachable: admit (open) or refuse new streams (closed)

The rehearsal writes a fresh key ring, gives it to the stack (and its edges) and signs one token
per viewer with it (``rehearse.viewer_access``). A refused viewer counts as a start failure (or a
fatal error once playing): the accounts of a rehearsal are a legitimate audience.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from livecast.access.settings import AccessSettings
from livecast.errors import ConfigError

ACCESS_KEYS = {"accounts", "max_streams", "lease_store", "lease_ttl", "on_limit", "on_store_error"}
LEASE_STORES = ("memory", "redis")
STORE_ERROR_POLICIES = ("open", "closed")


@dataclass(frozen=True, slots=True)
class AccessSpec:
    accounts: int = 1000
    max_streams: int = 3
    lease_store: str = "memory"
    lease_ttl: float = 30.0
    on_limit: str = "refuse"
    on_store_error: str = "open"

    @property
    def leases(self) -> bool:
        """Whether the viewers join and heartbeat leases (the stack limits streams)."""
        return self.max_streams > 0

    @property
    def redis(self) -> bool:
        return self.leases and self.lease_store == "redis"

    def event_table(self, keys_path: str, redis_url: str | None) -> list[str]:
        """The ``[access]`` table of the stack's event file (``access.settings``)."""
        lines = ["[access]", "tokens = true", f"keys = {json.dumps(keys_path)}"]
        if not self.leases:
            return lines
        lines += [
            f"max_streams = {self.max_streams}",
            f"lease_ttl = {self.lease_ttl}",
            f"on_limit = {json.dumps(self.on_limit)}",
            f"on_store_error = {json.dumps(self.on_store_error)}",
        ]
        if redis_url is not None:
            lines.append(f"lease_store = {json.dumps(redis_url)}")
        return lines


def parse_access(table: Mapping[str, Any]) -> AccessSpec:
    """The scenario's ``[access]`` table; ConfigError naming the bad key (``access.…``)."""
    extra = sorted(set(table) - ACCESS_KEYS)
    if extra:
        raise ConfigError(f"access.{extra[0]}", "unknown key")
    defaults = AccessSpec()
    spec = AccessSpec(
        accounts=_integer(table, "accounts", defaults.accounts, 1),
        max_streams=_integer(table, "max_streams", defaults.max_streams, 0),
        lease_store=_choice(table, "lease_store", LEASE_STORES),
        lease_ttl=_number(table, "lease_ttl", defaults.lease_ttl),
        on_limit=_choice(table, "on_limit", ("refuse", "end_oldest")),
        on_store_error=_choice(table, "on_store_error", STORE_ERROR_POLICIES),
    )
    if spec.leases:  # the stack's own validation of the same keys, errors named access.…
        AccessSettings(
            tokens=True,
            max_streams=spec.max_streams,
            lease_ttl=spec.lease_ttl,
            on_limit=spec.on_limit,
        ).validate()
    elif "lease_store" in table or "lease_ttl" in table:
        raise ConfigError("access.max_streams", "leases need max_streams ≥ 1")
    return spec


def _integer(table: Mapping[str, Any], key: str, default: int, minimum: int) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"access.{key}", f"must be an integer, got {value!r}")
    if value < minimum:
        raise ConfigError(f"access.{key}", f"{value} is below {minimum}")
    return value


def _number(table: Mapping[str, Any], key: str, default: float) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"access.{key}", f"must be a number, got {value!r}")
    return float(value)


def _choice(table: Mapping[str, Any], key: str, choices: tuple[str, ...]) -> str:
    value = table.get(key, choices[0])
    if value not in choices:
        raise ConfigError(f"access.{key}", f"{value!r} is not one of {', '.join(choices)}")
    return str(value)
