"""Signed playback tokens — pure: no clock reads, no I/O (``now`` is passed in).

A playback token says who may watch which event until when, signed with a key the origin (and the
nginx edge) knows. Its text is eight dot-separated ASCII fields, so that a Lua edge check can split
it on ``.`` without JSON or a base64 decode of the payload (docs/access.md)::

    v1.<kid>.<event>.<account>.<session>.<exp>.<nbf>.<sig>

- ``kid``, ``event``, ``account``, ``session``: 1–64 characters of ``[A-Za-z0-9_-]``;
- ``exp``, ``nbf``: Unix seconds as decimal integers without a sign or leading zeros, ``exp > 0``;
  ``nbf = 0`` means "no not-before";
- ``sig``: base64url without padding of HMAC-SHA256(key, the text before the last dot).

:func:`verify` refuses with an :class:`AccessError` whose ``reason`` is one of :data:`REASONS` and
whose message never contains the token or its signature (a token is a bearer credential: whoever
reads it in a log may watch). A token longer than :data:`MAX_TOKEN_BYTES` is refused before it is
split or any HMAC is computed, so a 10 KB "token" costs a length test.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from livecast.errors import AccessError, ConfigError, LivecastError

if TYPE_CHECKING:
    from livecast.access.keys import KeyRing

__all__ = [
    "DEFAULT_SKEW",
    "MAX_TOKEN_BYTES",
    "REASONS",
    "RevocationChanges",
    "RevocationEntry",
    "RevocationList",
    "TokenClaims",
    "issue",
    "sign",
    "token_id",
    "verify",
]

VERSION = "v1"
MAX_TOKEN_BYTES = 512
DEFAULT_SKEW = 60.0  # seconds of clock difference tolerated between issuer and checker
FIELD_COUNT = 8  # v1, kid, event, account, session, exp, nbf, sig
SIGNATURE_CHARS = 43  # 32 bytes of HMAC-SHA256 in unpadded base64: ceil(32 * 8 / 6)

REASONS = (
    "missing",
    "malformed",
    "unknown_key",
    "bad_signature",
    "expired",
    "not_yet_valid",
    "wrong_event",
    "revoked",
)

NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")  # kid, event, account, session
SECONDS = re.compile(r"0|[1-9][0-9]{0,15}")  # exp, nbf: canonical decimal, no sign
# RFC 4648 §5 (base64url): "technically identical to the previous one, except for the 62:nd and
# 63:rd alphabet character" ('-' and '_'); "if the data length is known implicitly, this can be
# avoided by skipping the padding; see section 3.2" — 32 bytes is always 43 characters.
SIGNATURE = re.compile(rf"[A-Za-z0-9_-]{{{SIGNATURE_CHARS}}}")
NAME_FIELDS = ("kid", "event", "account", "session")


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """What a token says. ``kid`` is the key that signed it: :func:`verify` fills it in;
    :func:`issue` signs with the ring's signing key and ignores it."""

    event: str
    account: str
    session: str
    exp: int  # Unix seconds after which the token is refused (plus the skew)
    nbf: int = 0  # Unix seconds before which it is refused (minus the skew); 0: none
    kid: str = ""

    def check(self) -> TokenClaims:
        """``self`` if every field can stand in a token, else :class:`ConfigError` naming it."""
        for name in ("event", "account", "session"):
            if not NAME.fullmatch(getattr(self, name)):
                raise ConfigError(
                    name, "must be 1–64 characters of A–Z, a–z, 0–9, '_' or '-' (no dots)"
                )
        if self.kid and not NAME.fullmatch(self.kid):
            raise ConfigError("kid", "must be 1–64 characters of A–Z, a–z, 0–9, '_' or '-'")
        for name in ("exp", "nbf"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(name, f"{value!r} is not Unix seconds (an integer ≥ 0)")
            if not SECONDS.fullmatch(str(value)):
                raise ConfigError(name, f"{value} has more than 16 digits")
        if self.exp <= 0:
            raise ConfigError("exp", "must be after the epoch (> 0)")
        return self

    def signing_input(self, kid: str) -> str:
        """The exact text the signature covers: the token without ``.<sig>``."""
        fields = (VERSION, kid, self.event, self.account, self.session, self.exp, self.nbf)
        return ".".join(str(part) for part in fields)


def sign(key: bytes, signing_input: str) -> str:
    """The ``sig`` field: base64url without padding of HMAC-SHA256(key, signing_input).

    RFC 2104 §2: "To compute HMAC over the data `text' we perform H(K XOR opad, H(K XOR ipad,
    text))" — :mod:`hmac` with SHA-256 (B = 64, L = 32). §3: "(keys longer than B bytes are first
    hashed using H). However, less than L bytes is strongly discouraged as it would decrease the
    security strength of the function" — the key ring insists on 32 (``keys.MIN_SECRET_BYTES``).
    """
    digest = hmac.new(key, signing_input.encode("ascii"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def issue(claims: TokenClaims, key_ring: KeyRing) -> str:
    """The token for ``claims``, signed with the ring's signing key (:class:`ConfigError` for a
    claim that cannot stand in a token)."""
    claims.check()
    kid = key_ring.signing_kid
    text = claims.signing_input(kid)
    return f"{text}.{sign(key_ring.signing_key, text)}"


def token_id(token: str) -> str:
    """How a revocation list (and a log) names one token: 32 hex digits of its SHA-256 — unique
    per token, useless for watching."""
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()[:32]


def _refuse(reason: str, message: str) -> AccessError:
    return AccessError(reason, f"playback token refused ({reason}): {message}")


def parse(token: str | None) -> tuple[TokenClaims, str, str]:
    """The claims, the signing input and the signature of a well-formed token — checks the
    syntax only (``missing`` / ``malformed``), never the signature or the clock."""
    if not token:
        raise _refuse("missing", "no token")
    if len(token) > MAX_TOKEN_BYTES:
        raise _refuse("malformed", f"longer than {MAX_TOKEN_BYTES} bytes")
    if not token.isascii():
        raise _refuse("malformed", "not ASCII")
    fields = token.split(".", FIELD_COUNT)
    if len(fields) != FIELD_COUNT:
        raise _refuse("malformed", f"not {FIELD_COUNT} dot-separated fields")
    version, kid, event, account, session, exp, nbf, signature = fields
    if version != VERSION:
        raise _refuse("malformed", f"the version field is not {VERSION!r}")
    for name, value in zip(NAME_FIELDS, (kid, event, account, session), strict=True):
        if not NAME.fullmatch(value):
            raise _refuse("malformed", f"the {name} field is not 1–64 of [A-Za-z0-9_-]")
    for name, value in (("exp", exp), ("nbf", nbf)):
        if not SECONDS.fullmatch(value):
            raise _refuse("malformed", f"the {name} field is not Unix seconds")
    if exp == "0":
        raise _refuse("malformed", "the exp field is 0")
    if not SIGNATURE.fullmatch(signature):
        raise _refuse("malformed", "the signature is not 43 characters of base64url")
    claims = TokenClaims(event, account, session, int(exp), int(nbf), kid)
    return claims, token[: -SIGNATURE_CHARS - 1], signature


def check_signature(claims: TokenClaims, signing_input: str, signature: str, ring: KeyRing) -> None:
    """``unknown_key`` / ``bad_signature``, or None when the token was signed by a ring key."""
    key = ring.key(claims.kid)
    if key is None:
        raise _refuse("unknown_key", f"key id {claims.kid!r} is not in the key ring")
    # Compared in constant time: a comparison that stops at the first wrong character tells an
    # attacker, by its timing, how much of a forged signature is right.
    if not hmac.compare_digest(sign(key, signing_input), signature):
        raise _refuse("bad_signature", f"the signature does not match key {claims.kid!r}")


def check_time(claims: TokenClaims, now: float, skew: float) -> None:
    """``expired`` / ``not_yet_valid`` at ``now``, each with ``skew`` seconds of tolerance: a token
    from an issuer whose clock is ahead by less than ``skew`` is valid at once."""
    if now >= claims.exp + skew:
        raise _refuse("expired", f"expired {now - claims.exp:.0f} s ago")
    if claims.nbf and now + skew < claims.nbf:
        raise _refuse("not_yet_valid", f"valid in {claims.nbf - now:.0f} s")


def verify(
    token: str | None,
    *,
    event: str | None,
    now: float,
    key_ring: KeyRing,
    skew: float = DEFAULT_SKEW,
    revoked: RevocationList | None = None,
) -> TokenClaims:
    """The claims of ``token`` if it may watch ``event`` at ``now``, else :class:`AccessError`
    (``reason`` in :data:`REASONS`). ``event=None`` accepts a token for any event (the gate's
    non-live paths). Order: syntax, key, signature, event, time, revocation."""
    claims, signing_input, signature = parse(token)
    assert token is not None  # parse refused it otherwise
    check_signature(claims, signing_input, signature, key_ring)
    if event is not None and claims.event != event:
        raise _refuse("wrong_event", f"the token is for event {claims.event!r}, not {event!r}")
    check_time(claims, now, skew)
    if revoked is not None and revoked.revokes(claims.session, token, now):
        raise _refuse("revoked", "the token or its session was revoked")
    return claims


@dataclass(frozen=True, slots=True)
class RevocationEntry:
    """One live revocation: a ``session`` or a ``token`` (by its :func:`token_id`), until when."""

    kind: str  # "session" | "token"
    id: str
    until: float


@dataclass(frozen=True, slots=True)
class RevocationChanges:
    """What changed after a sequence number: at most ``limit`` entries in the order they were
    made; ``seq`` is the last one's (ask again from it), ``more`` whether others follow."""

    epoch: str
    seq: int
    more: bool
    entries: tuple[RevocationEntry, ...]


def _epoch() -> str:
    return secrets.token_hex(8)


@dataclass(slots=True)
class RevocationList:
    """Revoked sessions and tokens, each until a time after which its tokens are dead anyway —
    so the list stays bounded: :meth:`prune` drops what has run out.

    A session is revoked for ``max_token_life + skew`` seconds (no token of it issued before the
    revocation can outlive that), a token until its ``exp + skew``. Pure: ``now`` is passed in.

    Every change gets the next sequence number, so that a reader far away (an edge) can ask for
    the changes after the last one it saw (:meth:`changes`) instead of the whole list: the live
    entries are kept in the order of their last change (bounded like the list itself). ``epoch``
    names this list: a reader that sees another one (a restarted admin API) reads from 0.
    """

    max_token_life: float = 86400.0
    skew: float = DEFAULT_SKEW
    max_entries: int = 100_000
    sessions: dict[str, float] = field(default_factory=dict)  # session id → revoked until
    tokens: dict[str, float] = field(default_factory=dict)  # token_id → revoked until
    seq: int = 0  # the sequence number of the last change
    epoch: str = field(default_factory=_epoch)
    # (kind, id) → its last change's sequence number, oldest change first
    _log: OrderedDict[tuple[str, str], int] = field(default_factory=OrderedDict)

    def revoke_session(self, session: str, now: float) -> float:
        """Refuse every token of ``session`` issued so far; returns until when."""
        until = now + self.max_token_life + self.skew
        self._add(self.sessions, session, until, now)
        return until

    def revoke_token(self, token: str, now: float) -> float:
        """Refuse this one token (by its :func:`token_id`); returns until when. A token that does
        not parse is refused anyway and kept for ``max_token_life``."""
        try:
            exp = float(parse(token)[0].exp)
        except AccessError:
            exp = now + self.max_token_life
        until = exp + self.skew
        self._add(self.tokens, token_id(token), until, now)
        return until

    def revokes(self, session: str, token: str, now: float) -> bool:
        """Whether ``token`` (of ``session``) is revoked at ``now``: one dict lookup, and a hash
        of the token only while some token is revoked."""
        if self._running(self.sessions, session, now):
            return True
        return bool(self.tokens) and self._running(self.tokens, token_id(token), now)

    def revokes_id(self, session: str, ident: str, now: float) -> bool:
        """:meth:`revokes` for a token known by its :func:`token_id` (no hashing)."""
        return self._running(self.sessions, session, now) or (
            bool(self.tokens) and self._running(self.tokens, ident, now)
        )

    @staticmethod
    def _running(table: dict[str, float], key: str, now: float) -> bool:
        until = table.get(key)
        return until is not None and now < until

    def prune(self, now: float) -> int:
        """Drop the entries that ran out at ``now``; returns how many."""
        dropped = 0
        for kind, table in (("session", self.sessions), ("token", self.tokens)):
            for key in [key for key, until in table.items() if until <= now]:
                del table[key]
                self._log.pop((kind, key), None)
                dropped += 1
        return dropped

    def changes(self, since: int, limit: int = 1000) -> RevocationChanges:
        """The live entries changed after sequence number ``since``, oldest first, at most
        ``limit`` (≥ 1). Costs the number of changes after ``since`` (all live entries for 0)."""
        newer: list[tuple[int, str, str]] = []
        for (kind, key), seq in reversed(self._log.items()):
            if seq <= since:
                break
            newer.append((seq, kind, key))
        newer.reverse()
        page = newer[: max(1, limit)]
        entries = tuple(
            RevocationEntry(kind, key, (self.sessions if kind == "session" else self.tokens)[key])
            for _, kind, key in page
        )
        last = page[-1][0] if page else min(max(since, 0), self.seq)
        return RevocationChanges(self.epoch, last, len(newer) > len(page), entries)

    def __len__(self) -> int:
        return len(self.sessions) + len(self.tokens)

    def _add(self, table: dict[str, float], key: str, until: float, now: float) -> None:
        if len(self) >= self.max_entries:
            self.prune(now)
        if len(self) >= self.max_entries and key not in table:
            raise LivecastError(
                f"the revocation list holds {self.max_entries} live entries: raise max_entries "
                "or rotate the signing key instead"
            )
        table[key] = max(until, table.get(key, until))
        kind = "session" if table is self.sessions else "token"
        self.seq += 1
        self._log.pop((kind, key), None)
        self._log[(kind, key)] = self.seq
