"""Broken encoder output: the packager refuses it with one clear log line, the source is asked
for a new run (the encoder restarts), the playlist continues after a discontinuity and the
origin never stops serving."""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable

import pytest

from livecast.hls.playlist import parse_media_playlist
from livecast.pipeline import LivePipeline
from tests.integration.test_pipeline import aget, playlist_after_restart

pytestmark = pytest.mark.integration


async def test_garbage_on_an_encoder_pipe_restarts_the_encoder(
    pipeline: LivePipeline, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    generation = pipeline.event.generation
    pid = pipeline.source.pid
    pipeline.publisher.on_data("480p", generation, b"\x00\x00\x00\x03junk")  # a box of size 3
    url = f"{pipeline.base_url}/live/480p/index.m3u8"
    status, _ = await aget(url)
    assert status == 200
    await playlist_after_restart(url)
    assert pipeline.event.generation > generation
    assert pipeline.source.pid != pid
    errors = [r.getMessage() for r in caplog.records if r.name == "livecast.pipeline"]
    assert len(errors) == 1 and "unusable media on 480p from the test source" in errors[0]
    _, metrics = await aget(f"{pipeline.base_url}/metrics")
    assert b'livecast_packager_media_errors_total{rendition="480p"} 1' in metrics


def corrupt_next_trun(forward: Callable[[str, int, bytes], None]) -> Callable[..., None]:
    """A tap on the encoder's pipes that gives the next 480p fragment a track run claiming far
    more samples than its box holds — a bit flip in the sample count, as a bad link would."""
    done = False

    def tap(rendition: str, generation: int, data: bytes) -> None:
        nonlocal done
        at = data.find(b"trun")
        if not done and rendition == "480p" and at >= 4:
            done = True
            count = at + 8  # box type, then version/flags (4 bytes), then sample_count
            data = data[:count] + struct.pack(">I", 0x7FFF_FFF0) + data[count + 4 :]
        forward(rendition, generation, data)

    return tap


async def test_a_corrupt_fragment_mid_event_and_the_rendition_recovers(
    pipeline: LivePipeline, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    url = f"{pipeline.base_url}/live/480p/index.m3u8"
    _, before = await aget(url)
    last_before = parse_media_playlist(before.decode()).last_part()
    assert last_before is not None
    generation = pipeline.event.generation
    source = pipeline.source
    source._on_data = corrupt_next_trun(source._on_data)  # type: ignore[attr-defined]
    pl = await playlist_after_restart(url)
    assert pipeline.event.generation == generation + 1
    restarted = next(i for i, s in enumerate(pl.segments) if s.discontinuity)
    assert pl.msn_of(restarted) > last_before[0]
    newest = pl.last_part()
    assert newest is not None
    # the new run's media is served: its newest part is downloadable
    part_uri = pl.segments[-1].parts[-1].uri
    status, body = await aget(f"{url.rsplit('/', 1)[0]}/{part_uri}")
    assert status == 200 and body[4:8] in (b"moof", b"styp")
    errors = [r.getMessage() for r in caplog.records if r.name == "livecast.pipeline"]
    assert len(errors) == 1 and "unusable media on 480p" in errors[0], errors
    assert "trun" in errors[0] or "sample" in errors[0], errors
    _, metrics = await aget(f"{pipeline.base_url}/metrics")
    assert b'livecast_packager_media_errors_total{rendition="480p"} 1' in metrics
    assert b"livecast_transcode_restarts_total 1" in metrics
