"""The RTMP ingest server on 127.0.0.1 with real FFmpeg as the publisher (what OBS is built on):
the key check, the media that reaches the sink, FLV written from it that ffprobe reads, and the
clients that must be closed without disturbing the others (silent, garbage, refused)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import struct
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from livecast.errors import TranscodeError
from livecast.ingest.amf0 import AmfValue, decode_values, encode_values
from livecast.ingest.flv import (
    flv_header,
    flv_tag,
    is_aac_sequence_header,
    is_avc_sequence_header,
    is_video_keyframe,
)
from livecast.ingest.rtmp import MediaMessage
from livecast.ingest.rtmp_chunks import ChunkReader, ChunkWriter
from livecast.ingest.rtmp_server import PublishSink, RtmpServer
from livecast.transcode.ffmpeg import find_ffmpeg
from tests.requirements import need, skip_missing

pytestmark = pytest.mark.integration

APP, KEY = "live", "k1"


class ListSink:
    def __init__(self) -> None:
        self.messages: list[MediaMessage] = []
        self.ended: list[str] = []
        self.done = asyncio.Event()

    def on_media(self, message: MediaMessage) -> None:
        assert not self.ended, "media after on_end"
        self.messages.append(message)

    def on_end(self, reason: str) -> None:
        self.ended.append(reason)
        self.done.set()

    def of(self, kind: str) -> list[MediaMessage]:
        return [m for m in self.messages if m.kind == kind]


@pytest_asyncio.fixture
async def sink() -> ListSink:
    return ListSink()


def make_server(
    sink: ListSink, *, handshake_timeout: float = 5.0, idle_timeout: float = 10.0
) -> RtmpServer:
    def authorize(app: str, key: str) -> PublishSink | str:
        if app == APP and key == KEY:
            return sink
        return "wrong stream key"

    return RtmpServer(authorize, handshake_timeout=handshake_timeout, idle_timeout=idle_timeout)


@pytest_asyncio.fixture
async def server(sink: ListSink) -> AsyncIterator[RtmpServer]:
    rtmp = make_server(sink)
    await rtmp.start("127.0.0.1", 0)
    yield rtmp
    await rtmp.stop()


def ffmpeg() -> str:
    try:
        return find_ffmpeg()
    except TranscodeError as exc:
        skip_missing("ffmpeg", str(exc))


async def publish(port: int, key: str, seconds: float = 2) -> tuple[int, str]:
    """Run FFmpeg as an RTMP publisher; (exit code, stderr)."""
    argv = [ffmpeg(), "-hide_banner", "-loglevel", "error", "-re"]
    argv += ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30"]
    argv += ["-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000", "-t", str(seconds)]
    argv += ["-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-c:a", "aac"]
    argv += ["-f", "flv", f"rtmp://127.0.0.1:{port}/{APP}/{key}"]
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    return process.returncode or 0, stderr.decode(errors="replace")


def assert_a_complete_publish(sink: ListSink) -> None:
    video, audio = sink.of("video"), sink.of("audio")
    assert any(is_avc_sequence_header(m.payload) for m in video)
    assert any(is_video_keyframe(m.payload) for m in video)
    assert any(is_aac_sequence_header(m.payload) for m in audio)
    assert len(video) >= 50
    times = [m.timestamp_ms for m in video if not is_avc_sequence_header(m.payload)]
    assert times == sorted(times) and times[-1] > times[0]
    assert len(sink.ended) == 1


async def test_ffmpeg_publishes(server: RtmpServer, sink: ListSink) -> None:
    code, stderr = await publish(server.port, KEY)
    assert code == 0, stderr
    await asyncio.wait_for(sink.done.wait(), timeout=5)
    assert_a_complete_publish(sink)
    assert sink.ended == ["the publisher sent FCUnpublish"]
    data = sink.of("data")
    assert data and decode_values(data[0].payload)[0] == "onMetaData"  # @setDataFrame removed
    assert server.stats.accepted == 1 and server.stats.protocol_errors == 0


async def test_wrong_key_is_refused_and_logged_by_fingerprint(
    server: RtmpServer, sink: ListSink, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="livecast.ingest")
    code, stderr = await publish(server.port, "nope", seconds=1)
    assert code != 0
    assert "wrong stream key" in stderr  # FFmpeg prints the onStatus description
    assert sink.messages == [] and sink.ended == []
    fingerprint = hashlib.sha256(b"nope").hexdigest()[:8]
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert fingerprint in warnings[0].getMessage()
    assert "127.0.0.1:" in warnings[0].getMessage()
    assert not any("nope" in r.getMessage() for r in caplog.records)
    assert server.stats.refused == 1 and server.stats.accepted == 0


async def closed_by_server(reader: asyncio.StreamReader, timeout: float = 5) -> bytes:
    """Everything the server sends until it closes the connection."""
    return await asyncio.wait_for(reader.read(), timeout=timeout)


async def test_a_silent_client_is_closed(sink: ListSink, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="livecast.ingest")
    rtmp = make_server(sink, handshake_timeout=0.3, idle_timeout=0.6)
    await rtmp.start("127.0.0.1", 0)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", rtmp.port)
        assert await closed_by_server(reader) == b""
        writer.close()
        messages = [r.getMessage() for r in caplog.records]
        assert len(messages) == 1 and "no RTMP handshake within 0.3 s" in messages[0]

        # a handshake, then nothing: the idle timeout
        caplog.clear()
        reader, writer = await asyncio.open_connection("127.0.0.1", rtmp.port)
        writer.write(b"\x03" + bytes(1536 * 2))
        assert len(await closed_by_server(reader)) == 1 + 1536 * 2
        writer.close()
        messages = [r.getMessage() for r in caplog.records]
        assert len(messages) == 1 and "nothing received for 0.6 s" in messages[0]
        assert rtmp.stats.timeouts == 2 and rtmp.connections == 0
    finally:
        await rtmp.stop()


class ScriptedPublisher:
    """A minimal RTMP publisher over a socket, built from the package's own pieces."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.chunks = ChunkWriter()
        self.incoming = ChunkReader(max_message_bytes=1 << 20)

    async def command(self, name: str, txn: float, *args: AmfValue, stream_id: int = 0) -> None:
        payload = encode_values(name, txn, *args)
        self.writer.write(self.chunks.write(3, 20, payload, stream_id=stream_id))
        await self.writer.drain()

    async def until_status(self) -> str:
        """Read the server's messages until an onStatus; its code."""
        while True:
            while (message := self.incoming.next_message()) is not None:
                if message.type_id == 1:
                    self.incoming.set_chunk_size(struct.unpack(">I", message.payload)[0])
                if message.type_id == 20:
                    values = decode_values(message.payload)
                    if values[0] == "onStatus" and isinstance(values[3], dict):
                        return str(values[3]["code"])
            data = await asyncio.wait_for(self.reader.read(65536), timeout=5)
            assert data, "closed before onStatus"
            self.incoming.feed(data)

    @classmethod
    async def publishing(cls, port: int, key: str) -> ScriptedPublisher:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"\x03" + bytes(1536))
        await reader.readexactly(1 + 1536 * 2)
        writer.write(bytes(1536))
        client = cls(reader, writer)
        await client.command("connect", 1, {"app": APP, "tcUrl": f"rtmp://127.0.0.1/{APP}"})
        await client.command("createStream", 2, None)
        await client.command("publish", 3, None, key, "live", stream_id=1)
        assert await client.until_status() == "NetStream.Publish.Start"
        return client


async def test_a_publisher_that_goes_quiet_is_ended(sink: ListSink) -> None:
    rtmp = make_server(sink, idle_timeout=0.5)
    await rtmp.start("127.0.0.1", 0)
    try:
        client = await ScriptedPublisher.publishing(rtmp.port, KEY)
        assert rtmp.active_publishers == 1
        client.writer.write(client.chunks.write(6, 9, b"\x17\x01frame", stream_id=1))
        await asyncio.wait_for(sink.done.wait(), timeout=5)
        assert sink.ended[0].startswith("idle")
        assert [m.payload for m in sink.messages] == [b"\x17\x01frame"]
        assert rtmp.active_publishers == 0
        client.writer.close()
    finally:
        await rtmp.stop()


async def test_stop_ends_live_publishes(sink: ListSink) -> None:
    rtmp = make_server(sink)
    await rtmp.start("127.0.0.1", 0)
    client = await ScriptedPublisher.publishing(rtmp.port, KEY)
    await rtmp.stop()
    assert sink.ended == ["the ingest server stopped"]
    assert await closed_by_server(client.reader) == b""
    client.writer.close()


async def test_garbage_does_not_disturb_a_concurrent_publish(
    server: RtmpServer, sink: ListSink, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="livecast.ingest")
    publishing = asyncio.ensure_future(publish(server.port, KEY))
    await asyncio.sleep(0.5)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET / HTTP/1.1\r\n\r\n")
    assert await closed_by_server(reader) == b""
    writer.close()
    code, stderr = await publishing
    assert code == 0, stderr
    await asyncio.wait_for(sink.done.wait(), timeout=5)
    assert_a_complete_publish(sink)
    (record,) = caplog.records
    assert "protocol error" in record.getMessage()
    assert "not RTMP (version byte 0x47" in record.getMessage()
    assert "127.0.0.1:" in record.getMessage()
    assert server.stats.protocol_errors == 1 and server.stats.accepted == 1


async def test_flv_written_from_the_messages_is_h264_and_aac(
    server: RtmpServer, sink: ListSink, tmp_path: Path
) -> None:
    ffprobe = need("ffprobe")
    code, stderr = await publish(server.port, KEY)
    assert code == 0, stderr
    await asyncio.wait_for(sink.done.wait(), timeout=5)
    path = tmp_path / "publish.flv"
    tags = [flv_tag(m.kind, m.timestamp_ms, m.payload) for m in sink.messages]
    path.write_bytes(flv_header(audio=True, video=True) + b"".join(tags))
    probe = await asyncio.create_subprocess_exec(
        ffprobe, "-v", "error", "-show_streams", "-of", "json", str(path),
        stdout=subprocess.PIPE,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(probe.communicate(), timeout=30)
    streams = json.loads(out)["streams"]
    assert sorted(s["codec_name"] for s in streams) == ["aac", "h264"]
    video = next(s for s in streams if s["codec_name"] == "h264")
    assert (video["width"], video["height"]) == (320, 240)
