"""FlvRelay: runs start at a keyframe with the sequence headers, timestamps re-based."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from livecast.ingest.flv import is_video_keyframe as is_keyframe
from livecast.ingest.relay import FlvRelay, sequence_kind

AVC_HEADER = bytes([0x17, 0x00, 0, 0, 0]) + b"avcC"
AVC_KEY = bytes([0x17, 0x01, 0, 0, 0]) + b"idr"
AVC_INTER = bytes([0x27, 0x01, 0, 0, 0]) + b"p"
AAC_HEADER = bytes([0xAF, 0x00, 0x11, 0x90])
AAC_RAW = bytes([0xAF, 0x01]) + b"aac"


@dataclass(frozen=True)
class Msg:
    kind: str
    timestamp_ms: int
    payload: bytes


def tags(data: bytes) -> list[tuple[int, int, bytes]]:
    """(type, timestamp ms, body) of every tag in an FLV byte string (header skipped if there)."""
    if data.startswith(b"FLV"):
        data = data[13:]
    out = []
    while data:
        kind, size = data[0], int.from_bytes(data[1:4], "big")
        ts = int.from_bytes(data[4:7], "big") | data[7] << 24
        out.append((kind, ts, data[11 : 11 + size]))
        assert struct.unpack(">I", data[11 + size : 15 + size])[0] == 11 + size
        data = data[15 + size :]
    return out


def test_codec_flags() -> None:
    assert sequence_kind("video", AVC_HEADER) == "video"
    assert sequence_kind("audio", AAC_HEADER) == "audio"
    assert sequence_kind("video", AVC_KEY) is None
    assert is_keyframe(AVC_KEY) and not is_keyframe(AVC_INTER) and not is_keyframe(AVC_HEADER)
    enhanced_start = bytes([0x80 | 0x10 | 0x00]) + b"hvc1cfg"  # ex-header, keyframe, SequenceStart
    enhanced_frame = bytes([0x80 | 0x10 | 0x01]) + b"hvc1data"  # ex-header, keyframe, CodedFrames
    assert sequence_kind("video", enhanced_start) == "video"
    assert is_keyframe(enhanced_frame) and not is_keyframe(enhanced_start)


def test_a_run_opens_at_the_first_keyframe_with_both_sequence_headers() -> None:
    relay = FlvRelay()
    assert relay.feed(Msg("data", 0, b"onMetaData")) is None
    assert relay.feed(Msg("video", 1000, AVC_HEADER)) is None
    assert relay.feed(Msg("audio", 1000, AAC_HEADER)) is None
    assert relay.feed(Msg("video", 1000, AVC_INTER)) is None  # cannot start here
    opened = relay.feed(Msg("video", 1033, AVC_KEY))
    assert opened is not None and opened.run_start and opened.has_audio
    assert opened.data[:5] == b"FLV\x01\x05"  # audio + video flags
    assert [(k, t, b) for k, t, b in tags(opened.data)] == [
        (9, 0, AVC_HEADER), (8, 0, AAC_HEADER), (9, 0, AVC_KEY)
    ]  # fmt: skip
    later = relay.feed(Msg("audio", 1050, AAC_RAW))
    assert later is not None and not later.run_start
    assert tags(later.data) == [(8, 17, AAC_RAW)]
    assert relay.stats.held_before_keyframe == 1


def test_without_audio_the_run_has_no_audio_track_and_late_audio_is_counted() -> None:
    relay = FlvRelay()
    relay.feed(Msg("video", 0, AVC_HEADER))
    opened = relay.feed(Msg("video", 0, AVC_KEY))
    assert opened is not None and not opened.has_audio and opened.data[4] == 0x01
    assert relay.feed(Msg("audio", 10, AAC_RAW)) is None
    assert relay.stats.audio_without_track == 1


def test_restart_repeats_the_headers_at_the_next_keyframe() -> None:
    relay = FlvRelay()
    relay.feed(Msg("video", 0, AVC_HEADER))
    relay.feed(Msg("audio", 0, AAC_HEADER))
    relay.feed(Msg("video", 0, AVC_KEY))
    relay.restart()
    assert relay.feed(Msg("video", 33, AVC_INTER)) is None
    again = relay.feed(Msg("video", 2000, AVC_KEY))
    assert again is not None and again.run_start
    assert [t[:2] for t in tags(again.data)] == [(9, 0), (8, 0), (9, 0)]
    assert relay.stats.runs == 2


def test_timestamp_jumps_are_rebased_and_counted() -> None:
    relay = FlvRelay(max_step_ms=10_000)
    relay.feed(Msg("video", 0, AVC_HEADER))
    relay.feed(Msg("video", 5_000, AVC_KEY))
    step = relay.feed(Msg("video", 5_033, AVC_INTER))
    assert step is not None and tags(step.data)[0][1] == 33
    hours_later = relay.feed(Msg("video", 5_033 + 3 * 3_600_000, AVC_INTER))
    assert hours_later is not None and hours_later.jump_ms == 3 * 3_600_000
    assert tags(hours_later.data)[0][1] == 66
    after = relay.feed(Msg("video", 5_066 + 3 * 3_600_000, AVC_INTER))
    assert after is not None and tags(after.data)[0][1] == 99 and after.jump_ms == 0
    back = relay.feed(Msg("video", 100, AVC_INTER))  # the encoder's clock went back by hours
    assert back is not None and back.jump_ms < 0 and tags(back.data)[0][1] == 132
    assert relay.stats.timestamp_jumps == 2


def test_small_reordering_between_tracks_is_not_a_jump_and_never_goes_negative() -> None:
    relay = FlvRelay()
    relay.feed(Msg("video", 500, AVC_HEADER))
    relay.feed(Msg("audio", 480, AAC_HEADER))
    relay.feed(Msg("video", 500, AVC_KEY))
    early_audio = relay.feed(Msg("audio", 490, AAC_RAW))  # audio slightly before the keyframe
    assert early_audio is not None and tags(early_audio.data)[0][1] == 0
    assert relay.stats.timestamp_jumps == 0


def test_a_watched_input_resumes_at_its_cached_keyframe_with_the_gop_replayed() -> None:
    relay = FlvRelay()
    for msg in (Msg("video", 0, AVC_HEADER), Msg("audio", 0, AAC_HEADER)):
        relay.watch(msg)
    assert relay.resume() is None  # no keyframe yet: the next one opens the run
    relay.watch(Msg("video", 5000, AVC_KEY))
    relay.watch(Msg("audio", 5010, AAC_RAW))
    relay.watch(Msg("video", 5033, AVC_INTER))
    relay.watch(Msg("video", 6000, AVC_KEY))  # a newer keyframe: the cache starts again
    relay.watch(Msg("video", 6033, AVC_INTER))
    relay.watch(Msg("audio", 6050, AAC_RAW))
    assert not relay.running
    resumed = relay.resume()
    assert resumed is not None and resumed.run_start and resumed.has_audio
    assert resumed.backlog_ms == 50
    assert tags(resumed.data) == [
        (9, 0, AVC_HEADER),
        (8, 0, AAC_HEADER),
        (8, 0, AAC_RAW),
        (9, 0, AVC_KEY),
        (9, 33, AVC_INTER),
        (8, 50, AAC_RAW),
    ]  # fmt: skip  — the audio frame before the keyframe goes first (FFmpeg learns the format)
    follow = relay.feed(Msg("video", 6066, AVC_INTER))
    assert follow is not None and not follow.run_start and tags(follow.data) == [(9, 66, AVC_INTER)]


def test_the_gop_cache_is_bounded() -> None:
    relay = FlvRelay(max_gop_bytes=100)
    relay.watch(Msg("video", 0, AVC_HEADER))
    relay.watch(Msg("video", 0, AVC_KEY))
    for n in range(20):
        relay.watch(Msg("video", 33 * (n + 1), AVC_INTER + bytes(10)))
    assert relay.resume() is None  # the cache overflowed: wait for the next keyframe
    relay.watch(Msg("video", 1000, AVC_KEY))
    resumed = relay.resume()
    assert resumed is not None and tags(resumed.data)[-1] == (9, 0, AVC_KEY)


def test_the_audio_frame_before_the_keyframe_opens_the_run_with_it() -> None:
    """FFmpeg's FLV demuxer (not probing) learns the audio format from the first audio frame;
    with the keyframe first the transcode started ~2 s late and stayed behind."""
    relay = FlvRelay()
    for msg in (Msg("video", 0, AVC_HEADER), Msg("audio", 0, AAC_HEADER)):
        assert relay.feed(msg) is None
    assert relay.feed(Msg("audio", 980, AAC_RAW + b"1")) is None
    assert relay.feed(Msg("audio", 1001, AAC_RAW + b"2")) is None
    opened = relay.feed(Msg("video", 1010, AVC_KEY))
    assert opened is not None and tags(opened.data) == [
        (9, 0, AVC_HEADER), (8, 0, AAC_HEADER), (8, 0, AAC_RAW + b"2"), (9, 0, AVC_KEY)
    ]  # fmt: skip
