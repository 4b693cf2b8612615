"""SrtListener (ingest/srt_ingest.py) with real FFmpeg on both ends, on 127.0.0.1: what the
contribution tests (test_srt_contribution.py) leave out.

* A refused caller (wrong passphrase) is one log line, reaches nothing, and does not cost the port
  its listener: the same FFmpeg takes the right caller afterwards.
* The caller's stream id is not what chooses the event: a caller naming another event is taken
  by this port's sink (the port says which event and input, see the module docstring).
* The listener FFmpeg dying mid-publish ends the publish (``on_end``) and a new listener takes
  the next caller, while the old caller is still sending to the port.
* ``stop()`` in the middle of a publish leaves no FFmpeg behind, and may be called twice.

Every FFmpeg started here is reaped (``communicate``) in a ``finally``; each test is bounded
(``asyncio.wait_for``) and takes a few seconds.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import pytest_asyncio

from livecast.errors import TranscodeError
from livecast.ingest.flv import is_video_keyframe, is_video_sequence_header
from livecast.ingest.rtmp import MediaMessage
from livecast.ingest.srt_ingest import SrtListener, free_udp_port
from livecast.transcode.ffmpeg import find_ffmpeg
from tests.requirements import skip_missing

pytestmark = pytest.mark.integration

PASSPHRASE = "srt-ingest-passphrase-7"
WRONG = "another-passphrase-99"
EVENT_STREAM_ID = "#!::r=live/ev1,m=publish"


@dataclass
class ListSink:
    messages: list[MediaMessage] = field(default_factory=list)
    ended: list[str] = field(default_factory=list)

    def on_media(self, message: MediaMessage) -> None:
        self.messages.append(message)

    def on_end(self, reason: str) -> None:
        self.ended.append(reason)


@pytest.fixture(scope="module")
def ffmpeg() -> str:
    try:
        path = find_ffmpeg()
    except TranscodeError as exc:
        skip_missing("ffmpeg", str(exc))
    protocols = subprocess.run(
        [path, "-hide_banner", "-protocols"], capture_output=True, text=True, timeout=30
    ).stdout
    if "srt" not in protocols.split():
        skip_missing("ffmpeg", "this FFmpeg has no libsrt (srt protocol)")
    return path


@pytest_asyncio.fixture
async def listening(ffmpeg: str) -> AsyncIterator[tuple[SrtListener, ListSink]]:
    sink = ListSink()
    listener = SrtListener(ffmpeg, "127.0.0.1", free_udp_port(), PASSPHRASE, sink, name="ev1")
    await listener.start()
    try:
        await asyncio.sleep(0.3)  # FFmpeg binds the port
        yield listener, sink
    finally:
        await asyncio.wait_for(listener.stop(), 10)


def caller_argv(
    ffmpeg: str, port: int, passphrase: str, seconds: float, stream_id: str
) -> list[str]:
    """A publisher as OBS is configured: H.264 + AAC in MPEG-TS over SRT, latency 120 ms."""
    url = f"srt://127.0.0.1:{port}?streamid={stream_id}&passphrase={passphrase}&latency=120000"
    return [
        ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error",
        "-re", "-f", "lavfi", "-i", f"testsrc2=size=640x360:rate=30:duration={seconds}",
        "-re", "-f", "lavfi", "-i", f"sine=sample_rate=48000:duration={seconds}",
        "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "30",
        "-pix_fmt", "yuv420p", "-c:a", "aac", "-f", "mpegts", url,
    ]  # fmt: skip


async def start_caller(
    ffmpeg: str,
    port: int,
    passphrase: str = PASSPHRASE,
    seconds: float = 2.0,
    stream_id: str = EVENT_STREAM_ID,
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *caller_argv(ffmpeg, port, passphrase, seconds, stream_id),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


async def reap(proc: asyncio.subprocess.Process, timeout: float = 15.0) -> int:
    """Wait for ``proc`` (killed if it is still running after ``timeout``); its exit code."""
    try:
        await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode


async def call(
    ffmpeg: str, port: int, passphrase: str = PASSPHRASE, stream_id: str = EVENT_STREAM_ID
) -> int:
    """A 2-second publish, reaped; its exit code."""
    return await reap(await start_caller(ffmpeg, port, passphrase, 2.0, stream_id))


async def until(condition: Callable[[], object], timeout: float) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), timeout)


def listener_pids(port: int) -> list[int]:
    """Our children that are an FFmpeg SRT listener on ``port`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        url = next((a for a in argv if a.startswith(b"srt://")), b"")
        if parent == os.getpid() and b"mode=listener" in url and f":{port}?".encode() in url:
            found.append(int(entry.name))
    return found


def assert_media(messages: list[MediaMessage]) -> None:
    video = [m for m in messages if m.kind == "video"]
    assert any(is_video_sequence_header(m.payload) for m in video)
    assert any(is_video_keyframe(m.payload) for m in video)
    assert any(m.kind == "audio" for m in messages)
    stamps = [m.timestamp_ms for m in video]
    assert stamps == sorted(stamps)


async def test_a_refused_caller_is_one_line_and_the_same_listener_takes_the_next(
    ffmpeg: str, listening: tuple[SrtListener, ListSink], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="livecast.ingest")
    listener, sink = listening
    assert await asyncio.wait_for(call(ffmpeg, listener.port, passphrase=WRONG), 20) != 0
    assert not sink.messages and not sink.ended
    refusals = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 1 and refusals[0].levelno == logging.WARNING
    assert "Incorrect passphrase" in refusals[0].getMessage()
    assert listener.stats.refused == 1 and listener.stats.listeners == 1  # still listening
    # the right passphrase with another event's stream id: the port, not the id, decides
    other = "#!::r=live/another-event,m=publish"
    assert await asyncio.wait_for(call(ffmpeg, listener.port, stream_id=other), 20) == 0
    await until(lambda: sink.ended, 10)
    assert_media(sink.messages)
    assert listener.stats.connections == 1
    assert PASSPHRASE not in caplog.text and WRONG not in caplog.text


async def test_the_listener_dying_mid_publish_ends_it_and_the_next_caller_is_taken(
    ffmpeg: str, listening: tuple[SrtListener, ListSink]
) -> None:
    listener, sink = listening
    first = await start_caller(ffmpeg, listener.port, seconds=4.0)
    try:
        await until(lambda: len(sink.messages) >= 30, 10)
        (pid,) = listener_pids(listener.port)
        os.kill(pid, signal.SIGKILL)
        await until(lambda: sink.ended, 5)  # the publish ends at once
        sink.messages.clear()
        await until(lambda: any(p != pid for p in listener_pids(listener.port)), 5)
        # the old caller is still sending to the port; a new caller is taken all the same
        assert await asyncio.wait_for(call(ffmpeg, listener.port), 20) == 0
        await until(lambda: len(sink.ended) == 2, 10)
        assert_media(sink.messages)
        assert listener.stats.connections == 2
    finally:
        await reap(first)


async def test_stop_in_the_middle_of_a_publish_leaves_no_process(
    ffmpeg: str, listening: tuple[SrtListener, ListSink]
) -> None:
    listener, sink = listening
    caller = await start_caller(ffmpeg, listener.port, seconds=5.0)
    try:
        await until(lambda: len(sink.messages) >= 30, 10)
        (pid,) = listener_pids(listener.port)
        await asyncio.wait_for(listener.stop(), 5)
        assert not Path(f"/proc/{pid}").exists()  # killed and reaped: not even a zombie
        assert sink.ended == ["the ingest server stopped"]  # the live publish ends with it
        await asyncio.wait_for(listener.stop(), 5)  # a second stop() is harmless
        assert sink.ended == ["the ingest server stopped"]
    finally:
        caller.kill()
        await reap(caller)
