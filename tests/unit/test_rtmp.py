"""The sans-IO RTMP server connection against a client scripted here, chunk by chunk.

The client's chunks are built by hand (``chunk`` / ``message`` below, straight from the RTMP 1.0
spec §5.3.1) rather than with the module's own writer, so that the reader is checked against the
spec and not against itself.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livecast.errors import IngestError
from livecast.ingest.amf0 import AmfValue, EcmaArray, decode_values, encode_values
from livecast.ingest.rtmp import (
    ConnectRequested,
    MediaMessage,
    PublishEnded,
    PublishRequested,
    RtmpEvent,
    RtmpServerConnection,
    RtmpState,
)
from livecast.ingest.rtmp_chunks import ChunkReader, ChunkWriter, Message

C1 = bytes(range(256)) * 6  # 1536 bytes
C2 = bytes(1536)
EXT = 0xFFFFFF
AUDIO, VIDEO, DATA, COMMAND = 8, 9, 18, 20
TC_URL = "rtmp://127.0.0.1:1935/live"


# ------------------------------------------------------------------ a scripted client


def basic(fmt: int, csid: int) -> bytes:
    """§5.3.1.1: 1, 2 or 3 bytes."""
    if csid < 64:
        return bytes([fmt << 6 | csid])
    if csid < 320:
        return bytes([fmt << 6, csid - 64])
    return bytes([fmt << 6 | 1, (csid - 64) & 0xFF, (csid - 64) >> 8])


def chunk(
    fmt: int,
    csid: int,
    body: bytes = b"",
    *,
    ts: int = 0,
    length: int = 0,
    type_id: int = 0,
    stream_id: int = 0,
    ext: int | None = None,
) -> bytes:
    """One chunk; ``ts`` is the timestamp (fmt 0) or delta (fmt 1, 2); from 0xFFFFFF on it goes
    into the extended field. ``ext`` forces an extended field (a type-3 chunk after one)."""
    out = basic(fmt, csid)
    if fmt <= 2:
        out += min(ts, EXT).to_bytes(3, "big")
    if fmt <= 1:
        out += length.to_bytes(3, "big") + bytes([type_id])
    if fmt == 0:
        out += stream_id.to_bytes(4, "little")  # the one little-endian field
    if ext is not None:
        out += ext.to_bytes(4, "big")
    elif fmt <= 2 and ts >= EXT:
        out += ts.to_bytes(4, "big")
    return out + body


def message(
    csid: int,
    type_id: int,
    payload: bytes,
    *,
    ts: int = 0,
    stream_id: int = 0,
    fmt: int = 0,
    chunk_size: int = 128,
) -> bytes:
    """A whole message: a type-``fmt`` chunk, then type-3 continuation chunks."""
    pieces = [payload[i : i + chunk_size] for i in range(0, len(payload), chunk_size)] or [b""]
    ext = ts if ts >= EXT else None
    out = chunk(
        fmt, csid, pieces[0], ts=ts, length=len(payload), type_id=type_id, stream_id=stream_id
    )
    for piece in pieces[1:]:
        out += chunk(3, csid, piece, ext=ext)
    return out


def command(name: str, txn: float, *args: AmfValue, stream_id: int = 0, csid: int = 3) -> bytes:
    return message(csid, COMMAND, encode_values(name, txn, *args), stream_id=stream_id)


class Client:
    """Drives a connection; reads the server's chunks back with a ChunkReader."""

    def __init__(self, max_message_bytes: int = 16 * 2**20) -> None:
        self.conn = RtmpServerConnection(max_message_bytes=max_message_bytes)
        self.reader = ChunkReader(max_message_bytes=2**24)

    def send(self, data: bytes) -> list[RtmpEvent]:
        return self.conn.receive_data(data)

    def replies(self) -> list[Message]:
        self.reader.feed(self.conn.data_to_send())
        out = []
        while (reply := self.reader.next_message()) is not None:
            if reply.type_id == 1:
                self.reader.set_chunk_size(struct.unpack(">I", reply.payload)[0])
            out.append(reply)
        return out

    def commands(self) -> list[list[AmfValue]]:
        return [decode_values(m.payload) for m in self.replies() if m.type_id == COMMAND]

    def handshake(self) -> None:
        assert self.send(b"\x03" + C1) == []
        answer = self.conn.data_to_send()
        assert len(answer) == 1 + 1536 + 1536
        assert answer[0] == 3  # S0
        assert answer[1:9] == bytes(8)  # S1: time 0, zero
        assert answer[1 + 1536 :] == C1  # S2 echoes C1
        assert self.conn.state is RtmpState.HANDSHAKE
        assert self.send(C2) == []
        assert state(self.conn) is RtmpState.CONNECTING

    def connect(self, app: str = "live") -> list[RtmpEvent]:
        self.handshake()
        flash: dict[str, AmfValue] = {
            "app": app,
            "type": "nonprivate",
            "flashVer": "FMLE/3.0",
            "tcUrl": TC_URL,
        }
        events = self.send(command("connect", 1, flash))
        self.replies()
        return events

    def publish(self, key: str = "k1", *, accept: bool = True) -> list[RtmpEvent]:
        self.connect()
        self.send(command("releaseStream", 2, None, key))
        self.send(command("FCPublish", 3, None, key))
        self.send(command("createStream", 4, None))
        events = self.send(command("publish", 5, None, key, "live", stream_id=1, csid=8))
        if accept:
            self.conn.accept_publish()
            self.replies()
        return events


def state(conn: RtmpServerConnection) -> RtmpState:
    """The state, read through a call (so that mypy does not keep an earlier narrowing)."""
    return conn.state


def media(events: list[RtmpEvent]) -> list[tuple[str, int, bytes]]:
    return [(e.kind, e.timestamp_ms, e.payload) for e in events if isinstance(e, MediaMessage)]


# ------------------------------------------------------------------ handshake


def test_handshake_byte_by_byte() -> None:
    conn = RtmpServerConnection()
    for byte in b"\x03" + C1 + C2:
        assert conn.receive_data(bytes([byte])) == []
    out = conn.data_to_send()
    assert out[0] == 3 and out[-1536:] == C1
    assert conn.state is RtmpState.CONNECTING


def test_handshake_followed_by_connect_in_one_read() -> None:
    conn = RtmpServerConnection()
    connect = command("connect", 1, {"app": "live/", "tcUrl": TC_URL})
    events = conn.receive_data(b"\x03" + C1 + C2 + connect)
    assert events == [ConnectRequested("live", TC_URL)]  # a trailing slash is dropped
    assert conn.app == "live"


@pytest.mark.parametrize("first", [b"G", b"\x06", b"\x00"])
def test_not_rtmp(first: bytes) -> None:
    conn = RtmpServerConnection()
    with pytest.raises(IngestError, match=f"not RTMP \\(version byte 0x{first[0]:02x}"):
        conn.receive_data(first + b"ET / HTTP/1.1\r\n\r\n")
    assert conn.state is RtmpState.FAILED
    with pytest.raises(IngestError, match="already failed"):
        conn.receive_data(b"\x03")


# ------------------------------------------------------------------ commands


def test_connect_replies() -> None:
    client = Client()
    client.handshake()
    events = client.send(command("connect", 1, {"app": "live", "tcUrl": TC_URL}))
    assert events == [ConnectRequested("live", TC_URL)]
    replies = client.replies()
    assert [(m.type_id, m.payload) for m in replies[:3]] == [
        (5, struct.pack(">I", 2_500_000)),  # Window Acknowledgement Size
        (6, struct.pack(">IB", 2_500_000, 2)),  # Set Peer Bandwidth, dynamic
        (1, struct.pack(">I", 4096)),  # Set Chunk Size
    ]
    name, txn, properties, info = decode_values(replies[3].payload)
    assert (name, txn) == ("_result", 1.0)
    assert isinstance(properties, dict) and "fmsVer" in properties
    assert isinstance(info, dict) and info["code"] == "NetConnection.Connect.Success"
    assert client.conn.state is RtmpState.CONNECTED


def test_a_publish_session_as_ffmpeg_runs_it() -> None:
    client = Client()
    client.connect()
    client.send(command("releaseStream", 2, None, "k1"))
    assert client.commands() == [["_result", 2.0, None, None]]
    client.send(command("FCPublish", 3, None, "k1"))
    ((name, _, _, info),) = client.commands()
    assert name == "onFCPublish" and isinstance(info, dict)
    client.send(command("createStream", 4, None))
    assert client.commands() == [["_result", 4.0, None, 1.0]]
    events = client.send(command("publish", 5, None, "k1", "live", stream_id=1, csid=8))
    assert events == [PublishRequested("live", "k1", "live")]
    assert client.conn.state is RtmpState.PUBLISH_REQUESTED
    assert client.conn.stream_key == "k1"
    assert client.replies() == []  # nothing until the owner decides

    # what follows the publish command is held unread until the owner decides
    early = message(6, VIDEO, b"\x17\x00early", stream_id=1)
    assert client.send(early) == []
    assert client.replies() == []

    held = client.conn.accept_publish()
    assert media(held) == [("video", 0, b"\x17\x00early")]
    replies = client.replies()
    assert replies[0].type_id == 4 and replies[0].payload == b"\x00\x00" + b"\x00\x00\x00\x01"
    status = decode_values(replies[1].payload)
    assert replies[1].stream_id == 1
    assert status[0] == "onStatus" and isinstance(status[3], dict)
    assert status[3]["level"] == "status" and status[3]["code"] == "NetStream.Publish.Start"
    assert state(client.conn) is RtmpState.PUBLISHING

    events = client.send(message(6, VIDEO, b"\x17\x00seq", stream_id=1))
    assert media(events) == [("video", 0, b"\x17\x00seq")]
    assert client.send(command("FCUnpublish", 6, None, "k1")) == [
        PublishEnded("the publisher sent FCUnpublish")
    ]
    assert client.send(command("deleteStream", 7, None, 1.0)) == []  # ended once
    assert state(client.conn) is RtmpState.CONNECTED


def test_media_before_publish_is_dropped_and_counted() -> None:
    client = Client()
    client.connect()
    client.send(command("createStream", 2, None))
    assert client.send(message(6, VIDEO, b"\x17\x00x", stream_id=1)) == []
    assert client.send(message(4, AUDIO, b"\xaf\x00x", stream_id=1)) == []
    assert client.conn.stats.dropped_before_accept == 2
    assert client.send(command("publish", 3, None, "k1", stream_id=1)) == [
        PublishRequested("live", "k1", "live")
    ]
    assert client.conn.accept_publish() == []


def test_a_publish_that_ends_in_the_same_read_waits_for_the_decision() -> None:
    # publish, media, FCUnpublish, another publish in one read: each request is decided alone
    client = Client()
    client.connect()
    data = command("publish", 2, None, "k1", stream_id=1)
    data += message(6, VIDEO, b"\x17\x01x", stream_id=1) + command("FCUnpublish", 3, None, "k1")
    data += command("publish", 4, None, "evil", stream_id=1)
    assert client.send(data) == [PublishRequested("live", "k1", "live")]
    held = client.conn.accept_publish()
    assert held == [
        MediaMessage("video", 0, b"\x17\x01x"),
        PublishEnded("the publisher sent FCUnpublish"),
        PublishRequested("live", "evil", "live"),
    ]
    assert client.conn.stream_key == "evil"
    client.conn.reject_publish("no")
    assert client.conn.state is RtmpState.REJECTED


def test_input_held_during_a_publish_request_is_bounded() -> None:
    client = Client(max_message_bytes=1000)
    client.connect()
    client.send(command("publish", 2, None, "k1", stream_id=1))
    client.send(bytes(2000))
    with pytest.raises(IngestError, match="pending"):
        client.send(b"\x00")


def test_reject_sends_an_error_status_and_ignores_the_rest() -> None:
    client = Client()
    client.publish("nope", accept=False)
    client.replies()
    client.send(message(6, VIDEO, b"\x17\x01held", stream_id=1))
    client.conn.reject_publish("wrong stream key (fingerprint 1234abcd)")
    ((name, _, _, info),) = client.commands()
    assert name == "onStatus" and isinstance(info, dict)
    assert info["level"] == "error"
    assert info["code"] == "NetStream.Publish.BadName"
    assert info["description"] == "wrong stream key (fingerprint 1234abcd)"
    assert client.conn.state is RtmpState.REJECTED
    assert client.send(message(6, VIDEO, b"\x17\x01x", stream_id=1)) == []
    with pytest.raises(IngestError, match="no publish is pending"):
        client.conn.accept_publish()


def test_play_is_refused_with_a_status() -> None:
    client = Client()
    client.connect()
    with pytest.raises(IngestError, match="only takes publishers"):
        client.send(command("play", 2, None, "k1", stream_id=1))
    ((name, _, _, info),) = client.commands()
    assert name == "onStatus" and isinstance(info, dict) and info["level"] == "error"


def test_unknown_commands_are_ignored_and_amf3_commands_read() -> None:
    client = Client()
    client.connect()
    assert client.send(command("getStreamLength", 2, None, "x")) == []
    assert client.commands() == []
    assert client.conn.stats.ignored_commands == 1
    amf3 = b"\x00" + encode_values("createStream", 3.0, None)  # type 17: a format byte first
    client.send(message(3, 17, amf3))
    assert client.commands() == [["_result", 3.0, None, 1.0]]


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (command("publish", 2, None, "k1"), "before connect"),
        (message(3, COMMAND, b"\x00" + bytes(8)), "without a command name"),
        (message(3, COMMAND, b"\x02\x00\xff"), "AMF0"),
        (message(3, COMMAND, b"\x02\x00\x01\xff"), "UTF-8"),
    ],
)
def test_bad_commands(data: bytes, match: str) -> None:
    client = Client()
    client.handshake()
    with pytest.raises(IngestError, match=match):
        client.send(data)


def test_publish_without_a_name_and_twice() -> None:
    client = Client()
    client.connect()
    with pytest.raises(IngestError, match="publishing name"):
        client.send(command("publish", 2, None, None))
    client = Client()
    client.publish()
    with pytest.raises(IngestError, match="publish in state publishing"):
        client.send(command("publish", 6, None, "k2", stream_id=1))


# ------------------------------------------------------------------ chunks


def test_header_types_resolve_to_absolute_timestamps() -> None:
    client = Client()
    client.publish()
    data = (
        message(6, VIDEO, b"v0", ts=1000, stream_id=1)  # fmt 0: absolute
        + chunk(1, 6, b"v1!", ts=33, length=3, type_id=VIDEO)  # fmt 1: delta, length, type
        + chunk(2, 6, b"v2!", ts=34)  # fmt 2: delta only
        + chunk(3, 6, b"v3!")  # fmt 3: a new message, same length and delta
        + chunk(3, 6, b"v4!")
    )
    assert media(client.send(data)) == [
        ("video", 1000, b"v0"),
        ("video", 1033, b"v1!"),
        ("video", 1067, b"v2!"),
        ("video", 1101, b"v3!"),
        ("video", 1135, b"v4!"),
    ]


def test_type3_after_type0_inherits_its_timestamp_as_delta() -> None:
    client = Client()
    client.publish()
    data = message(4, AUDIO, b"a0", ts=20, stream_id=1) + chunk(3, 4, b"a1")
    assert media(client.send(data)) == [("audio", 20, b"a0"), ("audio", 40, b"a1")]


def test_interleaved_chunk_streams_and_set_chunk_size() -> None:
    client = Client()
    client.publish()
    video = bytes(range(256)) * 20  # 5120 bytes
    audio = b"\xaf\x01" + bytes(300)
    v = message(6, VIDEO, video, ts=66, stream_id=1)
    a = message(4, AUDIO, audio, ts=64, stream_id=1)
    # video chunk 1, audio chunk 1, video chunks 2-3, audio chunks 2-3, the rest of the video
    v_chunks = [v[: 12 + 128]] + [v[140 + i * 129 : 140 + (i + 1) * 129] for i in range(40)]
    a_chunks = [a[: 12 + 128], a[140 : 140 + 129], a[269:]]
    assert b"".join(v_chunks) == v and b"".join(a_chunks) == a
    data = v_chunks[0] + a_chunks[0] + b"".join(v_chunks[1:3]) + b"".join(a_chunks[1:])
    data += b"".join(v_chunks[3:])
    assert media(client.send(data)) == [("audio", 64, audio), ("video", 66, video)]

    # the client's Set Chunk Size applies from the next chunk on
    set_size = message(2, 1, struct.pack(">I", 4096))
    big = message(6, VIDEO, video, ts=99, stream_id=1, fmt=1, chunk_size=4096)
    assert big.count(b"\xc6") >= 1
    assert media(client.send(set_size + big)) == [("video", 165, video)]
    assert client.conn.stats.media_messages == 3


def test_two_and_three_byte_chunk_stream_ids() -> None:
    client = Client()
    client.publish()
    data = message(64, AUDIO, b"a" * 200, ts=5, stream_id=1)
    data += message(319, VIDEO, b"b" * 300, ts=6, stream_id=1)
    data += message(320, VIDEO, b"c" * 130, ts=7, stream_id=1)
    data += message(65599, AUDIO, b"d", ts=8, stream_id=1)
    assert data[0] == 0 and data[1] == 0  # 2-byte form for 64
    assert [(k, t, len(p)) for k, t, p in media(client.send(data))] == [
        ("audio", 5, 200),
        ("video", 6, 300),
        ("video", 7, 130),
        ("audio", 8, 1),
    ]


def test_extended_timestamps_and_32_bit_wraparound() -> None:
    client = Client()
    client.publish()
    payload = bytes(300)  # three chunks: the extended field repeats in the type-3 ones
    data = message(6, VIDEO, payload, ts=0x01000000, stream_id=1)
    data += chunk(3, 6, payload[:128], ext=0x01000000)  # a new message: + the same "delta"
    data += chunk(3, 6, payload[128:256], ext=0x01000000)
    data += chunk(3, 6, payload[256:], ext=0x01000000)
    data += chunk(2, 6, ts=40) + payload[:128]  # a delta below 0xFFFFFF: no extended field
    data += chunk(3, 6, payload[128:256]) + chunk(3, 6, payload[256:])
    events = media(client.send(data))
    assert [t for _, t, _ in events] == [0x01000000, 0x02000000, 0x02000028]

    # an extended delta (fmt 1) and a wrap past 2**32
    data = message(4, AUDIO, b"x", ts=0xFFFFFFF0, stream_id=1)
    data += chunk(1, 4, b"y", ts=0x01000000, length=1, type_id=AUDIO)
    data += chunk(2, 4, b"z", ts=0x20)
    data += chunk(3, 4, b"w")
    events = media(client.send(data))
    assert [t for _, t, _ in events] == [0xFFFFFFF0, 0x00FFFFF0, 0x01000010, 0x01000030]


def test_abort_discards_a_partial_message() -> None:
    client = Client()
    client.publish()
    partial = message(6, VIDEO, bytes(500), ts=10, stream_id=1)[: 12 + 128]
    abort = message(2, 2, struct.pack(">I", 6))
    fresh = message(6, VIDEO, b"fresh", ts=20, stream_id=1)
    assert media(client.send(partial + abort + fresh)) == [("video", 20, b"fresh")]


def test_data_messages_lose_their_set_data_frame_wrapper() -> None:
    client = Client()
    client.publish()
    meta = encode_values("onMetaData", EcmaArray(width=320.0))
    events = client.send(message(5, DATA, encode_values("@setDataFrame") + meta, stream_id=1))
    assert media(events) == [("data", 0, meta)]
    events = client.send(message(5, 15, b"\x00" + meta, stream_id=1))  # AMF3 data message
    assert media(events) == [("data", 0, meta)]


def test_aggregate_messages_are_split() -> None:
    client = Client()
    client.publish()

    def sub(type_id: int, ts: int, body: bytes) -> bytes:
        head = bytes([type_id]) + len(body).to_bytes(3, "big") + (ts & 0xFFFFFF).to_bytes(3, "big")
        return head + bytes([ts >> 24]) + bytes(3) + body + (11 + len(body)).to_bytes(4, "big")

    payload = sub(VIDEO, 500, b"v") + sub(AUDIO, 510, b"a") + sub(77, 520, b"?")
    assert media(client.send(message(6, 22, payload, ts=2000, stream_id=1))) == [
        ("video", 2000, b"v"),
        ("audio", 2010, b"a"),
    ]
    with pytest.raises(IngestError, match="aggregate"):
        client.send(message(6, 22, payload[:-3], ts=2000, stream_id=1))


def test_acknowledgements_and_pings() -> None:
    client = Client()
    client.publish()
    client.send(message(2, 5, struct.pack(">I", 5000)))  # the client's window
    client.send(message(6, VIDEO, bytes(6000), stream_id=1))
    acks = [m for m in client.replies() if m.type_id == 3]
    assert len(acks) == 1
    assert struct.unpack(">I", acks[0].payload)[0] == client.conn.stats.bytes_received
    client.send(message(2, 4, struct.pack(">HI", 6, 1234)))  # PingRequest
    (pong,) = client.replies()
    assert pong.type_id == 4 and pong.payload == struct.pack(">HI", 7, 1234)


# ------------------------------------------------------------------ malformed chunks


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (chunk(1, 6, ts=1, length=1, type_id=VIDEO) + b"x", "before any type 0"),
        (chunk(3, 9), "before any type 0"),
        (message(2, 1, struct.pack(">I", 0)), "Set Chunk Size 0"),
        (message(2, 1, struct.pack(">I", 0x80000000)), "Set Chunk Size"),
        (message(2, 1, b"\x00\x10"), "protocol control message 1 of 2 bytes"),
        (message(6, VIDEO, bytes(300))[:140] + chunk(0, 6, ts=0, length=1), "inside a message"),
    ],
)
def test_malformed_chunks(data: bytes, match: str) -> None:
    client = Client()
    client.connect()
    with pytest.raises(IngestError, match=match):
        client.send(data)
    assert client.conn.state is RtmpState.FAILED


def test_an_oversized_message_is_refused_from_its_header() -> None:
    # the message length field is 24 bits: 16 MiB - 1 is the most a header can announce (a
    # 100 MB FLV tag cannot even be expressed), so the limit is exercised below that
    client = Client(max_message_bytes=1 << 20)
    client.publish()
    header = chunk(0, 6, ts=0, length=0xFFFFFF, type_id=VIDEO, stream_id=1)
    with pytest.raises(IngestError, match="16777215 bytes"):
        client.send(header)  # refused before a byte of it is buffered
    client = Client(max_message_bytes=1000)
    client.connect()
    assert client.send(message(6, VIDEO, bytes(1000), stream_id=1)) == []  # at the limit: fine
    with pytest.raises(IngestError, match="1001 bytes"):
        client.send(message(6, VIDEO, bytes(1001), stream_id=1))


def test_messages_in_progress_are_bounded_together() -> None:
    client = Client(max_message_bytes=1000)
    client.connect()
    starts = b"".join(chunk(0, csid, bytes(128), length=1000, type_id=VIDEO) for csid in (4, 5))
    client.send(starts)
    with pytest.raises(IngestError, match="in progress"):
        client.send(chunk(0, 6, bytes(128), length=10, type_id=VIDEO))


def test_a_truncated_chunk_waits_for_the_rest() -> None:
    client = Client()
    client.publish()
    data = message(6, VIDEO, bytes(300), ts=0x01000000, stream_id=1)
    events: list[RtmpEvent] = []
    for i in range(len(data)):
        events += client.send(data[i : i + 1])
    assert media(events) == [("video", 0x01000000, bytes(300))]


def test_chunk_writer_round_trip() -> None:
    writer, reader = ChunkWriter(), ChunkReader(max_message_bytes=1 << 20)
    sent = [
        (2, 1, b"\x00\x00\x10\x00", 0, 0),
        (3, 20, bytes(range(200)), 0, 5),
        (100, 9, bytes(1000), 1, 0x12345678),
        (1000, 8, b"", 1, 7),
    ]
    for size in (128, 7, 4096):
        writer.chunk_size = size
        reader.set_chunk_size(size)
        reader.feed(
            b"".join(writer.write(c, t, p, stream_id=s, timestamp=ts) for c, t, p, s, ts in sent)
        )
        got = []
        while (m := reader.next_message()) is not None:
            got.append((m.chunk_stream_id, m.type_id, m.payload, m.stream_id, m.timestamp))
        assert got == sent


# ------------------------------------------------------------------ properties


def _session_after_handshake() -> tuple[bytes, int]:
    """What FFmpeg sends after C2: connect … publish, then media of every header type; and
    where the publish command ends."""
    parts = [
        command("connect", 1, {"app": "live", "tcUrl": TC_URL}),
        message(2, 1, struct.pack(">I", 256)),
        command("releaseStream", 2, None, "k1"),
        command("createStream", 4, None),
        command("publish", 5, None, "k1", "live", stream_id=1),
        message(5, DATA, encode_values("@setDataFrame", "onMetaData", EcmaArray(w=1.0))),
        message(6, VIDEO, b"\x17\x00" + bytes(400), ts=0x01000000, stream_id=1, chunk_size=256),
        chunk(1, 6, b"\x27\x01abc", ts=33, length=5, type_id=VIDEO),
        chunk(2, 6, b"\x27\x01def", ts=34),
        chunk(3, 6, b"\x27\x01ghi"),
        message(4, AUDIO, b"\xaf\x01" + bytes(300), ts=21, stream_id=1, chunk_size=256),
        message(2, 5, struct.pack(">I", 100)),
        message(2, 2, struct.pack(">I", 6)),
        message(3, 22, bytes([8, 0, 0, 1, 0, 0, 5, 0, 0, 0, 0, 0xAF, 0, 0, 0, 12])),
        command("FCUnpublish", 6, None, "k1"),
        command("deleteStream", 7, None, 1.0),
    ]
    return b"".join(parts), len(b"".join(parts[:5]))


SESSION, PUBLISHED = _session_after_handshake()


def _feed(client: Client, pieces: list[bytes]) -> None:
    try:
        for piece in pieces:
            events = client.send(piece)
            while events:
                event = events.pop(0)
                if isinstance(event, PublishRequested):
                    events += client.conn.accept_publish()
            client.conn.data_to_send()
    except IngestError:
        assert client.conn.state is RtmpState.FAILED


def test_the_unmutated_session_is_clean() -> None:
    client = Client()
    client.handshake()
    events = client.send(SESSION[:PUBLISHED])
    assert client.conn.state is RtmpState.PUBLISH_REQUESTED
    client.conn.accept_publish()
    events += client.send(SESSION[PUBLISHED:])
    assert [type(e).__name__ for e in events].count("MediaMessage") == 7
    assert client.conn.stats.dropped_before_accept == 0
    assert isinstance(events[-1], PublishEnded)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000), st.integers(1, 64))
def test_random_bytes_after_the_handshake(data: bytes, step: int) -> None:
    client = Client(max_message_bytes=4096)
    client.handshake()
    _feed(client, [data[i : i + step] for i in range(0, len(data), step)])


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000), st.integers(1, 64))
def test_random_bytes_while_publishing(data: bytes, step: int) -> None:
    client = Client(max_message_bytes=4096)
    client.publish()
    _feed(client, [data[i : i + step] for i in range(0, len(data), step)])


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, len(SESSION) - 1), st.integers(0, 255)), max_size=8),
    st.integers(0, len(SESSION)),
    st.binary(max_size=64),
)
def test_mutated_sessions(mutations: list[tuple[int, int]], cut: int, insert: bytes) -> None:
    data = bytearray(SESSION)
    for position, value in mutations:
        data[position] = value
    data[cut:cut] = insert
    client = Client(max_message_bytes=2048)
    client.handshake()
    _feed(client, [bytes(data[:cut]), bytes(data[cut:])])
