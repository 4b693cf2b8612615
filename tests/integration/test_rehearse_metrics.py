"""``livecast rehearse --metrics-port 0`` with the Locust engine: its workers' per-second reports
(Progress) feed the ``livecast_rehearsal_*`` metrics as the local driver's do (that engine is read
by tests/e2e/test_dashboard.py). The endpoint is scraped while the show runs."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import sys
import urllib.request
from pathlib import Path

import pytest

from livecast.results.scrape import parse_prometheus_text
from tests.integration.processes import collect_lines
from tests.requirements import skip_unless

pytestmark = [
    pytest.mark.integration,
    skip_unless(importlib.util.find_spec("locust") is not None, "locust"),
]

SRC = str(Path(__file__).resolve().parents[2] / "src")
SCENARIO = """
name = "metrics"
duration = 10.0
seed = 5

[target]
stack = true
source = "loop"
loop_seconds = 4
cache_dir = "{cache}"

[audience]
kind = "flash"
viewers = 10
within = 2.0

[players]
low_latency_share = 1.0

[[downlink]]
kbps = 25000
weight = 1
"""


def scrape(url: str) -> dict[str, float]:
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return {s.name: s.value for s in parse_prometheus_text(text) if "le" not in dict(s.labels)}


async def test_locust_workers_feed_the_rehearsal_metrics(tmp_path: Path, loop_cache: Path) -> None:
    scenario = tmp_path / "s.toml"
    scenario.write_text(SCENARIO.format(cache=loop_cache))
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "livecast", "rehearse", str(scenario), "--out", str(tmp_path / "o"),
        "--engine", "locust", "--workers", "1", "--metrics-port", "0",
        stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    assert process.stderr is not None
    log: list[str] = []
    try:
        url = None
        while url is None:
            line = (await asyncio.wait_for(process.stderr.readline(), 60)).decode()
            assert line, "".join(log)
            log.append(line)
            match = re.match(r"metrics: (http://\S+)", line)
            url = match.group(1) if match else None
        reading = asyncio.create_task(collect_lines(process.stderr, log))
        last: dict[str, float] = {}
        while process.returncode is None:
            try:
                last = await asyncio.to_thread(scrape, url)
            except OSError:
                break  # the run ended: its server stopped
            if (
                last.get("livecast_rehearsal_viewers_started_total") == 10
                and last.get("livecast_rehearsal_latency_seconds_count", 0) > 10
            ):
                break
            await asyncio.sleep(0.5)
        assert last["livecast_rehearsal_viewers_started_total"] == 10, (last, "".join(log))
        assert last["livecast_rehearsal_startup_seconds_count"] == 10
        assert 0 < last["livecast_rehearsal_startup_seconds_sum"] < 10 * 3.0
        assert last["livecast_rehearsal_latency_seconds_count"] > 10
        assert last["livecast_rehearsal_requests_total"] > 100
        assert last["livecast_rehearsal_viewers"] == 10
        assert await asyncio.wait_for(process.wait(), 90) in (0, 1), "".join(log)[-3000:]
        await reading
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()
