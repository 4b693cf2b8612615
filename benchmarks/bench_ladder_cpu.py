"""CPU cost of the default ABR ladder in real time, against x264 veryfast in the same run.

Runs the built-in test source through the 3-rung ladder (720p/480p/360p H.264 + AAC, one FFmpeg)
for N seconds per configuration, one after the other, via the real supervisor and pipes, and
reports FFmpeg's share of the whole machine from ``/proc/<pid>/stat`` (utime + stime over wall time
× cores, after a warm-up), plus how long after its media end each 360p part reached Python.
Goal: ≤ 30 % of the machine for the default ladder. Peers: the same ladder with x264 veryfast
(the brief's reference preset) and without ``-tune zerolatency``.

    python benchmarks/bench_ladder_cpu.py [seconds]
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
from typing import Any

from procs import cpu_seconds

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


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return sum(values) - idle, sum(values)


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


def snapshot(pid: int, clock: PartClock) -> tuple[float, float, int, tuple[int, int]]:
    return cpu_seconds([pid]), time.monotonic(), len(clock.mdat_arrivals), machine_ticks()


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
        cpu0, wall0, parts0, machine0 = snapshot(pid, clock)
        await asyncio.sleep(seconds)
        cpu1, wall1, parts1, machine1 = snapshot(pid, clock)
        epoch = supervisor.epoch
    cores = os.cpu_count() or 1
    share = (cpu1 - cpu0) / ((wall1 - wall0) * cores)
    media = (parts1 - parts0) * ladder.part_duration
    busy = (machine1[0] - machine0[0]) / max(1, machine1[1] - machine0[1])
    lags = [
        arrived - (epoch + (index + 1) * ladder.part_duration)
        for index, arrived in enumerate(clock.mdat_arrivals)
    ]
    return {
        "cpu_share": share,
        "cpu_share_per_media_second": (cpu1 - cpu0) / (media * cores) if media else float("nan"),
        "others_share": max(0.0, busy - share),
        "part_lag_median_s": statistics.median(lags) if lags else float("nan"),
        "part_lag_max_s": max(lags) if lags else float("nan"),
    }


CONFIGURATIONS = {
    # label: changes to the ladder under test
    "default": {},
    "veryfast": {"preset": "veryfast", "x264_params": ""},
    "default, no zerolatency": {"tune_zerolatency": False},
}


def run(seconds: float = 20.0, ladder: Ladder = DEFAULT_LADDER) -> dict[str, Any]:
    """The default ladder and its peers (x264 veryfast, the brief's reference; the default
    without ``-tune zerolatency``), one after the other. Shares are fractions of the machine."""
    rows = {
        label: asyncio.run(measure(dataclasses.replace(ladder, **changes), seconds))
        for label, changes in CONFIGURATIONS.items()
    }
    default = rows["default"]["cpu_share"]
    return {
        "seconds": seconds,
        "cores": float(os.cpu_count() or 1),
        "preset": f"{ladder.preset} {ladder.x264_params}".strip(),
        "rows": rows,
        "cpu_ratio_default_vs_veryfast": default / rows["veryfast"]["cpu_share"],
        "goal_cpu_share": GOAL_SHARE,
    }


def report(figures: dict[str, Any]) -> str:
    default = figures["rows"]["default"]["cpu_share"]
    verdict = "OK" if default <= GOAL_SHARE else "OVER GOAL"
    lines = [
        f"ladder 720p/480p/360p + AAC in real time, {figures['seconds']:.0f} s each, "
        f"{figures['cores']:.0f} cores; default x264: {figures['preset']}"
    ]
    for label, row in figures["rows"].items():
        note = f" ({verdict}, goal ≤ {GOAL_SHARE:.0%})" if label == "default" else ""
        lines.append(
            f"  {label:<24}: {row['cpu_share']:6.1%} of the machine{note}; other processes "
            f"{row['others_share']:.0%}; a part reaches Python {row['part_lag_median_s']:.3f} s "
            f"after its media end (median, max {row['part_lag_max_s']:.3f} s)"
        )
    lines.append(f"  CPU ratio default / veryfast: {figures['cpu_ratio_default_vs_veryfast']:.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("seconds", nargs="?", type=float, default=20.0)
    args = parser.parse_args(argv)
    figures = run(args.seconds)
    print(report(figures))
    return 0 if figures["rows"]["default"]["cpu_share"] <= GOAL_SHARE else 1


if __name__ == "__main__":
    sys.exit(main())
