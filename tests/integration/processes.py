"""Processes for the command-line tests: ``livecast …`` as a child, and what /proc says about it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[2] / "src")


def livecast(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """``python -m livecast ARGS`` from this checkout, stdout and stderr piped. A demo records
    into a fresh temporary directory (not ./recordings of the checkout)."""
    base = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    if args[:1] == ("demo",):
        base.setdefault("LIVECAST_RECORD_DIR", tempfile.mkdtemp(prefix="livecast-recording-"))
    return subprocess.Popen(
        [sys.executable, "-m", "livecast", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**base, **(env or {})},
    )


def _parents() -> dict[int, int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return parents


def children(pid: int) -> list[int]:
    return [child for child, parent in _parents().items() if parent == pid]


def descendants(pid: int) -> set[int]:
    parents = _parents()
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    """Running (a zombie, dead but not reaped, is not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def none_left(pids: Iterable[int], timeout: float = 5.0) -> bool:
    """Whether every one of ``pids`` is gone within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not any(alive(pid) for pid in pids)


def stop(proc: subprocess.Popen[str]) -> None:
    """SIGINT (a clean stop, as an operator's Ctrl-C), killed if it has not ended in 20 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def collect_lines(stream: asyncio.StreamReader, log: list[str]) -> None:
    """Every line of a child's ``stream`` into ``log``, until it closes."""
    while line := await stream.readline():
        log.append(line.decode(errors="replace"))
