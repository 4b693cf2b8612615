"""``livecast calibrate --out profile.toml``: this machine's capacities, measured with the real
components on 127.0.0.1 — the adapter that fills a :class:`~livecast.simulate.profile.Profile`.

Three phases, each bounded in time (``--seconds`` per window; ``--quick`` for a smoke run), CPU
from ``/proc`` (every thread's ``schedstat``, ns) over each window:

1. **origin** — ``livecast serve`` on the loop source (``rehearse.stack.Stack``): each object
   kind loaded by loopback keep-alive clients (GET loops over the renditions; playlists as LL-HLS
   blocking reloads for the next part, hundreds of clients); answered requests ÷ the origin's CPU
   seconds, its idle cost (the loop replay) subtracted = requests/s per core. Light-load latency:
   median of sequential GETs of a part.
2. **edge** — one nginx edge (``edge_tier``) in front of it through a counting relay
   (``RequestTap``): hits per CPU-second of nginx, a hit's light-load latency, and the collapse —
   N clients at once ask for a blocking playlist and a part not produced yet; the relay counts
   the origin requests per object. The shield gets the edge's figures (same kind of node).
3. **driver** — ``rehearse.driver.Driver`` (the full player model) in this process against the
   origin: CPU seconds per request and requests per viewer-second once the viewers have joined.

Bytes per second mean nothing on loopback: the profile keeps the 10 Gb/s NIC default.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import functools
import os
import platform
import re
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast
from urllib.parse import urljoin, urlsplit

import httptools

from livecast.edge.nginx_conf import Upstream
from livecast.edge.origins import MULTIVARIANT
from livecast.edge.tap import RequestTap
from livecast.edge.topology import TopologySpec, edge_tier
from livecast.errors import ConfigError, LivecastError
from livecast.hls.playlist import parse_media_playlist, parse_multivariant_playlist
from livecast.simulate.profile import (
    OBJECT_KINDS,
    CacheProfile,
    DriverProfile,
    OriginProfile,
    Profile,
    profile_toml,
)

HOST = "127.0.0.1"
HINT = re.compile(rb'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part-(\d+)\.(\d+)\.m4s"')
NOT_MEASURED_NIC = "not measured: NIC (loopback says nothing of it); the 10 Gb/s default"


@dataclass(frozen=True)
class Plan:
    """How long and how hard each phase loads."""

    seconds: float = 5.0  # measuring window of each figure
    warmup: float = 1.0  # clients connected and running before a window opens
    idle: float = 2.0  # the origin's idle CPU is sampled this long
    plain_clients: int = 8  # GET loops (multivariant, part, segment, init; edge hits × 4)
    blocking_clients: int = 1000  # LL-HLS blocking playlist reloads, 3 per second each
    collapse_clients: int = 50  # concurrent requests for one new object through the edge
    collapse_rounds: int = 5
    viewers: int = 150  # the driver's virtual viewers
    driver_warmup: float = 3.0  # the viewers join within 1 s; their startup is left out
    latency_requests: int = 30  # sequential GETs for a light-load latency


QUICK = Plan(1.0, 0.3, 0.5, 8, 300, 20, 2, 40, 1.0, 10)


# ---------------------------------------------------------------- /proc
def cpu_seconds(pids: Sequence[int]) -> float:
    """CPU time of processes, every thread's ``schedstat`` (ns; a short window needs more than
    the 10 ms ticks of ``stat``); a vanished process or thread counts 0."""
    total = 0
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").glob("*/schedstat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                total += int(task.read_text().split()[0])
    return total / 1e9


def children(pid: int) -> list[int]:
    """The processes ``pid``'s main thread forked (nginx's workers)."""
    with contextlib.suppress(OSError):
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return []


def machine() -> str:
    """CPU model and cores, from /proc/cpuinfo."""
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    cores = os.cpu_count() or 1
    return f"{model}, {cores} core{'s' if cores > 1 else ''}, Linux {platform.release()}"


# ---------------------------------------------------------------- the load client
def request(target: str) -> bytes:
    return f"GET {target} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode("latin-1")


class Script:
    """What one client asks for, one request at a time: ``targets`` in a loop without pause;
    or, ``blocking``, an LL-HLS player's playlist requests — a blocking reload of ``targets[0]``
    for the part its last answer hints at, again and again."""

    def __init__(self, targets: Sequence[str], blocking: bool = False) -> None:
        self.targets = targets
        self.requests = [request(target) for target in targets]
        self.keeps_body = blocking
        self.index = 0

    def first(self) -> bytes:
        return self.requests[0]

    def next(self, status: int, body: bytes) -> bytes | None:
        """The next request; None: ``first()`` again in 0.2 s."""
        if not self.keeps_body:
            self.index = (self.index + 1) % len(self.requests)
            return self.requests[self.index]
        found = HINT.search(body) if status == 200 else None
        if found is None:
            return None
        return request(f"{self.targets[0]}?_HLS_msn={int(found[1])}&_HLS_part={int(found[2])}")


@dataclass
class Tally:
    recording: bool = False
    counts: list[int] = field(default_factory=lambda: [0, 0])  # [not 2xx, 2xx]


class Client(asyncio.Protocol):
    """One keep-alive connection driven by a :class:`Script` (httptools parsing)."""

    def __init__(self, script: Script, tally: Tally) -> None:
        self.script = script
        self.tally = tally
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.script.first())

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.abort()

    def on_body(self, body: bytes) -> None:
        if self.script.keeps_body:
            self.body.append(body)

    def on_message_complete(self) -> None:
        status: int = self.parser.get_status_code()
        if self.tally.recording:
            self.tally.counts[200 <= status < 300] += 1
        body, self.body = b"".join(self.body), []
        following = self.script.next(status, body)
        if following is None:
            asyncio.get_running_loop().call_later(0.2, self._write, self.script.first())
        else:
            self._write(following)

    def _write(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)


@dataclass(frozen=True)
class Window:
    answered: int
    errors: int
    wall: float
    cpu: float  # CPU seconds of the measured processes over the window

    @property
    def share(self) -> float:
        return self.cpu / self.wall if self.wall else 0.0

    def check(self, what: str) -> None:
        """A window to measure from: answers, CPU seconds, (almost) no errors."""
        if self.answered == 0 or self.cpu <= 0 or self.errors > 0.01 * self.answered:
            raise LivecastError(
                f"{what}: {self.answered} answered, {self.errors} not 2xx, {self.cpu:.3f} CPU-s"
            )


async def load(
    port: int, scripts: Sequence[Script], pids: Sequence[int], warmup: float, seconds: float
) -> Window:
    """``scripts`` on one connection each to ``port``; answers and CPU of ``pids`` in a window
    after ``warmup``."""
    loop = asyncio.get_running_loop()
    tally = Tally()
    transports: list[asyncio.BaseTransport] = []
    try:
        for start in range(0, len(scripts), 250):
            batch = [functools.partial(Client, s, tally) for s in scripts[start : start + 250]]
            made = await asyncio.gather(*(loop.create_connection(c, HOST, port) for c in batch))
            transports += [transport for transport, _ in made]
        await asyncio.sleep(warmup)
        cpu0, t0 = cpu_seconds(pids), time.monotonic()
        tally.recording = True
        await asyncio.sleep(seconds)
        tally.recording = False
        cpu1, t1 = cpu_seconds(pids), time.monotonic()
    finally:
        for transport in transports:
            cast(asyncio.Transport, transport).abort()
    return Window(tally.counts[1], tally.counts[0], t1 - t0, cpu1 - cpu0)


async def fetch(port: int, target: str, timeout: float = 15.0) -> bytes:
    """One GET on a fresh connection; the whole answer (head and body)."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(request(target)[:-2] + b"Connection: close\r\n\r\n")
        return await asyncio.wait_for(reader.read(-1), timeout)
    finally:
        writer.close()


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.") else 0


async def latency(port: int, target: str, count: int) -> float:
    """Median seconds of ``count`` sequential GETs on one keep-alive connection, 20 ms apart
    (light load)."""
    reader, writer = await asyncio.open_connection(HOST, port)
    times: list[float] = []
    try:
        for _ in range(count):
            started = time.perf_counter()
            writer.write(request(target))
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            size = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
            if status_of(head) != 200 or size is None:
                raise LivecastError(f"GET {target}: {head[:60]!r}")
            await reader.readexactly(int(size[1]))
            times.append(time.perf_counter() - started)
            await asyncio.sleep(0.02)
    finally:
        writer.close()
    return statistics.median(times)


# ---------------------------------------------------------------- the stream's objects
@dataclass(frozen=True)
class Rendition:
    name: str
    playlist: str  # /live/720p/index.m3u8
    init: str
    segment: str  # the newest complete one
    part: str  # the newest complete one
    msn: int  # of that part
    index: int

    def blocking(self, msn: int, index: int) -> str:
        return f"{self.playlist}?_HLS_msn={msn}&_HLS_part={index}"


def _get_text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return cast(bytes, response.read()).decode("utf-8", "replace")


def renditions(base_url: str) -> list[Rendition]:
    """Every rendition behind the multivariant playlist, with its newest complete objects."""
    top = parse_multivariant_playlist(_get_text(base_url + MULTIVARIANT))
    uris = [v.uri for v in top.variants] + [m.uri for m in top.media if m.uri]
    found = []
    for uri in uris:
        url = urljoin(base_url + MULTIVARIANT, uri)
        media = parse_media_playlist(_get_text(url))
        path = urlsplit(url).path
        folder = path.rsplit("/", 1)[0]
        segments = [s for s in media.segments if s.uri]
        with_parts = [s for s in media.segments if s.parts]
        first_map = next((s.map for s in media.segments if s.map), None)
        if not segments or not with_parts or first_map is None:
            raise LivecastError(f"{url}: no complete segment, part or init yet")
        part = with_parts[-1].parts[-1].uri
        msn, _, index = part.removeprefix("part-").removesuffix(".m4s").partition(".")
        name = path.split("/")[-2]
        init, segment = f"{folder}/{first_map.uri}", f"{folder}/{segments[-1].uri}"
        found.append(Rendition(name, path, init, segment, f"{folder}/{part}", int(msn), int(index)))
    return found


def spread(items: Sequence[Rendition], count: int) -> list[Rendition]:
    return [items[i % len(items)] for i in range(count)]


def names(items: Sequence[Rendition]) -> str:
    return "/".join(r.name for r in items)


# ---------------------------------------------------------------- the phases
Notes = dict[str, str]


def progress(text: str) -> None:
    print(f"calibrate: {text}", file=sys.stderr, flush=True)


async def measure_origin(pid: int, base_url: str, plan: Plan, notes: Notes) -> OriginProfile:
    pids = [pid, *children(pid)]
    cpu0 = cpu_seconds(pids)
    await asyncio.sleep(plan.idle)
    idle = (cpu_seconds(pids) - cpu0) / plan.idle  # the loop replay + packager, CPU-s per s
    port = int(base_url.rsplit(":", 1)[1])
    rates: dict[str, float] = {}
    for kind in OBJECT_KINDS:
        objects = await asyncio.to_thread(renditions, base_url)  # parts last a few segments
        wide = spread(objects, plan.plain_clients)
        targets = {
            "multivariant": [MULTIVARIANT] * plan.plain_clients,
            "playlist": [r.playlist for r in spread(objects, plan.blocking_clients)],
            "part": [r.part for r in wide],
            "segment": [r.segment for r in wide],
            "init": [r.init for r in wide],
        }[kind]
        clients = [Script([target], blocking=kind == "playlist") for target in targets]
        warmup = plan.warmup + (0.5 if kind == "playlist" else 0.0)  # every client blocking
        window = await load(port, clients, pids, warmup, plan.seconds)
        busy = max(window.cpu - idle * window.wall, 0.5 * window.cpu)
        window.check(f"origin {kind}")
        rates[kind] = round(window.answered / busy, 1)
        how = (
            "blocking reloads (_HLS_msn/_HLS_part) for the next part"
            if kind == "playlist"
            else f"GET loops on {MULTIVARIANT if kind == 'multivariant' else names(objects)}"
        )
        errors = f", {window.errors} non-2xx" if window.errors else ""
        notes[f"origin.requests_per_s.{kind}"] = (
            f"{window.answered:,} req over {busy:.2f} CPU-s, {len(clients)} clients, {how}; "
            f"origin at {window.share:.0%} of a core, idle {idle:.1%} subtracted{errors}"
        )
        progress(f"origin {kind}: {rates[kind]:,.0f} req per CPU-s ({window.answered:,} req)")
    objects = await asyncio.to_thread(renditions, base_url)
    light = await latency(port, objects[0].part, plan.latency_requests)
    notes["origin.latency_s"] = f"median of {plan.latency_requests} sequential GETs of a part"
    notes["origin.cores"], notes["origin.bytes_per_s"] = "1 origin process", NOT_MEASURED_NIC
    progress(f"origin latency at light load: {light * 1000:.2f} ms")
    return OriginProfile(cores=1, latency_s=round(light, 6), requests_per_s=rates)


def hinted(playlist: bytes) -> tuple[int, int]:
    found = HINT.search(playlist)
    if found is None:
        raise LivecastError(f"no preload hint in {playlist[:80]!r}")
    return int(found[1]), int(found[2])


async def collapse_round(
    edge: int, origin: int, rendition: Rendition, clients: int, tap: RequestTap
) -> tuple[int, int]:
    """N clients at once ask the edge for the next blocking playlist and the hinted part (not
    produced yet); origin requests for each, counted at the relay."""
    msn, index = hinted(await fetch(origin, rendition.playlist))
    msn, index = hinted(await fetch(origin, rendition.blocking(msn, index)))  # a part just out
    part = f"{rendition.playlist.rsplit('/', 1)[0]}/part-{msn}.{index}.m4s"
    answers = await asyncio.gather(
        *(fetch(edge, rendition.blocking(msn, index)) for _ in range(clients)),
        *(fetch(edge, part) for _ in range(clients)),
    )
    bad = [status_of(a) for a in answers if status_of(a) != 200]
    if bad:
        raise LivecastError(f"edge collapse: {len(bad)} of {len(answers)} not 200 ({bad[0]})")
    await asyncio.sleep(0.3)  # a late upstream request would still be counted
    return tap.count(rendition.blocking(msn, index)), tap.count_path(part)


async def measure_edge(
    origin_port: int, target_duration: float, base_url: str, plan: Plan, notes: Notes
) -> CacheProfile:
    tap = RequestTap(HOST, origin_port)  # counts what reaches the origin
    await tap.start()
    try:
        spec = TopologySpec(edges=1, workers=1)
        async with edge_tier(spec, [Upstream(HOST, tap.port)], target_duration) as tier:
            edge = tier.edges[0]
            assert edge.pid is not None  # started by edge_tier
            port, pids = edge.conf.port, [edge.pid, *children(edge.pid)]
            objects = await asyncio.to_thread(renditions, base_url)
            wakeup = "Lua wake-up" if edge.conf.lua_modules else "proxy_cache_lock only, no Lua"
            clients = [
                Script([r.blocking(r.msn, r.index), r.part])
                for r in spread(objects, 4 * plan.plain_clients)
            ]
            window = await load(port, clients, pids, plan.warmup, plan.seconds)
            window.check("edge hits")
            rate = window.answered / window.cpu
            light = await latency(port, objects[0].part, plan.latency_requests)
            await asyncio.sleep(1.1)  # nginx flushes its access log every second
            hits = tier.tallies().get(edge.conf.name)
            ratio = f", {hits.hit_ratio:.1%} from the cache (access log)" if hits else ""
            errors = f", {window.errors} non-2xx" if window.errors else ""
            progress(f"edge hits: {rate:,.0f} req per CPU-s ({window.answered:,} req{errors})")
            progress(f"edge hit latency at light load: {light * 1000:.2f} ms")
            counts: list[tuple[int, int]] = []
            for round_ in range(plan.collapse_rounds):
                rendition = objects[round_ % len(objects)]
                counts.append(
                    await collapse_round(port, origin_port, rendition, plan.collapse_clients, tap)
                )
    finally:
        await tap.stop()
    per_object = sum(a + b for a, b in counts) / (2 * len(counts))
    if per_object <= 0:
        raise LivecastError("edge collapse: no request reached the origin")
    progress(f"edge collapse: {per_object:.2f} origin requests per new object ({wakeup})")
    notes["edge.requests_per_s"] = (
        f"hits: {window.answered:,} req over {window.cpu:.2f} CPU-s of nginx (all its processes, "
        f"1 worker), {len(clients)} clients looping on an answered blocking reload and its part "
        f"over {names(objects)}; nginx at {window.share:.0%} of a core"
        f"{ratio}{errors}"
    )
    notes["edge.cpu_s_per_request"] = "1 / requests_per_s, the same hits"
    notes["edge.latency_s"] = f"median of {plan.latency_requests} sequential GETs of a cached part"
    notes["edge.upstream_per_object"] = (
        f"{plan.collapse_clients} clients at once per new object, {len(counts)} rounds; origin "
        f"requests (counting relay) for the blocking playlist: "
        f"{'/'.join(str(a) for a, _ in counts)}, the hinted part: "
        f"{'/'.join(str(b) for _, b in counts)} ({wakeup})"
    )
    notes["edge.cores"], notes["edge.bytes_per_s"] = "nginx, 1 worker process", NOT_MEASURED_NIC
    return CacheProfile(
        cores=1,
        requests_per_s=round(rate, 1),
        cpu_s_per_request=float(f"{1.0 / rate:.4g}"),
        latency_s=round(light, 6),
        upstream_per_object=round(per_object, 3),
    )


async def measure_driver(
    multivariant_url: str, target_duration: float, plan: Plan, notes: Notes
) -> DriverProfile:
    """The rehearsal driver with the full player model, in this process (CPU from /proc)."""
    from livecast.rehearse.driver import Driver, DriverConfig
    from livecast.rehearse.progress import Progress
    from livecast.scenario.audience import AudienceShape, plan_audience
    from livecast.scenario.file import DEFAULT_DOWNLINK

    duration = plan.driver_warmup + plan.seconds + 1.0
    plans = plan_audience(
        AudienceShape(kind="flash", viewers=plan.viewers, within=1.0), duration,
        low_latency_share=1.0, downlink=list(DEFAULT_DOWNLINK), seed=1,
    )  # fmt: skip
    seconds: list[tuple[int, float, int, int]] = []  # (t, CPU-s so far, requests, viewers)

    def on_progress(second: Progress) -> None:
        seconds.append((second.t, cpu_seconds([os.getpid()]), second.requests, second.active))

    config = DriverConfig(
        (multivariant_url,), duration, time.time() + 0.5, held_limit=3 * target_duration
    )
    await Driver(plans, config, on_progress=on_progress).run()
    first = int(plan.driver_warmup)
    window = [row for row in seconds if first <= row[0] < first + max(1, round(plan.seconds))]
    before = [row for row in seconds if row[0] == first - 1]
    if not window or not before:
        raise LivecastError(f"driver: no progress seconds to measure ({len(seconds)} seen)")
    cpu = window[-1][1] - before[0][1]
    requests = sum(row[2] for row in window)
    viewer_seconds = sum(row[3] for row in window)
    if requests == 0 or cpu <= 0 or viewer_seconds == 0:
        raise LivecastError(f"driver: {requests} requests over {cpu} CPU-s")
    per_request = cpu / requests
    per_viewer = requests / viewer_seconds
    progress(f"driver: {per_request * 1e6:.0f} µs CPU per request, {per_viewer:.1f} per viewer-s")
    notes["driver.cpu_s_per_request"] = (
        f"{requests:,} req over {cpu:.2f} CPU-s of the driver process, {plan.viewers} LL-HLS "
        f"viewers (full player model, default downlinks) on the origin, {len(window)} s after "
        f"{first} s of joining"
    )
    notes["driver.requests_per_viewer_per_s"] = (
        f"{requests:,} req over {viewer_seconds:,} viewer-seconds, the same window"
    )
    return DriverProfile(
        cpu_s_per_request=float(f"{per_request:.4g}"),
        requests_per_viewer_per_s=round(per_viewer, 2),
    )


async def calibrate(plan: Plan) -> tuple[Profile, Notes]:
    """Every phase against a loop-source stack of its own (started here, stopped after)."""
    from livecast.rehearse.runner import stream_facts
    from livecast.rehearse.stack import Stack
    from livecast.rehearse.workers import raise_open_files_limit
    from livecast.scenario.file import StackSpec

    raise_open_files_limit()  # inherited by the origin: a thousand blocking clients
    notes: Notes = {}
    with tempfile.TemporaryDirectory(prefix="livecast-calibrate-") as workdir:
        stack = Stack(StackSpec(source="loop", loop_seconds=20.0), Path(workdir))
        progress("starting the origin (loop source; the first run pre-encodes the loop)")
        try:
            await stack.start()
            assert stack.process is not None
            facts = await asyncio.to_thread(stream_facts, stack.base_url + MULTIVARIANT)
            target = facts.target_duration
            origin = await measure_origin(stack.process.pid, stack.base_url, plan, notes)
            edge = await measure_edge(stack.port, target, stack.base_url, plan, notes)
            driver = await measure_driver(stack.base_url + MULTIVARIANT, target, plan, notes)
        finally:
            await stack.stop()
    for key in ("requests_per_s", "cpu_s_per_request", "latency_s", "upstream_per_object"):
        notes[f"shield.{key}"] = "the edge's figure: a shield is the same kind of node (nginx)"
    notes["shield.cores"], notes["shield.bytes_per_s"] = notes["edge.cores"], NOT_MEASURED_NIC
    profile = Profile(
        machine=machine(),
        measured=datetime.date.today().isoformat(),
        origin=origin,
        edge=edge,
        shield=replace(edge),
        driver=driver,
    )
    return profile.validate(), notes


# ---------------------------------------------------------------- the command
def add_parser(subparsers: Any) -> None:
    """``livecast calibrate`` on the CLI's sub-command parsers."""
    parser = subparsers.add_parser(
        "calibrate",
        help="measure origin, edge and driver capacities into a profile (docs/simulation.md)",
    )
    parser.add_argument("--out", required=True, help="the profile to write (profile.toml)")
    parser.add_argument(
        "--seconds", type=float, default=None, help="measuring window per figure (default 5)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="short windows, fewer clients: a smoke run (≈ 20 s)"
    )


def main(args: argparse.Namespace) -> int:
    """0: the profile is written; 2: it could not be measured (nothing is written)."""
    from livecast.edge.nginx import find_nginx
    from livecast.origin.wire import install_uvloop

    plan = QUICK if args.quick else Plan()
    if args.seconds is not None:
        plan = replace(plan, seconds=args.seconds)
    if not (plan.seconds > 0 and Path("/proc/self/task").is_dir()):
        print("livecast calibrate: needs --seconds > 0 and Linux /proc", file=sys.stderr)
        return 2
    try:
        find_nginx()
    except ConfigError as exc:
        print(f"livecast calibrate: the edge phase needs nginx: {exc}", file=sys.stderr)
        return 2
    started = time.monotonic()
    install_uvloop()
    try:
        profile, notes = asyncio.run(calibrate(plan))
    except (LivecastError, ConfigError, OSError) as exc:
        print(f"livecast calibrate: could not measure: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    try:
        out.write_text(profile_toml(profile, notes))
    except OSError as exc:
        print(f"livecast calibrate: cannot write {out}: {exc}", file=sys.stderr)
        return 2
    progress(f"wrote {out} in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    _parser = argparse.ArgumentParser(prog="python -m livecast.simulate.calibrate")
    add_parser(_parser.add_subparsers(dest="command", required=True))
    sys.exit(main(_parser.parse_args(["calibrate", *sys.argv[1:]])))
