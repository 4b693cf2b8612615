"""The probe's sans-IO core driven with canned playlists and an injected ``now`` (no sockets, no
sleeps), then against the pure OriginApp fed with synthetic media."""

from __future__ import annotations

import pytest

from livecast.errors import ProbeError
from livecast.hls.attributes import format_pdt
from livecast.origin.app import OriginApp
from livecast.origin.contract import Hold, Request, Response
from livecast.probe.core import (
    ProbeRequest,
    ProbeSession,
    directive_url,
    percentile,
    summarize,
)

from .synth import EPOCH, Feeder, make_event

BASE = "http://origin.test/live/"
MAIN = BASE + "main.m3u8"
MEDIA = BASE + "720p/index.m3u8"
PART = 0.33334
PDT = 1_764_000_000.0  # capture time of segment 100's first sample

MULTIVARIANT = """#EXTM3U
#EXT-X-VERSION:9
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aac",NAME="audio",DEFAULT=YES,AUTOSELECT=YES,URI="audio/index.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=2800000,RESOLUTION=1280x720,CODECS="avc1.64001f,mp4a.40.2",AUDIO="aac"
720p/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360,CODECS="avc1.64001e,mp4a.40.2",AUDIO="aac"
360p/index.m3u8
"""


def media_playlist(
    last_msn: int, open_parts: int, *, first_msn: int = 100, hint: bool = True, pdt: bool = True
) -> str:
    """Complete segments ``first_msn``…``last_msn - 1`` (6 parts each), then segment
    ``last_msn`` with ``open_parts`` parts (complete with its URI when 6)."""
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:9",
        "#EXT-X-TARGETDURATION:2",
        "#EXT-X-SERVER-CONTROL:CAN-SKIP-UNTIL=12,CAN-BLOCK-RELOAD=YES,HOLD-BACK=6,PART-HOLD-BACK=1.001",
        f"#EXT-X-PART-INF:PART-TARGET={PART}",
        f"#EXT-X-MEDIA-SEQUENCE:{first_msn}",
        '#EXT-X-MAP:URI="init-1.mp4"',
    ]
    for msn in range(first_msn, last_msn + 1):
        count = 6 if msn < last_msn else open_parts
        if pdt:
            lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{format_pdt(PDT + 2 * (msn - 100))}")
        for index in range(count):
            independent = ",INDEPENDENT=YES" if index == 0 else ""
            lines.append(f'#EXT-X-PART:DURATION={PART},URI="part-{msn}.{index}.m4s"{independent}')
        if count == 6:
            lines += ["#EXTINF:2.00004,", f"seg-{msn}.m4s"]
    if hint:
        after = (last_msn + 1, 0) if open_parts == 6 else (last_msn, open_parts)
        lines.append(f'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part-{after[0]}.{after[1]}.m4s"')
    return "\n".join(lines) + "\n"


def joined(now: float = PDT + 10) -> ProbeSession:
    """A session that has chosen the 720p variant and waits for its media playlist."""
    session = ProbeSession(MAIN)
    session.start(now - 0.2)
    session.on_multivariant(MULTIVARIANT, now - 0.1)
    return session


def kinds(requests: list[ProbeRequest]) -> list[tuple[str, str]]:
    return [(r.kind, r.url.rsplit("/", 1)[-1]) for r in requests]


# ---------------------------------------------------------------- join


def test_join_picks_first_variant_and_resolves_relative_uri() -> None:
    session = ProbeSession(MAIN)
    assert kinds(session.start(0.0)) == [("multivariant", "main.m3u8")]
    (request,) = session.on_multivariant(MULTIVARIANT, 0.1)
    assert request == ProbeRequest("playlist", MEDIA, request.timeout)
    assert request.lane == "playlist"


@pytest.mark.parametrize(("wanted", "uri"), [("360p", "360p"), ("1280x720", "720p")])
def test_rendition_by_uri_prefix_or_resolution(wanted: str, uri: str) -> None:
    session = ProbeSession(MAIN, rendition=wanted)
    session.start(0.0)
    (request,) = session.on_multivariant(MULTIVARIANT, 0.1)
    assert request.url == f"{BASE}{uri}/index.m3u8"


def test_unknown_rendition_names_the_choices() -> None:
    session = ProbeSession(MAIN, rendition="1080p")
    session.start(0.0)
    with pytest.raises(ProbeError, match=r"1080p.*720p/index\.m3u8"):
        session.on_multivariant(MULTIVARIANT, 0.1)


def test_a_media_playlist_url_is_followed_directly() -> None:
    session = ProbeSession(MEDIA)
    session.start(0.0)
    requests = session.on_multivariant(media_playlist(103, 2), 0.1)
    assert ("playlist", "index.m3u8?_HLS_msn=103&_HLS_part=2") in kinds(requests)
    assert session.media_url == MEDIA


def test_starts_at_newest_independent_part_then_hint() -> None:
    session = joined()
    requests = session.on_playlist(media_playlist(103, 2), PDT + 10)
    # one request per lane: the blocking reload and the init segment
    assert kinds(requests) == [
        ("playlist", "index.m3u8?_HLS_msn=103&_HLS_part=2"),
        ("init", "init-1.mp4"),
    ]
    fetched = []
    request = requests[-1]
    for _ in range(3):
        (request,) = session.on_part(request.url, 1000, PDT + 10)
        fetched.append(request.url.rsplit("/", 1)[-1])
    # 103.0 is the newest INDEPENDENT part; 103.2 is the preload hint
    assert fetched == ["part-103.0.m4s", "part-103.1.m4s", "part-103.2.m4s"]
    assert session.on_part(request.url, 1000, PDT + 10) == []  # the queue is empty


def test_next_blocking_request_after_last_part_of_segment_is_next_msn_part_0() -> None:
    session = joined()
    (reload, _) = session.on_playlist(media_playlist(103, 6), PDT + 10)
    assert (reload.msn, reload.part) == (104, 0)
    assert reload.url == MEDIA + "?_HLS_msn=104&_HLS_part=0"
    assert reload.timeout > 6  # outlasts the server's 3 × TD hold


def test_following_advances_one_part_per_blocking_reload() -> None:
    session = joined()
    session.on_playlist(media_playlist(103, 4), PDT + 10)
    (reload,) = session.on_playlist(media_playlist(103, 5), PDT + 10.3)
    assert (reload.msn, reload.part) == (103, 5)
    (reload,) = session.on_playlist(media_playlist(103, 6), PDT + 10.6)
    assert (reload.msn, reload.part) == (104, 0)
    (reload,) = session.on_playlist(media_playlist(104, 1, first_msn=101), PDT + 10.9)
    assert (reload.msn, reload.part) == (104, 1)


def test_directive_url_replaces_earlier_directives() -> None:
    url = directive_url(MEDIA + "?token=a&_HLS_msn=1&_HLS_part=2", 7, 0)
    assert url == MEDIA + "?token=a&_HLS_msn=7&_HLS_part=0"


# ---------------------------------------------------------------- measurements


def test_latency_from_pdt_of_the_part_end_and_startup() -> None:
    session = ProbeSession(MAIN)
    session.start(PDT + 7.0)
    session.on_multivariant(MULTIVARIANT, PDT + 7.01)
    requests = session.on_playlist(media_playlist(103, 3), PDT + 7.02)
    assert requests[-1].kind == "init"
    (part0,) = session.on_part(requests[-1].url, 800, PDT + 7.05)
    (part1,) = session.on_part(part0.url, 5000, PDT + 7.10)
    assert part0.url.endswith("part-103.0.m4s")
    # segment 103 starts at PDT + 6; part 0 ends one part later
    assert session.latencies == pytest.approx([7.10 - (PDT + 6 + PART) + PDT])
    session.on_part(part1.url, 5000, PDT + 7.20)
    assert session.latencies[-1] == pytest.approx(7.20 - (6 + 2 * PART))
    assert session.startup == pytest.approx(0.10)
    report = session.report(PDT + 8)
    assert report.parts == 2 and report.bytes > 10_000


def test_latency_of_a_hinted_part_received_before_its_playlist() -> None:
    session = joined()
    requests = session.on_playlist(media_playlist(103, 6), PDT + 8.0)
    request = requests[-1]
    while not request.url.endswith("part-104.0.m4s"):  # drain 103.0 … 103.5, reach the hint
        (request,) = session.on_part(request.url, 100, PDT + 8.0)
    count = len(session.latencies)
    session.on_part(request.url, 100, PDT + 8.5)  # its duration is not known yet
    assert len(session.latencies) == count
    session.on_playlist(media_playlist(104, 1, first_msn=101), PDT + 8.6)
    assert session.latencies[-1] == pytest.approx(8.5 - (8 + PART))


def test_blocking_wait_is_measured_from_the_send() -> None:
    session = joined()
    (reload, _) = session.on_playlist(media_playlist(103, 2), PDT + 10.0)
    assert reload.msn is not None
    session.on_playlist(media_playlist(103, 3), PDT + 10.25)
    assert session.blocking_waits == pytest.approx([0.25])


def test_percentile_interpolates_and_rejects_nothing() -> None:
    values = [5.0, 1.0, 3.0, 2.0, 4.0]
    assert percentile(values, 50) == 3.0
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 5.0
    assert percentile(values, 95) == pytest.approx(4.8)
    assert percentile([7.0], 95) == 7.0
    with pytest.raises(ValueError):
        percentile([], 50)
    assert summarize([]) is None
    assert summarize([1.0, 2.0]) == {"p50": 1.5, "p95": pytest.approx(1.95), "max": 2.0}


# ---------------------------------------------------------------- failures


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<html>not a playlist</html>", "bad multivariant playlist"),
        ("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n", "bad multivariant playlist"),
        ("#EXTM3U\n#EXT-X-VERSION:9\n", "no variant"),
    ],
)
def test_bad_multivariant_playlist_is_a_probe_error(text: str, message: str) -> None:
    session = ProbeSession(MAIN)
    session.start(0.0)
    with pytest.raises(ProbeError, match=message):
        session.on_multivariant(text, 0.1)
    assert session.report(0.2).ok is False


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("#EXTM3U\n#EXTINF:2,\nseg-1.m4s\n", "bad media playlist"),
        ("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\nseg-1.m4s\n", "no EXT-X-PART"),
        ('#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-PART:URI="a"\n', "bad media playlist"),
    ],
)
def test_bad_media_playlist_is_a_probe_error(text: str, message: str) -> None:
    session = joined()
    with pytest.raises(ProbeError, match=message):
        session.on_playlist(text, 1.0)


def test_join_failure_is_one_clear_error() -> None:
    session = ProbeSession(MAIN)
    (request,) = session.start(0.0)
    with pytest.raises(ProbeError, match=r"cannot load http://origin\.test/.*connection refused"):
        session.on_error(request, 0, 0.1, "connection refused")
    session = ProbeSession(MAIN)
    (request,) = session.start(0.0)
    with pytest.raises(ProbeError, match="HTTP 404"):
        session.on_error(request, 404, 0.1)


def test_join_retries_while_the_event_is_starting() -> None:
    session = ProbeSession(MAIN)
    (request,) = session.start(0.0)
    (retry,) = session.on_error(request, 503, 0.1)
    assert retry.url == MAIN and retry.delay > 0


def test_playlist_errors_while_following_back_off_then_fail() -> None:
    session = joined()
    (reload, _) = session.on_playlist(media_playlist(103, 2), PDT + 10)
    for attempt in range(5):
        (reload,) = session.on_error(reload, 503, PDT + 11 + attempt)
        assert reload.msn is None and reload.delay > 0  # a plain reload to resynchronise
    with pytest.raises(ProbeError, match="6 failed requests in a row"):
        session.on_error(reload, 503, PDT + 20)
    assert session.errors == {"503": 6}


def test_stall_is_detected_on_tick() -> None:
    session = joined()
    requests = session.on_playlist(media_playlist(103, 2), PDT + 10)
    session.on_part(requests[-1].url, 100, PDT + 10.1)
    assert session.on_tick(PDT + 12) == []
    with pytest.raises(ProbeError, match="stalled"):
        session.on_tick(PDT + 10.1 + session.stall_limit + 0.1)


def test_endlist_stops_following() -> None:
    session = joined()
    text = media_playlist(103, 6, hint=False) + "#EXT-X-ENDLIST\n"
    requests = session.on_playlist(text, PDT + 10)
    assert [r.lane for r in requests] == ["part"]
    assert session.finished
    assert session.report(PDT + 11).error == "the stream ended (EXT-X-ENDLIST)"


# ---------------------------------------------------------------- against the pure origin


def test_follows_the_pure_origin_without_errors() -> None:
    """Session ↔ OriginApp in memory: blocking reloads and hinted parts are held by the origin
    until the synthetic encoder produces them; media time runs at wall-clock speed."""
    event = make_event()
    feeder = Feeder(event)
    app = OriginApp(event)
    feeder.advance_to(9.0)
    now = EPOCH + 9.0
    session = ProbeSession("http://o.test/live/main.m3u8")
    held: list[tuple[ProbeRequest, Hold]] = []

    def answer(request: ProbeRequest, outcome: Response) -> list[ProbeRequest]:
        assert outcome.status == 200, (request.url, outcome.body)
        if request.kind == "multivariant":
            return session.on_multivariant(outcome.body.decode(), now)
        if request.kind == "playlist":
            return session.on_playlist(outcome.body.decode(), now)
        return session.on_part(request.url, len(outcome.body), now)

    def send(requests: list[ProbeRequest]) -> None:
        for request in requests:
            path, _, query = request.url.removeprefix("http://o.test").partition("?")
            outcome = app.handle(Request("GET", path, query), now)
            if isinstance(outcome, Hold):
                held.append((request, outcome))
            else:
                send(answer(request, outcome))

    send(session.start(now))
    while now < EPOCH + 15.0:
        now += 0.05
        feeder.advance_to(now - EPOCH)
        for request, hold in list(held):
            response = app.resume(hold.key, now)
            if response is not None:
                held.remove((request, hold))
                send(answer(request, response))
    report = session.report(now)
    assert report.ok, report.error
    assert report.errors == {}
    assert report.parts >= 6 * 3 * 5 // 6  # ≈ 3 parts/s for 6 s, after a few catch-up parts
    assert report.latency is not None and report.latency["p50"] < 0.06
    assert report.max_part_gap is not None and report.max_part_gap < 0.4
