"""The LL-HLS origin: routing over a registry of streams, blocking playlist reload, preload-hint
holds and cache headers — pure (implements ``origin.contract.Handler``; the HTTP adapter is
``origin.http``, the gate in front of it ``origin.gate``).

URL layout (all media lives in memory; nothing here touches the file system):
  /                                     → 302 to the player page
  /player.html, /hls.min.js             → the bundled player page and hls.js
  /live/<stream>/main.m3u8              → multivariant playlist of a stream
  /live/<stream>/<rendition>/index.m3u8 → media playlist, with _HLS_msn / _HLS_part / _HLS_skip
  /live/<stream>/<rendition>/init-<id>.mp4, seg-<msn>.m4s, part-<msn>.<index>.m4s
  /live/<stream>/recording.json         → what the recording holds (DVR window, ended) as JSON
  /live/main.m3u8, /live/<rendition>/…  → the same for the default stream (``origin.streams``)

Recording (``store.archive``): ``?start=…[&end=…]`` on a playlist asks for the recorded range
(``origin.dvr``): an EVENT playlist from that time while the show is live, a VOD once it is over or
when ``end`` is in the past. Once the event ended every media playlist URL serves the VOD of the
whole event, with EXT-X-ENDLIST; segments older than the live window come from disk.

Cache headers a CDN can follow (brief §4): a blocking response for a given MSN/part never changes
(6 × TD); plain playlists, EVENT (start-over) playlists and the multivariant ½ TD; parts, segments,
init and VOD playlists immutable for a day; 404 and 503 one second.

Players without cookies (Safari's native player): a playlist asked for with ``?token=…`` is
answered with that ``token=`` on every URI (``access.uri_tokens``) — the shared answer rewritten
for this request, never remembered (``Cache-Control: private``: it carries a credential); the
answer cache keeps the token in the key of playlist targets only, so the shared answers stay
shared and a request without a query token (the cookie) gets them unmodified. A held reload with
a token waits under its own key (:class:`TokenHoldKey`) and is rewritten when it is answered.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from livecast.access.uri_tokens import TemplateCache, token_argument
from livecast.errors import RequestError, StoreError
from livecast.hls.directives import Directives, check_blocking_request, parse_directives
from livecast.origin.contract import Endpoint, Hold, Request, Response
from livecast.origin.dvr import RecordedRange, parse_range
from livecast.origin.streams import LivePath, StreamRegistry, decode_path, parse_live_path
from livecast.packager.event import LiveEvent
from livecast.packager.live import LiveRendition

PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
KEPT_ARGUMENTS = (b"_HLS_", b"start=", b"end=")  # the query arguments that change an answer
# … and on a playlist the token, which goes onto its URIs (players without cookies)
KEPT_PLAYLIST_ARGUMENTS = (*KEPT_ARGUMENTS, b"token=")
PLAYLIST_SUFFIX = ".m3u8"
IMMUTABLE = "public, max-age=86400, immutable"
SHORT = "public, max-age=1"


@dataclass(frozen=True, slots=True)
class StaticAsset:
    body: bytes
    content_type: str


def _starting(body: bytes, object_type: str, *, reusable: bool = False) -> Response:
    """503 + Retry-After: 1, not stored: the event (or this origin's encoder) has not started."""
    return Response(
        503,
        body,
        cache_control="no-store",
        object_type=object_type,
        extra_headers=(("Retry-After", "1"),),
        reusable=reusable,
    )


def _error(status: int, message: str, cache: str = SHORT, object_type: str = "other") -> Response:
    return Response(
        status,
        (message + "\n").encode(),
        cache_control=cache,
        object_type=object_type,
        reusable=True,
    )


class PlaylistHoldKey(NamedTuple):
    """A blocking playlist reload waiting for ``msn`` (and ``part``) of a rendition."""

    stream: str
    rendition: str
    msn: int
    part: int | None
    skip: bool


class PartHoldKey(NamedTuple):
    """A request for a hinted part (EXT-X-PRELOAD-HINT) waiting for it to complete."""

    stream: str
    rendition: str
    msn: int
    part: int


class TokenHoldKey(NamedTuple):
    """A held playlist request whose answer gets ``argument`` on its URIs (for ``host``)."""

    key: PlaylistHoldKey | PartHoldKey
    argument: bytes
    host: bytes | None


NOT_FOUND = _error(404, "not found")
NO_SUCH_STREAM = _error(404, "no such stream")


class OriginApp:
    """Answers requests from the streams of a :class:`StreamRegistry`. ``static`` maps paths to
    assets. ``OriginApp(event)`` serves one event as the default stream."""

    def __init__(
        self,
        event: LiveEvent | StreamRegistry,
        static: dict[str, StaticAsset] | None = None,
        endpoints: Mapping[str, Endpoint] | None = None,
    ) -> None:
        self.streams = event if isinstance(event, StreamRegistry) else StreamRegistry.single(event)
        self.static = static or {}
        self.endpoints = dict(endpoints or {})  # path → per-request answers (never cached)
        self._answers: dict[str, StreamAnswers] = {}
        self.templates = TemplateCache()  # the shared playlists, cut where a token goes

    @classmethod
    def for_streams(
        cls,
        streams: StreamRegistry,
        static: dict[str, StaticAsset] | None = None,
        endpoints: Mapping[str, Endpoint] | None = None,
    ) -> OriginApp:
        """An origin over every stream of ``streams``, looked up per request (streams may be
        added and removed while it runs)."""
        return cls(streams, static, endpoints)

    @property
    def event(self) -> LiveEvent:
        """The default stream's event."""
        return self.streams.default_event

    @staticmethod
    def cache_key(target: bytes) -> bytes:
        """The request target without the query arguments that never change an answer here
        (all but ``_HLS_*``, ``start`` and ``end``: CMCD, cache busters; on a playlist ``token``
        too, whose answer is rewritten for it), for the adapter's answer cache."""
        path, sep, query = target.partition(b"?")
        if not sep:
            return target
        names = KEPT_PLAYLIST_ARGUMENTS if path.endswith(b".m3u8") else KEPT_ARGUMENTS
        kept = [arg for arg in query.split(b"&") if arg.startswith(names)]
        return path + b"?" + b"&".join(kept) if kept else path

    # ------------------------------------------------------------------ Handler
    def handle(self, request: Request, now: float) -> Response | Hold:
        try:
            outcome = self._route(request, now)
        except RequestError as exc:
            object_type = "playlist-blocking" if "_HLS_" in request.query else "other"
            return _error(exc.status, str(exc), cache="no-store", object_type=object_type)
        if "token=" in request.query and request.path.endswith(PLAYLIST_SUFFIX):
            argument = token_argument(request.query)
            if argument is not None:
                host = next((v for k, v in request.headers if k == "host"), None)
                host_bytes = None if host is None else host.encode("latin-1")
                return self._with_token(outcome, argument, host_bytes)
        return outcome

    def _with_token(
        self, outcome: Response | Hold, argument: bytes, host: bytes | None
    ) -> Response | Hold:
        """A playlist answer with ``argument`` on its URIs; a hold under a key of its own."""
        if isinstance(outcome, Hold):
            assert isinstance(outcome.key, PlaylistHoldKey | PartHoldKey)
            key = TokenHoldKey(outcome.key, argument, host)
            return Hold(key, outcome.deadline, outcome.object_type)
        if outcome.status != 200 or outcome.content_type != PLAYLIST_TYPE:
            return outcome
        return Response(
            200,
            self.templates.rewrite(outcome.body, argument, host),
            PLAYLIST_TYPE,
            outcome.cache_control.replace("public", "private"),
            outcome.object_type,
        )

    def resume(self, key: Hashable, now: float) -> Response | None:
        if isinstance(key, TokenHoldKey):
            answer = self.resume(key.key, now)
            if answer is None:
                return None
            rewritten = self._with_token(answer, key.argument, key.host)
            assert isinstance(rewritten, Response)
            return rewritten
        assert isinstance(key, PlaylistHoldKey | PartHoldKey)
        answers = self._stream(key.stream)
        if answers is None:
            return NO_SUCH_STREAM  # removed while requests waited on it
        return answers.resume(key)

    def expired(self, key: Hashable, now: float) -> Response:
        if isinstance(key, TokenHoldKey):
            key = key.key
        assert isinstance(key, PlaylistHoldKey | PartHoldKey)
        answers = self._stream(key.stream)
        if answers is None:
            return NO_SUCH_STREAM
        return answers.expired(key)

    # ------------------------------------------------------------------ routing
    def _stream(self, stream_id: str) -> StreamAnswers | None:
        """The answering state of a registered stream (rebuilt if its event was replaced)."""
        event = self.streams.get(stream_id)
        if event is None:
            self._answers.pop(stream_id, None)
            return None
        answers = self._answers.get(stream_id)
        if answers is None or answers.event is not event:
            answers = self._answers[stream_id] = StreamAnswers(stream_id, event)
        return answers

    def _route(self, request: Request, now: float) -> Response | Hold:
        path = decode_path(request.path)
        if path is None:
            return NOT_FOUND
        live = parse_live_path(path)
        if live is not None:
            answers = self._stream(live.stream_id(self.streams.default))
            if answers is None:
                return NO_SUCH_STREAM
            if live.file == "recording.json":
                return answers.recording_info()
            if live.rendition is None:
                return answers.multivariant(request.query)
            return answers.media(live, request.query, now)
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
        endpoint = self.endpoints.get(path)
        if endpoint is not None:
            return endpoint(request, now)
        return NOT_FOUND


class StreamAnswers:
    """The answers of one stream: its playlists and media, holds keyed by stream id."""

    def __init__(self, stream_id: str, event: LiveEvent) -> None:
        self.stream_id = stream_id
        self.event = event
        td = event.config.target_duration
        self.hold_limit = 3.0 * td  # §6.2.5.2: a blocked request times out after 3 × TD → 503
        self.blocking_cache = f"public, max-age={6 * td}"
        self.plain_cache = f"public, max-age={max(1, td // 2)}"
        self._responses: dict[tuple[str, bool, bool], tuple[int, Response]] = {}

    def resume(self, key: PlaylistHoldKey | PartHoldKey) -> Response | None:
        rendition = self.event.renditions[key.rendition]
        if isinstance(key, PartHoldKey):
            return self._resume_part(rendition, key.msn, key.part)
        if self._satisfied(rendition, key.msn, key.part):
            return self._playlist(key.rendition, skip=key.skip, blocking=True)
        return None

    def expired(self, key: PlaylistHoldKey | PartHoldKey) -> Response:
        object_type = "playlist-blocking" if isinstance(key, PlaylistHoldKey) else "part"
        return _error(503, f"not produced within {self.hold_limit:g} s", object_type=object_type)

    def media(self, live: LivePath, query: str, now: float) -> Response | Hold:
        assert live.rendition is not None
        rendition = self.event.renditions.get(live.rendition)
        if rendition is None:
            return _error(404, "no such rendition")
        if live.file == "index.m3u8":
            recorded = parse_range(query)
            directives = parse_directives(query)
            if recorded is not None:
                if directives.blocking or directives.skip is not None:
                    raise RequestError(400, "_HLS_ directives do not apply to start/end playlists")
                return self._recorded_playlist(rendition, recorded)
            return self._media_playlist(rendition, directives, now)
        content_type = _content_type(rendition)
        if live.file == "init":
            data = rendition.init_data(f"init-{live.init}.mp4")
            return _object(data, content_type, "init")
        assert live.msn is not None
        if live.file == "seg":
            return _object(rendition.segment_data(live.msn), content_type, "segment")
        msn, index = live.msn, live.part
        assert index is not None
        data = rendition.part_data(msn, index)
        if data is not None:
            return _object(data, content_type, "part")
        if rendition.part_is_pending(msn, index):
            key = PartHoldKey(self.stream_id, rendition.name, msn, index)
            return Hold(key, now + self.hold_limit, "part")
        return _error(404, "no such part", object_type="part")

    def _resume_part(self, rendition: LiveRendition, msn: int, index: int) -> Response | None:
        data = rendition.part_data(msn, index)
        if data is not None:
            return Response(200, data, _content_type(rendition), IMMUTABLE, "part", permanent=True)
        if rendition.part_is_pending(msn, index):
            return None
        return _error(404, "the hinted part was never produced", object_type="part")

    # ------------------------------------------------------------------ playlists
    def multivariant(self, query: str = "") -> Response:
        if not self.event.ready:
            return _starting(b"the event is starting\n", "multivariant", reusable=True)
        recorded = parse_range(query)
        return Response(
            200,
            self.event.multivariant_bytes(recorded.query() if recorded else ""),
            PLAYLIST_TYPE,
            self.plain_cache,
            "multivariant",
            reusable=True,
        )

    def _recorded_playlist(self, rendition: LiveRendition, recorded: RecordedRange) -> Response:
        """A start-over (EVENT) or VOD playlist over the recording; 404 with the reason when the
        recording does not cover the range."""
        try:
            data = rendition.recorded_playlist(
                recorded.start, recorded.end, dvr_window=self.event.dvr_window
            )
        except StoreError as exc:
            return _error(404, str(exc), object_type="playlist-dvr")
        closed = data.endswith(b"#EXT-X-ENDLIST\n")
        cache = IMMUTABLE if closed else self.plain_cache
        return Response(200, data, PLAYLIST_TYPE, cache, "playlist-dvr", reusable=True)

    def recording_info(self) -> Response:
        """What a player needs for a seek bar: the recorded range, the DVR window, ended."""
        ranges = [r.recorded_range() for r in self.event.renditions.values()]
        known = [r for r in ranges if r is not None]
        info: dict[str, object] = {"recorded": bool(known), "ended": self.event.ended}
        if known:
            first, live_end = max(r[0] for r in known), min(r[1] for r in known)
            window = self.event.dvr_window
            oldest = first if window <= 0 or self.event.ended else max(first, live_end - window)
            info.update(first=first, live_end=live_end, dvr_window=window, oldest_start=oldest)
        body = (json.dumps(info) + "\n").encode()
        return Response(200, body, "application/json", "no-cache", "other", reusable=True)

    def _media_playlist(
        self, rendition: LiveRendition, d: Directives, now: float
    ) -> Response | Hold:
        skip = d.skip is not None
        position = rendition.position()
        if position is None:  # the event is starting (or an origin restarted, waiting for its
            # encoder): retry, or — behind an edge — the next origin (proxy_next_upstream 503)
            return _starting(b"the rendition has not started\n", "playlist-plain")
        if not d.blocking or rendition.ended:
            return self._playlist(rendition.name, skip=skip, blocking=False)
        check_blocking_request(d, position, self.event.config.part_target)
        assert d.msn is not None
        if self._satisfied(rendition, d.msn, d.part):
            return self._playlist(rendition.name, skip=skip, blocking=True)
        key = PlaylistHoldKey(self.stream_id, rendition.name, d.msn, d.part, skip)
        return Hold(key, now + self.hold_limit, "playlist-blocking")

    @staticmethod
    def _satisfied(rendition: LiveRendition, msn: int, part: int | None) -> bool:
        if rendition.ended:
            return True
        if part is None:
            return rendition.has_segment(msn)
        return rendition.has_part(msn, part)

    def _playlist(self, name: str, *, skip: bool, blocking: bool) -> Response:
        """One Response per (rendition, skip, blocking) and version, shared by every viewer."""
        key = (name, skip, blocking)
        cached = self._responses.get(key)
        if cached is not None and cached[0] == self.event.version:
            return cached[1]
        cache = self.blocking_cache if blocking else self.plain_cache
        if self.event.renditions[name].serves_vod:
            cache = IMMUTABLE  # the VOD of the whole event: it never changes again
        response = Response(
            200,
            self.event.media_playlist_bytes(name, skip=skip),
            PLAYLIST_TYPE,
            cache,
            "playlist-blocking" if blocking else "playlist-plain",
            reusable=True,
        )
        self._responses[key] = (self.event.version, response)
        return response


def _content_type(rendition: LiveRendition) -> str:
    return "audio/mp4" if rendition.track and rendition.track.kind == "audio" else "video/mp4"


def _object(data: bytes | None, content_type: str, object_type: str) -> Response:
    if data is None:
        return _error(404, f"no such {object_type}", object_type=object_type)
    return Response(200, data, content_type, IMMUTABLE, object_type, permanent=True)
