"""Fragmented MP4 (CMAF) box reading — sans-IO.

``FMP4StreamReader.feed(bytes)`` accepts an fMP4 byte stream in arbitrary chunks (as it arrives
on an FFmpeg pipe) and returns what became complete: one :class:`InitSegment` (``ftyp`` +
``moov``), then :class:`Fragment` objects (``[styp] [prft] moof mdat``), each with the decode
time, duration and sync-sample flag the packager needs to cut parts and segments.

ISO/IEC 14496-12 box layout: ``size(32) type(32) [largesize(64)] payload``; ``size == 1`` means a
64-bit ``largesize`` follows; ``size == 0`` (box extends to end of file) is refused on a live
stream.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from livecast.errors import MediaError

_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
MAX_BOX_SIZE = 64 * 1024 * 1024  # a live fragment far above this is a broken stream
_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"mvex", b"moof", b"traf", b"dinf"}
# trun sample flags (ISO/IEC 14496-12 8.8.3.1): sample_is_non_sync_sample is bit 16.
NON_SYNC_SAMPLE = 0x0001_0000


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


def iter_boxes(
    data: bytes | memoryview, start: int = 0, end: int | None = None
) -> Iterator[tuple[bytes, int, int]]:
    """Yield ``(type, payload_start, box_end)`` for each box in ``data[start:end]``."""
    end = len(data) if end is None else end
    pos = start
    while pos + 8 <= end:
        size = _U32.unpack_from(data, pos)[0]
        box_type = bytes(data[pos + 4 : pos + 8])
        header = 8
        if size == 1:
            if pos + 16 > end:
                raise MediaError(f"truncated largesize header of {box_type!r}")
            size = _U64.unpack_from(data, pos + 8)[0]
            header = 16
        if size < header or pos + size > end:
            raise MediaError(f"box {box_type!r} at {pos} has bad size {size}")
        yield box_type, pos + header, pos + size
        pos += size
    if pos != end:
        raise MediaError(f"{end - pos} trailing bytes after the last box")


def find_box(
    data: bytes, path: list[bytes], start: int = 0, end: int | None = None
) -> tuple[int, int] | None:
    """Find the first box along ``path`` (e.g. ``[b"moov", b"trak"]``); ``(payload, end)``."""
    for box_type, payload, box_end in iter_boxes(data, start, end):
        if box_type == path[0]:
            if len(path) == 1:
                return payload, box_end
            return find_box(data, path[1:], payload, box_end)
    return None


def _need(
    data: bytes, path: list[bytes], start: int = 0, end: int | None = None
) -> tuple[int, int]:
    found = find_box(data, path, start, end)
    if found is None:
        raise MediaError("missing box " + "/".join(p.decode("latin-1") for p in path))
    return found


def _full_box(data: bytes, payload: int) -> tuple[int, int]:
    """Version and 24-bit flags of a FullBox."""
    word = _U32.unpack_from(data, payload)[0]
    return word >> 24, word & 0xFFFFFF


# ---------------------------------------------------------------- moov: track description


def _malformed(error: Exception, what: str) -> MediaError:
    """A read past a box's bytes (a corrupt size or count) as the project's media error, so that
    it takes the encoder-restart path instead of escaping as ``struct.error``."""
    return MediaError(f"malformed {what}: {error}")


def parse_init(data: bytes) -> TrackInfo:
    """Read the single track of a CMAF init segment (``ftyp`` + ``moov``); MediaError when it
    is malformed."""
    try:
        return _parse_init(data)
    except (struct.error, IndexError) as error:
        raise _malformed(error, "init segment") from error


def _parse_init(data: bytes) -> TrackInfo:
    trak = _need(data, [b"moov", b"trak"])
    tkhd = _need(data, [b"tkhd"], *trak)
    version, _ = _full_box(data, tkhd[0])
    track_id = _U32.unpack_from(data, tkhd[0] + (20 if version == 1 else 12))[0]
    mdhd = _need(data, [b"mdia", b"mdhd"], *trak)
    version, _ = _full_box(data, mdhd[0])
    timescale = _U32.unpack_from(data, mdhd[0] + (20 if version == 1 else 12))[0]
    hdlr = _need(data, [b"mdia", b"hdlr"], *trak)
    handler = data[hdlr[0] + 8 : hdlr[0] + 12]
    stsd = _need(data, [b"mdia", b"minf", b"stbl", b"stsd"], *trak)
    entry_type, entry_payload, entry_end = next(iter_boxes(data, stsd[0] + 8, stsd[1]))
    defaults = _trex_defaults(data, track_id)
    if handler == b"vide":
        return _video_track(
            data, track_id, timescale, entry_type, entry_payload, entry_end, defaults
        )
    if handler == b"soun":
        return _audio_track(
            data, track_id, timescale, entry_type, entry_payload, entry_end, defaults
        )
    raise MediaError(f"unsupported track handler {handler!r}")


def _trex_defaults(data: bytes, track_id: int) -> tuple[int, int]:
    mvex = find_box(data, [b"moov", b"mvex"])
    if mvex is None:
        return 0, 0
    for box_type, payload, _end in iter_boxes(data, *mvex):
        if box_type == b"trex" and _U32.unpack_from(data, payload + 4)[0] == track_id:
            duration = _U32.unpack_from(data, payload + 12)[0]
            flags = _U32.unpack_from(data, payload + 20)[0]
            return duration, flags
    return 0, 0


def _video_track(
    data: bytes,
    track_id: int,
    timescale: int,
    entry_type: bytes,
    payload: int,
    end: int,
    defaults: tuple[int, int],
) -> TrackInfo:
    if entry_type not in (b"avc1", b"avc3"):
        raise MediaError(f"unsupported video sample entry {entry_type!r}")
    width, height = struct.unpack_from(">HH", data, payload + 24)
    # VisualSampleEntry is 78 bytes before its child boxes.
    avcc = _need(data, [b"avcC"], payload + 78, end)
    profile, compat, level = data[avcc[0] + 1], data[avcc[0] + 2], data[avcc[0] + 3]
    codec = f"{entry_type.decode()}.{profile:02x}{compat:02x}{level:02x}"
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
    data: bytes,
    track_id: int,
    timescale: int,
    entry_type: bytes,
    payload: int,
    end: int,
    defaults: tuple[int, int],
) -> TrackInfo:
    if entry_type != b"mp4a":
        raise MediaError(f"unsupported audio sample entry {entry_type!r}")
    channels = struct.unpack_from(">H", data, payload + 16)[0]
    sample_rate = _U32.unpack_from(data, payload + 24)[0] >> 16
    # AudioSampleEntry is 28 bytes before its child boxes.
    esds = _need(data, [b"esds"], payload + 28, end)
    object_type = _aac_object_type(data[esds[0] + 4 : esds[1]])
    return TrackInfo(
        track_id,
        "audio",
        timescale,
        f"mp4a.40.{object_type}",
        sample_rate=sample_rate,
        channels=channels,
        default_sample_duration=defaults[0],
        default_sample_flags=defaults[1],
    )


def _aac_object_type(descriptors: bytes) -> int:
    """Audio object type from the DecoderSpecificInfo (tag 5) inside an ES_Descriptor."""
    pos = 0
    while pos < len(descriptors):
        tag = descriptors[pos]
        pos += 1
        length = 0
        for _ in range(4):
            byte = descriptors[pos]
            pos += 1
            length = (length << 7) | (byte & 0x7F)
            if not byte & 0x80:
                break
        if tag == 0x03:  # ES_Descriptor: ES_ID(16) + flags(8), then nested descriptors
            flags = descriptors[pos + 2]
            pos += 3 + (2 if flags & 0x80 else 0) + (2 if flags & 0x20 else 0)
            if flags & 0x40:
                pos += 1 + descriptors[pos]
            continue
        if tag == 0x04:  # DecoderConfigDescriptor: 13 fixed bytes, then nested descriptors
            pos += 13
            continue
        if tag == 0x05 and length:
            return descriptors[pos] >> 3
        pos += length
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
    traf = _need(data, [b"moof", b"traf"])
    tfhd = _need(data, [b"tfhd"], *traf)
    _, tf_flags = _full_box(data, tfhd[0])
    pos = tfhd[0] + 8
    pos += 8 if tf_flags & 0x01 else 0  # base-data-offset
    pos += 4 if tf_flags & 0x02 else 0  # sample-description-index
    default_duration = track.default_sample_duration
    default_flags = track.default_sample_flags
    if tf_flags & 0x08:
        default_duration = _U32.unpack_from(data, pos)[0]
        pos += 4
    pos += 4 if tf_flags & 0x10 else 0  # default-sample-size
    if tf_flags & 0x20:
        default_flags = _U32.unpack_from(data, pos)[0]
    tfdt = _need(data, [b"tfdt"], *traf)
    version, _ = _full_box(data, tfdt[0])
    if version == 1:
        decode_time = _U64.unpack_from(data, tfdt[0] + 4)[0]
    else:
        decode_time = _U32.unpack_from(data, tfdt[0] + 4)[0]
    duration = 0
    count = 0
    first_flags: int | None = None
    for box_type, payload, _end in iter_boxes(data, *traf):
        if box_type == b"trun":
            run = _read_trun(data, payload, default_duration, default_flags)
            duration += run[0]
            if count == 0:
                first_flags = run[2]
            count += run[1]
    if count == 0 or first_flags is None:
        raise MediaError("fragment without samples")
    return Fragment(data, decode_time, duration, count, not first_flags & NON_SYNC_SAMPLE)


def _read_trun(
    data: bytes, payload: int, default_duration: int, default_flags: int
) -> tuple[int, int, int]:
    """Total duration, sample count and first-sample flags of one ``trun`` box."""
    _, flags = _full_box(data, payload)
    count = _U32.unpack_from(data, payload + 4)[0]
    pos = payload + 8
    pos += 4 if flags & 0x001 else 0  # data-offset
    first_flags: int | None = None
    if flags & 0x004:
        first_flags = _U32.unpack_from(data, pos)[0]
        pos += 4
    per_sample = 4 * bin(flags & 0xF00).count("1")
    if not flags & 0x100:
        duration = default_duration * count
    else:
        duration = sum(_U32.unpack_from(data, pos + i * per_sample)[0] for i in range(count))
    if first_flags is None:
        if flags & 0x400 and count:
            offset = 4 * bin(flags & 0x300).count("1")
            first_flags = _U32.unpack_from(data, pos + offset)[0]
        else:
            first_flags = default_flags
    return duration, count, first_flags


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
