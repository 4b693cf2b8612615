"""Live latency as hls.js in headless Chromium reports it, livecast LL-HLS vs a classic-HLS peer.

livecast: ``livecast demo`` (subprocess) with ⅓ s parts and with 0.2 s parts, watched by the
bundled player page. Peer, same run: FFmpeg's own HLS muxer (fMP4, 2 s segments, the same
720p/360p ladder settings, ``-tune zerolatency``) served from disk by a static HTTP server and
watched by the same page in the same Chromium. Both report hls.js ``latency`` (behind the
playlist's live edge) and the page's PDT latency (wall clock − PROGRAM-DATE-TIME of the frame on
screen, i.e. glass to glass). Before the browser, ``livecast probe`` follows each livecast stream
and reports availability: capture → newest complete part in the client's hands (goal p50 ≤ 0.4 s).
Goals for hls.js (issue 2): p50 ≤ 1.5 s with ⅓ s parts, ≤ 1.0 s with 0.2 s parts.

    python benchmarks/bench_latency.py [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from livecast.probe.client import probe  # noqa: E402
from livecast.transcode.ffmpeg import find_ffmpeg  # noqa: E402
from livecast.web.assets import find_hlsjs  # noqa: E402
from livecast.web.browser import percentile, watch  # noqa: E402
from livecast.web.static_server import serve_directory  # noqa: E402


@contextlib.contextmanager
def livecast_demo(part_duration: float) -> Iterator[tuple[str, str]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "livecast", "demo", "--port", "0",
         "--part-duration", f"{part_duration:.6f}"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        playlist = proc.stdout.readline().strip()
        yield playlist, proc.stdout.readline().strip()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def ffmpeg_hls_peer(seconds: float) -> Iterator[str]:
    """FFmpeg's HLS muxer: classic live HLS, 2 s fMP4 segments, served by a static server."""
    with tempfile.TemporaryDirectory(prefix="livecast-peer-") as tmp:
        out = Path(tmp) / "live"
        out.mkdir()
        limit = f"{seconds + 30:.0f}"
        argv = [
            find_ffmpeg(), "-hide_banner", "-loglevel", "error", "-nostdin",
            "-re", "-t", limit, "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
            "-re", "-t", limit, "-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000",
            "-filter_complex", "[0:v]split=2[hi][lo0];[lo0]scale=640:360[lo]",
            "-map", "[hi]", "-map", "[lo]", "-map", "1:a", "-map", "1:a",
            "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency",
            "-g", "60", "-keyint_min", "60", "-sc_threshold", "0",
            "-b:v:0", "2500k", "-b:v:1", "600k", "-c:a", "aac", "-b:a", "128k",
            "-f", "hls", "-hls_time", "2", "-hls_list_size", "6",
            "-hls_flags", "independent_segments+program_date_time+delete_segments",
            "-hls_segment_type", "fmp4", "-master_pl_name", "main.m3u8",
            "-var_stream_map", "v:0,a:0 v:1,a:1", "-hls_fmp4_init_filename", "init_%v.mp4",
            "-hls_segment_filename", "seg_%v_%05d.m4s", "stream_%v.m3u8",
        ]  # fmt: skip
        proc = subprocess.Popen(argv, cwd=out)
        try:
            for _ in range(100):
                if (out / "main.m3u8").exists() and len(list(out.glob("seg_0_*.m4s"))) >= 2:
                    break
                time.sleep(0.2)
            with serve_directory(Path(tmp), find_hlsjs().read_bytes()) as base:
                yield f"{base}/player.html?src=/live/main.m3u8"
        finally:
            proc.kill()
            proc.wait()


def _pdt_latencies(result: Any) -> list[float]:
    values = [s.stats.raw.get("pdtLatency") for s in result.samples if s.stats.playing]
    return [float(v) for v in values if isinstance(v, int | float)]


def _summarise(label: str, result: Any) -> dict[str, Any]:
    pdt = _pdt_latencies(result)
    return {
        "label": label,
        "latency_p50": result.latency_p50,
        "latency_p95": result.latency_p95,
        "pdt_latency_p50": percentile(pdt, 50),
        "pdt_latency_p95": percentile(pdt, 95),
        "startup_ms": result.startup_ms,
        "advance": result.advance,
        "stalls": result.final.stalls if result.final else None,
        "fatal_error": result.fatal_error,
    }


async def measure(seconds: float) -> dict[str, Any]:
    rows = []
    for label, part in (
        ("livecast LL-HLS, 1/3 s parts", 1 / 3),
        ("livecast LL-HLS, 0.2 s parts", 0.2),
    ):
        with livecast_demo(part) as (playlist, player):
            probed = await probe(playlist, seconds)
            row = _summarise(label, await watch(player, seconds))
            latency = probed.latency or {}
            row["availability_p50"] = latency.get("p50")
            row["availability_p95"] = latency.get("p95")
            row["probe_startup_s"] = probed.startup
            rows.append(row)
    with ffmpeg_hls_peer(seconds) as url:
        rows.append(_summarise("peer: FFmpeg HLS muxer, 2 s segments", await watch(url, seconds)))
    rows[-1].update(availability_p50=None, availability_p95=None, probe_startup_s=None)
    peer = rows[-1]["pdt_latency_p50"]
    for row in rows:
        value = row["pdt_latency_p50"]
        row["pdt_ratio_vs_peer"] = round(value / peer, 3) if value and peer else None
    return {"seconds": seconds, "rows": rows}


def _fmt(row: dict[str, Any], key: str, digits: int = 2) -> str:
    value = row[key]
    return "—" if value is None else f"{value:.{digits}f}"


def report(figures: dict[str, Any]) -> str:
    columns = (
        "avail p50",
        "p95",
        "hls.js p50",
        "p95",
        "PDT p50",
        "p95",
        "ratio",
        "start ms",
        "stalls",
    )
    lines = [f"{'':40} " + " ".join(f"{c:>10}" for c in columns)]
    lines.append(
        "  (seconds; avail = capture → newest part in the probe's hands; ratio = PDT p50 / peer)"
    )
    keys = (
        "availability_p50",
        "availability_p95",
        "latency_p50",
        "latency_p95",
        "pdt_latency_p50",
        "pdt_latency_p95",
        "pdt_ratio_vs_peer",
    )
    for row in figures["rows"]:
        cells = [_fmt(row, k) for k in keys] + [_fmt(row, "startup_ms", 0), _fmt(row, "stalls", 0)]
        fatal = f"  FATAL {row['fatal_error']}" if row["fatal_error"] else ""
        lines.append(f"{row['label']:40} " + " ".join(f"{c:>10}" for c in cells) + fatal)
    return "\n".join(lines)


def run(seconds: float = 20.0) -> dict[str, Any]:
    if shutil.which("chromium") is None and os.environ.get("LIVECAST_CHROMIUM") is None:
        raise SystemExit("bench_latency: chromium is not installed (scripts/install.sh --test)")
    return asyncio.run(measure(seconds))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args(argv)
    figures = run(args.seconds)
    print(report(figures))
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
