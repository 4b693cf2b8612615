"""The report's "Simulation" section: model banner, saturation table, cascade, per-tier plots."""

from __future__ import annotations

import re
from typing import Any

from livecast.results.report import render_html
from livecast.results.report_simulation import MAX_POINTS, downsample, simulation_section
from livecast.results.slo import verdict
from livecast.results.stats import RunStats

CASCADE = "the origin saturates at 12 s (offered 41× its capacity); failed requests come back"


def tier(steps: int, capacity: float, peak_at: int, peak: float) -> dict[str, Any]:
    offered = [capacity * 0.5] * steps
    offered[peak_at] = peak
    return {
        "t_s": [float(t) for t in range(steps)],
        "offered_rps": offered,
        "served_rps": [min(o, capacity) for o in offered],
        "capacity_rps": capacity,
        "offered_bps": [o * 8e6 for o in offered],
        "capacity_bps": capacity * 8e6,
        "utilisation": [o / capacity for o in offered],
    }


def simulated_meta(steps: int = 20, cascade: bool = True) -> dict[str, Any]:
    return {
        "scenario": "final",
        "simulated": True,
        "simulation": {
            "model": {"step_s": 1.0, "steps": steps, "viewers_peak": 65_000_000,
                      "wall_s": 41.2, "viewer_steps_per_s": 1.1e10, "profile": "built-in"},
            "tiers": {"origin": tier(steps, 1000.0, 12, 41_300.0),
                      "edge": tier(steps, 7.6e6, 3, 5e6)},
            "saturation": [{"component": "origin", "first_at_s": 12.0, "peak_utilisation": 41.3,
                            "peak_at_s": 15.0, "seconds_over": 7188, "resource": "requests"}],
            "cascade": {"name": "origin overload cascade", "starts_at_s": 12.0,
                        "description": CASCADE} if cascade else None,
        },
    }  # fmt: skip


def test_the_section_shows_the_model_the_saturation_and_the_plots() -> None:
    html = simulation_section(simulated_meta())
    assert "model's prediction, not a measurement" in html
    assert "65,000,000 viewers" in html and "11,000,000,000 viewer-steps/s" in html
    row = "<td>origin</td><td>12</td><td>41.3×</td><td>15</td><td>7,188</td><td>requests</td>"
    assert row in html
    assert 'class="cascade"' in html and "origin overload cascade" in html
    assert "offered 41× its capacity" in html
    for title in (
        "edge: requests/s offered vs served",
        "origin: requests/s offered vs served",
        "origin: bits/s offered",
        "Utilisation per tier (1.0 = at capacity)",
    ):
        assert title in html
    assert html.index("edge: requests/s") < html.index("origin: requests/s")  # edge first
    assert html.count("<svg") == 5


def test_no_saturation_says_so() -> None:
    meta = simulated_meta(cascade=False)
    meta["simulation"]["saturation"] = []
    html = simulation_section(meta)
    assert "No component saturated." in html and 'class="cascade"' not in html


def test_the_whole_report_carries_the_section_but_not_the_raw_series() -> None:
    stats = RunStats()
    html = render_html(stats, verdict(stats), simulated_meta())
    assert "<h2>Simulation: the model's prediction</h2>" in html
    assert html.index("Simulated run") < html.index("<h2>Run</h2>")
    assert "offered_rps" not in html  # the series are plotted, not dumped in the Run table
    assert "<td>simulated</td><td>true</td>" in html


def test_a_run_that_was_not_simulated_has_no_section() -> None:
    assert simulation_section({"scenario": "x"}) == ""
    stats = RunStats()
    html = render_html(stats, verdict(stats), {"scenario": "x"})
    assert "Simulation" not in html and "Simulated run" not in html


def test_downsampling_keeps_the_peak() -> None:
    xs = [float(t) for t in range(7200)]
    ys = [1.0] * 7200
    ys[4321] = 99.0
    sampled_x, sampled_y = downsample(xs, ys)
    assert len(sampled_y) <= MAX_POINTS
    assert max(sampled_y) == 99.0 and sampled_x[sampled_y.index(99.0)] == 4321.0
    assert list(sampled_x) == sorted(sampled_x)
    assert downsample(xs[:10], ys[:10]) == (tuple(xs[:10]), tuple(ys[:10]))


def test_long_series_are_plotted_downsampled() -> None:
    html = simulation_section(simulated_meta(steps=7200))
    polylines = re.findall(r'<polyline points="([^"]*)"', html)
    assert polylines and all(len(p.split()) <= MAX_POINTS for p in polylines)


def test_malformed_entries_do_not_break_the_section() -> None:
    meta = simulated_meta()
    meta["simulation"]["model"] = None
    meta["simulation"]["tiers"]["edge"] = {"t_s": [0, 1, 2], "offered_rps": [1, None, "x"]}
    meta["simulation"]["saturation"] = ["nonsense", {"component": "edge"}]
    html = simulation_section(meta)
    assert "<td>edge</td><td>–</td><td>–</td>" in html and "Simulated run" in html
