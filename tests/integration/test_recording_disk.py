"""A recording disk that fills up mid-event (a real tmpfs of 2 MB, real ENOSPC): live keeps serving
from memory, the loss is logged once and counted in /metrics, the recording resumes when space
returns, and the VOD marks what it lost with EXT-X-GAP — never a crash."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from livecast.config import load_config
from livecast.hls.playlist import parse_media_playlist
from livecast.pipeline import LivePipeline
from livecast.store.archive import RecordedRendition
from tests.requirements import skip_missing

pytestmark = pytest.mark.integration


@contextlib.contextmanager
def small_disk(path: Path, size: str) -> Iterator[Path]:
    path.mkdir()
    if os.geteuid() != 0:
        skip_missing("tmpfs", "not root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        skip_missing("tmpfs", mounted.stderr.strip())
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def grow(path: Path, size: str) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(path)], check=True)


async def get(url: str) -> tuple[int, bytes]:
    def fetch() -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    return await asyncio.to_thread(fetch)


async def until(condition: object, timeout: float, what: str) -> None:
    assert callable(condition)
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"{what} within {timeout} s"
        await asyncio.sleep(0.2)


async def test_a_full_disk_leaves_a_gap_and_never_stops_the_show(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="livecast.store.archive")
    with small_disk(tmp_path / "disk", "2m") as disk:
        config = load_config(None, env={}, overrides={"port": 0, "window": 12.0})
        record = dataclasses.replace(config.record, dir=str(disk), fsync="off")
        live = LivePipeline(dataclasses.replace(config, record=record))
        async with live.running():
            assert live.recording is not None
            video = live.recording.open("main", "720p")
            assert isinstance(video, RecordedRendition)
            await until(lambda: video.errors > 0, 20.0, "the disk fills up")
            rendition = live.event.renditions["720p"]
            full_at = rendition.last_complete_msn()
            await until(
                lambda: (rendition.last_complete_msn() or 0) >= (full_at or 0) + 2,
                10.0,
                "live goes on",
            )
            newest = rendition.last_complete_msn()
            status, _ = await get(f"{live.base_url}/live/720p/seg-{newest}.m4s")
            assert status == 200  # from memory, while the disk refuses it
            await asyncio.sleep(1.2)  # the metrics are updated every second
            _, metrics = await get(f"{live.base_url}/metrics")
            assert b'livecast_record_errors_total{stream="main",rendition="720p"}' in metrics
            assert b'livecast_record_errors_total{stream="main",rendition="720p"} 0' not in metrics

            for path in disk.glob("main/*/seg-*.m4s"):  # the operator frees space…
                if int(path.name.split("-")[1].split(".")[0]) < (full_at or 0) - 6:
                    path.unlink()
            grow(disk, "64m")  # …and grows the disk
            recorded = video.index.count
            await until(lambda: video.index.count >= recorded + 3, 15.0, "recording resumes")
            await live.end_event()
            status, body = await get(f"{live.base_url}/live/720p/index.m3u8")
            vod = parse_media_playlist(body.decode())
            assert status == 200 and vod.endlist and vod.playlist_type == "VOD"
            gaps = [vod.media_sequence + i for i, e in enumerate(vod.segments) if e.gap]
            assert gaps and video.gap_segments == len(gaps)
            assert gaps == list(range(gaps[0], gaps[0] + len(gaps)))  # one outage, one gap
            msns = [vod.media_sequence + i for i in range(len(vod.segments))]
            assert gaps[-1] < msns[-1]  # recorded again after the gap
            status, _ = await get(f"{live.base_url}/live/720p/seg-{gaps[0]}.m4s")
            assert status in (200, 404)  # in the live window's memory, or lost for good
            outage_logs = [r for r in caplog.records if "main/720p" in r.getMessage()]
            assert sum("cannot write" in r.getMessage() for r in outage_logs) == 1
