"""The adapter's answer cache by request target: reusable answers until notify(), permanent ones
for good, nothing else — and never for HEAD or a held request."""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable

from livecast.origin.contract import Hold, Request, Response
from livecast.origin.http import OriginServer
from livecast.telemetry.metrics import Registry
from tests.integration.test_http_adapter import Client, FakeHandler, Serve, serve

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
