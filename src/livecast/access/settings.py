"""The ``[access]`` table of an event file: whether the origin (and the edges ``livecast up``
starts) require a signed playback token, where the key ring is, and the clock skew tolerated.

    [access]
    tokens = true              # every /live/ request needs a token (docs/access.md)
    keys = "keys.toml"         # the key ring; "" (the default): $LIVECAST_TOKEN_KEYS
    skew = 60.0                # seconds of clock difference tolerated (exp and nbf)
    max_streams = 3            # concurrent streams per account (0: no limit, no leases)
    lease_ttl = 30.0           # seconds a stream's lease holds without a heartbeat
    on_limit = "refuse"        # or "end_oldest"

:meth:`AccessSettings.key_ring` loads the ring (file, then environment), so that a missing or
short key is a :class:`~livecast.errors.ConfigError` at start, not a 403 for everyone later.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from livecast.access.leases import LeasePolicy
from livecast.access.tokens import DEFAULT_SKEW
from livecast.errors import ConfigError

if TYPE_CHECKING:  # keys reads TOML through livecast.config, which holds these settings
    from livecast.access.keys import KeyRing

MAX_SKEW = 3600.0  # seconds: more would make expiry meaningless


@dataclass(frozen=True, slots=True)
class AccessSettings:
    tokens: bool = False
    keys: str = ""  # path of the key ring TOML; "": LIVECAST_TOKEN_KEYS
    skew: float = DEFAULT_SKEW
    max_streams: int = 0  # per account; 0: no limit (no session endpoints)
    lease_ttl: float = 30.0
    on_limit: str = "refuse"  # or "end_oldest"

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
        ).validate()

    def key_ring(self, env: Mapping[str, str] | None = None) -> KeyRing | None:
        """The ring the gates check against (None when tokens are off)."""
        if not self.tokens:
            return None
        from livecast.access.keys import load_key_ring

        return load_key_ring(self.keys or None, os.environ if env is None else env)
