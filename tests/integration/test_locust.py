"""The player model as a Locust user: a local master with 2 workers against the live stack on the
loop source (4 s pre-encode in the session's loop cache). Every process has a hard deadline and
is killed at the end."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import importlib.util
import json
import os
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from livecast.config import load_config
from livecast.pipeline import LivePipeline
from tests.requirements import skip_unless

pytestmark = [
    pytest.mark.integration,
    skip_unless(importlib.util.find_spec("locust") is not None, "locust"),
]

ROOT = Path(__file__).resolve().parents[2]
LOCUSTFILE = ROOT / "src" / "livecast" / "rehearse" / "locust_user.py"
RUN_SECONDS = 10
DEADLINE = 40.0


@pytest_asyncio.fixture
async def looped(loop_cache: Path) -> AsyncIterator[LivePipeline]:
    overrides = {
        "port": 0,
        "source": "loop",
        "loop_seconds": 4.0,
        "cache_dir": str(loop_cache),
    }
    async with LivePipeline(load_config(None, env={}, overrides=overrides)).running(60) as live:
        yield live


async def _locust(*args: str, log: Path, env: dict[str, str]) -> asyncio.subprocess.Process:
    with log.open("wb") as out:  # the child keeps its own descriptor
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(LOCUSTFILE),
            *args,
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
        )


async def test_master_with_two_workers_plays_viewers(looped: LivePipeline, tmp_path: Path) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), *filter(None, [env.get("PYTHONPATH")])])
    results = tmp_path / "qoe.json"
    port = _free_port()
    common = ("--master-host", "127.0.0.1", "--master-port", str(port))
    master = await _locust(
        "--master",
        "--master-bind-host",
        "127.0.0.1",
        "--master-bind-port",
        str(port),
        "--headless",
        "--expect-workers",
        "2",
        "--expect-workers-max-wait",
        "20",
        "-u",
        "10",
        "-r",
        "5",
        "-t",
        f"{RUN_SECONDS}s",
        "--stop-timeout",
        "0",
        "--host",
        looped.base_url,
        "--livecast-path",
        "/live/main.m3u8",
        "--livecast-results",
        str(results),
        "--csv",
        str(tmp_path / "run"),
        "--loglevel",
        "INFO",
        log=tmp_path / "master.log",
        env=env,
    )
    workers = [
        await _locust("--worker", *common, log=tmp_path / f"worker{i}.log", env=env)
        for i in range(2)
    ]
    procs = [master, *workers]
    try:
        code = await asyncio.wait_for(master.wait(), DEADLINE)
        for worker in workers:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(worker.wait(), 5.0)
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    master_log = (tmp_path / "master.log").read_text(errors="replace")
    assert code == 0, master_log[-3000:]
    assert "2 workers connected" in master_log, master_log[-3000:]
    assert "to 2 ready workers" in master_log, master_log[-3000:]

    with (tmp_path / "run_stats.csv").open() as f:
        rows = {(row["Type"], row["Name"]): row for row in csv.DictReader(f)}
    for kind in ("multivariant", "playlist", "init", "part"):
        row = rows.get((kind, kind))
        assert row is not None and int(row["Request Count"]) > 0, (kind, sorted(rows))
    assert int(rows[("part", "part")]["Request Count"]) > 10 * 10, rows[("part", "part")]
    total = rows[("", "Aggregated")]
    assert int(total["Failure Count"]) == 0, total

    stats = json.loads(results.read_text())
    viewers = stats["viewers"]["counters"]
    assert viewers["viewers"] >= 10 and viewers["started"] >= 10, viewers
    assert viewers["start_failures"] == 0 and viewers["fatal_errors"] == 0, viewers
    part_statuses = stats["requests"]["part"]["status_counts"]
    assert part_statuses.get("200", 0) > 10 * 10 and set(part_statuses) == {"200"}, part_statuses
    timeline = stats["timeline"]
    assert max(timeline["active_viewers"]) == 10, timeline["active_viewers"]
    # the harness's records, as the asyncio driver's: latency every second, requests per tenth,
    # playlist ages and bytes
    latencies = sum(second["count"] for second in timeline["live_latency_s"])
    assert latencies >= 10 * (RUN_SECONDS - 4), latencies
    sent = sum(sum(tenths) for tenths in timeline["request_tenths"])
    total_requests = sum(sum(k["status_counts"].values()) for k in stats["requests"].values())
    assert total_requests <= sent <= total_requests + 4 * viewers["viewers"], (sent, total_requests)
    client = stats["indicators"]["client"]
    assert client["counters"]["playlists"] > 10 * 5 and client["bytes_by_kind"]["part"] > 0
    assert "livecast QoE: " in master_log and "no final QoE" not in master_log


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
