"""The RTMP server side of one publisher's connection (sans-IO: no sockets, no clock).

Feed the bytes a client sent to :meth:`RtmpServerConnection.receive_data`, act on the events it
returns, and write :meth:`RtmpServerConnection.data_to_send` back — the h11 / aioquic pattern. The
owner (``rtmp_server.py``) decides whether a publish may go ahead: the connection emits
:class:`PublishRequested` and emits no media until :meth:`~RtmpServerConnection.accept_publish`.

What a publisher (FFmpeg's ``rtmpproto.c``, OBS's librtmp) does, and what this side answers:

1. Handshake (§5.2, the "simple" one FFmpeg and OBS accept): C0 is the version, "In C0, this
   field identifies the RTMP version requested by the client ... [it] MUST be 3"; C1 is 1536 bytes.
   We send S0 (3), S1 (``time(4) = 0 | zero(4) | random(1528)``) and S2, an echo of C1: "S2 ...
   MUST be a copy of C1". C2 is read and not checked.
2. ``connect`` (§7.2.1.1) with the application and ``tcUrl`` in its command object → Window
   Acknowledgement Size, Set Peer Bandwidth, Set Chunk Size 4096, then ``_result``
   ``NetConnection.Connect.Success``.
3. ``releaseStream`` / ``FCPublish`` (Flash Media Server conventions) → ``_result`` /
   ``onFCPublish``; ``createStream`` → ``_result`` with message stream id 1.
4. ``publish`` (§7.2.2.6) "publishingName ... publishingType: live, record or append" →
   :class:`PublishRequested`; the owner answers with ``onStatus`` ``NetStream.Publish.Start`` (the
   client waits for it before it sends media) or ``NetStream.Publish.BadName`` (level error).
   Until it has answered, the connection reads no further input: no media (nor a second
   ``publish``) is interpreted before the stream key is checked. Media sent before ``publish``
   is dropped and counted.
5. Audio (8), video (9) and data (18, 15) messages → :class:`MediaMessage`; ``FCUnpublish``,
   ``deleteStream`` or ``closeStream`` → :class:`PublishEnded`.

``play`` is refused: this server only takes publishers. Any malformed input raises
:class:`~livecast.errors.IngestError` and the connection stays failed.
"""

from __future__ import annotations

import enum
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from livecast.errors import IngestError
from livecast.ingest.amf0 import AmfValue, decode_values, encode_values
from livecast.ingest.rtmp_chunks import ChunkReader, ChunkWriter, Message, MessageType

__all__ = [
    "ConnectRequested",
    "MediaKind",
    "MediaMessage",
    "PublishEnded",
    "PublishRequested",
    "RtmpEvent",
    "RtmpServerConnection",
    "RtmpState",
    "RtmpStats",
]

RTMP_VERSION = 3
HANDSHAKE_SIZE = 1536
WINDOW_ACK_SIZE = 2_500_000
PEER_BANDWIDTH = 2_500_000
PEER_BANDWIDTH_DYNAMIC = 2  # §5.4.5 Limit Type: "Dynamic"
OUR_CHUNK_SIZE = 4096
STREAM_ID = 1  # the message stream createStream hands out
CSID_CONTROL, CSID_COMMAND, CSID_STATUS = 2, 3, 5
USER_STREAM_BEGIN, USER_PING_REQUEST, USER_PING_RESPONSE = 0, 6, 7
SET_DATA_FRAME = encode_values("@setDataFrame")
ENDING_COMMANDS = ("FCUnpublish", "deleteStream", "closeStream")

MediaKind = Literal["audio", "video", "data"]
_MEDIA_KINDS: dict[int, MediaKind] = {
    MessageType.AUDIO: "audio",
    MessageType.VIDEO: "video",
    MessageType.DATA_AMF0: "data",
    MessageType.DATA_AMF3: "data",
}
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")


class RtmpState(enum.StrEnum):
    HANDSHAKE = "handshake"  # C0, C1 or C2 still to come
    CONNECTING = "connecting"  # handshake done, waiting for `connect`
    CONNECTED = "connected"
    PUBLISH_REQUESTED = "publish_requested"  # waiting for accept_publish() / reject_publish()
    PUBLISHING = "publishing"
    REJECTED = "rejected"  # the owner refused the publish; input is ignored
    FAILED = "failed"  # an IngestError was raised


@dataclass(frozen=True, slots=True)
class ConnectRequested:
    app: str
    tc_url: str


@dataclass(frozen=True, slots=True)
class PublishRequested:
    app: str
    stream_key: str
    publish_type: str


@dataclass(frozen=True, slots=True)
class MediaMessage:
    """An FLV tag body: ``payload`` is exactly the ``Data`` of an FLV tag of this kind (the
    ``@setDataFrame`` wrapper of a data message removed), ``timestamp_ms`` absolute, 32-bit."""

    kind: MediaKind
    timestamp_ms: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class PublishEnded:
    reason: str


RtmpEvent = ConnectRequested | PublishRequested | MediaMessage | PublishEnded


@dataclass
class RtmpStats:
    bytes_received: int = 0
    bytes_sent: int = 0
    messages: int = 0
    media_messages: int = 0
    dropped_before_accept: int = 0
    acknowledgements_sent: int = 0
    ignored_commands: int = 0


class RtmpServerConnection:
    def __init__(self, *, max_message_bytes: int = 16 * 2**20) -> None:
        self._reader = ChunkReader(max_message_bytes=max_message_bytes)
        self._writer = ChunkWriter()
        self._state = RtmpState.HANDSHAKE
        self._handshake = bytearray()
        self._handshake_step = 0  # 0: C0, 1: C1, 2: C2
        self._out = bytearray()
        self._events: list[RtmpEvent] = []
        self._app = ""
        self._tc_url = ""
        self._stream_key = ""
        self._publish_stream = STREAM_ID
        self._peer_window = 0  # the client's Window Acknowledgement Size; 0: no acks wanted
        self._acked = 0
        self.stats = RtmpStats()

    # -------------------------------------------------------------- the owner's API

    @property
    def state(self) -> RtmpState:
        return self._state

    @property
    def app(self) -> str:
        return self._app

    @property
    def tc_url(self) -> str:
        return self._tc_url

    @property
    def stream_key(self) -> str:
        return self._stream_key

    def receive_data(self, data: bytes) -> list[RtmpEvent]:
        """The events the client's ``data`` completes; raises IngestError on a protocol error.

        While a publish request waits for the owner's decision, input is held unread (up to
        twice ``max_message_bytes``): nothing the client sends after ``publish`` is interpreted
        before the stream key has been checked."""
        if self._state is RtmpState.FAILED:
            raise IngestError("the RTMP connection already failed")
        self.stats.bytes_received += len(data)
        return self._guarded(self._receive, bytes(data))

    def _guarded(self, step: Callable[[bytes], None], data: bytes) -> list[RtmpEvent]:
        """Run ``step``; any error fails the connection, foreign ones become IngestError."""
        try:
            step(data)
        except IngestError:
            self._state = RtmpState.FAILED
            raise
        except (struct.error, IndexError, ValueError, UnicodeDecodeError) as exc:
            self._state = RtmpState.FAILED
            raise IngestError(f"malformed RTMP data: {exc}") from exc
        events, self._events = self._events, []
        return events

    def data_to_send(self) -> bytes:
        data = bytes(self._out)
        self._out.clear()
        self.stats.bytes_sent += len(data)
        return data

    def accept_publish(self) -> list[RtmpEvent]:
        """Let the requested publish go ahead: ``onStatus NetStream.Publish.Start``. Returns the
        events of the input held back while the request was pending (usually none: a client
        waits for this status before it sends media)."""
        self._require_publish_request("accept_publish")
        begin = _U16.pack(USER_STREAM_BEGIN) + _U32.pack(self._publish_stream)
        self._send_control(MessageType.USER_CONTROL, begin)  # §7.1.7 "Stream Begin"
        self._on_status("status", "NetStream.Publish.Start", f"{self._stream_key} is published.")
        self._state = RtmpState.PUBLISHING
        return self._guarded(lambda _: self._read_messages(), b"")

    def reject_publish(self, description: str) -> None:
        """Refuse it: ``onStatus NetStream.Publish.BadName`` (level error); close afterwards.
        Input held back, and all input from now on, is ignored."""
        self._require_publish_request("reject_publish")
        self._on_status("error", "NetStream.Publish.BadName", description)
        self._state = RtmpState.REJECTED

    def _require_publish_request(self, what: str) -> None:
        if self._state is not RtmpState.PUBLISH_REQUESTED:
            raise IngestError(f"{what}() in state {self._state.value}: no publish is pending")

    # -------------------------------------------------------------- input

    def _receive(self, data: bytes) -> None:
        if self._state is RtmpState.HANDSHAKE:
            data = self._receive_handshake(data)
            if self._state is RtmpState.HANDSHAKE:
                return
        if self._state is RtmpState.REJECTED:
            return
        self._reader.feed(data)
        self._read_messages()

    def _read_messages(self) -> None:
        while not self._paused() and (message := self._reader.next_message()) is not None:
            self.stats.messages += 1
            self._on_message(message)
        if self._paused() and self._reader.buffered > 2 * self._reader.max_message_bytes:
            raise IngestError(
                f"{self._reader.buffered} bytes sent while the publish request was pending"
            )
        self._maybe_acknowledge()

    def _paused(self) -> bool:
        return self._state is RtmpState.PUBLISH_REQUESTED

    def _receive_handshake(self, data: bytes) -> bytes:
        """Consume handshake bytes; return what follows C2 (the first chunks)."""
        self._handshake += data
        if self._handshake_step == 0 and self._handshake:
            version = self._handshake[0]
            if version != RTMP_VERSION:
                raise IngestError(f"not RTMP (version byte 0x{version:02x}, expected 3)")
            del self._handshake[:1]
            # S1: "Time (4 bytes) ... Zero (4 bytes) ... Random data (1528 bytes)"
            self._send(bytes([RTMP_VERSION]) + bytes(8) + os.urandom(HANDSHAKE_SIZE - 8))
            self._handshake_step = 1
        if self._handshake_step == 1 and len(self._handshake) >= HANDSHAKE_SIZE:
            self._send(bytes(self._handshake[:HANDSHAKE_SIZE]))  # S2: the echo of C1
            del self._handshake[:HANDSHAKE_SIZE]
            self._handshake_step = 2
        if self._handshake_step == 2 and len(self._handshake) >= HANDSHAKE_SIZE:
            rest = bytes(self._handshake[HANDSHAKE_SIZE:])
            self._handshake = bytearray()
            self._state = RtmpState.CONNECTING
            return rest
        return b""

    def _on_message(self, message: Message) -> None:
        kind = message.type_id
        if kind in _MEDIA_KINDS:
            self._on_media(_MEDIA_KINDS[kind], message.timestamp, message.payload, kind)
        elif kind == MessageType.AGGREGATE:
            self._on_aggregate(message)
        elif kind == MessageType.COMMAND_AMF0:
            self._on_command(message.payload, message.stream_id)
        elif kind == MessageType.COMMAND_AMF3:  # AMF3 command: a format byte, then AMF0 values
            self._on_command(message.payload[1:], message.stream_id)
        else:
            self._on_control(kind, message.payload)

    def _on_control(self, kind: int, payload: bytes) -> None:
        """§5.4 protocol control messages and §6.2 user control; the rest is ignored."""
        if kind in (MessageType.SET_CHUNK_SIZE, MessageType.ABORT, MessageType.WINDOW_ACK_SIZE):
            if len(payload) < 4:
                raise IngestError(f"protocol control message {kind} of {len(payload)} bytes")
            value = _U32.unpack_from(payload)[0]
            if kind == MessageType.SET_CHUNK_SIZE:
                self._reader.set_chunk_size(value)
            elif kind == MessageType.ABORT:
                self._reader.abort(value)
            else:
                self._peer_window = value
        elif kind == MessageType.USER_CONTROL and len(payload) >= 6:
            event = _U16.unpack_from(payload)[0]
            if event == USER_PING_REQUEST:
                self._send_control(kind, _U16.pack(USER_PING_RESPONSE) + payload[2:6])

    def _maybe_acknowledge(self) -> None:
        """§5.4.3: "The client or the server MUST send an acknowledgment to the peer after
        receiving bytes equal to the window size." The sequence number is the bytes so far."""
        received = self.stats.bytes_received
        if self._peer_window and received - self._acked >= self._peer_window:
            self._send_control(MessageType.ACKNOWLEDGEMENT, _U32.pack(received & 0xFFFFFFFF))
            self._acked = received
            self.stats.acknowledgements_sent += 1

    # -------------------------------------------------------------- media

    def _on_media(self, kind: MediaKind, timestamp: int, payload: bytes, type_id: int) -> None:
        if self._state is not RtmpState.PUBLISHING:
            self.stats.dropped_before_accept += 1
            return
        if type_id == MessageType.DATA_AMF3 and payload[:1] == b"\x00":
            payload = payload[1:]
        if payload.startswith(SET_DATA_FRAME):  # FFmpeg and OBS wrap onMetaData in it
            payload = payload[len(SET_DATA_FRAME) :]
        self.stats.media_messages += 1
        self._events.append(MediaMessage(kind, timestamp, payload))

    def _on_aggregate(self, message: Message) -> None:
        """§7.1.6 Aggregate Message: FLV-style sub-messages ``type(1) | size(3) | time(3) |
        time-ext(1) | stream id(3) | body | back pointer(4)``; "the timestamps of the
        sub-messages are offset" so that the first lands on the aggregate's own timestamp."""
        data, pos, base = message.payload, 0, None
        while pos < len(data):
            if len(data) - pos < 11:
                raise IngestError(f"aggregate message truncated at byte {pos}")
            type_id = data[pos]
            size = int.from_bytes(data[pos + 1 : pos + 4], "big")
            ts = int.from_bytes(data[pos + 4 : pos + 7], "big") | data[pos + 7] << 24
            end = pos + 11 + size
            if end + 4 > len(data):
                raise IngestError(f"aggregate sub-message of {size} bytes overruns its message")
            base = ts if base is None else base
            kind = _MEDIA_KINDS.get(type_id)
            if kind is not None:
                at = (message.timestamp + ts - base) & 0xFFFFFFFF
                self._on_media(kind, at, data[pos + 11 : end], type_id)
            pos = end + 4

    # -------------------------------------------------------------- commands

    def _on_command(self, payload: bytes, stream_id: int) -> None:
        values = decode_values(payload)
        if not values or not isinstance(values[0], str):
            raise IngestError("a command message without a command name")
        name = values[0]
        txn = values[1] if len(values) > 1 and isinstance(values[1], float) else 0.0
        args = values[3:]
        if self._state is RtmpState.CONNECTING and name != "connect":
            raise IngestError(f"command {name!r} before connect")
        if name == "connect":
            self._on_connect(txn, values[2] if len(values) > 2 else None)
        elif name == "releaseStream":
            self._reply(txn, None)
        elif name == "FCPublish":
            self._on_fc_publish(args)
        elif name == "createStream":
            self._reply(txn, float(STREAM_ID))
        elif name == "publish":
            self._on_publish(args, stream_id)
        elif name in ENDING_COMMANDS:
            self._end_publish(name)
        elif name == "play":
            self._on_status("error", "NetStream.Play.Failed", "this server only takes publishers")
            raise IngestError("play refused: this server only takes publishers")
        else:
            self.stats.ignored_commands += 1

    def _on_connect(self, txn: float, command_object: AmfValue) -> None:
        if self._state is not RtmpState.CONNECTING:
            raise IngestError("a second connect on the same connection")
        fields = command_object if isinstance(command_object, dict) else {}
        app, tc_url = fields.get("app"), fields.get("tcUrl")
        self._app = app.rstrip("/") if isinstance(app, str) else ""
        self._tc_url = tc_url if isinstance(tc_url, str) else ""
        self._state = RtmpState.CONNECTED
        self._send_control(MessageType.WINDOW_ACK_SIZE, _U32.pack(WINDOW_ACK_SIZE))
        bandwidth = _U32.pack(PEER_BANDWIDTH) + bytes([PEER_BANDWIDTH_DYNAMIC])
        self._send_control(MessageType.SET_PEER_BANDWIDTH, bandwidth)
        self._send_control(MessageType.SET_CHUNK_SIZE, _U32.pack(OUR_CHUNK_SIZE))
        self._writer.chunk_size = OUR_CHUNK_SIZE
        properties: dict[str, AmfValue] = {"fmsVer": "FMS/3,0,1,123", "capabilities": 31.0}
        information: dict[str, AmfValue] = {
            "level": "status",
            "code": "NetConnection.Connect.Success",
            "description": "Connection succeeded.",
            "objectEncoding": 0.0,
        }
        self._send_command(encode_values("_result", txn, properties, information))
        self._events.append(ConnectRequested(self._app, self._tc_url))

    def _on_fc_publish(self, args: list[AmfValue]) -> None:
        name = args[0] if args and isinstance(args[0], str) else ""
        info: dict[str, AmfValue] = {"code": "NetStream.Publish.Start", "description": name}
        self._send_command(encode_values("onFCPublish", 0.0, None, info))

    def _on_publish(self, args: list[AmfValue], stream_id: int) -> None:
        if self._state is not RtmpState.CONNECTED:
            raise IngestError(f"publish in state {self._state.value}")
        if not args or not isinstance(args[0], str):
            raise IngestError("publish without a publishing name (the stream key)")
        publish_type = args[1] if len(args) > 1 and isinstance(args[1], str) else "live"
        self._stream_key = args[0]
        self._publish_stream = stream_id or STREAM_ID
        self._state = RtmpState.PUBLISH_REQUESTED
        self._events.append(PublishRequested(self._app, self._stream_key, publish_type))

    def _end_publish(self, command: str) -> None:
        if self._state in (RtmpState.PUBLISH_REQUESTED, RtmpState.PUBLISHING):
            self._state = RtmpState.CONNECTED
            self._events.append(PublishEnded(f"the publisher sent {command}"))

    # -------------------------------------------------------------- output

    def _send(self, data: bytes) -> None:
        self._out += data

    def _send_control(self, type_id: int, payload: bytes) -> None:
        self._send(self._writer.write(CSID_CONTROL, type_id, payload))

    def _send_command(self, payload: bytes, stream_id: int = 0) -> None:
        csid = CSID_STATUS if stream_id else CSID_COMMAND
        self._send(self._writer.write(csid, MessageType.COMMAND_AMF0, payload, stream_id=stream_id))

    def _reply(self, txn: float, result: AmfValue) -> None:
        """``_result`` for a call that expects one (transaction id 0: "no response")."""
        if txn:
            self._send_command(encode_values("_result", txn, None, result))

    def _on_status(self, level: str, code: str, description: str) -> None:
        info: dict[str, AmfValue] = {"level": level, "code": code, "description": description}
        self._send_command(encode_values("onStatus", 0.0, None, info), self._publish_stream)
