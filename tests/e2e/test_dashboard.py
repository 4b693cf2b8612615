"""The dashboard page in a real headless Chromium, fed by a running rehearsal.

``livecast rehearse --dashboard-port 0 --metrics-port 0`` runs a small show (20 viewers, 15 s) on
its own stack (loop source) behind two nginx edges; the page it serves at the printed URL is
opened while the show runs: its SSE updates arrive, the viewers figure goes above 0 and every QoE
plot has data points (read from the DOM). The edges' ``/edge/metrics`` are scraped too: the
per-tier requests plot has an ``edge-0`` and an ``edge-1`` line with points beside the origin's,
and the edge hit ratio and origin offload figures show values within [0, 1]. A screenshot is
kept in ``$LIVECAST_TEST_ARTIFACTS`` (else the test's tmp_path) and its path printed. The
rehearsal's ``/metrics`` is read too: the agreed ``livecast_rehearsal_*`` names, with the viewers
who started counted.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
import sys
import urllib.request
from pathlib import Path

import pytest

from livecast.edge.nginx import find_lua_modules
from livecast.results.scrape import parse_prometheus_text
from livecast.web.browser import find_chromium, open_page
from tests.integration.processes import collect_lines
from tests.integration.rehearsing import has_nginx
from tests.requirements import missing, skip_missing, skip_unless

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SRC = str(ROOT / "src")
SCENARIO = """
name = "dashboard"
duration = 15.0
seed = 5

[target]
stack = true
source = "loop"
loop_seconds = 4
cache_dir = "{cache}"
edges = 2

[audience]
kind = "flash"
viewers = 20
within = 3.0

[players]
low_latency_share = 1.0

[[downlink]]
kbps = 25000
weight = 1
"""
QOE_PLOTS = ("viewers", "startup", "latency", "requests")
EDGE_TIERS = ("edge-0", "edge-1")
# the per-tier requests plot: its line of each tier (data-name) with more than 2 points
TIER_POINTS = """(tiers) => Object.fromEntries(tiers.map(tier => {
    const line = document.querySelector(`#plot-requests polyline[data-name="${tier}"]`);
    return [tier, line ? parseInt(line.getAttribute("data-points") || "0") : 0];
}))"""


@pytest.fixture
def chromium() -> str:
    pytest.importorskip("playwright.async_api", reason=missing("playwright"))
    path = find_chromium()
    if path is None:
        skip_missing("chromium")
    return path


def artifacts_dir(tmp_path: Path) -> Path:
    configured = os.environ.get("LIVECAST_TEST_ARTIFACTS")
    path = Path(configured) if configured else tmp_path
    path.mkdir(parents=True, exist_ok=True)
    return path


async def read_urls(stderr: asyncio.StreamReader, log: list[str]) -> dict[str, str]:
    """The ``metrics:`` and ``dashboard:`` URLs the rehearsal prints when it starts."""
    urls: dict[str, str] = {}
    while len(urls) < 2:
        line = (await asyncio.wait_for(stderr.readline(), 60)).decode(errors="replace")
        if not line:
            raise AssertionError("rehearsal ended before printing its URLs:\n" + "".join(log))
        log.append(line)
        match = re.match(r"(metrics|dashboard): (http://\S+)", line)
        if match:
            urls[match.group(1)] = match.group(2)
    return urls


@skip_unless(has_nginx(), "nginx")
@skip_unless(bool(find_lua_modules()), "lua", "the edges answer /edge/metrics with them")
async def test_dashboard_shows_a_running_rehearsal(
    tmp_path: Path, loop_cache: Path, chromium: str
) -> None:
    scenario = tmp_path / "s.toml"
    scenario.write_text(SCENARIO.format(cache=loop_cache))
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "livecast", "rehearse", str(scenario), "--out", str(tmp_path / "o"),
        "--dashboard-port", "0", "--metrics-port", "0",
        stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    assert process.stderr is not None
    log: list[str] = []
    try:
        urls = await read_urls(process.stderr, log)
        drain = asyncio.create_task(collect_lines(process.stderr, log))
        async with open_page(urls["dashboard"], chromium=chromium) as opened:
            page = opened.page
            # the show runs: updates arrive, viewers play, the QoE plots fill, the edges are
            # scraped (their tiers' lines) and their cache figures are there
            await page.wait_for_function(
                """([plots, tiers]) => {
                    const viewers = parseFloat(document.getElementById("viewers").textContent);
                    const filled = plots.every(id => parseInt(document.getElementById(
                        "plot-" + id).getAttribute("data-points") || "0") > 2);
                    const edges = tiers.every(tier => {
                        const line = document.querySelector(
                            `#plot-requests polyline[data-name="${tier}"]`);
                        return line && parseInt(line.getAttribute("data-points") || "0") > 2;
                    });
                    const cache = ["edge_hit_ratio", "origin_offload"].every(
                        id => !isNaN(parseFloat(document.getElementById(id).textContent)));
                    return viewers > 0 && filled && edges && cache;
                }""",
                arg=[list(QOE_PLOTS), list(EDGE_TIERS)],
                timeout=40_000,
            )
            events = int(await page.get_attribute("body", "data-events") or "0")
            viewers = float(await page.text_content("#viewers") or "0")
            points = {
                plot: int(await page.get_attribute(f"#plot-{plot}", "data-points") or "0")
                for plot in QOE_PLOTS
            }
            polylines = await page.locator("#plot-viewers polyline").count()
            # the stack the rehearsal started is scraped too: the origin's tier
            origin_lines = await page.locator('#plot-requests polyline[data-name="origin"]').count()
            tier_points = await page.evaluate(TIER_POINTS, list(EDGE_TIERS))
            # the figures are percentages ("97.3 %"): back to ratios
            hit_ratio = _ratio(await page.text_content("#edge_hit_ratio"))
            offload = _ratio(await page.text_content("#origin_offload"))
            cache_lines = await page.locator("#plot-cache polyline").evaluate_all(
                "lines => lines.map(l => l.getAttribute('data-name'))"
            )
            shot = artifacts_dir(tmp_path) / "dashboard.png"
            await page.screenshot(path=str(shot), full_page=True)
            print(f"dashboard screenshot: {shot}")
            assert not opened.errors, opened.errors
        assert events >= 3 and viewers > 0, (events, viewers)
        assert all(n > 2 for n in points.values()) and polylines == 1, points
        assert origin_lines == 1 and shot.stat().st_size > 10_000
        # the edges' /edge/metrics were scraped: a line per edge tier, with points
        assert all(tier_points[tier] > 2 for tier in EDGE_TIERS), tier_points
        assert 0.0 <= hit_ratio <= 1.0 and 0.0 <= offload <= 1.0, (hit_ratio, offload)
        assert sorted(cache_lines) == ["hit ratio", "offload"], cache_lines
        metrics = await asyncio.to_thread(_get, urls["metrics"])
        names = {sample.name for sample in parse_prometheus_text(metrics)}
        assert {"livecast_rehearsal_viewers", "livecast_rehearsal_startup_seconds_bucket",
                "livecast_rehearsal_latency_seconds_count"} <= names  # fmt: skip
        started = next(s.value for s in parse_prometheus_text(metrics)
                       if s.name == "livecast_rehearsal_viewers_started_total")  # fmt: skip
        assert started > 0
        code = await asyncio.wait_for(process.wait(), 60)
        await drain
        assert code in (0, 1), "".join(log)[-3000:]  # GO or NO-GO: it ran
        assert (tmp_path / "o" / "results.json").exists()
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()


def _ratio(text: str | None) -> float:
    """A percentage figure of the page (``"97.3 %"``) as a ratio; NaN when it shows none."""
    match = re.fullmatch(r"\s*(-?[0-9.]+)\s*%\s*", text or "")
    return float(match.group(1)) / 100 if match else math.nan


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        body: bytes = response.read()
    return body.decode()
