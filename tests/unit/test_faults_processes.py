"""stop_process / start_process: commands from timeline steps, the registry, the driver, signals."""

from __future__ import annotations

import asyncio
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from livecast.errors import ConfigError, LivecastError
from livecast.rehearse.faults.processes import (
    FaultDriver,
    ProcessCommand,
    Processes,
    check_targets,
    process_commands,
)
from livecast.scenario.timeline import Timeline, parse_timeline
from tests.requirements import skip_unless


def timeline(*entries: dict[str, Any]) -> Timeline:
    return parse_timeline(list(entries))


LINE = timeline(
    {"at": 5.0, "duration": 3.0, "kind": "stop_process", "target": "encoder"},
    {"at": 10.0, "kind": "stop_process", "target": "origin", "mode": "kill"},
    {"at": 12.0, "kind": "start_process", "target": "origin"},
    {"at": 1.0, "duration": 2.0, "kind": "latency", "target": "origin", "latency_ms": 5},
)


def test_commands_in_time_order() -> None:
    assert process_commands(LINE.transitions(-math.inf, 4.0)) == []
    assert process_commands(LINE.transitions(0.0, 100.0)) == [
        ProcessCommand(5.0, "stop", "encoder", "pause", 0),
        ProcessCommand(8.0, "start", "encoder", "pause", 0),
        ProcessCommand(10.0, "stop", "origin", "kill", 1),
        ProcessCommand(12.0, "start", "origin", "pause", 2),
    ]
    assert [c.verb for c in process_commands(LINE.transitions(7.0, 8.0))] == ["start"]


def test_check_targets_names_the_bad_key() -> None:
    check_targets(LINE, ["encoder", "origin"])
    with pytest.raises(ConfigError) as caught:
        check_targets(LINE, ["encoder"])
    assert caught.value.key == "faults[1].target"


class Recorder:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, what: str) -> Any:
        return lambda: self.calls.append(what)


def test_registry_pause_resume_kill_restart() -> None:
    rec = Recorder()
    processes = Processes()
    processes.register("encoder", pause=rec("pause"), resume=rec("resume"))
    processes.register("origin", terminate=rec("terminate"), restart=rec("restart"))
    processes.stop("encoder")
    processes.stop("encoder")  # already stopped: nothing more
    processes.start("encoder")
    processes.start("encoder")  # already running: nothing
    processes.stop("origin", "kill")
    assert processes.state == {"encoder": "running", "origin": "killed"}
    processes.restore()
    assert rec.calls == ["pause", "resume", "terminate", "restart"]
    assert processes.history[-1] == ("origin", "restart")
    assert processes.names() == ["encoder", "origin"]
    with pytest.raises(LivecastError):
        processes.stop("edge")
    with pytest.raises(LivecastError):
        processes.stop("encoder", "kill")  # no terminate registered


def test_driver_ticks_through_the_timeline() -> None:
    rec = Recorder()
    processes = Processes()
    processes.register("encoder", pause=rec("pause encoder"), resume=rec("resume encoder"))
    processes.register("origin", terminate=rec("kill origin"), restart=rec("restart origin"))
    now = [0.0]
    driver = FaultDriver(LINE, processes, clock=lambda: now[0])
    for t in (0.0, 1.5, 5.0, 6.0, 9.0, 11.0):
        now[0] = t
        driver.tick()
    assert rec.calls == ["pause encoder", "resume encoder", "kill origin"]
    assert processes.state["origin"] == "killed"
    driver.stop()  # restores what a fault left stopped
    assert rec.calls[-1] == "restart origin"
    assert [(e.at, e.what) for e in driver.events] == [
        (1.0, "started"),
        (3.0, "ended"),
        (5.0, "started"),
        (8.0, "ended"),
        (10.0, "started"),
    ]
    assert driver.events[0].label == "faults[3] latency on origin"


def test_driver_logs_a_failed_command() -> None:
    processes = Processes()
    driver = FaultDriver(LINE, processes, clock=lambda: 6.0)
    driver.tick()  # "encoder" is not registered
    assert driver.events[-1].what.startswith("failed:")


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def _wait_state(pid: int, wanted: str) -> str:
    deadline = time.monotonic() + 5
    state = _state(pid)
    while state != wanted and time.monotonic() < deadline:
        time.sleep(0.01)
        state = _state(pid)
    return state


@skip_unless(Path("/proc/self/stat").exists(), "proc")
def test_signals_to_a_real_process() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    restarted: list[int] = []
    try:
        processes = Processes()
        processes.register_pid("sleeper", lambda: child.pid, restart=lambda: restarted.append(1))
        processes.stop("sleeper")
        assert _wait_state(child.pid, "T") == "T"
        processes.start("sleeper")
        assert _wait_state(child.pid, "S") in {"S", "R"}
        processes.stop("sleeper", "kill")
        assert child.wait(timeout=5) == -15
        processes.start("sleeper")
        assert restarted == [1]
    finally:
        child.kill()
        child.wait()


def test_group_signals_reach_every_process_of_the_group() -> None:
    """nginx: pausing the master alone would leave its workers serving."""
    leader = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, sys, time; "
         "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)']); time.sleep(30)"],
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 5
        while not (members := _group_members(leader.pid)) or len(members) < 2:
            assert time.monotonic() < deadline, "the worker did not start"
            time.sleep(0.05)
        processes = Processes()
        processes.register_pid("tier", leader.pid, group=True)
        processes.stop("tier")
        assert {_wait_state(pid, "T") for pid in members} == {"T"}
        processes.start("tier")
        assert {_wait_state(pid, "S") for pid in members} <= {"S", "R"}
    finally:
        os.killpg(leader.pid, signal.SIGKILL)
        leader.wait()


def _group_members(group: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == group:
                members.append(int(entry.name))
    return members


async def test_driver_runs_on_the_loop_and_schedules_async_restarts() -> None:
    restarted = asyncio.Event()

    async def restart() -> None:
        restarted.set()

    processes = Processes()
    processes.register("origin", terminate=lambda: None, restart=restart)
    line = timeline(
        {"at": 0.0, "duration": 0.1, "kind": "stop_process", "target": "origin", "mode": "kill"}
    )
    driver = FaultDriver(line, processes)
    driver.start()
    await asyncio.wait_for(restarted.wait(), 2)
    driver.stop()
    assert processes.history == [("origin", "kill"), ("origin", "restart")]
