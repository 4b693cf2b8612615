"""The origin's token gate — pure: a :class:`livecast.origin.gate.Gate` that lets a request through
only with a playback token valid for the stream it asks for (docs/access.md).

The token comes in the query parameter ``token`` (the first one, percent-decoded) or the cookie
``livecast_token`` — the query wins when both are there, being the more specific. The event is the
stream id of the path, read by :func:`livecast.origin.streams.stream_of` exactly as the router reads
it; a path that is not a live URL (the player page, static files) takes a valid token for any
event, and the exempt paths (``/healthz``, ``/metrics`` by default) none.

A refusal is a 403 whose body is the reason code, with ``X-Livecast-Reason: <code>``; one
:class:`Refusal` per reason, built at import. A verdict is remembered per (token, event) until the
token expires (plus the skew), so a viewer's token costs one HMAC, not one per part request; the
revocation list is still asked on every request (a dict lookup), so a revocation takes effect at
once.

Cookies are parsed with bounds: a ``Cookie`` header over :data:`MAX_COOKIE_BYTES`, more than
:data:`MAX_COOKIES` cookies, or a CR, LF or NUL in it is ``malformed`` — whatever the HTTP parser in
front let through.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import unquote

from livecast.access.keys import KeyRing
from livecast.access.tokens import (
    DEFAULT_SKEW,
    MAX_TOKEN_BYTES,
    REASONS,
    RevocationList,
    token_id,
    verify,
)
from livecast.errors import AccessError
from livecast.origin.contract import Request
from livecast.origin.gate import Refusal
from livecast.origin.streams import decode_path, stream_of
from livecast.packager.event import DEFAULT_STREAM

__all__ = [
    "COOKIE_NAME",
    "DEFAULT_EXEMPT",
    "MAX_COOKIES",
    "MAX_COOKIE_BYTES",
    "QUERY_NAME",
    "REASON_HEADER",
    "REFUSALS",
    "TokenGate",
    "find_token",
]

COOKIE_NAME = "livecast_token"
QUERY_NAME = "token"
REASON_HEADER = "X-Livecast-Reason"
DEFAULT_EXEMPT = ("/healthz", "/metrics")
DEFAULT_CACHE_SIZE = 10_000
MAX_COOKIE_BYTES = 8192  # all Cookie headers together (nginx's large_client_header_buffers: 8k)
MAX_COOKIES = 64
MAX_QUERY_ARGUMENTS = 64  # a token after the 64th argument is not looked for
_MAX_ENCODED_TOKEN = 3 * MAX_TOKEN_BYTES  # every byte percent-encoded
_CONTROL = ("\r", "\n", "\x00")

REFUSALS: Mapping[str, Refusal] = {
    reason: Refusal(reason=reason, status=403, extra_headers=((REASON_HEADER, reason),))
    for reason in REASONS
}


class MalformedCarrier(Exception):
    """The cookie or query that should carry a token is itself unusable."""


def _cookie_token(headers: Iterable[tuple[str, str]]) -> str | None:
    """The first ``livecast_token`` cookie of the request (RFC 6265 §4.2.1: ``cookie-string =
    cookie-pair *( ";" SP cookie-pair )``, one header or several), bounded."""
    size = 0
    count = 0
    for name, value in headers:
        if name != "cookie":
            continue
        size += len(value)
        if size > MAX_COOKIE_BYTES:
            raise MalformedCarrier("Cookie headers too long")
        if any(char in value for char in _CONTROL):
            raise MalformedCarrier("a control character in a Cookie header")
        for pair in value.split(";"):
            count += 1
            if count > MAX_COOKIES:
                raise MalformedCarrier("too many cookies")
            key, equals, cookie = pair.strip().partition("=")
            if equals and key == COOKIE_NAME:
                return cookie.strip().strip('"')
    return None


def _query_token(query: str) -> str | None:
    """The first ``token`` argument of the raw query, percent-decoded, bounded."""
    if "token=" not in query:  # the common case: nothing to split
        return None
    for argument in query.split("&", MAX_QUERY_ARGUMENTS)[:MAX_QUERY_ARGUMENTS]:
        key, equals, value = argument.partition("=")
        if equals and key == QUERY_NAME:
            if len(value) > _MAX_ENCODED_TOKEN:
                raise MalformedCarrier("the token argument is too long")
            try:
                return unquote(value.replace("+", " "), errors="strict")
            except UnicodeDecodeError:
                raise MalformedCarrier("the token argument is not UTF-8") from None
    return None


def find_token(request: Request) -> str | None:
    """The token a request carries (query first, then cookie), None if none;
    :class:`MalformedCarrier` for a cookie or query that cannot be read within the bounds."""
    token = _query_token(request.query) if request.query else None
    if token is None and request.headers:
        token = _cookie_token(request.headers)
    return token


@dataclass(frozen=True, slots=True)
class Verdict:
    """A token found valid for an event: until when, and what the revocation check needs."""

    until: float  # exp + skew: after that the token is verified (and refused) again
    session: str
    token_id: str


UnixTime = Callable[[float], float]  # the adapter's clock reading → Unix seconds


class TokenGate:
    """The origin gate for signed playback tokens (see the module docstring)."""

    def __init__(
        self,
        key_ring: KeyRing,
        *,
        default_stream: str = DEFAULT_STREAM,
        exempt_prefixes: Iterable[str] = DEFAULT_EXEMPT,
        skew: float = DEFAULT_SKEW,
        revoked: RevocationList | None = None,
        cache_size: int = DEFAULT_CACHE_SIZE,
        unix_time: UnixTime | None = None,
    ) -> None:
        self.key_ring = key_ring
        # the adapter's ``now`` → Unix seconds (the tokens' exp/nbf). The origin's clock is
        # monotonic (its holds and deadlines): it passes ``lambda _: time.time()``. None: ``now``
        # is Unix time already (tests, other adapters).
        self.unix_time = unix_time
        self.default_stream = default_stream
        self.exempt_prefixes = tuple(exempt_prefixes)
        self.skew = skew
        self.revoked = revoked
        self.cache_size = max(1, cache_size)
        self._verdicts: dict[tuple[str, str | None], Verdict] = {}

    def authorize(self, request: Request, now: float) -> Refusal | None:
        """None lets ``request`` through; else the 403 of the reason it is refused for."""
        if self.unix_time is not None:
            now = self.unix_time(now)
        event = stream_of(request.path, self.default_stream)
        if event is None and self._exempt(request.path):
            return None
        try:
            token = find_token(request)
        except MalformedCarrier:
            return REFUSALS["malformed"]
        if token is None:
            return REFUSALS["missing"]
        verdict = self._verdict(token, event, now)
        if isinstance(verdict, Refusal):
            return verdict
        if self.revoked is not None and self.revoked.revokes_id(
            verdict.session, verdict.token_id, now
        ):
            return REFUSALS["revoked"]
        return None

    def _exempt(self, raw_path: str) -> bool:
        """Whether a (non-live) path is one of the exempt prefixes, compared decoded."""
        path = decode_path(raw_path)
        if path is None:
            return False
        return any(
            path == prefix or path.startswith(prefix.rstrip("/") + "/")
            for prefix in self.exempt_prefixes
        )

    def _verdict(self, token: str, event: str | None, now: float) -> Verdict | Refusal:
        """The remembered verdict for (token, event) while it holds, else a fresh one."""
        key = (token, event)
        verdict = self._verdicts.pop(key, None)
        if verdict is not None and now < verdict.until:
            self._verdicts[key] = verdict  # back at the young end: LRU-ish
            return verdict
        try:
            claims = verify(
                token, event=event, now=now, key_ring=self.key_ring, skew=self.skew, revoked=None
            )
        except AccessError as error:
            return REFUSALS[error.reason]
        verdict = Verdict(claims.exp + self.skew, claims.session, token_id(token))
        if len(self._verdicts) >= self.cache_size:
            del self._verdicts[next(iter(self._verdicts))]  # the least recently used
        self._verdicts[key] = verdict
        return verdict

    def forget(self) -> None:
        """Drop every remembered verdict (after the key ring changed, say)."""
        self._verdicts.clear()

    @property
    def remembered(self) -> int:
        """How many verdicts are remembered (for metrics and tests)."""
        return len(self._verdicts)
