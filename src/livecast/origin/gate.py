"""The gate: who may have an answer — pure (``authorize(request, now)``, no I/O, no clock reads).

The HTTP adapter (``origin.http``) asks the gate about every request before it looks at its answer
cache or parks the request under a hold, so a remembered answer — or a place among the waiters of
a blocking reload — is never handed to a request the gate turns away. A refusal is answered as it
is (403 unless said otherwise, ``Cache-Control: no-store``) and never remembered: an access
decision is about one request, not about the resource, so neither the origin's answer cache nor a
CDN may give it to anyone else (RFC 9111 §5.2.2.5: no-store — "a cache MUST NOT store any part of
either the immediate request or the response").

The gate sees the whole request — path, query and headers, still percent-encoded as received —
and ``now`` in the adapter's clock, which is what a signed playback token check will need. Read
the stream id with :func:`origin.streams.stream_of`, which decodes the path exactly as the router
does.

No gate (``None``, or :data:`ALLOW_ALL`) costs the adapter one attribute test per request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from livecast.errors import ConfigError
from livecast.origin.contract import Request, Response
from livecast.origin.streams import check_stream_id, stream_of
from livecast.packager.event import DEFAULT_STREAM


@dataclass(frozen=True, slots=True)
class Refusal:
    """A request turned away: ``response`` (built once) is what the client gets."""

    reason: str = "forbidden"
    status: int = 403
    extra_headers: tuple[tuple[str, str], ...] = ()
    response: Response = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not 400 <= self.status < 500:
            raise ConfigError("gate.status", f"a refusal is a 4xx status, got {self.status}")
        response = Response(
            self.status,
            (self.reason + "\n").encode(),
            cache_control="no-store",
            object_type="other",
            extra_headers=self.extra_headers,
        )
        object.__setattr__(self, "response", response)


FORBIDDEN = Refusal()


class Gate(Protocol):
    def authorize(self, request: Request, now: float) -> Refusal | None:
        """None lets ``request`` through; a :class:`Refusal` is its answer."""
        ...


class AllowAll:
    """The gate that lets everything through (the adapter skips it altogether)."""

    def authorize(self, request: Request, now: float) -> Refusal | None:
        return None


ALLOW_ALL = AllowAll()

Predicate = Callable[[Request, float], bool]


@dataclass(frozen=True, slots=True)
class Rule:
    """Refuse the requests ``applies`` selects (given the request and ``now``)."""

    applies: Predicate
    refusal: Refusal = FORBIDDEN


def refuse_streams(
    stream_ids: Iterable[str],
    *,
    refusal: Refusal = FORBIDDEN,
    default_stream: str = DEFAULT_STREAM,
) -> Rule:
    """A rule refusing every live URL of the given streams, in either URL layout (the short
    ``/live/<rendition>/…`` ones count as ``default_stream``)."""
    refused = frozenset(check_stream_id(stream_id) for stream_id in stream_ids)

    def applies(request: Request, now: float) -> bool:
        return stream_of(request.path, default_stream) in refused

    return Rule(applies, refusal)


class RuleGate:
    """Refuses with the first rule that applies; lets the rest through."""

    def __init__(self, rules: Iterable[Rule]) -> None:
        self.rules = tuple(rules)

    def authorize(self, request: Request, now: float) -> Refusal | None:
        for rule in self.rules:
            if rule.applies(request, now):
                return rule.refusal
        return None


def active(gate: Gate | None) -> Gate | None:
    """``gate`` unless it lets everything through anyway (then None: nothing to ask)."""
    return None if gate is None or isinstance(gate, AllowAll) else gate
