"""The loop source end to end: a 4 s pre-encode (cached in tmp_path) replayed as a live stream
through the real packager and origin, across several loop boundaries. The tests that only read
from the replay share one stack for the module (``replaying``); the one that breaks its replay
starts its own (``looped``)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from livecast.config import load_config
from livecast.hls.playlist import MediaPlaylist, parse_media_playlist
from livecast.media.fmp4 import FMP4StreamReader, Fragment
from livecast.pipeline import LivePipeline
from livecast.sources.loop_source import LoopSource
from tests.conftest import need
from tests.integration.test_pipeline import aget

pytestmark = pytest.mark.integration

LOOP_SECONDS = 4.0
CPU_BOUND = 0.15  # of one core, for the pipeline process while replaying and serving


def loop_pipeline(cache: Path) -> LivePipeline:
    overrides = {
        "port": 0,
        "source": "loop",
        "loop_seconds": LOOP_SECONDS,
        "cache_dir": str(cache),
    }
    return LivePipeline(load_config(None, env={}, overrides=overrides))


@pytest_asyncio.fixture
async def looped(tmp_path: Path) -> AsyncIterator[LivePipeline]:
    async with loop_pipeline(tmp_path / "cache").running(timeout=60) as live:
        yield live


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def replaying(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LivePipeline]:
    """One replay (pre-encoded into a cache of its own) for the tests that only read from it."""
    cache = tmp_path_factory.mktemp("loop") / "cache"
    async with loop_pipeline(cache).running(timeout=60) as live:
        yield live


shared_loop = pytest.mark.asyncio(loop_scope="module")


def process_cpu_seconds() -> float:
    """utime + stime of this process (all threads), from /proc/self/stat."""
    fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def playlist(url: str) -> MediaPlaylist:
    status, body = await aget(url)
    assert status == 200, body
    return parse_media_playlist(body.decode())


@shared_loop
async def test_playlist_keeps_advancing_across_loop_boundaries(replaying: LivePipeline) -> None:
    looped = replaying
    source = looped.source
    assert isinstance(source, LoopSource) and source.encoded
    urls = [f"{looped.base_url}/live/{name}/index.m3u8" for name in ("720p", "audio")]
    seen: dict[str, dict[int, float]] = {url: {} for url in urls}
    last_parts: list[tuple[int, int]] = []
    cpu0, wall0 = process_cpu_seconds(), time.monotonic()
    while time.monotonic() - wall0 < 2.5 * LOOP_SECONDS:  # at least two loop boundaries
        await asyncio.sleep(0.25)
        for url in urls:
            pl = await playlist(url)
            assert not any(s.discontinuity for s in pl.segments), url
            for index, segment in enumerate(pl.segments):
                if segment.pdt is not None:
                    previous = seen[url].setdefault(pl.msn_of(index), segment.pdt)
                    assert previous == pytest.approx(segment.pdt, abs=1e-3)  # never rewritten
            if url == urls[0]:
                last = pl.last_part()
                assert last is not None
                last_parts.append(last)
    cpu = (process_cpu_seconds() - cpu0) / (time.monotonic() - wall0)
    logging.getLogger("test").warning(
        "loop replay: pipeline process CPU %.1f%% of one core", cpu * 100
    )
    assert cpu < CPU_BOUND
    assert last_parts == sorted(last_parts)
    assert len(set(last_parts)) >= 0.8 * 2.5 * LOOP_SECONDS / looped.ladder.part_duration
    for url in urls:
        msns = sorted(seen[url])
        assert msns == list(range(msns[0], msns[-1] + 1)), url
        pdts = [seen[url][m] for m in msns]
        gaps = [b - a for a, b in itertools.pairwise(pdts)]
        # segments follow each other on the wall clock: 2 s apart, also over each loop point
        assert all(abs(g - looped.ladder.segment_duration) < 0.05 for g in gaps), (url, gaps)
        assert msns[-1] - msns[0] >= 2.5 * LOOP_SECONDS / looped.ladder.segment_duration - 2


@shared_loop
async def test_media_time_continues_and_matches_the_pdt(replaying: LivePipeline) -> None:
    """Each segment's first tfdt (media time) plus the epoch is its PDT, past the loop too."""
    looped = replaying
    await asyncio.sleep(max(0.0, looped.event.epoch + LOOP_SECONDS + 1.5 - time.time()))
    for name in ("720p", "audio"):
        base = f"{looped.base_url}/live/{name}"
        pl = await playlist(f"{base}/index.m3u8")
        init_uri = next(s.map.uri for s in pl.segments if s.map is not None)
        _, init = await aget(f"{base}/{init_uri}")
        starts = []
        for segment in pl.segments:
            if segment.uri is None or segment.pdt is None:
                continue
            status, data = await aget(f"{base}/{segment.uri}")
            assert status == 200
            reader = FMP4StreamReader()
            reader.feed(init)
            fragments = [f for f in reader.feed(data) if isinstance(f, Fragment)]
            assert reader.track is not None
            media = fragments[0].decode_time / reader.track.timescale
            assert looped.event.epoch + media == pytest.approx(segment.pdt, abs=2e-3)
            starts.append(media)
        assert len(starts) >= 2 and max(starts) >= LOOP_SECONDS - 1e-3, (name, starts)


@shared_loop
async def test_ffmpeg_reads_the_looped_stream_without_complaint(
    replaying: LivePipeline, tmp_path: Path
) -> None:
    """An HLS client records across a loop point: no non-monotonic DTS, nothing on stderr."""
    looped = replaying
    ffmpeg = need("ffmpeg")
    out = tmp_path / "rec.mp4"
    argv = [ffmpeg, "-v", "error", "-nostdin", "-i", looped.playlist_url]
    argv += ["-map", "0:v:2", "-map", "0:a:0", "-c", "copy", "-t", "6", str(out)]
    proc = await asyncio.create_subprocess_exec(*argv, stderr=subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0 and not err.strip(), err.decode()
    assert out.stat().st_size > 0


async def test_a_second_start_reuses_the_cache(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="livecast.sources")
    cache = tmp_path / "cache"
    first = loop_pipeline(cache)
    await first.start()
    await first.stop()
    assert isinstance(first.source, LoopSource) and first.source.encoded
    (directory,) = [p for p in cache.iterdir()]  # no partial directory left behind
    second = loop_pipeline(cache)
    started = time.monotonic()
    await second.start()
    try:
        assert isinstance(second.source, LoopSource)
        assert not second.source.encoded and second.source.directory == directory
        assert time.monotonic() - started < 2.0
        assert any("reusing the pre-encode" in r.getMessage() for r in caplog.records)
        await second.wait_ready(timeout=10)
    finally:
        await second.stop()


def test_demo_with_source_loop_serves_without_an_encoder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.integration.processes import children, livecast

    monkeypatch.setenv("LIVECAST_LOOP_SECONDS", "4")
    monkeypatch.setenv("LIVECAST_CACHE_DIR", str(tmp_path / "cache"))
    proc = livecast("demo", "--port", "0", "--source", "loop")
    try:
        assert proc.stdout is not None and proc.stderr is not None
        playlist = proc.stdout.readline().strip()
        assert playlist.startswith("http://127.0.0.1:") and playlist.endswith(".m3u8")
        with urllib.request.urlopen(playlist, timeout=10) as response:
            assert response.read().startswith(b"#EXTM3U")
        assert children(proc.pid) == []  # the pre-encode is over: no FFmpeg while live
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
        assert "pre-encoded a 4.0 s loop" in proc.stderr.read()
        assert len(list((tmp_path / "cache").iterdir())) == 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_serve_with_a_bad_loop_length_exits_2_naming_it(tmp_path: Path) -> None:
    from tests.integration.processes import livecast

    config = tmp_path / "event.toml"
    config.write_text('source = "loop"\nloop_seconds = 5\n')
    proc = livecast("serve", "--config", str(config))
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert "'loop_seconds'" in err and "whole number" in err


async def test_unusable_cached_media_stops_the_replay_with_one_clear_line(
    looped: LivePipeline, caplog: pytest.LogCaptureFixture
) -> None:
    """A loop cannot re-encode what it replays: asked to restart, it stops and says why; the
    origin keeps serving what it has, and serving ends as for a source that gave up."""
    caplog.set_level(logging.INFO)
    url = f"{looped.base_url}/live/360p/index.m3u8"
    before = await playlist(url)
    looped.publisher.on_data("360p", looped.event.generation, b"\x00\x00\x00\x03junk")
    stop = asyncio.Event()
    assert await asyncio.wait_for(looped.serve_until(stop), 5) is False
    assert await looped.source.wait() == 1
    after = await playlist(url)
    assert after.media_sequence >= before.media_sequence
    lines = [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.ERROR and r.name.startswith("livecast")
    ]
    assert len(lines) == 2, lines
    assert "unusable media on 360p from the loop source" in lines[0]
    assert "loop: the cached media is unusable" in lines[1] and "replay stops" in lines[1]
