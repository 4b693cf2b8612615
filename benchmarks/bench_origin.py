"""Origin throughput: the livecast origin under N simulated LL-HLS viewers vs nginx, per core.

* livecast: the real ``OriginServer`` + ``OriginApp`` in its own process (one core), fed by a
  synthetic part publisher (well-formed fMP4 parts at 3/s on a 720p/360p/audio ladder, no FFmpeg)
  so that its CPU goes to serving. Viewers (``loadgen.py``, another process) loop on a blocking
  reload ``_HLS_msn=M&_HLS_part=P`` then that part, like real LL-HLS clients — ≈ 6 requests/s each.
* nginx (Debian's, ``worker_processes 1``, ``access_log off``), same run, serving the same bytes
  (a playlist and a part of the same sizes) from disk to the same viewers without blocking, as fast
  as it answers — the brief §8 peer.
* livecast again with that plain loop (``index.m3u8`` + an existing part, no directives): the
  origin's own saturation figure, like for like with nginx.

Requests/s come from the load client over a fixed window after a warm-up; server CPU from
``/proc/<pid>/stat`` over the same window; requests/s per core = responses / server CPU seconds.
Goal: livecast ≥ 0.5 × nginx per core. ``--profile`` adds a cProfile'd LL-HLS run of the origin
(window only) and prints its top entries. Every process started here has a hard time limit and is
stopped at the end.

    python3 benchmarks/bench_origin.py --clients 1000 3000 --seconds 10 [--repeat 3] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

try:
    import livecast  # noqa: F401
except ImportError:  # running from a checkout without PYTHONPATH=src
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from livecast.media import boxes
from livecast.media.fmp4 import FMP4StreamReader, Fragment, InitSegment
from livecast.packager.event import LiveEvent, RenditionSpec
from livecast.packager.live import PackagingConfig
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
GOAL = 0.5
FPS = 30
FRAMES_PER_PART = 10  # 1/3 s parts, one fragment each
TIMESCALE = 15360
AUDIO_RATE = 48000
AAC_FRAME = 1024
SEGMENT = 2.0
PART_TARGET = 0.33334  # declared_part_target(1/3)
HISTORY = 20.0  # seconds of media published at once when the origin starts
RENDITIONS = {"720p": (1280, 720, 1.0), "360p": (640, 360, 0.25)}  # part size factor


# ---------------------------------------------------------------- synthetic encoder
def _read_one(data: bytes, init: bytes | None = None) -> InitSegment | Fragment:
    reader = FMP4StreamReader()
    if init is not None:
        reader.feed(init)
    (item,) = reader.feed(data)
    return item


class SyntheticEncoder:
    """Feeds a LiveEvent media time in order, video parts of ``part_bytes`` (720p), AAC audio."""

    def __init__(self, event: LiveEvent, epoch: float, part_bytes: int) -> None:
        self.event = event
        event.start_generation(0, epoch)
        self._inits: dict[str, bytes] = {}
        self._sample_size: dict[str, int] = {}
        for name, (width, height, factor) in RENDITIONS.items():
            init = boxes.init_segment("video", timescale=TIMESCALE, width=width, height=height)
            self._inits[name] = init
            self._sample_size[name] = max(100, int(part_bytes * factor / FRAMES_PER_PART))
            item = _read_one(init)
            assert isinstance(item, InitSegment)
            event.on_init(name, item)
        self._inits["audio"] = boxes.init_segment("audio", timescale=AUDIO_RATE)
        audio = _read_one(self._inits["audio"])
        assert isinstance(audio, InitSegment)
        event.on_init("audio", audio)
        self.video_index = 0
        self.audio_index = 0

    def _video(self, name: str, index: int) -> Fragment:
        start = index * FRAMES_PER_PART
        data = boxes.fragment(
            sequence=index + 1,
            decode_time=start * (TIMESCALE // FPS),
            sample_durations=[TIMESCALE // FPS] * FRAMES_PER_PART,
            sample_sizes=[self._sample_size[name]] * FRAMES_PER_PART,
            first_is_sync=start % (FPS * 2) == 0,
        )
        item = _read_one(data, self._inits[name])
        assert isinstance(item, Fragment)
        return item

    def _audio(self, index: int) -> Fragment:
        data = boxes.fragment(
            sequence=index + 1,
            decode_time=index * AAC_FRAME,
            sample_durations=[AAC_FRAME],
            sample_sizes=[300],
            first_is_sync=True,
        )
        item = _read_one(data, self._inits["audio"])
        assert isinstance(item, Fragment)
        return item

    def next_video_end(self) -> float:
        return (self.video_index + 1) * FRAMES_PER_PART / FPS

    def advance_to(self, seconds: float) -> bool:
        """Deliver every fragment ending by ``seconds`` of media time; True if any."""
        delivered = False
        while True:
            video_end = self.next_video_end()
            audio_end = (self.audio_index + 1) * AAC_FRAME / AUDIO_RATE
            if min(video_end, audio_end) > seconds + 1e-9:
                return delivered
            delivered = True
            if audio_end <= video_end:
                self.event.on_fragment("audio", self._audio(self.audio_index))
                self.audio_index += 1
            else:
                for name in RENDITIONS:
                    self.event.on_fragment(name, self._video(name, self.video_index))
                self.video_index += 1


def make_event() -> LiveEvent:
    config = PackagingConfig(part_target=PART_TARGET, segment_duration=SEGMENT, window=30.0)
    specs = [RenditionSpec(name, "video") for name in RENDITIONS]
    return LiveEvent(config, [*specs, RenditionSpec("audio", "audio")])


def sample_objects(part_bytes: int) -> tuple[bytes, bytes, str]:
    """(720p playlist, a 720p part, that part's name) of a synthetic event 20 s in."""
    event = make_event()
    SyntheticEncoder(event, 1_764_000_000.0, part_bytes).advance_to(HISTORY)
    rendition = event.renditions["720p"]
    position = rendition.position()
    assert position is not None and position.last_part >= 0
    data = rendition.part_data(position.last_msn, position.last_part)
    assert data is not None
    name = f"part-{position.last_msn}.{position.last_part}.m4s"
    return event.media_playlist_bytes("720p"), data, name


# ---------------------------------------------------------------- the origin process
async def serve_origin(part_bytes: int, max_seconds: float, profile: str | None) -> None:
    """Child process: origin on 127.0.0.1:0 + real-time publisher; prints one JSON line with
    port and timeline; SIGUSR1 starts the profiler, SIGTERM (or ``max_seconds``) stops."""
    import cProfile

    from livecast.origin.app import OriginApp
    from livecast.origin.http import OriginServer
    from livecast.telemetry.metrics import Registry

    loop = asyncio.get_running_loop()
    epoch = math.floor(time.time() / SEGMENT) * SEGMENT - HISTORY
    event = make_event()
    encoder = SyntheticEncoder(event, epoch, part_bytes)
    encoder.advance_to(time.time() - epoch)
    server = OriginServer(OriginApp(event), Registry())
    await server.start("127.0.0.1", 0)
    stop = asyncio.Event()
    profiler = cProfile.Profile() if profile else None

    def publish() -> None:
        if encoder.advance_to(time.time() - epoch):
            server.notify()
        loop.call_later(max(0.0, epoch + encoder.next_video_end() - time.time()), publish)

    publish()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    if profiler is not None:
        loop.add_signal_handler(signal.SIGUSR1, profiler.enable)
    loop.call_later(max_seconds, stop.set)
    msn_base = math.floor(epoch / SEGMENT)
    print(json.dumps({"port": server.port, "epoch": epoch, "msn_base": msn_base}), flush=True)
    await stop.wait()
    if profiler is not None and profile:
        profiler.disable()
        profiler.dump_stats(profile)
    await server.stop()


# ---------------------------------------------------------------- one measurement
def measure(
    server: str, mode: str, clients: int, seconds: float, warmup: float, part_bytes: int,
    profile: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """One server ("livecast" or "nginx") under ``clients`` viewers of ``mode`` (llhls|plain)."""
    limit = warmup + seconds + 30.0 + clients / 500  # hard limit of every process of this run
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    started: list[subprocess.Popen[Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-origin-") as tmp:
        try:
            extra: list[str] = []
            if server == "nginx":
                playlist, part, name = sample_objects(part_bytes)
                os.chmod(tmp, 0o755)  # nginx workers run as an unprivileged user
                www = Path(tmp, "www/live/720p")
                www.mkdir(parents=True)
                (www / "index.m3u8").write_bytes(playlist)
                (www / name).write_bytes(part)  # the newest part the playlist lists
                port = free_port()
                conf = Path(tmp, "nginx.conf")
                conf.write_text(NGINX_CONF.format(tmp=tmp, port=port))
                proc: subprocess.Popen[str] = subprocess.Popen(
                    [NGINX, "-p", tmp, "-c", str(conf), "-e", f"{tmp}/error.log"],
                    text=True,
                    start_new_session=True,
                )
                started.append(proc)
                wait_listening(port, proc)
                pids = [proc.pid, *nginx_workers(proc.pid)]
            else:
                command = [sys.executable, __file__, "_origin", "--part-kb", str(part_bytes / 1024)]
                command += ["--max-seconds", str(limit)]
                if profile:
                    command += ["--profile", profile]
                proc = subprocess.Popen(
                    command, stdout=subprocess.PIPE, text=True, env=env, start_new_session=True
                )
                started.append(proc)
                assert proc.stdout is not None
                info = json.loads(proc.stdout.readline() or "{}")
                port, pids = info["port"], [proc.pid]
                extra = ["--epoch", str(info["epoch"]), "--msn-base", str(info["msn_base"])]
                extra += ["--segment", str(SEGMENT), "--part-duration", str(FRAMES_PER_PART / FPS)]
            load = [sys.executable, str(HERE / "loadgen.py"), "--port", str(port)]
            load += ["--clients", str(clients), "--mode", mode, "--warmup", str(warmup)]
            load += ["--seconds", str(seconds), *extra]
            gen = subprocess.Popen(load, stdout=subprocess.PIPE, text=True, start_new_session=True)
            started.append(gen)
            watchdog = threading.Timer(limit, lambda: stop_process(gen, signal.SIGKILL))
            watchdog.start()
            try:
                result = _follow(gen, pids, proc.pid if profile else None)
            finally:
                watchdog.cancel()
            if server == "nginx":
                result["nginx_error_log"] = Path(tmp, "error.log").read_text()[-500:]
        finally:
            for process in reversed(started):
                stop_process(process)
    result.update(server=server, part_bytes=part_bytes)
    return result


def _follow(gen: subprocess.Popen[Any], pids: list[int], profiled: int | None) -> dict[str, Any]:
    """Read the load client's marks, sampling server and client CPU at each."""
    assert gen.stdout is not None
    marks: dict[str, tuple[float, float, float]] = {}
    result: dict[str, Any] = {}
    for line in gen.stdout:
        if line.startswith("mark "):
            name = line.split()[1]
            marks[name] = (time.monotonic(), cpu_seconds(pids), cpu_seconds([gen.pid]))
            if name == "start" and profiled is not None:
                os.kill(profiled, signal.SIGUSR1)
        elif line.startswith("{"):
            result = json.loads(line)
    gen.wait(timeout=10)
    if "start" not in marks or "end" not in marks or not result:
        raise RuntimeError(f"the load client failed (exit {gen.returncode})")
    wall = marks["end"][0] - marks["start"][0]
    server_cpu = marks["end"][1] - marks["start"][1]
    result["server_cpu"] = round(server_cpu / wall, 3)  # fraction of one core
    result["loadgen_cpu"] = round((marks["end"][2] - marks["start"][2]) / wall, 3)
    result["per_core"] = round(result["responses"] / server_cpu, 1) if server_cpu else None
    return result


# ---------------------------------------------------------------- the benchmark
def run(
    clients: tuple[int, ...] = (1000, 3000),
    seconds: float = 10.0,
    warmup: float = 3.0,
    part_kb: float = 60.0,
    saturation: bool = True,
    profile: bool = False,
    repeat: int = 1,
) -> dict[str, Any]:
    """Every measurement, one at a time (``repeat`` rounds, nginx and livecast interleaved, the
    median per-core row kept); a dict of rows and per-core ratios (JSON-able)."""
    part_bytes = int(part_kb * 1024)
    rows: list[dict[str, Any]] = []
    ratios: dict[str, dict[str, float | None]] = {}
    plan = [("nginx", "plain"), ("livecast", "llhls")]
    if saturation:
        plan.append(("livecast", "plain"))
    for count in clients:
        runs: dict[tuple[str, str], list[dict[str, Any]]] = {key: [] for key in plan}
        for _ in range(max(1, repeat)):
            for server, mode in plan:
                runs[(server, mode)].append(
                    measure(server, mode, count, seconds, warmup, part_bytes)
                )
        best = {key: _median_row(found) for key, found in runs.items()}
        rows += best.values()
        nginx = best[("nginx", "plain")]
        ratios[str(count)] = {
            mode: _ratio(row, nginx) for (server, mode), row in best.items() if server != "nginx"
        }
    playlist, part, _ = sample_objects(part_bytes)
    figures: dict[str, Any] = {
        "goal": GOAL,
        "playlist_bytes": len(playlist),
        "part_bytes": len(part),
        "rows": rows,
        "ratios_per_core": ratios,
    }
    if profile:
        with tempfile.TemporaryDirectory(prefix="bench-origin-prof-") as tmp:
            path = f"{tmp}/origin.prof"
            measure("livecast", "llhls", max(clients), seconds, warmup, part_bytes, path)
            figures["profile_top"] = profile_top(path)
    return figures


def _median_row(found: list[dict[str, Any]]) -> dict[str, Any]:
    ordered = sorted(found, key=lambda row: row.get("per_core") or 0.0)
    row = ordered[len(ordered) // 2]
    row["per_core_runs"] = [r.get("per_core") for r in found]
    return row


def _ratio(row: dict[str, Any], peer: dict[str, Any]) -> float | None:
    if not row.get("per_core") or not peer.get("per_core"):
        return None
    return round(float(row["per_core"]) / float(peer["per_core"]), 3)


def profile_top(path: str, count: int = 20) -> list[str]:
    import io
    import pstats

    out = io.StringIO()
    pstats.Stats(path, stream=out).sort_stats("tottime").print_stats(count)
    lines = out.getvalue().splitlines()
    start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
    return [line.rstrip() for line in lines[start : start + count + 1] if line.strip()]


def report(figures: dict[str, Any]) -> str:
    head = (
        f"{'clients':>7}  {'server':<8} {'workload':<16} {'req/s':>8} {'server CPU':>10} "
        f"{'req/s per core':>14} {'loadgen CPU':>11}  wake-up p50/p95"
    )
    sizes = figures["playlist_bytes"] / 1024, figures["part_bytes"] / 1024
    title = (
        "origin throughput on 127.0.0.1, one server process (CPU from /proc over the window); "
        f"720p playlist {sizes[0]:.1f} KB, part {sizes[1]:.0f} KB"
    )
    lines = [title, head]
    for row in figures["rows"]:
        workload = "LL-HLS blocking" if row["mode"] == "llhls" else "plain GET loop"
        wake = row.get("wakeup_s")
        wake_text = f"{wake['p50'] * 1000:.0f} / {wake['p95'] * 1000:.0f} ms" if wake else ""
        bad = sum(v for k, v in row["statuses"].items() if k != "200")
        note = f"  ({bad} non-200)" if bad else ""
        rate = row["requests_per_s"]
        lines.append(
            f"{row['clients']:>7}  {row['server']:<8} {workload:<16} {rate:>8,.0f} "
            f"{row['server_cpu']:>10.0%} {row['per_core'] or 0:>14,.0f} {row['loadgen_cpu']:>11.0%}"
            f"  {wake_text}{note}"
        )
    for count, ratio in figures["ratios_per_core"].items():
        parts = [f"{k} {v:.2f}×" if v is not None else f"{k} –" for k, v in ratio.items()]
        lines.append(
            f"ratio livecast/nginx per core at {count} clients: {', '.join(parts)} "
            f"(goal ≥ {figures['goal']}×)"
        )
    if figures.get("profile_top"):
        lines += ["", "origin profile (LL-HLS, window only, by own time):", *figures["profile_top"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    origin = sub.add_parser("_origin", help=argparse.SUPPRESS)
    origin.add_argument("--part-kb", type=float, default=60.0)
    origin.add_argument("--max-seconds", type=float, default=120.0)
    origin.add_argument("--profile", default=None)
    parser.add_argument("--clients", type=int, nargs="+", default=[1000, 3000])
    parser.add_argument("--seconds", type=float, default=10.0, help="measurement window")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--part-kb", type=float, default=60.0, help="720p part size")
    parser.add_argument("--no-saturation", action="store_true", help="skip livecast plain loop")
    parser.add_argument("--profile", action="store_true", help="add a cProfile'd origin run")
    parser.add_argument("--repeat", type=int, default=1, help="rounds; the median is kept")
    args = parser.parse_args(argv)
    if args.command == "_origin":
        import uvloop

        uvloop.run(serve_origin(int(args.part_kb * 1024), args.max_seconds, args.profile))
        return 0
    if not Path(NGINX).exists():
        print(f"bench_origin: {NGINX} is missing (apt-get install nginx-light)", file=sys.stderr)
        return 2
    figures = run(
        tuple(args.clients),
        args.seconds,
        args.warmup,
        args.part_kb,
        not args.no_saturation,
        args.profile,
        args.repeat,
    )
    print(report(figures))
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
