"""Process helpers shared by the benchmarks: /proc CPU accounting, nginx as the peer server,
free ports, and stopping what a benchmark started (loopback only, bounded in time)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

NGINX = "/usr/sbin/nginx"

# worker_processes 1: the peer is measured per core, like the origin.
NGINX_CONF = """worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
worker_rlimit_nofile 20000;
events {{ worker_connections 16000; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 10000000;
  keepalive_timeout 60s;
  open_file_cache max=64 inactive=60s;
  open_file_cache_valid 60s;
  client_body_temp_path {tmp}/body;
  proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi;
  scgi_temp_path {tmp}/scgi;
  types {{ application/vnd.apple.mpegurl m3u8; video/mp4 m4s; }}
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    root {tmp}/www;
    location ~ \\.m3u8$ {{ add_header Cache-Control "public, max-age=1"; }}
    location ~ \\.m4s$ {{ add_header Cache-Control "public, max-age=86400, immutable"; }}
  }}
}}
"""


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of processes, in seconds (a vanished process counts 0)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, grandchildren, …)."""
    found: list[int] = []
    frontier = [pid]
    while frontier:
        below = [child for parent in frontier for child in children(parent)]
        found += below
        frontier = below
    return found


def nginx_workers(master: int, timeout: float = 5.0) -> list[int]:
    """The worker processes of an nginx master (forked after it starts listening)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        workers = children(master)
        if workers:
            return workers
        time.sleep(0.05)
    raise RuntimeError("nginx started no worker process")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_listening(port: int, proc: subprocess.Popen[Any], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nginx does not listen on 127.0.0.1:{port} (exit {proc.returncode})")


def stop_process(proc: subprocess.Popen[Any], sig: int = signal.SIGTERM) -> None:
    """Signal our own child, wait a little, then kill its process group (started by us)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


SRC = Path(__file__).resolve().parents[1] / "src"


def checkout_env(src: Path = SRC) -> dict[str, str]:
    """The environment with ``src`` (this checkout's src/) first on PYTHONPATH (for child
    processes)."""
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")]),
    }


@contextlib.contextmanager
def loop_stack(workdir: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``livecast serve`` on the loop source (any free port); (process, multivariant URL)."""
    config = workdir / "stack.toml"
    config.write_text('host = "127.0.0.1"\nport = 0\nsource = "loop"\nloop_seconds = 20\n')
    stack = subprocess.Popen(
        [sys.executable, "-m", "livecast", "serve", "--config", str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=checkout_env(),
        start_new_session=True,
    )  # fmt: skip
    try:
        assert stack.stdout is not None
        url = stack.stdout.readline().strip()
        if not url.endswith(".m3u8"):
            raise RuntimeError("the stack did not start")
        yield stack, url
    finally:
        stop_process(stack)


async def keep_alive_viewer(port: int, target: str, until: float, counts: list[int]) -> None:
    """GET ``target`` on one keep-alive connection to 127.0.0.1:``port`` until ``until``
    (monotonic), each answer read whole; ``counts[0]`` counts them. Not a 200: an error."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = f"GET {target} HTTP/1.1\r\nHost: edge\r\n\r\n".encode()
    try:
        while time.monotonic() < until:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
            if not head.startswith(b"HTTP/1.1 200") or length is None:
                raise RuntimeError(f"unexpected answer: {head[:200]!r}")
            await reader.readexactly(int(length[1]))
            counts[0] += 1
    finally:
        writer.close()


async def edge_cpu_load(pid: int, port: int, targets: list[str], seconds: float) -> dict[str, Any]:
    """One keep-alive viewer per target on an nginx tier (master ``pid``) for ``seconds``:
    requests, the tier's CPU seconds, and its CPU per request in µs."""
    pids = [pid, *children(pid)]
    counts = [0]
    before = cpu_seconds(pids)
    until = time.monotonic() + seconds
    await asyncio.gather(*(keep_alive_viewer(port, t, until, counts) for t in targets))
    cpu = cpu_seconds(pids) - before
    return {"requests": counts[0], "cpu_s": cpu, "us_per_request": 1e6 * cpu / max(1, counts[0])}
