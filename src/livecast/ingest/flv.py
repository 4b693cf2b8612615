"""FLV writing and FLV tag-body inspection (pure).

RTMP carries media as FLV tag bodies: the payload of an RTMP audio (8), video (9) or data (18)
message is exactly the ``Data`` of an FLV tag of that type, so an FLV file is the messages with a
header in front and an 11-byte header and a back pointer around each.

Adobe Flash Video File Format Specification v10.1, Annex E:

* E.2 The FLV header — ``Signature "FLV" | Version 1 | TypeFlagsReserved(5) |
  TypeFlagsAudio(1) | TypeFlagsReserved(1) | TypeFlagsVideo(1) | DataOffset UI32 = 9``.
* E.3 The FLV file body — ``PreviousTagSize0 UI32 = 0``, then each tag followed by
  ``PreviousTagSizeN``: "Size of previous tag, including its header, in bytes. For FLV version 1,
  this value is 11 plus the DataSize of the previous tag."
* E.4.1 FLV tag — ``Reserved(2) | Filter(1) | TagType(5) | DataSize UI24 | Timestamp UI24 |
  TimestampExtended UI8 | StreamID UI24 = 0 | Data``. "TimestampExtended: Extension of the
  Timestamp field to form a SI32 value. This field represents the upper 8 bits, while the
  previous Timestamp field represents the lower 24 bits of the time in milliseconds."
* E.4.2.1 AUDIODATA — ``SoundFormat(4) | SoundRate(2) | SoundSize(1) | SoundType(1)``; for AAC
  (SoundFormat 10) ``AACPacketType UI8``: "0: AAC sequence header, 1: AAC raw".
* E.4.3.1 VIDEODATA — ``FrameType(4) | CodecID(4)``; FrameType "1: key frame (for AVC, a
  seekable frame)"; for AVC (CodecID 7) ``AVCPacketType UI8``: "0: AVC sequence header, 1: AVC
  NALU, 2: AVC end of sequence".

Enhanced RTMP (v1, Veovera 2023) reuses the top bit of the first video byte: ``IsExHeader(1) |
FrameType(3) | PacketType(4)`` then a FourCC (``hvc1``, ``av01``, ``vp09``); PacketType 0 is
SequenceStart, 1 CodedFrames, 3 CodedFramesX.
"""

from __future__ import annotations

import struct
from typing import Literal

__all__ = [
    "AAC",
    "AVC",
    "HEVC",
    "TAG_TYPES",
    "TagKind",
    "flv_header",
    "flv_tag",
    "is_aac_sequence_header",
    "is_avc_sequence_header",
    "is_video_keyframe",
    "is_video_sequence_header",
    "video_codec_id",
]

TagKind = Literal["audio", "video", "data"]
TAG_TYPES: dict[TagKind, int] = {"audio": 8, "video": 9, "data": 18}  # E.4.1 TagType

AVC = 7  # E.4.3.1 CodecID
HEVC = 12  # the legacy (pre-enhanced-RTMP) CodecID for H.265 that FFmpeg and OBS write
AAC = 10  # E.4.2.1 SoundFormat

KEY_FRAME = 1  # FrameType
EX_HEADER = 0x80  # enhanced RTMP: IsExHeader
EX_SEQUENCE_START = 0
EX_CODED_FRAMES = (1, 3)  # CodedFrames, CodedFramesX
MAX_DATA_SIZE = 0xFFFFFF  # DataSize is a UI24

_HEADER = struct.Struct(">3sBBI")
_U32 = struct.Struct(">I")


def flv_header(*, audio: bool, video: bool) -> bytes:
    """The 9-byte FLV header (E.2) and ``PreviousTagSize0`` (E.3): 13 bytes."""
    flags = (0x04 if audio else 0) | (0x01 if video else 0)
    return _HEADER.pack(b"FLV", 1, flags, 9) + _U32.pack(0)


def flv_tag(kind: TagKind, timestamp_ms: int, payload: bytes) -> bytes:
    """One FLV tag (E.4.1) followed by its ``PreviousTagSize`` (E.3).

    The timestamp is written as FLV's SI32: the low 24 bits, then the upper 8 in
    ``TimestampExtended``; it is taken modulo 2**32 (so a negative value is written in two's
    complement, as an SI32, and RTMP's 32-bit timestamps pass through unchanged).
    """
    if len(payload) > MAX_DATA_SIZE:
        raise ValueError(f"an FLV tag body is at most {MAX_DATA_SIZE} bytes, not {len(payload)}")
    ts = timestamp_ms & 0xFFFFFFFF
    size = len(payload)
    header = bytes(
        (
            TAG_TYPES[kind],
            size >> 16,
            (size >> 8) & 0xFF,
            size & 0xFF,
            (ts >> 16) & 0xFF,  # Timestamp UI24: bits 23..0, most significant byte first
            (ts >> 8) & 0xFF,
            ts & 0xFF,
            ts >> 24,  # TimestampExtended UI8: bits 31..24
            0,  # StreamID UI24: "Always 0"
            0,
            0,
        )
    )
    return header + bytes(payload) + _U32.pack(11 + size)


# ------------------------------------------------------------------ tag bodies


def video_codec_id(payload: bytes) -> int | None:
    """The legacy CodecID of a video tag body (7 = AVC), or None (empty, or enhanced RTMP)."""
    if not payload or payload[0] & EX_HEADER:
        return None
    return payload[0] & 0x0F


def _frame_type(payload: bytes) -> int:
    return (payload[0] >> 4) & 0x07  # enhanced RTMP takes the top bit: 3 bits in both cases


def is_video_sequence_header(payload: bytes) -> bool:
    """A decoder configuration record: AVC/HEVC ``AVCPacketType`` 0, or enhanced RTMP's
    SequenceStart."""
    if len(payload) < 2:
        return False
    if payload[0] & EX_HEADER:
        return payload[0] & 0x0F == EX_SEQUENCE_START
    return payload[0] & 0x0F in (AVC, HEVC) and payload[1] == 0


def is_avc_sequence_header(payload: bytes) -> bool:
    """An H.264 AVCDecoderConfigurationRecord: CodecID 7, ``AVCPacketType`` 0."""
    return video_codec_id(payload) == AVC and len(payload) >= 2 and payload[1] == 0


def is_video_keyframe(payload: bytes) -> bool:
    """A coded key frame a decoder can start at: FrameType 1 carrying a picture (not a sequence
    header or end of sequence, which are flagged FrameType 1 too)."""
    if not payload or _frame_type(payload) != KEY_FRAME:
        return False
    if payload[0] & EX_HEADER:
        return payload[0] & 0x0F in EX_CODED_FRAMES
    if payload[0] & 0x0F in (AVC, HEVC):
        return len(payload) >= 2 and payload[1] == 1  # AVCPacketType 1: NALU
    return True


def is_aac_sequence_header(payload: bytes) -> bool:
    """An AAC AudioSpecificConfig: SoundFormat 10, ``AACPacketType`` 0."""
    return len(payload) >= 2 and payload[0] >> 4 == AAC and payload[1] == 0
