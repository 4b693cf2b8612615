"""Rehearsal scenarios: defaults, every section parsed, errors naming the bad key."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from livecast.errors import ConfigError
from livecast.rehearse.stack import shedding_config
from livecast.scenario.file import load_scenario, parse_scenario

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_the_shipped_examples_parse() -> None:
    smoke = load_scenario(EXAMPLES / "smoke.toml")
    assert smoke.audience.viewers == 200 and smoke.duration == 30.0
    assert smoke.stack is not None and smoke.stack.source == "loop"
    assert {slo.name for slo in smoke.slos} >= {"startup_p95", "rebuffering_ratio"}
    crowd = load_scenario(EXAMPLES / "flash-crowd.toml")
    assert crowd.audience.kind == "flash" and crowd.audience.within == 10.0


def test_a_full_scenario() -> None:
    scenario = parse_scenario(
        {
            "name": "big night",
            "duration": 60,
            "seed": 9,
            "workers": 2,
            "retry_jitter": False,
            "target": {
                "urls": [
                    "http://127.0.0.1:8080/live/main.m3u8",
                    "http://127.0.0.1:8081/live/main.m3u8",
                ]
            },
            "audience": {"kind": "ramp", "viewers": 1000, "within": 30},
            "players": {"low_latency_share": 0.5},
            "downlink": [{"kbps": 5000, "weight": 1}],
            "slo": {"startup_p95": 2.0},
            "faults": [
                {
                    "at": 10,
                    "duration": 5,
                    "kind": "latency",
                    "target": "origin",
                    "latency_ms": 3000,
                    "match": "part",
                }
            ],
        }
    )
    assert scenario.stack is None and len(scenario.urls) == 2
    assert (scenario.audience.kind, scenario.audience.viewers) == ("ramp", 1000)
    assert not scenario.retry_jitter and scenario.workers == 2
    assert next(s for s in scenario.slos if s.name == "startup_p95").threshold == 2.0
    assert len(scenario.faults.faults) == 1


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"durration": 3}, "durration"),
        ({"duration": "long"}, "duration"),
        ({"target": {"urls": ["ftp://x"]}}, "target.urls[0]"),
        ({"target": {"urls": ["http://x/m.m3u8"], "stack": True}}, "target.stack"),
        ({"target": {"stack": False}}, "target.urls"),
        ({"target": {"source": "hdmi"}}, "target.source"),
        ({"target": {"shedding": "yes"}}, "target.shedding"),
        ({"target": {"shedding_dvr_ms": 10}}, "target.shedding_dvr_ms"),
        ({"target": {"shedding": True, "shedding_dvr_ms": "x"}}, "target.shedding_dvr_ms"),
        ({"target": {"shedding": True, "shedding_dvr_ms": 80}}, "target.shedding_dvr_ms"),
        ({"audience": {"viewers": 0}}, "audience.viewers"),
        ({"audience": {"kind": "crowd"}}, "audience.kind"),
        ({"audience": {"crowd": 1}}, "audience.crowd"),
        ({"players": {"low_latency_share": 1.5}}, "players.low_latency_share"),
        ({"downlink": [{"kbps": 10}]}, "downlink[0].kbps"),
        ({"slo": {"nonsense": 1}}, "slo.nonsense"),
        ({"faults": [{"at": 1, "kind": "latency", "target": "origin"}]}, "faults[0].latency_ms"),
    ],
)
def test_bad_scenarios_name_the_key(data: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_scenario(data)
    assert info.value.key == key


def test_shedding_is_off_by_default_and_reaches_the_stack_toml() -> None:
    stack = parse_scenario({}).stack
    assert stack is not None and not stack.shedding and stack.shedding_dvr_ms is None
    assert shedding_config(stack) == []
    on = parse_scenario({"target": {"shedding": True}}).stack
    assert on is not None and on.shedding
    assert shedding_config(on) == ["[shedding]", "enabled = true"]
    tuned = parse_scenario({"target": {"shedding": True, "shedding_dvr_ms": 15}}).stack
    assert tuned is not None and tuned.shedding_dvr_ms == 15.0
    text = "\n".join(["port = 0", *shedding_config(tuned)]) + "\n"
    assert tomllib.loads(text)["shedding"] == {"enabled": True, "dvr_ms": 15.0}


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_scenario(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("duration = [")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_scenario(bad)
