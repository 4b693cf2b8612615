"""An encoder publishes to livecast over RTMP: real FFmpeg as the publisher (what OBS uses
underneath), the real ladder, the real origin; ffprobe reads every rung.

The publisher deliberately differs from the ladder (640×360 at 25 fps, GOP 2 s, 44.1 kHz mono
AAC): the ladder must come out as configured whatever the encoder sends.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import subprocess
import urllib.error
import urllib.request
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from livecast.config import load_config
from livecast.hls.playlist import parse_media_playlist, parse_multivariant_playlist
from livecast.pipeline import LivePipeline
from livecast.transcode.ffmpeg import find_ffmpeg
from tests.conftest import need

pytestmark = pytest.mark.integration

KEY = "obs-test-key-0042"


def fetch(url: str) -> tuple[int, bytes, dict[str, str]]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


async def aget(url: str) -> tuple[int, bytes, dict[str, str]]:
    return await asyncio.to_thread(fetch, url)


def publisher_argv(url: str, seconds: float, *, audio: bool = True) -> list[str]:
    argv = [find_ffmpeg(None), "-hide_banner", "-loglevel", "error", "-re"]
    argv += ["-f", "lavfi", "-i", f"testsrc2=size=640x360:rate=25:duration={seconds}"]
    if audio:
        argv += [
            "-re",
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency=440:sample_rate=44100:duration={seconds}",
        ]
    argv += ["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "50"]
    argv += ["-pix_fmt", "yuv420p"]
    if audio:
        argv += ["-c:a", "aac", "-ac", "1", "-ar", "44100"]
    return [*argv, "-f", "flv", url]


async def publish(url: str, seconds: float, *, audio: bool = True) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *publisher_argv(url, seconds, audio=audio),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


@pytest_asyncio.fixture
async def rtmp_pipeline() -> AsyncIterator[LivePipeline]:
    config = load_config(
        None, env={"LIVECAST_STREAM_KEY": KEY}, overrides={"port": 0, "source": "rtmp"}
    )
    config = dataclasses.replace(config, ingest=dataclasses.replace(config.ingest, rtmp_port=0))
    pipeline = LivePipeline(config)
    async with pipeline.running(ready=False):
        yield pipeline


async def stop(proc: asyncio.subprocess.Process) -> bytes:
    if proc.returncode is None:
        proc.kill()
    _, err = await asyncio.wait_for(proc.communicate(), 10)
    return err


async def ffprobe_stream(url: str) -> dict[str, object]:
    proc = await asyncio.create_subprocess_exec(
        need("ffprobe"), "-v", "error", "-show_streams", "-of", "json", url,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    (stream,) = json.loads(out)["streams"]
    assert isinstance(stream, dict)
    return stream


async def test_before_the_encoder_the_playlists_say_retry_and_then_every_rung_plays(
    rtmp_pipeline: LivePipeline,
) -> None:
    base = rtmp_pipeline.base_url
    status, body, headers = await aget(f"{base}/live/main.m3u8")
    assert status == 503 and headers.get("Retry-After") == "1", body
    (ingest,) = rtmp_pipeline.ingest_urls
    publisher = await publish(f"{ingest}/{KEY}", 12.0)
    try:
        await rtmp_pipeline.wait_ready(timeout=20)
        status, body, _ = await aget(f"{base}/live/main.m3u8")
        assert status == 200
        variants = parse_multivariant_playlist(body.decode())
        assert len(variants.variants) == 3
        expected = {"720p": (1280, 720), "480p": (854, 480), "360p": (640, 360)}
        for name, (width, height) in expected.items():
            stream = await ffprobe_stream(f"{base}/live/{name}/index.m3u8")
            assert (stream["codec_name"], stream["width"], stream["height"]) == (
                "h264",
                width,
                height,
            )
            assert stream["r_frame_rate"] == "30/1"
        audio = await ffprobe_stream(f"{base}/live/audio/index.m3u8")
        assert (audio["codec_name"], audio["sample_rate"], audio["channels"]) == ("aac", "48000", 2)
    finally:
        await stop(publisher)


async def test_a_wrong_key_is_refused_and_the_live_publisher_is_not_disturbed(
    rtmp_pipeline: LivePipeline, caplog: pytest.LogCaptureFixture
) -> None:
    (ingest,) = rtmp_pipeline.ingest_urls
    caplog.set_level(logging.INFO, logger="livecast")
    intruder = await publish(f"{ingest}/not-the-key-123", 3.0)
    await asyncio.wait_for(intruder.wait(), 15)
    await stop(intruder)
    assert intruder.returncode != 0
    assert rtmp_pipeline.contribution is not None
    assert rtmp_pipeline.contribution.stats.runs == 0  # nothing reached the transcoder
    publisher = await publish(f"{ingest}/{KEY}", 10.0, audio=False)  # no audio: silence added
    try:
        await rtmp_pipeline.wait_ready(timeout=20)
        second = await publish(f"{ingest}/{KEY}", 3.0)  # the key is live: refused (no takeover)
        await asyncio.wait_for(second.wait(), 15)
        await stop(second)
        assert second.returncode != 0
        assert publisher.returncode is None  # the live publisher keeps going
        playlist = parse_media_playlist(
            (await aget(f"{rtmp_pipeline.base_url}/live/audio/index.m3u8"))[1].decode()
        )
        assert playlist.segments
    finally:
        await stop(publisher)
    text = caplog.text
    assert KEY not in text and "not-the-key-123" not in text
    assert "wrong stream key" in text and "already has a publisher" in text


async def test_the_next_publisher_continues_the_stream_after_a_discontinuity(
    rtmp_pipeline: LivePipeline,
) -> None:
    (ingest,) = rtmp_pipeline.ingest_urls
    first = await publish(f"{ingest}/{KEY}", 5.0)
    await rtmp_pipeline.wait_ready(timeout=20)
    await asyncio.wait_for(first.wait(), 20)
    await stop(first)
    url = f"{rtmp_pipeline.base_url}/live/360p/index.m3u8"
    before = parse_media_playlist((await aget(url))[1].decode())
    second = await publish(f"{ingest}/{KEY}", 6.0)
    try:
        for _ in range(150):
            await asyncio.sleep(0.1)
            playlist = parse_media_playlist((await aget(url))[1].decode())
            if any(s.discontinuity for s in playlist.segments) and playlist.segments[-1].parts:
                break
        else:
            pytest.fail("no discontinuity after the second publisher's first keyframe")
        assert playlist.media_sequence + len(playlist.segments) > before.media_sequence + len(
            before.segments
        )
    finally:
        await stop(second)


async def test_with_takeover_a_second_publisher_replaces_the_first() -> None:
    config = load_config(
        None, env={"LIVECAST_STREAM_KEY": KEY}, overrides={"port": 0, "source": "rtmp"}
    )
    ingest_settings = dataclasses.replace(config.ingest, rtmp_port=0, takeover=True)
    pipeline = LivePipeline(dataclasses.replace(config, ingest=ingest_settings))
    async with pipeline.running(ready=False):
        (ingest,) = pipeline.ingest_urls
        first = await publish(f"{ingest}/{KEY}", 20.0)
        try:
            await pipeline.wait_ready(timeout=20)
            second = await publish(f"{ingest}/{KEY}", 20.0)
            try:
                await asyncio.wait_for(first.wait(), 15)  # the first one was disconnected
                assert pipeline.rtmp is not None and pipeline.rtmp.active_publishers == 1
                assert second.returncode is None
                assert pipeline.contribution is not None
                for _ in range(100):  # the second publisher's keyframe starts a new run
                    if pipeline.contribution.stats.runs >= 2:
                        break
                    await asyncio.sleep(0.1)
                assert pipeline.contribution.stats.runs == 2
            finally:
                await stop(second)
        finally:
            await stop(first)
