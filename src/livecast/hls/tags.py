"""Attribute-list tags of LL-HLS playlists: one dataclass per tag, each with ``render()`` and
``parse(value)``, the spec text (draft-pantos-hls-rfc8216bis-18) quoted beside it.
Round trips (``parse(render(x)) == x``) are tested in tests/unit/test_tags.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from livecast.errors import PlaylistError
from livecast.hls.attributes import (
    fmt_float,
    parse_attributes,
    parse_bool,
    parse_float,
    parse_int,
    quote,
    render_attributes,
    unquote,
)


def _require(attrs: dict[str, str], name: str, tag: str) -> str:
    if name not in attrs:
        raise PlaylistError(f"{tag} lacks its required attribute {name}")
    return attrs[name]


@dataclass(frozen=True, slots=True)
class ServerControl:
    """§4.4.3.8 EXT-X-SERVER-CONTROL: "allows the Server to indicate support for Delivery
    Directives". CAN-SKIP-UNTIL: "the Skip Boundary ... MUST be at least six times the Target
    Duration". CAN-BLOCK-RELOAD=YES: blocking playlist reload is supported. HOLD-BACK: "MUST be at
    least three times the Target Duration". PART-HOLD-BACK: "MUST be at least twice the Part Target
    Duration ... SHOULD be at least three times the Part Target Duration"."""

    can_block_reload: bool
    part_hold_back: float | None = None
    hold_back: float | None = None
    can_skip_until: float | None = None

    TAG = "#EXT-X-SERVER-CONTROL"

    def render(self) -> str:
        pairs: list[tuple[str, str]] = []
        if self.can_skip_until is not None:
            pairs.append(("CAN-SKIP-UNTIL", fmt_float(self.can_skip_until)))
        if self.can_block_reload:
            pairs.append(("CAN-BLOCK-RELOAD", "YES"))
        if self.hold_back is not None:
            pairs.append(("HOLD-BACK", fmt_float(self.hold_back)))
        if self.part_hold_back is not None:
            pairs.append(("PART-HOLD-BACK", fmt_float(self.part_hold_back)))
        return f"{self.TAG}:{render_attributes(pairs)}"

    @classmethod
    def parse(cls, value: str) -> ServerControl:
        a = parse_attributes(value)

        def opt(name: str) -> float | None:
            return parse_float(a[name], name) if name in a else None

        return cls(
            can_block_reload=parse_bool(a.get("CAN-BLOCK-RELOAD", "NO"), "CAN-BLOCK-RELOAD"),
            part_hold_back=opt("PART-HOLD-BACK"),
            hold_back=opt("HOLD-BACK"),
            can_skip_until=opt("CAN-SKIP-UNTIL"),
        )


@dataclass(frozen=True, slots=True)
class PartInf:
    """§4.4.3.7 EXT-X-PART-INF: "provides information about the Partial Segments in the Playlist.
    It is REQUIRED if a Playlist contains one or more EXT-X-PART tags." PART-TARGET: "indicates the
    Part Target Duration in seconds"."""

    part_target: float

    TAG = "#EXT-X-PART-INF"

    def render(self) -> str:
        return f"{self.TAG}:PART-TARGET={fmt_float(self.part_target)}"

    @classmethod
    def parse(cls, value: str) -> PartInf:
        a = parse_attributes(value)
        return cls(parse_float(_require(a, "PART-TARGET", cls.TAG), "PART-TARGET"))


@dataclass(frozen=True, slots=True)
class PartTag:
    """§4.4.4.9 EXT-X-PART: "identifies a Partial Segment". URI and DURATION are REQUIRED;
    INDEPENDENT=YES "indicates that the Partial Segment contains an independent frame"."""

    uri: str
    duration: float
    independent: bool = False

    TAG = "#EXT-X-PART"

    def render(self) -> str:
        pairs = [("DURATION", fmt_float(self.duration)), ("URI", quote(self.uri))]
        if self.independent:
            pairs.append(("INDEPENDENT", "YES"))
        return f"{self.TAG}:{render_attributes(pairs)}"

    @classmethod
    def parse(cls, value: str) -> PartTag:
        a = parse_attributes(value)
        return cls(
            uri=unquote(_require(a, "URI", cls.TAG)),
            duration=parse_float(_require(a, "DURATION", cls.TAG), "DURATION"),
            independent=parse_bool(a.get("INDEPENDENT", "NO"), "INDEPENDENT"),
        )


@dataclass(frozen=True, slots=True)
class PreloadHint:
    """§4.4.5.3 EXT-X-PRELOAD-HINT: "allows a Client loading media from a live stream to reduce the
    time to obtain a resource from the Server by issuing its request before the resource is
    available". TYPE is PART or MAP; "A Playlist MUST NOT contain more than one EXT-X-PRELOAD-HINT
    tag with the same TYPE attribute"."""

    type: str
    uri: str

    TAG = "#EXT-X-PRELOAD-HINT"

    def render(self) -> str:
        return f"{self.TAG}:{render_attributes([('TYPE', self.type), ('URI', quote(self.uri))])}"

    @classmethod
    def parse(cls, value: str) -> PreloadHint:
        a = parse_attributes(value)
        hint_type = _require(a, "TYPE", cls.TAG)
        if hint_type not in ("PART", "MAP"):
            raise PlaylistError(f"EXT-X-PRELOAD-HINT TYPE must be PART or MAP, got {hint_type}")
        return cls(hint_type, unquote(_require(a, "URI", cls.TAG)))


@dataclass(frozen=True, slots=True)
class RenditionReport:
    """§4.4.5.4 EXT-X-RENDITION-REPORT: "carries information about an associated Rendition that
    is as up-to-date as the Playlist that contains it". LAST-MSN: "the Media Sequence Number of the
    last Media Segment currently in the specified Rendition"; LAST-PART: "the Part Index of the
    last Partial Segment currently in the specified Rendition whose Media Sequence Number is equal
    to the LAST-MSN attribute value"."""

    uri: str
    last_msn: int
    last_part: int | None = None

    TAG = "#EXT-X-RENDITION-REPORT"

    def render(self) -> str:
        pairs = [("URI", quote(self.uri)), ("LAST-MSN", str(self.last_msn))]
        if self.last_part is not None:
            pairs.append(("LAST-PART", str(self.last_part)))
        return f"{self.TAG}:{render_attributes(pairs)}"

    @classmethod
    def parse(cls, value: str) -> RenditionReport:
        a = parse_attributes(value)
        return cls(
            uri=unquote(_require(a, "URI", cls.TAG)),
            last_msn=parse_int(_require(a, "LAST-MSN", cls.TAG), "LAST-MSN"),
            last_part=parse_int(a["LAST-PART"], "LAST-PART") if "LAST-PART" in a else None,
        )


@dataclass(frozen=True, slots=True)
class Skip:
    """§4.4.5.2 EXT-X-SKIP: "indicates that the Server has removed Media Segment tags from the
    Playlist ... SKIPPED-SEGMENTS: the number of Media Segments that have been removed"."""

    skipped_segments: int

    TAG = "#EXT-X-SKIP"

    def render(self) -> str:
        return f"{self.TAG}:SKIPPED-SEGMENTS={self.skipped_segments}"

    @classmethod
    def parse(cls, value: str) -> Skip:
        a = parse_attributes(value)
        return cls(parse_int(_require(a, "SKIPPED-SEGMENTS", cls.TAG), "SKIPPED-SEGMENTS"))


@dataclass(frozen=True, slots=True)
class MapTag:
    """§4.4.4.5 EXT-X-MAP: "specifies how to obtain the Media Initialization Section required to
    parse the applicable Media Segments"."""

    uri: str

    TAG = "#EXT-X-MAP"

    def render(self) -> str:
        return f"{self.TAG}:URI={quote(self.uri)}"

    @classmethod
    def parse(cls, value: str) -> MapTag:
        return cls(unquote(_require(parse_attributes(value), "URI", cls.TAG)))


@dataclass(frozen=True, slots=True)
class StreamInf:
    """§4.4.6.2 EXT-X-STREAM-INF: "specifies a Variant Stream". BANDWIDTH: "the peak segment bit
    rate of the Variant Stream" (REQUIRED); AVERAGE-BANDWIDTH: "the average segment bit rate";
    CODECS, RESOLUTION, FRAME-RATE ("the maximum frame rate ... rounded to three decimal places");
    AUDIO: the GROUP-ID of the audio renditions. The URI line follows the tag."""

    bandwidth: int
    uri: str
    average_bandwidth: int | None = None
    codecs: str | None = None
    resolution: tuple[int, int] | None = None
    frame_rate: float | None = None
    audio: str | None = None

    TAG = "#EXT-X-STREAM-INF"

    def render(self) -> str:
        pairs = [("BANDWIDTH", str(self.bandwidth))]
        if self.average_bandwidth is not None:
            pairs.append(("AVERAGE-BANDWIDTH", str(self.average_bandwidth)))
        if self.codecs is not None:
            pairs.append(("CODECS", quote(self.codecs)))
        if self.resolution is not None:
            pairs.append(("RESOLUTION", f"{self.resolution[0]}x{self.resolution[1]}"))
        if self.frame_rate is not None:
            pairs.append(("FRAME-RATE", f"{self.frame_rate:.3f}"))
        if self.audio is not None:
            pairs.append(("AUDIO", quote(self.audio)))
        return f"{self.TAG}:{render_attributes(pairs)}\n{self.uri}"

    @classmethod
    def parse(cls, value: str, uri: str) -> StreamInf:
        a = parse_attributes(value)
        resolution = None
        if "RESOLUTION" in a:
            width, _, height = a["RESOLUTION"].partition("x")
            resolution = (parse_int(width, "RESOLUTION"), parse_int(height, "RESOLUTION"))
        return cls(
            bandwidth=parse_int(_require(a, "BANDWIDTH", cls.TAG), "BANDWIDTH"),
            uri=uri,
            average_bandwidth=(
                parse_int(a["AVERAGE-BANDWIDTH"], "AVERAGE-BANDWIDTH")
                if "AVERAGE-BANDWIDTH" in a
                else None
            ),
            codecs=unquote(a["CODECS"]) if "CODECS" in a else None,
            resolution=resolution,
            frame_rate=parse_float(a["FRAME-RATE"], "FRAME-RATE") if "FRAME-RATE" in a else None,
            audio=unquote(a["AUDIO"]) if "AUDIO" in a else None,
        )


@dataclass(frozen=True, slots=True)
class Media:
    """§4.4.6.1 EXT-X-MEDIA: "used to relate Media Playlists that contain alternative Renditions".
    TYPE, GROUP-ID and NAME are REQUIRED; URI for AUDIO names its Media Playlist."""

    type: str
    group_id: str
    name: str
    uri: str | None = None
    default: bool = False
    autoselect: bool = False
    channels: str | None = None

    TAG = "#EXT-X-MEDIA"

    def render(self) -> str:
        pairs = [
            ("TYPE", self.type),
            ("GROUP-ID", quote(self.group_id)),
            ("NAME", quote(self.name)),
            ("DEFAULT", "YES" if self.default else "NO"),
            ("AUTOSELECT", "YES" if self.autoselect else "NO"),
        ]
        if self.channels is not None:
            pairs.append(("CHANNELS", quote(self.channels)))
        if self.uri is not None:
            pairs.append(("URI", quote(self.uri)))
        return f"{self.TAG}:{render_attributes(pairs)}"

    @classmethod
    def parse(cls, value: str) -> Media:
        a = parse_attributes(value)
        return cls(
            type=_require(a, "TYPE", cls.TAG),
            group_id=unquote(_require(a, "GROUP-ID", cls.TAG)),
            name=unquote(_require(a, "NAME", cls.TAG)),
            uri=unquote(a["URI"]) if "URI" in a else None,
            default=parse_bool(a.get("DEFAULT", "NO"), "DEFAULT"),
            autoselect=parse_bool(a.get("AUTOSELECT", "NO"), "AUTOSELECT"),
            channels=unquote(a["CHANNELS"]) if "CHANNELS" in a else None,
        )
