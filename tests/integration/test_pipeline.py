"""The live spine end to end with real FFmpeg, real sockets and real HLS readers (ffprobe, ffmpeg).

The tests that only read from the stack (ffprobe, ffmpeg, playlists, refused targets) share one
stack for the module (``live``); those that count its requests or kill its encoder start their
own (``pipeline``). Every stack is on 127.0.0.1 (port 0).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import signal
import subprocess
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from livecast.config import load_config
from livecast.hls.playlist import (
    MediaPlaylist,
    parse_media_playlist,
    parse_multivariant_playlist,
)
from livecast.pipeline import LivePipeline
from tests.conftest import need

pytestmark = pytest.mark.integration
shared_loop = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def live() -> AsyncIterator[LivePipeline]:
    """One running stack for the tests that only read from it."""
    async with LivePipeline(load_config(None, env={}, overrides={"port": 0})).running() as stack:
        yield stack


def fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


async def aget(url: str) -> tuple[int, bytes]:
    return await asyncio.to_thread(fetch, url)


async def playlist_after_restart(url: str, seconds: float = 10.0) -> MediaPlaylist:
    """Poll ``url`` until it lists a discontinuity followed by parts of the new encoder run."""
    for _ in range(int(seconds / 0.1)):
        await asyncio.sleep(0.1)
        status, body = await aget(url)
        if status == 200:
            pl = parse_media_playlist(body.decode())
            if any(s.discontinuity for s in pl.segments) and pl.segments[-1].parts:
                return pl
    pytest.fail(f"no discontinuity in {url} within {seconds:g} s of the encoder restart")


async def test_metrics_count_requests_by_object_type(pipeline: LivePipeline) -> None:
    await aget(pipeline.playlist_url)
    await aget(f"{pipeline.base_url}/live/720p/index.m3u8")
    await aget(f"{pipeline.base_url}/live/720p/nope.m4s")
    status, body = await aget(f"{pipeline.base_url}/metrics")
    text = body.decode()
    assert status == 200
    assert 'livecast_origin_requests_total{type="multivariant",status="200"} 1' in text
    assert 'livecast_origin_requests_total{type="playlist-plain",status="200"} 1' in text
    assert 'livecast_origin_requests_total{type="other",status="404"} 1' in text
    assert "livecast_origin_blocked_requests" in text
    assert 'livecast_packager_parts_total{rendition="720p"}' in text


async def test_encoder_killed_mid_event_restarts_after_a_discontinuity(
    pipeline: LivePipeline, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"{pipeline.base_url}/live/720p/index.m3u8"
    _, before = await aget(url)
    last_before = parse_media_playlist(before.decode()).last_part()
    assert last_before is not None
    caplog.set_level(logging.INFO, logger="livecast.transcode")
    pid = pipeline.source.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    status, _ = await aget(url)  # the origin keeps serving while the encoder is down
    assert status == 200
    pl = await playlist_after_restart(url)
    restarted = next(i for i, s in enumerate(pl.segments) if s.discontinuity)
    assert pl.segments[restarted].map is not None
    assert pl.msn_of(restarted) > last_before[0]
    status, _ = await aget(f"{url.rsplit('/', 1)[0]}/{pl.segments[restarted].map.uri}")
    assert status == 200
    lines = [
        r for r in caplog.records if r.name == "livecast.transcode" and "exited" in r.getMessage()
    ]
    assert len(lines) == 1, [r.getMessage() for r in caplog.records]
    assert "SIGKILL" in lines[0].getMessage()
    assert pipeline.source.pid not in (None, pid)


@shared_loop
async def test_ffprobe_sees_every_rendition(live: LivePipeline) -> None:
    ffprobe = need("ffprobe")
    expected = {
        "720p": ("h264", 1280, 720),
        "480p": ("h264", 854, 480),
        "360p": ("h264", 640, 360),
        "audio": ("aac", None, None),
    }
    for name, (codec, width, height) in expected.items():
        url = f"{live.base_url}/live/{name}/index.m3u8"
        proc = await asyncio.create_subprocess_exec(
            ffprobe,
            "-v",
            "error",
            "-show_streams",
            "-of",
            "json",
            url,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, err.decode()
        (stream,) = json.loads(out)["streams"]
        assert stream["codec_name"] == codec, name
        if width is not None:
            assert (stream["width"], stream["height"]) == (width, height)
        else:
            assert int(stream["sample_rate"]) == 48000


@shared_loop
async def test_ffmpeg_records_ten_seconds_of_each_rendition(
    live: LivePipeline, tmp_path: Path
) -> None:
    ffmpeg = need("ffmpeg")
    ffprobe = need("ffprobe")
    outputs = []
    argv = [ffmpeg, "-v", "error", "-nostdin", "-i", live.playlist_url]
    for index, name in enumerate(("v0", "v1", "v2")):
        out = tmp_path / f"{name}.mp4"
        outputs.append(out)
        argv += ["-map", f"0:v:{index}", "-c", "copy", "-t", "10", str(out)]
    audio = tmp_path / "a.mp4"
    outputs.append(audio)
    argv += ["-map", "0:a:0", "-c", "copy", "-t", "10", str(audio)]
    proc = await asyncio.create_subprocess_exec(*argv, stderr=subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0 and not err.strip(), err.decode()
    heights = []
    for out in outputs:
        probe = subprocess.run(
            [
                ffprobe,
                "-v",
                "error",
                "-show_entries",
                "format=duration:stream=height",
                "-of",
                "json",
                str(out),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        info = json.loads(probe.stdout)
        assert float(info["format"]["duration"]) >= 9.5, out.name
        heights.append(info["streams"][0].get("height"))
    assert sorted(h for h in heights if h) == [360, 480, 720]


@shared_loop
async def test_multivariant_reflects_the_real_encodes(live: LivePipeline) -> None:
    status, body = await aget(live.playlist_url)
    assert status == 200
    mv = parse_multivariant_playlist(body.decode())
    by_res = {v.resolution: v for v in mv.variants}
    assert set(by_res) == {(1280, 720), (854, 480), (640, 360)}
    for variant, nominal in ((by_res[(1280, 720)], 2_500_000), (by_res[(640, 360)], 600_000)):
        assert variant.codecs is not None and variant.codecs.startswith("avc1.")
        assert variant.codecs.endswith(",mp4a.40.2")
        assert variant.frame_rate == 30.0
        assert variant.average_bandwidth is not None
        # real measurements: within a broad band of the nominal rate (+128 kb/s audio)
        assert 0.5 * nominal < variant.average_bandwidth < 1.6 * nominal + 200_000
        assert variant.bandwidth >= variant.average_bandwidth


@shared_loop
async def test_parts_arrive_every_part_target(live: LivePipeline) -> None:
    """Blocking reloads of successive parts: each arrives about one PART-TARGET after the last
    (draft-pantos-hls-rfc8216bis: a new part within one PART-TARGET of the previous)."""
    url = f"{live.base_url}/live/720p/index.m3u8"
    _, body = await aget(url)
    msn, part = parse_media_playlist(body.decode()).last_part()  # type: ignore[misc]
    loop = asyncio.get_running_loop()
    arrivals = []
    for _ in range(12):
        part += 1
        status, body = await aget(f"{url}?_HLS_msn={msn}&_HLS_part={part}")
        assert status == 200
        arrivals.append(loop.time())
        msn, part = parse_media_playlist(body.decode()).last_part()  # type: ignore[misc]
    gaps = sorted(b - a for a, b in itertools.pairwise(arrivals))
    target = live.event.config.part_target
    assert gaps[len(gaps) // 2] == pytest.approx(target, abs=0.12)
    assert gaps[-1] < 3 * target


async def raw_get(port: int, target: str) -> tuple[int, bytes]:
    """One request with the target sent byte for byte (no client-side normalisation)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    data = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


BAD_TARGETS = [
    ("/live/../../../../etc/passwd", 404),
    ("/live/720p/..%2f..%2f..%2fetc%2fpasswd", 404),
    ("/%2e%2e/%2e%2e/etc/passwd", 404),
    ("/live/720p/index.m3u8/../../../pyproject.toml", 404),
    ("/live/720p/index.m3u8?_HLS_part=2", 400),
    ("/live/720p/index.m3u8?_HLS_msn=abc", 400),
    ("/live/720p/index.m3u8?_HLS_msn=99999999999999", 400),
    ("/live/720p/index.m3u8?_HLS_skip=maybe", 400),
]


@shared_loop
async def test_bad_targets_over_a_real_socket(live: LivePipeline) -> None:
    for target, status in BAD_TARGETS:
        code, body = await raw_get(live.server.port, target)
        assert code == status, (target, body)
        assert b"root:" not in body and b"[project]" not in body
