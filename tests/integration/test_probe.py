"""``livecast probe`` against the real live stack (FFmpeg → packager → origin) on 127.0.0.1, and
against a port where nothing listens."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest

from livecast.config import load_config
from livecast.errors import ProbeError
from livecast.pipeline import LivePipeline
from livecast.probe.client import probe, run_probe

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port  # closed again: nothing listens there


async def test_probe_follows_the_live_edge(capsys: pytest.CaptureFixture[str]) -> None:
    config = load_config(None, env={}, overrides={"port": 0})
    async with LivePipeline(config).running(timeout=30) as pipeline:
        report = await probe(pipeline.playlist_url, 6.0)
        assert report.ok, report.error
        assert report.media_url is not None and report.media_url.endswith("/720p/index.m3u8")
        assert report.errors == {}
        assert report.startup is not None and report.startup < 1.0
        # continuously: ≈ 3 parts/s, and never a gap of more than a few parts
        assert report.parts >= 12
        assert report.max_part_gap is not None and report.max_part_gap < 1.5
        assert report.latency is not None and report.latency["p50"] < 1.0, report.latency
        assert report.blocking_wait is not None

        exit_code = await run_probe(pipeline.playlist_url, 2.0, True, "360p")
        assert exit_code == 0
        printed = json.loads(capsys.readouterr().out)
        assert printed["ok"] is True and printed["media_url"].endswith("/360p/index.m3u8")
        assert printed["parts"] > 0 and printed["latency_s"]["p50"] > 0


async def test_probe_of_nothing_listening_fails_with_one_clear_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"http://127.0.0.1:{free_port()}/live/main.m3u8"
    with pytest.raises(ProbeError, match="connection refused"):
        await probe(url, 2.0)
    assert await run_probe(url, 2.0, False, None) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.strip().splitlines()
    assert line == f"livecast: probe: cannot load {url}: connection refused"


async def test_probe_of_a_non_hls_server_names_the_status() -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 10\r\n\r\nnot found\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(ProbeError, match=r"cannot load .*/live/main\.m3u8: HTTP 404"):
            await probe(f"http://127.0.0.1:{port}/live/main.m3u8", 2.0)
    finally:
        server.close()
        await server.wait_closed()
