"""A bare uvloop HTTP/1.1 load client for the origin benchmark (brief §8: it saturates nginx).

One :class:`asyncio.Protocol` per keep-alive connection, httptools response parsing, request bytes
built once per distinct URL (all viewers ask for the same ones), and the next request written from
``on_message_complete`` — no task, no future, no timer per request.

Two loops per simulated viewer:
  llhls  blocking playlist reload ``index.m3u8?_HLS_msn=M&_HLS_part=P`` for the next part, then that
         part ``part-M.P.m4s``; the next (M, P) is read from the EXT-X-PRELOAD-HINT line of the
         playlist body (a byte search, no parsing). A real LL-HLS viewer at 1/3 s parts.
  plain  ``GET <playlist>`` then its newest EXT-X-PART without blocking, as fast as the server
         answers (the peer workload: static files from nginx, or the origin's saturation figure).

Run as a process by ``bench_origin.py``; prints ``mark start|end <wall time> <responses>`` lines at
the edges of the measurement window (so that the parent can sample server CPU at those moments)
and finally one JSON object with the window's figures.

    python3 benchmarks/loadgen.py --port 8090 --clients 1000 --mode llhls --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import sys
import time
from typing import Any, cast

import httptools

HINT = b'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part-'
LAST_PART = b"#EXT-X-PART:"


class Stats:
    """Counters shared by every connection; ``window`` snapshots them."""

    def __init__(self) -> None:
        self.responses = 0
        self.bytes = 0
        self.statuses: dict[int, int] = {}
        self.wakeups: list[float] = []  # s from the part's capture end to its playlist's arrival
        self.recording = False
        self.disconnects = 0


class Workload:
    """What every viewer requests; builds and memoises request bytes."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.mode: str = args.mode
        self.host = f"{args.host}:{args.port}".encode()
        self.playlist: str = args.playlist
        self.base = self.playlist.rsplit("/", 1)[0]
        self.part_prefix = f"{self.base}/part-"
        self.epoch: float = args.epoch
        self.msn_base: int = args.msn_base
        self.segment: float = args.segment
        self.part_duration: float = args.part_duration
        self._cache: dict[tuple[int, int, int], bytes] = {}
        self._named: dict[bytes, bytes] = {}
        self.plain_playlist = self._build(self.playlist)

    def _build(self, target: str) -> bytes:
        return b"GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (target.encode(), self.host)

    def blocking(self, msn: int, part: int) -> bytes:
        key = (0, msn, part)
        data = self._cache.get(key)
        if data is None:
            if len(self._cache) > 4096:
                self._cache.clear()
            data = self._cache[key] = self._build(
                f"{self.playlist}?_HLS_msn={msn}&_HLS_part={part}"
            )
        return data

    def part_request(self, msn: int, part: int) -> bytes:
        key = (1, msn, part)
        data = self._cache.get(key)
        if data is None:
            data = self._cache[key] = self._build(f"{self.part_prefix}{msn}.{part}.m4s")
        return data

    def plain_part(self, uri: bytes) -> bytes:
        data = self._named.get(uri)
        if data is None:
            if len(self._named) > 4096:
                self._named.clear()
            data = self._named[uri] = self._build(f"{self.base}/{uri.decode()}")
        return data

    def capture_end(self, msn: int, part: int) -> float:
        return self.epoch + (msn - self.msn_base) * self.segment + (part + 1) * self.part_duration


class Viewer(asyncio.Protocol):
    """One simulated viewer on one keep-alive connection."""

    def __init__(self, work: Workload, stats: Stats) -> None:
        self.work = work
        self.stats = stats
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.body: list[bytes] = []
        self.size = 0
        self.expect_playlist = True
        self.msn = -1  # the part asked for by the pending blocking reload, -1 for a plain one
        self.index = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.work.plain_playlist)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.stats.disconnects += 1

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.abort()

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.expect_playlist:
            self.body.append(body)

    def on_message_complete(self) -> None:
        stats, work, transport = self.stats, self.work, self.transport
        if stats.recording:
            stats.responses += 1
            stats.bytes += self.size
            status = self.parser.get_status_code()
            stats.statuses[status] = stats.statuses.get(status, 0) + 1
        self.size = 0
        if transport is None:
            return
        if not self.expect_playlist:  # a part: block for the next one, or reload at once
            self.expect_playlist = True
            if work.mode == "plain":
                transport.write(work.plain_playlist)
            else:
                transport.write(work.blocking(self.msn, self.index))
            return
        body = b"".join(self.body) if len(self.body) > 1 else (self.body or [b""])[0]
        self.body = []
        if work.mode == "plain":
            at = body.rfind(LAST_PART)
            if at < 0:
                asyncio.get_running_loop().call_later(0.2, self._resend_plain)
                return
            start = body.find(b'URI="', at) + 5
            self.expect_playlist = False
            transport.write(work.plain_part(body[start : body.find(b'"', start)]))
            return
        if stats.recording and self.msn >= 0:
            stats.wakeups.append(time.time() - work.capture_end(self.msn, self.index))
        at = body.rfind(HINT)
        if at < 0:  # no hint (an error, or the stream has not started or ended): retry later
            self.msn = -1
            asyncio.get_running_loop().call_later(0.2, self._resend_plain)
            return
        end = body.find(b".m4s", at)
        msn, _, index = body[at + len(HINT) : end].partition(b".")
        if self.msn < 0:  # joined: block for the hinted part
            self.msn, self.index = int(msn), int(index)
            transport.write(work.blocking(self.msn, self.index))
            return
        self.expect_playlist = False
        transport.write(work.part_request(self.msn, self.index))
        self.msn, self.index = int(msn), int(index)  # the next part to block for

    def _resend_plain(self) -> None:
        if self.transport is not None:
            self.transport.write(self.work.plain_playlist)


def percentiles(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]

    return {"p50": at(50), "p95": at(95), "p99": at(99), "max": ordered[-1]}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    stats = Stats()
    work = Workload(args)
    transports: list[asyncio.Transport] = []
    failures = 0
    for start in range(0, args.clients, args.ramp_batch):
        batch = [
            loop.create_connection(lambda: Viewer(work, stats), args.host, args.port)
            for _ in range(min(args.ramp_batch, args.clients - start))
        ]
        for outcome in await asyncio.gather(*batch, return_exceptions=True):
            if isinstance(outcome, BaseException):
                failures += 1
            else:
                transports.append(outcome[0])
        await asyncio.sleep(random.uniform(0.0, 0.02))
    await asyncio.sleep(args.warmup)
    stats.recording = True
    started = time.time()
    print(f"mark start {started:.6f} 0", flush=True)
    await asyncio.sleep(args.seconds)
    stats.recording = False
    ended = time.time()
    print(f"mark end {ended:.6f} {stats.responses}", flush=True)
    window = ended - started
    result: dict[str, Any] = {
        "mode": args.mode,
        "clients": args.clients,
        "connected": len(transports),
        "connect_failures": failures,
        "window_s": round(window, 3),
        "responses": stats.responses,
        "requests_per_s": round(stats.responses / window, 1),
        "megabytes_per_s": round(stats.bytes / window / 1e6, 2),
        "statuses": {str(k): v for k, v in sorted(stats.statuses.items())},
        "disconnects_during_run": stats.disconnects,
        "wakeup_s": percentiles(stats.wakeups),
    }
    for transport in transports:
        transport.abort()
    await asyncio.sleep(0)
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--mode", choices=("llhls", "plain"), default="llhls")
    parser.add_argument("--playlist", default="/live/720p/index.m3u8")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--ramp-batch", type=int, default=250)
    # the publisher's timeline, for the wake-up latency of blocked requests (llhls mode)
    parser.add_argument("--epoch", type=float, default=0.0)
    parser.add_argument("--msn-base", type=int, default=0)
    parser.add_argument("--segment", type=float, default=2.0)
    parser.add_argument("--part-duration", type=float, default=1 / 3)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < args.clients + 100 <= hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (args.clients + 100, hard))
    try:
        import uvloop
    except ImportError:
        print("loadgen: uvloop is not installed", file=sys.stderr)
        return 2
    result = uvloop.run(run(args))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
