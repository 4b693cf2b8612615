"""``livecast rehearse`` with nginx edges in front of its own origin: viewers are spread over the
edges, the report carries each tier's requests/s and the edges' cache hit ratio.

Lean on time: the module's three rehearsals (healthy, an edge killed, a planted session cookie)
go side by side, each on a stack and edges of its own, with the session's loop cache."""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.integration.rehearsing import SRC, Rehearsal, has_nginx, run_rehearsal
from tests.requirements import skip_unless

pytestmark = pytest.mark.integration

SCENARIO = """
name = "edges"
duration = 12.0
seed = 5
target_viewers = 100000
target_edges = 60
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


def rehearse(tmp_path: Path, cache: Path, src: str, extra: str = "") -> Rehearsal:
    """``livecast rehearse`` of SCENARIO (+ ``extra`` TOML) with ``src`` first on PYTHONPATH and
    the loop pre-encoded in ``cache`` (the session's); (run, results.json, its out directory)."""
    return run_rehearsal(SCENARIO.format(cache=cache) + extra, tmp_path, src)


@pytest.fixture(scope="module")
def rehearsals(tmp_path_factory: pytest.TempPathFactory, loop_cache: Path) -> dict[str, Rehearsal]:
    """The healthy run, the one with edge-1 killed and the one with the planted cookie (on a
    copy of src/, first on PYTHONPATH), side by side."""
    planted = tmp_path_factory.mktemp("planted")
    shutil.copytree(Path(SRC) / "livecast", planted / "src" / "livecast")
    wire = planted / "src" / "livecast" / "origin" / "wire.py"
    text = wire.read_text()
    assert text.count(SESSION_COOKIE[0]) == 1
    wire.write_text(text.replace(*SESSION_COOKIE))
    with ThreadPoolExecutor(3) as pool:
        runs = {
            "spread": pool.submit(rehearse, tmp_path_factory.mktemp("spread"), loop_cache, SRC),
            "killed": pool.submit(
                rehearse, tmp_path_factory.mktemp("killed"), loop_cache, SRC, KILL_EDGE
            ),
            "planted": pool.submit(rehearse, planted, loop_cache, str(planted / "src")),
        }
        return {name: future.result() for name, future in runs.items()}


@skip_unless(has_nginx(), "nginx")
def test_viewers_spread_over_two_edges_and_the_origin_is_offloaded(
    rehearsals: dict[str, Rehearsal],
) -> None:
    run, document, out = rehearsals["spread"]
    assert run.returncode == 0, run.stderr[-3000:]
    entry_points = document["meta"]["entry_points"]
    assert len(entry_points) == 2 and len(set(entry_points)) == 2
    summary = document["summary"]
    assert summary["tier_edge_hit_ratio"] >= 0.8
    # 30 viewers behind 2 edges: the origin sees a small fraction of what the edges serve
    assert summary["tier_origin_requests_per_s"] * 5 < summary["tier_edge_requests_per_s"]
    checks = {c["slo"]["name"]: c for c in document["verdict"]["checks"]}
    assert not checks["edge_hit_ratio"]["violated"]
    assert "Requests per second per tier" in (out / "report.html").read_text()
    # the scale-invariant indicators were measured, and the projection to 100,000 viewers made
    measured = {c["subject"]: c["measured"] for c in document["verdict"]["checks"]}
    assert measured["objects.edge.part.upstream_per_object"] == pytest.approx(1.0, abs=0.2)
    assert measured["objects.edge.playlist-blocking.upstream_per_object"] <= 1.5
    assert measured["freshness.staleness_p95_parts"] < 2
    assert measured["errors.early_404_share"] == 0
    assert 0 < measured["projected.origin.utilisation"] < 1
    assert measured["projected.edge.utilisation"] > 0


KILL_EDGE = """
[[faults]]
at = 4.0
duration = 3.0
kind = "stop_process"
target = "edge-1"
mode = "kill"
"""


@skip_unless(has_nginx(), "nginx")
def test_an_edge_killed_mid_show_is_started_again_and_its_viewers_are_counted(
    rehearsals: dict[str, Rehearsal],
) -> None:
    """A kill fault on an edge: its viewers fail (the rehearsal's players do not move to the
    other edge), the edge is started again when the fault ends and the run completes."""
    run, document, _ = rehearsals["killed"]
    assert run.returncode == 1, run.stderr[-3000:]  # NO-GO, not "could not run"
    events = " ".join(document["meta"]["fault_events"])
    assert "edge-1" in events and "start" in events
    viewers = document["stats"]["viewers"]["counters"]
    assert viewers["fatal_errors"] == pytest.approx(15, abs=2)  # the edge's half of 30
    assert "fatal_error_rate" in document["verdict"]["summary"]


SESSION_COOKIE = ('COMMON_HEADERS = "', 'COMMON_HEADERS = "Set-Cookie: sid=1; Path=/\\r\\n')


@skip_unless(has_nginx(), "nginx")
def test_a_planted_session_cookie_is_no_go_by_upstream_requests_per_object(
    rehearsals: dict[str, Rehearsal],
) -> None:
    """The origin sets a cookie on every answer, so the edges cache nothing: the verdict names
    the indicator that holds at any audience. Planted on a copy of src/, first on PYTHONPATH."""
    run, document, _ = rehearsals["planted"]
    assert run.returncode == 1, run.stderr[-3000:]
    violated = {c["slo"]["name"] for c in document["verdict"]["checks"] if c["violated"]}
    assert "upstream_per_object" in violated
    assert "upstream_per_object" in document["verdict"]["summary"]
    measured = {c["subject"]: c["measured"] for c in document["verdict"]["checks"]}
    assert measured["objects.edge.part.upstream_per_object"] > 3  # every viewer's request
