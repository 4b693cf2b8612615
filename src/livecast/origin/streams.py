"""The streams an origin serves, and the one parser of their URLs — pure.

A :class:`StreamRegistry` maps a stream id to the :class:`LiveEvent` that packages it; one id is
the default stream, which the URLs of the one-stream origin keep serving:

  /live/<stream>/main.m3u8              → multivariant playlist of <stream>
  /live/<stream>/<rendition>/index.m3u8 → media playlist (with _HLS_msn / _HLS_part / _HLS_skip)
  /live/<stream>/<rendition>/init-<id>.mp4, seg-<msn>.m4s, part-<msn>.<index>.m4s
  /live/main.m3u8, /live/<rendition>/…  → the same for the default stream

The multivariant playlist names its media playlists ``<rendition>/index.m3u8`` and each media
playlist its media by bare file name (and other renditions as ``../<rendition>/index.m3u8``), so the
relative URIs resolve under whichever of the two prefixes the client used (RFC 8216bis §4.1: "a
relative URI is considered to be relative to the URI of the Playlist that contains it").

:func:`parse_live_path` is shared by the routing (``origin.app``) and the gate (``origin.gate``),
so that both read the same stream id out of the same percent-decoded path: no encoding trick can
make the gate see one stream and the router serve another.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import unquote

from livecast.errors import ConfigError
from livecast.packager.event import DEFAULT_STREAM, LiveEvent

STREAM_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_LIVE_PATH = re.compile(
    r"/live/(?:(?P<stream>[A-Za-z0-9_-]{1,64})/)?"
    r"(?:(?P<multivariant>main\.m3u8)|(?P<recording>recording\.json)|(?P<rendition>[A-Za-z0-9_-]{1,32})/"
    r"(?:(?P<index>index\.m3u8)|init-(?P<init>[0-9]{1,20})\.mp4|seg-(?P<seg>[0-9]{1,20})\.m4s"
    r"|part-(?P<pmsn>[0-9]{1,20})\.(?P<pidx>[0-9]{1,6})\.m4s))"
)


@dataclass(frozen=True, slots=True)
class LivePath:
    """One live URL, decoded. ``stream`` is None for the default stream's short form."""

    stream: str | None
    rendition: str | None  # None: the multivariant playlist
    file: str  # "main.m3u8", "recording.json", "index.m3u8", "init", "seg" or "part"
    init: str | None = None  # the init id (kept as text: it names a file)
    msn: int | None = None  # of "seg" and "part"
    part: int | None = None  # of "part"

    def stream_id(self, default: str) -> str:
        return default if self.stream is None else self.stream


def decode_path(raw: str) -> str | None:
    """The percent-decoded path, or None when it cannot name anything here (bad UTF-8, NUL,
    backslash, a dot segment or an empty segment — every path trick is a plain 404)."""
    try:
        path = unquote(raw, errors="strict")
    except UnicodeDecodeError:
        return None
    if "\x00" in path or "\\" in path or "/." in path or "//" in path:
        return None
    return path


def parse_live_path(path: str) -> LivePath | None:
    """The live URL that the decoded ``path`` names, or None if it names none."""
    match = _LIVE_PATH.fullmatch(path)
    if match is None:
        return None
    stream = match["stream"]
    if match["multivariant"]:
        return LivePath(stream, None, "main.m3u8")
    if match["recording"]:
        return LivePath(stream, None, "recording.json")
    rendition = match["rendition"]
    if match["index"]:
        return LivePath(stream, rendition, "index.m3u8")
    if match["init"] is not None:
        return LivePath(stream, rendition, "init", init=match["init"])
    if match["seg"] is not None:
        return LivePath(stream, rendition, "seg", msn=int(match["seg"]))
    return LivePath(stream, rendition, "part", msn=int(match["pmsn"]), part=int(match["pidx"]))


def stream_of(raw_path: str, default: str = DEFAULT_STREAM) -> str | None:
    """The id of the stream a raw (still percent-encoded) request path asks for, None if the path
    is not a live URL (static files, ``/metrics``, garbage)."""
    path = decode_path(raw_path)
    live = None if path is None else parse_live_path(path)
    return None if live is None else live.stream_id(default)


def check_stream_id(stream_id: str) -> str:
    """``stream_id`` if it is usable in a URL path segment here, else :class:`ConfigError`."""
    if not STREAM_ID.fullmatch(stream_id):
        raise ConfigError(
            "stream", f"id {stream_id!r} must be 1–64 characters of A–Z, a–z, 0–9, '_' or '-'"
        )
    return stream_id


class StreamRegistry:
    """Stream id → :class:`LiveEvent`; ``default`` names the stream of the short URLs.

    The default stream need not be registered (its short URLs are then a 404 like any unknown
    stream). Streams may come and go while the origin runs; the origin looks them up per request.
    """

    def __init__(self, *, default: str = DEFAULT_STREAM) -> None:
        self.default = check_stream_id(default)
        self._events: dict[str, LiveEvent] = {}

    @classmethod
    def single(cls, event: LiveEvent, *, stream_id: str = DEFAULT_STREAM) -> StreamRegistry:
        """A registry of one stream, which is also the default."""
        registry = cls(default=stream_id)
        registry.add(stream_id, event)
        return registry

    def add(self, stream_id: str, event: LiveEvent) -> None:
        if check_stream_id(stream_id) in self._events:
            raise ConfigError("stream", f"{stream_id!r} is already registered")
        self._events[stream_id] = event

    def remove(self, stream_id: str) -> LiveEvent:
        """Forget ``stream_id`` (KeyError if unknown) and return its event."""
        return self._events.pop(stream_id)

    def get(self, stream_id: str) -> LiveEvent | None:
        return self._events.get(stream_id)

    @property
    def default_event(self) -> LiveEvent:
        """The default stream's event (LookupError if it is not registered)."""
        event = self._events.get(self.default)
        if event is None:
            raise LookupError(f"the default stream {self.default!r} is not registered")
        return event

    def ids(self) -> list[str]:
        return list(self._events)

    def __contains__(self, stream_id: object) -> bool:
        return stream_id in self._events

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._events))

    def __len__(self) -> int:
        return len(self._events)
