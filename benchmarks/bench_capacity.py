"""Rehearsal capacity: the largest LL-HLS audience this machine rehearses end to end, all SLOs GO,
and where the time goes.

1. **Ladder of rehearsals.** ``livecast rehearse`` on its own stack behind two nginx edges (loop
   source, LL-HLS viewers, the smoke scenario's downlinks and default SLOs — the scenario of
   examples/flash-crowd.toml), a flash crowd of N viewers within 10 s, 30 s, for N = 600, 900,
   1,200, … until the first NO-GO, the viewers on the compiled core (``livecast.accel``). The
   CPU of every process of the run (the stack, the edges, the driver workers, the parent) is read
   from ``/proc`` while it runs; with the request count of results.json this gives the CPU per
   request on each side and the requests/s one viewer makes. The edges are what a real event
   puts in front of the origin (docs/edge.md): they answer the viewers and collapse the misses,
   so that the origin sees about one request per object per edge.
2. **Profile.** One driver process in-process, interpreted (cProfile sees no compiled code),
   under cProfile against a stack, its own time grouped: event loop + sockets, HTTP client,
   player model, statistics, driver glue.
3. **Peers in the same run.** The first size again with the viewers interpreted
   (``LIVECAST_ACCEL=0``): compiled/interpreted CPU per request. The driver's bare request path
   (no player model) against nginx serving the same kind of objects, from ``bench_driver`` — the
   per-request floor of this client.
4. **Projection.** Cores needed for the 3,000-viewer goal = 3,000 × requests/s per viewer ×
   (driver + stack + edges CPU per request), against the 2 cores here.

    python3 benchmarks/bench_capacity.py [--sizes 600,900,1200,1400] [--seconds 30] [--edges 2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(SRC))

from procs import checkout_env, cpu_seconds, descendants, loop_stack, stop_process  # noqa: E402

GOAL = 3000
EDGES = 2  # nginx edges in front of the origin, as in examples/flash-crowd.toml
SCENARIO = """name = "capacity-{viewers}"
duration = {seconds}
seed = 1
[target]
stack = true
source = "loop"
loop_seconds = 20
edges = {edges}
[audience]
kind = "flash"
viewers = {viewers}
within = 10.0
[players]
low_latency_share = 1.0
[[downlink]]
kbps = 25000
weight = 6
[[downlink]]
kbps = 6000
weight = 3
[[downlink]]
kbps = 2000
weight = 1
[slo]
defaults = true
"""
# cProfile file groups → what they are (first match wins)
GROUPS = (
    ("viewer harness", ("/livecast/player/harness.py", "/livecast/player/lanes.py")),
    ("player model", ("/livecast/player/", "/livecast/packager/")),
    ("statistics", ("/livecast/results/",)),
    ("HTTP client", ("/livecast/rehearse/client.py", "/livecast/httpsink.py", "httptools")),
    ("driver glue", ("/livecast/rehearse/",)),
    ("event loop + sockets", ("asyncio", "uvloop", "<built-in", "<method")),
)


def _tree(root: int) -> dict[int, str]:
    """pid → cmdline of ``root`` and all its descendants."""
    found: dict[int, str] = {}
    for pid in [root, *descendants(root)]:
        with contextlib.suppress(OSError):
            found[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    return found


def rehearse(
    viewers: int, seconds: float, out: Path, edges: int = EDGES, compiled: bool = True
) -> dict[str, Any]:
    """One rehearsal of ``viewers``; its verdict, summary and CPU by role. ``compiled``: the
    viewers on the compiled core (``livecast.accel``, as installed), else interpreted."""
    scenario = out / "scenario.toml"
    out.mkdir(parents=True, exist_ok=True)
    scenario.write_text(SCENARIO.format(viewers=viewers, seconds=seconds, edges=edges))
    proc = subprocess.Popen(
        [sys.executable, "-m", "livecast", "rehearse", str(scenario), "--out", str(out / "run")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**checkout_env(), "LIVECAST_ACCEL": "1" if compiled else "0"},
        start_new_session=True,
    )  # fmt: skip
    last: dict[int, tuple[str, float]] = {}  # pid → (role, CPU seconds at the last sample)
    deadline = time.monotonic() + seconds + 180
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            for pid, cmdline in _tree(proc.pid).items():
                role = (
                    "stack" if " serve " in cmdline
                    else "edge" if "nginx" in cmdline
                    else "parent" if pid == proc.pid
                    else "worker"
                )  # fmt: skip
                last[pid] = (role, cpu_seconds([pid]))
            time.sleep(0.5)
    finally:
        stop_process(proc)
    by_role: dict[str, float] = {}
    for role, cpu in last.values():
        by_role[role] = by_role.get(role, 0.0) + cpu
    document = json.loads((out / "run" / "results.json").read_text())
    summary = document["summary"]
    requests = summary["requests"] or 1
    return {
        "viewers": viewers,
        "viewer_core": document["meta"].get("viewer_core", "?"),
        "exit": proc.returncode,
        "verdict": document["verdict"]["verdict"],
        "violated": [c["slo"]["name"] for c in document["verdict"]["checks"] if c["violated"]],
        "requests": summary["requests"],
        "requests_per_viewer_s": round(summary["requests"] / viewers / seconds, 2),
        "startup_p95_s": summary["startup_p95_s"],
        "rebuffering_ratio": summary["rebuffering_ratio"],
        "latency_p95_s": summary["latency_behind_live_p95_s"],
        "cpu_s": {role: round(cpu, 2) for role, cpu in by_role.items()},
        "machine_share": round(sum(by_role.values()) / seconds / (os.cpu_count() or 1), 3),
        "driver_us_per_request": round(1e6 * by_role.get("worker", 0.0) / requests, 1),
        "stack_us_per_request": round(1e6 * by_role.get("stack", 0.0) / requests, 1),
        "edge_us_per_request": round(1e6 * by_role.get("edge", 0.0) / requests, 1),
        "parent_us_per_request": round(1e6 * by_role.get("parent", 0.0) / requests, 1),
    }


def profile_driver(viewers: int, seconds: float) -> dict[str, Any]:
    """One driver process under cProfile against a stack of its own; own time by group."""
    from livecast.origin.wire import install_uvloop
    from livecast.rehearse.driver import Driver, DriverConfig
    from livecast.scenario.audience import AudienceShape, DownlinkBand, plan_audience

    with (
        tempfile.TemporaryDirectory(prefix="bench-capacity-") as name,
        loop_stack(Path(name)) as (_, url),
    ):
        plans = plan_audience(
            AudienceShape(kind="flash", viewers=viewers, within=5.0), seconds,
            low_latency_share=1.0, seed=1,
            downlink=[DownlinkBand(25000, 6), DownlinkBand(6000, 3), DownlinkBand(2000, 1)],
        )  # fmt: skip
        driver = Driver(plans, DriverConfig((url,), seconds, time.time() + 0.5))
        install_uvloop()
        profiler = cProfile.Profile()
        profiler.enable()
        stats = asyncio.run(driver.run())
        profiler.disable()
    own: dict[str, float] = {}
    table = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    for (filename, _, function), (_, _, tottime, _, _) in table.items():
        where = f"{filename}:{function}"
        group = next((g for g, keys in GROUPS if any(k in where for k in keys)), "other")
        own[group] = own.get(group, 0.0) + tottime
    total = sum(own.values()) or 1.0
    return {
        "viewers": viewers,
        "requests": stats.total_requests,
        "shares": {
            group: round(t / total, 3) for group, t in sorted(own.items(), key=lambda i: -i[1])
        },
    }


def run(
    sizes: tuple[int, ...] = (600, 900, 1200, 1400, 1600, 1800),
    seconds: float = 30.0,
    profile_viewers: int = 150,
    profile_seconds: float = 20.0,
    edges: int = EDGES,
) -> dict[str, Any]:
    import bench_driver

    ladder: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-capacity-") as name:
        for viewers in sizes:
            row = rehearse(viewers, seconds, Path(name) / str(viewers), edges)
            ladder.append(row)
            print(
                f"   {viewers} viewers: {row['verdict']} {','.join(row['violated'])} "
                f"(machine {row['machine_share']:.0%})",
                flush=True,
            )
            if row["verdict"] != "GO":
                break
        peer = rehearse(sizes[0], seconds, Path(name) / "interpreted", edges, compiled=False)
    go = [row for row in ladder if row["verdict"] == "GO"]
    largest = max((row["viewers"] for row in go), default=0)
    profile = profile_driver(profile_viewers, profile_seconds)
    bare = bench_driver.run(seconds=5.0, warmup=2.0)["rows"][0]
    bare_us = 1e6 / bare["per_core"] if bare["per_core"] else None
    basis = go[-1] if go else ladder[0]
    per_request = (
        basis["driver_us_per_request"]
        + basis["stack_us_per_request"]
        + basis["edge_us_per_request"]
    )
    cores = GOAL * basis["requests_per_viewer_s"] * per_request / 1e6
    floor = GOAL * basis["requests_per_viewer_s"] * (bare_us or 0.0) / 1e6
    return {
        "goal": GOAL,
        "edges": edges,
        "seconds": seconds,
        "ladder": ladder,
        "interpreted_peer": peer,
        "largest_go": largest,
        "profile": profile,
        "bare_driver_us_per_request": round(bare_us, 1) if bare_us else None,
        "model_vs_bare": round(basis["driver_us_per_request"] / bare_us, 2) if bare_us else None,
        "cores_for_goal": round(cores, 2),
        "cores_for_goal_bare_client_alone": round(floor, 2),
        "cores_here": os.cpu_count(),
    }


def report(figures: dict[str, Any]) -> str:
    lines = [
        f"rehearsals on the loop source, flash crowd within 10 s, {figures['seconds']:.0f} s, "
        "LL-HLS viewers, default SLOs (CPU from /proc while each runs)",
        f"{'viewers':>7} {'verdict':<7} {'req/s/viewer':>12} {'startup p95':>11} "
        f"{'rebuffer':>8} {'latency p95':>11} {'machine':>7} {'driver µs/req':>13} "
        f"{'stack µs/req':>12} {'edges µs/req':>12} {'parent µs/req':>13}",
    ]
    for row in figures["ladder"]:
        lines.append(
            f"{row['viewers']:>7} {row['verdict']:<7} {row['requests_per_viewer_s']:>12.1f} "
            f"{row['startup_p95_s'] or 0:>10.2f}s {row['rebuffering_ratio'] or 0:>8.2%} "
            f"{row['latency_p95_s'] or 0:>10.2f}s {row['machine_share']:>7.0%} "
            f"{row['driver_us_per_request']:>13.0f} {row['stack_us_per_request']:>12.0f} "
            f"{row['edge_us_per_request']:>12.0f} {row['parent_us_per_request']:>13.0f}"
            + (f"  violated: {', '.join(row['violated'])}" if row["violated"] else "")
        )
    shares = ", ".join(f"{g} {s:.0%}" for g, s in figures["profile"]["shares"].items())
    peer, first = figures["interpreted_peer"], figures["ladder"][0]
    lines += [
        f"viewer core of the ladder: {first['viewer_core']}; peer, same run: {peer['viewers']} "
        f"viewers interpreted {peer['driver_us_per_request']:.0f} µs/request "
        f"({peer['verdict']}) — compiled/interpreted = "
        f"{first['driver_us_per_request'] / peer['driver_us_per_request']:.2f}",
        f"largest GO audience: {figures['largest_go']} viewers = "
        f"{figures['largest_go'] / figures['goal']:.2f}× the goal of {figures['goal']:,}",
        f"driver time, one process profiled ({figures['profile']['viewers']} viewers): {shares}",
        f"peer, same run: the driver's bare request path against nginx "
        f"{figures['bare_driver_us_per_request']} µs/request; with the player model "
        f"{figures['model_vs_bare']}× that",
        f"{figures['goal']:,} viewers would need ≈ {figures['cores_for_goal']} cores "
        f"(driver + stack + edges at the measured cost per request); the bare client alone "
        f"≈ {figures['cores_for_goal_bare_client_alone']} cores; this machine has "
        f"{figures['cores_here']}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="600,900,1200,1400,1600,1800")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--edges", type=int, default=EDGES, help="0: viewers at the origin")
    args = parser.parse_args(argv)
    sizes = tuple(int(size) for size in args.sizes.split(","))
    figures = run(sizes=sizes, seconds=args.seconds, edges=args.edges)
    print(report(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
