"""The real FFmpeg ladder on pipes, through the supervisor: fragment timing, keyframe alignment,
codecs, restart after kill -9, and no FFmpeg left behind."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from livecast.errors import TranscodeError
from livecast.sources.testsrc import test_source as make_test_source
from livecast.transcode.ffmpeg import find_ffmpeg, find_font
from livecast.transcode.ladder import DEFAULT_LADDER, Ladder, build_argv
from livecast.transcode.supervisor import Backoff, TranscodeSupervisor
from tests.requirements import need

pytestmark = pytest.mark.integration

LADDER = DEFAULT_LADDER
NON_SYNC = 0x0001_0000  # sample_is_non_sync_sample in ISO BMFF sample flags


# ------------------------------------------------------------------ a minimal box reader


def boxes(data: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[str, int, int]]:
    """(type, payload start, box end) of each box in data[start:end]."""
    end = len(data) if end is None else end
    while start + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, start)
        header = 16 if size == 1 else 8
        size = struct.unpack_from(">Q", data, start + 8)[0] if size == 1 else size
        yield kind.decode("latin-1"), start + header, start + size
        start += size


def child(data: bytes, path: list[str], start: int = 0, end: int | None = None) -> tuple[int, int]:
    for kind, payload, box_end in boxes(data, start, end):
        if kind == path[0]:
            return (payload, box_end) if len(path) == 1 else child(data, path[1:], payload, box_end)
    raise AssertionError(f"no {path[0]} box")


@dataclass
class Frag:
    decode_time: int  # tfdt
    samples: int  # trun sample_count
    duration: int  # in the track's timescale
    first_flags: int  # flags of the first sample


def parse_moof(data: bytes, start: int, end: int, trex: tuple[int, int]) -> Frag:
    """tfhd defaults, tfdt base decode time, trun count/durations/first-sample flags."""
    traf = child(data, ["traf"], start, end)
    default_duration, default_flags = trex
    decode_time = count = duration = 0
    first_flags = -1
    for kind, p, _ in boxes(data, *traf):
        version, flags = data[p], int.from_bytes(data[p + 1 : p + 4], "big")
        p += 4
        if kind == "tfhd":
            p += 4 + (8 if flags & 1 else 0) + (4 if flags & 2 else 0)
            if flags & 8:
                default_duration = struct.unpack_from(">I", data, p)[0]
                p += 4
            p += 4 if flags & 0x10 else 0
            if flags & 0x20:
                default_flags = struct.unpack_from(">I", data, p)[0]
        elif kind == "tfdt":
            decode_time = struct.unpack_from(">Q" if version else ">I", data, p)[0]
        elif kind == "trun":
            count = struct.unpack_from(">I", data, p)[0]
            p += 4 + (4 if flags & 1 else 0)
            if flags & 4:
                first_flags = struct.unpack_from(">I", data, p)[0]
                p += 4
            for i in range(count):
                sample_duration = default_duration
                if flags & 0x100:
                    sample_duration = struct.unpack_from(">I", data, p)[0]
                    p += 4
                p += 4 if flags & 0x200 else 0
                if flags & 0x400:
                    if i == 0 and first_flags < 0:
                        first_flags = struct.unpack_from(">I", data, p)[0]
                    p += 4
                p += 4 if flags & 0x800 else 0
                duration += sample_duration
    return Frag(decode_time, count, duration, default_flags if first_flags < 0 else first_flags)


@dataclass
class Track:
    timescale: int
    sample_entry: str
    frags: list[Frag]


def parse_stream(data: bytes) -> Track:
    kinds = [kind for kind, _, _ in boxes(data)]
    assert kinds[:2] == ["ftyp", "moov"], kinds[:4]
    assert kinds[2:] == ["moof", "mdat"] * ((len(kinds) - 2) // 2), "not moof+mdat pairs"
    mdhd, _ = child(data, ["moov", "trak", "mdia", "mdhd"])
    timescale = struct.unpack_from(">I", data, mdhd + (20 if data[mdhd] else 12))[0]
    stsd, _ = child(data, ["moov", "trak", "mdia", "minf", "stbl", "stsd"])
    sample_entry = data[stsd + 12 : stsd + 16].decode("latin-1")
    trex, _ = child(data, ["moov", "mvex", "trex"])
    defaults = (
        struct.unpack_from(">II", data, trex + 12)[0],
        struct.unpack_from(">I", data, trex + 20)[0],
    )
    frags = [parse_moof(data, p, e, defaults) for k, p, e in boxes(data) if k == "moof"]
    return Track(timescale, sample_entry, frags)


# ------------------------------------------------------------------ running the ladder


@dataclass
class Capture:
    """Everything the supervisor handed over, per (rendition, generation), with arrival times."""

    data: dict[tuple[str, int], bytearray] = field(default_factory=dict)
    arrivals: dict[tuple[str, int], list[tuple[float, int]]] = field(default_factory=dict)
    restarts: list[tuple[int, float]] = field(default_factory=list)
    starts: list[tuple[int, float]] = field(default_factory=list)

    def on_data(self, rendition: str, generation: int, chunk: bytes) -> None:
        buf = self.data.setdefault((rendition, generation), bytearray())
        buf += chunk
        self.arrivals.setdefault((rendition, generation), []).append((time.time(), len(buf)))

    def on_restart(self, generation: int, epoch: float) -> None:
        self.restarts.append((generation, epoch))

    def on_start(self, generation: int, epoch: float) -> None:
        self.starts.append((generation, epoch))


def make_supervisor(
    capture: Capture, ladder: Ladder = LADDER, duration: float | None = None
) -> TranscodeSupervisor:
    ffmpeg, font = find_ffmpeg(), find_font()

    def make_argv(fds: dict[str, int], epoch: float) -> list[str]:
        return build_argv(ffmpeg, make_test_source(ladder, epoch, font, duration), ladder, fds)

    return TranscodeSupervisor(
        make_argv,
        ladder.renditions,
        capture.on_data,
        capture.on_restart,
        on_start=capture.on_start,
        backoff=Backoff(initial=0.2),
    )


def children_named_ffmpeg() -> list[int]:
    """Live (non-zombie) child processes of this Python whose command line mentions ffmpeg."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        state, ppid = fields[0], int(fields[1])
        if ppid == os.getpid() and state != "Z" and b"ffmpeg" in cmdline:
            found.append(int(entry.name))
    return found


def ffprobe(data: bytes, tmp_path: Path) -> dict[str, object]:
    path = tmp_path / "probe.mp4"
    path.write_bytes(data)
    out = subprocess.run(
        [need("ffprobe"), "-v", "error",
         "-show_entries", "stream=codec_name,width,height,sample_rate", "-of", "json", str(path)],
        check=True, capture_output=True, text=True, timeout=30,
    ).stdout  # fmt: skip
    streams: list[dict[str, object]] = json.loads(out)["streams"]
    assert len(streams) == 1
    return streams[0]


async def until(condition: Callable[[], object], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


# ------------------------------------------------------------------ tests


async def test_ladder_fragments_are_parts_with_aligned_keyframes(tmp_path: Path) -> None:
    need("ffprobe")  # required: every rung is also checked by FFmpeg's own reader
    capture = Capture()
    supervisor = make_supervisor(capture, duration=4.0)
    await supervisor.start()
    epoch = supervisor.epoch
    try:
        code = await asyncio.wait_for(supervisor.wait(), 20)
    finally:
        await supervisor.stop()
    assert code == 0 and supervisor.restarts == 0
    assert capture.starts == [(0, epoch)] and capture.restarts == []

    keyframes: dict[str, list[int]] = {}
    lags: list[float] = []
    for rung in LADDER.rungs:
        data = bytes(capture.data[(rung.name, 0)])
        track = parse_stream(data)
        assert track.sample_entry == "avc1"
        frame = track.timescale // LADDER.fps
        segment = frame * LADDER.segment_frames
        assert len(track.frags) == 12  # 4 s of 1/3 s parts
        for i, frag in enumerate(track.frags):
            assert frag.decode_time == i * frame * LADDER.part_frames
            assert frag.samples == LADDER.part_frames  # exactly one part, never more
            assert frag.duration == frame * LADDER.part_frames
            is_key = not frag.first_flags & NON_SYNC
            assert is_key == (frag.decode_time % segment == 0), (rung.name, i)
        keyframes[rung.name] = [f.decode_time for f in track.frags if not f.first_flags & NON_SYNC]
        lags += part_lags(capture, rung.name, data, track, epoch)
        probe = ffprobe(data, tmp_path)
        assert probe["codec_name"] == "h264"
        assert (probe["width"], probe["height"]) == (rung.width, rung.height)
    assert len({tuple(k) for k in keyframes.values()}) == 1  # aligned in every rung
    assert next(iter(keyframes.values())) == [0, 30720]

    audio = parse_stream(bytes(capture.data[("audio", 0)]))
    assert audio.sample_entry == "mp4a" and audio.timescale == LADDER.audio_rate
    assert all(f.samples == LADDER.audio_fragment_frames for f in audio.frags[:-1])
    assert all(f.duration <= LADDER.part_duration * audio.timescale for f in audio.frags)
    probe = ffprobe(bytes(capture.data[("audio", 0)]), tmp_path)
    assert probe["codec_name"] == "aac" and probe["sample_rate"] == "48000"
    median = statistics.median(lags)
    print(f"video part arrival after its media end: median {median:.3f} s, max {max(lags):.3f} s")
    # > 0: no part before its wall-clock time (the -readrate_initial_burst pitfall); ≈ 0.05 s on
    # an idle machine, the bound only catches gross regressions on a loaded one
    assert 0 < median < 2.0, lags


def part_lags(capture: Capture, name: str, data: bytes, track: Track, epoch: float) -> list[float]:
    """Arrival time of each complete moof+mdat minus the wall-clock time of its media end."""
    ends = [e for k, _, e in boxes(data) if k == "mdat"]
    lags = []
    for frag, end in zip(track.frags, ends, strict=True):
        arrived = next(t for t, size in capture.arrivals[(name, 0)] if size >= end)
        lags.append(arrived - (epoch + (frag.decode_time + frag.duration) / track.timescale))
    return lags


async def test_kill_9_restarts_once_with_a_new_generation(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="livecast.transcode")
    capture = Capture()
    supervisor = make_supervisor(capture)
    pids = []
    try:
        await supervisor.start()
        await until(lambda: len(capture.data.get(("360p", 0), b"")) > 20_000, 10)
        first_pid = supervisor.pid
        assert first_pid is not None
        pids.append(first_pid)
        os.kill(first_pid, signal.SIGKILL)
        # on_restart comes before the new process exists; the supervisor's run is the new one
        # once its spawn returns (a loaded machine takes a while: the epoch was read too early)
        await until(lambda: capture.restarts and supervisor.generation == 1, 10)
        assert capture.restarts[0][0] == 1 and supervisor.epoch == capture.restarts[0][1]
        assert [g for g, _ in capture.starts] == [0, 1]
        await until(
            lambda: all(len(capture.data.get((n, 1), b"")) > 2_000 for n in LADDER.renditions), 10
        )
        assert supervisor.pid not in (None, first_pid)
        pids.append(supervisor.pid)
    finally:
        await supervisor.stop()
    for name in LADDER.renditions:
        assert [k for k, _, _ in boxes(bytes(capture.data[(name, 1)]))][:2] == ["ftyp", "moov"]
    lines = [
        r for r in caplog.records if r.name == "livecast.transcode" and r.levelno >= logging.WARNING
    ]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    message = lines[0].getMessage()
    assert "code -9 (killed by SIGKILL)" in message and "(restart 1)" in message
    assert supervisor.restarts == 1 and supervisor.pid is None
    assert not [p for p in pids if Path(f"/proc/{p}").exists()]
    assert children_named_ffmpeg() == []


async def test_failing_ffmpeg_gives_up_after_max_restarts(caplog: pytest.LogCaptureFixture) -> None:
    ffmpeg = find_ffmpeg()
    supervisor = TranscodeSupervisor(
        lambda fds, epoch: [ffmpeg, "-hide_banner", "-no_such_option", "1"],
        ["720p", "audio"],
        lambda name, generation, data: None,
        backoff=Backoff(initial=0.05),
        max_restarts=2,
    )
    with caplog.at_level(logging.WARNING, logger="livecast.transcode"):
        await supervisor.start()
        code = await asyncio.wait_for(supervisor.wait(), 20)
        await supervisor.stop()
    assert code not in (0, None) and supervisor.restarts == 2
    messages = [r.getMessage() for r in caplog.records if r.name == "livecast.transcode"]
    assert len(messages) == 3, messages
    assert "giving up after 2 restarts" in messages[-1] and "no_such_option" in messages[-1]
    assert children_named_ffmpeg() == []


async def test_missing_binary_is_a_transcode_error(tmp_path: Path) -> None:
    supervisor = TranscodeSupervisor(
        lambda fds, epoch: [str(tmp_path / "ffmpeg")], ["audio"], lambda n, g, d: None
    )
    with pytest.raises(TranscodeError, match="cannot start ffmpeg"):
        await supervisor.start()


# FFmpeg here writes nothing to its pipes, so it cannot die of SIGPIPE when Python goes away:
# only the supervisor (SIGINT) or PR_SET_PDEATHSIG (SIGTERM, SIGKILL) can end it.
CHILD = """
import asyncio, faulthandler, signal
faulthandler.register(signal.SIGUSR1, all_threads=True)  # the test's post-mortem if it hangs
from livecast.transcode.ffmpeg import find_ffmpeg
from livecast.transcode.supervisor import TranscodeSupervisor

def argv(fds, epoch):
    return [find_ffmpeg(), "-v", "error", "-re", "-f", "lavfi", "-i", "anullsrc", "-f", "null", "-"]

async def main():
    async with TranscodeSupervisor(argv, ["audio"], lambda *a: None) as supervisor:
        print(supervisor.pid, flush=True)
        await asyncio.sleep(60)

asyncio.run(main())
"""


def process_gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def post_mortem(child: subprocess.Popen[bytes]) -> str:
    """What a child that did not exit was doing: its threads' kernel state and Python stacks."""
    states = []
    for task in sorted(Path(f"/proc/{child.pid}/task").glob("*")):
        with contextlib.suppress(OSError):
            status = dict(line.split(":", 1) for line in (task / "status").read_text().splitlines())
            wchan = (task / "wchan").read_text()
            states.append(
                f"thread {task.name}: {status['State'].strip()} wchan={wchan} "
                f"SigPnd={status['SigPnd'].strip()} SigBlk={status['SigBlk'].strip()}"
            )
    child.send_signal(signal.SIGUSR1)
    time.sleep(1.0)
    child.kill()
    _, stderr = child.communicate()
    return "\n".join(states) + "\n" + stderr.decode(errors="replace")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
async def test_no_orphan_when_python_is_signalled(signum: signal.Signals) -> None:
    """SIGINT: asyncio.run cancels, ``async with`` stops FFmpeg. SIGTERM/SIGKILL: Python dies
    at once and FFmpeg follows through PR_SET_PDEATHSIG."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert child.stdout is not None
        ffmpeg_pid = int(await asyncio.to_thread(child.stdout.readline))
        await asyncio.sleep(1.0)
        assert not process_gone(ffmpeg_pid)
        child.send_signal(signum)
        try:
            await asyncio.to_thread(child.wait, 15)
        except subprocess.TimeoutExpired:
            why = post_mortem(child)
            pytest.fail(f"the child did not exit within 15 s of {signum.name}:\n{why}")
        await until(lambda: process_gone(ffmpeg_pid), 10)
    finally:
        child.kill()
        child.wait()
