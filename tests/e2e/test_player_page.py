"""The player page in a real headless Chromium, against a live HLS stream made by FFmpeg.

Self-contained: FFmpeg (``-re``, so the stream is genuinely live) writes a two-rung fMP4 HLS
EVENT stream into ``tmp_path/live``; a tiny ``ThreadingHTTPServer`` serves it together with
``/player.html`` and ``/hls.min.js``. The livecast origin is not involved.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from livecast.errors import ConfigError
from livecast.web import assets
from livecast.web.browser import PlayerStats, find_chromium, percentile, watch
from livecast.web.static_server import serve_directory
from tests.requirements import missing, skip_missing

pytestmark = pytest.mark.e2e

FFMPEG = shutil.which("ffmpeg")
STATS_KEYS = {
    "latency": (int, float, type(None)),
    "targetLatency": (int, float, type(None)),
    "currentTime": (int, float),
    "buffered": (int, float),
    "level": (int, type(None)),
    "bitrate": (int, type(None)),
    "stalls": (int,),
    "fatalError": (str, type(None)),
    "errors": (list,),
    "playing": (bool,),
    "startupMs": (int, float, type(None)),
}


def _hlsjs_or_skip() -> Path:
    try:
        return assets.find_hlsjs()
    except ConfigError as exc:
        skip_missing("hlsjs", str(exc))


@pytest.fixture
def chromium() -> str:
    """Path of the Chromium binary; skips when it or Python playwright is missing."""
    pytest.importorskip("playwright.async_api", reason=missing("playwright"))
    path = find_chromium()
    if path is None:
        skip_missing("chromium")
    return path


@pytest.fixture
def live_stream(tmp_path: Path) -> Iterator[Path]:
    """A live two-rung fMP4 HLS stream (1 s segments) being written into ``tmp_path/live``."""
    if FFMPEG is None:
        skip_missing("ffmpeg")
    out = tmp_path / "live"
    out.mkdir()
    argv = [
        FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
        "-t", "60", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25",
        "-t", "60", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-filter_complex", "[0:v]split=2[hi][lo0];[lo0]scale=320:180[lo]",
        "-map", "[hi]", "-map", "[lo]", "-map", "1:a", "-map", "1:a",
        "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency",
        "-g", "25", "-keyint_min", "25", "-sc_threshold", "0",
        "-b:v:0", "800k", "-b:v:1", "250k", "-c:a", "aac", "-b:a", "64k",
        "-f", "hls", "-hls_time", "1", "-hls_list_size", "0", "-hls_playlist_type", "event",
        "-hls_segment_type", "fmp4", "-hls_flags", "independent_segments+program_date_time",
        "-master_pl_name", "main.m3u8", "-var_stream_map", "v:0,a:0 v:1,a:1",
        "-hls_fmp4_init_filename", "init.mp4", "-hls_segment_filename", "seg_%v_%03d.m4s",
        "stream_%v.m3u8",
    ]  # fmt: skip
    proc = subprocess.Popen(argv, cwd=out, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while not _ready(out):
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                pytest.fail(f"ffmpeg exited with {proc.returncode}: {err[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail("ffmpeg wrote no playable live playlist within 20 s")
            time.sleep(0.2)
        yield tmp_path
    finally:
        proc.kill()
        proc.wait()
        if proc.stderr:
            proc.stderr.close()


def _ready(out: Path) -> bool:
    """Multivariant playlist written and every rung has at least three segments."""
    if not (out / "main.m3u8").is_file():
        return False
    for rung in ("stream_0.m3u8", "stream_1.m3u8"):
        try:
            text = (out / rung).read_text()
        except FileNotFoundError:
            return False
        if len(re.findall(r"^#EXTINF", text, re.MULTILINE)) < 3:
            return False
    return True


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """``http://127.0.0.1:<port>`` serving ``tmp_path``, ``/player.html`` and ``/hls.min.js``."""
    with serve_directory(tmp_path, _hlsjs_or_skip().read_bytes()) as url:
        yield url


def _assert_well_formed(raw: dict[str, Any]) -> None:
    for key, types in STATS_KEYS.items():
        assert key in raw, f"livecastStats() lacks {key!r}: {raw}"
        value = raw[key]
        assert isinstance(value, types), f"{key}={value!r} is not {types}"
        if types == (int, float, type(None)) or types == (int, type(None)):
            assert not isinstance(value, bool), f"{key}={value!r}"
    for entry in raw["errors"]:
        assert isinstance(entry, dict) and {"type", "details", "fatal"} <= entry.keys(), entry


async def test_player_plays_live_stream(chromium: str, live_stream: Path, server: str) -> None:
    # No src parameter: the page's default is /live/main.m3u8, which the fixture writes.
    result = await watch(f"{server}/player.html", 6.0, chromium=chromium, sample_every=0.25)
    summary = result.summary()

    assert result.fatal_error is None, summary
    assert result.page_errors == [], summary
    assert result.advance >= 2.0, summary
    final = result.final
    assert final is not None
    _assert_well_formed(final.raw)
    assert final.raw["engine"].startswith("hls.js 1."), final.raw
    assert final.raw["lowLatencyMode"] is True
    assert final.playing, final.raw
    assert final.startup_ms is not None and 0 < final.startup_ms < 6000, summary
    assert final.level in (0, 1) and final.raw["levels"] == 2, final.raw
    assert final.bitrate is not None and final.bitrate > 0
    assert final.current_time > 0 and final.buffered >= 0
    # A live stream with 1 s segments: hls.js syncs ~3 target durations behind the edge.
    assert final.target_latency is not None and 1.0 <= final.target_latency <= 6.0, final.raw
    p50 = result.latency_p50
    assert p50 is not None and 0.5 < p50 < 10.0, summary
    assert final.pdt_latency is not None and final.pdt_latency > 0, final.raw
    # Samples are ordered in time, and the playhead never runs backwards once playing.
    times = [s.stats.current_time for s in result.samples if s.stats.playing]
    assert times == sorted(times)
    assert [s.t for s in result.samples] == sorted(s.t for s in result.samples)


async def test_player_reports_fatal_error(chromium: str, server: str) -> None:
    result = await watch(f"{server}/player.html?src=/missing/main.m3u8", 4.0, chromium=chromium)
    final = result.final
    assert final is not None, result.summary()
    _assert_well_formed(final.raw)
    assert result.fatal_error is not None and "manifestLoadError" in result.fatal_error
    assert not final.playing and final.startup_ms is None
    assert result.advance == 0.0
    assert any(e["details"] == "manifestLoadError" and e["fatal"] for e in final.errors)
    # The one recovery attempt (reload the multivariant playlist) is recorded.
    assert final.raw["recoveries"] == 1
    assert any(e.get("recovery") == "loadSource" for e in final.errors)


# --- pieces that need no browser -------------------------------------------------------------


def test_player_page_is_packaged() -> None:
    html = assets.player_page_html().decode()
    assert '<script src="/hls.min.js"></script>' in html
    assert "window.livecastStats" in html
    assert "lowLatencyMode" in html
    assert "http://" not in html and "https://" not in html  # no CDN


def test_find_hlsjs_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = tmp_path / "hls.min.js"
    bundle.write_text("/* hls */")
    monkeypatch.setenv(assets.HLSJS_ENV, str(bundle))
    assert assets.find_hlsjs() == bundle.resolve()
    monkeypatch.setenv(assets.HLSJS_ENV, str(tmp_path / "absent.js"))
    with pytest.raises(ConfigError) as info:
        assets.find_hlsjs()
    assert info.value.key == "hlsjs"


def test_find_hlsjs_searches_upward(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(assets.HLSJS_ENV, raising=False)
    bundle = tmp_path / assets.HLSJS_RELPATH
    bundle.parent.mkdir(parents=True)
    bundle.write_text("/* hls */")
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    assert assets.find_hlsjs() == bundle.resolve()


def test_stats_parsing_and_percentile() -> None:
    stats = PlayerStats.from_json(
        {"latency": 2.5, "targetLatency": None, "currentTime": 3, "buffered": 1.25, "level": 1,
         "bitrate": 800000, "stalls": 0, "fatalError": None, "errors": [], "playing": True,
         "startupMs": 900}
    )  # fmt: skip
    assert stats.latency == 2.5 and stats.target_latency is None and stats.level == 1
    assert stats.playing and stats.startup_ms == 900.0 and stats.current_time == 3.0
    assert percentile([], 50) is None
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([5.0], 95) == 5.0
