"""Requests the player asks its adapter to perform, and the ledger of those in flight (pure).

A :class:`Request` is what an adapter sends: absolute URL (CMCD included), kind, timeout and the
wall time before which it must not be sent (retry backoff, classic-mode polling). The
:class:`RequestLedger` allocates ids, remembers what each request was for (so that a retry
repeats it and a late answer for an abandoned rendition is recognised), and counts answers by
kind and status — network failures by their kind (``timeout``, ``reset``…) — and bytes by kind,
as hls.js's ``LoadStats`` would be summed by a QoE beacon.
"""

from __future__ import annotations

from dataclasses import dataclass

from livecast.player.track import Position

KINDS = ("multivariant", "playlist", "init", "part", "segment", "session")


# Request and InFlight are read-only by convention, not frozen: a frozen dataclass's __init__
# sets each field through object.__setattr__, and two of each are built per request.
@dataclass(slots=True)
class Request:
    id: int
    url: str  # absolute, with the CMCD query argument
    kind: str  # one of KINDS
    timeout: float  # seconds for the whole response
    not_before: float  # wall clock: do not send earlier
    retry: int = 0  # 0: a first attempt; n: the n-th retry of a failed request
    dvr: bool = False  # a start-over viewer's: recorded under its own kinds (``player.harness``)


@dataclass(slots=True)
class InFlight:
    """What a request was for."""

    request: Request
    base_url: str  # without CMCD, for retries
    track: str | None  # "video" / "audio"; None for the multivariant playlist
    generation: int  # the track's rendition generation when it was sent
    retries: int  # retries already done for this object
    position: Position | None = None
    hinted: bool = False  # a preload-hinted part (held by the server until produced)


class RequestLedger:
    """``dvr``: the requests of a start-over viewer (marked so on every :class:`Request`)."""

    def __init__(self, dvr: bool = False) -> None:
        self.dvr = dvr
        self.in_flight: dict[int, InFlight] = {}
        self.abandoned: dict[int, InFlight] = {}
        self.by_status: dict[str, dict[str, int]] = {}  # kind → status → count
        self.bytes_by_kind: dict[str, int] = {}
        self._next_id = 1

    def issue(
        self,
        kind: str,
        base_url: str,
        url: str,
        timeout: float,
        not_before: float,
        track: str | None = None,
        generation: int = 0,
        retries: int = 0,
        position: Position | None = None,
        hinted: bool = False,
    ) -> InFlight:
        if kind not in KINDS:
            raise ValueError(f"unknown request kind {kind!r}")
        request = Request(self._next_id, url, kind, timeout, not_before, retries, self.dvr)
        self._next_id += 1
        flight = InFlight(request, base_url, track, generation, retries, position, hinted)
        self.in_flight[request.id] = flight
        return flight

    def abandon(self, request_id: int) -> None:
        """No longer wanted (a rendition switch): its answer is counted, then ignored."""
        flight = self.in_flight.pop(request_id, None)
        if flight is not None:
            self.abandoned[request_id] = flight

    def wanted(self, request_id: int) -> bool:
        return request_id in self.in_flight

    def loading_since(self, request_id: int | None, hint_listed_at: float | None) -> float | None:
        """When the media fetch ``request_id`` began loading — for a preload-hinted part, when a
        playlist listed it (before that the server was producing it); None for none or an init."""
        flight = self.in_flight.get(request_id) if request_id is not None else None
        if flight is None or flight.request.kind == "init":
            return None
        return hint_listed_at if flight.hinted else flight.request.not_before

    def settle(self, request_id: int, status: str, size: int) -> InFlight | None:
        """The answer to ``request_id``, counted; None when unknown or abandoned."""
        flight = self.in_flight.pop(request_id, None)
        counted = flight if flight is not None else self.abandoned.pop(request_id, None)
        if counted is None:
            return None
        kind = counted.request.kind
        statuses = self.by_status.get(kind)
        if statuses is None:
            statuses = self.by_status[kind] = {}
        statuses[status] = statuses.get(status, 0) + 1
        self.bytes_by_kind[kind] = self.bytes_by_kind.get(kind, 0) + size
        return flight

    def abandon_all(self) -> None:
        self.in_flight.clear()
        self.abandoned.clear()
