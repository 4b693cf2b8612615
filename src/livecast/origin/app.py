"""The LL-HLS origin: routing, blocking playlist reload, preload-hint holds and cache headers —
pure (implements ``origin.contract.Handler``; the HTTP adapter is ``origin.http``).

URL layout (all media lives in memory; nothing here touches the file system):
  /                            → 302 to the player page
  /player.html, /hls.min.js    → the bundled player page and hls.js
  /live/main.m3u8              → multivariant playlist
  /live/<rendition>/index.m3u8 → media playlist, with _HLS_msn / _HLS_part / _HLS_skip
  /live/<rendition>/init-<id>.mp4, seg-<msn>.m4s, part-<msn>.<index>.m4s

Cache headers a CDN can follow (brief §4): a blocking response for a given MSN/part never changes
(6 × TD); plain playlists and the multivariant ½ TD; parts, segments and init immutable for a day;
404 and 503 one second.
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from dataclasses import dataclass
from urllib.parse import unquote

from livecast.errors import RequestError
from livecast.hls.directives import Directives, check_blocking_request, parse_directives
from livecast.origin.contract import Hold, Request, Response
from livecast.packager.event import LiveEvent
from livecast.packager.live import LiveRendition

PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
IMMUTABLE = "public, max-age=86400, immutable"
SHORT = "public, max-age=1"
_MEDIA_PATH = re.compile(
    r"/live/(?P<rendition>[A-Za-z0-9_-]{1,32})/"
    r"(?:(?P<index>index\.m3u8)|init-(?P<init>[0-9]{1,20})\.mp4|seg-(?P<seg>[0-9]{1,20})\.m4s"
    r"|part-(?P<pmsn>[0-9]{1,20})\.(?P<pidx>[0-9]{1,6})\.m4s)"
)


@dataclass(frozen=True, slots=True)
class StaticAsset:
    body: bytes
    content_type: str


def _error(status: int, message: str, cache: str = SHORT, object_type: str = "other") -> Response:
    return Response(
        status,
        (message + "\n").encode(),
        cache_control=cache,
        object_type=object_type,
        reusable=True,
    )


class OriginApp:
    """Answers requests from a :class:`LiveEvent`'s state. ``static`` maps paths to assets."""

    def __init__(self, event: LiveEvent, static: dict[str, StaticAsset] | None = None) -> None:
        self.event = event
        self.static = static or {}
        td = event.config.target_duration
        self.hold_limit = 3.0 * td  # §6.2.5.2: a blocked request times out after 3 × TD → 503
        self.blocking_cache = f"public, max-age={6 * td}"
        self.plain_cache = f"public, max-age={max(1, td // 2)}"
        self._responses: dict[tuple[str, bool, bool], tuple[int, Response]] = {}

    @staticmethod
    def cache_key(target: bytes) -> bytes:
        """The request target without the query arguments that never change an answer here
        (all but ``_HLS_*``: CMCD, cache busters), for the adapter's answer cache."""
        path, sep, query = target.partition(b"?")
        if not sep:
            return target
        kept = [arg for arg in query.split(b"&") if arg.startswith(b"_HLS_")]
        return path + b"?" + b"&".join(kept) if kept else path

    # ------------------------------------------------------------------ Handler
    def handle(self, request: Request, now: float) -> Response | Hold:
        try:
            return self._route(request, now)
        except RequestError as exc:
            object_type = "playlist-blocking" if "_HLS_" in request.query else "other"
            return _error(exc.status, str(exc), cache="no-store", object_type=object_type)

    def resume(self, key: Hashable, now: float) -> Response | None:
        assert isinstance(key, tuple)
        if key[0] == "playlist":
            _, name, msn, part, skip = key
            rendition = self.event.renditions[name]
            if self._satisfied(rendition, msn, part):
                return self._playlist(name, skip, blocking=True)
            return None
        _, name, msn, index = key
        return self._resume_part(self.event.renditions[name], msn, index)

    def expired(self, key: Hashable, now: float) -> Response:
        assert isinstance(key, tuple)
        object_type = "playlist-blocking" if key[0] == "playlist" else "part"
        return _error(503, f"not produced within {self.hold_limit:g} s", object_type=object_type)

    # ------------------------------------------------------------------ routing
    def _route(self, request: Request, now: float) -> Response | Hold:
        try:
            path = unquote(request.path, errors="strict")
        except UnicodeDecodeError:
            return _error(404, "not found")
        if "\x00" in path or "\\" in path or "/." in path or "//" in path:
            return _error(404, "not found")
        if path == "/live/main.m3u8":
            return self._multivariant()
        match = _MEDIA_PATH.fullmatch(path)
        if match is not None:
            rendition = self.event.renditions.get(match["rendition"])
            if rendition is None:
                return _error(404, "no such rendition")
            return self._media(rendition, match, request.query, now)
        if path == "/":
            return Response(
                302,
                b"",
                cache_control=SHORT,
                object_type="static",
                extra_headers=(("Location", "/player.html"),),
                permanent=True,
            )
        asset = self.static.get(path)
        if asset is not None:
            return Response(
                200, asset.body, asset.content_type, "public, max-age=60", "static", permanent=True
            )
        return _error(404, "not found")

    def _media(
        self, rendition: LiveRendition, match: re.Match[str], query: str, now: float
    ) -> Response | Hold:
        if match["index"]:
            return self._media_playlist(rendition, parse_directives(query), now)
        content_type = (
            "audio/mp4" if rendition.track and rendition.track.kind == "audio" else ("video/mp4")
        )
        if match["init"] is not None:
            data = rendition.inits.get(f"init-{match['init']}.mp4")
            return self._object(data, content_type, "init")
        if match["seg"] is not None:
            return self._object(rendition.segment_data(int(match["seg"])), content_type, "segment")
        msn, index = int(match["pmsn"]), int(match["pidx"])
        data = rendition.part_data(msn, index)
        if data is not None:
            return self._object(data, content_type, "part")
        if rendition.part_is_pending(msn, index):
            return Hold(("part", rendition.name, msn, index), now + self.hold_limit, "part")
        return _error(404, "no such part", object_type="part")

    @staticmethod
    def _object(data: bytes | None, content_type: str, object_type: str) -> Response:
        if data is None:
            return _error(404, f"no such {object_type}", object_type=object_type)
        return Response(200, data, content_type, IMMUTABLE, object_type, permanent=True)

    def _resume_part(self, rendition: LiveRendition, msn: int, index: int) -> Response | None:
        content_type = (
            "audio/mp4" if rendition.track and rendition.track.kind == "audio" else ("video/mp4")
        )
        data = rendition.part_data(msn, index)
        if data is not None:
            return Response(200, data, content_type, IMMUTABLE, "part", permanent=True)
        if rendition.part_is_pending(msn, index):
            return None
        return _error(404, "the hinted part was never produced", object_type="part")

    # ------------------------------------------------------------------ playlists
    def _multivariant(self) -> Response:
        if not self.event.ready:
            return Response(
                503,
                b"the event is starting\n",
                cache_control="no-store",
                object_type="multivariant",
                extra_headers=(("Retry-After", "1"),),
                reusable=True,
            )
        return Response(
            200,
            self.event.multivariant_bytes(),
            PLAYLIST_TYPE,
            self.plain_cache,
            "multivariant",
            reusable=True,
        )

    def _media_playlist(
        self, rendition: LiveRendition, d: Directives, now: float
    ) -> Response | Hold:
        skip = d.skip is not None
        position = rendition.position()
        if position is None:
            return _error(404, "the rendition has not started", object_type="playlist-plain")
        if not d.blocking or rendition.ended:
            return self._playlist(rendition.name, skip, blocking=False)
        check_blocking_request(d, position, self.event.config.part_target)
        assert d.msn is not None
        if self._satisfied(rendition, d.msn, d.part):
            return self._playlist(rendition.name, skip, blocking=True)
        key = ("playlist", rendition.name, d.msn, d.part, skip)
        return Hold(key, now + self.hold_limit, "playlist-blocking")

    @staticmethod
    def _satisfied(rendition: LiveRendition, msn: int, part: int | None) -> bool:
        if rendition.ended:
            return True
        if part is None:
            return rendition.has_segment(msn)
        return rendition.has_part(msn, part)

    def _playlist(self, name: str, skip: bool, blocking: bool) -> Response:
        """One Response per (rendition, skip, blocking) and version, shared by every viewer."""
        key = (name, skip, blocking)
        cached = self._responses.get(key)
        if cached is not None and cached[0] == self.event.version:
            return cached[1]
        response = Response(
            200,
            self.event.media_playlist_bytes(name, skip),
            PLAYLIST_TYPE,
            self.blocking_cache if blocking else self.plain_cache,
            "playlist-blocking" if blocking else "playlist-plain",
            reusable=True,
        )
        self._responses[key] = (self.event.version, response)
        return response
