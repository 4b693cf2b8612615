"""The token key ring: every key that may have signed a live token, and the one that signs now.

Rotation (docs/access.md): add the new key (both verify), switch ``signing`` to it once every
checker has it, drop the old key after the longest token life (plus the skew) has passed. A token
names its key by ``kid``, so a checker never tries more than one key per token.

Loaded like the event configuration — defaults → TOML file → environment → ``validate()``::

    signing = "k2026a"            # the kid new tokens are signed with

    [keys]                        # kid = base64 of the secret (≥ 32 bytes)
    k2026a = "q83v…"
    k2025b = "7Jx1…"

``LIVECAST_TOKEN_KEYS="kid1:base64,kid2:base64"`` adds keys (a kid given in both wins from the
environment) and ``LIVECAST_TOKEN_SIGNING`` names the signing kid. Secrets are bearer credentials:
they are never printed — a ring's repr, and every error, names keys by kid and fingerprint.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from livecast.config import read_toml
from livecast.errors import ConfigError

__all__ = [
    "KEYS_ENV",
    "MIN_SECRET_BYTES",
    "SIGNING_ENV",
    "KeyRing",
    "decode_secret",
    "key_fingerprint",
    "keygen_stanza",
    "load_key_ring",
]

KEYS_ENV = "LIVECAST_TOKEN_KEYS"
SIGNING_ENV = "LIVECAST_TOKEN_SIGNING"
MIN_SECRET_BYTES = 32  # RFC 2104 §3: less than L (32 for SHA-256) "is strongly discouraged"
MAX_SECRET_BYTES = 1024
MAX_KEYS = 16
_KID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def key_fingerprint(secret: bytes) -> str:
    """How logs and reprs name a secret: 8 hex digits of its SHA-256."""
    return hashlib.sha256(secret).hexdigest()[:8]


def kid_problem(kid: str) -> str | None:
    """Why ``kid`` cannot name a key (it stands in a token field), or None."""
    if not 1 <= len(kid) <= 64 or not set(kid) <= _KID_CHARS:
        return "a key id must be 1–64 characters of A–Z, a–z, 0–9, '_' or '-'"
    return None


class KeyRing:
    """Key id → secret; ``signing_kid`` names the key new tokens are signed with. Immutable:
    the rotation steps return new rings."""

    __slots__ = ("_keys", "signing_kid")

    def __init__(self, keys: Mapping[str, bytes], signing_kid: str) -> None:
        self._keys: dict[str, bytes] = dict(keys)
        self.signing_kid = signing_kid

    def validate(self) -> KeyRing:
        """``self`` if every kid and secret is usable and the signing kid is a key, else
        :class:`ConfigError` naming the key (never quoting a secret)."""
        if not self._keys:
            raise ConfigError("keys", "the token key ring is empty (give [keys] or $" + KEYS_ENV)
        if len(self._keys) > MAX_KEYS:
            raise ConfigError("keys", f"{len(self._keys)} keys; at most {MAX_KEYS} may be active")
        for kid, secret in self._keys.items():
            problem = kid_problem(kid)
            if problem is not None:
                raise ConfigError(f"keys.{kid!r}", problem)
            if not isinstance(secret, bytes) or len(secret) < MIN_SECRET_BYTES:
                size = len(secret) if isinstance(secret, bytes) else 0
                raise ConfigError(
                    f"keys.{kid}",
                    f"the secret is {size} bytes; a token key needs at least {MIN_SECRET_BYTES} "
                    "(livecast token keygen makes one)",
                )
            if len(secret) > MAX_SECRET_BYTES:
                raise ConfigError(f"keys.{kid}", f"the secret is over {MAX_SECRET_BYTES} bytes")
        if self.signing_kid not in self._keys:
            raise ConfigError("signing", f"{self.signing_kid!r} is not a key of the ring")
        return self

    @property
    def kids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    @property
    def signing_key(self) -> bytes:
        return self._keys[self.signing_kid]

    def key(self, kid: str) -> bytes | None:
        """The secret of ``kid``, None if it is not (or no longer) in the ring."""
        return self._keys.get(kid)

    def with_key(self, kid: str, secret: bytes) -> KeyRing:
        """Rotation step 1: a ring that also verifies with ``kid``."""
        return KeyRing({**self._keys, kid: secret}, self.signing_kid).validate()

    def signing_with(self, kid: str) -> KeyRing:
        """Rotation step 2: a ring that signs with ``kid`` (already a key)."""
        return KeyRing(self._keys, kid).validate()

    def without(self, kid: str) -> KeyRing:
        """Rotation step 3: a ring that no longer verifies with ``kid`` (not the signing key)."""
        if kid == self.signing_kid:
            raise ConfigError("signing", f"{kid!r} still signs: switch signing before dropping it")
        return KeyRing({k: v for k, v in self._keys.items() if k != kid}, self.signing_kid)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, KeyRing):
            return NotImplemented
        return self._keys == other._keys and self.signing_kid == other.signing_kid

    __hash__ = None  # type: ignore[assignment]  # mutable-looking, compared by value

    def __repr__(self) -> str:  # never a secret, even in a traceback
        shown = ", ".join(f"{kid}: {key_fingerprint(key)}" for kid, key in self._keys.items())
        return f"KeyRing(signing={self.signing_kid!r}, keys={{{shown}}})"


def decode_secret(key: str, text: str) -> bytes:
    """The bytes of a base64 secret (standard or URL-safe alphabet, padding optional);
    :class:`ConfigError` naming ``key`` — not quoting ``text`` — if it is not base64."""
    cleaned = text.strip().replace("-", "+").replace("_", "/")
    cleaned += "=" * (-len(cleaned) % 4)
    try:
        return base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(key, "the secret is not base64") from None


def _file_keys(values: Mapping[str, Any], path: str) -> tuple[dict[str, bytes], str | None]:
    """The ``[keys]`` table and ``signing`` of a key file."""
    unknown = set(values) - {"keys", "signing"}
    if unknown:
        raise ConfigError(sorted(unknown)[0], f"unknown key in {path} (expected signing, [keys])")
    table = values.get("keys", {})
    if not isinstance(table, dict):
        raise ConfigError("keys", f"expected a table ([keys]) in {path}")
    keys: dict[str, bytes] = {}
    for kid, text in table.items():
        if not isinstance(text, str):
            raise ConfigError(f"keys.{kid}", "expected a base64 string")
        keys[kid] = decode_secret(f"keys.{kid}", text)
    signing = values.get("signing")
    if signing is not None and not isinstance(signing, str):
        raise ConfigError("signing", "expected a key id (a string)")
    return keys, signing


def _env_keys(text: str) -> dict[str, bytes]:
    """``kid1:base64,kid2:base64`` (from $LIVECAST_TOKEN_KEYS)."""
    keys: dict[str, bytes] = {}
    for index, item in enumerate(part for part in text.split(",") if part.strip()):
        kid, colon, secret = item.strip().partition(":")
        if not colon:
            raise ConfigError(f"{KEYS_ENV}[{index}]", "expected kid:base64")
        keys[kid] = decode_secret(f"{KEYS_ENV}[{kid}]", secret)
    return keys


def load_key_ring(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> KeyRing:
    """Defaults (no keys) → TOML key file → ``$LIVECAST_TOKEN_KEYS`` / ``$LIVECAST_TOKEN_SIGNING``
    → :meth:`KeyRing.validate`."""
    keys: dict[str, bytes] = {}
    signing: str | None = None
    if path is not None:
        keys, signing = _file_keys(read_toml(path, "keys"), str(path))
    environ = os.environ if env is None else env
    if environ.get(KEYS_ENV):
        keys.update(_env_keys(environ[KEYS_ENV]))
    signing = environ.get(SIGNING_ENV) or signing
    if signing is None:
        if len(keys) != 1:
            raise ConfigError("signing", 'name the signing key (signing = "kid")')
        signing = next(iter(keys))
    return KeyRing(keys, signing).validate()


def keygen_stanza(kid: str | None = None, *, now: float | None = None) -> str:
    """A key-ring TOML stanza with a new random 32-byte secret under ``kid`` (default:
    ``k<UTC date>``)."""
    if kid is None:
        kid = "k" + time.strftime("%Y%m%d", time.gmtime(now))
    problem = kid_problem(kid)
    if problem is not None:
        raise ConfigError("kid", problem)
    secret = base64.b64encode(secrets.token_bytes(MIN_SECRET_BYTES)).decode("ascii")
    return (
        "# livecast token key ring (docs/access.md). Keep this file secret.\n"
        "# Rotating? Add the [keys] line to the ring, switch signing later, drop the old key.\n"
        f'signing = "{kid}"\n'
        "\n"
        "[keys]\n"
        f'{kid} = "{secret}"\n'
    )
