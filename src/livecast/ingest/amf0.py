"""AMF0 — the value encoding of RTMP commands and FLV script data (pure).

Action Message Format, AMF0 specification (Adobe, 2007), §2.1: "An AMF 0 value is a type marker
(one byte) followed by the type's data." The markers this module reads and writes:

====  ==============  =====================================================================
0x00  number          8-byte IEEE-754 double, network byte order → :class:`float`
0x01  boolean         one byte, 0 is false → :class:`bool`
0x02  string          ``U16`` length + UTF-8 → :class:`str`
0x03  object          properties (``U16`` name + value) up to ``00 00 09`` → :class:`dict`
0x05  null            → ``None``
0x06  undefined       → :data:`UNDEFINED`
0x08  ECMA array      ``U32`` count (a hint only), then properties as an object → :class:`EcmaArray`
0x09  object end      only after an empty property name; anywhere else it is an error
0x0A  strict array    ``U32`` count + that many values → :class:`list`
0x0C  long string     ``U32`` length + UTF-8 → :class:`str`
====  ==============  =====================================================================

Anything else (references, dates, XML, typed objects, the switch to AMF3) is refused with an
:class:`~livecast.errors.IngestError`, as is a truncated value, invalid UTF-8 or nesting deeper
than :data:`MAX_DEPTH`: the decoder reads what a publisher sends, so a malformed command can never
raise ``struct.error``, ``IndexError`` or exhaust the stack.
"""

from __future__ import annotations

import enum
import struct
from typing import TypeAlias

from livecast.errors import IngestError

__all__ = [
    "MAX_DEPTH",
    "UNDEFINED",
    "AmfValue",
    "EcmaArray",
    "Undefined",
    "decode_values",
    "encode_value",
    "encode_values",
]

MAX_DEPTH = 32  # objects and arrays nested deeper than this are refused

NUMBER = 0x00
BOOLEAN = 0x01
STRING = 0x02
OBJECT = 0x03
NULL = 0x05
UNDEFINED_MARKER = 0x06
ECMA_ARRAY = 0x08
OBJECT_END = 0x09
STRICT_ARRAY = 0x0A
LONG_STRING = 0x0C

_NAMES = {
    0x04: "movieclip (reserved)",
    0x07: "reference",
    0x0B: "date",
    0x0D: "unsupported",
    0x0E: "recordset (reserved)",
    0x0F: "XML document",
    0x10: "typed object",
    0x11: "AVM+ (switch to AMF3)",
}

_DOUBLE = struct.Struct(">d")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")


class Undefined(enum.Enum):
    """AMF0 ``undefined`` (distinct from ``null``, which is ``None``)."""

    UNDEFINED = "undefined"

    def __repr__(self) -> str:
        return "UNDEFINED"


UNDEFINED = Undefined.UNDEFINED


class EcmaArray(dict[str, "AmfValue"]):
    """An AMF0 ECMA array: an associative array, kept apart from an object so that it encodes
    back with marker 0x08 (FLV ``onMetaData`` is one)."""


AmfValue: TypeAlias = (
    float | bool | str | Undefined | EcmaArray | dict[str, "AmfValue"] | list["AmfValue"] | None
)


# ------------------------------------------------------------------ decoding


class _Reader:
    """A bounds-checked cursor: every read names what was cut short."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, size: int, what: str) -> bytes:
        end = self.pos + size
        if end > len(self.data):
            raise IngestError(
                f"AMF0 {what} truncated: needs {size} bytes at offset {self.pos}, "
                f"{len(self.data) - self.pos} left"
            )
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def u8(self, what: str) -> int:
        return self.take(1, what)[0]

    def u16(self, what: str) -> int:
        value: int = _U16.unpack(self.take(2, what))[0]
        return value

    def u32(self, what: str) -> int:
        value: int = _U32.unpack(self.take(4, what))[0]
        return value

    def text(self, size: int, what: str) -> str:
        raw = self.take(size, what)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise IngestError(f"AMF0 {what} at offset {self.pos - size} is not UTF-8") from exc


def decode_values(data: bytes) -> list[AmfValue]:
    """Every AMF0 value in ``data``, in order (an RTMP command or data message body)."""
    reader = _Reader(bytes(data))
    values: list[AmfValue] = []
    while reader.pos < len(reader.data):
        values.append(_decode(reader, 0))
    return values


def _decode(reader: _Reader, depth: int) -> AmfValue:
    at = reader.pos
    marker = reader.u8("type marker")
    if marker == NUMBER:
        value: float = _DOUBLE.unpack(reader.take(8, "number"))[0]
        return value
    if marker == BOOLEAN:
        return reader.u8("boolean") != 0
    if marker == STRING:
        return reader.text(reader.u16("string length"), "string")
    if marker == LONG_STRING:
        return reader.text(reader.u32("long string length"), "long string")
    if marker == NULL:
        return None
    if marker == UNDEFINED_MARKER:
        return UNDEFINED
    if marker in (OBJECT, ECMA_ARRAY, STRICT_ARRAY):
        if depth >= MAX_DEPTH:
            raise IngestError(f"AMF0 values nested deeper than {MAX_DEPTH} at offset {at}")
        return _decode_container(reader, marker, depth + 1)
    if marker == OBJECT_END:
        raise IngestError(f"AMF0 object end marker outside an object at offset {at}")
    name = _NAMES.get(marker, "unknown")
    raise IngestError(f"AMF0 type marker 0x{marker:02x} ({name}) at offset {at} is not supported")


def _decode_container(reader: _Reader, marker: int, depth: int) -> AmfValue:
    if marker == OBJECT:
        return _decode_properties(reader, {}, depth)
    if marker == ECMA_ARRAY:
        reader.u32("ECMA array count")  # a hint; the properties end with the end marker
        array = EcmaArray()
        _decode_properties(reader, array, depth)
        return array
    count = reader.u32("strict array count")
    if count > len(reader.data) - reader.pos:  # every value takes at least one byte
        raise IngestError(f"AMF0 strict array of {count} values is longer than its data")
    return [_decode(reader, depth) for _ in range(count)]


def _decode_properties(
    reader: _Reader, into: dict[str, AmfValue], depth: int
) -> dict[str, AmfValue]:
    """§2.5: "a set of name/value pairs ... terminated by an empty string name followed by the
    object-end-marker"."""
    while True:
        name = reader.text(reader.u16("property name length"), "property name")
        if not name and reader.pos < len(reader.data) and reader.data[reader.pos] == OBJECT_END:
            reader.pos += 1
            return into
        into[name] = _decode(reader, depth)


# ------------------------------------------------------------------ encoding


def encode_values(*values: AmfValue) -> bytes:
    """The AMF0 encoding of ``values`` laid end to end (a command: name, transaction id, …)."""
    return b"".join(encode_value(value) for value in values)


def encode_value(value: AmfValue, depth: int = 0) -> bytes:
    """One AMF0 value. ``int`` encodes as a number; a ``str`` longer than 65535 UTF-8 bytes as a
    long string; :class:`EcmaArray` with marker 0x08, any other ``dict`` as an object."""
    if depth > MAX_DEPTH:
        raise ValueError(f"AMF0 values nested deeper than {MAX_DEPTH}")
    if value is None:
        return bytes([NULL])
    if value is UNDEFINED:
        return bytes([UNDEFINED_MARKER])
    if isinstance(value, bool):
        return bytes([BOOLEAN, int(value)])
    if isinstance(value, int | float):
        return bytes([NUMBER]) + _DOUBLE.pack(float(value))
    if isinstance(value, str):
        return _encode_string(value)
    if isinstance(value, EcmaArray):
        body = _encode_properties(value, depth)
        return bytes([ECMA_ARRAY]) + _U32.pack(len(value)) + body
    if isinstance(value, dict):
        return bytes([OBJECT]) + _encode_properties(value, depth)
    if isinstance(value, list):
        items = b"".join(encode_value(item, depth + 1) for item in value)
        return bytes([STRICT_ARRAY]) + _U32.pack(len(value)) + items
    raise TypeError(f"cannot encode {type(value).__name__} as AMF0")


def _encode_string(value: str) -> bytes:
    raw = value.encode("utf-8")
    if len(raw) <= 0xFFFF:
        return bytes([STRING]) + _U16.pack(len(raw)) + raw
    return bytes([LONG_STRING]) + _U32.pack(len(raw)) + raw


def _encode_name(name: str) -> bytes:
    raw = name.encode("utf-8")
    if len(raw) > 0xFFFF:
        raise ValueError("an AMF0 property name is at most 65535 UTF-8 bytes")
    return _U16.pack(len(raw)) + raw


def _encode_properties(properties: dict[str, AmfValue], depth: int) -> bytes:
    parts = [
        _encode_name(name) + encode_value(item, depth + 1) for name, item in properties.items()
    ]
    return b"".join(parts) + b"\x00\x00" + bytes([OBJECT_END])
