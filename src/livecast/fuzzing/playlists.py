"""Playlist targets: the media and multivariant playlist parsers and renderers, round trip.

draft-pantos-hls-rfc8216bis §4.1: "Lines that start with the character '#' are either comments or
tags … A URI line identifies a Media Segment or a Playlist file"; §4.2: "An attribute-list is a
comma-separated list of attribute/value pairs with no whitespace … AttributeName=AttributeValue";
§4.1: clients "MUST ignore any tag that [they do] not recognize".

Inputs are playlist texts drawn from a line grammar: the tags the parsers know (and some they do
not), each with an attribute list of known names and values from a pool of valid, borderline and
hostile literals (non-ASCII digits, ``nan``, huge numbers, stray quotes, empty values), URI lines,
blank lines and random text. Properties: the parser either returns a playlist or raises
:class:`~livecast.errors.PlaylistError`; what it returns renders, and rendering is a fixed point
after one normalisation — ``render(parse(render(parse(x)))) == render(parse(x))``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from hypothesis import strategies as st

from livecast.errors import PlaylistError
from livecast.fuzzing.core import Target, stateless, violation
from livecast.hls.playlist import (
    parse_media_playlist,
    parse_multivariant_playlist,
    render_media_playlist,
    render_multivariant_playlist,
)

MEDIA_TAGS = (
    "#EXT-X-VERSION",
    "#EXT-X-TARGETDURATION",
    "#EXT-X-MEDIA-SEQUENCE",
    "#EXT-X-DISCONTINUITY-SEQUENCE",
    "#EXT-X-INDEPENDENT-SEGMENTS",
    "#EXT-X-SERVER-CONTROL",
    "#EXT-X-PART-INF",
    "#EXT-X-SKIP",
    "#EXT-X-PLAYLIST-TYPE",
    "#EXT-X-DISCONTINUITY",
    "#EXT-X-GAP",
    "#EXT-X-MAP",
    "#EXT-X-PROGRAM-DATE-TIME",
    "#EXT-X-PART",
    "#EXT-X-PRELOAD-HINT",
    "#EXT-X-RENDITION-REPORT",
    "#EXT-X-ENDLIST",
    "#EXTINF",
    "#EXT-X-UNKNOWN",
)
MULTIVARIANT_TAGS = (
    "#EXT-X-VERSION",
    "#EXT-X-INDEPENDENT-SEGMENTS",
    "#EXT-X-STREAM-INF",
    "#EXT-X-MEDIA",
    "#EXT-X-TARGETDURATION",
    "#EXT-X-UNKNOWN",
)
ATTRIBUTES = (
    "CAN-BLOCK-RELOAD", "PART-HOLD-BACK", "HOLD-BACK", "CAN-SKIP-UNTIL", "PART-TARGET",
    "SKIPPED-SEGMENTS", "URI", "DURATION", "INDEPENDENT", "TYPE", "LAST-MSN", "LAST-PART",
    "BANDWIDTH", "AVERAGE-BANDWIDTH", "CODECS", "RESOLUTION", "FRAME-RATE", "AUDIO", "GROUP-ID",
    "NAME", "DEFAULT", "AUTOSELECT", "CHANNELS", "GAP", "BYTERANGE-START",
)  # fmt: skip
VALUES = (
    "0", "1", "7", "42", "00", "-1", "+1", "1.5", "0.33334", ".5", "5.", "1e3", "1e400", "nan",
    "inf", "-0", "1_000", "²", "١٢", "٣.٥", "99999999999999999999999", "YES", "NO", "yes", "PART",
    "MAP", "AUDIO", "VIDEO", "1280x720", "0x0", "x", "1x", '"a.mp4"', '"seg-1.m4s"', '""', '"',
    '"a,b"', '"a"b"', "2026-12-04T20:00:00.000Z", "2026-12-04T20:00:00+05:00", "0001-01-01",
    "9999-12-31T23:59:59.999Z", "",
)  # fmt: skip
DATES = (
    "2026-12-04T20:00:00.000Z", "2026-12-04T20:00:00.001+00:00", "2026-12-04T20:00:00.9999Z",
    "2026-12-04T20:00:00-23:59", "2026-12-04T20:00:00", "2026-12-04", "20261204T200000Z",
    "9999-12-31T23:59:59.999Z", "9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00+05:00", "0999-01-01T00:00:00Z", "1969-12-31T23:59:59.999Z",
    "2026-02-30T00:00:00Z", "2026-12-04T24:00:00Z", "2026-12-04T20:00:00.000000001Z",
)  # fmt: skip
PDT = "#EXT-X-PROGRAM-DATE-TIME:"
P = TypeVar("P")
TEXT = st.text(st.characters(exclude_characters="\r\n"), max_size=24)


@st.composite
def attribute_list(draw: st.DrawFn) -> str:
    """``NAME=value,…`` of known names (sometimes repeated or lower-case) and pool values."""
    pairs = draw(
        st.lists(
            st.tuples(
                st.sampled_from(ATTRIBUTES) | st.text("ABZ-09a", min_size=1, max_size=6),
                st.sampled_from(VALUES) | TEXT,
            ),
            max_size=6,
        )
    )
    return ",".join(f"{name}={value}" for name, value in pairs)


@st.composite
def tag_line(draw: st.DrawFn, tags: tuple[str, ...]) -> str:
    name = draw(st.sampled_from(tags))
    value = draw(
        st.sampled_from(VALUES).map(lambda v: v + ",") | st.sampled_from(VALUES) | attribute_list()
    )
    separator = draw(st.sampled_from((":", ":", ":", "", " : ")))
    return f"{name}{separator}{value}"


MEDIA_SEEDS = (
    "#EXT-X-VERSION:9",
    "#EXT-X-TARGETDURATION:2",
    "#EXT-X-TARGETDURATION:2",
    "#EXT-X-PLAYLIST-TYPE:EVENT",
    "#EXT-X-INDEPENDENT-SEGMENTS",
    "#EXT-X-SERVER-CONTROL:CAN-SKIP-UNTIL=12.0,CAN-BLOCK-RELOAD=YES,HOLD-BACK=6.0,"
    "PART-HOLD-BACK=1.0",
    "#EXT-X-PART-INF:PART-TARGET=0.33334",
    "#EXT-X-MEDIA-SEQUENCE:0",
    "#EXT-X-DISCONTINUITY-SEQUENCE:3",
    "#EXT-X-SKIP:SKIPPED-SEGMENTS=3",
    "#EXT-X-DISCONTINUITY",
    '#EXT-X-MAP:URI="init.mp4"',
    "#EXT-X-PROGRAM-DATE-TIME:2025-11-24T16:00:00.500Z",
    '#EXT-X-PART:DURATION=0.33,URI="p1.m4s",INDEPENDENT=YES',
    "#EXTINF:2.0,",
    "#EXT-X-GAP",
    "seg-1.m4s",
    '#EXT-X-PART:DURATION=0.33,URI="p2.m4s"',
    '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="p3.m4s"',
    '#EXT-X-RENDITION-REPORT:URI="../360p/index.m3u8",LAST-MSN=5,LAST-PART=2',
    "#EXT-X-ENDLIST",
)
MULTIVARIANT_SEEDS = (
    "#EXT-X-VERSION:9",
    "#EXT-X-INDEPENDENT-SEGMENTS",
    '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="English",DEFAULT=YES,AUTOSELECT=YES,'
    'CHANNELS="2",URI="audio/index.m3u8"',
    '#EXT-X-STREAM-INF:BANDWIDTH=800000,AVERAGE-BANDWIDTH=700000,CODECS="avc1.64001f,mp4a.40.2",'
    'RESOLUTION=1280x720,FRAME-RATE=30.000,AUDIO="aud"',
    "720p/index.m3u8",
)


@st.composite
def mutated_line(draw: st.DrawFn, seeds: tuple[str, ...]) -> str:
    """A seed line with one value (after ``:`` or an ``=``) replaced by a pool value (a
    date-time from :data:`DATES` for EXT-X-PROGRAM-DATE-TIME)."""
    line = draw(st.sampled_from(seeds))
    if line.startswith(PDT):  # date-times have a pool of their own (ISO 8601 edges)
        return PDT + draw(st.sampled_from(DATES) | st.sampled_from(VALUES))
    cuts = [i + 1 for i, c in enumerate(line) if c in ":="]
    if not cuts:
        return line
    start = draw(st.sampled_from(cuts))
    end = line.find(",", start)
    end = len(line) if end < 0 else end
    return line[:start] + draw(st.sampled_from(VALUES) | TEXT) + line[end:]


@st.composite
def playlist_text(draw: st.DrawFn, tags: tuple[str, ...], seeds: tuple[str, ...]) -> str:
    """``#EXTM3U`` (mostly), valid seed lines, then 0–3 hostile lines inserted anywhere: seed
    lines with one value replaced, tags with drawn attribute lists, URIs, blanks and noise."""
    hostile = st.one_of(
        mutated_line(seeds),
        mutated_line(seeds),
        tag_line(tags),
        st.sampled_from(("seg-1.m4s", "720p/index.m3u8", "a b", " x ", "#", "#EXT")),
        TEXT,
        st.just(""),
    )
    head = "#EXTM3U"
    if draw(st.integers(0, 9)) == 0:
        head = draw(st.sampled_from((" #EXTM3U ", "#extm3u", "", "#EXTM3U:1")))
    lines = draw(st.lists(st.sampled_from(seeds), max_size=30))
    if draw(st.integers(0, 9)):  # a media playlist needs one (the first seed for multivariant)
        lines.insert(0, seeds[1])
    for _ in range(draw(st.integers(0, 3))):
        lines.insert(draw(st.integers(0, len(lines))), draw(hostile))
    end = draw(st.sampled_from(("\n", "\n", "\r\n", "\r", "\n\n")))
    return end.join([head, *lines]) + end


def _round_trip(
    text: str, parse: Callable[[str], P], render: Callable[[P], str], what: str
) -> None:
    first = render(parse(text))  # PlaylistError here is the documented refusal
    try:
        second = render(parse(first))
    except PlaylistError as error:
        violation(False, f"the rendering of a parsed {what} playlist does not parse: {error}")
        return
    violation(second == first, f"{what} playlist round trip differs:\n{first!r}\n{second!r}")


def run_media(text: str) -> None:
    """Parse, render, parse, render a media playlist (see the module)."""
    _round_trip(text, parse_media_playlist, render_media_playlist, "media")


def run_multivariant(text: str) -> None:
    """Parse, render, parse, render a multivariant playlist (see the module)."""
    _round_trip(text, parse_multivariant_playlist, render_multivariant_playlist, "multivariant")


TARGETS = (
    Target(
        "playlists.media",
        "media playlist text → parse → render → parse → render (a fixed point)",
        playlist_text(MEDIA_TAGS, MEDIA_SEEDS),
        stateless(run_media),
        documented=(PlaylistError,),
    ),
    Target(
        "playlists.multivariant",
        "multivariant playlist text → parse → render → parse → render (a fixed point)",
        playlist_text(MULTIVARIANT_TAGS, MULTIVARIANT_SEEDS),
        stateless(run_multivariant),
        documented=(PlaylistError,),
    ),
)
