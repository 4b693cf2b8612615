"""The admin API's sans-IO core: every route, bearer auth (state unchanged on 401), the rate
limit with injected time, every refusal (400/404/405/409/413), issued tokens that verify, revoked
sessions that do not, and an OpenAPI document that lists every route (docs/access.md)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from livecast.access.keys import KeyRing
from livecast.access.leases import LeasePolicy, LeaseTable
from livecast.access.tokens import verify
from livecast.admin.api import AdminApi, AdminResponse, RateLimit, hash_secret
from livecast.admin.openapi import PREFIX, ROUTES, document
from livecast.admin.state import AdminState, Conflict, EventCatalog, NotFound
from livecast.errors import AccessError, ConfigError

SECRET = "admin-secret-0123456789"
RING = KeyRing({"k1": b"1" * 32}, "k1")
NOW = 1_800_000_000.0
AUTH = [("Authorization", f"Bearer {SECRET}")]


def make_api(rate: RateLimit | None = None) -> AdminApi:
    state = AdminState(RING, leases=LeaseTable(LeasePolicy()))
    return AdminApi(state, [hash_secret(SECRET)], rate_limit=rate or RateLimit(1000, 1000))


def call(
    api: AdminApi,
    method: str,
    path: str,
    body: Any = None,
    *,
    query: str = "",
    headers: list[tuple[str, str]] | None = None,
    now: float = NOW,
    client: str = "10.0.0.1",
) -> AdminResponse:
    raw = body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
    hdrs = AUTH if headers is None else headers
    return api.handle(method, PREFIX + path, query, hdrs, raw, client, now)


@pytest.fixture
def api() -> AdminApi:
    return make_api()


def live_event(api: AdminApi, event_id: str = "main") -> None:
    assert call(api, "POST", "/events", {"id": event_id, "title": "Main stage"}).status == 201
    assert call(api, "POST", f"/events/{event_id}/start").status == 200


# -- happy paths ---------------------------------------------------------------------------------


def test_event_lifecycle(api: AdminApi) -> None:
    created = call(api, "POST", "/events", {"id": "main", "title": "Main"}, now=NOW)
    assert created.status == 201
    assert created.json()["state"] == "created"
    assert created.header("content-type") == "application/json"
    started = call(api, "POST", "/events/main/start", now=NOW + 5).json()
    assert (started["state"], started["started_at"]) == ("live", NOW + 5)
    stopped = call(api, "POST", "/events/main/stop", now=NOW + 9).json()
    assert (stopped["state"], stopped["ended_at"]) == ("ended", NOW + 9)
    assert call(api, "GET", "/events/main").json() == stopped
    assert call(api, "GET", "/events").json() == {"events": [stopped]}


def test_issued_token_verifies(api: AdminApi) -> None:
    live_event(api)
    body = {"event": "main", "account": "acct", "session": "s1", "ttl_s": 600}
    issued = call(api, "POST", "/tokens", body)
    assert issued.status == 201
    token, exp = issued.json()["token"], issued.json()["exp"]
    assert exp == int(NOW) + 600
    claims = verify(token, event="main", now=NOW + 1, key_ring=RING)
    assert (claims.account, claims.session, claims.exp) == ("acct", "s1", exp)


def test_revoked_session_and_token(api: AdminApi) -> None:
    live_event(api)
    tokens = []
    for session in ("s1", "s2"):
        body = {"event": "main", "account": "acct", "session": session, "ttl_s": 600}
        tokens.append(call(api, "POST", "/tokens", body).json()["token"])
    assert call(api, "POST", "/revocations", {"session": "s1"}).status == 204
    assert call(api, "POST", "/revocations", {"token": tokens[1]}).status == 204
    for token in tokens:
        with pytest.raises(AccessError) as refused:
            verify(token, event="main", now=NOW + 1, key_ring=RING, revoked=api.state.revocations)
        assert refused.value.reason == "revoked"


def test_sessions_and_status(api: AdminApi) -> None:
    assert api.state.leases is not None
    api.state.leases.admit("acct", "s1", NOW)
    api.state.leases.admit("other", "s9", NOW)
    mine = call(api, "GET", "/sessions", query="account=acct").json()
    assert mine == {
        "sessions": [{"account": "acct", "session": "s1", "started": NOW, "expires": NOW + 30}],
        "truncated": False,
    }
    every = call(api, "GET", "/sessions").json()["sessions"]
    assert {s["session"] for s in every} == {"s1", "s9"}
    status = call(api, "GET", "/status").json()
    assert status["events"] == {"created": 0, "live": 0, "ended": 0}
    assert set(status) >= {"pipelines", "origins", "edges"}


def test_status_is_injected() -> None:
    state = AdminState(RING, status_fn=lambda now: {"pipelines": [{"id": "p1"}], "now": now})
    api = AdminApi(state, [hash_secret(SECRET)])
    assert call(api, "GET", "/status").json() == {"pipelines": [{"id": "p1"}], "now": NOW}


def test_openapi_served_without_auth_and_lists_every_route(api: AdminApi) -> None:
    served = call(api, "GET", "/openapi.json", headers=[])
    assert served.status == 200
    doc = served.json()
    assert doc == json.loads(json.dumps(document()))
    assert doc["openapi"] == "3.0.3"
    listed = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    assert listed == {(r.method, PREFIX + r.path) for r in ROUTES}
    for route in ROUTES:
        op = doc["paths"][PREFIX + route.path][route.method.lower()]
        assert str(route.status) in op["responses"]
        assert ("401" in op["responses"]) == route.auth
        assert {"400", "405", "413", "429"} <= set(op["responses"])
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert doc["components"]["schemas"]["EventCreate"]["additionalProperties"] is False


# -- authentication ------------------------------------------------------------------------------

BAD_AUTH = [
    [],
    [("Authorization", "Bearer wrong-secret")],
    [("Authorization", f"Basic {SECRET}")],
    [("Authorization", "Bearer")],
    [("Authorization", f"Bearer {SECRET} extra")],
    [("Authorization", f"Bearer {SECRET}é")],
    [("Authorization", "Bearer " + "x" * 5000)],
    [("Authorization", f"Bearer {SECRET}"), ("authorization", f"Bearer {SECRET}")],
]


@pytest.mark.parametrize("headers", BAD_AUTH)
def test_401_changes_nothing(api: AdminApi, headers: list[tuple[str, str]]) -> None:
    live_event(api)
    before = api.state.snapshot()
    attempts: list[tuple[str, str, Any]] = [
        ("POST", "/events", {"id": "evil", "title": "x"}),
        ("POST", "/events/main/stop", None),
        ("POST", "/tokens", {"event": "main", "account": "a", "session": "s", "ttl_s": 5}),
        ("POST", "/revocations", {"session": "s"}),
        ("GET", "/events", None),
        ("GET", "/sessions", None),
        ("GET", "/status", None),
    ]
    for method, path, body in attempts:
        response = call(api, method, path, body, headers=headers)
        assert response.status == 401, (method, path)
        assert response.header("WWW-Authenticate") == "Bearer"
        assert SECRET.encode() not in response.body
    assert api.state.snapshot() == before


def test_bearer_scheme_is_case_insensitive(api: AdminApi) -> None:
    headers = [("authorization", f"bearer {SECRET}")]
    assert call(api, "GET", "/events", headers=headers).status == 200


def test_secrets_are_configured_as_hashes() -> None:
    api = make_api()
    assert SECRET not in repr(vars(api)) and SECRET not in repr(api.state)
    with pytest.raises(ConfigError):
        AdminApi(AdminState(RING), [])


# -- rate limit ----------------------------------------------------------------------------------


def test_rate_limit_and_recovery() -> None:
    api = make_api(RateLimit(rate=2.0, burst=4.0))
    for _ in range(4):
        assert call(api, "GET", "/events", headers=[]).status == 401  # failures count too
    limited = call(api, "GET", "/events")
    assert limited.status == 429
    assert limited.header("Retry-After") == "1"
    assert call(api, "GET", "/events", client="10.0.0.2").status == 200  # per client
    assert call(api, "GET", "/events", now=NOW + 0.5).status == 200  # one token back
    assert call(api, "GET", "/events", now=NOW + 0.5).status == 429
    for _ in range(4):
        assert call(api, "GET", "/events", now=NOW + 10).status == 200  # full burst again
    assert call(api, "GET", "/events", now=NOW + 10).status == 429


def test_rate_limit_buckets_are_bounded() -> None:
    api = make_api(RateLimit(rate=1.0, burst=1.0, max_clients=3))
    for n in range(10):
        call(api, "GET", "/events", client=f"10.0.0.{n}")
    assert len(api.buckets.buckets) == 3


# -- refusals ------------------------------------------------------------------------------------

BAD_BODIES: list[tuple[str, bytes, str]] = [
    ("/events", b"not json", ""),
    ("/events", b"\xff\xfe", ""),
    ("/events", b"[1, 2]", ""),
    ("/events", b"NaN", ""),
    ("/events", b"[" * 50_000, ""),
    ("/events", b'{"id": "x"}', "title"),
    ("/events", b'{"id": 5, "title": "t"}', "id"),
    ("/events", b'{"id": "a.b", "title": "t"}', "id"),
    ("/events", b'{"id": "ab\\n", "title": "t"}', "id"),
    ("/events", b'{"id": "ab", "title": ""}', "title"),
    ("/events", b'{"id": "ab", "title": "t", "extra": 1}', "extra"),
    ("/tokens", b'{"event": "m", "account": "a", "session": "s", "ttl_s": 0}', "ttl_s"),
    ("/tokens", b'{"event": "m", "account": "a", "session": "s", "ttl_s": 86401}', "ttl_s"),
    ("/tokens", b'{"event": "m", "account": "a", "session": "s", "ttl_s": true}', "ttl_s"),
    ("/tokens", b'{"event": "m", "account": "a", "session": "s", "ttl_s": 1.5}', "ttl_s"),
    ("/tokens", b'{"event": "m", "account": "a", "session": "s"}', "ttl_s"),
    ("/revocations", b"{}", ""),
    ("/revocations", b'{"session": "s", "token": "t"}', ""),
    ("/events/main/start", b'{"x": 1}', ""),
]


@pytest.mark.parametrize(("path", "body", "field"), BAD_BODIES)
def test_400_names_the_field(api: AdminApi, path: str, body: bytes, field: str) -> None:
    call(api, "POST", "/events", {"id": "main", "title": "Main"})
    before = api.state.snapshot()
    response = call(api, "POST", path, body)
    assert response.status == 400, response.body
    assert isinstance(response.json()["error"], str)
    assert response.json().get("field", "") == field
    assert api.state.snapshot() == before


def test_400_for_bad_query(api: AdminApi) -> None:
    assert call(api, "GET", "/sessions", query="account=a.b").status == 400
    assert call(api, "GET", "/sessions", query="bogus=1").json()["field"] == "bogus"
    assert call(api, "GET", "/sessions", query="account=a&account=b").status == 400
    assert call(api, "GET", "/sessions", query="account=%ff").status == 400


def test_413_for_a_large_body(api: AdminApi) -> None:
    body = json.dumps({"id": "big", "title": "x" * 70_000}).encode()
    assert call(api, "POST", "/events", body).status == 413
    assert call(api, "POST", "/events", body, headers=[]).status == 413
    assert api.state.catalog.events == {}


def test_404_and_405(api: AdminApi) -> None:
    assert call(api, "GET", "/nope").status == 404
    assert call(api, "GET", "/events/").status == 404
    assert api.handle("GET", "/", "", AUTH, b"", "c", NOW).status == 404
    assert call(api, "GET", "/events/missing").status == 404
    assert call(api, "GET", "/events/a%2Fb").status == 404
    assert call(api, "GET", "/events/%ff").status == 404
    assert call(api, "POST", "/events/missing/start").status == 404
    body = {"event": "missing", "account": "a", "session": "s", "ttl_s": 60}
    assert call(api, "POST", "/tokens", body).status == 404
    wrong = call(api, "DELETE", "/events")
    assert (wrong.status, wrong.header("Allow")) == (405, "GET, POST")
    assert call(api, "GET", "/events/x/start").header("Allow") == "POST"
    assert call(api, "PUT", "/openapi.json", headers=[]).status == 405


def test_409_for_conflicts(api: AdminApi) -> None:
    call(api, "POST", "/events", {"id": "main", "title": "Main"})
    assert call(api, "POST", "/events", {"id": "main", "title": "Again"}).status == 409
    assert call(api, "POST", "/events/main/stop").status == 409  # not live yet
    call(api, "POST", "/events/main/start")
    assert call(api, "POST", "/events/main/start").status == 409
    call(api, "POST", "/events/main/stop")
    assert call(api, "POST", "/events/main/start").status == 409  # ended is final


def test_bug_is_500_and_logs_no_secret(caplog: pytest.LogCaptureFixture) -> None:
    def broken(now: float) -> dict[str, Any]:
        raise RuntimeError("boom")

    api = AdminApi(AdminState(RING, status_fn=broken), [hash_secret(SECRET)])
    with caplog.at_level(logging.INFO):
        assert call(api, "GET", "/status").status == 500
        live_event(api)
        body = {"event": "main", "account": "a", "session": "s", "ttl_s": 60}
        token = call(api, "POST", "/tokens", body).json()["token"]
        call(api, "POST", "/revocations", {"token": token})
    assert "boom" in caplog.text
    assert SECRET not in caplog.text and token not in caplog.text


# -- the catalog alone ---------------------------------------------------------------------------


def test_catalog_errors_and_bound() -> None:
    catalog = EventCatalog(max_events=1)
    catalog.create("a", "A", NOW)
    with pytest.raises(Conflict):
        catalog.create("b", "B", NOW)
    with pytest.raises(NotFound):
        catalog.get("b")
    with pytest.raises(ValueError):
        EventCatalog().create("a.b", "A", NOW)


# -- revocations for the edges (GET /revocations?since=) -------------------------------------

READER = "edge-reader-secret-0123456789"
READER_AUTH = [("Authorization", f"Bearer {READER}")]


def test_revocations_are_listed_after_a_sequence_number(api: AdminApi) -> None:
    first = call(api, "GET", "/revocations").json()
    assert (first["seq"], first["more"], first["revocations"]) == (0, False, [])
    assert call(api, "POST", "/revocations", {"session": "s1"}).status == 204
    token = "v1.k1.main.a1.s2.1800003600.0." + "A" * 43
    assert call(api, "POST", "/revocations", {"token": token}).status == 204
    listed = call(api, "GET", "/revocations", query="since=0").json()
    assert list(listed) == ["epoch", "seq", "more", "revocations"]  # the edges read this order
    assert listed["epoch"] == first["epoch"] and listed["seq"] == 2
    kinds = [(r["kind"], r["until"]) for r in listed["revocations"]]
    assert kinds == [("session", int(NOW + 86400 + 60)), ("token", 1800003660)]
    assert listed["revocations"][1]["id"] == tokens_id(token)
    assert call(api, "GET", "/revocations", query="since=1").json()["revocations"][0]["kind"] == (
        "token"
    )
    assert call(api, "GET", "/revocations", query="since=2").json()["revocations"] == []


def tokens_id(token: str) -> str:
    from livecast.access.tokens import token_id

    return token_id(token)


BAD_SINCE = ["since=-1", "since=x", "since=1.5", "since=" + "9" * 17, "since=9007199254740992",
             "since=1&since=2", "until=1"]  # fmt: skip


@pytest.mark.parametrize("query", BAD_SINCE)
def test_a_bad_since_is_400(api: AdminApi, query: str) -> None:
    assert call(api, "GET", "/revocations", query=query).status == 400


def test_a_reader_reads_revocations_only_and_is_not_rate_limited_there() -> None:
    api = make_api(RateLimit(1, 1))
    api.allow_reader(hash_secret(READER))
    assert call(api, "GET", "/revocations", headers=READER_AUTH).status == 200
    for _ in range(5):  # the bucket is empty: admins wait, the reader (the edges) does not
        assert call(api, "GET", "/revocations", headers=READER_AUTH).status == 200
        assert call(api, "GET", "/revocations").status == 429
        assert (
            call(api, "GET", "/revocations", headers=[("Authorization", "Bearer nope")]).status
            == 429
        )
    fresh = make_api()
    fresh.allow_reader(hash_secret(READER))
    assert call(fresh, "GET", "/events", headers=READER_AUTH).status == 401
    assert call(fresh, "POST", "/revocations", {"session": "s"}, headers=READER_AUTH).status == 401
    with pytest.raises(ConfigError):
        fresh.allow_reader("abc")
