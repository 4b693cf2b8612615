"""Per-tier figures of a rehearsal: the access-log follower, cache figures in the results and the
hit-ratio SLO, and the scenario keys that put edges in front of the origin."""

from __future__ import annotations

from pathlib import Path

import pytest

from livecast.errors import ConfigError
from livecast.rehearse.tiers import AccessLogFollower, tier_kind
from livecast.results.slo import Slo, verdict
from livecast.results.stats import RunStats, TierCounters
from livecast.scenario.file import parse_scenario


def line(tier: str, status: int = 200, cache: str = "HIT") -> str:
    fields = ["1764000000.123", tier, "GET", "/live/720p/index.m3u8?_HLS_msn=5&_HLS_part=1",
              str(status), "1500", "0.001", cache, "-", "-", "-", "4242"]  # fmt: skip
    return "\t".join(fields) + "\n"


def test_tier_kind_drops_the_index() -> None:
    assert tier_kind("edge-0") == tier_kind("edge-12") == "edge"
    assert tier_kind("shield") == "shield"
    assert tier_kind("my-tier") == "my-tier"


def test_follower_reads_each_line_once_and_waits_for_partial_lines(tmp_path: Path) -> None:
    logs = {"edge-0": tmp_path / "e0.log", "edge-1": tmp_path / "e1.log"}
    follower = AccessLogFollower(logs)
    assert follower.poll()["edge"].requests == 0  # no file yet: nothing, no error
    logs["edge-0"].write_text(line("edge-0") + line("edge-0", cache="MISS"))
    logs["edge-1"].write_text(line("edge-1", status=502, cache="-"))
    edge = follower.poll()["edge"]
    assert (edge.requests, edge.responses_5xx, edge.cache_lookups, edge.cache_hits) == (3, 1, 2, 1)
    half = line("edge-0", cache="STALE")
    with open(logs["edge-0"], "a") as log:
        log.write(half[:20])
    assert follower.poll()["edge"].requests == 3  # the line is not complete yet
    with open(logs["edge-0"], "a") as log:
        log.write(half[20:] + "garbage\n")
    edge = follower.poll()["edge"]
    assert (edge.requests, edge.cache_hits, edge.malformed) == (4, 2, 1)
    assert edge.hit_ratio == pytest.approx(2 / 3)
    assert follower.poll()["edge"].requests == 4  # read once


def test_cache_figures_survive_the_results_round_trip_and_merge() -> None:
    stats = RunStats()
    stats.tiers["edge"] = TierCounters([(0.0, 0.0, 0.0), (10.0, 1000.0, 0.0)], 900, 855)
    stats.tiers["origin"] = TierCounters([(0.0, 0.0, 0.0), (10.0, 50.0, 0.0)])
    back = RunStats.from_dict(stats.to_dict())
    assert back.tiers["edge"].hit_ratio == pytest.approx(0.95)
    assert back.tiers["origin"].hit_ratio is None
    merged = RunStats()
    merged.merge(back)
    merged.merge(back)
    assert merged.tiers["edge"].cache_lookups == 1800 and merged.tiers["edge"].hit_ratio == 0.95


def test_hit_ratio_slo() -> None:
    stats = RunStats()
    stats.tiers["edge"] = TierCounters([(0.0, 0.0, 0.0), (10.0, 1000.0, 0.0)], 1000, 700)
    result = verdict(stats, [Slo("edge_hits", "tiers.edge.hit_ratio", ">=", 0.9)])
    assert result.exit_code == 1
    assert result.checks[0].measured == pytest.approx(0.7)


def test_scenario_edges_and_shield() -> None:
    scenario = parse_scenario({"target": {"stack": True, "edges": 3, "shield": True}})
    assert scenario.stack is not None and (scenario.stack.edges, scenario.stack.shield) == (3, True)
    assert parse_scenario({}).stack is not None and parse_scenario({}).stack.edges == 0
    for target, key in (
        ({"edges": -1}, "target.edges"),
        ({"edges": 65}, "target.edges"),
        ({"edges": "2"}, "target.edges"),
        ({"shield": True}, "target.shield"),
        ({"edges": 1, "shield": "yes"}, "target.shield"),
    ):
        with pytest.raises(ConfigError) as raised:
            parse_scenario({"target": {"stack": True, **target}})
        assert key in str(raised.value)
