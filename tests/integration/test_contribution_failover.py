"""Input loss and failover with real FFmpeg publishers: the slate goes on air when the only
input drops and the programme comes back after it; a silent primary hands over to the backup
and gets the air back once healthy. Frames are decoded from the renditions to tell the slate
from the programme."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import signal
import subprocess
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from livecast.config import load_config
from livecast.hls.playlist import parse_media_playlist
from livecast.pipeline import LivePipeline
from livecast.sources.slate import SLATE_RGB
from tests.conftest import need
from tests.integration.test_contribution import KEY, aget, publish, stop

pytestmark = pytest.mark.integration

BACKUP_KEY = "obs-backup-key-0043"


def make_pipeline(**ingest: object) -> LivePipeline:
    env = {"LIVECAST_STREAM_KEY": KEY, "LIVECAST_BACKUP_KEY": BACKUP_KEY}
    config = load_config(None, env=env, overrides={"port": 0, "source": "rtmp"})
    ingest.setdefault("backup_key", "")  # a single input unless the test gives the backup key
    settings = dataclasses.replace(config.ingest, rtmp_port=0, **ingest)  # type: ignore[arg-type]
    return LivePipeline(dataclasses.replace(config, ingest=settings))


@pytest_asyncio.fixture
async def single() -> AsyncIterator[LivePipeline]:
    pipeline = make_pipeline()
    async with pipeline.running(ready=False):
        yield pipeline


async def corner_rgb(base: str, rendition: str, init: str, uri: str) -> tuple[int, int, int]:
    """Mean colour of the top-left 32×32 pixels of a segment's first frame."""
    init_bytes = (await aget(f"{base}/live/{rendition}/{init}"))[1]
    status, segment, _ = await aget(f"{base}/live/{rendition}/{uri}")
    assert status == 200
    proc = await asyncio.create_subprocess_exec(
        need("ffmpeg"), "-v", "error", "-f", "mp4", "-i", "pipe:0", "-frames:v", "1",
        "-vf", "crop=32:32:0:0,scale=1:1", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1",
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(init_bytes + segment), 30)
    assert proc.returncode == 0 and len(out) == 3, err.decode()
    return out[0], out[1], out[2]


def is_slate(rgb: tuple[int, int, int]) -> bool:
    return all(abs(a - b) <= 10 for a, b in zip(rgb, SLATE_RGB, strict=True))


async def wait_for(predicate: object, timeout: float) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s")
        await asyncio.sleep(0.05)


async def test_the_slate_covers_a_5_s_input_loss_and_the_programme_returns(
    single: LivePipeline,
) -> None:
    (ingest,) = single.ingest_urls
    source = single.contribution
    assert source is not None
    first = await publish(f"{ingest}/{KEY}", 6.0)
    await single.wait_ready(timeout=20)
    await asyncio.wait_for(first.wait(), 20)  # the encoder stops: 5 s without input
    await stop(first)
    lost = time.monotonic()
    await wait_for(lambda: source.on_air == "slate", 5)
    slate_after = time.monotonic() - lost
    await asyncio.sleep(5.0 - (time.monotonic() - lost))
    second = await publish(f"{ingest}/{KEY}", 8.0)
    try:
        await wait_for(lambda: [a[2] for a in source.aired][-1:] == ["primary"], 15)
        await asyncio.sleep(4.5)  # two programme segments after the return
        base = single.base_url
        playlist = parse_media_playlist((await aget(f"{base}/live/360p/index.m3u8"))[1].decode())
    finally:
        await stop(second)
    assert [a[2] for a in source.aired] == ["primary", "slate", "primary"]
    assert 1.0 <= slate_after <= 2.5  # input_loss 1.5 s after the last media
    kinds, dates, init = [], [], None
    for segment in playlist.segments:
        init = segment.map.uri if segment.map is not None else init
        if segment.uri is None or segment.gap:
            continue  # still being produced; or a number this rendition has no media for
        assert init is not None and segment.pdt is not None
        rgb = await corner_rgb(base, "360p", init, segment.uri)
        kinds.append("slate" if is_slate(rgb) else "programme")
        dates.append(segment.pdt)
    collapsed = [k for i, k in enumerate(kinds) if i == 0 or kinds[i - 1] != k]
    assert collapsed == ["programme", "slate", "programme"], kinds
    assert sum(s.discontinuity for s in playlist.segments) == 2
    assert all(b >= a for a, b in itertools.pairwise(dates)), list(zip(kinds, dates, strict=True))
    span = dates[-1] - dates[0]  # the wall clock, not media time: the gap is in it too
    assert span == pytest.approx(2.0 * (len(dates) - 1), abs=4.0)
    metrics = (await aget(f"{base}/metrics"))[1].decode()
    assert 'livecast_ingest_switches_total{from="primary",to="slate",stream="main"} 1' in metrics
    assert 'livecast_ingest_switches_total{from="slate",to="primary",stream="main"} 1' in metrics


async def test_a_silent_primary_fails_over_to_the_backup_and_gets_the_air_back() -> None:
    pipeline = make_pipeline(backup_key=BACKUP_KEY, switch_back_after=3.0)
    async with pipeline.running(ready=False):
        (ingest,) = pipeline.ingest_urls
        source = pipeline.contribution
        assert source is not None
        primary = await publish(f"{ingest}/{KEY}", 30.0)
        backup = None
        try:
            await pipeline.wait_ready(timeout=20)
            backup = await publish(f"{ingest}/{BACKUP_KEY}", 30.0)
            await wait_for(lambda: source.switch.healthy("backup", time.monotonic()), 10)
            await asyncio.sleep(2.5)  # the backup has a keyframe cached (GOP 2 s)
            assert source.on_air == "primary"
            primary.send_signal(signal.SIGSTOP)  # the link stalls: no media, socket open
            stalled = time.monotonic()
            await wait_for(lambda: [a[2] for a in source.aired][-1:] == ["backup"], 5)
            switch_time = source.aired[-1][0] - stalled
            await asyncio.sleep(1.0)
            primary.send_signal(signal.SIGCONT)
            resumed = time.monotonic()
            await wait_for(lambda: [a[2] for a in source.aired][-1:] == ["primary"], 15)
            back_after = source.aired[-1][0] - resumed
            aired = [a[2] for a in source.aired]
            changes = [(s.before, s.after) for s in source.switch.switches]
            metrics = (await aget(f"{pipeline.base_url}/metrics"))[1].decode()
        finally:
            primary.send_signal(signal.SIGCONT)
            await stop(primary)
            if backup is not None:
                await stop(backup)
    assert aired == ["primary", "backup", "primary"]
    assert switch_time <= 1.5, f"backup on air {switch_time:.2f} s after the primary stalled"
    assert 3.0 <= back_after <= 7.0
    assert 'livecast_ingest_on_air{input="primary",stream="main"} 1' in metrics
    assert 'livecast_ingest_on_air{input="backup",stream="main"} 0' in metrics
    assert 'livecast_ingest_switches_total{from="primary",to="backup",stream="main"} 1' in metrics
    assert 'livecast_ingest_switch_gap_seconds{stream="main"} ' in metrics
    print(f"backup on air {switch_time:.2f} s after the primary stalled")
    assert changes == [(None, "primary"), ("primary", "backup"), ("backup", "primary")]
