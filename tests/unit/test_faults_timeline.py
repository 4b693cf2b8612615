"""The fault timeline: parsing, validation naming the bad key, active sets and transitions."""

from __future__ import annotations

import math
import tomllib
from typing import Any

import pytest

from livecast.errors import ConfigError
from livecast.scenario.timeline import (
    Bandwidth,
    HttpStatus,
    Latency,
    Reset,
    SlowFirstByte,
    StartProcess,
    StopProcess,
    Timeline,
    classify,
    parse_timeline,
)

SCENARIO = """
[[faults]]
at = 10.0
duration = 5.0
kind = "latency"
target = "origin"
latency_ms = 3000
jitter_ms = 100
match = "part"

[[faults]]
at = 2
kind = "http_status"
target = "origin"
status = 503
probability = 0.25
match = ["part", "segment"]

[[faults]]
at = 20.0
duration = 4.0
kind = "stop_process"
target = "encoder"

[[faults]]
at = 30.0
duration = 1.0
kind = "bandwidth"
target = "edge"
rate_kbps = 800

[[faults]]
at = 31.0
kind = "reset"
target = "edge"

[[faults]]
at = 32.0
duration = 2.0
kind = "slow_first_byte"
target = "origin"
delay_ms = 1500

[[faults]]
at = 40.0
kind = "start_process"
target = "encoder"
"""


def timeline() -> Timeline:
    return parse_timeline(tomllib.loads(SCENARIO)["faults"])


def test_parses_every_kind_in_start_order() -> None:
    faults = timeline().faults
    assert [fault.at for fault in faults] == [2.0, 10.0, 20.0, 30.0, 31.0, 32.0, 40.0]
    by_kind = {fault.kind: fault for fault in faults}
    assert by_kind["latency"].effect == Latency(3000.0, 100.0)
    assert by_kind["latency"].match == frozenset({"part"})
    assert by_kind["latency"].index == 0 and by_kind["latency"].end == 15.0
    assert by_kind["http_status"].effect == HttpStatus(503, 0.25, "")
    assert by_kind["http_status"].match == frozenset({"part", "segment"})
    assert by_kind["http_status"].duration is None and by_kind["http_status"].end == math.inf
    assert by_kind["stop_process"].effect == StopProcess("pause")
    assert by_kind["bandwidth"].effect == Bandwidth(800.0)
    assert Bandwidth(800.0).bytes_per_second == 100_000.0
    assert by_kind["reset"].effect == Reset(1.0)
    assert by_kind["slow_first_byte"].effect == SlowFirstByte(1500.0)
    assert by_kind["start_process"].effect == StartProcess()
    assert by_kind["reset"].matches("playlist")  # match defaults to any
    assert by_kind["latency"].label == "faults[0] latency on origin"


def test_no_faults() -> None:
    assert parse_timeline(None) == Timeline()
    assert parse_timeline([]).active(5.0) == []
    assert Timeline().last_change == 0.0


def test_active_set_by_time_and_target() -> None:
    line = timeline()
    assert [fault.kind for fault in line.active(0.0)] == []
    assert [fault.kind for fault in line.active(2.0)] == ["http_status"]
    assert [fault.kind for fault in line.active(10.0)] == ["http_status", "latency"]
    assert [fault.kind for fault in line.active(14.999)] == ["http_status", "latency"]
    assert [fault.kind for fault in line.active(15.0)] == ["http_status"]  # end is exclusive
    assert [fault.kind for fault in line.active(30.5, "edge")] == ["bandwidth"]
    assert [fault.kind for fault in line.active(31.5, "edge")] == ["reset"]
    assert [fault.kind for fault in line.active(31.5, "origin")] == ["http_status"]
    assert line.targets() == frozenset({"origin", "encoder", "edge"})
    assert line.last_change == 40.0


def test_transitions_are_half_open_and_pure() -> None:
    line = timeline()
    first = line.transitions(-math.inf, 0.0)
    assert not first and first.started == () and first.ended == ()
    assert [f.kind for f in line.transitions(0.0, 10.0).started] == ["http_status", "latency"]
    assert line.transitions(10.0, 12.0).started == ()
    step = line.transitions(14.0, 24.0)
    assert [f.kind for f in step.started] == ["stop_process"]
    assert [f.kind for f in step.ended] == ["latency", "stop_process"]
    assert line.transitions(24.0, 24.0) == line.transitions(24.0, 24.0)
    assert not line.transitions(24.0, 24.0)
    whole = line.transitions(-1.0, 100.0)
    assert len(whole.started) == 7 and len(whole.ended) == 4


def fault(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"at": 1.0, "kind": "latency", "target": "origin", "latency_ms": 10}
    base.update(overrides)
    return {key: value for key, value in base.items() if value is not None}


@pytest.mark.parametrize(
    ("entry", "key"),
    [
        (fault(latency_ms=-1), "faults[2].latency_ms"),
        (fault(latency_ms="3000"), "faults[2].latency_ms"),
        (fault(latency_ms=True), "faults[2].latency_ms"),
        (fault(latency_ms=None), "faults[2].latency_ms"),
        (fault(latency_ms=math.inf), "faults[2].latency_ms"),
        (fault(jitter_ms=-5), "faults[2].jitter_ms"),
        (fault(at=-1.0), "faults[2].at"),
        (fault(at=None), "faults[2].at"),
        (fault(duration=0), "faults[2].duration"),
        (fault(kind="explode"), "faults[2].kind"),
        (fault(kind=None), "faults[2].kind"),
        (fault(target=""), "faults[2].target"),
        (fault(target=None), "faults[2].target"),
        (fault(target=3), "faults[2].target"),
        (fault(match="parts"), "faults[2].match"),
        (fault(match=[]), "faults[2].match"),
        (fault(rate_kbps=100), "faults[2].rate_kbps"),  # a key of another kind
        (fault(latncy_ms=5), "faults[2].latncy_ms"),
        (fault(kind="bandwidth", latency_ms=None), "faults[2].rate_kbps"),
        (fault(kind="bandwidth", latency_ms=None, rate_kbps=0), "faults[2].rate_kbps"),
        (fault(kind="reset", latency_ms=None, probability=1.5), "faults[2].probability"),
        (fault(kind="http_status", latency_ms=None, status=99), "faults[2].status"),
        (fault(kind="http_status", latency_ms=None, status="503"), "faults[2].status"),
        (fault(kind="http_status", latency_ms=None, body=7), "faults[2].body"),
        (fault(kind="http_status", latency_ms=None, cache_control=5), "faults[2].cache_control"),
        (
            fault(kind="http_status", latency_ms=None, cache_control="a\r\nSet-Cookie: x"),
            "faults[2].cache_control",
        ),
        (fault(kind="slow_first_byte", latency_ms=None), "faults[2].delay_ms"),
        (fault(kind="stop_process", latency_ms=None, mode="nuke"), "faults[2].mode"),
        (fault(kind="start_process", latency_ms=None, duration=3.0), "faults[2].duration"),
        ("latency", "faults[2]"),
    ],
)
def test_a_bad_fault_names_its_key(entry: Any, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_timeline([fault(), fault(), entry])
    assert caught.value.key == key
    assert key in str(caught.value)


def test_faults_must_be_an_array() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_timeline({"at": 1})
    assert caught.value.key == "faults"
    with pytest.raises(ConfigError) as caught:
        parse_timeline("latency", key="scenario.faults")
    assert caught.value.key == "scenario.faults"


def test_defaults_of_optional_keys() -> None:
    line = parse_timeline(
        [
            {"at": 0, "kind": "http_status", "target": "o"},
            {"at": 0, "kind": "stop_process", "target": "p", "mode": "kill"},
            {"at": 0, "kind": "latency", "target": "o", "latency_ms": 0},
        ]
    )
    effects = [fault.effect for fault in line.faults]
    assert effects == [HttpStatus(503, 1.0, ""), StopProcess("kill"), Latency(0.0, 0.0)]


@pytest.mark.parametrize(
    ("target", "object_type"),
    [
        ("/live/main.m3u8", "multivariant"),
        ("/master.m3u8", "multivariant"),
        ("/live/720p/index.m3u8", "playlist"),
        ("/live/720p/index.m3u8?_HLS_msn=7&_HLS_part=2", "playlist"),
        ("/live/720p/chunks.m3u8", "playlist"),
        ("/live/720p/part-7.2.m4s", "part"),
        ("/live/720p/seg-7.m4s", "segment"),
        ("/live/720p/seg-7.ts", "segment"),
        ("/live/720p/init-1.mp4", "init"),
        ("/metrics", "other"),
        ("/", "other"),
    ],
)
def test_classify_by_url_shape(target: str, object_type: str) -> None:
    assert classify(target) == object_type
