"""The session endpoints: a stream is a lease on one of its account's slots, taken at the join,
renewed by heartbeats, freed at the end — answered per request, never cached."""

from __future__ import annotations

import json
import random
from dataclasses import replace

from livecast.access.heartbeat import END_PATH, HEARTBEAT_PATH, SessionEndpoints
from livecast.access.keys import KeyRing
from livecast.access.leases import LeasePolicy, LeaseTable
from livecast.access.tokens import RevocationList, TokenClaims, issue
from livecast.origin.app import OriginApp
from livecast.origin.contract import Request, Response
from tests.unit.synth import make_event

RING = KeyRing({"k1": b"s" * 32}, "k1").validate()
NOW = 1_800_000_000.0
POLICY = LeasePolicy(max_streams=1, ttl=30.0, heartbeat_interval=10.0)


def endpoints(revoked: RevocationList | None = None) -> SessionEndpoints:
    return SessionEndpoints(RING, LeaseTable(POLICY), revoked=revoked, rng=random.Random(1))


def request(session: str, query: str = "", account: str = "a1") -> Request:
    token = issue(TokenClaims("main", account, session, int(NOW) + 3600), RING)
    return Request("GET", HEARTBEAT_PATH, query, (("cookie", f"livecast_token={token}"),))


def refused(response: Response) -> str:
    assert response.status == 403 and response.cache_control == "no-store"
    return dict(response.extra_headers)["X-Livecast-Reason"]


def test_a_join_admits_and_says_when_to_beat_again() -> None:
    answer = endpoints().heartbeat(request("s1", "join=1"), NOW)
    assert answer.status == 200 and answer.cache_control == "no-store"
    assert not answer.reusable and not answer.permanent  # never in the origin's answer cache
    body = json.loads(answer.body)
    assert 8.0 <= body["next_s"] <= 12.0 and body["expires"] == NOW + 30.0


def test_the_account_limit_holds_and_the_end_frees_the_slot() -> None:
    sessions = endpoints()
    assert sessions.heartbeat(request("s1", "join=1"), NOW).status == 200
    assert refused(sessions.heartbeat(request("s2", "join=1"), NOW + 1)) == "too_many_streams"
    assert sessions.heartbeat(request("s1"), NOW + 10).status == 200  # renewed
    assert sessions.heartbeat(request("s2", "join=1", account="a2"), NOW + 2).status == 200
    end = replace(request("s1"), path=END_PATH)
    assert sessions.end(end, NOW + 11).status == 204
    assert sessions.heartbeat(request("s2", "join=1"), NOW + 12).status == 200


def test_a_lapsed_lease_is_not_renewed_by_a_heartbeat() -> None:
    sessions = endpoints()
    assert sessions.heartbeat(request("s1", "join=1"), NOW).status == 200
    assert refused(sessions.heartbeat(request("s1"), NOW + 31)) == "lease_expired"
    assert refused(sessions.heartbeat(request("s9"), NOW)) == "lease_expired"  # never joined


def test_tokens_are_checked_as_the_gate_checks_them() -> None:
    revoked = RevocationList()
    sessions = endpoints(revoked)
    assert refused(sessions.heartbeat(Request("GET", HEARTBEAT_PATH, "join=1"), NOW)) == "missing"
    genuine = request("s1", "join=1")
    forged = replace(genuine, headers=(("cookie", genuine.headers[0][1][:-3] + "AAA"),))
    assert refused(sessions.heartbeat(forged, NOW)) == "bad_signature"
    revoked.revoke_session("s1", NOW)
    assert refused(sessions.heartbeat(request("s1", "join=1"), NOW)) == "revoked"


def test_the_origin_routes_the_endpoints_and_nothing_else_changes() -> None:
    sessions = endpoints()
    app = OriginApp(make_event(), endpoints=sessions.routes())
    answer = app.handle(request("s1", "join=1"), NOW)
    assert isinstance(answer, Response) and answer.status == 200
    missing = app.handle(Request("GET", "/session/other", ""), NOW)
    assert isinstance(missing, Response) and missing.status == 404
