"""One tag, one parse/render unit: every tag round-trips and refuses malformed input."""

from __future__ import annotations

import dataclasses

import pytest

from livecast.errors import PlaylistError
from livecast.hls.attributes import format_pdt, parse_attributes, parse_pdt
from livecast.hls.playlist import (
    MediaPlaylist,
    MultivariantPlaylist,
    SegmentEntry,
    parse_media_playlist,
    parse_multivariant_playlist,
    render_media_playlist,
    render_multivariant_playlist,
)
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

SIMPLE_TAGS = [
    ServerControl(True, part_hold_back=1.00002, hold_back=6.0, can_skip_until=12.0),
    ServerControl(False),
    PartInf(0.33334),
    PartTag("part-5.0.m4s", 0.33333, independent=True),
    PartTag("part-5.1.m4s", 0.32),
    PreloadHint("PART", "part-5.2.m4s"),
    RenditionReport("../360p/index.m3u8", 17, 3),
    RenditionReport("../audio/index.m3u8", 17),
    Skip(12),
    MapTag("init-123.mp4"),
    Media("AUDIO", "aac", "audio", "audio/index.m3u8", default=True, autoselect=True, channels="2"),
]


@pytest.mark.parametrize("tag", SIMPLE_TAGS, ids=lambda t: type(t).__name__)
def test_tag_round_trips(tag: object) -> None:
    text = tag.render()  # type: ignore[attr-defined]
    name, _, value = text.partition(":")
    assert name == type(tag).TAG  # type: ignore[attr-defined]
    assert type(tag).parse(value) == tag  # type: ignore[attr-defined]


def test_stream_inf_round_trips_with_its_uri_line() -> None:
    tag = StreamInf(
        2_800_000,
        "720p/index.m3u8",
        average_bandwidth=2_600_000,
        codecs="avc1.64001f,mp4a.40.2",
        resolution=(1280, 720),
        frame_rate=30.0,
        audio="aac",
    )
    head, uri = tag.render().split("\n")
    assert head.startswith("#EXT-X-STREAM-INF:BANDWIDTH=2800000,")
    assert "FRAME-RATE=30.000" in head and 'CODECS="avc1.64001f,mp4a.40.2"' in head
    assert StreamInf.parse(head.partition(":")[2], uri) == tag


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("DURATION=0.3", "URI"),
        ('DURATION=abc,URI="x"', "decimal-floating-point"),
        ('DURATION=0.3,URI="x",INDEPENDENT=MAYBE', "YES or NO"),
        ('DURATION=0.3,URI="x",URI="y"', "twice"),
        ("DURATION=0.3,URI=x y", "quoted-string"),
    ],
)
def test_malformed_part_tag_is_refused(value: str, message: str) -> None:
    with pytest.raises(PlaylistError, match=message):
        PartTag.parse(value)


def test_preload_hint_type_is_checked() -> None:
    with pytest.raises(PlaylistError, match="PART or MAP"):
        PreloadHint.parse('TYPE=SEGMENT,URI="x"')


def test_quoted_strings_may_hold_commas() -> None:
    assert parse_attributes('CODECS="a,b",X=1') == {"CODECS": '"a,b"', "X": "1"}


def test_program_date_time_has_milliseconds_and_round_trips() -> None:
    assert format_pdt(1_764_075_600.25) == "2025-11-25T13:00:00.250Z"
    assert parse_pdt("2025-11-25T13:00:00.250Z") == pytest.approx(1_764_075_600.25)


def test_media_playlist_round_trips() -> None:
    pl = MediaPlaylist(
        target_duration=2,
        media_sequence=100,
        discontinuity_sequence=1,
        server_control=SIMPLE_TAGS[0],
        part_inf=PartInf(0.33334),
        skip=Skip(3),
        segments=[
            SegmentEntry("seg-103.m4s", 2.0, pdt=1000.0, map=MapTag("init-1.mp4")),
            SegmentEntry(
                "seg-104.m4s",
                2.0,
                parts=[PartTag("part-104.0.m4s", 1.0, True), PartTag("part-104.1.m4s", 1.0)],
                pdt=1002.0,
                discontinuity=True,
                map=MapTag("init-2.mp4"),
            ),
            SegmentEntry(None, 0.0, parts=[PartTag("part-105.0.m4s", 0.33333, True)], pdt=1004.0),
        ],
        preload_hints=[PreloadHint("PART", "part-105.1.m4s")],
        rendition_reports=[RenditionReport("../a/index.m3u8", 105, 0)],
    )
    parsed = parse_media_playlist(render_media_playlist(pl))
    assert parsed == pl
    assert parsed.first_listed_msn == 103 and parsed.last_part() == (105, 0)
    assert parsed.next_part() == (105, 1)
    ended = dataclasses.replace(pl, endlist=True, version=10, independent_segments=True)
    assert parse_media_playlist(render_media_playlist(ended)) == ended


def test_vod_playlist_with_a_gap_round_trips() -> None:
    """EXT-X-PLAYLIST-TYPE after the target duration; EXT-X-GAP between EXTINF and the URI."""
    pl = MediaPlaylist(
        target_duration=2,
        media_sequence=7,
        playlist_type="VOD",
        segments=[
            SegmentEntry("seg-7.m4s", 2.0, pdt=1000.0, map=MapTag("init-7.mp4")),
            SegmentEntry("seg-8.m4s", 2.0, pdt=1002.0, gap=True),
        ],
        endlist=True,
    )
    text = render_media_playlist(pl)
    assert "#EXT-X-TARGETDURATION:2\n#EXT-X-PLAYLIST-TYPE:VOD\n" in text
    assert "#EXTINF:2.0,\n#EXT-X-GAP\nseg-8.m4s\n" in text
    assert parse_media_playlist(text) == pl


def test_unknown_playlist_type_is_refused() -> None:
    with pytest.raises(PlaylistError, match="EVENT or VOD"):
        parse_media_playlist("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-PLAYLIST-TYPE:LIVE\n")


def test_multivariant_playlist_round_trips_and_is_not_a_media_playlist() -> None:
    pl = MultivariantPlaylist(
        variants=[
            StreamInf(
                1_000_000,
                "360p/index.m3u8",
                codecs="avc1.64001e",
                resolution=(640, 360),
                frame_rate=30.0,
                audio="aac",
            )
        ],
        media=[SIMPLE_TAGS[-1]],  # type: ignore[list-item]
    )
    assert parse_multivariant_playlist(render_multivariant_playlist(pl)) == pl
    with pytest.raises(PlaylistError, match="media playlist"):
        parse_multivariant_playlist("#EXTM3U\n#EXT-X-TARGETDURATION:2\n")


def test_playlist_without_header_is_refused() -> None:
    with pytest.raises(PlaylistError, match="EXTM3U"):
        parse_media_playlist("#EXT-X-TARGETDURATION:2\n")
