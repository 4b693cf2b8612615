"""The cost of checking playback tokens at the edge: nginx CPU per request, tokens off vs on.

One livecast stack on the loop source (``livecast serve``) and two nginx edges in front of it —
identical (Debian's Lua modules, one worker each) but for the token check (``TierConfig
(token_ring=…)``, ``livecast.edge.token_lua``). The same load runs against each edge in turn,
alternating ``--repeat`` times: ``--connections`` keep-alive connections, each GETting the 720p
init segment (a cached media object: the path under test is the check, not the origin) with its
own token in the query, as fast as the edge answers, for ``--seconds``. Per run: requests, the
edge's CPU (its master and worker, from ``/proc``) over the window, and µs of edge CPU per
request; then the ratio on/off and the µs the check adds per request. Every connection's token is
verified once (one HMAC) and then answered from the shared dict of verdicts. The checking edge also
polls an admin API (in this process) for revocations twice a second, holding ``--revoked``
revoked sessions (none of them the viewers'): each request looks its session and token id up in
the shared dict of revocations after the cached verdict.

    python3 benchmarks/bench_edge_tokens.py [--connections 50] [--seconds 5] [--repeat 2]
        [--revoked 1000]
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

from livecast.access.keys import KeyRing  # noqa: E402
from livecast.access.tokens import RevocationList, TokenClaims, issue  # noqa: E402
from livecast.admin.api import AdminApi, hash_secret  # noqa: E402
from livecast.admin.server import AdminServer  # noqa: E402
from livecast.admin.state import AdminState  # noqa: E402
from livecast.edge.nginx import NginxTier, find_lua_modules  # noqa: E402
from livecast.edge.nginx_conf import Upstream  # noqa: E402
from livecast.edge.token_lua import RevocationSource  # noqa: E402
from livecast.edge.topology import TopologySpec, tier_configs  # noqa: E402
from procs import edge_cpu_load, loop_stack  # noqa: E402

RING = KeyRing({"bench": b"b" * 32}, "bench").validate()


async def load(tier: NginxTier, media: str, connections: int, seconds: float) -> dict[str, Any]:
    """``connections`` viewers on ``tier`` for ``seconds``, each with a token of its own;
    requests and the edge's CPU."""
    assert tier.proc is not None
    exp = int(time.time()) + 3600
    targets = [
        f"{media}?token={issue(TokenClaims('main', f'a{i}', f's{i}', exp), RING)}"
        for i in range(connections)
    ]
    return await edge_cpu_load(tier.proc.pid, tier.conf.port, targets, seconds)


async def _admin(revoked: int) -> tuple[AdminServer, RevocationSource]:
    """An admin API holding ``revoked`` revoked sessions, and how an edge reads them."""
    revocations = RevocationList()
    now = time.time()
    for index in range(revoked):
        revocations.revoke_session(f"revoked-{index}", now)
    api = AdminApi(AdminState(key_ring=RING, revocations=revocations), [hash_secret("x" * 32)])
    secret = "bench-reader-secret-0123456789"
    api.allow_reader(hash_secret(secret))
    server = AdminServer(api)
    await server.start("127.0.0.1", 0)
    return server, RevocationSource("127.0.0.1", server.port, secret)


async def _run(connections: int, seconds: float, repeat: int, revoked: int) -> dict[str, Any]:
    modules = find_lua_modules()
    if not modules:
        raise SystemExit("needs Debian's libnginx-mod-http-lua (the token check is Lua)")
    admin, source = await _admin(revoked)
    with (
        tempfile.TemporaryDirectory(prefix="bench-edge-tokens-") as name,
        loop_stack(Path(name)) as (_, url),
    ):
        origin = Upstream("127.0.0.1", int(url.split(":")[2].split("/")[0]))
        spec = TopologySpec(edges=2)
        plain, checked = tier_configs(spec, [origin], 2.0, Path(name), modules)
        on = replace(checked, token_ring=RING, revocations=source)
        tiers = {"off": NginxTier(plain), "on": NginxTier(on)}
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
                    await load(tier, media, connections, 1.0)  # warm: cache filled, verdicts in
                    rows[mode].append(await load(tier, media, connections, seconds))
                    row = rows[mode][-1]
                    print(
                        f"   tokens {mode:>3}: {row['requests']} requests, "
                        f"{row['us_per_request']:.1f} µs edge CPU per request",
                        flush=True,
                    )
        finally:
            for tier in tiers.values():
                await tier.stop()
            await admin.stop()
    off = statistics.median(r["us_per_request"] for r in rows["off"])
    on = statistics.median(r["us_per_request"] for r in rows["on"])
    return {"rows": rows, "off_us": off, "on_us": on, "ratio": on / off, "added_us": on - off}


def run(
    connections: int = 50, seconds: float = 5.0, repeat: int = 2, revoked: int = 1000
) -> dict[str, Any]:
    return asyncio.run(_run(connections, seconds, repeat, revoked))


def report(figures: dict[str, Any]) -> str:
    return (
        f"edge CPU per request (medians): tokens off {figures['off_us']:.1f} µs, "
        f"on {figures['on_us']:.1f} µs — on/off = {figures['ratio']:.2f}, "
        f"the check adds {figures['added_us']:.1f} µs per request"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--revoked", type=int, default=1000)
    args = parser.parse_args(argv)
    print(report(run(args.connections, args.seconds, args.repeat, args.revoked)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
