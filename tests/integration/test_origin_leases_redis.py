"""Stream leases shared by two origins through one real redis-server (``access.redis_server`` on
127.0.0.1): the origin app over its HTTP adapter with the session endpoints wired as
``livecast serve`` wires them (``origin_access``: the token gate, the lease store named by
``[access] lease_store`` — origin A from its event file, origin B from
``$LIVECAST_LEASE_STORE`` — the endpoints awaited by the adapter, their figures on /metrics).

One stream per account: a session joined on A makes another session of the account refused
``too_many_streams`` on B; the end frees the slot. With Redis stopped, fail-open A admits and
fail-closed B refuses (503, to retry); Redis back, B admits. A heartbeat flood from one session
over a socket costs one Redis round trip; the rest are 429 and nothing else is stored."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from livecast.access.heartbeat import SessionEndpoints
from livecast.access.keys import KeyRing, keygen_stanza, load_key_ring
from livecast.access.redis_server import RedisServer
from livecast.access.tokens import TokenClaims, issue
from livecast.config import load_config
from livecast.origin.app import OriginApp
from livecast.origin.http import OriginServer
from livecast.origin_access import session_endpoints, token_gate
from livecast.telemetry.metrics import Registry
from tests.integration.test_http_adapter import Client, FakeClock, Reply
from tests.unit.synth import make_event

pytestmark = pytest.mark.integration

STORE_ANSWER_BOUND = 0.25 + 0.5  # the store timeout plus slack: an answer without Redis
FLOOR = 30.0 / 3 / 4  # lease_ttl 30 s → heartbeats every 10 s → a floor of 2.5 s


@dataclass
class Origin:
    """One origin: the app over its HTTP adapter, the session endpoints as the pipeline wires
    them. Its monotonic ``clock`` (the heartbeat floor's) is injected; the tokens and the store
    run on Unix time, as in production."""

    server: OriginServer
    sessions: SessionEndpoints
    ring: KeyRing
    clock: FakeClock

    def token(self, account: str, session: str) -> str:
        claims = TokenClaims("main", account, session, int(time.time()) + 600)
        return issue(claims, self.ring)

    async def get(self, client: Client, path: str, account: str, session: str) -> Reply:
        client.get(path, extra=f"Cookie: livecast_token={self.token(account, session)}\r\n")
        return await client.reply()

    async def metrics(self) -> dict[str, float]:
        client = await Client.connect(self.server.port)
        client.get("/metrics")
        text = (await client.reply()).body.decode()
        client.close()
        pattern = r"^(livecast_(?:lease_store|sessions)_\S+) (\S+)$"
        return {name: float(value) for name, value in re.findall(pattern, text, re.MULTILINE)}


@pytest.fixture
async def origins(
    tmp_path: Path, redis_server: RedisServer
) -> AsyncIterator[tuple[Origin, Origin]]:
    keys = tmp_path / "keys.toml"
    keys.write_text(keygen_stanza("k1"))
    ring = load_key_ring(keys, env={})
    access = f'[access]\ntokens = true\nkeys = "{keys}"\nmax_streams = 1\n'
    tables = {
        "a": (access + f'lease_store = "{redis_server.url}"\non_store_error = "open"\n', {}),
        "b": (access + 'on_store_error = "closed"\n', {"LIVECAST_LEASE_STORE": redis_server.url}),
    }
    made = []
    for name, (table, env) in tables.items():
        event = tmp_path / f"{name}.toml"
        event.write_text(table)
        config = load_config(event, env={})
        gate = token_gate(config, ())
        sessions = session_endpoints(config, gate, env=env)
        assert gate is not None and sessions is not None and sessions.leases is None  # Redis
        app = OriginApp(make_event())
        registry = Registry()
        clock = FakeClock()
        server = OriginServer(
            app,
            registry,
            clock=clock,
            cache_key=app.cache_key,
            gate=gate,
            async_endpoints=sessions.routes(),
            collectors=[sessions.collector(registry)],
        )
        await server.start("127.0.0.1", 0)
        made.append(Origin(server, sessions, ring, clock))
    yield made[0], made[1]
    for origin in made:
        await origin.server.stop()
        await origin.sessions.close()


def reason(reply: Reply) -> tuple[int, str]:
    return reply.status, reply.headers.get("x-livecast-reason", "")


JOIN, BEAT, END = "/session/heartbeat?join=1", "/session/heartbeat", "/session/end"


async def test_two_origins_share_the_limit_and_each_fails_its_own_way_without_redis(
    origins: tuple[Origin, Origin], redis_server: RedisServer
) -> None:
    a, b = origins
    on_a, on_b = await Client.connect(a.server.port), await Client.connect(b.server.port)
    assert (await a.get(on_a, JOIN, "acct", "s1")).status == 200
    assert reason(await b.get(on_b, JOIN, "acct", "s2")) == (403, "too_many_streams")
    assert (await a.get(on_a, END, "acct", "s1")).status == 204  # frees the slot …
    assert (await b.get(on_b, JOIN, "acct", "s3")).status == 200  # … for the other origin
    assert reason(await a.get(on_a, JOIN, "acct", "s4")) == (403, "too_many_streams")

    redis_server.stop()
    started = time.monotonic()
    admitted = await a.get(on_a, JOIN, "acct2", "s5")  # fail-open: admitted without Redis
    took_open = time.monotonic() - started
    started = time.monotonic()
    closed = await b.get(on_b, JOIN, "acct3", "s6")  # fail-closed: refused, to retry
    took_closed = time.monotonic() - started
    assert admitted.status == 200 and took_open < STORE_ANSWER_BOUND
    assert reason(closed) == (503, "lease_store_unavailable") and took_closed < STORE_ANSWER_BOUND
    assert closed.headers["retry-after"] == "5"
    a_figures, b_figures = await a.metrics(), await b.metrics()
    assert a_figures["livecast_lease_store_errors_total"] >= 1
    assert b_figures["livecast_lease_store_errors_total"] >= 1
    assert b_figures['livecast_sessions_answered_total{result="lease_store_unavailable"}'] == 1

    redis_server.start()  # back, empty: nobody is locked out
    b.clock.now += FLOOR  # the refused viewer retries (after Retry-After)
    assert (await b.get(on_b, JOIN, "acct3", "s6")).status == 200
    a.clock.now += FLOOR  # the next heartbeat of the stream admitted fail-open …
    assert (await a.get(on_a, BEAT, "acct2", "s5")).status == 200  # … re-registers it in Redis
    assert reason(await b.get(on_b, JOIN, "acct2", "s8")) == (403, "too_many_streams")
    b_figures = await b.metrics()
    assert b_figures['livecast_sessions_answered_total{result="admitted"}'] == 2
    assert b_figures['livecast_sessions_answered_total{result="too_many_streams"}'] == 2
    on_a.close()
    on_b.close()


async def test_a_heartbeat_flood_from_one_session_costs_one_round_trip_and_stores_nothing(
    origins: tuple[Origin, Origin], redis_server: RedisServer
) -> None:
    a, _ = origins
    client = await Client.connect(a.server.port)
    assert (await a.get(client, JOIN, "warm", "w1")).status == 200  # the scripts are loaded
    await a.sessions.store.heartbeat("warm", "w1", time.time())
    trips, evalsha = await a.metrics(), redis_server.commandstats()["evalsha"]
    flood = 60
    replies = [
        await a.get(client, JOIN if i % 3 == 0 else BEAT, "acct", "s1") for i in range(flood)
    ]
    assert replies[0].status == 200
    too_soon = replies[1:]
    assert {reason(reply) for reply in too_soon} == {(429, "heartbeat_too_soon")}  # none waited
    assert all(1 <= int(reply.headers["retry-after"]) <= 3 for reply in too_soon)
    after = await a.metrics()
    round_trips = "livecast_lease_store_round_trips_total"
    assert after[round_trips] - trips[round_trips] == 1  # the origin's count …
    assert redis_server.commandstats()["evalsha"] - evalsha == 1  # … and Redis' own agree
    answered = 'livecast_sessions_answered_total{result="heartbeat_too_soon"}'
    assert after[answered] == flood - 1
    stored = await a.sessions.store.client.keys("livecast:leases:*")  # type: ignore[attr-defined]
    assert sorted(key.decode() for key in stored) == [
        "livecast:leases:acct",
        "livecast:leases:acct:started",
        "livecast:leases:warm",
        "livecast:leases:warm:started",
    ]
    assert a.sessions.core.floor.stats().sessions == 2  # the origin remembers one entry each
    client.close()
