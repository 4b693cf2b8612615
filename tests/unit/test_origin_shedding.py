"""Load shedding, the pure part (issue 15): every URL form the router serves in its class, the
classes agreeing with what the router answers, the lag estimate and its thresholds with
hysteresis over injected time, the 503s header by header, and the ``[shedding]`` table."""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from livecast.config import config_toml, load_config
from livecast.errors import ConfigError
from livecast.origin.app import OriginApp
from livecast.origin.contract import Hold, Request, Response
from livecast.origin.shedding import (
    FIELDS,
    Headroom,
    Priority,
    Shedder,
    SheddingConfig,
    classify,
    make_shedder,
)
from livecast.origin.wire import encode_head
from livecast.store.archive import Recording
from livecast.telemetry.metrics import Registry

from .synth import EPOCH, Feeder, make_event

DVR, CLASSIC, LIVE_EDGE = Priority.DVR, Priority.CLASSIC, Priority.LIVE_EDGE
RFC3339 = "2026-12-04T20%3A00%3A00Z"

CASES = [
    # multivariant: live edge; with a recorded range: DVR
    ("/live/main.m3u8", "", LIVE_EDGE),
    ("/live/ev1/main.m3u8", "CMCD=sid%3D1", LIVE_EDGE),
    ("/live/main.m3u8", f"start={RFC3339}", DVR),
    ("/live/ev1/main.m3u8", "start=1796414400&end=1796414460", DVR),
    # media playlists
    ("/live/720p/index.m3u8", "", LIVE_EDGE),  # a viewer's start: its first reload is plain
    ("/live/720p/index.m3u8", "CMCD=bl%3D21300&cachebuster=1", LIVE_EDGE),
    ("/live/720p/index.m3u8", "_HLS_skip=YES", LIVE_EDGE),  # a delta update, not blocking
    ("/live/720p/index.m3u8", "_HLS_msn=12", LIVE_EDGE),
    ("/live/720p/index.m3u8", "_HLS_msn=12&_HLS_part=2&_HLS_skip=v2", LIVE_EDGE),
    ("/live/ev1/audio/index.m3u8", "CMCD=x&_HLS_msn=12&_HLS_part=0", LIVE_EDGE),
    ("/live/720p/index.m3u8", "start=1796414400", DVR),
    ("/live/ev1/360p/index.m3u8", "start=1796414400&end=1796414460", DVR),
    ("/live/720p/index.m3u8", "end=1796414460", DVR),  # the router's 400, still a DVR ask
    ("/live/720p/index.m3u8", "start=1&_HLS_msn=3", DVR),  # the router's 400 (mixed)
    # media
    ("/live/720p/seg-41.m4s", "", CLASSIC),
    ("/live/ev1/audio/seg-41.m4s", "CMCD=x", CLASSIC),
    ("/live/720p/part-41.2.m4s", "", LIVE_EDGE),
    ("/live/ev1/720p/part-41.5.m4s", "CMCD=x", LIVE_EDGE),
    ("/live/720p/init-0.mp4", "", LIVE_EDGE),
    ("/live/ev1/audio/init-1.mp4", "", LIVE_EDGE),
    # the recording's description: what a seek bar asks
    ("/live/recording.json", "", DVR),
    ("/live/ev1/recording.json", "", DVR),
    # decoded as the router does
    ("/live/%37%32%30p/index.m3u8", "start=1796414400", DVR),
    ("/live/720p/part-41.2%2Em4s", "", LIVE_EDGE),
    # not live: static files, monitoring, garbage (the router's 404)
    ("/", "", CLASSIC),
    ("/player.html", "", CLASSIC),
    ("/hls.min.js", "", CLASSIC),
    ("/metrics", "", LIVE_EDGE),
    ("/live/../live/main.m3u8", "", CLASSIC),
    ("/live/%ff/index.m3u8", "start=1", CLASSIC),
    ("/live/720p/index.m3u8%00", "", CLASSIC),
    ("", "", CLASSIC),
]


@pytest.mark.parametrize(("path", "query", "expected"), CASES)
def test_every_url_form_the_router_serves_has_its_class(
    path: str, query: str, expected: Priority
) -> None:
    assert classify(path, query) is expected


@pytest.mark.parametrize(
    "query", ["&&&", "=", "start", "_HLS_msn", "%zz=%", "a=b=c&&start==", "\x00", "é=1"]
)
def test_malformed_queries_never_raise(query: str) -> None:
    for path in ("/live/720p/index.m3u8", "/live/main.m3u8", "/live/720p/seg-1.m4s", "/x"):
        assert isinstance(classify(path, query), Priority)


# The router's object types, by the class shedding gives them.
ROUTER_TYPES = {
    "playlist-dvr": DVR,
    "playlist-plain": LIVE_EDGE,
    "segment": CLASSIC,
    "playlist-blocking": LIVE_EDGE,
    "part": LIVE_EDGE,
    "init": LIVE_EDGE,
    "multivariant": LIVE_EDGE,
}


@pytest.fixture
def recorded_origin(tmp_path: Path) -> Iterator[tuple[OriginApp, Feeder]]:
    recording = Recording(tmp_path)
    event = make_event(window=12.0, store=recording)
    feeder = Feeder(event)
    feeder.advance_to(60.5)
    yield OriginApp(event), feeder
    recording.close()


def test_the_classes_agree_with_what_the_router_answers(
    recorded_origin: tuple[OriginApp, Feeder],
) -> None:
    app, _ = recorded_origin
    rendition = app.event.renditions["720p"]
    position = rendition.position()
    assert position is not None
    msn = position.last_msn
    targets = [
        ("/live/main.m3u8", ""),
        ("/live/main.m3u8", f"start={EPOCH + 10}"),
        ("/live/720p/index.m3u8", ""),
        ("/live/720p/index.m3u8", "_HLS_skip=YES"),
        ("/live/720p/index.m3u8", f"_HLS_msn={msn}"),
        ("/live/720p/index.m3u8", f"_HLS_msn={msn + 1}&_HLS_part=0"),  # held
        ("/live/720p/index.m3u8", f"start={EPOCH + 10}"),
        ("/live/720p/index.m3u8", f"start={EPOCH + 10}&end={EPOCH + 20}"),
        ("/live/720p/init-0.mp4", ""),
        ("/live/720p/init-1.mp4", ""),
        ("/live/720p/seg-25.m4s", ""),
        (f"/live/720p/part-{msn}.0.m4s", ""),
    ]
    seen = set()
    for path, query in targets:
        answer = app.handle(Request("GET", path, query), 500.0)
        assert isinstance(answer, Response | Hold)
        kind = answer.object_type
        if kind not in ROUTER_TYPES:
            continue  # e.g. an init id this event does not have: a 404 of type "init"
        seen.add(kind)
        # a start-over entry: the router types it "multivariant", shedding counts it as DVR
        expected = DVR if "start=" in query else ROUTER_TYPES[kind]
        assert classify(path, query) is expected, (path, query, kind)
    assert seen >= set(ROUTER_TYPES) - {"init"}


# ---------------------------------------------------------------- the estimate


def test_the_estimate_is_the_p90_of_the_window() -> None:
    headroom = Headroom(window=1.0)
    assert headroom.estimate() == 0.0
    for i in range(20):  # 20 samples in a second, two of them late
        lag = 0.1 if i in (3, 11) else 0.001
        headroom.observe(lag, i * 0.05)
    assert headroom.estimate() == pytest.approx(0.1)  # 2 of 20: the 90th percentile
    headroom.observe(0.001, 0.95 + 0.2)  # the first late sample leaves the window
    assert headroom.estimate() == pytest.approx(0.1)
    headroom.observe(0.001, 0.55 + 1.01)  # so does the second
    assert headroom.estimate() == pytest.approx(0.001)
    assert headroom.observe(-0.003, 2.0) >= 0.0  # a timer that fired early is not negative lag


def test_one_late_tick_sheds_nothing() -> None:
    shedder = Shedder(SheddingConfig(enabled=True))
    for i in range(40):
        shedder.observe(0.3 if i == 20 else 0.001, i * 0.05)
        assert shedder.level == 0


# ---------------------------------------------------------------- thresholds, hysteresis


def feed(shedder: Shedder, lag: float, start: float, seconds: float, tick: float = 0.05) -> float:
    """``lag`` on every tick from ``start`` for ``seconds``; the time after."""
    now = start
    while now < start + seconds - 1e-9:
        shedder.observe(lag, now)
        now += tick
    return now


def test_the_lowest_classes_are_shed_first_as_the_lag_grows() -> None:
    shedder = Shedder(SheddingConfig(enabled=True))  # dvr 20 ms, classic 50 ms, live edge never
    now = feed(shedder, 0.005, 0.0, 1.0)
    assert shedder.level == 0
    now = feed(shedder, 0.030, now, 1.0)
    assert shedder.level == 1  # DVR shed
    now = feed(shedder, 0.080, now, 1.0)
    assert shedder.level == 2  # and classic
    feed(shedder, 5.0, now, 1.0)
    assert shedder.level == 2  # live edge never (threshold inf)


def test_hysteresis_waits_for_recovery_below_the_ratio_and_for_the_hold() -> None:
    config = SheddingConfig(enabled=True, dvr_ms=20, recover=0.5, hold=2.0, window=0.5)
    shedder = Shedder(config)
    now = feed(shedder, 0.030, 0.0, 1.0)
    assert shedder.level == 1
    now = feed(shedder, 0.015, now, 5.0)  # below 20 ms but not below 10 ms: still shed
    assert shedder.level == 1
    now = feed(shedder, 0.005, now, 1.5)  # recovered since ≈ 1 s, over 20 ms ≈ 5.5 s ago …
    assert shedder.level == 0  # … the ratio decides here
    now = feed(shedder, 0.025, now, 1.0)  # over again: shed at once (within the window's p90)
    assert shedder.level == 1
    # recovered: the p90 over 0.5 s is above 20 ms for ≈ 0.45 s more, under 10 ms ≈ 1 s later
    now = feed(shedder, 0.005, now, 1.5)
    assert shedder.level == 1  # but the 2 s hold since the lag was last over 20 ms is not over
    feed(shedder, 0.005, now, 1.2)  # the hold decides here
    assert shedder.level == 0


def test_a_lag_hovering_at_the_threshold_does_not_flap() -> None:
    shedder = Shedder(SheddingConfig(enabled=True, window=0.2))
    levels = []
    now = 0.0
    for i in range(200):  # 10 s of a lag alternating around 20 ms, 100 ms at a time
        lag = 0.022 if (i // 2) % 2 else 0.018
        shedder.observe(lag, now)
        levels.append(shedder.level)
        now += 0.05
    changes = sum(1 for a, b in itertools.pairwise(levels) if a != b)
    assert changes == 1 and levels[-1] == 1


# ---------------------------------------------------------------- the 503s


def test_the_503s_are_built_once_per_class_with_exact_headers() -> None:
    registry = Registry()
    shedder = Shedder(SheddingConfig(enabled=True), registry)
    feed(shedder, 0.1, 0.0, 1.0)
    assert shedder.level == 2
    dvr = shedder.check("/live/720p/index.m3u8", "start=1796414400")
    classic = shedder.check("/live/720p/seg-3.m4s", "")
    assert shedder.check("/live/720p/index.m3u8", "_HLS_msn=3") is None
    assert shedder.check("/live/720p/part-3.1.m4s", "") is None
    assert dvr is not None and classic is not None
    assert dvr is shedder.check("/live/recording.json", "")  # one Response per class
    assert encode_head(dvr).decode() == (
        "HTTP/1.1 503 Service Unavailable\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Length: 10\r\n"
        "Cache-Control: public, max-age=2\r\n"
        "Access-Control-Allow-Origin: *\r\n"
        "Access-Control-Expose-Headers: Age, Date\r\n"
        "Retry-After: 2\r\n"
    )
    assert dvr.body == b"shed: dvr\n" and dvr.object_type == "playlist-dvr"
    assert classic.body == b"shed: classic\n" and classic.object_type == "other"
    assert classic.cache_control == "public, max-age=1"
    assert classic.extra_headers == (("Retry-After", "1"),)
    assert not (dvr.reusable or dvr.permanent)  # never put in the adapter's answer cache
    text = registry.render().decode()
    assert 'livecast_origin_shed_total{class="dvr"} 2' in text
    assert 'livecast_origin_shed_total{class="classic"} 1' in text
    assert 'livecast_origin_shed_total{class="live_edge"} 0' in text
    assert "livecast_origin_shed_level 2" in text


def test_check_target_reads_raw_origin_form_targets_only() -> None:
    shedder = Shedder(SheddingConfig(enabled=True, dvr_max_age=5))
    feed(shedder, 0.03, 0.0, 1.0)
    shed = shedder.check_target(b"/live/main.m3u8?start=1796414400&CMCD=x")
    assert shed is not None and shed.cache_control == "public, max-age=5"
    assert shedder.check_target(b"/live/main.m3u8") is None
    assert shedder.check_target(b"http://origin/live/main.m3u8?start=1") is None  # parsed later
    assert shedder.check_target(b"/live/\xff\xfe/index.m3u8?start=\xff") is None  # classic


# ---------------------------------------------------------------- configuration


def test_off_by_default_and_no_shedder_when_off() -> None:
    assert not SheddingConfig().enabled
    assert make_shedder(None, Registry()) is None
    assert make_shedder(SheddingConfig(), Registry()) is None
    assert make_shedder(SheddingConfig(enabled=True), Registry()) is not None
    assert SheddingConfig().live_edge_ms == math.inf


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"dvr_ms": -1.0}, "shedding.dvr_ms"),
        ({"classic_ms": math.nan}, "shedding.classic_ms"),
        ({"dvr_ms": 60.0}, "shedding.classic_ms"),  # above classic: not rising
        ({"recover": 1.5}, "shedding.recover"),
        ({"hold": 0.0}, "shedding.hold"),
        ({"window": math.inf}, "shedding.window"),
        ({"dvr_max_age": 0}, "shedding.dvr_max_age"),
    ],
)
def test_validate_names_the_bad_key(changes: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as error:
        dataclasses.replace(SheddingConfig(), **changes).validate()
    assert error.value.key == key


def test_the_shedding_table_of_the_event_file(tmp_path: Path) -> None:
    path = tmp_path / "event.toml"
    path.write_text("[shedding]\nenabled = true\ndvr_ms = 10\nclassic_max_age = 3\n")
    config = load_config(path, env={})
    assert config.shedding == SheddingConfig(enabled=True, dvr_ms=10.0, classic_max_age=3)
    again = tmp_path / "again.toml"
    again.write_text(config_toml(config))  # how ``livecast up`` hands it to the origins
    assert load_config(again, env={}).shedding == config.shedding
    table = config_toml(config).split("[shedding]")[1].split("\n[")[0]  # up to the next table
    assert {line.split(" = ")[0] for line in table.split("\n") if line} == set(FIELDS)
    path.write_text("[shedding]\nthreshold = 3\n")
    with pytest.raises(ConfigError, match="unknown key"):
        load_config(path, env={})
    path.write_text("[shedding]\nenabled = true\nclassic_ms = 5\n")
    with pytest.raises(ConfigError) as error:
        load_config(path, env={})
    assert error.value.key == "shedding.classic_ms"
