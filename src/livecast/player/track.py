"""What one track (video variant, audio rendition, or a muxed variant) can fetch next (pure).

A media playlist is indexed into :class:`MediaItem` objects keyed by position ``(msn, part)``:
parts in LL-HLS mode (plus the whole segments whose part tags were dropped, for a viewer that
fell behind), whole segments (``part == SEGMENT``) in classic mode, each with its program
time range (segment PDT + the durations before it; without PDT, ``msn × target duration``).

Positions follow the LL-HLS rules: after a segment's last part comes part 0 of the next MSN; the
part after the newest listed one is what a blocking reload (``_HLS_msn``/``_HLS_part``) asks for
and what EXT-X-PRELOAD-HINT names.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit, urlunsplit

from livecast.errors import PlaylistError
from livecast.hls.playlist import MediaPlaylist, parse_multivariant_playlist
from livecast.hls.tags import Media, StreamInf

SEGMENT = -1  # the part index of a whole segment (classic mode)
Position = tuple[int, int]


def join_url(base: str, uri: str) -> str:
    """``urljoin(base, uri)``, fast for a plain relative file name."""
    if not uri or "://" in uri or uri[0] in "/.?#" or "/." in uri:
        return urljoin(base, uri)
    cut = len(base)
    for mark in ("?", "#"):
        found = base.find(mark)
        if found >= 0:
            cut = min(cut, found)
    path = base[:cut]
    return path[: path.rfind("/") + 1] + uri


@dataclass(frozen=True, slots=True)
class MediaItem:
    position: Position
    url: str
    start: float  # program time, epoch seconds
    end: float
    independent: bool
    closes_segment: bool  # last part of a completed segment (or a whole segment)
    init_url: str | None

    @property
    def successor(self) -> Position:
        msn, part = self.position
        if part == SEGMENT:
            return (msn + 1, SEGMENT)
        return (msn + 1, 0) if self.closes_segment else (msn, part + 1)


def index_playlist(pl: MediaPlaylist, base_url: str, parts: bool) -> dict[Position, MediaItem]:
    """Every fetchable item of ``pl``: its parts (``parts=True``) or its complete segments."""
    items: dict[Position, MediaItem] = {}
    init_url: str | None = None
    clock: float | None = None
    for offset, seg in enumerate(pl.segments):
        msn = pl.msn_of(offset)
        if seg.map is not None:
            init_url = join_url(base_url, seg.map.uri)
        if seg.pdt is not None:
            clock = seg.pdt
        elif clock is None:
            clock = float(msn * pl.target_duration)
        if parts and seg.parts:
            start = clock
            for index, part in enumerate(seg.parts):
                closes = seg.uri is not None and index == len(seg.parts) - 1
                item = MediaItem(
                    (msn, index),
                    join_url(base_url, part.uri),
                    start,
                    start + part.duration,
                    part.independent,
                    closes,
                    init_url,
                )
                items[item.position] = item
                start += part.duration
        elif seg.uri is not None and not seg.gap:  # classic mode, or part tags dropped
            item = MediaItem(
                (msn, SEGMENT),
                join_url(base_url, seg.uri),
                clock,
                clock + seg.duration,
                True,
                True,
                init_url,
            )
            items[item.position] = item
        clock += seg.duration if seg.uri is not None else sum(p.duration for p in seg.parts)
    return items


def newest_media_end(pl: MediaPlaylist) -> float | None:
    """Program time (epoch seconds) at the end of the newest media ``pl`` lists — a part or a
    segment, whichever mode reads it — or None without PROGRAM-DATE-TIME. A viewer's
    ``now − newest_media_end`` is the age of the playlist it holds (staleness at an edge)."""
    clock: float | None = None
    for seg in pl.segments:
        if seg.pdt is not None:
            clock = seg.pdt
        if clock is not None:
            clock += seg.duration if seg.uri is not None else sum(p.duration for p in seg.parts)
    return clock


def fragment_duration(pl: MediaPlaylist | None, low_latency: bool) -> float:
    """Seconds of media one fetch brings: the part target, or the target duration."""
    if pl is None:
        return 1.0
    if low_latency and pl.part_inf is not None:
        return pl.part_inf.part_target
    return float(pl.target_duration)


def newest_init_url(pl: MediaPlaylist, base_url: str) -> str | None:
    for seg in reversed(pl.segments):
        if seg.map is not None:
            return join_url(base_url, seg.map.uri)
    return None


def newest_position(pl: MediaPlaylist) -> Position:
    """The newest listed part, or (next MSN, -1) without parts: changes when the playlist does."""
    last = pl.last_part()
    return last if last is not None else (pl.msn_of(len(pl.segments)), -1)


def hinted_part(pl: MediaPlaylist, base_url: str) -> tuple[Position, str] | None:
    """The EXT-X-PRELOAD-HINT TYPE=PART, at the position after the newest listed part."""
    hint = next((h for h in pl.preload_hints if h.type == "PART"), None)
    position = pl.next_part()
    if hint is None or position is None:
        return None
    return position, join_url(base_url, hint.uri)


def join_tracks(
    url: str, text: str, choose_level: Callable[[list[int]], int]
) -> tuple[list[StreamInf], int, dict[str, TrackState]]:
    """What the playlist at ``url`` offers a joining viewer: the variants (ascending bandwidth),
    the start rendition ``choose_level(bitrates)`` picks, and its tracks — video, plus the audio
    rendition of its AUDIO group if any — or one muxed track when ``url`` names a media
    playlist."""
    if "#EXT-X-TARGETDURATION" in text:
        return [StreamInf(bandwidth=0, uri=url)], 0, {"video": TrackState("video", "av", url)}
    parsed = parse_multivariant_playlist(text)
    if not parsed.variants:
        raise PlaylistError("the multivariant playlist lists no variant")
    variants = sorted(parsed.variants, key=lambda v: v.bandwidth)
    level = choose_level([v.bandwidth for v in variants])
    variant = variants[level]
    audio = audio_rendition_uri(parsed.media, variant.audio)
    video = TrackState("video", "av" if audio is None else "v", urljoin(url, variant.uri))
    tracks = {"video": video}
    if audio is not None:
        tracks["audio"] = TrackState("audio", "a", urljoin(url, audio))
    return variants, level, tracks


def audio_rendition_uri(media: Sequence[Media], group: str | None) -> str | None:
    """URI of the AUDIO rendition of ``group`` (its DEFAULT=YES one first), if any."""
    if group is None:
        return None
    candidates = [
        m for m in media if m.type == "AUDIO" and m.group_id == group and m.uri is not None
    ]
    if not candidates:
        return None
    return next((m for m in candidates if m.default), candidates[0]).uri


def blocking_url(url: str, msn: int, part: int | None) -> str:
    """``url`` with ``_HLS_msn`` (and ``_HLS_part``) replacing any directives already there."""
    before, _, query = url.partition("#")[0].partition("?")  # as urlsplit, without its cost
    kept = [p for p in query.split("&") if p and not p.startswith("_HLS_")] if query else []
    kept.append(f"_HLS_msn={msn}")
    if part is not None:
        kept.append(f"_HLS_part={part}")
    return f"{before}?{'&'.join(kept)}"


def live_offset(pl: MediaPlaylist, low_latency: bool, sync_duration_count: int) -> float:
    """How far behind the newest media to start: PART-HOLD-BACK (else 3 part targets) in
    low-latency mode, as hls.js ``lowLatencyMode``; ``liveSyncDurationCount`` target durations
    otherwise."""
    if not low_latency:
        return float(sync_duration_count * pl.target_duration)
    control = pl.server_control
    if control is not None and control.part_hold_back is not None:
        return control.part_hold_back
    return 3 * (pl.part_inf.part_target if pl.part_inf else 1.0)


def live_start(items: dict[Position, MediaItem], behind: float) -> tuple[MediaItem, float] | None:
    """Where to start ``behind`` seconds before the newest item's end (the live edge): the newest
    independent item starting at least that far back (else the oldest independent item), and
    the program time to play from — that point, or the item's start if it begins later."""
    if not items:
        return None
    ordered = sorted(items.values(), key=lambda item: item.position)
    edge = ordered[-1].end
    independent = [item for item in ordered if item.independent]
    if not independent:
        return None
    eligible = [item for item in independent if item.start <= edge - behind + 1e-6]
    item = eligible[-1] if eligible else independent[0]
    return item, max(item.start, max(i.end for i in ordered) - behind)


def start_over_url(url: str, when: float) -> str:
    """``url`` asking for the recording from program time ``when`` (Unix seconds): the origin
    answers ``main.m3u8?start=…`` with media playlist URIs carrying the same ``start``, each an
    EVENT playlist from the segment holding ``when`` (``origin.dvr``)."""
    split = urlsplit(url)
    kept = [p for p in split.query.split("&") if p and not p.startswith(("start=", "end="))]
    kept.append(f"start={when:.3f}")
    return urlunsplit(split._replace(query="&".join(kept), fragment=""))


def seek_start(items: dict[Position, MediaItem], when: float) -> tuple[MediaItem, float] | None:
    """Where a start-over viewer starts: the independent item holding program time ``when`` (the
    one before it if that is not independent; the first listed when ``when`` is older than the
    playlist), and the program time to play from — ``when``, or that item's start if later."""
    ordered = sorted(items.values(), key=lambda item: item.position)
    independent = [item for item in ordered if item.independent]
    if not independent:
        return None
    eligible = [item for item in independent if item.start <= when + 1e-6]
    item = eligible[-1] if eligible else independent[0]
    return item, max(item.start, when)


def item_at(items: dict[Position, MediaItem], when: float) -> MediaItem | None:
    """The item whose range contains program time ``when`` (else the first one after it)."""
    ordered = sorted(items.values(), key=lambda item: item.position)
    for item in ordered:
        if item.end > when + 1e-6:
            return item
    return None


@dataclass(slots=True)
class TrackState:
    """Fetch state of one track: its playlist, what it has and what it needs next."""

    name: str  # "video" or "audio"
    object_type: str  # CMCD ot: "v", "a" or "av"
    playlist_url: str
    generation: int = 0  # bumped on a rendition switch: older answers are ignored
    playlist: MediaPlaylist | None = None
    items: dict[Position, MediaItem] = field(default_factory=dict)
    next_position: Position | None = None
    init_url: str | None = None
    loaded_inits: set[str] = field(default_factory=set)
    playlist_request: int | None = None
    media_request: int | None = None
    hint: tuple[Position, str] | None = None
    hint_requested: Position | None = None
    hint_listed_at: float | None = None  # when a playlist first listed the requested hint
    ended: bool = False
    last_playlist_at: float | None = None
    unchanged_reloads: int = 0
    advanced_at: float | None = None  # when a playlist last advanced (hls.js advancedDateTime)
    age_header: float = 0.0  # the last playlist's Age header, seconds (hls.js ageHeader)
    tune_in_goal: float = 0.0  # hls.js tuneInGoal of the last playlist (player.tunein)
    tuned_reload: tuple[int | None, int | None] | None = None  # tuned-in (msn, part) if any

    def reloaded(
        self, previous: Position | None, newest: Position, now: float, age: float | None
    ) -> None:
        """A playlist answer whose newest position is ``newest`` (``previous`` before it)."""
        self.unchanged_reloads = 0 if newest != previous else self.unchanged_reloads + 1
        if previous is None or newest > previous:
            self.advanced_at = now
        self.last_playlist_at = now
        self.age_header = age or 0.0

    def release(self, request_id: int) -> None:
        """The request ``request_id`` is no longer in flight (answered, failed)."""
        if self.playlist_request == request_id:
            self.playlist_request = None
        if self.media_request == request_id:
            self.media_request = None

    def switch_to(self, playlist_url: str) -> None:
        """Another rendition: its playlist from scratch (answers for this one are ignored)."""
        self.playlist_url = playlist_url
        self.generation += 1
        self.playlist = None
        self.items = {}
        self.hint = None
        self.hint_requested = None
        self.init_url = None

    def normalize_next(self) -> None:
        """Make the next position one the playlist lists: after a part fetched from a hint the
        guessed index may be past its segment's end (→ part 0 of the next MSN); a part whose tag
        was dropped is fetched within its whole segment, and after a whole segment come parts
        again when they are listed (hls.js loads the segment when the part is gone)."""
        self._skip_gaps()
        if self.next_position is None or self.next_position in self.items:
            return
        msn, part = self.next_position
        previous = self.items.get((msn, part - 1))
        if part > 0 and previous is not None and previous.closes_segment:
            self.next_position = (msn + 1, 0)
        elif part == SEGMENT and (msn, 0) in self.items:
            self.next_position = (msn, 0)
        elif part >= 0 and (msn, SEGMENT) in self.items:
            self.next_position = (msn, SEGMENT)

    def _skip_gaps(self) -> None:
        """Past the segments listed with EXT-X-GAP (no media: "clients SHOULD NOT load" them) —
        as hls.js does, to the next segment's start."""
        pl = self.playlist
        while pl is not None and self.next_position is not None:
            msn, part = self.next_position
            offset = msn - pl.first_listed_msn
            if not (0 <= offset < len(pl.segments) and pl.segments[offset].gap):
                return
            self.next_position = (msn + 1, SEGMENT if part == SEGMENT else 0)

    def at_switch_point(self, item: MediaItem | None) -> bool:
        """Whether a rendition switch may happen before ``item``, the next to fetch: at an
        INDEPENDENT part — or, for the hinted part (``None``: its attributes are unknown yet), at
        part 0 of a segment under EXT-X-INDEPENDENT-SEGMENTS."""
        if item is not None:
            return item.independent
        pl, position = self.playlist, self.next_position
        return (
            pl is not None and pl.independent_segments and position is not None and position[1] == 0
        )

    def skip_if_behind(self, received: Collection[Position]) -> None:
        """Fell out of the playlist window: jump to the oldest listed item (hls.js seeks); the
        buffer then skips the hole (``player.buffer``)."""
        if self.next_position is None or not self.items:
            return
        oldest = min(self.items)
        if self.next_position < oldest and self.next_position not in received:
            self.next_position = oldest

    def past_last_item(self) -> bool:
        return self.next_position is not None and (
            not self.items or self.next_position > max(self.items)
        )
