"""The ``[access]`` table of an event file: whether the origin (and the edges ``livecast up``
starts) require a signed playback token, where the key ring is, and the clock skew tolerated.

    [access]
    tokens = true              # every /live/ request needs a token (docs/access.md)
    keys = "keys.toml"         # the key ring; "" (the default): $LIVECAST_TOKEN_KEYS
    skew = 60.0                # seconds of clock difference tolerated (exp and nbf)

:meth:`AccessSettings.key_ring` loads the ring (file, then environment), so that a missing or
short key is a :class:`~livecast.errors.ConfigError` at start, not a 403 for everyone later.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

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

    def validate(self) -> AccessSettings:
        if not math.isfinite(self.skew) or not 0 <= self.skew <= MAX_SKEW:
            raise ConfigError("access.skew", f"{self.skew} s is outside 0–{MAX_SKEW:g}")
        if self.keys and not self.tokens:
            raise ConfigError("access.keys", "a key ring without tokens = true checks nothing")
        return self

    def key_ring(self, env: Mapping[str, str] | None = None) -> KeyRing | None:
        """The ring the gates check against (None when tokens are off)."""
        if not self.tokens:
            return None
        from livecast.access.keys import load_key_ring

        return load_key_ring(self.keys or None, os.environ if env is None else env)
