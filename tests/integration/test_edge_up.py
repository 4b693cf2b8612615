"""``livecast up`` as an operator runs it: one entry URL per edge on stdout, each serving the
stream through its own nginx, a clean stop on SIGINT with no nginx or FFmpeg left behind, and a
clear message when nginx is missing."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from livecast.edge.nginx import check_config, find_nginx, prepare_prefix
from livecast.edge.nginx_conf import Upstream
from livecast.edge.topology import TopologySpec, tier_configs
from livecast.errors import LivecastError
from tests.requirements import skip_missing

from .processes import descendants, livecast, none_left

pytestmark = pytest.mark.integration


def get(url: str) -> tuple[bytes, dict[str, str]]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read(), {k.lower(): v for k, v in response.headers.items()}


@pytest.mark.parametrize(
    ("sig", "shield", "from_config"),
    [(signal.SIGINT, True, False), (signal.SIGTERM, False, False), (signal.SIGINT, True, True)],
)
def test_up_with_two_edges_prints_two_urls_serves_through_each_and_stops_cleanly(
    sig: signal.Signals, shield: bool, from_config: bool, tmp_path: Path
) -> None:
    try:
        find_nginx()
    except LivecastError as exc:
        skip_missing("nginx", str(exc))
    if from_config:  # the same topology from the event file's [edge] table, no flags
        config = tmp_path / "event.toml"
        config.write_text(f"[edge]\nedges = 2\nshield = {str(shield).lower()}\nport = 0\n")
        where = ["--config", str(config)]
    else:
        where = ["--edges", "2", *(["--shield"] if shield else []), "--port", "0"]
    proc = livecast("up", *where, "--origin-port", "0", "--source", "loop")
    try:
        assert proc.stdout is not None
        urls = [proc.stdout.readline().strip() for _ in range(2)]
        assert all(
            u.startswith("http://127.0.0.1:") and u.endswith("/live/main.m3u8") for u in urls
        )
        assert len(set(urls)) == 2
        for index, url in enumerate(urls):
            body, headers = get(url)
            assert body.startswith(b"#EXTM3U")
            assert headers["x-edge"] == f"edge-{index}"
            media, headers = get(url.replace("main.m3u8", "audio/index.m3u8"))
            assert media.startswith(b"#EXTM3U") and b"#EXT-X-PART:" in media
            # BYPASS: with the Lua modules a plain playlist is refetched once per part
            assert headers["x-cache-status"] in ("MISS", "BYPASS", "HIT", "STALE", "UPDATING")
        processes = descendants(proc.pid)
        names = [Path(f"/proc/{pid}/comm").read_text().strip() for pid in processes]
        # per tier: master, worker, cache manager (and cache loader for its first minute)
        assert names.count("nginx") >= 3 * (3 if shield else 2), names
        proc.send_signal(sig)
        assert proc.wait(timeout=20) == 0
        assert none_left(processes), "a child outlived livecast up"
    finally:
        if proc.poll() is None:  # a failed assertion: let livecast stop its children itself
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_up_without_nginx_says_how_to_install_it() -> None:
    proc = livecast(
        "up", "--port", "0", "--origin-port", "0", env={"LIVECAST_NGINX": "/nonexistent/nginx"}
    )
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert "apt-get install nginx-light" in err


@pytest.mark.parametrize(
    ("edges", "shield", "workers", "origins"),
    [(1, False, 1, 1), (3, True, 2, 2), (2, False, 1, 3)],
)
def test_every_rendered_config_passes_nginx_t(
    tmp_path: Path, edges: int, shield: bool, workers: int, origins: int
) -> None:
    try:
        find_nginx()
    except LivecastError as exc:
        skip_missing("nginx", str(exc))
    upstreams = [Upstream("127.0.0.1", 18080 + i) for i in range(origins)]
    spec = TopologySpec(edges=edges, shield=shield, workers=workers)
    for target_duration in (1.0, 2.0, 6.0):
        for conf in tier_configs(spec, upstreams, target_duration, tmp_path / str(target_duration)):
            path = prepare_prefix(conf)
            check_config(path, Path(conf.prefix))  # raises with nginx's message when rejected


async def test_the_programmatic_topology_gives_entry_urls_origin_and_per_tier_figures() -> None:
    """What the rehearsal runner uses: ``running_topology`` as an async context manager."""
    import asyncio

    from livecast.admin.control import PipelineControl
    from livecast.config import load_config
    from livecast.edge.topology import running_topology

    try:
        find_nginx()
    except LivecastError as exc:
        skip_missing("nginx", str(exc))
    config = load_config(None, env={}, overrides={"port": 0, "source": "loop"})
    async with running_topology(config, TopologySpec(edges=2)) as top:
        assert len(top.entry_urls) == 2 and set(top.edge_access_logs) == {"edge-0", "edge-1"}
        for url in top.entry_urls:
            for _ in range(3):
                body, _ = await asyncio.to_thread(get, url)
                assert body.startswith(b"#EXTM3U")
        body, _ = await asyncio.to_thread(get, top.origin_base_url + "/live/main.m3u8")
        assert body.startswith(b"#EXTM3U")
        deadline = time.monotonic() + 4  # nginx flushes its access log buffer every second
        while any(
            (figures := top.tallies()).get(n) is None or figures[n].requests < 3
            for n in ("edge-0", "edge-1")
        ):
            assert time.monotonic() < deadline, figures
            await asyncio.sleep(0.05)
        for name in ("edge-0", "edge-1"):
            assert figures[name].requests == 3
            fetched = figures[name].by_status.get("MISS", 0) + figures[name].by_status.get(
                "BYPASS", 0
            )
            assert fetched == 1, figures[name]  # BYPASS: the Lua refetch of a plain playlist
            assert figures[name].hit_ratio == pytest.approx(2 / 3)
        # the admin API's status (PipelineControl) asks each edge for its stub_status
        status = await PipelineControl(top.pipeline).status(now=0.0)
        edges = status["edges"]
        assert [e["url"] for e in edges] == [u + "/edge/status" for u in top.tier.entry_base_urls]
        assert all(e["up"] and e["error"] is None and e["requests"] >= 3 for e in edges), edges
        logs = top.edge_access_logs
    assert not any(path.exists() for path in logs.values())  # the temporary workdir is gone


def test_up_on_a_busy_edge_port_is_a_clear_error() -> None:
    import socket

    try:
        find_nginx()
    except LivecastError as exc:
        skip_missing("nginx", str(exc))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = livecast(
            "up", "--edges", "1", "--port", str(port), "--origin-port", "0", "--source", "loop"
        )
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in err and out == ""


def test_nginx_does_not_outlive_a_killed_livecast_up() -> None:
    try:
        find_nginx()
    except LivecastError as exc:
        skip_missing("nginx", str(exc))
    proc = livecast("up", "--edges", "2", "--port", "0", "--origin-port", "0", "--source", "loop")
    try:
        assert proc.stdout is not None
        for _ in range(2):
            assert proc.stdout.readline().startswith("http://")
        nginx = [
            pid
            for pid in descendants(proc.pid)
            if Path(f"/proc/{pid}/comm").read_text().strip() == "nginx"
        ]
        assert nginx
        titles = [Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ") for pid in nginx]
        args = next(t for t in titles if t.startswith(b"nginx: master")).split()
        workdir = Path(args[args.index(b"-p") + 1].decode()).parent  # left behind by a SIGKILL
        proc.kill()  # SIGKILL: livecast cannot stop anything itself
        proc.wait(timeout=10)
        assert none_left(nginx, timeout=10), "nginx outlived a killed livecast"
        shutil.rmtree(workdir, ignore_errors=True)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
