"""The LL-HLS origin rules of draft-pantos-hls-rfc8216bis (brief §4), each one a test, driven
through the pure OriginApp with synthetic encoder output and an injected ``now``."""

from __future__ import annotations

import pytest

from livecast.hls.playlist import parse_media_playlist, parse_multivariant_playlist
from livecast.origin.app import OriginApp
from livecast.origin.contract import Hold, Request, Response

from .synth import EPOCH, PART_TARGET, Feeder, make_event

NOW = 500.0


def get(app: OriginApp, path: str, query: str = "", now: float = NOW) -> Response | Hold:
    return app.handle(Request("GET", path, query), now)


def ok(app: OriginApp, path: str, query: str = "") -> Response:
    response = get(app, path, query)
    assert isinstance(response, Response), response
    assert response.status == 200, response.body
    return response


def running(seconds: float = 20.0, window: float = 30.0) -> tuple[OriginApp, Feeder]:
    event = make_event(window=window)
    feeder = Feeder(event)
    feeder.advance_to(seconds)
    return OriginApp(event), feeder


def playlist(app: OriginApp, name: str = "720p", query: str = ""):  # type: ignore[no-untyped-def]
    return parse_media_playlist(ok(app, f"/live/{name}/index.m3u8", query).body.decode())


# ---------------------------------------------------------------- playlist content


def test_part_inf_present_and_every_part_within_bounds() -> None:
    app, _ = running(20.5)
    for name in ("720p", "360p", "audio"):
        pl = playlist(app, name)
        assert pl.part_inf is not None
        target = pl.part_inf.part_target
        for seg in pl.segments:
            for i, part in enumerate(seg.parts):
                assert part.duration <= target
                last_of_segment = seg.uri is not None and i == len(seg.parts) - 1
                if not part.independent and not last_of_segment:
                    assert part.duration >= 0.85 * target, (name, part)


def test_server_control_values_and_identical_across_renditions() -> None:
    app, _ = running()
    controls = {playlist(app, n).server_control for n in ("720p", "360p", "audio")}
    assert len(controls) == 1
    (control,) = controls
    assert control is not None and control.can_block_reload
    assert control.part_hold_back is not None and control.part_hold_back >= 3 * PART_TARGET
    assert control.hold_back is not None and control.hold_back >= 3 * 2
    assert control.can_skip_until is not None and control.can_skip_until >= 6 * 2


def test_live_playlist_is_never_shorter_than_three_target_durations() -> None:
    app, feeder = running(7.0, window=6.0)
    for t in (8.0, 12.0, 40.0):
        feeder.advance_to(t)
        pl = playlist(app)
        assert sum(s.duration for s in pl.segments if s.uri) >= 3 * pl.target_duration


def test_part_tags_dropped_beyond_three_target_durations_files_kept_three_more() -> None:
    app, feeder = running(30.0)
    pl = playlist(app)
    end = sum(s.duration for s in pl.segments)
    elapsed = 0.0
    for seg in pl.segments:
        elapsed += seg.duration
        if end - elapsed > 3 * 2 + 1e-6:
            assert not seg.parts, "part tags listed more than 3 TD from the end"
    old_msn = pl.first_listed_msn + len([s for s in pl.segments if s.uri]) - 5
    assert not pl.segments[old_msn - pl.first_listed_msn].parts
    ok(app, f"/live/720p/part-{old_msn}.0.m4s")  # unlisted but still downloadable
    feeder.advance_to(40.0)
    gone = get(app, f"/live/720p/part-{old_msn}.0.m4s")
    assert isinstance(gone, Response) and gone.status == 404


def test_program_date_time_follows_the_capture_clock() -> None:
    app, _ = running()
    pl = playlist(app)
    for seg in pl.segments:
        assert seg.pdt is not None
    first, second = pl.segments[0], pl.segments[1]
    assert second.pdt - first.pdt == pytest.approx(first.duration, abs=1e-3)  # type: ignore[operator]
    msn0 = pl.first_listed_msn
    base_msn = int(EPOCH // 2)
    assert first.pdt == pytest.approx(EPOCH + (msn0 - base_msn) * 2.0, abs=1e-3)


def test_rendition_reports_for_every_other_rendition() -> None:
    app, _ = running()
    pl = playlist(app, "720p")
    reports = {r.uri: r for r in pl.rendition_reports}
    assert set(reports) == {"../360p/index.m3u8", "../audio/index.m3u8"}
    own = pl.last_part()
    assert own is not None
    assert reports["../360p/index.m3u8"].last_msn == own[0]
    assert reports["../360p/index.m3u8"].last_part == own[1]


def test_one_preload_hint_naming_the_next_part() -> None:
    app, _ = running(20.5)
    pl = playlist(app)
    assert len(pl.preload_hints) == 1
    last = pl.last_part()
    assert last is not None
    assert pl.preload_hints[0].uri == f"part-{last[0]}.{last[1] + 1}.m4s"


def test_multivariant_attributes_come_from_the_streams() -> None:
    app, _ = running()
    mv = parse_multivariant_playlist(ok(app, "/live/main.m3u8").body.decode())
    by_uri = {v.uri: v for v in mv.variants}
    top = by_uri["720p/index.m3u8"]
    assert top.resolution == (1280, 720) and by_uri["360p/index.m3u8"].resolution == (640, 360)
    assert top.codecs == "avc1.64001f,mp4a.40.2"
    assert top.frame_rate == 30.0 and top.audio == "aac"
    peaks = []
    for name in ("720p", "audio"):
        pl = playlist(app, name)
        peaks.append(
            max(
                8 * len(ok(app, f"/live/{name}/{seg.uri}").body) / seg.duration
                for seg in pl.segments
                if seg.uri
            )
        )
    assert top.bandwidth == pytest.approx(sum(peaks), abs=2)
    # 1000-byte frames at 30 fps = 240 kb/s of video payload, plus boxes
    assert 240_000 < peaks[0] < 250_000
    assert top.average_bandwidth is not None and top.average_bandwidth <= top.bandwidth
    assert [m.uri for m in mv.media] == ["audio/index.m3u8"]


def test_multivariant_waits_for_real_bitrates() -> None:
    event = make_event()
    Feeder(event).advance_to(1.0)
    response = get(OriginApp(event), "/live/main.m3u8")
    assert isinstance(response, Response) and response.status == 503
    assert ("Retry-After", "1") in response.extra_headers


# ---------------------------------------------------------------- blocking reload


def _next(app: OriginApp) -> tuple[int, int]:
    last = playlist(app).last_part()
    assert last is not None
    return last[0], last[1] + 1


def test_blocking_request_held_until_the_part_exists() -> None:
    app, feeder = running(20.5)
    msn, part = _next(app)
    held = get(app, "/live/720p/index.m3u8", f"_HLS_msn={msn}&_HLS_part={part}")
    assert isinstance(held, Hold) and held.deadline == NOW + 6.0
    assert app.resume(held.key, NOW) is None
    feeder.advance_to(20.5 + 1 / 3)
    answer = app.resume(held.key, NOW + 0.3)
    assert isinstance(answer, Response) and answer.status == 200
    pl = parse_media_playlist(answer.body.decode())
    assert pl.last_part() == (msn, part)
    assert answer.cache_control == "public, max-age=12"
    assert answer.object_type == "playlist-blocking"


def test_blocking_request_already_satisfied_answers_at_once() -> None:
    app, _ = running(20.5)
    msn, part = _next(app)
    answer = get(app, "/live/720p/index.m3u8", f"_HLS_msn={msn}&_HLS_part={part - 1}")
    assert isinstance(answer, Response) and answer.status == 200


def test_part_index_past_the_segments_last_part_means_part_zero_of_the_next() -> None:
    app, feeder = running(20.0)  # segment just completed: 6 parts, next segment not started
    pl = playlist(app)
    last_complete = pl.first_listed_msn + len([s for s in pl.segments if s.uri]) - 1
    held = get(app, "/live/720p/index.m3u8", f"_HLS_msn={last_complete}&_HLS_part=6")
    assert isinstance(held, Hold)
    feeder.advance_to(20.0 + 1 / 3)
    answer = app.resume(held.key, NOW)
    assert isinstance(answer, Response)
    assert parse_media_playlist(answer.body.decode()).last_part() == (last_complete + 1, 0)


def test_msn_only_waits_for_the_whole_segment() -> None:
    app, feeder = running(20.5)
    msn, _ = _next(app)
    held = get(app, "/live/720p/index.m3u8", f"_HLS_msn={msn}")
    assert isinstance(held, Hold)
    feeder.advance_to(21.0)
    assert app.resume(held.key, NOW) is None
    feeder.advance_to(22.0)
    assert isinstance(app.resume(held.key, NOW), Response)


def test_blocked_too_long_is_503() -> None:
    app, _ = running(20.5)
    msn, part = _next(app)
    held = get(app, "/live/720p/index.m3u8", f"_HLS_msn={msn}&_HLS_part={part}")
    assert isinstance(held, Hold)
    answer = app.expired(held.key, held.deadline)
    assert answer.status == 503 and answer.cache_control == "public, max-age=1"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("_HLS_part=1", b"without _HLS_msn"),
        ("_HLS_msn=-1", b"non-negative"),
        ("_HLS_msn=abc", b"non-negative"),
        ("_HLS_msn=1e3", b"non-negative"),
        ("_HLS_msn=99999999999999999999", b"non-negative"),
        ("_HLS_msn=1&_HLS_msn=2", b"more than once"),
        ("_HLS_msn=5&_HLS_part=x", b"_HLS_part"),
        ("_HLS_skip=NO", b"YES or v2"),
    ],
)
def test_malformed_directives_are_400(query: str, message: bytes) -> None:
    app, _ = running()
    answer = get(app, "/live/720p/index.m3u8", query)
    assert isinstance(answer, Response) and answer.status == 400 and message in answer.body


def test_msn_more_than_two_past_the_last_is_400_at_once() -> None:
    app, _ = running(20.5)
    msn, _ = _next(app)
    assert isinstance(get(app, "/live/720p/index.m3u8", f"_HLS_msn={msn + 2}"), Hold)
    answer = get(app, "/live/720p/index.m3u8", f"_HLS_msn={msn + 3}")
    assert isinstance(answer, Response) and answer.status == 400


def test_part_beyond_the_advance_part_limit_is_400() -> None:
    app, _ = running(20.5)
    msn, part = _next(app)  # part = last + 1; the limit is 3 / 0.33334 = 8.99 parts
    assert isinstance(
        get(app, "/live/720p/index.m3u8", f"_HLS_msn={msn}&_HLS_part={part + 7}"), Hold
    )
    answer = get(app, "/live/720p/index.m3u8", f"_HLS_msn={msn}&_HLS_part={part + 8}")
    assert isinstance(answer, Response) and answer.status == 400


def test_cmcd_and_other_arguments_do_not_change_the_answer() -> None:
    app, _ = running(20.5)
    msn, part = _next(app)
    plain = get(app, "/live/720p/index.m3u8", f"_HLS_msn={msn}&_HLS_part={part}")
    with_cmcd = get(
        app,
        "/live/720p/index.m3u8",
        f"CMCD=bl%3D2000%2Csid%3D%22x%22&_HLS_msn={msn}&_HLS_part={part}&v=9",
    )
    assert isinstance(plain, Hold) and isinstance(with_cmcd, Hold)
    assert plain.key == with_cmcd.key


def test_directives_ignored_once_the_playlist_has_endlist() -> None:
    app, _ = running(20.5)
    app.event.end()
    answer = get(app, "/live/720p/index.m3u8", "_HLS_msn=999999999999&_HLS_part=0")
    assert isinstance(answer, Response) and answer.status == 200
    assert parse_media_playlist(answer.body.decode()).endlist


def test_waiters_for_one_version_share_one_response_object() -> None:
    app, feeder = running(20.5)
    msn, part = _next(app)
    holds = [
        get(app, "/live/720p/index.m3u8", f"_HLS_msn={msn}&_HLS_part={part}&c={i}")
        for i in range(3)
    ]
    feeder.advance_to(20.5 + 1 / 3)
    answers = {id(app.resume(h.key, NOW)) for h in holds if isinstance(h, Hold)}
    assert len(answers) == 1


# ---------------------------------------------------------------- delta updates


def test_skip_yields_a_delta_update() -> None:
    app, _ = running(40.0, window=30.0)
    full = playlist(app)
    delta = playlist(app, query="_HLS_skip=YES")
    assert delta.skip is not None and delta.skip.skipped_segments > 0
    assert delta.media_sequence == full.media_sequence
    assert delta.first_listed_msn == full.first_listed_msn + delta.skip.skipped_segments
    remaining = sum(s.duration for s in delta.segments)
    assert remaining >= 12.0  # CAN-SKIP-UNTIL: nothing newer than the skip boundary is skipped
    assert [s.uri for s in delta.segments] == [
        s.uri for s in full.segments[delta.skip.skipped_segments :]
    ]
    assert delta.segments[0].map is not None  # the init segment stays known


def test_skip_v2_is_accepted_with_blocking() -> None:
    app, _ = running(40.5)
    msn, part = _next(app)
    answer = get(app, "/live/720p/index.m3u8", f"_HLS_msn={msn}&_HLS_part={part - 1}&_HLS_skip=v2")
    assert isinstance(answer, Response) and b"#EXT-X-SKIP:SKIPPED-SEGMENTS=" in answer.body


# ---------------------------------------------------------------- parts and preload hints


def test_hinted_part_request_is_held_until_complete() -> None:
    app, feeder = running(20.5)
    hint = playlist(app).preload_hints[0].uri
    held = get(app, f"/live/720p/{hint}")
    assert isinstance(held, Hold) and held.object_type == "part"
    feeder.advance_to(20.5 + 1 / 3)
    answer = app.resume(held.key, NOW)
    assert isinstance(answer, Response) and answer.status == 200
    assert answer.body == ok(app, f"/live/720p/{hint}").body
    assert answer.cache_control == "public, max-age=86400, immutable"


def test_never_hinted_part_is_404() -> None:
    app, _ = running(20.5)
    msn, part = _next(app)
    answer = get(app, f"/live/720p/part-{msn}.{part + 1}.m4s")
    assert isinstance(answer, Response) and answer.status == 404
    assert answer.cache_control == "public, max-age=1"


def test_media_of_a_rendition_not_started_is_503_not_404() -> None:
    """An origin without media yet (restarted, waiting for its encoder, while another origin
    serves the event) refuses media as it refuses playlists: 503, which an edge passes to the
    next origin (a 404 would reach the viewer), never stored. Once media arrives, 404 again for
    what does not exist."""
    event = make_event()
    app = OriginApp(event)
    for path in ("/live/720p/part-40.2.m4s", "/live/720p/seg-40.m4s", "/live/audio/init-0.mp4"):
        answer = get(app, path)
        assert isinstance(answer, Response), path
        assert (answer.status, answer.cache_control) == (503, "no-store"), (path, answer.body)
    playlist_answer = get(app, "/live/720p/index.m3u8")
    assert isinstance(playlist_answer, Response) and playlist_answer.status == 503
    Feeder(event).advance_to(5.0)
    answer = get(app, "/live/720p/part-1.0.m4s")
    assert isinstance(answer, Response) and answer.status == 404


def test_segments_and_init_are_immutable_and_the_sum_of_their_parts() -> None:
    app, _ = running(20.5)
    pl = playlist(app)
    seg = pl.segments[-2]
    assert seg.uri is not None
    body = ok(app, f"/live/720p/{seg.uri}")
    assert body.cache_control == "public, max-age=86400, immutable"
    msn = pl.first_listed_msn + len(pl.segments) - 2
    joined = b"".join(ok(app, f"/live/720p/part-{msn}.{i}.m4s").body for i in range(6))
    assert joined == body.body
    assert pl.segments[0].map is not None
    ok(app, f"/live/720p/{pl.segments[0].map.uri}")


# ---------------------------------------------------------------- encoder restart


def test_restart_continues_after_a_discontinuity_with_a_new_init() -> None:
    app, _ = running(10.0)
    before = playlist(app)
    last_msn = before.first_listed_msn + len(before.segments) - 1
    Feeder(app.event, generation=1, epoch=EPOCH + 60).advance_to(4.0)
    after = playlist(app)
    restarted = [s for s in after.segments if s.discontinuity]
    assert len(restarted) == 1 and restarted[0].map is not None
    index = after.segments.index(restarted[0])
    assert after.msn_of(index) == last_msn + 1
    assert restarted[0].pdt == pytest.approx(EPOCH + 60)
    ok(app, f"/live/720p/{restarted[0].map.uri}")


# ---------------------------------------------------------------- bad paths


@pytest.mark.parametrize(
    "path",
    [
        "/live/../../etc/passwd",
        "/live/720p/../../../etc/passwd",
        "/live/%2e%2e/%2e%2e/etc/passwd",
        "/live/720p/%2E%2E%2Fsecret",
        "/live/720p/seg-1.m4s%00.txt",
        "/live/720p/%ff",
        "/live/nope/index.m3u8",
        "/etc/passwd",
        "//live/main.m3u8",
        "/live/720p/seg-abc.m4s",
    ],
)
def test_unknown_and_traversal_paths_are_404(path: str) -> None:
    app, _ = running(4.0)
    answer = get(app, path)
    assert isinstance(answer, Response) and answer.status == 404


@pytest.mark.parametrize(
    ("target", "key"),
    [
        (b"/live/720p/part-5.1.m4s", b"/live/720p/part-5.1.m4s"),
        (b"/live/720p/part-5.1.m4s?CMCD=bl%3D300%2Csid%3D%22a%22", b"/live/720p/part-5.1.m4s"),
        (
            b"/live/720p/index.m3u8?CMCD=sid%3D%22b%22&_HLS_msn=5&_HLS_part=2&v=1",
            b"/live/720p/index.m3u8?_HLS_msn=5&_HLS_part=2",
        ),
        (b"/live/720p/index.m3u8?_HLS_skip=YES", b"/live/720p/index.m3u8?_HLS_skip=YES"),
    ],
)
def test_cache_key_keeps_only_what_changes_the_answer(target: bytes, key: bytes) -> None:
    assert OriginApp.cache_key(target) == key
