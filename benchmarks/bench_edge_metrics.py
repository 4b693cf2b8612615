"""The cost of the edge's own metrics: nginx CPU per request, metrics off vs on.

One livecast stack on the loop source (``livecast serve``) and two nginx edges in front of it —
identical (Debian's Lua modules and the wake-up collapse, one worker each) but for the counters
(``TierConfig(metrics=…)``, ``livecast.edge.metrics_lua``: a few ``incr`` on a shared dict in
the log phase of every request). The same load runs against each edge in turn, alternating
``--repeat`` times: ``--connections`` keep-alive connections, each GETting the 720p init segment
(a cached media object: the path under test is nginx's own, not the origin) as fast as the edge
answers, for ``--seconds``. Per run: requests, the edge's CPU (its master and worker, from
``/proc``) over the window, and µs of edge CPU per request; then the ratio on/off and the µs the
metrics add per request. Last, the time of a ``GET /edge/metrics`` of the counting edge (the
render: every key of the dict, sorted).

    python3 benchmarks/bench_edge_metrics.py [--connections 50] [--seconds 5] [--repeat 2]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import tempfile
import time
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

from livecast.edge.metrics_lua import METRICS_PATH  # noqa: E402
from livecast.edge.nginx import NginxTier, find_lua_modules  # noqa: E402
from livecast.edge.nginx_conf import Upstream  # noqa: E402
from livecast.edge.topology import TopologySpec, tier_configs  # noqa: E402
from procs import edge_cpu_load, loop_stack  # noqa: E402

SCRAPES = 20


async def load(tier: NginxTier, media: str, connections: int, seconds: float) -> dict[str, Any]:
    """``connections`` viewers on ``tier`` for ``seconds``; requests and the edge's CPU."""
    assert tier.proc is not None
    return await edge_cpu_load(tier.proc.pid, tier.conf.port, [media] * connections, seconds)


def scrape_ms(tier: NginxTier) -> tuple[float, int]:
    """Median milliseconds of a ``GET /edge/metrics`` (of :data:`SCRAPES`), and its lines."""
    times, lines = [], 0
    for _ in range(SCRAPES):
        started = time.perf_counter()
        with urllib.request.urlopen(f"{tier.base_url}{METRICS_PATH}", timeout=10) as answer:
            lines = len(answer.read().splitlines())
        times.append(1000 * (time.perf_counter() - started))
    return statistics.median(times), lines


async def _run(connections: int, seconds: float, repeat: int) -> dict[str, Any]:
    modules = find_lua_modules()
    if not modules:
        raise SystemExit("needs Debian's libnginx-mod-http-lua (the edge metrics are Lua)")
    with (
        tempfile.TemporaryDirectory(prefix="bench-edge-metrics-") as name,
        loop_stack(Path(name)) as (_, url),
    ):
        origin = Upstream("127.0.0.1", int(url.split(":")[2].split("/")[0]))
        plain, counting = tier_configs(TopologySpec(edges=2), [origin], 2.0, Path(name), modules)
        tiers = {"off": NginxTier(replace(plain, metrics=False)), "on": NginxTier(counting)}
        for tier in tiers.values():
            await tier.start()
        try:
            playlist = urllib.request.urlopen(f"{url.rsplit('/', 1)[0]}/720p/index.m3u8").read()
            found = re.search(rb'#EXT-X-MAP:URI="([^"]+)"', playlist)
            assert found is not None
            media = f"/live/720p/{found[1].decode()}"
            rows: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
            for _ in range(repeat):
                for mode, tier in tiers.items():
                    await load(tier, media, connections, 1.0)  # warm: the cache filled
                    rows[mode].append(await load(tier, media, connections, seconds))
                    row = rows[mode][-1]
                    print(
                        f"   metrics {mode:>3}: {row['requests']} requests, "
                        f"{row['us_per_request']:.1f} µs edge CPU per request",
                        flush=True,
                    )
            scrape, lines = await asyncio.to_thread(scrape_ms, tiers["on"])
        finally:
            for tier in tiers.values():
                await tier.stop()
    off = statistics.median(r["us_per_request"] for r in rows["off"])
    on = statistics.median(r["us_per_request"] for r in rows["on"])
    return {
        "rows": rows,
        "off_us": off,
        "on_us": on,
        "ratio": on / off,
        "added_us": on - off,
        "scrape_ms": scrape,
        "scrape_lines": lines,
    }


def run(connections: int = 50, seconds: float = 5.0, repeat: int = 2) -> dict[str, Any]:
    return asyncio.run(_run(connections, seconds, repeat))


def report(figures: dict[str, Any]) -> str:
    return (
        f"edge CPU per request (medians): metrics off {figures['off_us']:.1f} µs, "
        f"on {figures['on_us']:.1f} µs — on/off = {figures['ratio']:.2f}, "
        f"the counters add {figures['added_us']:.1f} µs per request; "
        f"GET /edge/metrics {figures['scrape_ms']:.2f} ms ({figures['scrape_lines']} lines)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args(argv)
    print(report(run(args.connections, args.seconds, args.repeat)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
