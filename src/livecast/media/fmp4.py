"""Fragmented MP4 (CMAF) box reading — sans-IO.

``FMP4StreamReader.feed(bytes)`` accepts an fMP4 byte stream in arbitrary chunks (as it arrives
on an FFmpeg pipe) and returns what became complete: one :class:`InitSegment` (``ftyp`` +
``moov``), then :class:`Fragment` objects (``[styp] [prft] moof mdat``), each with the decode
time, duration and sync-sample flag the packager needs to cut parts and segments.

ISO/IEC 14496-12 box layout: ``size(32) type(32) [largesize(64)] payload``; ``size == 1`` means a
64-bit ``largesize`` follows; ``size == 0`` (box extends to end of file) is refused on a live
stream.

Every box is read through :mod:`livecast.media.box_reader` (bounds-checked) and the track
fragment boxes through :mod:`livecast.media.track_fragment`, which the loop rewriter shares.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from livecast.errors import MediaError
from livecast.media.box_reader import (
    BoxReader,
    find_box,
    iter_boxes,
    open_box,
    require_box,
)
from livecast.media.track_fragment import (
    NON_SYNC_SAMPLE,
    SampleDefaults,
    TrackFragmentHeader,
    read_tfdt,
    read_tfhd,
    read_trun,
)

__all__ = [
    "MAX_BOX_SIZE",
    "NON_SYNC_SAMPLE",
    "FMP4StreamReader",
    "Fragment",
    "InitSegment",
    "TrackInfo",
    "find_box",
    "iter_boxes",
    "parse_fragment",
    "parse_init",
]

_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
MAX_BOX_SIZE = 64 * 1024 * 1024  # a live fragment far above this is a broken stream


@dataclass(frozen=True, slots=True)
class TrackInfo:
    """What the multivariant playlist needs to know about a track, read from ``moov``."""

    track_id: int
    kind: str  # "video" or "audio"
    timescale: int
    codec: str  # RFC 6381 codec string, e.g. "avc1.64001f" or "mp4a.40.2"
    width: int = 0
    height: int = 0
    sample_rate: int = 0
    channels: int = 0
    default_sample_duration: int = 0
    default_sample_flags: int = 0
    # The two defaults above as the track fragment reader takes them (what neither tfhd nor
    # trun states); derived, built once.
    sample_defaults: SampleDefaults = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        defaults = SampleDefaults(self.default_sample_duration, 0, self.default_sample_flags)
        object.__setattr__(self, "sample_defaults", defaults)


@dataclass(frozen=True, slots=True)
class InitSegment:
    data: bytes
    track: TrackInfo


@dataclass(frozen=True, slots=True)
class Fragment:
    """One movie fragment: ``moof`` + ``mdat`` (plus any ``styp``/``prft`` before them)."""

    data: bytes
    decode_time: int  # tfdt baseMediaDecodeTime, in the track timescale
    duration: int  # sum of sample durations, in the track timescale
    sample_count: int
    independent: bool  # first sample is a sync sample


def _malformed(error: Exception, what: str) -> MediaError:
    """Last resort: the box reader checks every read and raises MediaError itself (the property
    tests assert that this translation is never needed). Should a read still slip past it, it
    takes the encoder-restart path as a media error instead of escaping as ``struct.error``."""
    return MediaError(f"malformed {what}: {error}")


# ---------------------------------------------------------------- moov: track description


def parse_init(data: bytes) -> TrackInfo:
    """Read the single track of a CMAF init segment (``ftyp`` + ``moov``); MediaError when it
    is malformed."""
    try:
        return _parse_init(data)
    except (struct.error, IndexError) as error:
        raise _malformed(error, "init segment") from error


def _parse_init(data: bytes) -> TrackInfo:
    trak = require_box(data, [b"moov", b"trak"])
    tkhd = open_box(data, [b"tkhd"], *trak)
    version, _ = tkhd.full_box_header()
    tkhd.skip(16 if version == 1 else 8, "creation and modification times")
    track_id = tkhd.u32("track_ID")
    mdhd = open_box(data, [b"mdia", b"mdhd"], *trak)
    version, _ = mdhd.full_box_header()
    mdhd.skip(16 if version == 1 else 8, "creation and modification times")
    timescale = mdhd.u32("timescale")
    hdlr = open_box(data, [b"mdia", b"hdlr"], *trak)
    hdlr.skip(8, "version, flags and pre_defined")
    handler = hdlr.read_bytes(4, "handler_type")
    stsd = open_box(data, [b"mdia", b"minf", b"stbl", b"stsd"], *trak)
    stsd.skip(8, "version, flags and entry_count")
    first_entry = next(stsd.children(), None)
    if first_entry is None:
        raise MediaError("stsd without a sample entry")
    entry_type, payload, end = first_entry
    entry = BoxReader(data, entry_type, payload, end)
    defaults = _trex_defaults(data, track_id)
    if handler == b"vide":
        return _video_track(track_id, timescale, entry, defaults)
    if handler == b"soun":
        return _audio_track(track_id, timescale, entry, defaults)
    raise MediaError(f"unsupported track handler {handler!r}")


def _trex_defaults(data: bytes, track_id: int) -> tuple[int, int]:
    """``(default_sample_duration, default_sample_flags)`` of the track's ``trex``."""
    mvex = find_box(data, [b"moov", b"mvex"])
    if mvex is None:
        return 0, 0
    for box_type, payload, end in iter_boxes(data, *mvex):
        if box_type != b"trex":
            continue
        trex = BoxReader(data, box_type, payload, end)
        trex.skip(4, "version and flags")
        if trex.u32("track_ID") == track_id:
            trex.skip(4, "default_sample_description_index")
            duration = trex.u32("default_sample_duration")
            trex.skip(4, "default_sample_size")
            return duration, trex.u32("default_sample_flags")
    return 0, 0


def _video_track(
    track_id: int, timescale: int, entry: BoxReader, defaults: tuple[int, int]
) -> TrackInfo:
    if entry.box_type not in (b"avc1", b"avc3"):
        raise MediaError(f"unsupported video sample entry {entry.box_type!r}")
    entry.skip(24, "SampleEntry and pre_defined fields")
    width = entry.u16("width")
    height = entry.u16("height")
    entry.skip(50, "the rest of the VisualSampleEntry")  # 78 bytes before its child boxes
    avcc = entry.open_child([b"avcC"])
    avcc.skip(1, "configurationVersion")
    profile = avcc.u8("AVCProfileIndication")
    compat = avcc.u8("profile_compatibility")
    level = avcc.u8("AVCLevelIndication")
    codec = f"{entry.box_type.decode()}.{profile:02x}{compat:02x}{level:02x}"
    return TrackInfo(
        track_id,
        "video",
        timescale,
        codec,
        width=width,
        height=height,
        default_sample_duration=defaults[0],
        default_sample_flags=defaults[1],
    )


def _audio_track(
    track_id: int, timescale: int, entry: BoxReader, defaults: tuple[int, int]
) -> TrackInfo:
    if entry.box_type != b"mp4a":
        raise MediaError(f"unsupported audio sample entry {entry.box_type!r}")
    entry.skip(16, "SampleEntry and reserved fields")
    channels = entry.u16("channelcount")
    entry.skip(6, "samplesize, pre_defined and reserved")
    sample_rate = entry.u32("samplerate") >> 16  # 16.16 fixed point
    esds = entry.open_child([b"esds"])  # AudioSampleEntry is 28 bytes before its child boxes
    esds.skip(4, "version and flags")
    return TrackInfo(
        track_id,
        "audio",
        timescale,
        f"mp4a.40.{_aac_object_type(esds)}",
        sample_rate=sample_rate,
        channels=channels,
        default_sample_duration=defaults[0],
        default_sample_flags=defaults[1],
    )


def _aac_object_type(esds: BoxReader) -> int:
    """Audio object type from the DecoderSpecificInfo (tag 5) inside an ES_Descriptor
    (ISO/IEC 14496-1 §7.2.6); AAC-LC when there is none."""
    while esds.remaining > 0:
        tag = esds.u8("descriptor tag")
        length = 0
        for _ in range(4):
            byte = esds.u8("descriptor length")
            length = (length << 7) | (byte & 0x7F)
            if not byte & 0x80:
                break
        if tag == 0x03:  # ES_Descriptor: ES_ID(16) + flags(8), then nested descriptors
            esds.skip(2, "ES_ID")
            flags = esds.u8("ES_Descriptor flags")
            if flags & 0x80:
                esds.skip(2, "dependsOn_ES_ID")
            if flags & 0x40:
                esds.skip(esds.u8("URLlength"), "URLstring")
            if flags & 0x20:
                esds.skip(2, "OCR_ES_Id")
            continue
        if tag == 0x04:  # DecoderConfigDescriptor: 13 fixed bytes, then nested descriptors
            esds.skip(13, "DecoderConfigDescriptor")
            continue
        if tag == 0x05 and length:
            return esds.u8("audioObjectType") >> 3
        esds.skip(min(length, esds.remaining), "descriptor")  # one we do not need
    return 2  # AAC-LC


# ---------------------------------------------------------------- moof: fragment timing


def parse_fragment(data: bytes, track: TrackInfo) -> Fragment:
    """Decode time, duration, sample count and sync flag of ``moof`` + ``mdat``; MediaError when
    it is malformed."""
    try:
        return _parse_fragment(data, track)
    except (struct.error, IndexError) as error:
        raise _malformed(error, "fragment") from error


def _parse_fragment(data: bytes, track: TrackInfo) -> Fragment:
    traf_payload, traf_end = require_box(data, [b"moof", b"traf"])
    header: TrackFragmentHeader | None = None
    decode_time: int | None = None
    runs = []
    for box_type, payload, end in iter_boxes(data, traf_payload, traf_end):
        if box_type == b"trun":
            runs.append(read_trun(BoxReader(data, box_type, payload, end)))
        elif box_type == b"tfhd" and header is None:
            header = read_tfhd(BoxReader(data, box_type, payload, end))
        elif box_type == b"tfdt" and decode_time is None:
            decode_time = read_tfdt(BoxReader(data, box_type, payload, end))
    if header is None:
        raise MediaError("missing box moof/traf/tfhd")
    if decode_time is None:
        raise MediaError("missing box moof/traf/tfdt")
    defaults = header.sample_defaults(track.sample_defaults)
    duration = 0
    count = 0
    first_flags = 0
    for run in runs:
        duration += run.total_duration(defaults)
        if count == 0:
            first_flags = run.first_flags(defaults)
        count += run.sample_count
    if count == 0:
        raise MediaError("fragment without samples")
    return Fragment(data, decode_time, duration, count, not first_flags & NON_SYNC_SAMPLE)


# ---------------------------------------------------------------- the incremental reader


class FMP4StreamReader:
    """Turns an fMP4 byte stream, fed in arbitrary chunks, into init segment + fragments."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._pending: list[bytes] = []  # boxes collected for the object being assembled
        self.track: TrackInfo | None = None

    def feed(self, chunk: bytes) -> list[InitSegment | Fragment]:
        self._buffer += chunk
        out: list[InitSegment | Fragment] = []
        while (box := self._next_box()) is not None:
            item = self._on_box(box)
            if item is not None:
                out.append(item)
        return out

    def _next_box(self) -> bytes | None:
        buf = self._buffer
        if len(buf) < 8:
            return None
        size = _U32.unpack_from(buf, 0)[0]
        if size == 1:
            if len(buf) < 16:
                return None
            size = _U64.unpack_from(buf, 8)[0]
        if size < 8 or size > MAX_BOX_SIZE:
            raise MediaError(f"box {bytes(buf[4:8])!r} has unusable size {size}")
        if len(buf) < size:
            return None
        box = bytes(buf[:size])
        del buf[:size]
        return box

    def _on_box(self, box: bytes) -> InitSegment | Fragment | None:
        box_type = box[4:8]
        self._pending.append(box)
        if box_type == b"moov":
            data = b"".join(self._pending)
            self._pending.clear()
            self.track = parse_init(data)
            return InitSegment(data, self.track)
        if box_type == b"mdat":
            data = b"".join(self._pending)
            self._pending.clear()
            if self.track is None:
                raise MediaError("media data before the init segment")
            return parse_fragment(data, self.track)
        if box_type == b"moof" and any(b[4:8] == b"moof" for b in self._pending[:-1]):
            raise MediaError("moof without mdat")
        return None
