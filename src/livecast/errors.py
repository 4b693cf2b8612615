"""The one exception hierarchy of livecast.

Every error livecast raises on purpose derives from :class:`LivecastError`. Adapters (HTTP
server, FFmpeg supervisor, CLI) translate foreign exceptions into these with ``raise ... from``;
the CLI turns them into a one-line message and an exit code.

    LivecastError
    ├── ConfigError          bad configuration value (names the key)
    ├── MediaError           malformed or unsupported media (fMP4 boxes, codecs)
    ├── PlaylistError        a playlist that cannot be parsed or rendered
    ├── RequestError         a client request the origin refuses (carries the HTTP status)
    ├── TranscodeError       FFmpeg missing, failed to start, or died
    ├── ProbeError           the probe client could not follow the stream
    ├── IngestError          a contribution (RTMP/SRT publisher) broke the protocol or was refused
    ├── StoreError           a recording that cannot be opened or read
    ├── CmcdError            malformed Common Media Client Data (CTA-5004) in a request
    └── AccessError          a playback token, stream lease or admin credential refused
                             (carries a stable reason code; never the credential itself)
"""

from __future__ import annotations


class LivecastError(Exception):
    """Base of every error livecast raises on purpose."""


class ConfigError(LivecastError):
    """A configuration value is missing, malformed or out of range."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"config key {key!r}: {message}")
        self.key = key


class MediaError(LivecastError):
    """Malformed or unsupported media data."""


class PlaylistError(LivecastError):
    """A playlist that cannot be parsed or rendered."""


class RequestError(LivecastError):
    """A request the origin refuses; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class TranscodeError(LivecastError):
    """FFmpeg could not be found, could not start, or exited."""


class ProbeError(LivecastError):
    """The probe client could not join or follow the stream."""


class IngestError(LivecastError):
    """A contribution encoder broke the protocol (RTMP handshake, chunks, AMF) or was refused."""


class StoreError(LivecastError):
    """The recording cannot be opened or read (not a livecast recording, a bad DVR range)."""


class CmcdError(LivecastError):
    """Common Media Client Data (CTA-5004) that cannot be read: bad syntax, a bad value for a
    key of the spec, a repeated key, or a payload over the size bound."""


class AccessError(LivecastError):
    """A playback token, a stream lease or an admin credential refused. ``reason`` is the stable
    code clients and logs see (``expired``, ``bad_signature``, ``too_many_streams`` …); the
    message never contains the credential itself."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
