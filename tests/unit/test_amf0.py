"""AMF0: byte layout, round trips, and malformed input that must only ever raise IngestError."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livecast.errors import IngestError
from livecast.ingest.amf0 import (
    MAX_DEPTH,
    UNDEFINED,
    AmfValue,
    EcmaArray,
    decode_values,
    encode_value,
    encode_values,
)


def test_byte_layout_of_a_connect_command() -> None:
    data = encode_values("connect", 1, {"app": "live"}, None, UNDEFINED, True)
    assert data == (
        b"\x02\x00\x07connect"  # string marker, U16 length, UTF-8
        + b"\x00"
        + struct.pack(">d", 1.0)  # number: a big-endian double
        + b"\x03\x00\x03app\x02\x00\x04live\x00\x00\x09"  # object, ended by "" + 0x09
        + b"\x05"  # null
        + b"\x06"  # undefined
        + b"\x01\x01"  # boolean true
    )


def test_ecma_and_strict_arrays_keep_their_markers() -> None:
    ecma = encode_value(EcmaArray(duration=2.0))
    assert ecma[:5] == b"\x08\x00\x00\x00\x01"  # marker, U32 count
    assert ecma.endswith(b"\x00\x00\x09")
    strict = encode_value([1.0, "a"])
    assert strict[:5] == b"\x0a\x00\x00\x00\x02"
    decoded = decode_values(ecma + strict)
    assert isinstance(decoded[0], EcmaArray)
    assert decoded == [{"duration": 2.0}, [1.0, "a"]]


def test_long_strings() -> None:
    text = "é" * 40_000  # 80 000 UTF-8 bytes: more than a U16 length
    data = encode_value(text)
    assert data[0] == 0x0C
    assert struct.unpack(">I", data[1:5])[0] == 80_000
    assert decode_values(data) == [text]
    assert decode_values(b"\x0c\x00\x00\x00\x02hi") == ["hi"]


def test_nested_round_trip() -> None:
    value: AmfValue = {
        "app": "live",
        "nested": {"list": [1.5, None, UNDEFINED, {"deep": EcmaArray(x=-3.0)}], "flag": False},
        "": "an empty property name is allowed",
        "meta": EcmaArray(width=1920.0, codec="avc1"),
    }
    decoded = decode_values(encode_values("onMetaData", value))
    assert decoded == ["onMetaData", value]
    meta = decoded[1]
    assert isinstance(meta, dict)
    assert isinstance(meta["meta"], EcmaArray)
    nested = meta["nested"]
    assert isinstance(nested, dict) and not isinstance(nested, EcmaArray)
    assert decoded[1] is not value


def test_ecma_array_count_is_only_a_hint() -> None:
    data = b"\x08\x00\x00\x00\x00" + b"\x00\x01a\x00" + struct.pack(">d", 7.0) + b"\x00\x00\x09"
    assert decode_values(data) == [{"a": 7.0}]


@pytest.mark.parametrize("value", ["connect", 3.25, {"a": [1.0, {"b": "c"}]}, EcmaArray(k="v")])
def test_every_truncation_is_an_ingest_error(value: AmfValue) -> None:
    data = encode_value(value)
    for cut in range(1, len(data)):
        with pytest.raises(IngestError, match="AMF0"):
            decode_values(data[:cut])


@pytest.mark.parametrize(
    ("marker", "name"),
    [(0x07, "reference"), (0x0B, "date"), (0x0D, "unsupported"), (0x11, "AMF3"), (0x42, "unknown")],
)
def test_unsupported_markers(marker: int, name: str) -> None:
    with pytest.raises(IngestError, match=name):
        decode_values(bytes([marker, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]))


def test_object_end_outside_an_object() -> None:
    with pytest.raises(IngestError, match="object end"):
        decode_values(b"\x09")


def test_invalid_utf8_is_translated() -> None:
    with pytest.raises(IngestError, match="UTF-8") as caught:
        decode_values(b"\x02\x00\x02\xff\xfe")
    assert isinstance(caught.value.__cause__, UnicodeDecodeError)


def test_nesting_is_bounded() -> None:
    ok: AmfValue = "leaf"
    for _ in range(MAX_DEPTH):
        ok = {"x": ok}
    assert decode_values(encode_value(ok)) == [ok]
    deep = b"\x03\x00\x01x" * (MAX_DEPTH + 1) + b"\x05"
    with pytest.raises(IngestError, match="nested"):
        decode_values(deep)
    # far deeper than Python's recursion limit: still a clean IngestError
    with pytest.raises(IngestError, match="nested"):
        decode_values(b"\x0a\x00\x00\x00\x01" * 5000)


def test_strict_array_count_longer_than_the_data() -> None:
    with pytest.raises(IngestError, match="strict array"):
        decode_values(b"\x0a\xff\xff\xff\xff\x05")


def test_encoding_refuses_what_amf0_cannot_hold() -> None:
    with pytest.raises(TypeError):
        encode_value(object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="property name"):
        encode_value({"x" * 70_000: 1.0})


# ------------------------------------------------------------------ properties

_leaves = (
    st.none()
    | st.just(UNDEFINED)
    | st.booleans()
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
)
values = st.recursive(
    _leaves,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=8), children, max_size=4)
        | st.dictionaries(st.text(max_size=8), children, max_size=4).map(EcmaArray)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(st.lists(values, max_size=5))
def test_round_trip_property(items: list[AmfValue]) -> None:
    decoded = decode_values(encode_values(*items))
    assert decoded == items
    assert encode_values(*decoded) == encode_values(*items)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_only_raise_ingest_error(data: bytes) -> None:
    with contextlib.suppress(IngestError):
        decode_values(data)
