"""The simulator's model (livecast.simulate): settings, audience rates, tiers, behaviours, CLI."""

from __future__ import annotations

import copy
import io
import json
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from livecast.errors import ConfigError
from livecast.scenario.file import parse_scenario
from livecast.simulate import audience as rates
from livecast.simulate.profile import Profile, parse_profile, profile_toml
from livecast.simulate.run import parse_simulation, run_file, simulate, simulate_data
from livecast.simulate.tiers import BLOCKING, IK, PART, SEGMENT, CacheRules, upstream_requests
from livecast.simulate.viewers import rung_for, rung_for_one

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def scenario(**simulate: Any) -> dict[str, Any]:
    """A small two-edge scenario (300 viewers, 60 s) with a ``[simulate]`` table."""
    return {
        "name": "unit",
        "duration": 60.0,
        "target": {"stack": True, "edges": 2},
        "audience": {"viewers": 300, "within": 10.0},
        "simulate": simulate,
    }


def example(name: str, duration: float = 240.0) -> dict[str, Any]:
    data = tomllib.loads((EXAMPLES / name).read_text())
    data["duration"] = duration
    data["audience"]["within"] = 60.0
    return data


def checks(result: Any) -> dict[str, float | None]:
    return {c.slo.name: c.measured for c in result.verdict.checks}


# -- bad input: exit 2 with the key named ----------------------------------------------------


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (lambda d: d["audience"].update(viewers=-5), "audience.viewers"),
        (lambda d: d["simulate"].update(edges={"count": 0}), "simulate.edges.count"),
        (lambda d: d["simulate"].update(edges={"requests_per_s": 0}),
         "simulate.edges.requests_per_s"),
        (lambda d: d["simulate"].update(origin={"cores": 0}), "simulate.origin.cores"),
        (lambda d: d["simulate"].update(edges={"negative_ttl": 600}),
         "simulate.edges.negative_ttl"),
        (lambda d: d["simulate"].update(edges={"ttl": {"playlist": 60}}),
         "simulate.edges.ttl.playlist"),
        (lambda d: d["simulate"].update(edge={}), "simulate.edge"),
        (lambda d: d["simulate"].update(step=0), "simulate.step"),
        (lambda d: d["simulate"].update(profile="missing.toml"), "simulate.profile"),
        (lambda d: d.update(faults=[{"at": 1, "kind": "stop_process", "target": "edge-9"}]),
         "faults[0].target"),
    ],
)  # fmt: skip
def test_out_of_range_values_name_their_key(change: Any, key: str) -> None:
    data = scenario()
    change(data)
    with pytest.raises(ConfigError) as caught:
        parse_simulation(data, Path("."))
    assert caught.value.key == key


def test_a_model_over_the_memory_limit_is_refused_before_allocating() -> None:
    data = scenario(step=0.01, memory_limit_gb=0.001, edges={"count": 5000})
    with pytest.raises(ConfigError, match="would need about") as caught:
        parse_simulation(data, Path("."))
    assert caught.value.key == "simulate.memory_limit_gb"


def test_the_cli_exits_2_naming_the_key_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("duration = 60.0\n[target]\nstack = true\n[audience]\nviewers = -1\n")
    err = io.StringIO()
    assert run_file(path, tmp_path / "out", err) == 2
    assert "audience.viewers" in err.getvalue()
    assert not (tmp_path / "out").exists()


def test_the_rehearsal_reads_the_same_file_and_ignores_the_simulate_table() -> None:
    data = example("simulate-6.5m.toml")
    assert parse_scenario(data).audience.viewers == 6_500_000


def test_profile_round_trips_and_refuses_zero() -> None:
    profile = Profile()
    assert parse_profile(tomllib.loads(profile_toml(profile))) == profile
    with pytest.raises(ConfigError) as caught:
        parse_profile({"edge": {"requests_per_s": 0}})
    assert caught.value.key == "edge.requests_per_s"


# -- the audience as rates -------------------------------------------------------------------


def test_flash_arrivals_follow_the_beta_shape_and_sum_to_the_audience() -> None:
    shape = parse_scenario(scenario()).audience
    arrivals = rates.initial_arrivals(shape, 60.0, 1.0)
    assert arrivals.sum() == pytest.approx(300)
    assert arrivals[0] == pytest.approx(300 * (1 - 0.9**3))  # Beta(1, 3): most arrive early
    assert arrivals[0] > arrivals[5] > arrivals[9] and arrivals[10:].sum() == 0


def test_surges_add_and_remove_viewers_per_minute() -> None:
    data = scenario(surge=[{"at": 10, "duration": 20, "viewers_per_minute": 60_000},
                           {"at": 40, "duration": 10, "viewers_per_minute": -6_000}])  # fmt: skip
    _, settings = parse_simulation(data, Path("."))
    surge = rates.surge_rates(settings.surges, 60.0, 1.0)
    assert surge[10:30].sum() == pytest.approx(20_000) and surge[:10].sum() == 0
    assert surge[40:50].sum() == pytest.approx(-1_000)


# -- the player policy and the tiers ---------------------------------------------------------


def test_rungs_are_the_player_models_start_level() -> None:
    video = np.array([2_500_000.0, 1_200_000.0, 600_000.0])
    for bps in (1e5, 9e5, 1.05e6, 2e6, 3.8e6, 6e6, 25e6):
        assert rung_for(video, 128_000, np.array([bps]))[0] == rung_for_one(video, 128_000, bps)


def rules(collapse: bool, lock_timeout: float = 8.0) -> CacheRules:
    return CacheRules(collapse, lock_timeout, 1.0, True, np.ones(len(IK)))


def test_collapse_sends_one_request_per_object_upstream_and_no_collapse_every_waiter() -> None:
    served = np.full(len(IK), 1000.0)
    objects = np.full(len(IK), 4.0)
    on = upstream_requests(served, objects, rules(True), wait=0.4, answer_time=0.01)
    off = upstream_requests(served, objects, rules(False), wait=0.4, answer_time=0.01)
    assert on[PART] == 4 and off[PART] == 1000  # blocking kinds: every waiter goes upstream
    assert 4 < off[SEGMENT] < 1000  # a segment: only those arriving during the first fetch
    short_lock = upstream_requests(served, objects, rules(True, 0.1), wait=0.4, answer_time=0.01)
    assert short_lock[PART] == pytest.approx(4 + 996 * 0.75)  # waits past 0.1 s of 0.4 s
    assert (short_lock[~BLOCKING] == on[~BLOCKING]).all()


# -- behaviours of the model -----------------------------------------------------------------


def test_the_healthy_example_is_go_and_without_collapse_no_go_naming_the_cascade() -> None:
    healthy = simulate_data(example("simulate-6.5m.toml"), EXAMPLES)
    broken = simulate_data(example("simulate-6.5m-no-collapse.toml"), EXAMPLES)
    assert healthy.verdict.go, healthy.verdict.summary()
    assert not broken.verdict.go
    assert "origin overload cascade from" in broken.verdict.summary()
    cascade = broken.meta["simulation"]["cascade"]
    assert cascade["name"] == "origin overload cascade" and cascade["starts_at_s"] < 60
    first = broken.meta["simulation"]["saturation"][0]
    assert first["component"] in ("origin", "shield") and first["peak_utilisation"] > 1
    healthy_origin = healthy.meta["simulation"]["tiers"]["origin"]
    broken_origin = broken.meta["simulation"]["tiers"]["origin"]
    assert max(broken_origin["offered_rps"]) > 100 * max(healthy_origin["offered_rps"])


def test_synchronised_retries_make_a_wave_that_jitter_spreads() -> None:
    faults = [{"at": 30, "duration": 5, "kind": "http_status", "target": "origin",
               "status": 503, "probability": 0.5}]  # fmt: skip
    waves = {}
    for jitter in (True, False):
        data = scenario() | {"retry_jitter": jitter, "faults": copy.deepcopy(faults)}
        result = simulate_data(data, Path("."))
        waves[jitter] = checks(result)["retry_wave"]
    assert waves[False] is not None and waves[True] is not None
    assert waves[False] > 4 >= waves[True]


def test_a_lost_edges_viewers_fail_and_rejoin_through_the_others() -> None:
    kill = [{"at": 30, "duration": 20, "kind": "stop_process", "target": "edge-1"}]
    for share, rejoined in ((1.0, True), (0.0, False)):
        data = scenario(rejoin_share=share, rejoin_after=2.0) | {"faults": kill}
        result = simulate_data(data, Path("."))
        viewers = result.stats.viewers
        assert viewers.rate("fatal_errors") == pytest.approx(
            150 / viewers.counters["viewers"], rel=0.05
        )
        active = result.stats.timeline.seconds
        assert active[55].active_viewers == pytest.approx(300 if rejoined else 150, rel=0.05)


def test_a_slow_origin_stalls_every_viewer_for_the_held_answers() -> None:
    slow = [{"at": 20, "duration": 5, "kind": "latency", "target": "origin",
             "latency_ms": 7200, "match": "playlist"}]  # fmt: skip
    result = simulate_data(scenario() | {"faults": slow}, Path("."))
    stalled = result.stats.viewers.counters["stalled_s"] / 300
    assert 5 < stalled < 10  # held up to the 7 s hold timeout, then one retry
    calm = simulate_data(scenario(), Path("."))
    assert calm.stats.viewers.rebuffering_ratio < 0.005


def test_slow_startup_makes_viewers_leave_before_the_first_frame() -> None:
    slow = [{"at": 0, "kind": "latency", "target": "edge-1..2", "latency_ms": 4000,
             "match": ["multivariant"]}]  # fmt: skip
    data = scenario() | {"faults": slow}
    data["audience"]["within"] = 30.0
    result = simulate_data(data, Path("."))
    left = result.stats.viewers.counters["exits_before_start"]
    assert left > 0.05 * 300  # 4 s beyond the 2 s threshold: ≈ 6 % per second


def test_a_negative_ttl_spreads_an_origin_error_to_the_hits_and_an_outage_is_fatal() -> None:
    errors = [{"at": 20, "duration": 5, "kind": "http_status", "target": "origin",
               "probability": 0.3, "match": "segment"}]  # fmt: skip
    failed = {}
    for ttl in (0.0, 1.5):
        data = scenario(edges={"negative_ttl": ttl}) | {"faults": copy.deepcopy(errors)}
        data["players"] = {"low_latency_share": 0.0}  # classic players: segments
        stats = simulate_data(data, Path(".")).stats
        failed[ttl] = stats.requests["segment"].errors
    assert failed[1.5] > 2 * failed[0.0] > 0
    down = [{"at": 30, "kind": "stop_process", "target": "origin"}]
    result = simulate_data(scenario(rejoin_share=0.0) | {"faults": down}, Path("."))
    viewers = result.stats.viewers
    assert 0.8 <= viewers.rate("fatal_errors") < 0.9  # the LL-HLS players, a few classic ones
    # the classic ones play on from the edges' stale playlists, which never get a new segment
    assert viewers.counters["stalled_s"] > 0.9 * 60 * 29


def test_a_thin_uplink_saturates_first_and_slows_the_live_edge() -> None:
    thin = simulate_data(scenario(edges={"uplink_gbps": 0.005}), Path("."))
    first = thin.meta["simulation"]["saturation"][0]
    assert first["component"] == "edge-uplinks" and first["resource"] == "bytes"
    assert "edge-uplinks" not in thin.stats.tiers  # a link, not a tier with request counters
    wide = simulate_data(scenario(), Path("."))
    assert thin.stats.viewers.rebuffering_ratio > wide.stats.viewers.rebuffering_ratio + 0.01


def test_a_dropped_contribution_stalls_everyone_and_an_exit_surge_empties_the_show() -> None:
    drop = [{"at": 30, "duration": 10, "kind": "stop_process", "target": "publisher"}]
    data = scenario(exit_surge=10.0) | {"faults": drop}
    data["target"]["source"] = "rtmp"  # an encoder publishes: the same file rehearses
    result = simulate_data(data, Path("."))
    stalled = result.stats.viewers.counters["stalled_s"] / 300
    assert 9 <= stalled <= 11
    seconds = result.stats.timeline.seconds
    assert seconds[45].active_viewers == 300 and seconds[59].active_viewers < 60


def test_results_are_the_rehearsals_format(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(
        "duration = 30.0\n[target]\nstack = true\nedges = 2\n[audience]\nviewers = 50\n"
        "[players]\nlow_latency_share = 1.0\n"
    )
    assert run_file(path, tmp_path / "out", io.StringIO()) == 0
    document = json.loads((tmp_path / "out" / "results.json").read_text())
    assert document["meta"]["simulated"] is True
    assert document["verdict"]["verdict"] == "GO"
    assert "Simulated run" in (tmp_path / "out" / "report.html").read_text()
    parsed, settings = parse_simulation(tomllib.loads(path.read_text()), tmp_path)
    again = simulate(parsed, settings)
    assert again.stats.viewers.counters["viewers"] == 50
