"""Synthetic encoder output for driving the pure packager without FFmpeg."""

from __future__ import annotations

from livecast.media import boxes
from livecast.media.fmp4 import FMP4StreamReader, Fragment, InitSegment
from livecast.packager.event import LiveEvent, RenditionSpec
from livecast.packager.live import PackagingConfig

VIDEO_TIMESCALE = 15360
FPS = 30
FRAME = VIDEO_TIMESCALE // FPS  # 512
AUDIO_RATE = 48000
AAC_FRAME = 1024
PART_TARGET = 0.33334
SEGMENT = 2.0
EPOCH = 1_764_000_000.0


def read(data: bytes) -> list[InitSegment | Fragment]:
    return FMP4StreamReader().feed(data)


def video_init(width: int = 1280, height: int = 720) -> InitSegment:
    item = read(boxes.init_segment("video", timescale=VIDEO_TIMESCALE, width=width, height=height))
    assert isinstance(item[0], InitSegment)
    return item[0]


def audio_init() -> InitSegment:
    item = read(boxes.init_segment("audio", timescale=AUDIO_RATE))
    assert isinstance(item[0], InitSegment)
    return item[0]


def video_fragment(index: int, frames: int = 10, gop: int = 60, size: int = 1000) -> Fragment:
    """Fragment ``index`` of a 30 fps stream cut every ``frames`` frames, keyframe every ``gop``."""
    start_frame = index * frames
    reader = FMP4StreamReader()
    reader.feed(boxes.init_segment("video", timescale=VIDEO_TIMESCALE))
    data = boxes.fragment(
        sequence=index + 1,
        decode_time=start_frame * FRAME,
        sample_durations=[FRAME] * frames,
        sample_sizes=[size] * frames,
        first_is_sync=start_frame % gop == 0,
    )
    (fragment,) = reader.feed(data)
    assert isinstance(fragment, Fragment)
    return fragment


def audio_fragment(index: int, size: int = 300) -> Fragment:
    """One AAC frame per fragment."""
    reader = FMP4StreamReader()
    reader.feed(boxes.init_segment("audio", timescale=AUDIO_RATE))
    data = boxes.fragment(
        sequence=index + 1,
        decode_time=index * AAC_FRAME,
        sample_durations=[AAC_FRAME],
        sample_sizes=[size],
        first_is_sync=True,
    )
    (fragment,) = reader.feed(data)
    assert isinstance(fragment, Fragment)
    return fragment


def make_event(window: float = 30.0, part_target: float = PART_TARGET) -> LiveEvent:
    config = PackagingConfig(part_target=part_target, segment_duration=SEGMENT, window=window)
    return LiveEvent(
        config,
        [
            RenditionSpec("720p", "video"),
            RenditionSpec("360p", "video"),
            RenditionSpec("audio", "audio"),
        ],
    )


class Feeder:
    """Feeds an event media time in order, video and audio interleaved as an encoder would."""

    def __init__(self, event: LiveEvent, generation: int = 0, epoch: float = EPOCH) -> None:
        self.event = event
        event.start_generation(generation, epoch)
        event.on_init("720p", video_init())
        event.on_init("360p", video_init(640, 360))
        event.on_init("audio", audio_init())
        self.video_index = 0
        self.audio_index = 0

    def advance_to(self, seconds: float) -> None:
        """Deliver every fragment that ends at or before ``seconds`` of media time."""
        while True:
            video_end = (self.video_index + 1) * 10 / FPS
            audio_end = (self.audio_index + 1) * AAC_FRAME / AUDIO_RATE
            if min(video_end, audio_end) > seconds + 1e-9:
                return
            if audio_end <= video_end:
                self.event.on_fragment("audio", audio_fragment(self.audio_index))
                self.audio_index += 1
            else:
                fragment = video_fragment(self.video_index)
                self.event.on_fragment("720p", fragment)
                self.event.on_fragment("360p", fragment)
                self.video_index += 1
