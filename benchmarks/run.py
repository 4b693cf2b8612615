"""Run every benchmark, one at a time, and print each one's figures and ratio against its peer.

    python benchmarks/run.py [--only latency,origin,ladder] [--quick]

Each benchmark measures livecast against a peer in the same run (nginx, FFmpeg's HLS muxer,
FFmpeg's default tuning), because absolute times drift on a shared 2-core machine. The JSON of
every run is written to benchmarks/results/<name>.json (git-ignored).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

# name → (module, keyword arguments for run(), the same for --quick)
BENCHMARKS: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "ladder": ("bench_ladder_cpu", {"seconds": 20.0}, {"seconds": 8.0}),
    "latency": ("bench_latency", {"seconds": 20.0}, {"seconds": 10.0}),
    "contribution": ("bench_contribution", {"seconds": 20.0}, {"seconds": 8.0}),
    "origin": ("bench_origin", {}, {"clients": (1000,), "seconds": 5.0}),
    "driver": ("bench_driver", {"seconds": 10.0, "repeat": 3}, {"seconds": 5.0, "warmup": 2.0}),
    "edge": ("bench_edge", {}, {"viewers": (10, 1000), "seconds": 6.0}),
    "edge_tokens": ("bench_edge_tokens", {}, {"seconds": 3.0, "repeat": 1}),
    "edge_metrics": ("bench_edge_metrics", {"repeat": 3}, {"seconds": 3.0, "repeat": 1}),
    "capacity": (
        "bench_capacity",
        {},
        {"sizes": (600, 1200), "seconds": 20.0, "profile_seconds": 10.0},
    ),
    "engines": ("bench_engines", {}, {"viewers": 150, "seconds": 20.0}),
    "fidelity": ("bench_fidelity", {}, {"runs": 1}),
    "validation": ("bench_simulate_validation", {}, {"reuse": True}),
    "simulate": ("bench_simulate", {}, {"duration": 1200.0}),
    "recording": (
        "bench_recording",
        {},
        {"seconds": 4.0, "rounds": 1, "speed": 4.0, "dvr_hours": 0.25, "repeat": 50},
    ),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated names")
    parser.add_argument("--quick", action="store_true", help="shorter runs")
    args = parser.parse_args(argv)
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    for name in args.only.split(","):
        module_name, full, quick = BENCHMARKS[name]
        module = importlib.import_module(module_name)
        print(f"== {name} ({module_name}) ==", flush=True)
        started = time.monotonic()
        figures = module.run(**(quick if args.quick else full))
        print(module.report(figures))
        print(f"   ({time.monotonic() - started:.0f} s)\n", flush=True)
        (results / f"{name}.json").write_text(json.dumps(figures, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
