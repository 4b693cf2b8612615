"""The edge tier under load: origin offload, origin CPU direct vs via edges, latency the edges add.

A livecast stack on the loop source (``livecast serve``, one process) and 2 nginx edges in front
of it (``livecast.edge``), all on 127.0.0.1. The audience is the bare LL-HLS load client of
``loadgen.py`` (blocking playlist reload for the next part, then that part, 720p; one keep-alive
connection per viewer), split evenly over the edges — the same request pattern as the player
model's, at a fraction of its CPU, so that thousands of viewers fit beside the stack.

1. **Offload**: for N = 10 … 3,000 viewers: a counting relay (``edge.tap``) between the edges
   and the origin sees every origin request by target; for the parts and the blocking playlist
   reloads first asked for during the window, origin requests per object per edge (all their
   requests counted, also after the window). Goal ≤ 1.05. Origin requests/s from its /metrics.
2. **Direct vs via 2 edges, same run**: 3,000 viewers at the origin itself, then through the
   edges: origin requests/s and CPU (``/proc``), and the edges' CPU.
3. **Latency added by the edges**: ``livecast probe`` (availability: a part's media end →
   its bytes in the client's hands, preload hints followed) — 8 probes through one edge at
   once (the median probe's p50; a lone probe would hold the cache lock for its own hinted
   parts and never wait on it), then one at the origin, with 0, 100 and 1,000 background
   viewers on the edges. Goal: p50 difference ≤ 100 ms. With Debian's lua module the edges
   wake cache waiters when the object arrives (docs/edge.md); without it they poll every 500 ms.

    python3 benchmarks/bench_edge.py [--viewers 10,100,1000,3000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(SRC))

from livecast.edge.nginx_conf import Upstream  # noqa: E402
from livecast.edge.tap import RequestTap  # noqa: E402
from livecast.edge.topology import EdgeTier, TopologySpec, edge_tier  # noqa: E402
from livecast.results.scrape import parse_prometheus_text  # noqa: E402
from procs import checkout_env, children, cpu_seconds, loop_stack  # noqa: E402

EDGES = 2
PLAYLIST = "/live/720p/index.m3u8"
OFFLOAD_GOAL = 1.05
LATENCY_GOAL = 0.100
PROBES = 8  # probes on one edge at once: one of them may hold the cache lock, the rest wait
PROBE_SECONDS = 12.0
LATENCY_LOADS = (0, 100, 1000)  # background viewers on the edges while the probes run


def origin_counters(base: str) -> dict[str, float]:
    """Origin requests by object type and 720p parts produced, from its /metrics."""
    with urllib.request.urlopen(f"{base}/metrics", timeout=5) as response:
        text = response.read().decode()
    out: dict[str, float] = {}
    for sample in parse_prometheus_text(text):
        if sample.name == "livecast_origin_requests_total":
            key = f"requests:{sample.label('type')}"
            out[key] = out.get(key, 0.0) + sample.value
        elif sample.name == "livecast_packager_parts_total" and sample.label("rendition") == "720p":
            out["parts"] = sample.value
    return out


def _delta(after: dict[str, float], before: dict[str, float], key: str) -> float:
    return after.get(key, 0.0) - before.get(key, 0.0)


def nginx_pids(tier: EdgeTier) -> list[int]:
    masters = [t.pid for t in tier.tiers if t.pid is not None]
    return masters + [child for master in masters for child in children(master)]


async def load(ports: list[int], viewers: int, seconds: float, warmup: float) -> list[Any]:
    """Start loadgen processes (viewers split over ``ports``); they run warmup + seconds."""
    procs = []
    for index, port in enumerate(ports):
        share = viewers // len(ports) + (1 if index < viewers % len(ports) else 0)
        if share == 0:
            continue
        procs.append(
            await asyncio.create_subprocess_exec(
                sys.executable,
                str(HERE / "loadgen.py"),
                "--port",
                str(port),
                "--clients",
                str(share),
                "--mode",
                "llhls",
                "--playlist",
                PLAYLIST,
                "--warmup",
                str(warmup),
                "--seconds",
                str(seconds),
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        )
    return procs


async def finish(procs: list[Any], limit: float) -> list[dict[str, Any]]:
    results = []
    for proc in procs:
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), limit)
            lines = [line for line in out.decode().splitlines() if line.startswith("{")]
            results.append(json.loads(lines[-1]) if lines else {})
        except TimeoutError:
            proc.kill()
            await proc.wait()
            results.append({})
    return results


def kind_of(target: str) -> str | None:
    """The objects the offload goal is about: parts, and blocking playlist reloads."""
    if "_HLS_msn=" in target:
        return "playlist-blocking"
    if target.partition("?")[0].rsplit("/", 1)[-1].startswith("part-"):
        return "part"
    return None


def per_object(
    before: Counter[str], in_window: Counter[str], final: Counter[str], edges: int
) -> dict[str, float]:
    """Origin requests per object per edge, for the objects first asked for in the window
    (every request for them counted, also those after the window: no boundary effect)."""
    out: dict[str, float] = {}
    for kind in ("part", "playlist-blocking"):
        targets = [t for t in in_window if not before[t] and kind_of(t) == kind]
        requests = sum(final[t] for t in targets)
        out[kind] = round(requests / len(targets) / edges, 3) if targets else float("nan")
    return out


async def window(
    base: str, ports: list[int], viewers: int, seconds: float, warmup: float,
    origin_pids: list[int], edge_pids: list[int], tap: RequestTap | None = None,
) -> dict[str, Any]:  # fmt: skip
    """One measured window of ``viewers`` on ``ports``: origin counters, requests per object at
    the tap between the edges and the origin, CPU."""
    procs = await load(ports, viewers, seconds, warmup)
    await asyncio.sleep(warmup + 1.0 + viewers / 2000)  # connected and past the warm-up
    before = await asyncio.to_thread(origin_counters, base)
    tapped = Counter(tap.counts) if tap else Counter()
    cpu0 = cpu_seconds(origin_pids), cpu_seconds(edge_pids)
    t0 = time.monotonic()
    await asyncio.sleep(seconds * 0.8)
    after = await asyncio.to_thread(origin_counters, base)
    in_window = Counter(tap.counts) if tap else Counter()
    cpu1 = cpu_seconds(origin_pids), cpu_seconds(edge_pids)
    elapsed = time.monotonic() - t0
    clients = await finish(procs, seconds + warmup + 60)
    await asyncio.sleep(1.0)  # the edges' last upstream requests
    final = Counter(tap.counts) if tap else Counter()
    origin_requests = sum(_delta(after, before, k) for k in after if k.startswith("requests:"))
    return {
        "viewers": viewers,
        "client_requests_per_s": round(sum(c.get("requests_per_s", 0.0) for c in clients), 1),
        "client_errors": sum(
            n for c in clients for s, n in c.get("statuses", {}).items() if not s.startswith("2")
        ),
        "parts": _delta(after, before, "parts"),
        "origin_requests_per_s": round(origin_requests / elapsed, 1),
        "origin_cpu": round((cpu1[0] - cpu0[0]) / elapsed, 3),
        "edge_cpu": round((cpu1[1] - cpu0[1]) / elapsed, 3) if edge_pids else None,
        "per_part_per_edge": per_object(tapped, in_window - tapped, final, len(ports)),
    }


async def probe(url: str, seconds: float) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "livecast", "probe", url, "--seconds", str(seconds), "--json",
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=checkout_env(),
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), seconds + 60)
    report: dict[str, Any] = json.loads(out.decode())
    return report


async def measure(viewers: tuple[int, ...], seconds: float, warmup: float) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory(prefix="bench-edge-") as name,
        loop_stack(Path(name)) as (stack, url),
    ):
        base = url.split("/live/", 1)[0]
        origin_port = int(base.rsplit(":", 1)[1])
        spec = TopologySpec(edges=EDGES, workdir=str(Path(name) / "edges"))
        tap = RequestTap("127.0.0.1", origin_port)  # counts what reaches the origin
        await tap.start()
        try:
            async with edge_tier(spec, [Upstream("127.0.0.1", tap.port)], 2.0) as tier:
                return await _measure_all(
                    base, origin_port, tier, tap, stack.pid, viewers, seconds, warmup
                )
        finally:
            await tap.stop()


async def _measure_all(
    base: str, origin_port: int, tier: EdgeTier, tap: RequestTap, stack_pid: int,
    viewers: tuple[int, ...], seconds: float, warmup: float,
) -> dict[str, Any]:  # fmt: skip
    edge_ports = [t.conf.port for t in tier.edges]
    edge_pids = nginx_pids(tier)
    offload = []
    for count in viewers:
        row = await window(base, edge_ports, count, seconds, warmup, [stack_pid], edge_pids, tap)
        offload.append(row)
        print(f"   {count} viewers via {EDGES} edges: {row['per_part_per_edge']}", flush=True)
    largest = max(viewers)
    direct = await window(base, [origin_port], largest, seconds, warmup, [stack_pid], [])
    print(f"   {largest} viewers direct: origin CPU {direct['origin_cpu']:.0%}", flush=True)
    latency = [await added_latency(base, tier, count) for count in LATENCY_LOADS]
    return {
        "edges": EDGES,
        "wakeup": bool(tier.edges[0].conf.lua_modules),
        "offload": offload,
        "direct": direct,
        "via_edges": offload[-1],
        "latency": latency,
        "tallies": {name: t.hit_ratio for name, t in tier.tallies().items()},
    }


async def added_latency(base: str, tier: EdgeTier, background_viewers: int) -> dict[str, Any]:
    """Availability p50 through one edge (median of PROBES probes there at once) minus at the
    origin, with ``background_viewers`` bare LL-HLS viewers on the edges."""
    ports = [t.conf.port for t in tier.edges]
    background = await load(ports, background_viewers, 60.0, 0.0) if background_viewers else []
    await asyncio.sleep(3.0)
    edge_url = f"{tier.entry_base_urls[0]}/live/main.m3u8"
    probes = await asyncio.gather(*(probe(edge_url, PROBE_SECONDS) for _ in range(PROBES)))
    via_edge = sorted(probes, key=lambda p: float(p["latency_s"]["p50"]))[PROBES // 2]
    at_origin = await probe(f"{base}/live/main.m3u8", PROBE_SECONDS)
    for proc in background:
        proc.kill()
    await finish(background, 10.0)
    added = via_edge["latency_s"]["p50"] - at_origin["latency_s"]["p50"]
    row = {
        "background_viewers": background_viewers,
        "via_edge": via_edge["latency_s"],
        "origin": at_origin["latency_s"],
        "added_p50_s": round(added, 4),
    }
    print(f"   added latency with {background_viewers} viewers: {added * 1000:.0f} ms", flush=True)
    return row


def run(
    viewers: tuple[int, ...] = (10, 100, 1000, 3000), seconds: float = 10.0, warmup: float = 3.0
) -> dict[str, Any]:
    figures = asyncio.run(measure(viewers, seconds, warmup))
    figures["goals"] = {"per_part_per_edge": OFFLOAD_GOAL, "added_latency_p50_s": LATENCY_GOAL}
    return figures


def report(figures: dict[str, Any]) -> str:
    lines = [
        f"loop-source stack + {figures['edges']} nginx edges; bare LL-HLS clients (blocking "
        "playlist + part, 720p) split over the edges; origin counters from its /metrics",
        f"{'viewers':>7} {'client req/s':>12} {'origin req/s':>12} {'origin req/part/edge':>22} "
        f"{'origin CPU':>10} {'edge CPU':>8} {'errors':>6}",
    ]
    worst = 0.0
    for row in figures["offload"]:
        per = row["per_part_per_edge"]
        worst = max(worst, *per.values())
        lines.append(
            f"{row['viewers']:>7} {row['client_requests_per_s']:>12,.0f} "
            f"{row['origin_requests_per_s']:>12,.0f} "
            f"{per['part']:>9.2f} parts {per['playlist-blocking']:>5.2f} pl "
            f"{row['origin_cpu']:>10.0%} {row['edge_cpu'] or 0:>8.0%} {row['client_errors']:>6}"
        )
    goal = figures["goals"]["per_part_per_edge"]
    lines.append(
        f"origin requests per part per edge, worst: {worst:.2f} (goal ≤ {goal})"
        + (" — met" if worst <= goal else " — NOT met")
    )
    direct, edged = figures["direct"], figures["via_edges"]
    ratio = direct["origin_cpu"] / edged["origin_cpu"] if edged["origin_cpu"] else float("inf")
    lines.append(
        f"{direct['viewers']} viewers direct: origin {direct['origin_requests_per_s']:,.0f} req/s, "
        f"CPU {direct['origin_cpu']:.0%}; via {figures['edges']} edges: origin "
        f"{edged['origin_requests_per_s']:,.0f} req/s, CPU {edged['origin_cpu']:.0%} "
        f"(edges {edged['edge_cpu'] or 0:.0%}) — origin CPU {ratio:.1f}× lower"
    )
    goal = figures["goals"]["added_latency_p50_s"]
    mode = "wake-up collapse (Lua)" if figures.get("wakeup") else "proxy_cache_lock only"
    for row in figures["latency"]:
        added = row["added_p50_s"]
        lines.append(
            f"availability p50 via an edge {row['via_edge']['p50'] * 1000:.0f} ms vs origin "
            f"{row['origin']['p50'] * 1000:.0f} ms with {row['background_viewers']:,} viewers on "
            f"the edges ({mode}; median of {PROBES} probes on one edge): added "
            f"{added * 1000:.0f} ms (goal ≤ {goal * 1000:.0f} ms)"
            + (" — met" if added <= goal else " — NOT met")
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--viewers", default="10,100,1000,3000")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    viewers = tuple(int(v) for v in args.viewers.split(","))
    print(report(run(viewers=viewers, seconds=args.seconds)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
