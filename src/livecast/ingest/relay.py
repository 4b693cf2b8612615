"""From a publisher's RTMP media messages to an FLV byte stream for the ladder's FFmpeg (pure).

The ladder FFmpeg reads the contribution as FLV on its standard input. A *run* of that FFmpeg must
begin where a decoder can begin: the FLV header, the codec sequence headers (H.264/HEVC decoder
configuration, AAC AudioSpecificConfig) and then a video keyframe. :class:`FlvRelay` caches the
sequence headers as they arrive, holds everything back until a keyframe, and then emits the
opening of a run followed by every later tag — so a run can start at any keyframe: the first one
of a publish, or the next one after :meth:`FlvRelay.restart` (the transcoder died, the publisher
reconnected).

Timestamps are the relay's business too. Each run starts at 0 (the tag's time minus the run's
first keyframe time). An encoder whose clock jumps — backwards, or forwards by hours (a reset
timecode, a 32-bit wrap) — would make FFmpeg wait or drop: a step larger than ``max_step_ms``
between consecutive tags is re-based so that the tag follows the previous one by one frame, and
counted (:attr:`RelayStats.timestamp_jumps`).

Switching inputs (primary → backup) should not wait for the backup's next keyframe — a GOP can be
several seconds. Every tag since the newest keyframe is kept (the *GOP cache*, bounded by
``max_gop_bytes``: past it the cache is dropped until the next keyframe), also while the relay
only watches an input that is not on air (:meth:`FlvRelay.watch`); :meth:`FlvRelay.resume` opens
a run at that keyframe and replays the cache, and says how old its first frame is
(``backlog_ms``), so the run's capture time can be set back by as much.

FLV (Adobe FLV spec v10.1, E.4.3.1): a video tag body starts with ``FrameType(4 bits) |
CodecID(4 bits)``; FrameType 1 is a keyframe. For AVC (CodecID 7) the next byte is
``AVCPacketType``: 0 = sequence header. Enhanced RTMP sets the top bit (``IsExHeader``) and puts the
packet type in the low 4 bits, 0 = SequenceStart. An audio tag body starts with ``SoundFormat(4) |
rate(2) | size(1) | type(1)``; for AAC (SoundFormat 10) the next byte is ``AACPacketType``, 0 = the
AudioSpecificConfig.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from livecast.ingest.flv import (
    TagKind,
    flv_header,
    flv_tag,
    is_aac_sequence_header,
    is_video_keyframe,
    is_video_sequence_header,
)

__all__ = ["FlvRelay", "MediaLike", "RelayOutput", "RelayStats", "sequence_kind"]

Kind = Literal["audio", "video", "data"]
FRAME_MS = 33  # where a re-based tag lands after the previous one: one frame at 30 fps


class MediaLike(Protocol):
    @property
    def kind(self) -> str: ...

    @property
    def timestamp_ms(self) -> int: ...

    @property
    def payload(self) -> bytes: ...


def sequence_kind(kind: str, payload: bytes) -> str | None:
    """ "video" / "audio" if the tag body is a codec sequence header, else None."""
    if kind == "video" and is_video_sequence_header(payload):
        return "video"
    if kind == "audio" and is_aac_sequence_header(payload):
        return "audio"
    return None


@dataclass
class RelayStats:
    runs: int = 0
    tags: int = 0
    held_before_keyframe: int = 0  # media dropped while waiting for a keyframe to start at
    audio_without_track: int = 0  # audio after a run started without an audio track
    timestamp_jumps: int = 0
    bytes_out: int = 0


@dataclass(frozen=True)
class RelayOutput:
    """FLV bytes for the ladder; ``run_start``: they open a new run (start a new FFmpeg)."""

    data: bytes
    run_start: bool = False
    has_audio: bool = True
    jump_ms: int = 0  # the timestamp step just re-based, if any (for the one log line)
    backlog_ms: int = 0  # a resumed run: how much older than the newest tag its start is
    timestamp_ms: int = 0  # the run's time of the newest tag in ``data``


@dataclass
class _Run:
    base_ms: int  # publisher time of the run's first keyframe
    has_audio: bool
    last_in_ms: int
    last_out_ms: int = 0


@dataclass
class FlvRelay:
    max_step_ms: int = 10_000
    max_gop_bytes: int = 16 * 1024 * 1024
    stats: RelayStats = field(default_factory=RelayStats)
    _headers: dict[str, bytes] = field(default_factory=dict)
    _audio_seen: bool = False
    _run: _Run | None = None
    _gop: list[tuple[str, int, bytes]] = field(default_factory=list)  # since the newest keyframe
    _gop_bytes: int = 0
    _last_audio: bytes | None = None  # the newest coded audio frame
    _audio_at_key: bytes | None = None  # the newest one before the GOP cache's keyframe

    @property
    def running(self) -> bool:
        return self._run is not None

    def restart(self) -> None:
        """End the current run: the next keyframe opens a new one (sequence headers repeated)."""
        self._run = None

    def watch(self, message: MediaLike) -> None:
        """Keep an input's sequence headers and GOP cache current without running (the input is
        not on air)."""
        kind, payload = message.kind, bytes(message.payload)
        if kind in ("audio", "video"):
            self._observe(kind, message.timestamp_ms, payload)

    def resume(self) -> RelayOutput | None:
        """Open a run at the cached GOP's keyframe and replay the cache (None: no keyframe yet,
        the next one opens the run in :meth:`feed`)."""
        if not self._gop:
            return None
        self._run = None
        (_, start_ms, keyframe), *rest = self._gop
        opening = self._open(start_ms, keyframe, self._audio_at_key)
        parts = [opening.data]
        for kind, timestamp_ms, payload in rest:
            output = self._continue(kind, timestamp_ms, payload)
            if output is not None:
                parts.append(output.data)
        backlog = max(0, self._gop[-1][1] - start_ms)
        return RelayOutput(
            b"".join(parts), True, opening.has_audio, backlog_ms=backlog, timestamp_ms=backlog
        )

    def feed(self, message: MediaLike) -> RelayOutput | None:
        kind, payload = message.kind, bytes(message.payload)
        if kind not in ("audio", "video"):
            return None  # metadata (onMetaData) is not needed by the decoder
        header = self._observe(kind, message.timestamp_ms, payload)
        if self._run is None:
            if kind == "video" and is_video_keyframe(payload):
                return self._open(message.timestamp_ms, payload, self._audio_at_key)
            if header is None:
                self.stats.held_before_keyframe += 1
            return None
        return self._continue(kind, message.timestamp_ms, payload)

    def _observe(self, kind: str, timestamp_ms: int, payload: bytes) -> str | None:
        if kind == "audio":
            self._audio_seen = True
        header = sequence_kind(kind, payload)
        if header is not None:
            self._headers[header] = payload
            return header
        if kind == "audio":
            self._last_audio = payload
        if kind == "video" and is_video_keyframe(payload):
            self._gop, self._gop_bytes = [], 0
            self._audio_at_key = self._last_audio
        elif not self._gop:
            return None  # no keyframe to start from yet
        self._gop_bytes += len(payload)
        if self._gop_bytes > self.max_gop_bytes:
            self._gop, self._gop_bytes = [], 0
            return None
        self._gop.append((kind, timestamp_ms, payload))
        return None

    def _open(self, timestamp_ms: int, keyframe: bytes, audio: bytes | None) -> RelayOutput:
        """Header, sequence headers, the newest audio frame before the keyframe (FFmpeg's FLV
        demuxer, not probing, learns the audio format from it: with the keyframe first it held
        the whole transcode back ~2 s, for good), then the keyframe — all at time 0."""
        has_audio = self._audio_seen
        self._run = _Run(base_ms=timestamp_ms, has_audio=has_audio, last_in_ms=timestamp_ms)
        parts = [flv_header(audio=has_audio, video=True)]
        wanted: tuple[TagKind, ...] = ("video", "audio") if has_audio else ("video",)
        parts += [flv_tag(kind, 0, self._headers[kind]) for kind in wanted if kind in self._headers]
        if has_audio and audio is not None and "audio" in self._headers:
            parts.append(flv_tag("audio", 0, audio))
        parts.append(flv_tag("video", 0, keyframe))
        data = b"".join(parts)
        self.stats.runs += 1
        self.stats.tags += 1
        self.stats.bytes_out += len(data)
        return RelayOutput(data, run_start=True, has_audio=has_audio)

    def _continue(self, kind: str, timestamp_ms: int, payload: bytes) -> RelayOutput | None:
        run = self._run
        assert run is not None
        if kind == "audio" and not run.has_audio:
            self.stats.audio_without_track += 1
            return None
        jump = 0
        step = timestamp_ms - run.last_in_ms
        if abs(step) > self.max_step_ms:
            jump = step
            self.stats.timestamp_jumps += 1
            # re-base: this tag follows the previous output tag by one frame
            run.base_ms = timestamp_ms - (run.last_out_ms + FRAME_MS)
        run.last_in_ms = timestamp_ms
        out_ms = max(0, timestamp_ms - run.base_ms)
        run.last_out_ms = max(run.last_out_ms, out_ms)
        data = flv_tag(kind, out_ms, payload)  # type: ignore[arg-type]
        self.stats.tags += 1
        self.stats.bytes_out += len(data)
        return RelayOutput(data, has_audio=run.has_audio, jump_ms=jump, timestamp_ms=out_ms)
