"""The adapter's answer cache by request target: reusable answers until notify(), permanent ones
for good, nothing else — and never for HEAD or a held request. The gate comes before it: a refused
request never gets a cached answer, never parks, and its refusal is never cached."""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable

from livecast.origin.app import OriginApp
from livecast.origin.contract import Hold, Request, Response
from livecast.origin.gate import Refusal, Rule, RuleGate, refuse_streams
from livecast.origin.http import OriginServer
from livecast.origin.streams import StreamRegistry
from livecast.telemetry.metrics import Registry
from tests.integration.test_http_adapter import (
    Client,
    FakeClock,
    FakeHandler,
    Serve,
    requests_counted,
    serve,
    until,
)
from tests.unit.synth import Feeder, make_event

__all__ = ["serve"]  # the fixture, shared with the adapter tests


class CachingHandler(FakeHandler):
    def __init__(self) -> None:
        super().__init__()
        self.version = 0

    def handle(self, request: Request, now: float) -> Response | Hold:
        self.requests.append(request)
        if request.path == "/playlist":
            body = f"v{self.version} {request.query}".encode()
            return Response(200, body, object_type="playlist-plain", reusable=True)
        if request.path == "/part":
            return Response(200, b"part", object_type="part", permanent=True)
        if request.path == "/fresh":
            return Response(200, f"v{self.version}".encode())
        return super().handle(request, now)

    def resume(self, key: Hashable, now: float) -> Response | None:
        return None


async def test_reusable_answers_last_until_notify(serve: Serve) -> None:
    server, handler = await serve(CachingHandler())
    assert isinstance(handler, CachingHandler)
    client = await Client.connect(server.port)
    for _ in range(3):
        client.get("/playlist?_HLS_msn=5")
        assert (await client.reply()).body == b"v0 _HLS_msn=5"
    assert len(handler.requests) == 1
    client.get("/playlist?_HLS_msn=6")  # another target is another entry
    assert (await client.reply()).body == b"v0 _HLS_msn=6"
    handler.version = 1
    server.notify()
    client.get("/playlist?_HLS_msn=5")
    assert (await client.reply()).body == b"v1 _HLS_msn=5"
    assert len(handler.requests) == 3
    client.close()


async def test_permanent_answers_survive_notify_and_others_are_not_kept(serve: Serve) -> None:
    server, handler = await serve(CachingHandler())
    client = await Client.connect(server.port)
    for target in ("/part", "/fresh", "/part", "/fresh"):
        client.get(target)
        await client.reply()
        server.notify()
    paths = [r.path for r in handler.requests]
    assert paths == ["/part", "/fresh", "/fresh"]
    client.get("/part", method="HEAD")
    reply = await client.reply(head=True)
    assert reply.status == 200 and reply.headers["content-length"] == "4"
    assert [r.method for r in handler.requests].count("HEAD") == 1  # HEAD bypasses the cache
    client.close()


async def test_metrics_count_cached_answers_too(serve: Serve) -> None:
    server, _ = await serve(CachingHandler())
    client = await Client.connect(server.port)
    for _ in range(4):
        client.get("/part")
        await client.reply()
    series = dict(server.registry.get("livecast_origin_requests_total").series())  # type: ignore[union-attr]
    assert series[("part", "200")] == 4
    client.close()


def test_response_flags_default_to_not_cached() -> None:
    response = Response(200, b"x")
    assert not response.reusable and not response.permanent
    assert dataclasses.replace(response, reusable=True) != response


async def test_a_held_target_is_held_again_without_asking_the_handler(serve: Serve) -> None:
    server, handler = await serve()
    first, second = await Client.connect(server.port), await Client.connect(server.port)
    first.get("/wait?k1")
    second.get("/wait?k1")
    assert await first.nothing_within(0.2) and await second.nothing_within(0.01)
    assert [r.path for r in handler.requests] == ["/wait"]
    handler.ready["k1"] = Response(200, b"published", object_type="playlist-blocking")
    server.notify()
    assert (await first.reply()).body == b"published"
    assert (await second.reply()).body == b"published"
    first.close()
    second.close()


async def test_a_cache_key_function_lets_per_viewer_arguments_share_an_answer() -> None:
    handler = CachingHandler()
    server = OriginServer(
        handler, Registry(), cache_key=lambda target: target.partition(b"?CMCD=")[0]
    )
    await server.start("127.0.0.1", 0)
    client = await Client.connect(server.port)
    try:
        for sid in ("a", "b", "c"):
            client.get(f"/playlist?CMCD=sid%3D{sid}")
            assert (await client.reply()).body == b"v0 CMCD=sid%3Da"  # the first viewer's answer
    finally:
        client.close()
        await server.stop()
    assert len(handler.requests) == 1


# --- the gate, before the answer cache and the parking ---------------------------------------

DENY = "X-Deny: 1\r\n"


def denied(request: Request, now: float) -> bool:
    return ("x-deny", "1") in request.headers


DENY_GATE = RuleGate([Rule(denied)])


async def test_a_cached_answer_is_never_served_to_a_refused_request(serve: Serve) -> None:
    server, handler = await serve(CachingHandler(), gate=DENY_GATE)
    client = await Client.connect(server.port)
    for target in ("/playlist?_HLS_msn=5", "/part"):
        client.get(target)  # warms the answer cache
        assert (await client.reply()).status == 200
        client.get(target, extra=DENY)
        refused = await client.reply()
        assert (refused.status, refused.body) == (403, b"forbidden\n")
        assert refused.headers["cache-control"] == "no-store"
        assert refused.headers["connection"] == "keep-alive"
        client.get(target, method="HEAD", extra=DENY)
        assert (await client.reply(head=True)).status == 403
        client.get(target)  # the cached answer is still there for those allowed
        assert (await client.reply()).status == 200
    assert [r.path for r in handler.requests] == ["/playlist", "/part"]
    assert requests_counted(server, "other", 403) == 4
    client.close()


async def test_a_refusal_is_never_cached(serve: Serve) -> None:
    server, handler = await serve(CachingHandler(), gate=DENY_GATE)
    client = await Client.connect(server.port)
    client.get("/part", extra=DENY)
    assert (await client.reply()).status == 403
    client.get("/part")
    reply = await client.reply()
    assert (reply.status, reply.body) == (200, b"part")
    assert [r.path for r in handler.requests] == ["/part"]
    client.close()


async def test_the_gate_sees_now_and_the_arguments_the_cache_key_drops(serve: Serve) -> None:
    """As a signed playback token will: ``?exp=`` does not change the answer, so the cache key
    drops it, yet an expired one is refused even when the answer is cached."""
    clock = FakeClock(1000.0)

    def token_expired(request: Request, now: float) -> bool:
        return float(request.query.partition("exp=")[2] or 0) <= now

    gate = RuleGate([Rule(token_expired, Refusal("token expired", 401))])
    server, handler = await serve(
        CachingHandler(), clock=clock, gate=gate, cache_key=lambda t: t.partition(b"?exp=")[0]
    )
    client = await Client.connect(server.port)
    client.get("/part?exp=1010")
    assert (await client.reply()).status == 200
    client.get("/part?exp=999")
    assert (await client.reply()).status == 401
    clock.now = 1010.0
    client.get("/part?exp=1010")
    assert (await client.reply()).body == b"token expired\n"
    client.get("/part?exp=2000")
    assert (await client.reply()).body == b"part"
    assert len(handler.requests) == 1
    client.close()


async def test_a_refused_request_never_parks(serve: Serve) -> None:
    server, handler = await serve(gate=DENY_GATE)
    waiting, refused = await Client.connect(server.port), await Client.connect(server.port)
    waiting.get("/wait?k1")  # parks, and its hold is remembered for the target
    await until(lambda: server.metrics.blocked.value == 1)
    refused.get("/wait?k1", extra=DENY)
    reply = await refused.reply()
    assert (reply.status, reply.headers["cache-control"]) == (403, "no-store")
    assert server.metrics.blocked.value == 1 and len(server.parking) == 1
    handler.ready["k1"] = Response(200, b"published", object_type="playlist-blocking")
    server.notify()
    assert (await waiting.reply()).body == b"published"
    assert await refused.nothing_within(0.05)
    assert [r.path for r in handler.requests] == ["/wait"]
    waiting.close()
    refused.close()


async def test_a_request_pipelined_behind_a_parked_one_meets_the_gate_too(serve: Serve) -> None:
    server, handler = await serve(gate=DENY_GATE)
    client = await Client.connect(server.port)
    client.get("/wait?k2")
    client.get("/echo/behind", extra=DENY)
    client.get("/echo/allowed")
    await until(lambda: server.metrics.blocked.value == 1)
    handler.ready["k2"] = Response(200, b"published", object_type="playlist-blocking")
    server.notify()
    assert (await client.reply()).body == b"published"
    assert (await client.reply()).status == 403
    assert (await client.reply()).body == b"/echo/allowed?"
    client.close()


async def test_streams_refused_by_id_over_the_real_origin(serve: Serve) -> None:
    streams = StreamRegistry()
    for stream_id in ("main", "paid"):
        event = make_event()
        Feeder(event).advance_to(8.0)
        streams.add(stream_id, event)
    app = OriginApp.for_streams(streams)
    gate = RuleGate([refuse_streams(["paid"])])
    server = OriginServer(app, Registry(), cache_key=app.cache_key, gate=gate)
    await server.start("127.0.0.1", 0)
    client = await Client.connect(server.port)
    try:
        for target, status in [
            ("/live/main/main.m3u8", 200),
            ("/live/main.m3u8", 200),
            ("/live/paid/main.m3u8", 403),
            ("/live/%70aid/720p/index.m3u8", 403),
            ("/live/main/720p/index.m3u8", 200),
            ("/live/paid/720p/index.m3u8?CMCD=sid%3D%22a%22", 403),
        ]:
            client.get(target)
            assert (await client.reply()).status == status, target
    finally:
        client.close()
        await server.stop()
