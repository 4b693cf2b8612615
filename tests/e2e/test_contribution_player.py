"""End to end: FFmpeg publishes RTMP, hls.js in headless Chromium plays the ladder.

The page is opened before the encoder publishes: it must say "waiting for the encoder" (not
fail), then play once the first keyframe has gone through the ladder.
"""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess

import pytest

from livecast.config import load_config
from livecast.pipeline import LivePipeline
from livecast.web.browser import find_chromium
from tests.e2e.watching import played, watch_until
from tests.integration.test_contribution import KEY, publish, stop
from tests.integration.test_srt_contribution import PASSPHRASE, caller_argv
from tests.requirements import skip_missing

pytestmark = pytest.mark.e2e


def contribution_pipeline(source: str, key: str) -> LivePipeline:
    """A pipeline taking ``source`` (rtmp/srt) on free ports; skipped without Chromium."""
    if find_chromium() is None:
        skip_missing("chromium")
    config = load_config(
        None, env={"LIVECAST_STREAM_KEY": key}, overrides={"port": 0, "source": source}
    )
    ingest = dataclasses.replace(config.ingest, rtmp_port=0, srt_port=0)
    return LivePipeline(dataclasses.replace(config, ingest=ingest))


def need_hlsjs(pipeline: LivePipeline) -> None:
    if "/hls.min.js" not in pipeline.app.static:
        skip_missing("hlsjs")


async def test_the_player_waits_for_the_encoder_then_plays_its_contribution() -> None:
    pipeline = contribution_pipeline("rtmp", KEY)
    async with pipeline.running(ready=False):
        need_hlsjs(pipeline)
        (ingest,) = pipeline.ingest_urls
        viewer = asyncio.ensure_future(watch_until(pipeline.player_url, 20, played(8.0)))
        await asyncio.sleep(3.0)  # the page is up and waiting
        publisher = await publish(f"{ingest}/{KEY}", 30.0)
        try:
            result = await viewer
        finally:
            await stop(publisher)
    summary = result.summary()
    assert result.fatal_error is None, summary
    waiting = [s.stats.raw.get("waiting") for s in result.samples if s.t < 2.5]
    assert waiting and all(w == "waiting for the encoder" for w in waiting), waiting
    assert result.final is not None and result.final.raw.get("waiting") is None
    assert result.advance >= 8.0, summary
    assert result.latency_p50 is not None and result.latency_p50 < 3.0, summary


async def test_hls_js_plays_through_the_slate_when_the_encoder_drops_for_5_s() -> None:
    """The encoder dies (SIGKILL) mid-show and a new one publishes 5 s later: the page keeps
    playing — the slate, then the programme after a discontinuity — without a fatal error."""
    pipeline = contribution_pipeline("rtmp", KEY)
    async with pipeline.running(ready=False):
        need_hlsjs(pipeline)
        (ingest,) = pipeline.ingest_urls
        source = pipeline.contribution
        assert source is not None
        first = await publish(f"{ingest}/{KEY}", 60.0)
        try:
            await pipeline.wait_ready(timeout=20)
            viewer = asyncio.ensure_future(watch_until(pipeline.player_url, 24, played(16.0)))
            await asyncio.sleep(6.0)  # playing the programme
            first.kill()  # the encoder crashes
        finally:
            await stop(first)
        await asyncio.sleep(5.0)
        second = await publish(f"{ingest}/{KEY}", 60.0)
        try:
            result = await viewer
        finally:
            await stop(second)
    summary = result.summary()
    assert [a[2] for a in source.aired] == ["primary", "slate", "primary"]
    assert result.fatal_error is None, summary
    assert result.final is not None and result.final.playing, summary
    assert result.advance >= 16.0, summary  # it played on through the loss, not stalled


async def test_hls_js_plays_an_srt_contribution() -> None:
    """OBS's SRT path: MPEG-TS over SRT (latency 120 ms, passphrase, Opus audio) → the ladder →
    hls.js in Chromium."""
    pipeline = contribution_pipeline("srt", PASSPHRASE)
    async with pipeline.running(ready=False):
        need_hlsjs(pipeline)
        (ingest,) = pipeline.ingest_urls
        publisher = await asyncio.create_subprocess_exec(
            *caller_argv(f"{ingest}&passphrase={PASSPHRASE}&latency=120000", 40.0, "opus"),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            await pipeline.wait_ready(timeout=25)
            result = await watch_until(pipeline.player_url, 15, played(8.0))
        finally:
            await stop(publisher)
    summary = result.summary()
    assert result.fatal_error is None, summary
    assert result.advance >= 8.0, summary
    assert result.latency_p50 is not None and result.latency_p50 < 3.0, summary
