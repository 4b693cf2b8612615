"""The origin's recording URLs, through the pure OriginApp: start/end arguments (RFC 3339 or Unix
seconds; malformed → 400, outside the recording → 404 with the reason), the multivariant passing
the range on, recording.json, and the VOD that every playlist URL serves once the event ended."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from livecast.errors import RequestError
from livecast.hls.playlist import parse_media_playlist, parse_multivariant_playlist
from livecast.origin.app import OriginApp
from livecast.origin.contract import Request, Response
from livecast.origin.dvr import RecordedRange, parse_range, parse_time
from livecast.store.archive import Recording

from .synth import EPOCH, Feeder, make_event

NOW = 500.0


@pytest.fixture
def origin(tmp_path: Path) -> Iterator[OriginApp]:
    recording = Recording(tmp_path)
    event = make_event(window=12.0, store=recording)
    Feeder(event).advance_to(60.0)
    yield OriginApp(event)
    recording.close()


def get(app: OriginApp, path: str, query: str = "") -> Response:
    response = app.handle(Request("GET", path, query), NOW)
    assert isinstance(response, Response), response
    return response


def test_times_are_rfc3339_or_unix_seconds() -> None:
    assert parse_time("start", "2026-12-04T20:00:00Z") == 1796414400.0
    assert parse_time("start", "2026-12-04T21:00:00.5+01:00") == 1796414400.5
    assert parse_time("start", "1796414400.25") == 1796414400.25
    assert RecordedRange(1796414400.25).query() == "start=1796414400.250"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("start=yesterday", "RFC 3339"),
        ("start=2026-12-04T20:00:00", "time zone"),
        ("start=1&start=2", "more than once"),
        ("end=1796414400", "end without start"),
        ("start=1796414400&end=1796414300", "end must be after start"),
        ("start=nan", "out of range"),
        ("start=99999999999", "out of range"),
    ],
)
def test_malformed_ranges_are_a_400_naming_the_problem(query: str, message: str) -> None:
    with pytest.raises(RequestError, match=message) as raised:
        parse_range(query)
    assert raised.value.status == 400


def test_start_over_playlist_and_its_errors(origin: OriginApp) -> None:
    dvr = get(origin, "/live/720p/index.m3u8", f"start={EPOCH + 10}")
    assert dvr.status == 200 and dvr.object_type == "playlist-dvr"
    assert dvr.cache_control == "public, max-age=1"  # EVENT: it still grows
    assert parse_media_playlist(dvr.body.decode()).segments[0].pdt == EPOCH + 10
    closed = get(origin, "/live/720p/index.m3u8", f"start={EPOCH + 10}&end={EPOCH + 20}")
    assert closed.cache_control == "public, max-age=86400, immutable"  # a past range: VOD
    mixed = get(origin, "/live/720p/index.m3u8", f"start={EPOCH + 10}&_HLS_msn=1")
    assert mixed.status == 400 and b"_HLS_ directives do not apply" in mixed.body
    future = get(origin, "/live/720p/index.m3u8", f"start={EPOCH + 3600}")
    assert future.status == 404 and b"after the newest recorded segment" in future.body
    origin.event.dvr_window = 20.0
    old = get(origin, "/live/720p/index.m3u8", f"start={EPOCH}")
    assert old.status == 404 and b"before the DVR window" in old.body


def test_the_multivariant_passes_the_range_on(origin: OriginApp) -> None:
    body = get(origin, "/live/main.m3u8", f"start={EPOCH + 10}&CMCD=x").body.decode()
    multivariant = parse_multivariant_playlist(body)
    uris = [v.uri for v in multivariant.variants] + [m.uri for m in multivariant.media if m.uri]
    assert uris and all(uri.endswith(f"?start={EPOCH + 10:.3f}") for uri in uris)
    assert OriginApp.cache_key(b"/live/main.m3u8?CMCD=x&start=5&end=6") == (
        b"/live/main.m3u8?start=5&end=6"
    )


def test_recording_json_tells_a_seek_bar_what_it_may_offer(origin: OriginApp) -> None:
    origin.event.dvr_window = 20.0
    info = json.loads(get(origin, "/live/recording.json").body)
    assert info["recorded"] and not info["ended"] and info["dvr_window"] == 20.0
    assert info["first"] == EPOCH and info["live_end"] - info["oldest_start"] == 20.0


def test_after_the_end_every_playlist_url_is_the_vod(origin: OriginApp) -> None:
    origin.event.end()
    live_url = parse_media_playlist(get(origin, "/live/720p/index.m3u8").body.decode())
    blocking = get(origin, "/live/720p/index.m3u8", "_HLS_msn=999999999999&_HLS_part=0")
    assert blocking.status == 200  # not held, not refused: directives are ignored now
    assert parse_media_playlist(blocking.body.decode()) == live_url
    assert live_url.playlist_type == "VOD" and live_url.endlist
    assert (
        live_url.media_sequence
        == parse_media_playlist(
            get(origin, "/live/720p/index.m3u8", f"start={EPOCH}").body.decode()
        ).media_sequence
    )
    assert json.loads(get(origin, "/live/recording.json").body)["ended"]
