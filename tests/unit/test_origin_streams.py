"""Many streams behind one origin: the registry, the URL parser, routing by stream id, and the
short URLs of the default stream answering exactly as the one-stream origin did."""

from __future__ import annotations

from urllib.parse import urljoin

import pytest

from livecast.errors import ConfigError
from livecast.hls.playlist import parse_media_playlist, parse_multivariant_playlist
from livecast.origin.app import OriginApp, PartHoldKey, PlaylistHoldKey, StaticAsset
from livecast.origin.contract import Hold, Request, Response
from livecast.origin.streams import (
    DEFAULT_STREAM,
    LivePath,
    StreamRegistry,
    decode_path,
    parse_live_path,
    stream_of,
)

from .synth import EPOCH, Feeder, make_event

NOW = 500.0


def get(app: OriginApp, path: str, query: str = "") -> Response | Hold:
    return app.handle(Request("GET", path, query), NOW)


def answer(app: OriginApp, path: str, query: str = "") -> Response:
    response = get(app, path, query)
    assert isinstance(response, Response), response
    return response


def two_streams() -> tuple[OriginApp, Feeder, Feeder]:
    """``main`` at 20.5 s of media and ``sport`` (captured 100 s later) at 10.5 s."""
    main, sport = make_event(), make_event()
    main_feed, sport_feed = Feeder(main), Feeder(sport, epoch=EPOCH + 100)
    main_feed.advance_to(20.5)
    sport_feed.advance_to(10.5)
    registry = StreamRegistry()
    registry.add("main", main)
    registry.add("sport", sport)
    return OriginApp.for_streams(registry), main_feed, sport_feed


def next_part(app: OriginApp, prefix: str) -> tuple[int, int]:
    pl = parse_media_playlist(answer(app, f"{prefix}/720p/index.m3u8").body.decode())
    last = pl.last_part()
    assert last is not None
    return last[0], last[1] + 1


# ---------------------------------------------------------------- the URL parser


@pytest.mark.parametrize(
    ("path", "parsed"),
    [
        ("/live/main.m3u8", LivePath(None, None, "main.m3u8")),
        ("/live/sport/main.m3u8", LivePath("sport", None, "main.m3u8")),
        ("/live/720p/index.m3u8", LivePath(None, "720p", "index.m3u8")),
        ("/live/sport/720p/index.m3u8", LivePath("sport", "720p", "index.m3u8")),
        ("/live/s/audio/init-3.mp4", LivePath("s", "audio", "init", init="3")),
        ("/live/360p/seg-41.m4s", LivePath(None, "360p", "seg", msn=41)),
        ("/live/s_1/360p/part-41.5.m4s", LivePath("s_1", "360p", "part", msn=41, part=5)),
        ("/live/main/main.m3u8", LivePath("main", None, "main.m3u8")),
    ],
)
def test_live_paths_in_both_layouts(path: str, parsed: LivePath) -> None:
    assert parse_live_path(path) == parsed


@pytest.mark.parametrize(
    "path",
    [
        "/live/a/b/c/index.m3u8",  # one level too many
        "/live/" + "s" * 65 + "/main.m3u8",  # stream id too long
        "/live/s.x/main.m3u8",
        "/live/s/720p/main.m3u8",  # a multivariant is not inside a rendition
        "/live/s/720p/other.m3u8",
        "/live/index.m3u8",
        "/player.html",
    ],
)
def test_other_paths_are_not_live_urls(path: str) -> None:
    assert parse_live_path(path) is None


@pytest.mark.parametrize(
    ("raw", "stream"),
    [
        ("/live/main.m3u8", DEFAULT_STREAM),
        ("/live/720p/part-5.1.m4s", DEFAULT_STREAM),
        ("/live/sport/720p/part-5.1.m4s", "sport"),
        ("/live/%73port/main.m3u8", "sport"),  # the gate decodes as the router does
        ("/live/sport%2F720p/index.m3u8", "sport"),
        ("/live/sport/%2e%2e/main.m3u8", None),
        ("/metrics", None),
        ("/live/%ff/main.m3u8", None),
    ],
)
def test_stream_of_a_raw_path(raw: str, stream: str | None) -> None:
    assert stream_of(raw) == stream


def test_decode_path_refuses_every_trick() -> None:
    assert decode_path("/live/a%20b") == "/live/a b"
    for raw in ("/live/%00", "/live/a\\b", "/live/./x", "/live//x", "/live/%C0%AE"):
        assert decode_path(raw) is None


# ---------------------------------------------------------------- the registry


def test_registry_add_get_remove_and_default() -> None:
    event = make_event()
    registry = StreamRegistry(default="studio")
    with pytest.raises(LookupError, match="studio"):
        _ = registry.default_event
    registry.add("studio", event)
    assert registry.get("studio") is event and registry.default_event is event
    assert "studio" in registry and len(registry) == 1 and registry.ids() == ["studio"]
    with pytest.raises(ConfigError, match="already registered"):
        registry.add("studio", make_event())
    assert registry.remove("studio") is event
    assert registry.get("studio") is None and list(registry) == []


@pytest.mark.parametrize("bad", ["", "a/b", "a.b", "..", "ü", "x" * 65, "a b"])
def test_stream_ids_are_url_safe_and_short(bad: str) -> None:
    with pytest.raises(ConfigError):
        StreamRegistry().add(bad, make_event())
    with pytest.raises(ConfigError):
        StreamRegistry(default=bad)


# ---------------------------------------------------------------- routing


def test_each_stream_answers_from_its_own_event() -> None:
    app, _, _ = two_streams()
    main = answer(app, "/live/main/720p/index.m3u8")
    sport = answer(app, "/live/sport/720p/index.m3u8")
    assert main.status == sport.status == 200
    assert main.body == app.streams.default_event.media_playlist_bytes("720p")
    sport_event = app.streams.get("sport")
    assert sport_event is not None
    assert sport.body == sport_event.media_playlist_bytes("720p") != main.body
    segment = parse_media_playlist(sport.body.decode()).segments[0]
    assert segment.uri is not None
    media = answer(app, f"/live/sport/720p/{segment.uri}")
    assert media.status == 200 and media.object_type == "segment"


def test_the_short_urls_are_the_default_stream_byte_for_byte() -> None:
    event = make_event()
    Feeder(event).advance_to(20.5)
    one = OriginApp(event, {"/player.html": StaticAsset(b"<html>", "text/html")})
    pl = parse_media_playlist(answer(one, "/live/720p/index.m3u8").body.decode())
    segment = pl.segments[-2]
    assert segment.uri is not None and pl.segments[0].map is not None
    msn, part = next_part(one, "/live")
    pairs = [
        ("/live/main.m3u8", "", "/live/main/main.m3u8"),
        ("/live/720p/index.m3u8", "", "/live/main/720p/index.m3u8"),
        ("/live/720p/index.m3u8", "_HLS_skip=YES", "/live/main/720p/index.m3u8"),
        (
            "/live/720p/index.m3u8",
            f"_HLS_msn={msn}&_HLS_part={part - 1}",
            "/live/main/720p/index.m3u8",
        ),
        ("/live/audio/" + pl.segments[0].map.uri, "", "/live/main/audio/" + pl.segments[0].map.uri),
        ("/live/720p/" + segment.uri, "", "/live/main/720p/" + segment.uri),
        ("/live/720p/part-1.0.m4s", "", "/live/main/720p/part-1.0.m4s"),  # long gone: 404
        ("/live/nope/index.m3u8", "", "/live/main/nope/index.m3u8"),
    ]
    for short, query, full in pairs:
        assert answer(one, short, query) == answer(one, full, query), short
    assert answer(one, "/player.html").body == b"<html>"
    assert one.event is event


def test_the_multivariant_of_a_stream_resolves_under_its_own_prefix() -> None:
    app, _, _ = two_streams()
    for base in ("http://o/live/sport/main.m3u8", "http://o/live/main.m3u8"):
        mv = parse_multivariant_playlist(answer(app, base.removeprefix("http://o")).body.decode())
        uris = [v.uri for v in mv.variants] + [m.uri for m in mv.media if m.uri]
        assert len(uris) == 3
        for uri in uris:
            resolved = urljoin(base, uri)
            assert resolved.startswith(base.rsplit("/", 1)[0] + "/")
            media = answer(app, resolved.removeprefix("http://o"))
            assert media.status == 200 and media.object_type == "playlist-plain"
            pl = parse_media_playlist(media.body.decode())
            for report in pl.rendition_reports:  # ../<other>/index.m3u8 stays in the stream
                other = urljoin(resolved, report.uri).removeprefix("http://o")
                assert answer(app, other).status == 200


def test_unknown_streams_and_bad_stream_ids_are_404() -> None:
    app, _, _ = two_streams()
    for path in ("/live/news/main.m3u8", "/live/news/720p/index.m3u8"):
        missing = answer(app, path)
        assert (missing.status, missing.body) == (404, b"no such stream\n")
        assert missing.cache_control == "public, max-age=1"
    for path in ("/live/sp%2Eort/main.m3u8", "/live/sport/../main/main.m3u8", "/live/sp ort/x"):
        assert answer(app, path).status == 404


def test_without_a_default_stream_the_short_urls_are_404() -> None:
    registry = StreamRegistry()
    event = make_event()
    Feeder(event).advance_to(8.0)
    registry.add("sport", event)
    app = OriginApp.for_streams(registry)
    assert answer(app, "/live/main.m3u8").body == b"no such stream\n"
    assert answer(app, "/live/sport/720p/index.m3u8").status == 200


# ---------------------------------------------------------------- holds


def test_hold_keys_name_the_stream_and_resume_from_it() -> None:
    app, main_feed, sport_feed = two_streams()
    msn, part = next_part(app, "/live/sport")
    query = f"_HLS_msn={msn}&_HLS_part={part}"
    sport_hold = get(app, "/live/sport/720p/index.m3u8", query)
    hint = f"part-{msn}.{part}.m4s"
    sport_part = get(app, f"/live/sport/720p/{hint}")
    assert sport_hold == Hold(
        PlaylistHoldKey("sport", "720p", msn, part, False), NOW + 6.0, "playlist-blocking"
    )
    assert isinstance(sport_part, Hold)
    assert sport_part.key == PartHoldKey("sport", "720p", msn, part)

    main_feed.advance_to(30.0)  # the other stream moving on does not answer these
    assert app.resume(sport_hold.key, NOW) is None
    assert app.resume(sport_part.key, NOW) is None
    sport_feed.advance_to(10.5 + 1 / 3)
    playlist = app.resume(sport_hold.key, NOW)
    assert isinstance(playlist, Response) and playlist.object_type == "playlist-blocking"
    assert parse_media_playlist(playlist.body.decode()).last_part() == (msn, part)
    media = app.resume(sport_part.key, NOW)
    assert isinstance(media, Response)
    assert media.body == answer(app, f"/live/sport/720p/{hint}").body


def test_the_same_request_in_two_streams_holds_under_two_keys() -> None:
    main, sport = make_event(), make_event()
    Feeder(main).advance_to(20.5)
    Feeder(sport).advance_to(20.5)
    registry = StreamRegistry()
    registry.add("main", main)
    registry.add("sport", sport)
    app = OriginApp.for_streams(registry)
    msn, part = next_part(app, "/live")
    query = f"_HLS_msn={msn}&_HLS_part={part}"
    short, full, other = (
        get(app, f"{prefix}/720p/index.m3u8", query)
        for prefix in ("/live", "/live/main", "/live/sport")
    )
    assert isinstance(short, Hold) and isinstance(full, Hold) and isinstance(other, Hold)
    assert short.key == full.key != other.key


def test_a_stream_removed_while_requests_wait_answers_them_404() -> None:
    app, _, _ = two_streams()
    msn, part = next_part(app, "/live/sport")
    held = get(app, "/live/sport/720p/index.m3u8", f"_HLS_msn={msn}&_HLS_part={part}")
    assert isinstance(held, Hold)
    app.streams.remove("sport")
    for outcome in (app.resume(held.key, NOW), app.expired(held.key, NOW)):
        assert isinstance(outcome, Response) and outcome.status == 404
    assert answer(app, "/live/sport/main.m3u8").status == 404


def test_a_replaced_event_is_served_fresh() -> None:
    app, _, _ = two_streams()
    before = answer(app, "/live/sport/720p/index.m3u8").body
    app.streams.remove("sport")
    replacement = make_event()
    Feeder(replacement, epoch=EPOCH + 500).advance_to(6.0)
    app.streams.add("sport", replacement)
    after = answer(app, "/live/sport/720p/index.m3u8").body
    assert after == replacement.media_playlist_bytes("720p") != before
