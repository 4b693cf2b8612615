"""SRT contribution with real FFmpeg on both ends: the libsrt listener checks the passphrase at
the handshake, the remux delivers FLV tags (H.264 + AAC, also from Opus) to the sink, the
publisher leaving ends the publish and the next one is taken, and nothing outlives stop()."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import subprocess
from dataclasses import dataclass, field

import pytest

from livecast.config import load_config
from livecast.edge.origins import free_port
from livecast.errors import IngestError
from livecast.ingest.flv import is_aac_sequence_header, is_video_keyframe, is_video_sequence_header
from livecast.ingest.rtmp import MediaMessage
from livecast.ingest.srt_ingest import SrtListener
from livecast.pipeline import LivePipeline
from livecast.transcode.ffmpeg import find_ffmpeg
from tests.integration.test_contribution import aget, ffprobe_stream, stop

pytestmark = pytest.mark.integration

PASSPHRASE = "srt-passphrase-0042"


@dataclass
class ListSink:
    messages: list[MediaMessage] = field(default_factory=list)
    ended: list[str] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def on_media(self, message: MediaMessage) -> None:
        self.messages.append(message)

    def on_end(self, reason: str) -> None:
        self.ended.append(reason)
        self.done.set()


def srt_url(port: int, passphrase: str | None) -> str:
    url = f"srt://127.0.0.1:{port}?streamid=#!::r=live/main,m=publish&latency=120000"
    return url + (f"&passphrase={passphrase}" if passphrase else "")


def caller_argv(url: str, seconds: float, audio: str = "aac") -> list[str]:
    argv = [find_ffmpeg(None), "-hide_banner", "-loglevel", "error", "-re"]
    argv += ["-f", "lavfi", "-i", f"testsrc2=size=640x360:rate=30:duration={seconds}"]
    argv += ["-re", "-f", "lavfi", "-i", f"sine=sample_rate=48000:duration={seconds}"]
    argv += ["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "30"]
    argv += ["-pix_fmt", "yuv420p", "-c:a", "libopus" if audio == "opus" else "aac"]
    return [*argv, "-f", "mpegts", url]


async def call(url: str, seconds: float, audio: str = "aac") -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *caller_argv(url, seconds, audio), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, err = await asyncio.wait_for(proc.communicate(), seconds + 20)
    return proc.returncode or 0, err.decode(errors="replace")


def assert_a_complete_publish(sink: ListSink) -> None:
    video = [m for m in sink.messages if m.kind == "video"]
    audio = [m for m in sink.messages if m.kind == "audio"]
    assert any(is_video_sequence_header(m.payload) for m in video)
    assert sum(is_video_keyframe(m.payload) for m in video) >= 2
    assert any(is_aac_sequence_header(m.payload) for m in audio)  # AAC, whatever was sent
    assert len(audio) > 50
    stamps = [m.timestamp_ms for m in video]
    assert stamps == sorted(stamps) and stamps[-1] >= 1500


async def test_the_right_passphrase_publishes_and_a_wrong_one_is_refused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="livecast.ingest")
    port, sink = free_port(), ListSink()
    listener = SrtListener(find_ffmpeg(None), "127.0.0.1", port, PASSPHRASE, sink, name="main")
    await listener.start()
    try:
        await asyncio.sleep(0.5)
        code, _ = await call(srt_url(port, "not-the-passphrase"), 2.0)
        assert code != 0 and not sink.messages  # nothing reached the sink
        code, _ = await call(srt_url(port, None), 2.0)
        assert code != 0 and not sink.messages
        code, err = await call(srt_url(port, PASSPHRASE), 3.0)
        assert code == 0, err
        await asyncio.wait_for(sink.done.wait(), 10)
        assert_a_complete_publish(sink)
        assert listener.stats.connections == 1 and listener.stats.refused >= 1
        # the next publisher is taken by a new listener, Opus audio arrives as AAC
        sink.messages.clear()
        sink.done.clear()
        code, err = await call(srt_url(port, PASSPHRASE), 3.0, audio="opus")
        assert code == 0, err
        await asyncio.wait_for(sink.done.wait(), 10)
        assert_a_complete_publish(sink)
    finally:
        await listener.stop()
    assert listener._proc is not None and listener._proc.returncode is not None
    text = caplog.text
    assert PASSPHRASE not in text and "not-the-passphrase" not in text
    assert "an SRT caller was refused" in text and "SRT publisher connected" in text


def test_a_passphrase_srt_cannot_use_is_refused_up_front() -> None:
    with pytest.raises(IngestError, match="10–79 characters"):
        SrtListener("ffmpeg", "127.0.0.1", 9, "short", ListSink())


async def test_an_srt_publish_plays_every_rung_of_the_ladder() -> None:
    config = load_config(
        None, env={"LIVECAST_STREAM_KEY": PASSPHRASE}, overrides={"port": 0, "source": "srt"}
    )
    config = dataclasses.replace(config, ingest=dataclasses.replace(config.ingest, srt_port=0))
    pipeline = LivePipeline(config)
    async with pipeline.running(ready=False):
        (ingest,) = pipeline.ingest_urls
        assert (
            ingest.startswith("srt://127.0.0.1:") and "streamid=#!::r=live/main,m=publish" in ingest
        )
        assert PASSPHRASE not in ingest
        base = pipeline.base_url
        assert (await aget(f"{base}/live/main.m3u8"))[0] == 503
        publisher = await asyncio.create_subprocess_exec(
            *caller_argv(f"{ingest}&passphrase={PASSPHRASE}&latency=120000", 20.0, "opus"),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            await pipeline.wait_ready(timeout=25)
            expected = {"720p": (1280, 720), "480p": (854, 480), "360p": (640, 360)}
            for name, (width, height) in expected.items():
                stream = await ffprobe_stream(f"{base}/live/{name}/index.m3u8")
                assert (stream["codec_name"], stream["width"], stream["height"]) == (
                    "h264", width, height
                )  # fmt: skip
            audio = await ffprobe_stream(f"{base}/live/audio/index.m3u8")
            assert (audio["codec_name"], audio["sample_rate"]) == ("aac", "48000")
        finally:
            await stop(publisher)
