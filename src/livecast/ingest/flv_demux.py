"""Reading an FLV byte stream incrementally into tag bodies (pure, sans-IO).

The SRT ingest (``ingest/srt_ingest.py``) has FFmpeg remux the encoder's MPEG-TS into FLV on a
pipe; :class:`FlvDemux` turns those bytes back into the same
:class:`~livecast.ingest.rtmp.MediaMessage` objects the RTMP server produces, so everything after
the protocol (relay, switch, ladder) does not care which one carried the show.

Adobe Flash Video File Format Specification v10.1, Annex E:

* E.2 The FLV header — ``Signature "FLV" | Version 1 | TypeFlags | DataOffset UI32``:
  "DataOffset: The length of this header in bytes" (9 for version 1).
* E.3 The FLV file body — ``PreviousTagSize0 UI32 = 0``, then each tag followed by
  ``PreviousTagSizeN``: "Size of previous tag, including its header, in bytes. For FLV version 1,
  this value is 11 plus the DataSize of the previous tag."
* E.4.1 FLV tag — ``Reserved(2) | Filter(1) | TagType(5) | DataSize UI24 | Timestamp UI24 |
  TimestampExtended UI8 | StreamID UI24 | Data``; "TagType: 8 = audio, 9 = video, 18 = script
  data"; "TimestampExtended: Extension of the Timestamp field to form a SI32 value. This field
  represents the upper 8 bits, while the previous Timestamp field represents the lower 24 bits".

Bounded: one tag's ``DataSize`` above ``max_tag_bytes`` is refused from its header, before its
body is buffered. Anything that is not FLV — a bad signature, an unknown tag type, a
``PreviousTagSize`` that does not match — raises :class:`~livecast.errors.IngestError`.
"""

from __future__ import annotations

import struct

from livecast.errors import IngestError
from livecast.ingest.rtmp import MediaKind, MediaMessage

__all__ = ["DEFAULT_MAX_TAG_BYTES", "FlvDemux"]

DEFAULT_MAX_TAG_BYTES = 16 * 1024 * 1024
_KINDS: dict[int, MediaKind] = {8: "audio", 9: "video", 18: "data"}
_TAG_HEADER = 11


class FlvDemux:
    def __init__(self, max_tag_bytes: int = DEFAULT_MAX_TAG_BYTES) -> None:
        self.max_tag_bytes = max_tag_bytes
        self._buffer = bytearray()
        self._header_done = False
        self._previous_size = 0  # the PreviousTagSize expected next
        self.tags = 0
        self.bytes = 0

    def feed(self, data: bytes) -> list[MediaMessage]:
        """The complete tags ``data`` finishes (the rest is kept for the next call)."""
        self._buffer += data
        self.bytes += len(data)
        messages: list[MediaMessage] = []
        if not self._header_done and not self._read_header():
            return messages
        while (message := self._next_tag()) is not None:
            messages.append(message)
        return messages

    def _read_header(self) -> bool:
        if len(self._buffer) < 9:
            if not b"FLV".startswith(bytes(self._buffer[:3])):
                raise IngestError("not FLV: the stream does not start with 'FLV'")
            return False
        if self._buffer[:3] != b"FLV" or self._buffer[3] != 1:
            raise IngestError("not FLV version 1: bad signature or version")
        offset = struct.unpack(">I", self._buffer[5:9])[0]
        if not 9 <= offset <= 1024:
            raise IngestError(f"FLV DataOffset {offset} is not a header length")
        if len(self._buffer) < offset + 4:
            return False
        if struct.unpack(">I", self._buffer[offset : offset + 4])[0] != 0:
            raise IngestError("FLV PreviousTagSize0 is not 0")
        del self._buffer[: offset + 4]
        self._header_done = True
        return True

    def _next_tag(self) -> MediaMessage | None:
        if len(self._buffer) < _TAG_HEADER:
            return None
        tag_type = self._buffer[0] & 0x1F
        kind = _KINDS.get(tag_type)
        if kind is None:
            raise IngestError(f"FLV tag type {tag_type} is not audio, video or script data")
        size = int.from_bytes(self._buffer[1:4], "big")
        if size > self.max_tag_bytes:
            raise IngestError(f"an FLV tag of {size} bytes is over the {self.max_tag_bytes} limit")
        end = _TAG_HEADER + size
        if len(self._buffer) < end + 4:
            return None
        timestamp = int.from_bytes(self._buffer[4:7], "big") | self._buffer[7] << 24
        if timestamp >= 1 << 31:
            timestamp -= 1 << 32  # SI32
        trailer = struct.unpack(">I", self._buffer[end : end + 4])[0]
        if trailer != end:
            raise IngestError(f"FLV PreviousTagSize {trailer} does not match the tag ({end})")
        payload = bytes(self._buffer[_TAG_HEADER:end])
        del self._buffer[: end + 4]
        self.tags += 1
        return MediaMessage(kind, timestamp, payload)
