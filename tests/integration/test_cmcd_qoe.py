"""The edges' view of QoE from CMCD agrees with the players' own: one rehearsal (40 LL-HLS
viewers through 2 nginx edges, 15 s), its kept access logs read by ``qoe.edge_logs.run_qoe`` and
compared with results.json.

Tolerances (docs/qoe.md says why):

* sessions — exact: every viewer sends one ``sid`` on every request;
* startup — medians within :data:`STARTUP_TOLERANCE_S`: the edge sees the first request start
  and an upper bound of the first frame (ms resolution of ``$msec``/``$request_time``); the
  player's clock starts at its play request, a little before its first request leaves;
* bitrate — the request-weighted mean ``br`` of video requests within :data:`BITRATE_TOLERANCE`
  of the players' time-weighted mean bitrate (parts are of equal duration; the players' figure
  weighs what was played, the edges' what was fetched);
* starvations — the sessions that sent ``bs`` are never more than the players' stalls (a stall
  flags the requests sent while it lasts and the first after it);
* throughput — ``mtp`` median at least the top rendition's bitrate most requests were for (the
  ABR picks a rendition under its estimate, the same estimate ``mtp`` reports) and under 1000×;
* latency — the buffer ahead (``bl`` median) is a lower bound of the players' latency behind live
  (+ 0.1 s: ``bl`` is rounded to 100 ms), and within 1 s of it (a part or three behind).
"""

from __future__ import annotations

import asyncio
import time
import urllib.request
from pathlib import Path

import pytest

from livecast.config import load_config
from livecast.edge.nginx import find_nginx
from livecast.edge.topology import TopologySpec, running_topology
from livecast.errors import LivecastError
from livecast.player.cmcd import url_encode
from livecast.qoe.edge_logs import ACCESS_LOGS_DIR, run_qoe
from tests.integration.rehearsing import has_nginx, run_rehearsal
from tests.requirements import skip_missing, skip_unless

pytestmark = pytest.mark.integration

STARTUP_TOLERANCE_S = 0.15
BITRATE_TOLERANCE = 0.15
SCENARIO = """
name = "cmcd"
duration = 15.0
seed = 7
[target]
stack = true
source = "loop"
loop_seconds = 4
cache_dir = "{cache}"
edges = 2
[audience]
kind = "flash"
viewers = 40
within = 3.0
[players]
low_latency_share = 1.0
"""


@skip_unless(has_nginx(), "nginx")
def test_edge_cmcd_qoe_agrees_with_the_players(tmp_path: Path, loop_cache: Path) -> None:
    began = time.monotonic()
    run, document, out = run_rehearsal(SCENARIO.format(cache=loop_cache), tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    logs = sorted((out / ACCESS_LOGS_DIR).glob("edge-*.log"))
    assert [log.name for log in logs] == ["edge-0.log", "edge-1.log"]
    figures, aggregator = run_qoe(logs)
    assert aggregator.malformed == 0 and list(figures) == ["main"]
    edge = figures["main"]
    summary = document["summary"]
    counters = document["stats"]["viewers"]["counters"]

    assert edge.sessions == counters["viewers"] == 40
    assert edge.started_sessions == counters["started"]

    player_startup = summary["startup_p50_s"]
    assert edge.startup_median_s is not None
    assert abs(edge.startup_median_s - player_startup) <= STARTUP_TOLERANCE_S, (
        edge.startup_median_s,
        player_startup,
    )

    requests = edge.media_requests_by_bitrate
    mean_br_bps = 1000 * sum(br * n for br, n in requests.items()) / sum(requests.values())
    player_bps = summary["avg_bitrate_mean_bps"]
    assert abs(mean_br_bps - player_bps) <= BITRATE_TOLERANCE * player_bps, (
        mean_br_bps,
        player_bps,
    )

    assert edge.sessions_with_starvation <= counters["stalls"]
    assert edge.starvations >= edge.sessions_with_starvation

    most_requested = max(requests, key=requests.__getitem__)
    assert edge.throughput_median_kbps is not None
    assert most_requested <= edge.throughput_median_kbps <= 1000 * most_requested

    latency = summary["latency_behind_live_p50_s"]
    assert edge.buffer_ahead_median_s is not None
    assert edge.buffer_ahead_median_s <= latency + 0.1
    assert latency - edge.buffer_ahead_median_s <= 1.0
    # the rehearsal's own meta.cmcd and report say the same (results/report_cmcd.py)
    cmcd = document["meta"]["cmcd"]
    assert cmcd["compared_event"] == "main" and cmcd["malformed_requests"] == 0
    assert cmcd["events"]["main"]["sessions"] == 40
    assert cmcd["agreement"] == {
        "sessions": True,
        "startup": True,
        "bitrate": True,
        "starvation": True,
    }
    assert "CMCD at the edges" in (out / "report.html").read_text()
    assert time.monotonic() - began < 90  # the rehearsal is bounded (15 s of show + the stack)


def scrape(url: str) -> dict[str, float]:
    """The samples of a /metrics answer whose name starts with livecast_qoe_."""
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        if line.startswith("livecast_qoe_"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def fetch(url: str, headers: dict[str, str] | None = None) -> bytes:
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=10) as response:
        body: bytes = response.read()
        return body


async def test_livecast_up_serves_edge_and_origin_cmcd_on_the_origins_metrics(
    loop_cache: Path,
) -> None:
    """``running_topology`` (what ``livecast up`` runs): the origin's /metrics carries the CMCD
    of its edges' logs (query and header forms) as source="edge" and of the requests reaching
    it as source="origin"."""
    try:
        find_nginx()
    except LivecastError as exc:
        skip_missing("nginx", str(exc))
    overrides = {"port": 0, "source": "loop", "loop_seconds": 4, "cache_dir": str(loop_cache)}
    config = load_config(None, env={}, overrides=overrides)
    query = "CMCD=" + url_encode('cid="live",ot=m,sf=h,sid="q-1",st=l,su')
    async with running_topology(config, TopologySpec(edges=2)) as top:
        edge_0, edge_1 = top.entry_urls
        assert (await asyncio.to_thread(fetch, f"{edge_0}?{query}")).startswith(b"#EXTM3U")
        session = {"CMCD-Session": 'sid="h-1",st=l', "CMCD-Object": "ot=m"}
        assert (await asyncio.to_thread(fetch, edge_1, session)).startswith(b"#EXTM3U")
        bs = "CMCD=" + url_encode('bs,ot=m,sid="o-1"')
        origin = top.origin_base_url
        await asyncio.to_thread(fetch, f"{origin}/live/main.m3u8?{bs}")
        metrics = origin + "/metrics"
        edge_sessions = 'livecast_qoe_sessions{event="main",source="edge"}'
        deadline = time.monotonic() + 5  # nginx flushes its access log buffer every second
        while (samples := await asyncio.to_thread(scrape, metrics)).get(edge_sessions) != 2:
            assert time.monotonic() < deadline, samples
            await asyncio.sleep(0.2)
        # the origin saw its own request and the edges' first (uncached) one, CMCD kept
        assert samples['livecast_qoe_sessions{event="main",source="origin"}'] >= 2
        starved = 'livecast_qoe_buffer_starvations_total{event="main",source="origin"}'
        assert samples[starved] == 1
        assert samples['livecast_qoe_buffer_starvations_total{event="main",source="edge"}'] == 0
