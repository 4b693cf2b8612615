"""The contract between the HTTP adapter (``origin.http``) and the LL-HLS origin logic
(``origin.app``).

The adapter parses bytes into a :class:`Request`, asks a :class:`Handler` what to do, and either
writes the :class:`Response` or parks the connection under a :class:`Hold` key until the handler
can answer it (``resume``) or the hold's deadline passes (``expired``, normally a 503).
All handler methods are pure: no sockets, no clock reads — ``now`` is passed in.

A few paths are answered by an :data:`AsyncEndpoint` instead (``OriginServer(async_endpoints=…)``,
the session endpoints of ``access.heartbeat``, which may wait for a lease store such as Redis):
the adapter awaits them off the request path, so a slow one delays only its own connection.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Protocol

# Object types used as the ``type`` label of origin metrics.
OBJECT_TYPES = (
    "multivariant",
    "playlist-blocking",
    "playlist-plain",
    "playlist-dvr",
    "part",
    "segment",
    "init",
    "static",
    "metrics",
    "session",  # the session endpoints: joins, heartbeats, ends (access.heartbeat)
    "other",
)


@dataclass(frozen=True, slots=True)
class Request:
    method: str  # "GET" or "HEAD" (others are refused by the adapter with 405)
    path: str  # raw path, without the query string, still percent-encoded
    query: str  # raw query string without the leading "?", "" if none
    headers: tuple[tuple[str, str], ...] = ()  # lower-cased names


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"
    cache_control: str = "no-cache"
    object_type: str = "other"
    extra_headers: tuple[tuple[str, str], ...] = ()
    # reusable: the answer depends only on the handler's state, so the adapter may give it to
    # the same GET request target again until the next ``notify()``; permanent: it never changes
    # (immutable media), so the adapter may keep giving it. Neither may depend on headers.
    reusable: bool = False
    permanent: bool = False
    # The adapter memoises the encoded head here so that one Response shared by many
    # waiters is serialised once. Not part of equality.
    _wire: dict[str, bytes] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Hold:
    """Park the request until ``Handler.resume(key, now)`` returns a Response or ``deadline``."""

    key: Hashable
    deadline: float  # in the same clock as ``now``
    object_type: str


class Handler(Protocol):
    def handle(self, request: Request, now: float) -> Response | Hold: ...

    def resume(self, key: Hashable, now: float) -> Response | None: ...

    def expired(self, key: Hashable, now: float) -> Response: ...


# A path the origin answers per request (``OriginApp(endpoints=…)``: the session endpoints of
# ``access.heartbeat``). Its answers are neither reusable nor permanent: never cached.
Endpoint = Callable[[Request, float], Response]

# A path the adapter answers by awaiting (``OriginServer(async_endpoints=…)``: the session
# endpoints over a lease store). Awaited per request on its own task, bounded by the adapter's
# ``endpoint_timeout``; its answers are never cached (neither reusable nor permanent).
AsyncEndpoint = Callable[[Request, float], Awaitable[Response]]
