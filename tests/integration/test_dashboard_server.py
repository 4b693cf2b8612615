"""The dashboard's HTTP/SSE adapter on 127.0.0.1: pages, /metrics, the event stream, a slow
listener dropped, too many refused; the feed scraping a real endpoint."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from livecast.dashboard.feed import DashboardFeed
from livecast.dashboard.server import HttpServer, SseHub
from livecast.dashboard.wire import frame, parse
from livecast.telemetry.metrics import CONTENT_TYPE, Registry

pytestmark = pytest.mark.integration

SRC = str(Path(__file__).resolve().parents[2] / "src")


async def request(port: int, raw: bytes, read_until: bytes | None = None) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    try:
        if read_until is None:
            return await asyncio.wait_for(reader.read(), 5)
        return await asyncio.wait_for(reader.readuntil(read_until), 5)
    finally:
        writer.close()


async def test_routes_head_404_and_bad_requests() -> None:
    server = HttpServer({"/metrics": lambda: (b"x_total 1\n", CONTENT_TYPE)})
    await server.start()
    try:
        answer = await request(server.port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and answer.endswith(b"\r\n\r\nx_total 1\n")
        assert b"Content-Type: text/plain; version=0.0.4" in answer
        head = await request(server.port, b"HEAD /metrics HTTP/1.1\r\n\r\n")
        assert b"Content-Length: 10\r\n" in head and head.endswith(b"\r\n\r\n")
        assert (await request(server.port, b"GET /nope HTTP/1.1\r\n\r\n")).startswith(
            b"HTTP/1.1 404"
        )
        assert (await request(server.port, b"DELETE / HTTP/1.1\r\n\r\n")).startswith(
            b"HTTP/1.1 405"
        )
        huge = b"GET / HTTP/1.1\r\nX: " + b"a" * 20_000 + b"\r\n\r\n"
        assert (await request(server.port, huge)).startswith(b"HTTP/1.1 431")
    finally:
        await server.stop()


async def test_event_stream_history_then_points_and_too_many_listeners_refused() -> None:
    hub = SseHub(max_clients=1, hello=lambda: [frame("[]", event="history")])
    server = HttpServer({}, hub)
    await server.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /events HTTP/1.1\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert b"Content-Type: text/event-stream" in head
        while not hub.clients:
            await asyncio.sleep(0.01)
        second = await request(server.port, b"GET /events HTTP/1.1\r\n\r\n")
        assert second.startswith(b"HTTP/1.1 503") and hub.refused == 1
        hub.publish(frame('{"t": 1}', event="point"))
        received = b""
        while len(parse(received)) < 2:
            received += await asyncio.wait_for(reader.read(4096), 5)
        events = parse(received)
        assert [(e.event, e.data) for e in events] == [("history", "[]"), ("point", '{"t": 1}')]
        writer.close()
    finally:
        await server.stop()


async def test_a_listener_that_does_not_read_is_dropped_and_counted() -> None:
    hub = SseHub(max_clients=4, backlog=4)
    server = HttpServer({}, hub)
    await server.start()
    try:
        slow_reader, slow = await asyncio.open_connection("127.0.0.1", server.port)
        fast_reader, fast = await asyncio.open_connection("127.0.0.1", server.port)
        for writer in (slow, fast):
            writer.write(b"GET /events HTTP/1.1\r\n\r\n")
        while len(hub.clients) < 2:
            await asyncio.sleep(0.01)
        received = 0

        async def read_fast() -> None:
            nonlocal received
            while chunk := await fast_reader.read(1 << 20):
                received += len(chunk)

        reading = asyncio.create_task(read_fast())
        big = frame("x" * (1 << 20))
        for _ in range(40):  # 40 MiB: more than the slow socket's buffers hold
            hub.publish(big)
            await asyncio.sleep(0.02)
        assert hub.dropped == 1 and len(hub.clients) == 1  # the slow one, only
        while received < 40 << 20:
            await asyncio.sleep(0.05)
        reading.cancel()
        slow.close()
        fast.close()
        del slow_reader
    finally:
        await server.stop()


async def test_feed_scrapes_an_endpoint_and_serves_points_and_its_own_metrics() -> None:
    registry = Registry()
    viewers = registry.gauge("livecast_rehearsal_viewers", "Viewers.")
    requests = registry.counter("livecast_rehearsal_requests_total", "Requests.")
    target = HttpServer({"/metrics": lambda: (registry.render(), CONTENT_TYPE)})
    await target.start()
    clock = [0.0]
    feed = DashboardFeed([target.url("/metrics"), "http://127.0.0.1:9/metrics"],
                         clock=lambda: clock[0])  # fmt: skip
    await feed.server.start()
    try:
        for second in range(3):
            viewers.set(5 + second)
            requests.inc(amount=100)
            clock[0] = float(second)
            await feed.step()
        history = json.loads(await _body(feed.server.port, "/history.json"))
        assert [p["viewers"] for p in history] == [5, 6, 7]
        assert history[-1]["viewer_rps"] == 100
        page = await _body(feed.server.port, "/")
        assert b"EventSource" in page and b"<svg" not in page[:100]
        own = (await _body(feed.server.port, "/metrics")).decode()
        assert 'livecast_dashboard_scrape_failures_total{url="http://127.0.0.1:9/metrics"} 3' in own
    finally:
        await feed.stop()
        await target.stop()


async def _body(port: int, path: str) -> bytes:
    answer = await request(port, f"GET {path} HTTP/1.1\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    return answer.split(b"\r\n\r\n", 1)[1]


async def test_livecast_dashboard_command_scrapes_serves_and_stops_on_sigterm() -> None:
    registry = Registry()
    registry.gauge("livecast_rehearsal_viewers", "Viewers.").set(12)
    target = HttpServer({"/metrics": lambda: (registry.render(), CONTENT_TYPE)})
    await target.start()
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "livecast", "dashboard", "--port", "0",
        "--scrape", target.url("/metrics"), stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    assert process.stderr is not None
    try:
        line = (await asyncio.wait_for(process.stderr.readline(), 30)).decode()
        match = re.match(r"dashboard: http://127\.0\.0\.1:(\d+)/", line)
        assert match, line
        port = int(match.group(1))
        history: list[dict[str, object]] = []
        while not history:
            await asyncio.sleep(0.2)
            history = json.loads(await _body(port, "/history.json"))
        assert history[-1]["viewers"] == 12
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 10) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await target.stop()


def test_livecast_dashboard_refuses_a_missing_or_bad_scrape_url() -> None:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    for args in ([], ["--scrape", "ftp://x/metrics"]):
        run = subprocess.run(
            [sys.executable, "-m", "livecast", "dashboard", "--port", "0", *args],
            capture_output=True, text=True, env=env, timeout=30,
        )  # fmt: skip
        assert run.returncode == 2 and "livecast dashboard:" in run.stderr, run.stderr


async def test_connections_beyond_the_limit_are_answered_503() -> None:
    hub = SseHub()
    server = HttpServer({"/": lambda: (b"page", "text/html")}, hub, max_connections=1)
    await server.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /events HTTP/1.1\r\n\r\n")  # holds its connection
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        refused = await request(server.port, b"GET / HTTP/1.1\r\n\r\n")
        assert refused.startswith(b"HTTP/1.1 503"), refused
        writer.close()
        while server.connections:
            await asyncio.sleep(0.01)
            hub.publish(frame("x"))  # the closed listener notices on its next event
        assert (await request(server.port, b"GET / HTTP/1.1\r\n\r\n")).endswith(b"page")
    finally:
        await server.stop()
