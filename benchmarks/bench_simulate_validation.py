"""Validation of ``livecast simulate``: the model's predictions against real rehearsals.

For each scenario of benchmarks/scenarios/ (validate-healthy: a flash crowd through 2 nginx
edges; validate-edge-kill: edge-1 killed at mid-show; validate-origin-slow: the origin's
playlists slowed past the players' timeout, retry jitter off):

1. ``livecast rehearse SCENARIO --out benchmarks/results/validation/<scenario>/run-K``, K = 1…
   ``--repeat`` (3) — the real stack (origin + edges on 127.0.0.1); each measured figure is the
   median over the runs (a start's p95 moves ±10 % between identical rehearsals here), and every
   run's figures are printed beside it;
2. ``livecast simulate SCENARIO --out benchmarks/results/validation/<scenario>/simulate`` — the
   cohort model of the same file, the predicted figures (same results.json format);
3. both results.json read with ``livecast.results.report.read_results``, the five figures of
   ``livecast.results.validation`` (origin req/s, edge hit ratio, 5xx rate, startup p95,
   rebuffering ratio) compared: within 15 %, or within the figure's absolute floor for near-zero
   rates (the module's docstring defines and justifies them). Printed as a table with the
   agreement per figure and "N of M within tolerance"; beside it, for context, what the rehearsal
   measured of the fatal error rate and the requests per viewer per second.

Every run is wrapped in ``flock /tmp/livecast-measure.lock`` so that it never overlaps another
engineer's measurement on this 2-core machine. ``--reuse`` takes a rehearsal's results.json
already saved under benchmarks/results/validation/<scenario>/run-K/ instead of rehearsing again (the
model can be iterated on against fixed measurements). Until ``livecast simulate`` exists the
predictions are "—" and the table shows the measurements alone.

    python3 benchmarks/bench_simulate_validation.py [--scenarios validate-healthy,…] [--reuse]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "src"))

from livecast.results.fidelity import indicator_figures  # noqa: E402
from livecast.results.report import ResultsError, read_results  # noqa: E402
from livecast.results.validation import (  # noqa: E402
    FIGURES,
    ValidationRow,
    agreement,
    validation_figures,
    validation_rows,
    validation_table,
)
from procs import checkout_env  # noqa: E402

SCENARIOS = ("validate-healthy", "validate-edge-kill", "validate-origin-slow")
SCENARIO_DIR = HERE / "scenarios"
OUT = HERE / "results" / "validation"
LOCK = "/tmp/livecast-measure.lock"
REHEARSE_TIMEOUT = 300.0
SIMULATE_TIMEOUT = 600.0
RESULTS_JSON = "results.json"


def locked(command: list[str]) -> list[str]:
    """``command`` under the machine-wide measurement lock (when flock is installed)."""
    return ["flock", LOCK, *command] if shutil.which("flock") else command


def livecast(verb: str, scenario: Path, out: Path, timeout: float) -> dict[str, Any]:
    """One ``livecast rehearse|simulate SCENARIO --out OUT`` (this checkout's src/); its exit
    code, wall seconds and, when it wrote no results.json, the tail of its stderr."""
    command = [sys.executable, "-m", "livecast", verb, str(scenario), "--out", str(out)]
    started = time.monotonic()
    try:
        done = subprocess.run(
            locked(command), env=checkout_env(), capture_output=True, text=True,
            timeout=timeout, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return {"exit": None, "seconds": round(time.monotonic() - started), "error": "timed out"}
    row: dict[str, Any] = {"exit": done.returncode, "seconds": round(time.monotonic() - started)}
    if done.returncode not in (0, 1) or not (out / RESULTS_JSON).exists():
        row["error"] = (done.stderr.strip() or done.stdout.strip())[-600:] or "no output"
    return row


def run_figures(path: Path) -> dict[str, Any]:
    """The five validation figures of one results.json, its verdict, and context figures: the
    fatal error rate and the requests per viewer per second — the load indicator (while the
    whole audience is there, away from faults) and over the whole run (every request / the
    viewer-seconds of the per-second timeline)."""
    loaded = read_results(path)
    stats = loaded.stats
    viewer_seconds = sum(s.active_viewers for s in stats.timeline.seconds.values())
    indicators = indicator_figures(stats)
    return {
        "verdict": loaded.verdict.label,
        "figures": validation_figures(stats),
        "fatal_error_rate": stats.viewers.rate("fatal_errors"),
        "requests_per_viewer_s": indicators.get("load.client.requests_per_viewer_s"),
        "requests_per_viewer_s_run": (
            stats.total_requests / viewer_seconds if viewer_seconds else None
        ),
    }


def _median(values: list[float | None]) -> float | None:
    known = sorted(v for v in values if v is not None)
    return statistics.median(known) if known else None


def _rehearsals(name: str, scenario: Path, out: Path, reuse: bool, repeat: int) -> list[Any]:
    """Rehearse (or reuse) ``repeat`` times into out/run-K; each run's record and figures."""
    runs: list[Any] = []
    for k in range(1, repeat + 1):
        target = out / f"run-{k}"
        if reuse and (target / RESULTS_JSON).exists():
            record: dict[str, Any] = {"exit": None, "seconds": 0, "reused": True}
        else:
            print(f"  rehearsing {name} ({k}/{repeat}) …", file=sys.stderr, flush=True)
            record = livecast("rehearse", scenario, target, REHEARSE_TIMEOUT)
        figures = None
        if "error" not in record and (target / RESULTS_JSON).exists():
            try:
                figures = run_figures(target / RESULTS_JSON)
            except ResultsError as error:
                record["error"] = str(error)
        runs.append((record, figures))
    return runs


def _measured(found: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The rehearsals' figures: each one the median over the runs (a start's p95 moves ±10 %
    between identical rehearsals on this machine), with every run's kept beside it."""
    if not found:
        return None
    figures = {name: _median([f["figures"][name] for f in found]) for name in FIGURES}
    return {
        "verdict": "/".join(f["verdict"] for f in found),
        "figures": figures,
        "per_run": [f["figures"] for f in found],
        "fatal_error_rate": _median([f["fatal_error_rate"] for f in found]),
        "requests_per_viewer_s": _median([f["requests_per_viewer_s"] for f in found]),
        "requests_per_viewer_s_run": _median([f["requests_per_viewer_s_run"] for f in found]),
    }


def scenario_run(
    name: str, out_root: Path, reuse: bool, simulate: bool, repeat: int = 3
) -> dict[str, Any]:
    """Rehearse (or reuse) one scenario ``repeat`` times and simulate it once."""
    scenario = SCENARIO_DIR / f"{name}.toml"
    out = out_root / name
    entry: dict[str, Any] = {"scenario": name, "file": str(scenario.relative_to(ROOT))}
    runs = _rehearsals(name, scenario, out, reuse, repeat)
    records = [record for record, _ in runs]
    entry["rehearsal"] = {
        "exit": "/".join(str(r["exit"]) for r in records),
        "seconds": sum(r["seconds"] for r in records),
        "runs": len(records),
    }
    if all(r.get("reused") for r in records):
        entry["rehearsal"]["reused"] = True
    errors = [r["error"] for r in records if "error" in r]
    if errors and len(errors) == len(records):
        entry["rehearsal"]["error"] = errors[-1]
    entry["measured"] = _measured([figures for _, figures in runs if figures is not None])
    entry["simulation"] = {"skipped": True}
    entry["predicted"] = None
    if simulate:
        print(f"  simulating {name} …", file=sys.stderr, flush=True)
        entry["simulation"] = livecast("simulate", scenario, out / "simulate", SIMULATE_TIMEOUT)
        path = out / "simulate" / RESULTS_JSON
        if "error" not in entry["simulation"] and path.exists():
            entry["predicted"] = run_figures(path)
    return entry


def run(
    scenarios: tuple[str, ...] = SCENARIOS,
    reuse: bool = False,
    simulate: bool = True,
    out: Path = OUT,
    repeat: int = 3,
) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    entries = [scenario_run(name, out, reuse, simulate, repeat) for name in scenarios]
    rows = _rows(entries)
    within, compared = agreement(rows)
    return {
        "scenarios": entries,
        "rows": [vars(row) for row in rows],
        "within": within,
        "compared": compared,
    }


def _rows(entries: list[dict[str, Any]]) -> list[ValidationRow]:
    rows: list[ValidationRow] = []
    for entry in entries:
        measured = entry["measured"]["figures"] if entry["measured"] else {}
        predicted = entry["predicted"]["figures"] if entry["predicted"] else None
        rows += validation_rows(entry["scenario"], measured, predicted)
    return rows


def _figure(value: float | None, digits: str = ".3g") -> str:
    return "—" if value is None else format(value, digits)


def report(figures: dict[str, Any]) -> str:
    rows = [ValidationRow(**row) for row in figures["rows"]]
    lines = [validation_table(rows).rstrip("\n"), ""]
    lines.append("runs (context: fatal error rate, requests per viewer per second — load")
    lines.append("indicator / whole run; measured → predicted):")
    for entry in figures["scenarios"]:
        lines.append(f"  {entry['scenario']}:")
        for side, run_key in (("measured", "rehearsal"), ("predicted", "simulation")):
            run = entry[run_key]
            found = entry[side]
            if run.get("skipped"):
                how = "not run"
            elif run.get("reused"):
                how = "reused"
            else:
                how = f"exit {run['exit']}, {run['seconds']} s"
            if found is None:
                error = str(run.get("error", "no results.json")).splitlines() or ["?"]
                lines.append(f"    {side:<9} ({how}) — {error[-1][:160]}")
                continue
            fatal = _figure(found["fatal_error_rate"])
            load = _figure(found["requests_per_viewer_s"], ".4g")
            whole = _figure(found["requests_per_viewer_s_run"], ".4g")
            lines.append(
                f"    {side:<9} ({how}) {found['verdict']:<5} fatal {fatal}"
                f"  req/viewer/s {load} / {whole}"
            )
            for name in FIGURES if len(found.get("per_run", ())) > 1 else ():
                values = [run[name] for run in found["per_run"] if run[name] is not None]
                if values:
                    spread = " ".join(_figure(v, ".4g") for v in values)
                    lines.append(f"      {name}: each run {spread}")
    lines.append(f"{figures['within']} of {figures['compared']} within tolerance")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument(
        "--reuse", action="store_true", help="use saved rehearsal results.json when present"
    )
    parser.add_argument("--no-simulate", action="store_true", help="rehearse only")
    parser.add_argument(
        "--repeat", type=int, default=3, help="rehearsals per scenario (their median)"
    )
    args = parser.parse_args(argv)
    figures = run(
        tuple(args.scenarios.split(",")), args.reuse, not args.no_simulate, repeat=args.repeat
    )
    print(report(figures))
    print(json.dumps(figures, indent=1, default=str), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
