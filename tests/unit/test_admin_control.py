"""The admin API's two steps with a control injected (sans-IO: the core never awaits): create,
start, stop, sessions and status are answered with an :class:`AdminCall`; ``finish`` turns the
control's result into the answer. An event is reserved while its call is under way (a second
operation on it is a 409), a refusal changes nothing, a bug is a 500, and a stream key appears
once in the creation's answer and never in a log line."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from livecast.access.keys import KeyRing
from livecast.access.leases import Lease, LeasePolicy, LeaseTable, MemoryLeaseStore
from livecast.admin.api import AdminApi, AdminResponse, RateLimit, hash_secret
from livecast.admin.control import store_sessions
from livecast.admin.openapi import PREFIX
from livecast.admin.state import (
    AdminCall,
    AdminState,
    Conflict,
    EventCatalog,
    NotFound,
    SessionPage,
    Unavailable,
)
from livecast.ingest.keys import PublishPoint, fingerprint

SECRET = "admin-secret-0123456789"
NOW = 1_800_000_000.0
AUTH = [("Authorization", f"Bearer {SECRET}")]
POINT = PublishPoint("rtmp://127.0.0.1:1935/live", "k3y-0123456789abcdefghijklmnopqrstu")


class NeverAwaited:
    """A control the core holds but must never call (the server awaits the calls)."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the core called control.{name}")


def make_api(max_events: int = 1000) -> AdminApi:
    state = AdminState(
        KeyRing({"k1": b"1" * 32}, "k1"),
        catalog=EventCatalog(max_events),
        leases=LeaseTable(LeasePolicy()),
        control=NeverAwaited(),  # type: ignore[arg-type]
    )
    return AdminApi(state, [hash_secret(SECRET)], rate_limit=RateLimit(1000, 1000))


def ask(
    api: AdminApi, method: str, path: str, body: Any = None, *, auth: bool = True
) -> AdminResponse | AdminCall:
    raw = b"" if body is None else json.dumps(body).encode()
    return api.handle(method, PREFIX + path, "", AUTH if auth else [], raw, "10.0.0.1", NOW)


def answered(outcome: AdminResponse | AdminCall) -> AdminResponse:
    assert isinstance(outcome, AdminResponse), outcome
    return outcome


def called(outcome: AdminResponse | AdminCall) -> AdminCall:
    assert isinstance(outcome, AdminCall), outcome
    return outcome


def create(api: AdminApi, event_id: str = "stage") -> AdminCall:
    return called(ask(api, "POST", "/events", {"id": event_id, "title": "Stage"}))


def test_create_start_stop_in_two_steps_and_the_key_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="livecast")
    api = make_api()
    call = create(api)
    assert call == AdminCall("create_event", "stage", "Stage")
    assert api.state.catalog.list() == []  # nothing until the control answered
    created = api.finish(call, POINT, NOW + 1)
    assert created.status == 201
    body = created.json()
    assert (body["state"], body["created_at"]) == ("created", NOW + 1)
    assert (body["stream_key"], body["publish_url"]) == (POINT.key, POINT.publish_url)
    assert body["ingest"] == {"url": POINT.url, "key_fingerprint": fingerprint(POINT.key)}
    shown = answered(ask(api, "GET", "/events/stage")).json()
    assert "stream_key" not in shown and shown["ingest"] == body["ingest"]
    assert POINT.key not in caplog.text and fingerprint(POINT.key) in caplog.text

    start = called(ask(api, "POST", "/events/stage/start"))
    assert answered(api.finish(start, None, NOW + 2)).json()["started_at"] == NOW + 2
    stop = called(ask(api, "POST", "/events/stage/stop"))
    ended = api.finish(stop, None, NOW + 3).json()
    assert (ended["state"], ended["ended_at"]) == ("ended", NOW + 3)
    assert api.state.reserved == {}


def test_an_event_is_reserved_while_its_call_is_under_way() -> None:
    api = make_api()
    call = create(api)
    for method, path, body in (
        ("POST", "/events", {"id": "stage", "title": "again"}),
        ("POST", "/events/stage/start", None),
    ):
        refused = answered(ask(api, method, path, body))
        assert refused.status == 409 and "busy" in refused.json()["error"]
    assert isinstance(create(api, "other"), AdminCall)  # other events are not held
    api.finish(call, POINT, NOW)
    start = called(ask(api, "POST", "/events/stage/start"))
    assert answered(ask(api, "POST", "/events/stage/stop")).status == 409  # busy starting
    api.finish(start, None, NOW)
    assert isinstance(ask(api, "POST", "/events/stage/stop"), AdminCall)


def test_wrong_transitions_and_unknown_events_are_refused_before_any_call() -> None:
    api = make_api()
    assert answered(ask(api, "POST", "/events/nope/start")).status == 404
    api.finish(create(api), None, NOW)  # a control with nowhere to publish: no ingest
    assert answered(ask(api, "GET", "/events/stage")).json()["ingest"] is None
    assert answered(ask(api, "POST", "/events/stage/stop")).status == 409  # created, not live
    assert answered(ask(api, "POST", "/events", {"id": "x"})).status == 400
    unauthorized = ask(api, "POST", "/events", {"id": "x", "title": "X"}, auth=False)
    assert answered(unauthorized).status == 401
    assert api.state.reserved == {} and [e.id for e in api.state.catalog.list()] == ["stage"]


@pytest.mark.parametrize(
    ("refusal", "status"),
    [(Conflict("cannot take new events"), 409), (NotFound("gone"), 404), (Unavailable("x"), 503)],
)
def test_a_refusal_of_the_control_changes_nothing(refusal: Exception, status: int) -> None:
    api = make_api()
    before = api.state.snapshot()
    answer = api.finish(create(api), refusal, NOW)
    assert answer.status == status and answer.json()["error"] == str(refusal)
    assert api.state.snapshot() == before and api.state.reserved == {}
    assert isinstance(create(api), AdminCall)  # and the id may be tried again


def test_a_bug_of_the_control_is_a_500_and_releases_the_event(
    caplog: pytest.LogCaptureFixture,
) -> None:
    api = make_api()
    answer = api.finish(create(api), RuntimeError("boom"), NOW)
    assert answer.status == 500 and api.state.reserved == {} and api.state.catalog.list() == []
    assert "admin API bug finishing create_event" in caplog.text


def test_the_catalog_counts_creations_under_way() -> None:
    api = make_api(max_events=2)
    first, second = create(api, "a"), create(api, "b")
    assert answered(ask(api, "POST", "/events", {"id": "c", "title": "C"})).status == 409
    assert api.finish(first, None, NOW).status == 201
    assert api.finish(second, None, NOW).status == 201


def test_sessions_and_status_are_calls_finished_with_the_control_result() -> None:
    api = make_api()
    outcome = api.handle("GET", PREFIX + "/sessions", "account=a1", AUTH, b"", "10.0.0.1", NOW)
    call = called(outcome)
    assert call == AdminCall("list_sessions", account="a1")
    page = SessionPage((Lease("a1", "s1", NOW - 5, NOW + 25),), truncated=False)
    listed = api.finish(call, page, NOW).json()
    assert listed == {
        "sessions": [{"account": "a1", "session": "s1", "started": NOW - 5, "expires": NOW + 25}],
        "truncated": False,
    }
    unavailable = api.finish(call, Unavailable("the lease store did not answer"), NOW)
    assert (unavailable.status, unavailable.header("retry-after")) == (503, "1")

    status = called(ask(api, "GET", "/status"))
    parts = {"pipelines": [{"stream": "main"}], "origins": [], "edges": []}
    answer = api.finish(status, parts, NOW).json()
    assert answer["pipelines"] == [{"stream": "main"}]
    assert answer["events"] == {"created": 0, "live": 0, "ended": 0}


async def test_sessions_of_an_in_memory_store() -> None:
    table = LeaseTable(LeasePolicy(max_streams=3))
    store = MemoryLeaseStore(table)
    for account, session in (("a1", "s1"), ("a1", "s2"), ("a2", "s3")):
        assert (await store.admit(account, session, NOW)).admitted
    page = await store_sessions(store, "a1", NOW + 1)
    assert [lease.session for lease in page.leases] == ["s1", "s2"]
    every = await store_sessions(store, None, NOW + 1)
    assert sorted(lease.session for lease in every.leases) == ["s1", "s2", "s3"]
    assert (await store_sessions(store, None, NOW + 31)).leases == ()  # expired
    assert await store_sessions(None, "a1", NOW) == SessionPage((), False)
