"""Broken encoder output: the packager refuses it with one clear log line, the encoder is
restarted, the playlist continues after a discontinuity and the origin never stops serving."""

from __future__ import annotations

import logging

import pytest

from livecast.pipeline import LivePipeline
from tests.integration.test_pipeline import aget, playlist_after_restart

pytestmark = pytest.mark.integration


async def test_garbage_on_an_encoder_pipe_restarts_the_encoder(
    pipeline: LivePipeline, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    generation = pipeline.event.generation
    pid = pipeline.supervisor.pid
    pipeline._on_data("480p", generation, b"\x00\x00\x00\x03junk")  # a box of size 3
    url = f"{pipeline.base_url}/live/480p/index.m3u8"
    status, _ = await aget(url)
    assert status == 200
    await playlist_after_restart(url)
    assert pipeline.event.generation > generation
    assert pipeline.supervisor.pid != pid
    errors = [r.getMessage() for r in caplog.records if r.name == "livecast.pipeline"]
    assert len(errors) == 1 and "unusable output from FFmpeg on 480p" in errors[0]
    _, metrics = await aget(f"{pipeline.base_url}/metrics")
    assert b'livecast_packager_media_errors_total{rendition="480p"} 1' in metrics
