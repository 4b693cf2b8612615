"""The state the admin API acts on — pure: no clock reads, no I/O (``now`` is passed in).

An :class:`EventCatalog` holds the events an operator created (``created`` → ``live`` →
``ended``); :class:`AdminState` joins it to the access machinery the API drives — the token
:class:`~livecast.access.keys.KeyRing` (issuing), a
:class:`~livecast.access.tokens.RevocationList` (revoking) and a
:class:`~livecast.access.leases.LeaseTable` (listing sessions) — and to a ``status`` callable the
adapter injects (pipelines, origins, edges).

With an :class:`AdminControl` injected (``livecast serve``: :class:`~livecast.admin.control.
PipelineControl` over the running pipeline) the operations that act on the world — create, start
and stop an event, list sessions from the origin's lease store, the status — are not done here:
the API answers an :class:`AdminCall` that its server awaits on the control, then hands the
result back (``AdminApi.finish``). While such a call is under way its event is *reserved*
(:meth:`AdminState.reserve`): a second create, start or stop of it is a :class:`Conflict`, so two
operators cannot race one event through the pipeline. Domain refusals are :class:`NotFound`
(→ 404), :class:`Conflict` (→ 409) and :class:`Unavailable` (→ 503: the lease store did not
answer); none ever carries a credential.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

from livecast.access.keys import KeyRing
from livecast.access.leases import Lease, LeaseTable
from livecast.access.tokens import RevocationList, TokenClaims, issue
from livecast.errors import LivecastError
from livecast.ingest.keys import PublishPoint, fingerprint

__all__ = [
    "EVENT_ID",
    "MAX_EVENTS",
    "MAX_SESSIONS_LISTED",
    "MAX_TITLE_CHARS",
    "MAX_TTL_S",
    "AdminCall",
    "AdminControl",
    "AdminState",
    "Conflict",
    "Event",
    "EventCatalog",
    "NotFound",
    "SessionPage",
    "Unavailable",
    "list_table",
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


class Unavailable(LivecastError):
    """What the answer needs did not answer (the lease store) → 503, nothing changed."""


@dataclass(frozen=True, slots=True)
class Event:
    """One event: its id, title, state and the times it entered each state (Unix seconds)."""

    id: str
    title: str
    state: EventState = "created"
    created_at: float = 0.0
    started_at: float | None = None
    ended_at: float | None = None
    publish: PublishPoint | None = None  # where its encoder publishes (events made at run time)

    def to_json(self) -> dict[str, Any]:
        """The JSON object the API answers with (schema ``Event``): the ingest URL and the key's
        fingerprint, never the key."""
        ingest = None
        if self.publish is not None:
            ingest = {"url": self.publish.url, "key_fingerprint": fingerprint(self.publish.key)}
        return {
            "id": self.id,
            "title": self.title,
            "state": self.state,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "ingest": ingest,
        }

    def created_json(self) -> dict[str, Any]:
        """The answer to its creation (schema ``EventCreated``): the event, and once only the
        stream key and the URL an encoder publishes to (``rtmp://…/<app>/<key>``)."""
        if self.publish is None:
            return self.to_json()
        return {
            **self.to_json(),
            "stream_key": self.publish.key,
            "publish_url": self.publish.publish_url,
        }


@dataclass(slots=True)
class EventCatalog:
    """The events by id, in creation order; at most ``max_events``."""

    max_events: int = MAX_EVENTS
    events: dict[str, Event] = field(default_factory=dict)

    def create(
        self,
        event_id: str,
        title: str,
        now: float,
        publish: PublishPoint | None = None,
        *,
        pending: int = 0,
    ) -> Event:
        """A new event in state ``created``; :class:`Conflict` if the id exists or the catalog
        is full (``pending``: creations under way besides), :class:`ValueError` for an id or
        title the API should have refused."""
        self.check_create(event_id, title, pending)
        event = Event(event_id, title, "created", now, publish=publish)
        self.events[event_id] = event
        return event

    def check_create(self, event_id: str, title: str, pending: int = 0) -> None:
        """Whether :meth:`create` would take this event (raises as it does)."""
        if not EVENT_ID.fullmatch(event_id):
            raise ValueError("an event id is 1–64 characters of [A-Za-z0-9_-]")
        if not 1 <= len(title) <= MAX_TITLE_CHARS:
            raise ValueError(f"a title is 1–{MAX_TITLE_CHARS} characters")
        if event_id in self.events:
            raise Conflict(f"event {event_id!r} already exists")
        if len(self.events) + pending >= self.max_events:
            raise Conflict(f"the catalog holds {self.max_events} events")

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
        event = self.in_state(event_id, "created")
        return self._put(replace(event, state="live", started_at=now))

    def stop(self, event_id: str, now: float) -> Event:
        """``live`` → ``ended``; :class:`Conflict` from any other state."""
        event = self.in_state(event_id, "live")
        return self._put(replace(event, state="ended", ended_at=now))

    def in_state(self, event_id: str, state: EventState) -> Event:
        """The event if it is in ``state``: :class:`NotFound`, else :class:`Conflict`."""
        event = self.get(event_id)
        if event.state != state:
            raise Conflict(f"event {event_id!r} is {event.state}, not {state}")
        return event

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


def list_table(table: LeaseTable, account: str | None, now: float) -> SessionPage:
    """The live leases of ``account`` (or of every account) in an in-memory table, bounded."""
    if account is not None:
        leases = table.sessions(account, now)
    else:
        accounts = table.accounts(MAX_SESSIONS_LISTED + 1)
        leases = []
        for name in accounts:
            leases += table.sessions(name, now)
            if len(leases) > MAX_SESSIONS_LISTED:
                break
    return SessionPage(tuple(leases[:MAX_SESSIONS_LISTED]), len(leases) > MAX_SESSIONS_LISTED)


Operation = Literal["create_event", "start_event", "stop_event", "list_sessions", "status"]


@dataclass(frozen=True, slots=True)
class AdminCall:
    """Work the API's answer waits for: ``operation`` on the injected :class:`AdminControl`,
    awaited by the server, its result handed to ``AdminApi.finish``. Plain data: the core
    never awaits."""

    operation: Operation
    event_id: str = ""
    title: str = ""
    account: str | None = None


class AdminControl(Protocol):
    """What acts on the world for the admin API (``admin.control.PipelineControl``). Refusals
    are :class:`Conflict`, :class:`NotFound` or :class:`Unavailable`; nothing is changed then."""

    async def create_event(self, event_id: str) -> PublishPoint | None:
        """A new event ready to be started; where its encoder publishes (None: nowhere)."""
        ...

    async def start_event(self, event_id: str) -> None:
        """The created event goes live: its encoder may publish, its playlists are served."""
        ...

    async def stop_event(self, event_id: str) -> None:
        """The live event ends: EXT-X-ENDLIST, a recording becomes VOD."""
        ...

    async def sessions(self, account: str | None, now: float) -> SessionPage:
        """The live leases of ``account`` (or of every account) in the origin's lease store."""
        ...

    async def status(self, now: float) -> dict[str, Any]:
        """``pipelines``, ``origins`` and ``edges`` (schema ``Status``)."""
        ...


@dataclass(frozen=True, slots=True)
class AdminState:
    """Everything the admin API reads and changes. The references are shared with the origin
    (the gate reads the same revocation list, the same lease table)."""

    key_ring: KeyRing
    catalog: EventCatalog = field(default_factory=EventCatalog)
    revocations: RevocationList = field(default_factory=RevocationList)
    leases: LeaseTable | None = None
    status_fn: StatusFn | None = None
    control: AdminControl | None = None
    reserved: dict[str, Operation] = field(default_factory=dict)  # events with a call under way

    def reserve(self, call: AdminCall) -> AdminCall:
        """Hold ``call``'s event until :meth:`release`, after checking that the operation may
        run now (as the catalog would check it): :class:`NotFound`, :class:`Conflict`."""
        if not call.event_id:
            return call
        busy = self.reserved.get(call.event_id)
        if busy is not None:
            raise Conflict(f"event {call.event_id!r} is busy ({busy.replace('_', ' ')})")
        if call.operation == "create_event":
            pending = sum(op == "create_event" for op in self.reserved.values())
            self.catalog.check_create(call.event_id, call.title, pending)
        elif call.operation == "start_event":
            self.catalog.in_state(call.event_id, "created")
        elif call.operation == "stop_event":
            self.catalog.in_state(call.event_id, "live")
        self.reserved[call.event_id] = call.operation
        return call

    def release(self, call: AdminCall) -> None:
        """The call is over (done or refused): its event may be acted on again."""
        if self.reserved.get(call.event_id) == call.operation:
            del self.reserved[call.event_id]

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
        return list_table(self.leases, account, now)

    def status(self, now: float, injected: dict[str, Any] | None = None) -> dict[str, Any]:
        """The catalog's own view (event counts, revocations) with ``injected`` (the control's
        pipelines, origins and edges) or the injected ``status_fn``'s; empty lists without."""
        if injected is None and self.status_fn is not None:
            return self.status_fn(now)
        parts = injected or {}
        return {
            "events": self.catalog.counts(),
            "revocations": len(self.revocations),
            "pipelines": parts.get("pipelines", []),
            "origins": parts.get("origins", []),
            "edges": parts.get("edges", []),
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
