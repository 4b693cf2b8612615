"""Contribution: capture-to-viewer latency and CPU of an RTMP (and SRT) contribution against the
built-in test source, measured one after the other in the same run.

Each row runs the real ``livecast serve`` as a subprocess:

* ``test`` (the peer): ``source = "test"`` — testsrc2 generated and encoded by the ladder FFmpeg.
* ``rtmp``: ``source = "rtmp"``; the publisher is this process. A 720p30 FLV (x264 zerolatency,
  GOP 2 s, AAC 48 kHz — what OBS sends with its low-latency settings) is pre-encoded once, then
  sent tag by tag at ``T0 + timestamp``, like an encoder whose encode takes no time: the capture
  time of every frame is known.
* ``srt``: the same tags written to an FFmpeg that pushes them as MPEG-TS over SRT with OBS's
  default latency (120 ms) and one audio frame per PES (``-pes_payload_size 0``).

Latency: ``livecast probe`` (in this process) follows the 360p rendition with blocking reloads
and reports capture → newest complete part in the client's hands, taking the capture time from
``EXT-X-PROGRAM-DATE-TIME``. For the test source PDT is the capture time. For a contribution PDT
is livecast's wall clock at the arrival of the run's first keyframe, so the benchmark adds
(that PDT − the time the publisher sent that keyframe): every row counts from capture. The
player's own share (buffering, decoding) is the same for every row and is not included.

CPU: utime + stime of the serve process and all its descendants (the ladder FFmpeg; for SRT the
remux FFmpeg) over the measured window, as a share of the whole machine.

Goals (issue 11): contribution p50 ≤ test p50 + 0.3 s; ingest + ladder ≤ 35 % of the machine.

    python benchmarks/bench_contribution.py [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

from livecast.hls.playlist import parse_media_playlist  # noqa: E402
from livecast.ingest.amf0 import decode_values, encode_values  # noqa: E402
from livecast.ingest.rtmp_chunks import ChunkReader, ChunkWriter  # noqa: E402
from livecast.probe.client import probe  # noqa: E402
from livecast.transcode.ffmpeg import find_ffmpeg  # noqa: E402
from procs import checkout_env, cpu_seconds, descendants  # noqa: E402

GOAL_ADDED_S = 0.3
GOAL_CPU_SHARE = 0.35
CONTRIBUTION_SECONDS = 90  # long enough for the longest row
RENDITION = "360p"
# The publisher's MPEG-TS muxer: one audio frame per PES. FFmpeg's default packs 2,930 bytes of
# audio per PES (≈ 8 AAC frames at 128 kb/s), which holds audio — and with it the interleaved
# video at the listener — back by ≈ 0.12 s (measured; docs/ingest.md, "SRT").
CALLER_MPEGTS: list[str] = ["-pes_payload_size", "0"]
Tag = tuple[int, int, bytes]  # (FLV tag type, timestamp ms, body)


# ---------------------------------------------------------------------------- the contribution
def encode_contribution(path: Path) -> None:
    """720p30 testsrc2 + tone, x264 zerolatency with a 2 s GOP, AAC: what a low-latency OBS
    sends, encoded once as fast as possible."""
    argv = [find_ffmpeg(None), "-hide_banner", "-loglevel", "error", "-y"]
    argv += ["-f", "lavfi", "-i", f"testsrc2=size=1280x720:rate=30:duration={CONTRIBUTION_SECONDS}"]
    argv += [
        "-f",
        "lavfi",
        "-i",
        f"sine=frequency=500:sample_rate=48000:duration={CONTRIBUTION_SECONDS}",
    ]
    argv += ["-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-g", "60"]
    argv += ["-b:v", "3500k", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k", "-ac", "2"]
    subprocess.run([*argv, "-f", "flv", str(path)], check=True, timeout=600)


def read_tags(data: bytes) -> list[Tag]:
    """Every tag of an FLV file (E.2 header, E.3 PreviousTagSize, E.4.1 tags)."""
    offset = struct.unpack(">I", data[5:9])[0] + 4
    tags: list[Tag] = []
    while offset + 11 <= len(data):
        kind = data[offset] & 0x1F
        size = int.from_bytes(data[offset + 1 : offset + 4], "big")
        ts = int.from_bytes(data[offset + 4 : offset + 7], "big") | data[offset + 7] << 24
        tags.append((kind, ts, data[offset + 11 : offset + 11 + size]))
        offset += 11 + size + 4
    return tags


def flv_bytes(tags: list[Tag]) -> tuple[bytes, list[bytes]]:
    header = b"FLV\x01\x05" + struct.pack(">I", 9) + b"\x00\x00\x00\x00"
    out = []
    for kind, ts, body in tags:
        head = bytes([kind]) + len(body).to_bytes(3, "big") + (ts & 0xFFFFFF).to_bytes(3, "big")
        head += bytes([ts >> 24 & 0xFF]) + b"\x00\x00\x00"
        out.append(head + body + struct.pack(">I", 11 + len(body)))
    return header, out


def first_keyframe(tags: list[Tag]) -> int:
    return next(
        i for i, (kind, _, body) in enumerate(tags) if kind == 9 and body[:2] == b"\x17\x01"
    )


class Pacer:
    """Sends tags at ``T0 + timestamp``; remembers when the first keyframe went out."""

    def __init__(self, tags: list[Tag]) -> None:
        self.tags = tags
        self.keyframe_index = first_keyframe(tags)
        self.keyframe_sent: float | None = None

    async def run(self, send: Any) -> None:
        started = time.time()
        base = self.tags[0][1]
        for index, tag in enumerate(self.tags):
            delay = started + (tag[1] - base) / 1000 - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await send(index, tag)
            if index == self.keyframe_index:
                self.keyframe_sent = time.time()


# ---------------------------------------------------------------------------- publishers
async def rtmp_publish(url: str, key: str, pacer: Pacer) -> None:
    host, port = url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"\x03" + bytes(1536))
    await reader.readexactly(1 + 1536 * 2)
    writer.write(bytes(1536))
    chunks, incoming = ChunkWriter(), ChunkReader(max_message_bytes=1 << 20)
    writer.write(chunks.write(2, 1, struct.pack(">I", 4096)))  # Set Chunk Size, as OBS does
    chunks.chunk_size = 4096

    def command(name: str, txn: float, *args: Any, stream_id: int = 0) -> None:
        writer.write(chunks.write(3, 20, encode_values(name, txn, *args), stream_id=stream_id))

    command("connect", 1, {"app": "live", "tcUrl": url})
    command("createStream", 2, None)
    command("publish", 3, None, key, "live", stream_id=1)
    await writer.drain()
    while True:
        message = incoming.next_message()
        if message is None:
            data = await asyncio.wait_for(reader.read(65536), 10)
            if not data:
                raise RuntimeError("the RTMP server closed before Publish.Start")
            incoming.feed(data)
            continue
        if message.type_id == 1:
            incoming.set_chunk_size(struct.unpack(">I", message.payload)[0])
        if message.type_id == 20 and decode_values(message.payload)[0] == "onStatus":
            break

    async def send(_: int, tag: Tag) -> None:
        kind, ts, body = tag
        writer.write(chunks.write(6 if kind == 9 else 4, kind, body, stream_id=1, timestamp=ts))
        await writer.drain()

    try:
        await pacer.run(send)
    finally:
        writer.close()


async def srt_publish(url: str, pacer: Pacer) -> None:
    proc = await asyncio.create_subprocess_exec(
        find_ffmpeg(None), "-hide_banner", "-loglevel", "error", "-f", "flv", "-i", "pipe:0",
        "-c", "copy", *CALLER_MPEGTS, "-f", "mpegts", url,
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.stdin is not None
    header, encoded = flv_bytes(pacer.tags)
    proc.stdin.write(header)

    async def send(index: int, _: Tag) -> None:
        assert proc.stdin is not None
        proc.stdin.write(encoded[index])
        await proc.stdin.drain()

    try:
        await pacer.run(send)
    finally:
        proc.kill()
        await proc.wait()


# ---------------------------------------------------------------------------- one row
@asynccontextmanager
async def serve(config: str, env: dict[str, str]) -> AsyncIterator[tuple[int, list[str]]]:
    with tempfile.TemporaryDirectory(prefix="livecast-bench-") as tmp:
        path = Path(tmp) / "event.toml"
        path.write_text(config)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "livecast", "serve", "--config", str(path),
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env={**checkout_env(), **env},
        )  # fmt: skip
        assert proc.stdout is not None
        try:
            lines = [(await asyncio.wait_for(proc.stdout.readline(), 60)).decode().strip()]
            while len(lines) < 3 and 'source = "test"' not in config:
                lines.append((await asyncio.wait_for(proc.stdout.readline(), 10)).decode().strip())
            yield proc.pid, lines
        finally:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 20)
            except TimeoutError:
                proc.kill()
                await proc.wait()


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


async def wait_playing(media_url: str, timeout: float = 40.0) -> float:
    """Until the rendition lists a segment; the PDT of its first (the run's epoch)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = await asyncio.to_thread(get, media_url)
        if status == 200:
            playlist = parse_media_playlist(body.decode())
            if playlist.segments and playlist.segments[0].pdt is not None:
                return playlist.segments[0].pdt
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{media_url} never played")


async def measure_row(kind: str, seconds: float, tags: list[Tag]) -> dict[str, Any]:
    key = secrets.token_urlsafe(16)
    config = f'host = "127.0.0.1"\nport = 0\nsource = "{kind}"\n'
    if kind != "test":
        config += "[ingest]\nrtmp_port = 0\nsrt_port = 0\n"
    async with serve(config, {"LIVECAST_STREAM_KEY": key}) as (pid, lines):
        base = lines[0].rsplit("/live/", 1)[0]
        media_url = f"{base}/live/{RENDITION}/index.m3u8"
        pacer = Pacer(tags)
        publisher = None
        if kind == "rtmp":
            publisher = asyncio.ensure_future(rtmp_publish(lines[2], key, pacer))
        elif kind == "srt":
            url = f"{lines[2]}&passphrase={key}&latency=120000"
            publisher = asyncio.ensure_future(srt_publish(url, pacer))
        epoch = await wait_playing(media_url)
        offset = 0.0 if pacer.keyframe_sent is None else epoch - pacer.keyframe_sent
        await asyncio.sleep(3.0)  # warm-up
        pids = [pid, *descendants(pid)]
        cpu_before, wall_before = cpu_seconds(pids), time.monotonic()
        report = await probe(f"{base}/live/main.m3u8", seconds, RENDITION)
        cpu = cpu_seconds([pid, *descendants(pid)]) - cpu_before
        wall = time.monotonic() - wall_before
        if publisher is not None:
            publisher.cancel()
            await asyncio.gather(publisher, return_exceptions=True)
    latency = dict(report.latency or {})
    return {
        "kind": kind,
        "parts": report.parts,
        "errors": report.errors,
        "pdt_offset_s": round(offset, 4),
        "latency_p50_s": round(latency.get("p50", float("nan")) + offset, 4),
        "latency_p95_s": round(latency.get("p95", float("nan")) + offset, 4),
        "cpu_share": cpu / (wall * (os.cpu_count() or 1)),
    }


def run(seconds: float = 20.0, rows: tuple[str, ...] = ("test", "rtmp", "srt")) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="livecast-contribution-") as tmp:
        path = Path(tmp) / "contribution.flv"
        encode_contribution(path)
        tags = read_tags(path.read_bytes())
    results = {kind: asyncio.run(measure_row(kind, seconds, tags)) for kind in rows}
    peer = results["test"]["latency_p50_s"]
    for row in results.values():
        row["added_s"] = round(row["latency_p50_s"] - peer, 4)
    return {"seconds": seconds, "rendition": RENDITION, "rows": results,
            "goal_added_s": GOAL_ADDED_S, "goal_cpu_share": GOAL_CPU_SHARE}  # fmt: skip


def report(figures: dict[str, Any]) -> str:
    lines = [
        f"capture → newest complete {figures['rendition']} part at the client, "
        f"{figures['seconds']:.0f} s per row; CPU of serve + its FFmpegs, share of the machine"
    ]
    for kind, row in figures["rows"].items():
        lines.append(
            f"  {kind:<5} p50 {row['latency_p50_s']:.3f} s  p95 {row['latency_p95_s']:.3f} s  "
            f"added vs test {row['added_s']:+.3f} s (goal ≤ +{GOAL_ADDED_S} s)  "
            f"CPU {row['cpu_share']:.1%} (goal ≤ {GOAL_CPU_SHARE:.0%})  parts {row['parts']}  "
            f"PDT offset {row['pdt_offset_s']:+.3f} s  errors {row['errors'] or 0}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args(argv)
    figures = run(args.seconds)
    print(report(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
