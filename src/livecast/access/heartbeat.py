"""The session endpoints of the origin — pure: a viewer's stream is a lease on one of its
account's slots (``access.leases``), taken when it joins and renewed by heartbeats.

    GET /session/heartbeat?join=1   the stream starts: admit the session (a renewal if it holds a
                                    lease already; at the limit refused, or the oldest ended)
    GET /session/heartbeat          renew it: ``lease_expired`` once it lapsed,
                                    ``ended_by_newer_stream`` once a newer stream took its slot
    GET /session/end                the viewer stopped: its slot is free at once

The account and session are the playback token's (cookie or ``token`` query argument, as the
token gate reads them), verified here for any event. An admitted answer is ``200`` with
``{"next_s": …, "expires": …}``: when to send the next heartbeat (the policy's interval, ±20 %
full jitter so that a flash crowd's heartbeats spread out) and until when the lease holds. A
refusal is the token gate's ``403`` for that reason code (``X-Livecast-Reason``). Every answer is
``no-store`` and per request: the origin's answer cache never keeps it (``origin.answer_cache``).

Heartbeats reach this one origin's in-memory :class:`~livecast.access.leases.LeaseTable`; the
Redis store (``access.redis_leases``) for several origins is not wired here yet.
"""

from __future__ import annotations

import json
import random

from livecast.access.keys import KeyRing
from livecast.access.leases import Admission, LeaseTable
from livecast.access.token_gate import REFUSALS, MalformedCarrier, UnixTime, find_token
from livecast.access.tokens import DEFAULT_SKEW, RevocationList, TokenClaims, verify
from livecast.errors import AccessError
from livecast.origin.contract import Endpoint, Request, Response

HEARTBEAT_PATH = "/session/heartbeat"
END_PATH = "/session/end"
LEASE_REASONS = ("too_many_streams", "lease_expired", "ended_by_newer_stream")
_LEASE_REFUSALS = {
    reason: Response(
        403,
        (reason + "\n").encode(),
        cache_control="no-store",
        object_type="session",
        extra_headers=(("X-Livecast-Reason", reason),),
    )
    for reason in LEASE_REASONS
}
ENDED = Response(204, b"", cache_control="no-store", object_type="session")


class SessionEndpoints:
    """``/session/heartbeat`` and ``/session/end`` over ``leases`` (see the module)."""

    def __init__(
        self,
        key_ring: KeyRing,
        leases: LeaseTable,
        *,
        skew: float = DEFAULT_SKEW,
        revoked: RevocationList | None = None,
        rng: random.Random | None = None,
        unix_time: UnixTime | None = None,
    ) -> None:
        self.key_ring = key_ring
        self.unix_time = unix_time  # the origin's monotonic now → Unix seconds (as the gate's)
        self.leases = leases
        self.skew = skew
        self.revoked = revoked
        self.rng = rng or random.Random()

    def routes(self) -> dict[str, Endpoint]:
        return {HEARTBEAT_PATH: self.heartbeat, END_PATH: self.end}

    def heartbeat(self, request: Request, now: float) -> Response:
        now = self._unix(now)
        claims = self._claims(request, now)
        if isinstance(claims, Response):
            return claims
        account, session = claims.account, claims.session
        if _joins(request.query):
            admission = self.leases.admit(account, session, now)
        else:
            admission = self.leases.heartbeat(account, session, now)
        return self._answer(admission)

    def end(self, request: Request, now: float) -> Response:
        now = self._unix(now)
        claims = self._claims(request, now)
        if isinstance(claims, Response):
            return claims
        self.leases.end(claims.account, claims.session)
        return ENDED

    def _unix(self, now: float) -> float:
        return now if self.unix_time is None else self.unix_time(now)

    def _claims(self, request: Request, now: float) -> TokenClaims | Response:
        """The token's claims, or the refusal to answer."""
        try:
            token = find_token(request)
            return verify(
                token,
                event=None,
                now=now,
                key_ring=self.key_ring,
                skew=self.skew,
                revoked=self.revoked,
            )
        except MalformedCarrier:
            return REFUSALS["malformed"].response
        except AccessError as exc:
            return REFUSALS[exc.reason].response

    def _answer(self, admission: Admission) -> Response:
        if not admission.admitted:
            return _LEASE_REFUSALS.get(admission.reason) or REFUSALS["malformed"].response
        next_s = self.leases.policy.jittered_interval(self.rng)
        body = json.dumps({"next_s": round(next_s, 3), "expires": admission.expires})
        return Response(
            200, body.encode(), "application/json", cache_control="no-store", object_type="session"
        )


def _joins(query: str) -> bool:
    return "join=1" in query.split("&")
