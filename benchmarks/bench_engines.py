"""Viewers per core of the two rehearsal engines, side by side: the asyncio driver (``--engine
driver``, one driver process) and Locust (``--engine locust --workers 1``, one Locust worker), on
the same flash crowd in the same run.

Each engine rehearses the flash crowd of examples/flash-crowd.toml (livecast's own stack, loop
source, two nginx edges, LL-HLS viewers on its downlinks, default SLOs), reduced to N viewers
arriving within 10 s. While it runs, every process of the rehearsal is classified by its command
line — ``serve`` the stack, nginx the edges, ``locust_master`` Locust's master, ``locust_worker``
and the driver's forked processes the *viewer* processes, the ``livecast rehearse`` process itself
the parent — and their CPU (utime + stime) is read from ``/proc`` at every progress line. In the
steady state (from the second all viewers are in to the end) this gives:

* **µs CPU per request** of the viewer-carrying processes (the driver process, or the Locust
  worker; Locust's master is shown apart: it carries no viewer and does not grow with them),
* **requests per viewer-second** (the progress lines' requests over their active viewers),
* **viewers per core** = 1e6 / (µs per request × requests per viewer-second).

The whole-run figure (CPU at the last progress line over every request, imports and start-up
included) and the QoE of each run are printed beside them: the two engines run the same player
model, so their QoE must agree. Runs alternate (driver, Locust) ``--repeat`` times.

    flock /tmp/livecast-measure.lock python3 benchmarks/bench_engines.py \\
        [--viewers 200] [--seconds 30] [--edges 2] [--repeat 1] [--engines driver,locust] \\
        [--src OTHER/src] [--json FILE]

``--src`` rehearses another source tree (``git worktree`` or ``git archive`` of another commit),
for a before/after of the same change, each against its own driver peer.

Needs locust (the ``locust`` extra) and nginx (apt-get install nginx-light libnginx-mod-http-lua).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from procs import SRC, checkout_env, cpu_seconds, descendants, stop_process  # noqa: E402

EDGES = 2
WITHIN = 10.0  # seconds over which the crowd arrives
SETTLE = 2  # seconds after the last arrival before the steady window opens
FLASH_CROWD = HERE.parent / "examples" / "flash-crowd.toml"  # the scenario, resized


def scenario_text(viewers: int, seconds: float, edges: int) -> str:
    """examples/flash-crowd.toml with ``viewers``, ``seconds``, ``edges`` and one viewer
    process (``workers = 1``: the engines are compared process for process)."""
    text = FLASH_CROWD.read_text()
    for pattern, value in (
        (r"(?m)^duration = .*$", f"duration = {seconds}"),
        (r"(?m)^viewers = .*$", f"viewers = {viewers}"),
        (r"(?m)^edges = .*$", f"edges = {edges}"),
        (r"(?m)^within = .*$", f"within = {WITHIN}"),
        (r"(?m)^seed = (.*)$", r"seed = \1\nworkers = 1"),
    ):
        text, count = re.subn(pattern, value, text, count=1)
        assert count == 1, f"{FLASH_CROWD} has no line for {pattern}"
    return text


ENGINES: dict[str, list[str]] = {
    "driver": [],  # the scenario's workers = 1: one driver process
    "locust": ["--engine", "locust", "--workers", "1"],
}
PROGRESS = re.compile(r"^t=\s*(\d+)s viewers=\s*(\d+) req/s=\s*(\d+)")
ROLES = ("viewers", "master", "parent", "stack", "edge", "other")
TIMEOUT = 240.0  # seconds beyond the show a rehearsal may take


def role(pid: int, root: int, cmdline: str) -> str:
    """What a process of the rehearsal rooted at ``root`` is, by its command line."""
    if pid == root:
        return "parent"
    if " serve " in cmdline:
        return "stack"
    if "nginx" in cmdline:
        return "edge"
    if "locust_master" in cmdline:
        return "master"
    if "locust_worker" in cmdline or " rehearse " in cmdline:  # the driver forks the parent
        return "viewers"
    return "other"


def cpu_by_role(root: int, seen: dict[int, str]) -> dict[str, float]:
    """CPU seconds so far of every role in the tree (``seen`` remembers the processes)."""
    for pid in [root, *descendants(root)]:
        if pid not in seen:
            with contextlib.suppress(OSError):
                raw = Path(f"/proc/{pid}/cmdline").read_bytes()
                seen[pid] = role(pid, root, raw.replace(b"\0", b" ").decode(errors="replace"))
    totals = dict.fromkeys(ROLES, 0.0)
    for pid, name in seen.items():
        totals[name] += cpu_seconds([pid])
    return totals


def watch(proc: subprocess.Popen[str]) -> list[tuple[int, int, int, dict[str, float]]]:
    """(second, active viewers, requests, CPU by role) at each progress line, until the end."""
    assert proc.stdout is not None
    seen: dict[int, str] = {}
    lines = []
    for line in proc.stdout:
        match = PROGRESS.match(line)
        if match:
            t, active, requests = (int(g) for g in match.groups())
            lines.append((t, active, requests, cpu_by_role(proc.pid, seen)))
    return lines


def rehearse(
    engine: str, viewers: int, seconds: float, edges: int, out: Path, src: Path = SRC
) -> dict[str, Any]:
    """One rehearsal on ``engine`` with livecast from ``src``: its verdict, QoE and CPU per
    request by role."""
    out.mkdir(parents=True, exist_ok=True)
    scenario = out / "scenario.toml"
    text = scenario_text(viewers, seconds, edges)
    scenario.write_text(text)
    command = [sys.executable, "-m", "livecast", "rehearse", str(scenario), "--out"]
    command.append(str(out / "run"))
    proc = subprocess.Popen(
        [*command, *ENGINES[engine]], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=checkout_env(src), start_new_session=True,
    )  # fmt: skip
    try:
        lines = watch(proc)
        proc.wait(timeout=TIMEOUT)
    finally:
        stop_process(proc)
    document = json.loads((out / "run" / "results.json").read_text())
    return {"engine": engine, "viewers": viewers, **_figures(lines), **_qoe(document)}


def _figures(lines: list[tuple[int, int, int, dict[str, float]]]) -> dict[str, Any]:
    """CPU per request by role in the steady window and over the whole run."""
    if not lines:
        raise RuntimeError("the rehearsal printed no progress line")
    first = next((i for i, line in enumerate(lines) if line[0] >= WITHIN + SETTLE), 0)
    window = lines[first + 1 :] or lines
    requests = sum(line[2] for line in window) or 1
    viewer_seconds = sum(line[1] for line in window) or 1
    start, end = lines[first][3], lines[-1][3]
    steady = {r: 1e6 * (end[r] - start[r]) / requests for r in ROLES}
    everything = sum(line[2] for line in lines) or 1
    per_viewer_s = requests / viewer_seconds
    us = steady["viewers"]
    return {
        "window_s": len(window),
        "requests": everything,
        "requests_per_viewer_s": round(per_viewer_s, 2),
        "us_per_request": round(us, 1),
        "us_per_request_whole_run": round(1e6 * end["viewers"] / everything, 1),
        "viewers_per_core": round(1e6 / (us * per_viewer_s)) if us > 0 else None,
        "steady_us_per_request": {r: round(v, 1) for r, v in steady.items()},
        "cpu_s": {r: round(v, 2) for r, v in end.items()},
    }


def _qoe(document: dict[str, Any]) -> dict[str, Any]:
    summary = document["summary"]
    return {
        "verdict": document["verdict"]["verdict"],
        "violated": [c["slo"]["name"] for c in document["verdict"]["checks"] if c["violated"]],
        "started": summary["started"],
        "startup_p95_s": summary["startup_p95_s"],
        "rebuffering_ratio": summary["rebuffering_ratio"],
        "latency_p95_s": summary["latency_behind_live_p95_s"],
    }


def run(
    viewers: int = 200,
    seconds: float = 30.0,
    edges: int = EDGES,
    repeat: int = 1,
    engines: tuple[str, ...] = tuple(ENGINES),
    src: Path = SRC,
) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-engines-") as name:
        for k in range(repeat):
            for engine in engines:
                out = Path(name) / f"{engine}-{k}"
                row = rehearse(engine, viewers, seconds, edges, out, src)
                rows.append(row)
                print(
                    f"   {engine}: {row['us_per_request']:.0f} µs/request, "
                    f"{row['viewers_per_core']} viewers/core, {row['verdict']}",
                    flush=True,
                )
    medians = {
        engine: statistics.median(r["us_per_request"] for r in rows if r["engine"] == engine)
        for engine in engines
    }
    both = {"driver", "locust"} <= medians.keys()
    ratio = medians["locust"] / medians["driver"] if both else None
    return {
        "viewers": viewers,
        "seconds": seconds,
        "edges": edges,
        "rows": rows,
        "median_us_per_request": medians,
        "locust_vs_driver": round(ratio, 2) if ratio else None,
    }


def report(figures: dict[str, Any]) -> str:
    lines = [
        f"{figures['viewers']} LL-HLS viewers, flash crowd within {WITHIN:.0f} s, "
        f"{figures['seconds']:.0f} s, {figures['edges']} edges; one viewer process per engine; "
        "CPU from /proc in the steady state",
        f"{'engine':<7} {'µs/req':>7} {'req/viewer-s':>12} {'viewers/core':>12} "
        f"{'whole run':>9} {'master':>6} {'verdict':<7} {'startup p95':>11} {'rebuffer':>8} "
        f"{'latency p95':>11}",
    ]
    for row in figures["rows"]:
        lines.append(
            f"{row['engine']:<7} {row['us_per_request']:>7.0f} "
            f"{row['requests_per_viewer_s']:>12.2f} {row['viewers_per_core'] or 0:>12} "
            f"{row['us_per_request_whole_run']:>9.0f} "
            f"{row['steady_us_per_request']['master']:>6.0f} {row['verdict']:<7} "
            f"{row['startup_p95_s'] or 0:>10.2f}s {row['rebuffering_ratio'] or 0:>8.2%} "
            f"{row['latency_p95_s'] or 0:>10.2f}s"
            + (f"  violated: {', '.join(row['violated'])}" if row["violated"] else "")
        )
    if figures["locust_vs_driver"] is not None:
        lines.append(
            f"Locust worker / driver process, CPU per request (medians): "
            f"{figures['locust_vs_driver']}×"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--viewers", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--edges", type=int, default=EDGES, help="0: viewers at the origin")
    parser.add_argument("--repeat", type=int, default=1, help="pairs of runs")
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--src", default=str(SRC), help="the livecast source tree to rehearse")
    parser.add_argument("--json", default="", help="also write the figures here")
    args = parser.parse_args(argv)
    engines = tuple(args.engines.split(","))
    figures = run(args.viewers, args.seconds, args.edges, args.repeat, engines, Path(args.src))
    print(report(figures))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
