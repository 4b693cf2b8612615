"""FlvDemux: FLV bytes back into tag bodies, in any chunking, bounded, strict."""

from __future__ import annotations

import random

import pytest

from livecast.errors import IngestError
from livecast.ingest.flv import flv_header, flv_tag
from livecast.ingest.flv_demux import FlvDemux
from livecast.ingest.rtmp import MediaMessage

TAGS = [
    MediaMessage("data", 0, b"\x02\x00\x0aonMetaData"),
    MediaMessage("video", 0, bytes([0x17, 0x00, 0, 0, 0]) + b"avcC"),
    MediaMessage("audio", 0, bytes([0xAF, 0x00, 0x11, 0x90])),
    MediaMessage("video", 33, bytes([0x17, 0x01, 0, 0, 0]) + bytes(5000)),
    MediaMessage("audio", 0x1234567, bytes([0xAF, 0x01]) + b"aac"),  # needs the extended byte
    MediaMessage("video", 2**31 - 1, bytes([0x27, 0x01, 0, 0, 0])),
]


def stream() -> bytes:
    return flv_header(audio=True, video=True) + b"".join(
        flv_tag(m.kind, m.timestamp_ms, m.payload) for m in TAGS
    )


def test_round_trip_in_one_piece() -> None:
    demux = FlvDemux()
    assert demux.feed(stream()) == TAGS
    assert demux.tags == len(TAGS)


@pytest.mark.parametrize("seed", range(5))
def test_round_trip_in_any_chunking(seed: int) -> None:
    data = stream()
    rng = random.Random(seed)
    demux, out, offset = FlvDemux(), [], 0
    while offset < len(data):
        step = 1 if seed == 0 else rng.randint(1, 700)
        out += demux.feed(data[offset : offset + step])
        offset += step
    assert out == TAGS


def test_a_tag_over_the_limit_is_refused_from_its_header() -> None:
    demux = FlvDemux(max_tag_bytes=1000)
    header = flv_header(audio=False, video=True)
    big = flv_tag("video", 0, bytes(100_000))[:11]  # only the tag header has arrived
    with pytest.raises(IngestError, match="100000 bytes is over the 1000 limit"):
        demux.feed(header + big)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"GET / HTTP/1.1\r\n", "not FLV"),
        (b"FLV\x02\x05\x00\x00\x00\x09\x00\x00\x00\x00", "version"),
        (b"FLV\x01\x05\x00\x00\x00\x02\x00\x00\x00\x00", "DataOffset"),
        (flv_header(audio=True, video=True) + bytes([7]) + bytes(14), "tag type 7"),
        (flv_header(audio=True, video=True) + flv_tag("audio", 0, b"ab")[:-1] + b"\x09",
         "PreviousTagSize 9 does not match"),
    ],
)  # fmt: skip
def test_what_is_not_flv_is_an_ingest_error(data: bytes, message: str) -> None:
    with pytest.raises(IngestError, match=message):
        FlvDemux().feed(data)
