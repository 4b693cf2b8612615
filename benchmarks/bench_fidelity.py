"""Rehearsal fidelity: does the verdict speak for the night's audience?

1. **Clean build, N runs per scenario.** ``livecast rehearse`` of examples/smoke.toml,
   examples/edges.toml and examples/showtime.toml (flash crowd through 2 edges, a short origin
   outage, ``target_viewers = 6500000``), ``runs`` times each: every run must be GO. The noise
   of every SLO'd figure across the runs (min–max) is reported next to its threshold.
2. **Plants.** Each misconfiguration of ``plants.PLANTS`` on a throwaway copy of src/ (first on
   PYTHONPATH, so the stack and the edges it renders are the planted ones), rehearsed on
   showtime: it must be NO-GO, naming the SLO expected to catch it. The peer is the clean build
   of the same run: the violated figure's ratio to the clean runs' median.

    python3 benchmarks/bench_fidelity.py [--runs 5] [--plants a,b] [--scenarios smoke,showtime]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "src"))

from plants import PLANTS, Plant, planted_tree  # noqa: E402
from procs import checkout_env  # noqa: E402

SCENARIOS = ("smoke", "edges", "showtime")
PLANT_SCENARIO = "showtime"
RUN_TIMEOUT = 300.0


def rehearse(scenario: str, out: Path, pythonpath: Path) -> dict[str, Any]:
    """One ``livecast rehearse`` run; its verdict and checks from results.json."""
    env = checkout_env(pythonpath)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "livecast", "rehearse", str(ROOT / "examples" / f"{scenario}.toml"),
         "--out", str(out)],
        env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False,
    )  # fmt: skip
    row: dict[str, Any] = {"exit": done.returncode, "seconds": round(time.monotonic() - started)}
    results = out / "results.json"
    if done.returncode not in (0, 1) or not results.exists():
        row.update(verdict="COULD NOT RUN", checks=[], error=done.stderr[-800:])
        return row
    document = json.loads(results.read_text())
    row["verdict"] = document["verdict"]["verdict"]
    row["checks"] = [
        {
            "slo": check["slo"]["name"],
            "subject": check["subject"],
            "op": check["slo"]["op"],
            "threshold": check["slo"]["threshold"],
            "measured": check["measured"],
            "violated": check["violated"],
        }
        for check in document["verdict"]["checks"]
    ]
    return row


def noise(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per check subject: threshold and the min, median and max measured across clean runs."""
    by_subject: dict[str, dict[str, Any]] = {}
    for run in runs:
        for check in run["checks"]:
            entry = by_subject.setdefault(
                check["subject"],
                {
                    "slo": check["slo"],
                    "op": check["op"],
                    "threshold": check["threshold"],
                    "values": [],
                },
            )
            if check["measured"] is not None:
                entry["values"].append(check["measured"])
    rows = []
    for subject, entry in sorted(by_subject.items()):
        values = entry.pop("values")
        if values:
            entry.update(min=min(values), median=statistics.median(values), max=max(values))
        rows.append({"subject": subject, **entry, "runs": len(values)})
    return rows


def _how_far(check: dict[str, Any]) -> float:
    """How many times past its threshold a violated check is (the telling one goes first)."""
    measured, threshold = check["measured"] or 0.0, check["threshold"]
    if check["op"] in ("<=", "<"):
        return measured / threshold if threshold > 0 else float("inf")
    return threshold / measured if measured > 0 else float("inf")


def plant_row(plant: Plant, run: dict[str, Any], clean: dict[str, float]) -> dict[str, Any]:
    violated = sorted((c for c in run["checks"] if c["violated"]), key=_how_far, reverse=True)
    expected = [c for c in violated if c["slo"] == plant.expect]
    shown = (expected or violated or [None])[0]
    row: dict[str, Any] = {
        "plant": plant.name,
        "area": plant.area,
        "what": plant.what,
        "verdict": run["verdict"],
        "expected": plant.expect,
        "caught_by_expected": bool(expected),
        "violated": [
            {"subject": c["subject"], "measured": c["measured"], "clean": clean.get(c["subject"])}
            for c in violated
        ],
    }
    if shown is not None:
        baseline = clean.get(shown["subject"])
        row.update(
            indicator=shown["subject"],
            figure=shown["measured"],
            threshold=f"{shown['op']} {shown['threshold']:g}",
            clean_median=baseline,
            ratio_to_clean=(shown["measured"] / baseline) if baseline else None,
        )
    return row


def run(
    runs: int = 5,
    scenarios: tuple[str, ...] = SCENARIOS,
    plants: tuple[str, ...] = tuple(p.name for p in PLANTS),
) -> dict[str, Any]:
    figures: dict[str, Any] = {"runs": runs, "clean": {}, "noise": {}, "plants": []}
    with tempfile.TemporaryDirectory(prefix="livecast-fidelity-") as tmp:
        work = Path(tmp)
        for scenario in scenarios:
            results = []
            for index in range(runs):
                row = rehearse(scenario, work / f"clean-{scenario}-{index}", ROOT / "src")
                print(
                    f"   clean {scenario} #{index + 1}: {row['verdict']} ({row['seconds']} s)",
                    flush=True,
                )
                results.append(row)
            figures["clean"][scenario] = [
                {"verdict": r["verdict"], "seconds": r["seconds"],
                 "violated": [c["subject"] for c in r["checks"] if c["violated"]]}
                for r in results
            ]  # fmt: skip
            figures["noise"][scenario] = noise(results)
        clean_medians = {
            row["subject"]: row["median"]
            for row in figures["noise"].get(PLANT_SCENARIO, [])
            if "median" in row
        }
        for plant in PLANTS:
            if plant.name not in plants:
                continue
            tree = planted_tree(plant, work)
            result = rehearse(PLANT_SCENARIO, work / f"plant-{plant.name}", tree)
            row = plant_row(plant, result, clean_medians)
            print(f"   plant {plant.name}: {row['verdict']} {row.get('indicator', '')}", flush=True)
            figures["plants"].append(row)
    return figures


def _figure(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"


def report(figures: dict[str, Any]) -> str:
    lines = [f"clean build, {figures['runs']} runs per scenario:"]
    for scenario, rows in figures["clean"].items():
        go = sum(r["verdict"] == "GO" for r in rows)
        bad = sorted({v for r in rows for v in r["violated"]})
        lines.append(
            f"  {scenario:<9} GO {go}/{len(rows)}"
            + (f"  violated: {', '.join(bad)}" if bad else "")
        )
    lines.append("noise of the SLO'd figures on the clean build (min / median / max vs threshold):")
    for scenario, rows in figures["noise"].items():
        for row in rows:
            if row["runs"]:
                lines.append(
                    f"  {scenario:<9} {row['subject']:<52} {_figure(row['min']):>9} "
                    f"{_figure(row['median']):>9} {_figure(row['max']):>9}   "
                    f"{row['op']} {row['threshold']:g}"
                )
    lines.append(f"plants on {PLANT_SCENARIO} (peer: the clean runs' median of the same figure):")
    for row in figures["plants"]:
        ratio = row.get("ratio_to_clean")
        lines.append(
            f"  {row['plant']:<26} {row['verdict']:<6} {row.get('indicator', '—'):<52} "
            f"{_figure(row.get('figure')):>9} ({row.get('threshold', '')}) "
            + (f"{ratio:.3g}× clean" if ratio else "clean —")
            + ("" if row["caught_by_expected"] else f"  [expected {row['expected']}]")
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--plants", default=",".join(p.name for p in PLANTS))
    args = parser.parse_args(argv)
    figures = run(args.runs, tuple(args.scenarios.split(",")), tuple(args.plants.split(",")))
    print(report(figures))
    print(json.dumps(figures, indent=1, default=str), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
