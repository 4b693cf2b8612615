"""``livecast rehearse`` end to end on its own stack (loop source): the shipped smoke scenario
(200 viewers; 14 s of it here) is GO on a healthy build; 2 when it cannot run. NO-GO naming the
violated SLOs when every part is delayed 3 s: tests/integration/test_rehearse_locust.py, both
engines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.processes import descendants, livecast, none_left

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SRC = str(ROOT / "src")
SMOKE = ROOT / "examples" / "smoke.toml"  # the shipped scenario: 200 viewers, 30 s, loop source


def smoke_scenario(cache: Path) -> str:
    """examples/smoke.toml with the session's loop cache (pre-encoded once), a 4 s loop instead
    of 20 s to pre-encode and 14 s of show instead of 30 (the suite's budget): all 200 viewers
    still arrive within 10 s, the whole flash crowd, and the last of them watch at least 4 s."""
    text = SMOKE.read_text()
    assert "viewers = 200" in text and "duration = 30.0" in text and "loop_seconds = 20" in text
    text = text.replace("duration = 30.0", "duration = 14.0", 1)
    text = text.replace("loop_seconds = 20", "loop_seconds = 4", 1)
    return text.replace("[target]\n", f'[target]\ncache_dir = "{cache}"\n', 1)


def rehearse(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run(
        [sys.executable, "-m", "livecast", "rehearse", *args],
        capture_output=True, text=True, env=env, timeout=timeout,
    )  # fmt: skip


def test_a_healthy_rehearsal_is_go(tmp_path: Path, loop_cache: Path) -> None:
    scenario = tmp_path / "s.toml"
    scenario.write_text(smoke_scenario(loop_cache))
    run = rehearse(str(scenario), "--out", str(tmp_path / "out"))
    assert run.returncode == 0, run.stderr[-3000:]
    assert "\nGO\n" in run.stderr and "t=" in run.stderr  # progress lines, then the verdict
    document = json.loads((tmp_path / "out" / "results.json").read_text())
    assert document["verdict"]["verdict"] == "GO"
    assert document["summary"]["viewers"] == 200 and document["summary"]["started"] == 200
    html = (tmp_path / "out" / "report.html").read_text()
    assert "<svg" in html and "GO" in html


def test_unreachable_target_and_bad_scenario_exit_2(tmp_path: Path) -> None:
    scenario = tmp_path / "s.toml"
    scenario.write_text('duration = 5\n[target]\nurls = ["http://127.0.0.1:9/live/main.m3u8"]\n')
    run = rehearse(str(scenario), "--out", str(tmp_path / "out"), timeout=60)
    assert run.returncode == 2 and "unreachable" in run.stderr
    scenario.write_text("duration = 5\n[audience]\nviewers = -1\n")
    run = rehearse(str(scenario), "--out", str(tmp_path / "out"), timeout=60)
    assert run.returncode == 2 and "'audience.viewers'" in run.stderr


def test_a_rehearsal_killed_mid_run_leaves_no_stack_behind(
    tmp_path: Path, loop_cache: Path
) -> None:
    """SIGKILL gives ``livecast rehearse`` no chance to stop its stack: the stack's parent-death
    signal does, and the driver workers' (a leftover would load every later run)."""
    scenario = tmp_path / "s.toml"
    scenario.write_text(smoke_scenario(loop_cache).replace("viewers = 200", "viewers = 5"))
    run = livecast("rehearse", str(scenario), "--out", str(tmp_path / "out"))
    assert run.stderr is not None
    try:
        line = ""
        while not line.startswith("t="):  # the stack is up and viewers are watching
            line = run.stderr.readline()
            assert line, "livecast rehearse ended before its first progress line"
        below = descendants(run.pid)
        assert below  # the stack (and the driver workers)
    finally:
        run.kill()
        run.wait()
    assert none_left(below, timeout=10.0)
