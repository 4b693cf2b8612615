"""RTMP chunk streams: reading a peer's chunks into messages, writing ours (sans-IO, pure).

Adobe RTMP Specification 1.0 (December 2012), §5.3.1 Chunk Format::

    +--------------+----------------+--------------------+--------------+
    | Basic Header | Message Header | Extended Timestamp |  Chunk Data  |
    +--------------+----------------+--------------------+--------------+

* §5.3.1.1 Basic Header — ``fmt(2) | cs id(6)``; "Chunk stream IDs 2-63 can be encoded in the
  1-byte version of this field"; cs id 0 means one more byte (ID 64-319, ``byte + 64``), cs id 1
  two more (ID 64-65599, ``third byte * 256 + second byte + 64``).
* §5.3.1.2 Message Header — fmt 0: ``timestamp(3) | message length(3) | message type id(1) |
  msg stream id(4, little endian)``, 11 bytes; fmt 1: ``timestamp delta(3) | message length(3) |
  message type id(1)``, 7 bytes, "the message stream ID is not included; this chunk takes the
  same stream ID as the preceding chunk"; fmt 2: ``timestamp delta(3)``; fmt 3: nothing, "all
  chunks of a message except the first one should use this type", and a type-3 chunk that
  *starts* a message repeats the previous message's length, type, stream and delta.
* §5.3.1.3 Extended Timestamp — present when the 3-byte field is ``0xFFFFFF``; this reader, like
  FFmpeg's and the Flash Media Server's writers, also expects it in the type-3 chunks that follow
  such a header.
* "If the delta between the first message and the second message is same as the timestamp of the
  first message, then a chunk of Type 3 could immediately follow the chunk of Type 0": after a
  type-0 header, the delta a type-3 message inherits is that header's timestamp.

Timestamps are 32-bit and wrap (§5.3.1.3: "timestamps ... are relative to an unspecified epoch …
MUST be able to wrap"): the absolute time of a message is the unsigned sum modulo 2**32.

:class:`ChunkReader` is bounded: a message longer than ``max_message_bytes`` is refused when its
header arrives, before any of it is buffered, and the messages in progress on all chunk streams
together may announce at most twice that. Every violation is an
:class:`~livecast.errors.IngestError`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from livecast.errors import IngestError

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "MAX_CHUNK_SIZE",
    "ChunkReader",
    "ChunkWriter",
    "Message",
    "MessageType",
]

DEFAULT_CHUNK_SIZE = 128  # §5.4.1: "The maximum chunk size defaults to 128 bytes"
MAX_CHUNK_SIZE = 16 * 1024 * 1024  # larger sizes are accepted and capped: no message is larger
MAX_MESSAGE_LENGTH = 0xFFFFFF  # the message length field is 3 bytes
EXTENDED = 0xFFFFFF
HEADER_SIZES = (11, 7, 3, 0)  # message header bytes by fmt

_U32 = struct.Struct(">I")
_U32LE = struct.Struct("<I")


class MessageType:
    """RTMP message type ids (§5.4 protocol control, §6.2 user control, §7.1 the rest)."""

    SET_CHUNK_SIZE = 1
    ABORT = 2
    ACKNOWLEDGEMENT = 3
    USER_CONTROL = 4
    WINDOW_ACK_SIZE = 5
    SET_PEER_BANDWIDTH = 6
    AUDIO = 8
    VIDEO = 9
    DATA_AMF3 = 15
    SHARED_OBJECT_AMF3 = 16
    COMMAND_AMF3 = 17
    DATA_AMF0 = 18
    SHARED_OBJECT_AMF0 = 19
    COMMAND_AMF0 = 20
    AGGREGATE = 22


@dataclass(frozen=True, slots=True)
class Message:
    """One reassembled RTMP message; ``timestamp`` is absolute, unsigned 32-bit."""

    type_id: int
    stream_id: int
    timestamp: int
    payload: bytes
    chunk_stream_id: int


@dataclass(slots=True)
class _ChunkStream:
    """What a chunk stream remembers from its last header (§5.3.1.2)."""

    timestamp: int = 0
    delta: int = 0
    length: int = 0
    type_id: int = 0
    stream_id: int = 0
    extended: bool = False  # the last fmt 0/1/2 header used the extended timestamp
    partial: bytearray | None = None  # the message being reassembled


@dataclass(frozen=True, slots=True)
class _Header:
    fmt: int
    csid: int
    size: int  # bytes of basic + message header + extended timestamp
    ts_field: int = 0  # timestamp or delta (the extended one if the 3-byte field was 0xFFFFFF)
    extended: bool = False
    length: int = 0
    type_id: int = 0
    stream_id: int = 0


class ChunkReader:
    """Peer chunks in, complete messages out. Call :meth:`feed`, then :meth:`next_message` until
    it returns None (a protocol control message such as Set Chunk Size must be acted on before
    the next chunk is read — hence one message at a time)."""

    def __init__(self, *, max_message_bytes: int) -> None:
        if max_message_bytes < 1:
            raise ValueError("max_message_bytes must be positive")
        self.max_message_bytes = max_message_bytes
        self._chunk_size = DEFAULT_CHUNK_SIZE
        self._buffer = bytearray()
        self._pos = 0
        self._streams: dict[int, _ChunkStream] = {}
        self._pending = 0  # announced bytes of the messages in progress

    @property
    def chunk_size(self) -> int:
        return self._chunk_size

    def set_chunk_size(self, size: int) -> None:
        """§5.4.1 Set Chunk Size: "The maximum chunk size can be 65536 bytes ... [the field is] 31
        bits ... Valid sizes are 1 to 2147483647 (0x7FFFFFFF) inclusive"."""
        if not 1 <= size <= 0x7FFFFFFF:
            raise IngestError(f"Set Chunk Size {size} is outside 1..2147483647")
        self._chunk_size = min(size, MAX_CHUNK_SIZE)

    def abort(self, csid: int) -> None:
        """§5.4.2 Abort Message: discard the partly received message on chunk stream ``csid``."""
        stream = self._streams.get(csid)
        if stream is not None and stream.partial is not None:
            self._pending -= stream.length
            stream.partial = None

    @property
    def buffered(self) -> int:
        """Bytes received and not yet read as a complete chunk."""
        return len(self._buffer) - self._pos

    def feed(self, data: bytes) -> None:
        if self._pos:
            del self._buffer[: self._pos]
            self._pos = 0
        self._buffer += data

    def next_message(self) -> Message | None:
        """The next complete message, or None when the buffered bytes end inside a chunk."""
        while (header := self._read_header()) is not None:
            consumed, message = self._read_chunk(header)
            if not consumed:
                return None
            if message is not None:
                return message
        return None

    # -------------------------------------------------------------- one chunk

    def _read_header(self) -> _Header | None:
        buf, pos = self._buffer, self._pos
        avail = len(buf) - pos
        if avail < 1:
            return None
        fmt, csid, basic = buf[pos] >> 6, buf[pos] & 0x3F, 1
        if csid in (0, 1):
            basic = 2 if csid == 0 else 3
            if avail < basic:
                return None
            csid = 64 + buf[pos + 1] + (buf[pos + 2] << 8 if csid == 1 else 0)
        size = basic + HEADER_SIZES[fmt]
        if avail < size:
            return None
        stream = self._streams.get(csid)
        if fmt != 0 and stream is None:
            raise IngestError(f"chunk stream {csid}: a type {fmt} chunk before any type 0 chunk")
        p = pos + basic
        if fmt == 3:
            assert stream is not None
            extended = stream.extended
            header = _Header(fmt, csid, size)
        else:
            ts_field = int.from_bytes(buf[p : p + 3], "big")
            extended = ts_field == EXTENDED
            header = _Header(
                fmt, csid, size, ts_field, False, *self._length_type_stream(fmt, p, stream)
            )
        if extended:
            if avail < size + 4:
                return None
            ts_field = _U32.unpack_from(buf, pos + size)[0]
            header = _Header(
                fmt, csid, size + 4, ts_field, True, header.length, header.type_id, header.stream_id
            )
        return header

    def _length_type_stream(
        self, fmt: int, p: int, stream: _ChunkStream | None
    ) -> tuple[int, int, int]:
        buf = self._buffer
        if fmt == 2:
            assert stream is not None
            return stream.length, stream.type_id, stream.stream_id
        length = int.from_bytes(buf[p + 3 : p + 6], "big")
        type_id = buf[p + 6]
        if fmt == 0:
            stream_id: int = _U32LE.unpack_from(buf, p + 7)[0]
        else:
            assert stream is not None
            stream_id = stream.stream_id
        return length, type_id, stream_id

    def _read_chunk(self, header: _Header) -> tuple[bool, Message | None]:
        """Consume one chunk if all of it is buffered: (consumed, the message it completes)."""
        stream = self._streams.get(header.csid) or _ChunkStream()
        starts = stream.partial is None
        if not starts and header.fmt != 3:
            raise IngestError(
                f"chunk stream {header.csid}: a type {header.fmt} header inside a message "
                f"({len(stream.partial or b'')} of {stream.length} bytes received)"
            )
        length = header.length if header.fmt in (0, 1) else stream.length
        if starts:
            self._check_length(header.csid, length)
        received = 0 if stream.partial is None else len(stream.partial)
        take = min(self._chunk_size, length - received)
        start = self._pos + header.size
        if len(self._buffer) - start < take:
            return False, None
        self._streams[header.csid] = stream
        if starts:
            self._start_message(stream, header)
        assert stream.partial is not None
        stream.partial += self._buffer[start : start + take]
        self._pos = start + take
        if len(stream.partial) < stream.length:
            return True, None
        return True, self._finish(stream, header.csid)

    def _check_length(self, csid: int, length: int) -> None:
        if length > self.max_message_bytes:
            raise IngestError(
                f"chunk stream {csid}: a message of {length} bytes "
                f"(more than the {self.max_message_bytes} allowed)"
            )
        if self._pending + length > 2 * self.max_message_bytes:
            raise IngestError(
                f"chunk stream {csid}: messages in progress would hold "
                f"{self._pending + length} bytes (more than {2 * self.max_message_bytes})"
            )

    def _start_message(self, stream: _ChunkStream, header: _Header) -> None:
        if header.fmt == 0:
            stream.timestamp = header.ts_field
            stream.delta = header.ts_field  # what a following type-3 message adds (see above)
        elif header.fmt in (1, 2):
            stream.delta = header.ts_field
            stream.timestamp = (stream.timestamp + header.ts_field) & 0xFFFFFFFF
        else:
            stream.timestamp = (stream.timestamp + stream.delta) & 0xFFFFFFFF
        if header.fmt != 3:
            stream.extended = header.extended
            stream.length, stream.type_id = header.length, header.type_id
            stream.stream_id = header.stream_id
        stream.partial = bytearray()
        self._pending += stream.length

    def _finish(self, stream: _ChunkStream, csid: int) -> Message:
        assert stream.partial is not None
        payload = bytes(stream.partial)
        stream.partial = None
        self._pending -= stream.length
        return Message(stream.type_id, stream.stream_id, stream.timestamp, payload, csid)


class ChunkWriter:
    """Our messages out as chunks: a type-0 header, then type-3 chunks of ``chunk_size``."""

    def __init__(self) -> None:
        self.chunk_size = DEFAULT_CHUNK_SIZE

    def write(
        self, csid: int, type_id: int, payload: bytes, *, stream_id: int = 0, timestamp: int = 0
    ) -> bytes:
        if not 2 <= csid <= 65599:
            raise ValueError(f"chunk stream id {csid} is outside 2..65599")
        if len(payload) > MAX_MESSAGE_LENGTH:
            raise ValueError(f"an RTMP message is at most {MAX_MESSAGE_LENGTH} bytes")
        timestamp &= 0xFFFFFFFF
        extended = timestamp >= EXTENDED
        header = bytearray(_basic_header(0, csid))
        header += min(timestamp, EXTENDED).to_bytes(3, "big")
        header += len(payload).to_bytes(3, "big") + bytes([type_id]) + _U32LE.pack(stream_id)
        ext = _U32.pack(timestamp) if extended else b""
        parts = [bytes(header), ext]
        continuation = _basic_header(3, csid) + ext
        for offset in range(0, max(len(payload), 1), self.chunk_size):
            if offset:
                parts.append(continuation)
            parts.append(payload[offset : offset + self.chunk_size])
        return b"".join(parts)


def _basic_header(fmt: int, csid: int) -> bytes:
    if csid < 64:
        return bytes([fmt << 6 | csid])
    if csid < 320:
        return bytes([fmt << 6, csid - 64])
    return bytes([fmt << 6 | 1, (csid - 64) & 0xFF, (csid - 64) >> 8])
