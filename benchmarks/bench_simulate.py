"""The simulator at the night's scale: 65 M viewers, a 2-hour event, 1 s steps, 200 edges, one
shield, 2 origins — wall time, peak memory and viewer·steps per second, against its peer in the
same run; then the incident's failure class at 6.5 M viewers, healthy and broken.

**Scale.** ``benchmarks/scenarios/simulate-65m.toml`` (a flash crowd of 65 M over the first 10
minutes of a 2-hour show) runs in a child process (``livecast simulate``: parse, model, results
and report written), timed from outside, its peak RSS from ``getrusage(RUSAGE_CHILDREN)``
(each row in its own process, so the figure is that row's). The peer: the same file at 65,000
viewers — the model keeps cohorts, not viewers, so the ratio of the two wall times is the cost of
the audience's size (≈ 1 when the model's cost does not grow with it). Goals: ≤ 60 s wall and
≤ 8 GB RSS for the 65 M row.

**The incident's class.** ``examples/simulate-6.5m.toml`` (GO) and its twin with the edges' and
the shield's miss collapsing off (``-no-collapse``: NO-GO, naming the origin overload cascade and
when it starts) — the verdict line of each, and the cascade.

    python benchmarks/bench_simulate.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SCALE = HERE / "scenarios" / "simulate-65m.toml"
PAIR = ("simulate-6.5m.toml", "simulate-6.5m-no-collapse.toml")


def _simulate(path: Path, out: Path) -> dict[str, Any]:
    """One ``livecast simulate`` in a child process: exit code, wall, peak RSS, its meta."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-m", "livecast", "simulate", str(path), "--out", str(out)],
        capture_output=True, text=True, cwd=ROOT, timeout=900,
    )  # fmt: skip
    wall = time.monotonic() - started
    rss_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if run.returncode == 2:
        raise RuntimeError(f"{path}: could not run: {run.stderr[-2000:]}")
    document = json.loads((out / "results.json").read_text())
    model = document["meta"]["simulation"]["model"]
    return {
        "exit": run.returncode,
        "wall_s": wall,
        "model_s": model["wall_s"],
        "rss_mb": rss_kb / 1024 if rss_kb > before else None,
        "viewer_steps_per_s": model["viewer_steps_per_s"],
        "steps": model["steps"],
        "peak_viewers": model["viewers_peak"],
        "verdict": document["verdict"]["summary"],
        "saturation": document["meta"]["simulation"]["saturation"][:2],
        "cascade": document["meta"]["simulation"]["cascade"],
    }


def _variant(path: Path, tmp: Path, **changes: Any) -> Path:
    """A copy of the scenario with top-level or ``table.key`` values changed."""
    text = path.read_text()
    data = tomllib.loads(text)
    for dotted, value in changes.items():
        table, _, key = dotted.rpartition("__")
        if table:
            data[table][key] = value
        else:
            data[key] = value
    out = tmp / f"{path.stem}-{len(list(tmp.iterdir()))}.toml"
    out.write_text(_toml(data))
    return out


def _toml(data: dict[str, Any], prefix: str = "") -> str:
    """Enough TOML for the scenario files (tables, arrays of tables, scalars)."""
    lines, tables = [], []
    for key, value in data.items():
        if isinstance(value, dict):
            tables.append((key, value))
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            for item in value:
                lines.append(f"[[{prefix}{key}]]")
                lines += [f"{k} = {json.dumps(v)}" for k, v in item.items()]
        else:
            lines.append(f"{key} = {json.dumps(value)}")
    for key, table in tables:
        lines.append(f"[{prefix}{key}]")
        lines.append(_toml(table, f"{prefix}{key}."))
    return "\n".join(lines) + "\n"


def run(duration: float | None = None) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as directory:
        tmp = Path(directory)
        changes: dict[str, Any] = {} if duration is None else {"duration": duration}
        big = _variant(SCALE, tmp, **changes)
        small = _variant(SCALE, tmp, audience__viewers=65_000, **changes)
        figures["scale"] = _simulate(big, tmp / "big")
        figures["peer"] = _simulate(small, tmp / "small")
        for name in PAIR:
            figures[name] = _simulate(ROOT / "examples" / name, tmp / name)
    return figures


def report(figures: dict[str, Any]) -> str:
    scale, peer = figures["scale"], figures["peer"]
    ratio = scale["wall_s"] / peer["wall_s"] if peer["wall_s"] else float("nan")
    rss = f"{scale['rss_mb']:,.0f} MB" if scale["rss_mb"] else "n/a"
    lines = [
        f"65 M viewers, {scale['steps']:,} steps of 1 s, 200 edges + shield + 2 origins: "
        f"{scale['wall_s']:.1f} s wall (model {scale['model_s']:.1f} s; goal ≤ 60 s), peak RSS "
        f"{rss} (goal ≤ 8 GB), {scale['viewer_steps_per_s']:,.3g} viewer·steps/s",
        f"  peer, the same at 65,000 viewers: {peer['wall_s']:.1f} s wall — ratio {ratio:.2f}× "
        "(the cost of 1,000× the audience)",
        f"  verdict: {scale['verdict']}",
    ]
    for name in PAIR:
        row = figures[name]
        lines.append(f"{name}: exit {row['exit']}, {row['wall_s']:.1f} s — {row['verdict']}")
        if row["cascade"]:
            lines.append(f"  {row['cascade']['name']} from {row['cascade']['starts_at_s']:g} s")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a 20-minute event instead")
    args = parser.parse_args()
    print(report(run(1200.0 if args.quick else None)))


if __name__ == "__main__":
    main()
