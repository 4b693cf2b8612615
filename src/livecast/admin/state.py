"""The state the admin API acts on — pure: no clock reads, no I/O (``now`` is passed in).

An :class:`EventCatalog` holds the events an operator created (``created`` → ``live`` →
``ended``); :class:`AdminState` joins it to the access machinery the API drives — the token
:class:`~livecast.access.keys.KeyRing` (issuing), a
:class:`~livecast.access.tokens.RevocationList` (revoking) and a
:class:`~livecast.access.leases.LeaseTable` (listing sessions) — and to a ``status`` callable the
adapter injects (pipelines, origins, edges). Domain refusals are :class:`NotFound` (→ 404) and
:class:`Conflict` (→ 409); neither ever carries a credential.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from livecast.access.keys import KeyRing
from livecast.access.leases import Lease, LeaseTable
from livecast.access.tokens import RevocationList, TokenClaims, issue
from livecast.errors import LivecastError

__all__ = [
    "EVENT_ID",
    "MAX_EVENTS",
    "MAX_SESSIONS_LISTED",
    "MAX_TITLE_CHARS",
    "MAX_TTL_S",
    "AdminState",
    "Conflict",
    "Event",
    "EventCatalog",
    "NotFound",
]

EVENT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_TITLE_CHARS = 200
MAX_EVENTS = 1000
MAX_TTL_S = 86400
MAX_SESSIONS_LISTED = 1000

EventState = Literal["created", "live", "ended"]
StatusFn = Callable[[float], dict[str, Any]]


class NotFound(LivecastError):
    """The named thing (an event) does not exist → 404."""


class Conflict(LivecastError):
    """The request contradicts the state (a duplicate id, a wrong transition) → 409."""


@dataclass(frozen=True, slots=True)
class Event:
    """One event: its id, title, state and the times it entered each state (Unix seconds)."""

    id: str
    title: str
    state: EventState = "created"
    created_at: float = 0.0
    started_at: float | None = None
    ended_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON object the API answers with (schema ``Event``)."""
        return {
            "id": self.id,
            "title": self.title,
            "state": self.state,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
        }


@dataclass(slots=True)
class EventCatalog:
    """The events by id, in creation order; at most ``max_events``."""

    max_events: int = MAX_EVENTS
    events: dict[str, Event] = field(default_factory=dict)

    def create(self, event_id: str, title: str, now: float) -> Event:
        """A new event in state ``created``; :class:`Conflict` if the id exists or the catalog
        is full, :class:`ValueError` for an id or title the API should have refused."""
        if not EVENT_ID.fullmatch(event_id):
            raise ValueError("an event id is 1–64 characters of [A-Za-z0-9_-]")
        if not 1 <= len(title) <= MAX_TITLE_CHARS:
            raise ValueError(f"a title is 1–{MAX_TITLE_CHARS} characters")
        if event_id in self.events:
            raise Conflict(f"event {event_id!r} already exists")
        if len(self.events) >= self.max_events:
            raise Conflict(f"the catalog holds {self.max_events} events")
        event = Event(event_id, title, "created", now)
        self.events[event_id] = event
        return event

    def get(self, event_id: str) -> Event:
        """The event, or :class:`NotFound`."""
        event = self.events.get(event_id)
        if event is None:
            raise NotFound(f"no event {event_id!r}")
        return event

    def list(self) -> builtins.list[Event]:
        """Every event, oldest first."""
        return list(self.events.values())

    def start(self, event_id: str, now: float) -> Event:
        """``created`` → ``live``; :class:`Conflict` from any other state."""
        event = self.get(event_id)
        if event.state != "created":
            raise Conflict(f"event {event_id!r} is {event.state}, not created")
        return self._put(replace(event, state="live", started_at=now))

    def stop(self, event_id: str, now: float) -> Event:
        """``live`` → ``ended``; :class:`Conflict` from any other state."""
        event = self.get(event_id)
        if event.state != "live":
            raise Conflict(f"event {event_id!r} is {event.state}, not live")
        return self._put(replace(event, state="ended", ended_at=now))

    def counts(self) -> dict[str, int]:
        """How many events are in each state."""
        counts = {"created": 0, "live": 0, "ended": 0}
        for event in self.events.values():
            counts[event.state] += 1
        return counts

    def _put(self, event: Event) -> Event:
        self.events[event.id] = event
        return event


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A token the API issued and when it expires (Unix seconds)."""

    token: str
    exp: int


@dataclass(frozen=True, slots=True)
class SessionPage:
    """At most ``MAX_SESSIONS_LISTED`` leases and whether more were left out."""

    leases: tuple[Lease, ...]
    truncated: bool


@dataclass(frozen=True, slots=True)
class AdminState:
    """Everything the admin API reads and changes. The references are shared with the origin
    (the gate reads the same revocation list, the same lease table)."""

    key_ring: KeyRing
    catalog: EventCatalog = field(default_factory=EventCatalog)
    revocations: RevocationList = field(default_factory=RevocationList)
    leases: LeaseTable | None = None
    status_fn: StatusFn | None = None

    def issue_token(
        self, event: str, account: str, session: str, ttl_s: int, now: float
    ) -> IssuedToken:
        """A playback token for an existing event, valid ``ttl_s`` seconds from ``now``."""
        self.catalog.get(event)
        if not 1 <= ttl_s <= MAX_TTL_S:
            raise ValueError(f"ttl_s is 1–{MAX_TTL_S}")
        exp = int(now) + ttl_s
        token = issue(TokenClaims(event, account, session, exp), self.key_ring)
        return IssuedToken(token, exp)

    def revoke_session(self, session: str, now: float) -> float:
        """Refuse every token of ``session`` issued so far; until when."""
        return self._revoke(lambda: self.revocations.revoke_session(session, now))

    def revoke_token(self, token: str, now: float) -> float:
        """Refuse this one token; until when."""
        return self._revoke(lambda: self.revocations.revoke_token(token, now))

    def sessions(self, account: str | None, now: float) -> SessionPage:
        """The live leases of ``account`` (or of every account), bounded."""
        if self.leases is None:
            return SessionPage((), False)
        if account is not None:
            leases = self.leases.sessions(account, now)
        else:
            accounts = self.leases.accounts(MAX_SESSIONS_LISTED + 1)
            leases = [lease for name in accounts for lease in self.leases.sessions(name, now)]
        page = tuple(leases[:MAX_SESSIONS_LISTED])
        return SessionPage(page, len(leases) > MAX_SESSIONS_LISTED)

    def status(self, now: float) -> dict[str, Any]:
        """The injected status (pipelines, origins, edges), else the catalog's own view."""
        if self.status_fn is not None:
            return self.status_fn(now)
        return {
            "events": self.catalog.counts(),
            "revocations": len(self.revocations),
            "pipelines": [],
            "origins": [],
            "edges": [],
        }

    def snapshot(self) -> tuple[Any, ...]:
        """A comparable picture of everything the API can change (tests: "nothing changed")."""
        leases = None if self.leases is None else self.leases.stats()
        return (
            tuple(self.catalog.events.items()),
            tuple(self.revocations.sessions.items()),
            tuple(self.revocations.tokens.items()),
            leases,
        )

    @staticmethod
    def _revoke(action: Callable[[], float]) -> float:
        try:
            return action()
        except LivecastError as error:  # the list is full
            raise Conflict(str(error)) from None
