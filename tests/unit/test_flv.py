"""FLV writer byte layout (Adobe FLV spec v10.1, Annex E) and tag-body inspection."""

from __future__ import annotations

import struct

import pytest

from livecast.ingest.flv import (
    flv_header,
    flv_tag,
    is_aac_sequence_header,
    is_avc_sequence_header,
    is_video_keyframe,
    is_video_sequence_header,
    video_codec_id,
)

AVC_HEADER = bytes([0x17, 0x00, 0, 0, 0, 0x01, 0x64])
AVC_KEY = bytes([0x17, 0x01, 0, 0, 0]) + b"idr"
AVC_INTER = bytes([0x27, 0x01, 0, 0, 0]) + b"p"
AVC_END = bytes([0x17, 0x02, 0, 0, 0])
AAC_HEADER = bytes([0xAF, 0x00, 0x11, 0x90])
AAC_RAW = bytes([0xAF, 0x01]) + b"aac"


def test_header() -> None:
    # "FLV", version 1, TypeFlagsAudio (bit 2) | TypeFlagsVideo (bit 0), DataOffset 9,
    # then PreviousTagSize0 = 0
    assert flv_header(audio=True, video=True) == b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00"
    assert flv_header(audio=False, video=True)[4] == 0x01
    assert flv_header(audio=True, video=False)[4] == 0x04
    assert len(flv_header(audio=False, video=False)) == 13


def test_tag_layout_and_extended_timestamp_byte_order() -> None:
    tag = flv_tag("video", 0x12345678, b"abc")
    assert tag[0] == 9  # TagType video
    assert tag[1:4] == b"\x00\x00\x03"  # DataSize UI24
    assert tag[4:7] == b"\x34\x56\x78"  # Timestamp: the lower 24 bits, big-endian
    assert tag[7] == 0x12  # TimestampExtended: the upper 8 bits
    assert tag[8:11] == b"\x00\x00\x00"  # StreamID
    assert tag[11:14] == b"abc"
    assert struct.unpack(">I", tag[14:])[0] == 11 + 3  # PreviousTagSize
    assert len(tag) == 11 + 3 + 4


def test_tag_types_and_sizes() -> None:
    assert flv_tag("audio", 0, b"")[0] == 8
    assert flv_tag("data", 0, b"")[0] == 18
    body = bytes(70_000)
    tag = flv_tag("audio", 40, body)
    assert int.from_bytes(tag[1:4], "big") == 70_000
    assert tag[4:8] == b"\x00\x00\x28\x00"
    assert struct.unpack(">I", tag[-4:])[0] == 70_011


def test_timestamps_are_si32() -> None:
    assert flv_tag("video", -1, b"")[4:8] == b"\xff\xff\xff\xff"  # two's complement
    assert flv_tag("video", 2**32 + 5, b"")[4:8] == b"\x00\x00\x05\x00"  # modulo 2**32


def test_oversized_body_is_refused() -> None:
    with pytest.raises(ValueError, match="at most"):
        flv_tag("video", 0, bytes(0x1000000))


def test_video_inspection() -> None:
    assert video_codec_id(AVC_KEY) == 7
    assert video_codec_id(b"") is None
    assert video_codec_id(b"\x90hvc1") is None  # enhanced RTMP: a FourCC instead
    assert is_avc_sequence_header(AVC_HEADER)
    assert not is_avc_sequence_header(AVC_KEY)
    assert is_video_sequence_header(AVC_HEADER)
    assert is_video_sequence_header(bytes([0x1C, 0x00]))  # legacy HEVC
    assert is_video_sequence_header(b"\x90hvc1")  # enhanced: key frame, SequenceStart
    assert not is_video_sequence_header(b"\x91hvc1")
    assert is_video_keyframe(AVC_KEY)
    assert not is_video_keyframe(AVC_HEADER)
    assert not is_video_keyframe(AVC_END)
    assert not is_video_keyframe(AVC_INTER)
    assert not is_video_keyframe(b"")
    assert is_video_keyframe(b"\x91hvc1")  # enhanced CodedFrames
    assert is_video_keyframe(b"\x93hvc1")  # enhanced CodedFramesX
    assert not is_video_keyframe(b"\xa1hvc1")  # FrameType 2
    assert is_video_keyframe(b"\x12")  # Sorenson H.263 key frame: no packet type byte
    assert not is_video_keyframe(b"\x17")  # AVC without its packet type


def test_audio_inspection() -> None:
    assert is_aac_sequence_header(AAC_HEADER)
    assert not is_aac_sequence_header(AAC_RAW)
    assert not is_aac_sequence_header(b"\x2f\x00")  # MP3
    assert not is_aac_sequence_header(b"\xaf")
