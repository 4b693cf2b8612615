"""Playback token targets (``livecast.access.tokens``; token format in docs/access.md).

``v1.<kid>.<event>.<account>.<session>.<exp>.<nbf>.<sig>``, ``sig`` the unpadded base64url of
HMAC-SHA256 over the text before it (RFC 2104; RFC 4648 §5).

* ``tokens.verify`` — tokens issued by a test key ring, then mutated (a character replaced,
  fields swapped, cut, repeated, extended, non-ASCII, oversized) or replaced by random text, and
  verified for a drawn event and time. Properties: only :class:`~livecast.errors.AccessError`
  escapes, with a ``reason`` of ``REASONS`` and a message that never quotes the token or its
  signature; a token that verifies is byte-for-byte one that was issued (no forgery), and its
  claims are the issued ones.
* ``tokens.issue`` — drawn claims (names with dots, non-ASCII, 65 characters; negative, huge,
  boolean times) issued and verified inside their validity. Properties: ``issue`` refuses only
  with :class:`~livecast.errors.ConfigError`; what it issues verifies to the same claims.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from hypothesis import strategies as st

from livecast.access.keys import KeyRing
from livecast.access.tokens import MAX_TOKEN_BYTES, REASONS, TokenClaims, issue, verify
from livecast.errors import AccessError, ConfigError
from livecast.fuzzing.core import Target, stateless, violation

RING = KeyRing({"k1": b"\x01" * 32, "k2": b"\x02" * 32}, "k1")
OTHER_RING = KeyRing({"k1": b"\x03" * 32}, "k1")  # same kid, another secret: a forger's ring
NOW = 1_800_000_000

names = st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True)
hostile_names = st.sampled_from(("", "a.b", "é", "a" * 65, " a", "a\n", "main")) | st.text(
    max_size=70
)
times = st.integers(1, 10**16 - 1)


@dataclass(frozen=True)
class VerifyInput:
    """A token issued for ``claims`` (by ``forged``'s ring when true), then ``mutation``."""

    claims: TokenClaims
    forged: bool
    mutation: str
    token: str
    event: str | None
    now: int


def _mutate(draw: st.DrawFn, token: str) -> tuple[str, str]:
    how = draw(
        st.sampled_from(
            ("none", "char", "char", "swap", "cut", "extend", "repeat", "unicode", "random", "big")
        )
    )
    if how == "none" or not token:
        return how, token
    if how == "char":
        at = draw(st.integers(0, len(token) - 1))
        char = draw(st.sampled_from("._-0aA=+/ ") | st.characters())
        return how, token[:at] + char + token[at + 1 :]
    fields = token.split(".")
    if how == "swap":
        i, j = draw(st.integers(0, len(fields) - 1)), draw(st.integers(0, len(fields) - 1))
        fields[i], fields[j] = fields[j], fields[i]
        return how, ".".join(fields)
    if how == "cut":
        return how, token[: draw(st.integers(0, len(token) - 1))]
    if how == "extend":
        return how, token + draw(st.sampled_from((".", ".x", "=", "==", "A", "\x00")))
    if how == "repeat":
        return how, token + "." + token
    if how == "unicode":
        return how, token.replace("v1", "ｖ1").replace("1", "١", 1)
    if how == "big":
        return how, token + "A" * draw(st.integers(MAX_TOKEN_BYTES - len(token), 4096))
    return how, draw(st.text(max_size=120))


@st.composite
def verify_inputs(draw: st.DrawFn) -> VerifyInput:
    exp = draw(st.one_of(st.just(NOW + 600), st.just(NOW - 600), times))
    nbf = draw(st.one_of(st.just(0), st.just(NOW + 600), st.integers(0, 10**16 - 1)))
    claims = TokenClaims(draw(names), draw(names), draw(names), exp, nbf)
    forged = draw(st.integers(0, 9)) == 0
    mutation, token = _mutate(draw, issue(claims, OTHER_RING if forged else RING))
    event = draw(st.one_of(st.none(), st.just(claims.event), names))
    now = draw(st.one_of(st.just(NOW), st.integers(0, 10**17)))
    return VerifyInput(claims, forged, mutation, token, event, now)


def run_verify(item: VerifyInput) -> None:
    """Verify a mutated token (see the module for the properties)."""
    try:
        claims = verify(item.token, event=item.event, now=item.now, key_ring=RING)
    except AccessError as error:
        violation(error.reason in REASONS, f"reason {error.reason!r} is not one of REASONS")
        signature = item.token.rpartition(".")[2]
        text = str(error)
        violation(len(item.token) < 16 or item.token not in text, "the refusal quotes the token")
        violation(len(signature) < 8 or signature not in text, "the refusal quotes the signature")
        raise
    original = issue(item.claims, RING)
    violation(not item.forged, f"a token signed with another secret verified: {item.token!r}")
    violation(item.token == original, f"a mutated token verified ({item.mutation})")
    violation(claims == replace(item.claims, kid="k1"), f"claims differ: {claims}")


@st.composite
def claims_inputs(draw: st.DrawFn) -> TokenClaims:
    def name() -> str:
        return draw(names if draw(st.integers(0, 3)) else hostile_names)

    def seconds() -> int:
        return draw(
            times | st.sampled_from((0, -1, 10**16, True))
            if draw(st.integers(0, 3)) == 0
            else times
        )

    return TokenClaims(name(), name(), name(), seconds(), seconds())


def run_issue(claims: TokenClaims) -> None:
    """Issue, then verify inside the validity window (see the module)."""
    token = issue(claims, RING)  # ConfigError: the documented refusal
    now = max(claims.exp - 1, claims.nbf)
    if now >= claims.exp + 60:  # nbf after exp: never valid; nothing more to check
        return
    verified = verify(token, event=claims.event, now=now, key_ring=RING)
    violation(verified == replace(claims, kid="k1"), f"claims differ: {verified} {claims}")


TARGETS = (
    Target(
        "tokens.verify",
        "issued tokens mutated (chars, fields, length, forged key) → verify",
        verify_inputs(),
        stateless(run_verify),
        documented=(AccessError,),
    ),
    Target(
        "tokens.issue",
        "drawn claims (hostile names and times) → issue → verify, same claims",
        claims_inputs(),
        stateless(run_issue),
        documented=(ConfigError,),
    ),
)
