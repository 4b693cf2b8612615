"""``livecast rehearse --engine locust`` end to end on its own stack (loop source): the smoke
scenario, reduced (30 viewers for 10 s, a 4 s loop), with a Locust master and 2 local workers is
GO, and its QoE figures agree with the local driver's on the same scenario within
:data:`TOLERANCE`; with 3 s on every part it is NO-GO naming the same SLOs as the driver; a worker
killed mid-run leaves a result marked partial naming it; refused workers (another scenario,
another livecast version), no workers in time, an unreachable master and a master address in use
are exit 2.

Lean on time: the session's loop cache (the first rehearsal of the session warms it); the healthy
runs of both engines (the same conditions for the comparison), the two slow runs, the
killed-worker run and a churning ramp all go side by side. Every process has a hard deadline and
is killed."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from livecast.scenario.audience import concurrent_viewers, plan_audience
from livecast.scenario.file import load_scenario
from tests.integration.processes import descendants
from tests.requirements import skip_unless

pytestmark = [
    pytest.mark.integration,
    skip_unless(importlib.util.find_spec("locust") is not None, "locust"),
]

ROOT = Path(__file__).resolve().parents[2]
SRC = str(ROOT / "src")
SMOKE = ROOT / "examples" / "smoke.toml"
SLOW_PARTS = """
[[faults]]
at = 0.0
kind = "latency"
target = "origin"
latency_ms = 3000
match = "part"
"""
# Locust engine vs local driver, same scenario (the figures of docs/rehearsal.md): the same
# viewers start; startup and latency p95 within 0.5 s, rebuffering within 0.01, requests
# within 15 %.
CHURN_FROM = 'kind = "flash"\nviewers = 30\nwithin = 10.0\n'
CHURN_TO = 'kind = "ramp"\nviewers = 16\nwithin = 6.0\nmean_session = 4.0\nreplace = true\n'
TOLERANCE = {"startup_p95_s": 0.5, "latency_behind_live_p95_s": 0.5, "rebuffering_ratio": 0.01}
REQUESTS_TOLERANCE = 0.15
DEADLINE = 120.0  # seconds any rehearsal may take here
ENV = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}


@dataclass
class Run:
    """A finished ``livecast rehearse``: its exit code, stderr and results (if any)."""

    code: int
    stderr: str
    out: Path

    @property
    def results(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads((self.out / "results.json").read_text())
        return document

    def violated(self) -> set[str]:
        checks = self.results["verdict"]["checks"]
        return {c["slo"]["name"] for c in checks if c["violated"]}


def scenario(tmp: Path, cache: Path, name: str, extra: str = "") -> Path:
    """examples/smoke.toml, reduced: 30 viewers, 10 s, a 4 s loop in the session's cache."""
    text = SMOKE.read_text()
    for old, new in (("viewers = 200", "viewers = 30"), ("duration = 30.0", "duration = 10.0"),
                     ("loop_seconds = 20", "loop_seconds = 4")):  # fmt: skip
        assert old in text
        text = text.replace(old, new)
    path = tmp / f"{name}.toml"
    path.write_text(text.replace("[target]\n", f'[target]\ncache_dir = "{cache}"\n', 1) + extra)
    return path


def start(*args: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "livecast", *args], stdout=out, stderr=subprocess.STDOUT, env=ENV
        )


def finish(process: subprocess.Popen[bytes], log: Path, out: Path, timeout: float) -> Run:
    try:
        code = process.wait(timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return Run(code, log.read_text(errors="replace"), out)


def rehearse(path: Path, out: Path, *flags: str, kill_worker_at: str = "") -> Run:
    log = out.with_suffix(".log")
    process = start("rehearse", str(path), "--out", str(out), *flags, log=log)
    if kill_worker_at:
        _kill_a_worker(process, log, kill_worker_at)
    return finish(process, log, out, DEADLINE)


def _kill_a_worker(process: subprocess.Popen[bytes], log: Path, progress: str) -> None:
    """SIGKILL one local worker once ``progress`` (a progress line's start) is printed."""
    deadline = time.monotonic() + DEADLINE / 2
    while progress not in log.read_text(errors="replace"):
        assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.2)
    workers = [pid for pid in descendants(process.pid) if b"locust_worker" in _cmdline(pid)]
    assert len(workers) == 2, workers
    os.kill(workers[0], signal.SIGKILL)


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


@pytest.fixture(scope="module")
def cache(loop_cache: Path) -> Path:
    return loop_cache


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rehearse-locust")


@pytest.fixture(scope="module")
def runs(work: Path, cache: Path) -> Iterator[dict[str, Run]]:
    """Every rehearsal of the module's fixtures at once, each on its own stack: the healthy
    scenario on the driver and on Locust with 2 workers; 3 s on every part (driver and
    Locust); a Locust run losing a worker at t = 2 s; a churning ramp on Locust."""
    healthy = scenario(work, cache, "healthy")
    slow = scenario(work, cache, "slow", SLOW_PARTS)
    locust = ("--engine", "locust", "--workers", "2")
    churn = scenario(work, cache, "churn", "").read_text().replace(CHURN_FROM, CHURN_TO)
    (work / "churn.toml").write_text(churn)
    with ThreadPoolExecutor(6) as pool:
        started = {
            "driver": pool.submit(rehearse, healthy, work / "driver"),
            "locust": pool.submit(rehearse, healthy, work / "locust", *locust),
            "churn": pool.submit(rehearse, work / "churn.toml", work / "churn", *locust),
            "driver-slow": pool.submit(rehearse, slow, work / "driver-slow"),
            "locust-slow": pool.submit(rehearse, slow, work / "locust-slow", *locust),
            "killed": pool.submit(
                rehearse,
                scenario(work, cache, "killed"),
                work / "killed",
                *locust,
                kill_worker_at="t=   2s",
            ),
        }
        yield {name: future.result() for name, future in started.items()}


@pytest.fixture(scope="module")
def healthy(runs: dict[str, Run]) -> tuple[Run, Run]:
    """The driver's healthy run and Locust's, side by side (the same conditions for both)."""
    return runs["driver"], runs["locust"]


@pytest.fixture(scope="module")
def side_by_side(runs: dict[str, Run]) -> dict[str, Run]:
    return runs


def test_a_two_worker_locust_rehearsal_is_go_and_agrees_with_the_driver(
    healthy: tuple[Run, Run],
) -> None:
    driver, locust = healthy
    assert driver.code == 0, driver.stderr[-3000:]
    assert locust.code == 0, locust.stderr[-3000:]
    assert "\nGO\n" in locust.stderr and "t=   5s" in locust.stderr  # progress, then the verdict
    assert "worker 1 accepted" in locust.stderr
    document = locust.results
    assert document["verdict"]["verdict"] == "GO"
    assert document["meta"]["engine"] == {"name": "locust", "workers": 2}
    assert "partial" not in document["meta"]
    a, b = driver.results["summary"], document["summary"]
    assert a["viewers"] == b["viewers"] == 30 and a["started"] == b["started"] == 30
    for figure, tolerance in TOLERANCE.items():
        assert abs(a[figure] - b[figure]) <= tolerance, (figure, a[figure], b[figure])
    assert abs(a["requests"] - b["requests"]) <= REQUESTS_TOLERANCE * a["requests"], (a, b)
    assert "<svg" in (locust.out / "report.html").read_text()
    worker_log = (locust.out / "locust" / "worker0.log").read_text()
    assert "viewers to play" in worker_log and "warning: this clock" not in worker_log


def test_three_seconds_on_parts_is_no_go_naming_the_drivers_slos(
    side_by_side: dict[str, Run],
) -> None:
    driver, locust = side_by_side["driver-slow"], side_by_side["locust-slow"]
    assert driver.code == 1, driver.stderr[-3000:]
    assert locust.code == 1, locust.stderr[-3000:]
    assert "startup_p95" in driver.violated()
    assert locust.violated() == driver.violated()
    verdict = next(line for line in locust.stderr.splitlines() if line.startswith("NO-GO"))
    assert all(name in verdict for name in driver.violated())


def test_a_worker_killed_mid_run_leaves_a_partial_result(side_by_side: dict[str, Run]) -> None:
    run = side_by_side["killed"]
    assert run.code in (0, 1), run.stderr[-3000:]  # the run went on with the other worker
    assert "LOST: worker" in run.stderr and "PARTIAL: 1 worker(s) lost" in run.stderr
    (lost,) = run.results["meta"]["partial"]["workers_lost"]
    assert lost["reason"] in ("missing heartbeats", "no final report") and 2 <= lost["t"] <= 15
    assert lost["viewers_playing"] > 0 and lost["slot"] in (0, 1)
    assert run.results["summary"]["viewers"] < 30  # the lost viewers' outcomes never came
    assert "Partial result" in (run.out / "report.html").read_text()


def test_locust_users_follow_a_churning_ramp(work: Path, side_by_side: dict[str, Run]) -> None:
    """Each planned viewer arrives and leaves on time: the viewers watching each second are
    the plan's (replacements included), within 2 (sampled at the second's start)."""
    run = side_by_side["churn"]
    assert run.code in (0, 1), run.stderr[-3000:]
    planned = load_scenario(work / "churn.toml")
    plans = plan_audience(
        planned.audience, planned.duration, low_latency_share=planned.low_latency_share,
        downlink=list(planned.downlink), seed=planned.seed,
    )  # fmt: skip
    assert len(plans) > 16  # churn replacements
    counters = run.results["stats"]["viewers"]["counters"]
    assert counters["viewers"] == len(plans)  # every plan played once (some leave before start)
    timeline = run.results["stats"]["timeline"]
    active = dict(zip(timeline["t_s"], timeline["active_viewers"], strict=True))
    expected = {second: concurrent_viewers(plans, second) for second in range(1, 10)}
    assert all(abs(active[s] - expected[s]) <= 2 for s in expected), (active, expected)


def test_refused_workers_and_no_workers_in_time_exit_2(work: Path, cache: Path) -> None:
    path = scenario(work, cache, "remote")
    other = scenario(work, cache, "other", "# another file\n")
    port = _free_port()
    out = work / "remote"
    master = start(
        "rehearse", str(path), "--out", str(out), "--engine", "locust", "--workers", "1",
        "--master-bind", f"127.0.0.1:{port}", "--connect-timeout", "4",
        log=out.with_suffix(".log"),
    )  # fmt: skip
    try:  # both workers wait for the master together: refused within its 4 s, not one by one
        address = ("--master", f"127.0.0.1:{port}", "--connect-timeout", "20")
        with ThreadPoolExecutor(2) as pool:
            wrong = pool.submit(_worker, *address, "--scenario", str(other))
            old = pool.submit(_worker, *address, version="9.9.9")
            wrong_scenario, old_version = wrong.result(), old.result()
        for worker, message in ((wrong_scenario, "the worker's scenario file"),
                                (old_version, "livecast 9.9.9 on the worker")):  # fmt: skip
            assert worker.returncode == 2, worker.stderr[-2000:]
            assert f"refused by the master: {message}" in worker.stderr
    finally:
        run = finish(master, out.with_suffix(".log"), out, DEADLINE)
    assert run.code == 2, run.stderr[-3000:]
    assert "could not run: 1 worker(s) expected, 0 accepted within 4 s" in run.stderr
    assert "worker refused" in run.stderr


def test_an_unreachable_or_busy_master_address_is_exit_2(work: Path, cache: Path) -> None:
    began = time.monotonic()
    with socket.socket() as busy, socket.socket() as nobody, ThreadPoolExecutor(1) as pool:
        nobody.bind(("127.0.0.1", 0))  # held, never listening: refused while the stack starts
        unreachable = pool.submit(  # meanwhile, a worker with no master to reach
            _worker, "--master", f"127.0.0.1:{nobody.getsockname()[1]}", "--connect-timeout", "2"
        )
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = f"127.0.0.1:{busy.getsockname()[1]}"
        run = rehearse(
            scenario(work, cache, "busy"), work / "busy", "--engine", "locust",
            "--master-bind", taken, "--workers", "1",
        )  # fmt: skip
        worker = unreachable.result()
    assert worker.returncode == 2 and time.monotonic() - began < 30
    assert "cannot reach the master at 127.0.0.1:" in worker.stderr
    assert "within 2 s" in worker.stderr
    assert run.code == 2, run.stderr[-3000:]
    assert f"could not run: the Locust master cannot listen on {taken}" in run.stderr


def _worker(*args: str, version: str = "") -> subprocess.CompletedProcess[str]:
    """``livecast rehearse-worker ARGS``; with ``version``, the worker module itself in an
    interpreter whose livecast claims that version."""
    if version:
        code = (
            f"import os, sys, livecast; livecast.__version__ = {version!r}; "
            "from livecast.rehearse.locust_worker import main; "
            "code = main(sys.argv[1:]); sys.stderr.flush(); os._exit(code)"
        )
        command = [sys.executable, "-c", code, *args]
    else:
        command = [sys.executable, "-m", "livecast", "rehearse-worker", *args]
    return subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=60)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
