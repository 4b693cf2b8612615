"""Load-generator throughput: the rehearsal driver's request path vs Locust FastHttpUser, per core.

Both load generators run the same request pattern against the same fixed target, in the same run,
one process each, one after the other:

* target: Debian's nginx (``worker_processes 1``, ``access_log off``) serving a synthetic LL-HLS
  media playlist (≈ 1.5 KB, 3 segments of 6 parts, a preload hint) and its part files from disk —
  static files, so that the server is not the bottleneck (brief §8: ≈ 100k req/s per core);
* pattern: each virtual viewer on one keep-alive connection GETs the playlist, finds the newest
  ``EXT-X-PART`` URI in its body, GETs that part, and repeats, without pause;
* (a) ``driver``: the rehearsal driver's request path — ``rehearse.client.ClientConnection`` on
  uvloop, results by callback as :class:`~livecast.rehearse.driver.Driver` receives them, each
  response counted into a ``RunStats`` as the driver counts it, timeouts swept every 0.1 s;
* (b) ``locust``: a Locust ``FastHttpUser`` (``locust --headless -u N``, one process, no workers)
  doing the same loop in its task.

Requests/s come from each generator over a fixed window after a warm-up; its CPU from
``/proc/<pid>/stat`` over the same window; requests/s per core = responses / CPU seconds of the
load-generator process. Goal: driver ≥ 2 × Locust per core. Every process started here has a
hard time limit and is stopped at the end.

    python3 benchmarks/bench_driver.py [--clients 200] [--seconds 10] [--warmup 3] [--repeat 1]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from procs import (
    NGINX,
    NGINX_CONF,
    cpu_seconds,
    free_port,
    nginx_workers,
    stop_process,
    wait_listening,
)

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
GOAL = 2.0
PLAYLIST = "/live/720p/index.m3u8"
LAST_PART = b"#EXT-X-PART:"
SEGMENTS, PARTS = 3, 6


LOCUSTFILE = '''"""bench_driver's peer: a FastHttpUser looping on playlist → newest part."""
import json
import os
import time

import gevent
from locust import FastHttpUser, constant, events, task

PLAYLIST = os.environ["BENCH_PLAYLIST"]
BASE = PLAYLIST.rsplit("/", 1)[0]
WARMUP = float(os.environ["BENCH_WARMUP"])
SECONDS = float(os.environ["BENCH_SECONDS"])


class Viewer(FastHttpUser):
    wait_time = constant(0)

    @task
    def view(self):
        body = self.client.get(PLAYLIST, name="playlist").content or b""
        at = body.rfind(b"#EXT-X-PART:")
        if at < 0:
            gevent.sleep(0.2)
            return
        start = body.find(b'URI="', at) + 5
        uri = body[start : body.find(b'"', start)].decode()
        self.client.get(f"{BASE}/{uri}", name="part")


def _marks(environment):
    gevent.sleep(WARMUP)
    total = environment.stats.total
    first, failed = total.num_requests, total.num_failures
    started = time.time()
    print(f"mark start {started:.6f} {first}", flush=True)
    gevent.sleep(SECONDS)
    ended = time.time()
    print(f"mark end {ended:.6f} {total.num_requests}", flush=True)
    window = ended - started
    print(json.dumps({
        "responses": total.num_requests - first,
        "failures": total.num_failures - failed,
        "window_s": round(window, 3),
        "requests_per_s": round((total.num_requests - first) / window, 1),
    }), flush=True)
    environment.runner.quit()


@events.test_start.add_listener
def _start(environment, **_kw):
    gevent.spawn(_marks, environment)
'''


# ---------------------------------------------------------------- the target
def playlist_text() -> str:
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:9",
        "#EXT-X-TARGETDURATION:2",
        "#EXT-X-PART-INF:PART-TARGET=0.33334",
        "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.0",
        "#EXT-X-MEDIA-SEQUENCE:100",
        '#EXT-X-MAP:URI="init.mp4"',
    ]
    for msn in range(100, 100 + SEGMENTS):
        lines.append(f"#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:{(msn - 100) * 2:02d}.000Z")
        for part in range(PARTS):
            independent = ",INDEPENDENT=YES" if part == 0 else ""
            lines.append(f'#EXT-X-PART:DURATION=0.33333,URI="part-{msn}.{part}.m4s"{independent}')
        lines += ["#EXTINF:2.00000,", f"segment-{msn}.m4s"]
    lines.append(f'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part-{100 + SEGMENTS}.0.m4s"')
    return "\n".join(lines) + "\n"


def write_site(www: Path, part_bytes: int) -> tuple[int, int]:
    """The playlist and its part files under ``www``; (playlist bytes, part bytes)."""
    folder = www / PLAYLIST.strip("/").rsplit("/", 1)[0]
    folder.mkdir(parents=True)
    text = playlist_text().encode()
    (www / PLAYLIST.strip("/")).write_bytes(text)
    part = os.urandom(part_bytes)
    for msn in range(100, 100 + SEGMENTS):
        for index in range(PARTS):
            (folder / f"part-{msn}.{index}.m4s").write_bytes(part)
    return len(text), part_bytes


# ---------------------------------------------------------------- (a) the driver's request path
async def drive(port: int, clients: int, warmup: float, seconds: float) -> dict[str, Any]:
    from livecast.rehearse.client import ClientConnection, Exchange
    from livecast.results.stats import RunStats

    loop = asyncio.get_running_loop()
    stats = RunStats()
    counts = {"responses": 0, "failures": 0, "recording": 0}
    base = PLAYLIST.rsplit("/", 1)[0]
    show_start = time.time()
    next_id = 0

    class Viewer:
        """One virtual viewer on one ClientConnection: playlist → newest part → playlist …"""

        def __init__(self) -> None:
            self.kind = "playlist"
            self.conn = ClientConnection(
                "127.0.0.1", port, self.on_exchange, self.on_failure, clock=time.time
            )

        def send(self, kind: str, target: str) -> None:
            nonlocal next_id
            next_id += 1
            self.kind = kind
            self.conn.send(next_id, target, keep_body=kind == "playlist", timeout=10.0)

        def on_exchange(self, exchange: Exchange) -> None:
            now = time.time()
            stats.record_request(
                self.kind, exchange.status, exchange.finished - exchange.started, now - show_start
            )
            if counts["recording"]:
                counts["responses"] += 1
            if self.kind == "playlist":
                body = exchange.body or b""
                at = body.rfind(LAST_PART)
                if at >= 0:
                    start = body.find(b'URI="', at) + 5
                    uri = body[start : body.find(b'"', start)].decode()
                    self.send("part", f"{base}/{uri}")
                    return
            self.send("playlist", PLAYLIST)

        def on_failure(self, request_id: int, kind: str) -> None:
            stats.record_request(self.kind, kind, None, time.time() - show_start)
            if counts["recording"]:
                counts["failures"] += 1
            loop.call_later(0.1, self.send, "playlist", PLAYLIST)

    viewers = [Viewer() for _ in range(clients)]
    for viewer in viewers:
        viewer.send("playlist", PLAYLIST)

    async def sweep() -> None:  # the driver's tick: timeouts of every connection
        while True:
            await asyncio.sleep(0.1)
            now = time.time()
            for viewer in viewers:
                viewer.conn.check_timeout(now)

    sweeper = loop.create_task(sweep())
    await asyncio.sleep(warmup)
    counts["recording"] = 1
    started = time.time()
    print(f"mark start {started:.6f} 0", flush=True)
    await asyncio.sleep(seconds)
    counts["recording"] = 0
    ended = time.time()
    print(f"mark end {ended:.6f} {counts['responses']}", flush=True)
    sweeper.cancel()
    for viewer in viewers:
        viewer.conn.close()
    window = ended - started
    return {
        "responses": counts["responses"],
        "failures": counts["failures"],
        "window_s": round(window, 3),
        "requests_per_s": round(counts["responses"] / window, 1),
        "recorded_requests": stats.total_requests,
    }


def follow(gen: subprocess.Popen[str], server: list[int], limit: float) -> dict[str, Any]:
    """Read a load generator's marks, sampling its CPU and the server's at each."""
    assert gen.stdout is not None
    marks: dict[str, tuple[float, float, float]] = {}
    result: dict[str, Any] = {}
    deadline = time.monotonic() + limit
    for line in gen.stdout:
        if line.startswith("mark "):
            name = line.split()[1]
            marks[name] = (time.monotonic(), cpu_seconds([gen.pid]), cpu_seconds(server))
        elif line.startswith("{"):
            result = json.loads(line)
            break
        if time.monotonic() > deadline:
            break
    if "start" not in marks or "end" not in marks or not result:
        raise RuntimeError(f"the load generator failed (exit {gen.poll()})")
    wall = marks["end"][0] - marks["start"][0]
    cpu = marks["end"][1] - marks["start"][1]
    result["loadgen_cpu"] = round(cpu / wall, 3)  # fraction of one core
    result["server_cpu"] = round((marks["end"][2] - marks["start"][2]) / wall, 3)
    result["per_core"] = round(result["responses"] / cpu, 1) if cpu else None
    return result


# ---------------------------------------------------------------- one measurement
def measure(
    generator: str, port: int, server: list[int], clients: int, seconds: float, warmup: float,
    tmp: Path,
) -> dict[str, Any]:  # fmt: skip
    """One load generator ("driver" or "locust") against the running nginx."""
    limit = warmup + seconds + 30.0
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    if generator == "driver":
        command = [
            sys.executable, str(Path(__file__).resolve()), "_driver", "--port", str(port),
            "--clients", str(clients), "--seconds", str(seconds), "--warmup", str(warmup),
        ]  # fmt: skip
    else:
        locustfile = tmp / "bench_locustfile.py"
        locustfile.write_text(LOCUSTFILE)
        env.update(BENCH_PLAYLIST=PLAYLIST, BENCH_WARMUP=str(warmup), BENCH_SECONDS=str(seconds))
        command = [
            sys.executable, "-m", "locust", "-f", str(locustfile), "--headless",
            "-u", str(clients), "-r", str(clients), "-t", f"{int(warmup + seconds + 10)}s",
            "--host", f"http://127.0.0.1:{port}", "--only-summary", "--loglevel", "WARNING",
            "--stop-timeout", "0",
        ]  # fmt: skip
    gen = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
        start_new_session=True,
    )
    killer = deadline_kill(gen, limit)
    try:
        result = follow(gen, server, limit)
    finally:
        killer.cancel()
        stop_process(gen)
    result.update(generator=generator, clients=clients)
    return result


def deadline_kill(proc: subprocess.Popen[Any], limit: float) -> threading.Timer:
    """Kill our child's process group after ``limit`` seconds unless cancelled."""

    def kill() -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)

    timer = threading.Timer(limit, kill)
    timer.daemon = True
    timer.start()
    return timer


# ---------------------------------------------------------------- the benchmark
def run(
    clients: int = 200,
    seconds: float = 10.0,
    warmup: float = 3.0,
    part_kb: float = 30.0,
    repeat: int = 1,
) -> dict[str, Any]:
    """Driver and Locust against one nginx, ``repeat`` rounds interleaved; the median is kept."""
    if not Path(NGINX).exists():
        raise RuntimeError(f"{NGINX} is missing (apt-get install nginx-light)")
    if importlib.util.find_spec("locust") is None:
        raise RuntimeError("locust is not installed (pip install locust)")
    rows: dict[str, list[dict[str, Any]]] = {"driver": [], "locust": []}
    with tempfile.TemporaryDirectory(prefix="bench-driver-") as name:
        tmp = Path(name)
        os.chmod(tmp, 0o755)  # nginx workers run as an unprivileged user
        playlist_bytes, part_bytes = write_site(tmp / "www", int(part_kb * 1024))
        port = free_port()
        conf = tmp / "nginx.conf"
        conf.write_text(NGINX_CONF.format(tmp=tmp, port=port))
        budget = repeat * 2 * (warmup + seconds + 40) + 30
        nginx = subprocess.Popen(
            [NGINX, "-c", str(conf), "-p", str(tmp)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        killer = deadline_kill(nginx, budget)
        try:
            wait_listening(port, nginx)
            server = [nginx.pid, *nginx_workers(nginx.pid)]
            for _ in range(repeat):
                for generator in ("driver", "locust"):
                    rows[generator].append(
                        measure(generator, port, server, clients, seconds, warmup, tmp)
                    )
        finally:
            killer.cancel()
            stop_process(nginx)
    best = {name: _median(found) for name, found in rows.items()}
    driver, locust = best["driver"]["per_core"], best["locust"]["per_core"]
    return {
        "clients": clients,
        "seconds": seconds,
        "playlist_bytes": playlist_bytes,
        "part_bytes": part_bytes,
        "rows": [best["driver"], best["locust"]],
        "ratio_per_core": round(driver / locust, 2) if driver and locust else None,
        "goal": GOAL,
    }


def _median(found: list[dict[str, Any]]) -> dict[str, Any]:
    ordered = sorted(found, key=lambda row: row["per_core"] or 0.0)
    return ordered[len(ordered) // 2]


def report(figures: dict[str, Any]) -> str:
    sizes = figures["playlist_bytes"] / 1024, figures["part_bytes"] / 1024
    lines = [
        f"load generators on 127.0.0.1 against nginx (1 worker), {figures['clients']} viewers, "
        f"playlist {sizes[0]:.1f} KB → newest part {sizes[1]:.0f} KB, one process each "
        "(CPU from /proc over the window)",
        f"{'generator':<10} {'req/s':>8} {'CPU':>6} {'req/s per core':>14} {'nginx CPU':>9} "
        f"{'failures':>8}",
    ]
    for row in figures["rows"]:
        lines.append(
            f"{row['generator']:<10} {row['requests_per_s']:>8,.0f} {row['loadgen_cpu']:>6.0%} "
            f"{row['per_core'] or 0:>14,.0f} {row['server_cpu']:>9.0%} {row['failures']:>8}"
        )
    ratio = figures["ratio_per_core"]
    verdict = "" if ratio is None else (" — met" if ratio >= figures["goal"] else " — NOT met")
    lines.append(
        f"ratio driver/Locust FastHttpUser per core: "
        f"{'–' if ratio is None else f'{ratio:.2f}×'} (goal ≥ {figures['goal']}×){verdict}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    child = sub.add_parser("_driver", help=argparse.SUPPRESS)
    child.add_argument("--port", type=int, required=True)
    child.add_argument("--clients", type=int, default=200)
    child.add_argument("--seconds", type=float, default=10.0)
    child.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--clients", type=int, default=200, help="viewers per generator")
    parser.add_argument("--seconds", type=float, default=10.0, help="measurement window")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--part-kb", type=float, default=30.0)
    parser.add_argument("--repeat", type=int, default=1, help="rounds; the median is kept")
    args = parser.parse_args(argv)
    if args.command == "_driver":
        sys.path.insert(0, str(SRC))
        try:
            import uvloop

            result = uvloop.run(drive(args.port, args.clients, args.warmup, args.seconds))
        except ImportError:
            result = asyncio.run(drive(args.port, args.clients, args.warmup, args.seconds))
        print(json.dumps(result), flush=True)
        return 0
    try:
        figures = run(args.clients, args.seconds, args.warmup, args.part_kb, args.repeat)
    except RuntimeError as exc:
        print(f"bench_driver: {exc}", file=sys.stderr)
        return 2
    print(report(figures))
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
