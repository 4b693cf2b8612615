"""Many events on one server: each event's key publishes to its own stream (``/live/<id>/…``),
and one event's broken encoder (a codec FFmpeg cannot decode) is refused with a clear log line
and a backoff while the other event plays on undisturbed."""

from __future__ import annotations

import asyncio
import dataclasses
import logging

import pytest

from livecast.config import load_config
from livecast.ingest.settings import EventKeys
from livecast.pipeline import LivePipeline
from tests.integration.test_contribution import KEY, aget, publish, stop
from tests.integration.test_rtmp_server import ScriptedPublisher

pytestmark = pytest.mark.integration

SECOND_KEY = "second-event-key-0044"
THIRD_KEY = "third-event-key-00045"


def make_pipeline() -> LivePipeline:
    env = {"LIVECAST_STREAM_KEY": KEY, "LIVECAST_STREAM_KEY_SECOND": SECOND_KEY}
    config = load_config(None, env=env, overrides={"port": 0, "source": "rtmp"})
    config = dataclasses.replace(
        config,
        ingest=dataclasses.replace(config.ingest, rtmp_port=0),
        events=(EventKeys("second", SECOND_KEY), EventKeys("third", THIRD_KEY)),
    )
    return LivePipeline(config.validate())


async def test_each_key_publishes_its_own_event_and_a_broken_one_leaves_the_others_alone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="livecast")
    pipeline = make_pipeline()
    async with pipeline.running(ready=False):
        (ingest,) = pipeline.ingest_urls
        base = pipeline.base_url
        main = await publish(f"{ingest}/{KEY}", 30.0)
        second = await publish(f"{ingest}/{SECOND_KEY}", 30.0, audio=False)
        broken = None
        try:
            await pipeline.wait_ready(timeout=20)
            await pipeline.wait_ready(timeout=20, stream="second")
            for path in ("/live/main.m3u8", "/live/main/main.m3u8", "/live/second/main.m3u8"):
                assert (await aget(base + path))[0] == 200, path
            assert (await aget(f"{base}/live/third/main.m3u8"))[0] == 503  # no encoder yet
            assert (await aget(f"{base}/live/fourth/main.m3u8"))[0] == 404  # no such event
            main_source = pipeline.contributions["main"]
            version_before = pipeline.channels["main"].event.version
            runs_before = main_source.stats.runs
            # the third event's encoder sends a video codec FFmpeg does not know (FLV CodecID 13)
            assert pipeline.rtmp is not None
            broken = await ScriptedPublisher.publishing(pipeline.rtmp.port, THIRD_KEY)
            for n in range(120):
                payload = bytes([0x1D if n % 30 == 0 else 0x2D]) + bytes(200)
                chunk = broken.chunks.write(6, 9, payload, stream_id=1, timestamp=n * 33)
                broken.writer.write(chunk)
                await broken.writer.drain()
                await asyncio.sleep(0.033)
            third = pipeline.contributions["third"]
            assert third.stats.quick_failures >= 1
            assert third.stats.runs <= 3  # backed off: not one FFmpeg per keyframe
            assert (await aget(f"{base}/live/third/main.m3u8"))[0] == 503
            assert main_source.stats.runs == runs_before  # the other events never noticed
            assert main_source.on_air == "primary" and main.returncode is None
            assert pipeline.channels["main"].event.version > version_before  # still live
        finally:
            if broken is not None:
                broken.writer.close()
            await stop(main)
            await stop(second)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("transcode run" in e and "while the encoder publishes" in e for e in errors), errors
    assert KEY not in caplog.text and SECOND_KEY not in caplog.text and THIRD_KEY not in caplog.text
