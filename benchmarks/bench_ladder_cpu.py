"""CPU cost of the default ABR ladder in real time, with and without ``-tune zerolatency``.

Runs the built-in test source through the 3-rung ladder (720p/480p/360p H.264 + AAC, one FFmpeg)
for N seconds per configuration, one after the other, via the real supervisor and pipes, and
reports FFmpeg's share of the whole machine from ``/proc/<pid>/stat`` (utime + stime over wall time
× cores, after a warm-up), plus how long after its media end each 360p part reached Python.
Goal: ≤ 30 % of the machine with zerolatency. The peer figure is the same ladder without the tune.

    PYTHONPATH=src python3 benchmarks/bench_ladder_cpu.py [seconds]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import statistics
import struct
import sys
import time
from pathlib import Path

try:
    import livecast  # noqa: F401
except ImportError:  # running from a checkout without PYTHONPATH=src
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from livecast.sources.testsrc import test_source
from livecast.transcode.ffmpeg import find_ffmpeg, find_font
from livecast.transcode.ladder import DEFAULT_LADDER, Ladder, build_argv
from livecast.transcode.supervisor import TranscodeSupervisor

GOAL_SHARE = 0.30
WARMUP = 2.0
PROBE_RENDITION = "360p"


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class PartClock:
    """Arrival time of each complete top-level moof+mdat pair on one rendition's pipe."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.offset = 0
        self.mdat_arrivals: list[float] = []

    def feed(self, chunk: bytes) -> None:
        self.buffer += chunk
        now = time.time()
        while len(self.buffer) - self.offset >= 8:
            size, kind = struct.unpack_from(">I4s", self.buffer, self.offset)
            if size < 8 or len(self.buffer) - self.offset < size:
                return
            if kind == b"mdat":
                self.mdat_arrivals.append(now)
            self.offset += size


async def measure(ladder: Ladder, seconds: float) -> dict[str, float]:
    """Run ``ladder`` in real time for ``seconds`` (+ warm-up); CPU share and part delivery lag."""
    ffmpeg, font = find_ffmpeg(), find_font()
    clock = PartClock()

    def make_argv(fds: dict[str, int], epoch: float) -> list[str]:
        return build_argv(ffmpeg, test_source(ladder, epoch, font), ladder, fds)

    def on_data(rendition: str, generation: int, data: bytes) -> None:
        if rendition == PROBE_RENDITION:
            clock.feed(data)

    supervisor = TranscodeSupervisor(make_argv, ladder.renditions, on_data)
    async with supervisor:
        pid = supervisor.pid
        assert pid is not None
        await asyncio.sleep(WARMUP)
        cpu0, wall0 = cpu_seconds(pid), time.monotonic()
        await asyncio.sleep(seconds)
        cpu1, wall1 = cpu_seconds(pid), time.monotonic()
        epoch = supervisor.epoch
    share = (cpu1 - cpu0) / ((wall1 - wall0) * (os.cpu_count() or 1))
    lags = [
        arrived - (epoch + (index + 1) * ladder.part_duration)
        for index, arrived in enumerate(clock.mdat_arrivals)
    ]
    return {
        "cpu_share": share,
        "part_lag_median_s": statistics.median(lags) if lags else float("nan"),
        "part_lag_max_s": max(lags) if lags else float("nan"),
    }


def run(seconds: float = 20.0, ladder: Ladder = DEFAULT_LADDER) -> dict[str, float]:
    """Both configurations, one after the other; flat dict of figures (shares are 0–1)."""
    tuned = asyncio.run(measure(dataclasses.replace(ladder, tune_zerolatency=True), seconds))
    plain = asyncio.run(measure(dataclasses.replace(ladder, tune_zerolatency=False), seconds))
    return {
        "seconds": seconds,
        "cores": float(os.cpu_count() or 1),
        "zerolatency_cpu_share": tuned["cpu_share"],
        "zerolatency_part_lag_median_s": tuned["part_lag_median_s"],
        "zerolatency_part_lag_max_s": tuned["part_lag_max_s"],
        "default_tune_cpu_share": plain["cpu_share"],
        "default_tune_part_lag_median_s": plain["part_lag_median_s"],
        "default_tune_part_lag_max_s": plain["part_lag_max_s"],
        "cpu_ratio_zerolatency_vs_default": tuned["cpu_share"] / plain["cpu_share"],
        "goal_cpu_share": GOAL_SHARE,
    }


def _line(label: str, figures: dict[str, float], key: str, note: str = "") -> str:
    return (
        f"  {label:<18}: {figures[f'{key}_cpu_share']:6.1%} of the machine{note}; a part reaches "
        f"Python {figures[f'{key}_part_lag_median_s']:.3f} s after its media end "
        f"(median, max {figures[f'{key}_part_lag_max_s']:.3f} s)"
    )


def report(figures: dict[str, float]) -> str:
    verdict = "OK" if figures["zerolatency_cpu_share"] <= GOAL_SHARE else "OVER GOAL"
    return "\n".join(
        [
            f"ladder 720p/480p/360p + AAC in real time, {figures['seconds']:.0f} s each, "
            f"{figures['cores']:.0f} cores",
            _line("-tune zerolatency", figures, "zerolatency", f" ({verdict}, goal ≤ 30%)"),
            _line("default tune", figures, "default_tune"),
            f"  CPU ratio zerolatency / default: {figures['cpu_ratio_zerolatency_vs_default']:.2f}",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("seconds", nargs="?", type=float, default=20.0)
    args = parser.parse_args(argv)
    figures = run(args.seconds)
    print(report(figures))
    return 0 if figures["zerolatency_cpu_share"] <= GOAL_SHARE else 1


if __name__ == "__main__":
    sys.exit(main())
