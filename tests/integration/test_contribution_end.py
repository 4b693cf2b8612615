"""The end-of-event flag of a contribution: with ``ingest.end_on_unpublish`` the encoder that
stops cleanly (FCUnpublish/deleteStream — OBS's "Stop Streaming", FFmpeg at the end of its input)
ends the event: no slate, every media playlist gets EXT-X-ENDLIST, the recording is VOD at the
same URLs and holds what was published. Without the flag the same stop is an input loss (slate)."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest

from livecast.config import load_config
from livecast.hls.playlist import parse_media_playlist
from livecast.pipeline import LivePipeline
from tests.conftest import need

from .test_contribution import KEY, aget, publish

pytestmark = pytest.mark.integration
SECONDS = 6.0


async def test_a_clean_unpublish_ends_the_recorded_event(tmp_path: Path) -> None:
    need("ffmpeg")
    config = load_config(
        None, env={"LIVECAST_STREAM_KEY": KEY}, overrides={"port": 0, "source": "rtmp"}
    )
    ingest = dataclasses.replace(config.ingest, rtmp_port=0, end_on_unpublish=True)
    record = dataclasses.replace(config.record, dir=str(tmp_path), fsync="off")
    pipeline = LivePipeline(dataclasses.replace(config, ingest=ingest, record=record))
    async with pipeline.running(ready=False):
        url = f"{pipeline.ingest_urls[0]}/{KEY}"
        publisher = await publish(url, SECONDS)
        assert await asyncio.wait_for(publisher.wait(), SECONDS + 20) == 0
        for _ in range(100):  # the ladder drains, then the event ends
            if pipeline.event.ended:
                break
            await asyncio.sleep(0.1)
        assert pipeline.event.ended
        status, body, _ = await aget(f"{pipeline.base_url}/live/720p/index.m3u8")
        vod = parse_media_playlist(body.decode())
        assert status == 200 and vod.endlist and vod.playlist_type == "VOD"
        assert sum(s.duration for s in vod.segments) == pytest.approx(SECONDS, abs=2.0)
        assert not any(s.discontinuity for s in vod.segments)  # no slate was put on air
        on_air = pipeline.registry.get("livecast_ingest_on_air")
        assert on_air is not None and on_air.value("slate", "main") == 0.0
