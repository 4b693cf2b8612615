"""Synthetic encoder output for driving the pure packager without FFmpeg."""

from __future__ import annotations

import struct

from livecast.media import boxes
from livecast.media.boxes import box, full_box
from livecast.media.fmp4 import FMP4StreamReader, Fragment, InitSegment
from livecast.packager.event import LiveEvent, RenditionSpec
from livecast.packager.live import PackagingConfig
from livecast.store.contract import Store

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


def make_event(
    window: float = 30.0, part_target: float = PART_TARGET, store: Store | None = None
) -> LiveEvent:
    config = PackagingConfig(part_target=part_target, segment_duration=SEGMENT, window=window)
    return LiveEvent(
        config,
        [
            RenditionSpec("720p", "video"),
            RenditionSpec("360p", "video"),
            RenditionSpec("audio", "audio"),
        ],
        store=store,
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


# ---------------------------------------------------------------- fragments laid out by hand


def ffmpeg_like(
    *,
    sequence: int = 7,
    decode_time: int = 0,
    sizes: tuple[int, ...] = (5, 6),
    duration: int = AAC_FRAME,
    tfdt_version: int = 0,
    tfhd_flags: int = 0x020038,
    prefix: bytes = b"",
) -> bytes:
    """A fragment laid out as FFmpeg writes audio: defaults in tfhd (duration, size, flags), a
    trun with data offset and per-sample sizes only, sample bytes numbered 1, 2, … in mdat."""
    tfhd_payload = struct.pack(">I", 1)
    if tfhd_flags & 0x01:
        tfhd_payload += struct.pack(">Q", 1234)
    tfhd_payload += struct.pack(">III", duration, 100, 0x02000000)
    tfhd = full_box(b"tfhd", 0, tfhd_flags, tfhd_payload)
    if tfdt_version == 1:
        tfdt = full_box(b"tfdt", 1, 0, struct.pack(">Q", decode_time))
    else:
        tfdt = full_box(b"tfdt", 0, 0, struct.pack(">I", decode_time))
    mdat = box(b"mdat", b"".join(bytes([i + 1]) * size for i, size in enumerate(sizes)))

    def moof(offset: int) -> bytes:
        trun = full_box(
            b"trun",
            0,
            0x201,
            struct.pack(">Ii", len(sizes), offset),
            *(struct.pack(">I", s) for s in sizes),
        )
        return box(
            b"moof",
            full_box(b"mfhd", 0, 0, struct.pack(">I", sequence)),
            box(b"traf", tfhd, tfdt, trun),
        )

    first = moof(0)
    return prefix + moof(len(first) + 8) + mdat


def traf_fragment(
    *,
    tfhd_flags: int,
    tfhd_fields: bytes,
    truns: list[tuple[int, int, int, bytes]],
    tfdt: bytes | None = None,
    extra_traf: bytes = b"",
    extra_moof: bytes = b"",
    mdat_size: int = 64,
) -> bytes:
    """A fragment with any tfhd and any truns ``(version, flags, sample_count, fields after the
    data offset)``; each trun's data offset (when its flags carry one) points past the moof."""
    tfhd = full_box(b"tfhd", 0, tfhd_flags, struct.pack(">I", 1), tfhd_fields)
    tfdt = tfdt if tfdt is not None else full_box(b"tfdt", 1, 0, struct.pack(">Q", 77))

    def moof(offset: int) -> bytes:
        runs = [
            full_box(
                b"trun",
                version,
                flags,
                struct.pack(">I", count),
                struct.pack(">i", offset) if flags & 0x001 else b"",
                fields,
            )
            for version, flags, count, fields in truns
        ]
        return box(
            b"moof",
            full_box(b"mfhd", 0, 0, struct.pack(">I", 3)),
            extra_moof,
            box(b"traf", tfhd, tfdt, extra_traf, *runs),
        )

    first = moof(0)
    return moof(len(first) + 8) + box(b"mdat", bytes(range(mdat_size)))


def every_field_fragment() -> bytes:
    """trun v1 with a data offset, first-sample flags, all four per-sample columns (a negative
    composition offset), tfhd defaults, and boxes the rewriter passes through (sbgp, pssh)."""
    return traf_fragment(
        tfhd_flags=0x02 | 0x10 | 0x20 | 0x020000,
        tfhd_fields=struct.pack(">III", 1, 4, 0x01010000),
        truns=[
            (
                1,
                0xF05,
                3,
                struct.pack(">I", 0x02000000)
                + struct.pack(">IIIi", 500, 10, 0x02000000, -512)
                + struct.pack(">IIIi", 600, 11, 0x01010000, 1024)
                + struct.pack(">IIIi", 700, 12, 0x01010000, 0),
            )
        ],
        extra_traf=full_box(b"sbgp", 0, 0, b"roll", struct.pack(">I", 0)),
        extra_moof=full_box(b"pssh", 0, 0, b"\x11" * 20),
    )
