"""The viewer's stream lease (``player.session``): the join beside the play request, heartbeats
when the origin says, a refusal ends the viewer, failures never do — driven by hand and through
the scripted origin with a lease table behind its session endpoint."""

from __future__ import annotations

import itertools
import json
import random
from urllib.parse import urlsplit

import pytest

from livecast.access.leases import LeasePolicy, LeaseTable
from livecast.origin.app import OriginApp
from livecast.origin.contract import Request as OriginRequest
from livecast.origin.contract import Response
from livecast.player import Player, PlayerConfig
from livecast.player.session import (
    MAX_INTERVAL,
    MIN_INTERVAL,
    SESSION_RETRY,
    Beat,
    Refused,
    SessionLease,
)

from .synth import EPOCH, make_event
from .test_player_server import URL, LadderFeeder, ScriptedServer

LEASE_URL = "http://origin.test/session/heartbeat"


def answer(next_s: object) -> bytes:
    return json.dumps({"next_s": next_s, "expires": 0}).encode()


def test_the_join_goes_out_beside_the_play_request() -> None:
    player = Player(URL, PlayerConfig("v", session_url="/session/heartbeat"), random.Random(1))
    multivariant, join = player.start(100.0)
    assert multivariant.kind == "multivariant"
    assert join.kind == "session" and join.not_before == 100.0
    assert join.url == LEASE_URL + "?join=1"  # no CMCD on the lease's requests
    assert join.timeout == SESSION_RETRY.timeout


def test_without_a_session_url_the_player_sends_none() -> None:
    player = Player(URL, PlayerConfig("v"), random.Random(1))
    assert [r.kind for r in player.start(0.0)] == ["multivariant"]


def test_heartbeats_follow_the_interval_the_origin_names() -> None:
    player = Player(URL, PlayerConfig("v", session_url="/session/heartbeat"), random.Random(1))
    _, join = player.start(100.0)
    (beat,) = player.on_response(join.id, 200, answer(9.25), 40, 100.1)
    assert beat.kind == "session" and beat.url == LEASE_URL
    assert beat.not_before == pytest.approx(109.35)
    assert player.wanted(beat.id)  # the driver sends it then
    (following,) = player.on_response(beat.id, 200, answer(11.0), 40, 109.4)
    assert following.not_before == pytest.approx(120.4)
    assert player.ledger.by_status["session"] == {"200": 2}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"too_many_streams\n", "too_many_streams"),
        (b"ended_by_newer_stream\n", "ended_by_newer_stream"),
        (b"", "http_403"),
        (b"\x1b[31mbad\nmore", "[31mbad"),  # not printable: dropped
    ],
)
def test_a_refused_join_is_a_start_failure_naming_the_reason(body: bytes, reason: str) -> None:
    player = Player(URL, PlayerConfig("v", session_url="/session/heartbeat"), random.Random(1))
    _, join = player.start(0.0)
    assert player.on_response(join.id, 403, body, len(body), 0.2) == []
    outcome = player.outcome(1.0)
    assert player.finished and player.status == "start_failure" and outcome.start_failed
    assert outcome.fatal_error == f"session refused: {reason}"


def test_a_lapsed_lease_ends_a_viewer_who_was_watching_as_fatal() -> None:
    player, server, _ = watch(seconds=12.0)
    assert player.status == "watching" and player.outcome(server.now).startup_s is not None
    flights = player.ledger.in_flight.values()
    (pending,) = [f.request for f in flights if f.request.kind == "session"]
    step = player.on_response(pending.id, 403, b"lease_expired\n", 14, server.now)
    assert step == [] and player.status == "fatal"
    assert player.outcome(server.now).fatal_error == "session refused: lease_expired"


def test_an_origin_without_lease_endpoints_gets_no_more_heartbeats() -> None:
    player = Player(URL, PlayerConfig("v", session_url="/session/heartbeat"), random.Random(1))
    _, join = player.start(0.0)
    assert player.on_response(join.id, 404, b"not found\n", 10, 0.1) == []
    assert not player.finished and player.status == "watching"


def test_failures_are_retried_with_backoff_then_the_viewer_keeps_the_regular_interval() -> None:
    player = Player(URL, PlayerConfig("v", session_url="/session/heartbeat"), random.Random(3))
    _, join = player.start(0.0)
    (beat,) = player.on_response(join.id, 200, answer(10.0), 40, 0.1)
    now = beat.not_before
    retries = []
    for failure in ("timeout", 503, 429):
        if isinstance(failure, str):
            (beat,) = player.on_error(beat.id, failure, now)
        else:
            (beat,) = player.on_response(beat.id, failure, b"", 0, now)
        retries.append(beat.retry)
        assert 0 <= beat.not_before - now <= 2.0 ** (beat.retry - 1)  # full jitter below the cap
        now = beat.not_before
    assert retries == [1, 2, 3]
    (beat,) = player.on_response(beat.id, 500, b"", 0, now)  # retries spent: one interval on
    assert beat.retry == 0 and beat.not_before == pytest.approx(now + 10.0)
    assert not player.finished  # a lease store in trouble does not stop the show


@pytest.mark.parametrize(
    ("body", "interval"),
    [
        (answer(0.0), MIN_INTERVAL),
        (answer(-5), MIN_INTERVAL),
        (answer(1e9), MAX_INTERVAL),
        (answer(7), 7.0),
    ],
)
def test_next_s_is_bounded(body: bytes, interval: float) -> None:
    lease = SessionLease(LEASE_URL)
    step = lease.on_answer(200, body, 50.0, random.Random(1))
    assert step == Beat(LEASE_URL, 50.0 + interval, 0)


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b"[]", b'{"next_s": "9"}', b'{"next_s": true}', b'{"next_s": NaN}', b"\xff"],
)
def test_a_broken_200_is_a_failure_retried_not_a_crash(body: bytes) -> None:
    lease = SessionLease(LEASE_URL, SESSION_RETRY.without_jitter())
    lease.joined = True
    assert lease.on_answer(200, body, 50.0, random.Random(1)) == Beat(LEASE_URL, 51.0, 1)


def test_after_a_refusal_nothing_more_is_sent() -> None:
    lease = SessionLease(LEASE_URL)
    assert lease.on_answer(401, b"revoked\n", 1.0, random.Random(1)) == Refused("revoked")
    assert lease.on_answer(200, answer(5), 2.0, random.Random(1)) is None
    assert lease.on_failure(3.0, random.Random(1)) is None


def test_a_join_that_failed_is_retried_as_a_join_until_one_is_admitted() -> None:
    lease = SessionLease(LEASE_URL, SESSION_RETRY.without_jitter())
    join_url = LEASE_URL + "?join=1"
    assert lease.on_answer(429, b"heartbeat_too_soon\n", 0.0, random.Random(1)) == Beat(
        join_url, 1.0, 1
    )
    assert lease.on_failure(1.0, random.Random(1)) == Beat(join_url, 3.0, 2)
    assert lease.on_answer(200, answer(10), 3.0, random.Random(1)) == Beat(LEASE_URL, 13.0, 0)
    assert lease.on_failure(13.0, random.Random(1)) == Beat(LEASE_URL, 14.0, 1)


def test_a_session_url_with_a_query_keeps_it() -> None:
    lease = SessionLease(LEASE_URL + "?token=abc")
    assert lease.join(0.0).url == LEASE_URL + "?token=abc&join=1"


# ---------------------------------------------------------------- through the scripted origin


class LeaseEndpoint:
    """A session endpoint over a real lease table (the account and session come from the query
    here; the origin's reads them from the playback token — ``access.heartbeat``)."""

    def __init__(self, policy: LeasePolicy) -> None:
        self.leases = LeaseTable(policy)
        self.rng = random.Random(9)

    def __call__(self, request: OriginRequest, now: float) -> Response:
        args = dict(pair.partition("=")[::2] for pair in request.query.split("&"))
        account, session = args["account"], args["session"]
        if args.get("join") == "1":
            admission = self.leases.admit(account, session, now)
        else:
            admission = self.leases.heartbeat(account, session, now)
        if not admission.admitted:
            return Response(403, (admission.reason + "\n").encode())
        next_s = self.leases.policy.jittered_interval(self.rng)
        return Response(200, answer(round(next_s, 3)), "application/json")


def watch(
    seconds: float, session: str = "s1", endpoint: LeaseEndpoint | None = None
) -> tuple[Player, ScriptedServer, LeaseEndpoint]:
    endpoint = endpoint or LeaseEndpoint(LeasePolicy(max_streams=1, ttl=9, heartbeat_interval=3))
    event = make_event()
    app = OriginApp(event, endpoints={"/session/heartbeat": endpoint})
    server = ScriptedServer(app, LadderFeeder(event))
    config = PlayerConfig(session, session_url=f"/session/heartbeat?account=acct&session={session}")
    player = Player(URL, config, random.Random(2))
    start = EPOCH + 10.0
    server.run(player, start, start + seconds)
    return player, server, endpoint


def test_a_viewer_holds_its_lease_while_it_watches_and_a_second_stream_is_refused() -> None:
    player, server, endpoint = watch(seconds=30.0)
    beats = server.kinds("session")
    assert urlsplit(beats[0].request.url).query.endswith("join=1")
    gaps = [b.at - a.at for a, b in itertools.pairwise(beats)]
    assert len(beats) >= 9 and all(2.3 <= gap <= 3.7 for gap in gaps)  # 3 s ± 20 %, + RTT
    assert {b.status for b in beats} == {200}
    assert player.status == "watching" and player.outcome(server.now).stalls == 0
    second, _, _ = watch(seconds=5.0, session="s2", endpoint=endpoint)
    assert second.status == "start_failure"
    assert second.outcome(EPOCH + 20.0).fatal_error == "session refused: too_many_streams"
