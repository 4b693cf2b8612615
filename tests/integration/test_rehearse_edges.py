"""``livecast rehearse`` with nginx edges in front of its own origin: viewers are spread over the
edges, the report carries each tier's requests/s and the edges' cache hit ratio."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from livecast.edge.nginx import find_nginx
from livecast.errors import LivecastError

pytestmark = pytest.mark.integration

SRC = str(Path(__file__).resolve().parents[2] / "src")
SCENARIO = """
name = "edges"
duration = 12.0
seed = 5
[target]
stack = true
source = "loop"
loop_seconds = 4
cache_dir = "{cache}"
edges = 2
[audience]
kind = "flash"
viewers = 30
within = 2.0
[players]
low_latency_share = 1.0
[slo]
defaults = true
[slo.edge_hit_ratio]
metric = "tiers.edge.hit_ratio"
op = ">="
threshold = 0.8
"""


def _has_nginx() -> bool:
    try:
        find_nginx(None)
    except LivecastError:
        return False
    return True


@pytest.mark.skipif(not _has_nginx(), reason="nginx is not installed (apt-get install nginx-light)")
def test_viewers_spread_over_two_edges_and_the_origin_is_offloaded(tmp_path: Path) -> None:
    scenario = tmp_path / "s.toml"
    scenario.write_text(SCENARIO.format(cache=tmp_path / "cache"))
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    run = subprocess.run(
        [sys.executable, "-m", "livecast", "rehearse", str(scenario), "--out", str(tmp_path / "o")],
        capture_output=True, text=True, env=env, timeout=180,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    document = json.loads((tmp_path / "o" / "results.json").read_text())
    entry_points = document["meta"]["entry_points"]
    assert len(entry_points) == 2 and len(set(entry_points)) == 2
    summary = document["summary"]
    assert summary["tier_edge_hit_ratio"] >= 0.8
    # 30 viewers behind 2 edges: the origin sees a small fraction of what the edges serve
    assert summary["tier_origin_requests_per_s"] * 5 < summary["tier_edge_requests_per_s"]
    checks = {c["slo"]["name"]: c for c in document["verdict"]["checks"]}
    assert not checks["edge_hit_ratio"]["violated"]
    assert "Requests per second per tier" in (tmp_path / "o" / "report.html").read_text()
