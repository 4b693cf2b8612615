"""The report's "Fidelity" section: projection table, indicator table with SLO results, plots."""

from __future__ import annotations

from livecast.results.histogram import Histogram
from livecast.results.indicators import ObjectTally, RunContext, TierObjects
from livecast.results.report import render_html
from livecast.results.report_fidelity import capped_bars, fidelity_section
from livecast.results.slo import verdict
from livecast.results.stats import RunStats, TierCounters


def run_with_edges() -> RunStats:
    stats = RunStats()
    edge = stats.indicators.tiers["edge"] = TierObjects(instances=2)
    for t in range(20):
        stats.set_active_viewers(t, 100)
        stats.timeline.at(t).requests = 1200
        edge.seconds[t] = [1200, 48, 48, 30_000_000]
    edge.by_kind["part"] = ObjectTally(requests=24_000, upstream=960, objects=960)
    stats.tiers["origin"] = TierCounters([(float(t), 48.0 * t, 0.0) for t in range(20)])
    stats.record_sent(15.3, retry=True)
    stats.indicators.client.playlist_age_s.record(0.05)
    stats.indicators.context = RunContext(
        part_target=1 / 3, edges=2, target_viewers=6_500_000, target_edges=200,
        fault_windows=((15.0, 16.5),),
    )  # fmt: skip
    return stats


def test_the_section_shows_the_projection_the_indicators_and_the_plots() -> None:
    stats = run_with_edges()
    html = fidelity_section(stats, verdict(stats))
    assert "6,500,000 viewers on 200 edges" in html
    assert "<td>edge</td><td>200</td>" in html and "<td>origin</td><td>1</td>" in html
    assert "OVER" in html  # 100 × 12 req/s × 65,000 per edge: far over this machine's nginx
    assert "objects.edge.part.upstream_per_object" in html and "VIOLATED" in html
    for title in (
        "Upstream requests per new object, per tier",
        "Retries per 0.1 s (faults: 15–16.5 s)",
        "Requests per viewer per second, per tier",
        "Age of the playlists viewers received",
    ):
        assert title in html
    assert "<h2>Fidelity" in render_html(stats, verdict(stats), {"scenario": "x"})


def test_an_empty_run_renders_and_says_no_target_is_set() -> None:
    stats = RunStats()
    html = fidelity_section(stats, verdict(stats))
    assert "No target audience set" in html and "<svg" in html


def test_playlist_ages_past_the_p99_get_one_bar() -> None:
    ages = Histogram(1e-4, 3600.0, 0.01)
    ages.record(0.05, 900)
    ages.record(0.2, 95)  # the p99 is among these
    ages.record(0.3, 4)
    ages.record(30.0, 1)  # one very stale playlist
    bars = capped_bars(ages)
    assert bars[-1].label.startswith("> 0.19") and bars[-1].value == 5  # p99 ≈ 0.2 s
    assert sum(bar.value for bar in bars) == 1000
    assert len(bars) > 3  # the fresh ages keep their resolution
