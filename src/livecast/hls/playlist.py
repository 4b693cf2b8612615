"""The playlist model: media and multivariant playlists, rendered by the packager and parsed by
the probe and the player model. Tag units live in ``hls.tags``; this module orders them.

Media playlist layout (draft-pantos-hls-rfc8216bis §4.4):
  #EXTM3U, #EXT-X-VERSION, #EXT-X-TARGETDURATION, [#EXT-X-PLAYLIST-TYPE],
  #EXT-X-SERVER-CONTROL, #EXT-X-PART-INF, #EXT-X-MEDIA-SEQUENCE, #EXT-X-DISCONTINUITY-SEQUENCE,
  [#EXT-X-SKIP], then per segment [#EXT-X-DISCONTINUITY] [#EXT-X-MAP] [#EXT-X-PROGRAM-DATE-TIME]
  #EXT-X-PART… #EXTINF [#EXT-X-GAP] + URI, trailing #EXT-X-PART tags of the segment being
  produced, #EXT-X-PRELOAD-HINT, #EXT-X-RENDITION-REPORT…, [#EXT-X-ENDLIST].

§4.4.3.5 EXT-X-PLAYLIST-TYPE: "EVENT … Media Segments can only be added to the end of the Media
Playlist. VOD … the Media Playlist cannot change." §4.4.4.7 EXT-X-GAP: "indicates that the
segment URI to which it applies does not contain media data and SHOULD NOT be loaded by clients"
(the recording lost that segment). The segment part of the rendering is its own function so that
the recording can append a segment's lines to its on-disk playlist body once (``store.archive``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from livecast.errors import PlaylistError
from livecast.hls.attributes import fmt_float, format_pdt, parse_float, parse_int, parse_pdt
from livecast.hls.tags import (
    MapTag,
    Media,
    PartInf,
    PartTag,
    PreloadHint,
    RenditionReport,
    ServerControl,
    Skip,
    StreamInf,
)


@dataclass(slots=True)
class SegmentEntry:
    """One media segment; ``uri is None`` marks the segment still being produced (parts only)."""

    uri: str | None
    duration: float = 0.0
    parts: list[PartTag] = field(default_factory=list)
    pdt: float | None = None
    discontinuity: bool = False
    map: MapTag | None = None
    gap: bool = False  # EXT-X-GAP: the segment has no media (clients skip it)


PLAYLIST_TYPES = ("EVENT", "VOD")


@dataclass(slots=True)
class MediaPlaylist:
    target_duration: int
    media_sequence: int = 0
    version: int = 9
    discontinuity_sequence: int = 0
    independent_segments: bool = True
    server_control: ServerControl | None = None
    part_inf: PartInf | None = None
    skip: Skip | None = None
    segments: list[SegmentEntry] = field(default_factory=list)
    preload_hints: list[PreloadHint] = field(default_factory=list)
    rendition_reports: list[RenditionReport] = field(default_factory=list)
    endlist: bool = False
    playlist_type: str | None = None  # "EVENT" or "VOD" (EXT-X-PLAYLIST-TYPE), None for live

    @property
    def first_listed_msn(self) -> int:
        """MSN of the first segment whose tags are in the playlist (after any skip)."""
        return self.media_sequence + (self.skip.skipped_segments if self.skip else 0)

    def msn_of(self, index: int) -> int:
        return self.first_listed_msn + index

    def next_part(self) -> tuple[int, int] | None:
        """(msn, index) of the part after the newest listed one — part 0 of the next segment when
        the newest part closed its segment (it has its URI): what a blocking reload asks for."""
        last = self.last_part()
        if last is None:
            return None
        msn, index = last
        closed = self.segments[msn - self.first_listed_msn].uri is not None
        return (msn + 1, 0) if closed else (msn, index + 1)

    def last_part(self) -> tuple[int, int] | None:
        """(msn, part index) of the newest listed part, if any."""
        for index in range(len(self.segments) - 1, -1, -1):
            parts = self.segments[index].parts
            if parts:
                return self.msn_of(index), len(parts) - 1
        return None


def render_media_playlist(pl: MediaPlaylist) -> str:
    lines = render_media_header(pl)
    for seg in pl.segments:
        lines.extend(render_segment(seg))
    lines.extend(hint.render() for hint in pl.preload_hints)
    lines.extend(report.render() for report in pl.rendition_reports)
    if pl.endlist:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def render_media_header(pl: MediaPlaylist) -> list[str]:
    """The playlist tags before the first segment."""
    lines = [
        "#EXTM3U",
        f"#EXT-X-VERSION:{pl.version}",
        f"#EXT-X-TARGETDURATION:{pl.target_duration}",
    ]
    if pl.playlist_type is not None:
        lines.append(f"#EXT-X-PLAYLIST-TYPE:{pl.playlist_type}")
    if pl.independent_segments:
        lines.append("#EXT-X-INDEPENDENT-SEGMENTS")
    if pl.server_control is not None:
        lines.append(pl.server_control.render())
    if pl.part_inf is not None:
        lines.append(pl.part_inf.render())
    lines.append(f"#EXT-X-MEDIA-SEQUENCE:{pl.media_sequence}")
    if pl.discontinuity_sequence:
        lines.append(f"#EXT-X-DISCONTINUITY-SEQUENCE:{pl.discontinuity_sequence}")
    if pl.skip is not None:
        lines.append(pl.skip.render())
    return lines


def render_segment(seg: SegmentEntry) -> list[str]:
    """One segment's lines, from EXT-X-DISCONTINUITY to its URI."""
    lines = []
    if seg.discontinuity:
        lines.append("#EXT-X-DISCONTINUITY")
    if seg.map is not None:
        lines.append(seg.map.render())
    if seg.pdt is not None:
        lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{format_pdt(seg.pdt)}")
    lines.extend(part.render() for part in seg.parts)
    if seg.uri is not None:
        lines.append(f"#EXTINF:{fmt_float(seg.duration)},")
        if seg.gap:
            lines.append("#EXT-X-GAP")
        lines.append(seg.uri)
    return lines


def _playlist_type(value: str) -> str:
    if value not in PLAYLIST_TYPES:
        raise PlaylistError(f"EXT-X-PLAYLIST-TYPE must be EVENT or VOD, got {value!r}")
    return value


def parse_media_playlist(text: str) -> MediaPlaylist:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines or lines[0] != "#EXTM3U":
        raise PlaylistError("a playlist must start with #EXTM3U")
    pl = MediaPlaylist(target_duration=0, independent_segments=False)
    seg = SegmentEntry(uri=None)
    seen_target = False
    for line in lines[1:]:
        if not line.startswith("#"):
            seg.uri = line
            pl.segments.append(seg)
            seg = SegmentEntry(uri=None)
            continue
        name, _, value = line.partition(":")
        if name == "#EXT-X-TARGETDURATION":
            pl.target_duration = parse_int(value, name)
            seen_target = True
        elif name == "#EXTINF":
            seg.duration = parse_float(value.split(",", 1)[0], name)
        else:
            handler = MEDIA_TAGS.get(name)
            if handler is not None:
                handler(pl, seg, value)
    if seg.parts or seg.pdt is not None:
        pl.segments.append(seg)  # the segment still being produced
    if not seen_target:
        raise PlaylistError("media playlist lacks #EXT-X-TARGETDURATION")
    return pl


TagHandler = Callable[[MediaPlaylist, SegmentEntry, str], None]  # (playlist, open segment, value)


def _playlist_value(attribute: str, parse: Callable[[str], object]) -> TagHandler:
    def handle(pl: MediaPlaylist, seg: SegmentEntry, value: str) -> None:
        setattr(pl, attribute, parse(value))

    return handle


def _segment_value(attribute: str, parse: Callable[[str], object]) -> TagHandler:
    def handle(pl: MediaPlaylist, seg: SegmentEntry, value: str) -> None:
        setattr(seg, attribute, parse(value))

    return handle


def _playlist_item(attribute: str, parse: Callable[[str], object]) -> TagHandler:
    def handle(pl: MediaPlaylist, seg: SegmentEntry, value: str) -> None:
        getattr(pl, attribute).append(parse(value))

    return handle


def _segment_item(attribute: str, parse: Callable[[str], object]) -> TagHandler:
    def handle(pl: MediaPlaylist, seg: SegmentEntry, value: str) -> None:
        getattr(seg, attribute).append(parse(value))

    return handle


def _integer(name: str) -> Callable[[str], int]:
    return lambda value: parse_int(value, name)


def _present(value: str) -> bool:
    return True


# Media playlist tags other than EXT-X-TARGETDURATION and EXTINF (read by the parser itself).
# Unknown tags are ignored, as §4.1 requires of clients.
MEDIA_TAGS: dict[str, TagHandler] = {
    "#EXT-X-VERSION": _playlist_value("version", _integer("#EXT-X-VERSION")),
    "#EXT-X-MEDIA-SEQUENCE": _playlist_value("media_sequence", _integer("#EXT-X-MEDIA-SEQUENCE")),
    "#EXT-X-DISCONTINUITY-SEQUENCE": _playlist_value(
        "discontinuity_sequence", _integer("#EXT-X-DISCONTINUITY-SEQUENCE")
    ),
    "#EXT-X-INDEPENDENT-SEGMENTS": _playlist_value("independent_segments", _present),
    ServerControl.TAG: _playlist_value("server_control", ServerControl.parse),
    PartInf.TAG: _playlist_value("part_inf", PartInf.parse),
    Skip.TAG: _playlist_value("skip", Skip.parse),
    "#EXT-X-PLAYLIST-TYPE": _playlist_value("playlist_type", _playlist_type),
    "#EXT-X-DISCONTINUITY": _segment_value("discontinuity", _present),
    "#EXT-X-GAP": _segment_value("gap", _present),
    MapTag.TAG: _segment_value("map", MapTag.parse),
    "#EXT-X-PROGRAM-DATE-TIME": _segment_value("pdt", parse_pdt),
    PartTag.TAG: _segment_item("parts", PartTag.parse),
    PreloadHint.TAG: _playlist_item("preload_hints", PreloadHint.parse),
    RenditionReport.TAG: _playlist_item("rendition_reports", RenditionReport.parse),
    "#EXT-X-ENDLIST": _playlist_value("endlist", _present),
}


@dataclass(slots=True)
class MultivariantPlaylist:
    variants: list[StreamInf] = field(default_factory=list)
    media: list[Media] = field(default_factory=list)
    version: int = 9
    independent_segments: bool = True


def render_multivariant_playlist(pl: MultivariantPlaylist) -> str:
    lines = ["#EXTM3U", f"#EXT-X-VERSION:{pl.version}"]
    if pl.independent_segments:
        lines.append("#EXT-X-INDEPENDENT-SEGMENTS")
    lines.extend(media.render() for media in pl.media)
    lines.extend(variant.render() for variant in pl.variants)
    return "\n".join(lines) + "\n"


def parse_multivariant_playlist(text: str) -> MultivariantPlaylist:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines or lines[0] != "#EXTM3U":
        raise PlaylistError("a playlist must start with #EXTM3U")
    pl = MultivariantPlaylist(independent_segments=False)
    pending: str | None = None
    for line in lines[1:]:
        if pending is not None:
            if line.startswith("#"):
                raise PlaylistError("EXT-X-STREAM-INF must be followed by a URI line")
            pl.variants.append(StreamInf.parse(pending, line))
            pending = None
            continue
        name, _, value = line.partition(":")
        if name == StreamInf.TAG:
            pending = value
        elif name == Media.TAG:
            pl.media.append(Media.parse(value))
        elif name == "#EXT-X-VERSION":
            pl.version = parse_int(value, name)
        elif name == "#EXT-X-INDEPENDENT-SEGMENTS":
            pl.independent_segments = True
        elif name == "#EXT-X-TARGETDURATION":
            raise PlaylistError("this is a media playlist, not a multivariant playlist")
    if pending is not None:
        raise PlaylistError("EXT-X-STREAM-INF at the end without a URI line")
    return pl
