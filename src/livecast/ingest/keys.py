"""Stream keys (pure): who may publish to an event, and how a key shows up in logs.

A stream key is a bearer secret: whoever knows it can put pictures in front of the audience. So it
is compared in constant time (:func:`hmac.compare_digest`), never logged, never printed, never part
of an error message; logs and metrics name it by its *fingerprint*, the first 8 hex digits of its
SHA-256 — enough to tell two keys apart in a log, useless for publishing.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "KEY_MIN_LENGTH",
    "PublishPoint",
    "StreamKeys",
    "fingerprint",
    "key_problem",
    "new_stream_key",
]

KEY_MIN_LENGTH = 8
KEY_MAX_LENGTH = 256
_FORBIDDEN = set("/?#&=%,\\ \t\r\n")


def fingerprint(key: str) -> str:
    """The first 8 hex digits of the key's SHA-256: how logs name a key."""
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:8]


def new_stream_key() -> str:
    """A fresh stream key: 32 URL-safe characters from :mod:`secrets` (192 random bits), valid
    in an RTMP path (:func:`key_problem` finds nothing)."""
    return secrets.token_urlsafe(24)


def key_problem(key: str) -> str | None:
    """Why ``key`` cannot be a stream key (without quoting it), or None if it can."""
    if len(key) < KEY_MIN_LENGTH:
        return f"is shorter than {KEY_MIN_LENGTH} characters"
    if len(key) > KEY_MAX_LENGTH:
        return f"is longer than {KEY_MAX_LENGTH} characters"
    if any(c in _FORBIDDEN or not c.isprintable() for c in key):
        return "contains a character that cannot stand in an RTMP path or SRT stream id"
    return None


@dataclass(frozen=True)
class StreamKeys:
    """Which key publishes to which stream (the event's stream id)."""

    by_stream: Mapping[str, str]

    def stream_for(self, key: str) -> str | None:
        """The stream ``key`` publishes to, or None. Every configured key is compared (in
        constant time), so the answer's timing does not tell which prefix was right."""
        found: str | None = None
        for stream, expected in self.by_stream.items():
            if hmac.compare_digest(expected.encode(), key.encode("utf-8", "surrogateescape")):
                found = stream
        return found

    def with_key(self, label: str, key: str) -> StreamKeys:
        """These keys and one more: ``key`` publishes to ``label`` (``"<stream>/<input>"``)."""
        if label in self.by_stream:
            raise ValueError(f"{label} has a key already")
        return StreamKeys({**self.by_stream, label: key})

    def __repr__(self) -> str:  # never show a key, even in a traceback
        shown = ", ".join(f"{s}: {fingerprint(k)}" for s, k in self.by_stream.items())
        return f"StreamKeys({shown})"


@dataclass(frozen=True)
class PublishPoint:
    """Where an encoder publishes one event: the RTMP server ``url`` and the stream ``key`` (the
    URL to give FFmpeg is :attr:`publish_url`). Shown by the key's fingerprint only."""

    url: str
    key: str

    @property
    def publish_url(self) -> str:
        return f"{self.url}/{self.key}"

    def __repr__(self) -> str:
        return f"PublishPoint(url={self.url!r}, key=<{fingerprint(self.key)}>)"
