"""The ``[access]`` table of an event file: whether the origin (and the edges ``livecast up``
starts) require a signed playback token, where the key ring is, and the clock skew tolerated.

    [access]
    tokens = true              # every /live/ request needs a token (docs/access.md)
    keys = "keys.toml"         # the key ring; "" (the default): $LIVECAST_TOKEN_KEYS
    skew = 60.0                # seconds of clock difference tolerated (exp and nbf)
    max_streams = 3            # concurrent streams per account (0: no limit, no leases)
    lease_ttl = 30.0           # seconds a stream's lease holds without a heartbeat
    on_limit = "refuse"        # or "end_oldest"
    lease_store = "memory"     # this origin's memory, or "redis://host:port/db" shared by
                               # several origins ($LIVECAST_LEASE_STORE overrides it)
    on_store_error = "open"    # Redis unreachable: "open" admits, "closed" refuses new streams

:meth:`AccessSettings.key_ring` loads the ring (file, then environment), so that a missing or
short key is a :class:`~livecast.errors.ConfigError` at start, not a 403 for everyone later;
:meth:`AccessSettings.lease_store_url` resolves the store the same way.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import SplitResult, urlsplit

from livecast.access.leases import LeasePolicy
from livecast.access.tokens import DEFAULT_SKEW
from livecast.errors import ConfigError

if TYPE_CHECKING:  # keys reads TOML through livecast.config, which holds these settings
    from livecast.access.keys import KeyRing

MAX_SKEW = 3600.0  # seconds: more would make expiry meaningless
MEMORY_STORE = "memory"
LEASE_STORE_ENV = "LIVECAST_LEASE_STORE"
REDIS_SCHEMES = ("redis", "rediss")


@dataclass(frozen=True, slots=True)
class AccessSettings:
    tokens: bool = False
    keys: str = ""  # path of the key ring TOML; "": LIVECAST_TOKEN_KEYS
    skew: float = DEFAULT_SKEW
    max_streams: int = 0  # per account; 0: no limit (no session endpoints)
    lease_ttl: float = 30.0
    on_limit: str = "refuse"  # or "end_oldest"
    lease_store: str = MEMORY_STORE  # or redis://host:port/db; $LIVECAST_LEASE_STORE overrides
    on_store_error: str = "open"  # or "closed"

    def validate(self) -> AccessSettings:
        if not math.isfinite(self.skew) or not 0 <= self.skew <= MAX_SKEW:
            raise ConfigError("access.skew", f"{self.skew} s is outside 0–{MAX_SKEW:g}")
        if self.keys and not self.tokens:
            raise ConfigError("access.keys", "a key ring without tokens = true checks nothing")
        if self.max_streams < 0:
            raise ConfigError("access.max_streams", f"{self.max_streams} is negative")
        if self.max_streams and not self.tokens:
            raise ConfigError("access.max_streams", "streams are counted per token: tokens = true")
        if self.max_streams:
            self.lease_policy()
        check_lease_store(self.lease_store, "access.lease_store")
        if self.lease_store != MEMORY_STORE and not self.max_streams:
            raise ConfigError("access.lease_store", "a lease store without max_streams is unused")
        if self.on_store_error not in ("open", "closed"):
            raise ConfigError(
                "access.on_store_error", f"{self.on_store_error!r} is not open or closed"
            )
        return self

    def lease_policy(self) -> LeasePolicy:
        """The leases' policy (heartbeats every third of the ttl); ConfigError naming the key."""
        if self.on_limit not in ("refuse", "end_oldest"):
            raise ConfigError("access.on_limit", f"{self.on_limit!r} is not refuse or end_oldest")
        if not (math.isfinite(self.lease_ttl) and self.lease_ttl >= 1):
            raise ConfigError("access.lease_ttl", f"{self.lease_ttl} s is under a second")
        return LeasePolicy(
            max_streams=self.max_streams,
            ttl=self.lease_ttl,
            heartbeat_interval=self.lease_ttl / 3,
            on_limit="refuse" if self.on_limit == "refuse" else "end_oldest",
            on_store_error="closed" if self.on_store_error == "closed" else "open",
        ).validate()

    def lease_store_url(self, env: Mapping[str, str] | None = None) -> str | None:
        """The Redis URL of the lease store (``$LIVECAST_LEASE_STORE``, else ``lease_store``),
        or None for this origin's memory; a ConfigError naming the key (never a password)."""
        environ = os.environ if env is None else env
        value = environ.get(LEASE_STORE_ENV, "").strip()
        if value:
            check_lease_store(value, f"access.lease_store (${LEASE_STORE_ENV})")
        else:
            value = self.lease_store
        return None if value == MEMORY_STORE else value

    def key_ring(self, env: Mapping[str, str] | None = None) -> KeyRing | None:
        """The ring the gates check against (None when tokens are off)."""
        if not self.tokens:
            return None
        from livecast.access.keys import load_key_ring

        return load_key_ring(self.keys or None, os.environ if env is None else env)


def check_lease_store(value: str, key: str) -> None:
    """``memory`` or ``redis://host:port/db`` (``rediss://`` for TLS; port and db optional,
    a password allowed) — else a ConfigError under ``key`` that does not quote the password."""
    if value == MEMORY_STORE:
        return
    try:
        url = urlsplit(value)
        port = url.port
    except ValueError as exc:
        raise ConfigError(key, f"{_shown(value)} is not a URL with a valid port") from exc
    if url.scheme not in REDIS_SCHEMES:
        raise ConfigError(key, f"{_shown(value)} is neither memory nor a redis:// URL")
    if not url.hostname:
        raise ConfigError(key, f"{_shown(value)} names no host")
    if port == 0:
        raise ConfigError(key, f"{_shown(value)}: port 0")
    database = url.path.lstrip("/")
    if database and not database.isdigit():
        raise ConfigError(key, f"{_shown(value)}: the database is a number (/0), not {database!r}")
    if url.query or url.fragment:
        raise ConfigError(key, f"{_shown(value)}: no query or fragment")


def redacted(value: str) -> str:
    """A store URL as it may be logged: any password replaced by ``***``."""
    try:
        url = urlsplit(value)
    except ValueError:
        return "<unparsable URL>"
    return _without_password(url).geturl()


def _without_password(url: SplitResult) -> SplitResult:
    if url.password is None:
        return url
    user = url.username or ""
    host = url.netloc.rpartition("@")[2]
    return url._replace(netloc=f"{user}:***@{host}")


def _shown(value: str) -> str:
    return repr(redacted(value))
