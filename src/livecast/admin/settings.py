"""The ``[admin]`` table of an event file: where ``livecast serve`` offers the admin API.

    [admin]
    enabled = true
    host = "127.0.0.1"          # loopback by default: put it behind your own access control
    port = 8090                 # 0: any free port (printed at start)
    secret_hashes = "…"         # hex SHA-256 of each admin bearer secret, comma-separated;
                                # "": $LIVECAST_ADMIN_SECRET_HASHES

The secrets themselves are never configured, only their hashes (``python -c "from
livecast.admin.api import hash_secret; print(hash_secret('…'))"``). The API issues playback tokens,
so it needs ``[access] tokens = true`` (and its key ring).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from livecast.errors import ConfigError

HASHES_ENV = "LIVECAST_ADMIN_SECRET_HASHES"
_HEX_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class AdminSettings:
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 0
    secret_hashes: str = ""

    def validate(self) -> AdminSettings:
        if not 0 <= self.port <= 65535:
            raise ConfigError("admin.port", f"{self.port} is not a TCP port")
        if self.secret_hashes:
            parse_hashes(self.secret_hashes, "admin.secret_hashes")
        return self

    def hashes(self, env: Mapping[str, str] | None = None) -> tuple[str, ...]:
        """The admin secrets' hashes (the table's, else the environment's); at least one."""
        environ = os.environ if env is None else env
        if self.secret_hashes:
            return parse_hashes(self.secret_hashes, "admin.secret_hashes")
        hashes = parse_hashes(environ.get(HASHES_ENV, ""), HASHES_ENV)
        if not hashes:
            raise ConfigError("admin.secret_hashes", f"no admin secret (nor ${HASHES_ENV})")
        return hashes


def parse_hashes(text: str, key: str) -> tuple[str, ...]:
    hashes = tuple(part.strip().lower() for part in text.split(",") if part.strip())
    for value in hashes:
        if not _HEX_SHA256.fullmatch(value):
            raise ConfigError(key, "expected the hex SHA-256 of each secret, comma-separated")
    return hashes
