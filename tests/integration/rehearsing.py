"""``livecast rehearse`` as a subprocess for the integration tests: the scenario text written,
``src`` first on PYTHONPATH, the run and its results.json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from livecast.edge.nginx import find_nginx
from livecast.errors import LivecastError

SRC = str(Path(__file__).resolve().parents[2] / "src")

Rehearsal = tuple[subprocess.CompletedProcess[str], Any, Path]


def has_nginx() -> bool:
    try:
        find_nginx(None)
    except LivecastError:
        return False
    return True


def run_rehearsal(scenario_text: str, tmp_path: Path, src: str = SRC) -> Rehearsal:
    """``livecast rehearse`` of ``scenario_text`` with ``src`` first on PYTHONPATH;
    (run, results.json or {}, its out directory)."""
    scenario = tmp_path / "s.toml"
    scenario.write_text(scenario_text)
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = tmp_path / "o"
    run = subprocess.run(
        [sys.executable, "-m", "livecast", "rehearse", str(scenario), "--out", str(out)],
        capture_output=True, text=True, env=env, timeout=180,
    )  # fmt: skip
    results = out / "results.json"
    return run, json.loads(results.read_text()) if results.exists() else {}, out
