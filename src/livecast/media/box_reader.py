"""Bounds-checked reading of ISO BMFF boxes — the one reader behind every fMP4 parse.

ISO/IEC 14496-12 §4.2 box layout: ``size(32) type(32) [largesize(64)] payload``; ``size == 1``
means a 64-bit ``largesize`` follows; ``size == 0`` (box extends to end of file) is refused, a
live stream has no end of file.

* :func:`iter_boxes` walks the boxes laid end to end in a byte range; :func:`find_box` and
  :func:`require_box` follow a path of box types down the tree.
* :class:`BoxReader` is a cursor over one box's payload. Every read is checked against the box's
  end, so a corrupt size, count or flag raises :class:`~livecast.errors.MediaError` naming the box,
  the field and the offset — never ``struct.error`` or ``IndexError``, which would escape the
  encoder-restart path and stall a rendition.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from functools import lru_cache

from livecast.errors import MediaError

__all__ = [
    "BoxReader",
    "Buffer",
    "find_box",
    "i32_table",
    "iter_boxes",
    "open_box",
    "require_box",
    "u32_table",
]

Buffer = bytes | bytearray | memoryview

_U8 = struct.Struct(">B")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_I32 = struct.Struct(">i")
_U64 = struct.Struct(">Q")


def _name(box_type: bytes) -> str:
    return box_type.decode("latin-1")


def iter_boxes(
    data: Buffer, start: int = 0, end: int | None = None
) -> Iterator[tuple[bytes, int, int]]:
    """Yield ``(type, payload_start, box_end)`` for each box in ``data[start:end]``; the boxes
    must fill the range exactly."""
    end = len(data) if end is None else end
    if not 0 <= start <= end <= len(data):
        raise MediaError(f"box range [{start}, {end}) lies outside the {len(data)} bytes read")
    pos = start
    while pos + 8 <= end:
        size = _U32.unpack_from(data, pos)[0]
        box_type = bytes(data[pos + 4 : pos + 8])
        header = 8
        if size == 1:
            if pos + 16 > end:
                raise MediaError(f"truncated largesize header of {box_type!r} at {pos}")
            size = _U64.unpack_from(data, pos + 8)[0]
            header = 16
        if size < header or pos + size > end:
            raise MediaError(f"box {box_type!r} at {pos} has bad size {size}")
        yield box_type, pos + header, pos + size
        pos += size
    if pos != end:
        raise MediaError(f"{end - pos} trailing bytes after the last box at {pos}")


def find_box(
    data: Buffer, path: list[bytes], start: int = 0, end: int | None = None
) -> tuple[int, int] | None:
    """The first box along ``path`` (e.g. ``[b"moov", b"trak"]``) as ``(payload, end)``."""
    for box_type, payload, box_end in iter_boxes(data, start, end):
        if box_type == path[0]:
            if len(path) == 1:
                return payload, box_end
            return find_box(data, path[1:], payload, box_end)
    return None


def require_box(
    data: Buffer, path: list[bytes], start: int = 0, end: int | None = None
) -> tuple[int, int]:
    """:func:`find_box`, with a MediaError when the box is missing."""
    found = find_box(data, path, start, end)
    if found is None:
        raise MediaError("missing box " + "/".join(_name(p) for p in path))
    return found


def open_box(data: Buffer, path: list[bytes], start: int = 0, end: int | None = None) -> BoxReader:
    """A :class:`BoxReader` over the payload of the box at ``path`` (MediaError when missing)."""
    payload, box_end = require_box(data, path, start, end)
    return BoxReader(data, path[-1], payload, box_end)


@lru_cache(maxsize=64)
def u32_table(count: int) -> struct.Struct:
    """``count`` big-endian unsigned 32-bit words (one compiled layout per count)."""
    return struct.Struct(f">{count}I")


@lru_cache(maxsize=64)
def i32_table(count: int) -> struct.Struct:
    """``count`` big-endian signed 32-bit words (one compiled layout per count)."""
    return struct.Struct(f">{count}i")


class BoxReader:
    """A cursor over the payload ``data[start:end]`` of one box of type ``box_type``.

    Each read names the field it reads (``what``), so that a read past ``end`` raises a MediaError
    saying which field of which box, at which offset, the data is too short for.
    """

    __slots__ = ("box_type", "data", "end", "pos", "start")

    def __init__(self, data: Buffer, box_type: bytes, start: int, end: int) -> None:
        if not 0 <= start <= end <= len(data):
            raise MediaError(
                f"{_name(box_type)} payload [{start}, {end}) lies outside the {len(data)} bytes"
            )
        self.data = data
        self.box_type = box_type
        self.start = start
        self.end = end
        self.pos = start

    @classmethod
    def over(cls, payload: Buffer, box_type: bytes) -> BoxReader:
        """A reader over a whole buffer holding one box's payload."""
        return cls(payload, box_type, 0, len(payload))

    @property
    def remaining(self) -> int:
        return self.end - self.pos

    def take(self, size: int, what: str) -> int:
        """Claim the next ``size`` bytes for the field ``what``; their offset in ``data``."""
        pos = self.pos
        if size < 0 or pos + size > self.end:
            raise self._short(size, what)
        self.pos = pos + size
        return pos

    def _short(self, size: int, what: str) -> MediaError:
        return MediaError(
            f"{_name(self.box_type)} box (payload at {self.start}): {what} needs {size} bytes"
            f" at offset {self.pos}, only {self.end - self.pos} left before the box end at"
            f" {self.end}"
        )

    def unpack(self, layout: struct.Struct, what: str) -> tuple[int, ...]:
        """The integers of ``layout`` (big-endian, integer codes only) read at the cursor."""
        values: tuple[int, ...] = layout.unpack_from(self.data, self.take(layout.size, what))
        return values

    # The fixed-width reads check the bounds inline: they run for every field of every box.

    def u8(self, what: str) -> int:
        pos = self.pos
        if pos + 1 > self.end:
            raise self._short(1, what)
        self.pos = pos + 1
        value: int = _U8.unpack_from(self.data, pos)[0]
        return value

    def u16(self, what: str) -> int:
        pos = self.pos
        if pos + 2 > self.end:
            raise self._short(2, what)
        self.pos = pos + 2
        value: int = _U16.unpack_from(self.data, pos)[0]
        return value

    def u32(self, what: str) -> int:
        pos = self.pos
        if pos + 4 > self.end:
            raise self._short(4, what)
        self.pos = pos + 4
        value: int = _U32.unpack_from(self.data, pos)[0]
        return value

    def i32(self, what: str) -> int:
        pos = self.pos
        if pos + 4 > self.end:
            raise self._short(4, what)
        self.pos = pos + 4
        value: int = _I32.unpack_from(self.data, pos)[0]
        return value

    def u64(self, what: str) -> int:
        pos = self.pos
        if pos + 8 > self.end:
            raise self._short(8, what)
        self.pos = pos + 8
        value: int = _U64.unpack_from(self.data, pos)[0]
        return value

    def read_bytes(self, size: int, what: str) -> bytes:
        pos = self.take(size, what)
        return bytes(self.data[pos : pos + size])

    def skip(self, size: int, what: str) -> None:
        self.take(size, what)

    def full_box_header(self) -> tuple[int, int]:
        """``(version, flags)`` of a FullBox (§4.2): an 8-bit version and 24 bits of flags."""
        word = self.u32("version and flags")
        return word >> 24, word & 0xFF_FFFF

    def children(self) -> Iterator[tuple[bytes, int, int]]:
        """:func:`iter_boxes` over the rest of the payload (the child boxes)."""
        return iter_boxes(self.data, self.pos, self.end)

    def open_child(self, path: list[bytes]) -> BoxReader:
        """A reader over the first box along ``path`` among the children (MediaError if none)."""
        return open_box(self.data, path, self.pos, self.end)
