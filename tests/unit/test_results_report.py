"""results.json + report.html: schema, round trip, self-contained page, SVG charts and escaping."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from livecast.results.histogram import histogram_of
from livecast.results.report import (
    SCHEMA_NAME,
    SCHEMA_VERSION,
    ResultsError,
    histogram_bars,
    load_results,
    progress_line,
    read_results,
    render_html,
    write_results,
)
from livecast.results.slo import verdict
from livecast.results.stats import LatencySummary, RunStats, ViewerOutcome
from livecast.results.svg import Bar, Series, bar_chart, line_chart, nice_ticks

PLOT_TITLES = (
    "Viewers over time",
    "Latency behind live",
    "Request latency",
    "Stalls",
    "Errors by type",
    "Requests per second per tier",
    "Average bitrate per viewer",
    "Startup time",
    # the Fidelity section (results.report_fidelity)
    "Upstream requests per new object, per tier",
    "Retries per 0.1 s",
    "Requests per viewer per second, per tier",
    "Age of the playlists viewers received",
)


def _stats(startup_s: float) -> RunStats:
    stats = RunStats()
    for t in range(20):
        stats.set_active_viewers(t, 10 * t)
        stats.record_request("part", 200, 0.04, t)
        stats.record_request("playlist", 503 if t == 5 else 200, 0.2, t)
        stats.record_live_latency(t, 2.0 + t / 100)
        stats.record_tier_sample("origin", t, 100.0 * t, 0.0)
    stats.record_stall(3.0)
    for i in range(50):
        stats.record_viewer(
            ViewerOutcome(
                startup_s=startup_s + i / 100,
                played_s=20.0,
                latency=LatencySummary.of([2.0]),
                avg_bitrate_bps=1e6 + i * 1e4,
            )
        )
    return stats


def test_write_results_round_trips_into_stats(tmp_path: Path) -> None:
    stats = _stats(1.0)
    result = verdict(stats)
    paths = write_results(tmp_path / "out", stats, result, {"scenario": "smoke.toml"})
    text = paths.json_path.read_text()
    assert text.startswith('{\n "schema": "livecast.results",\n "version": 1,')
    assert text.count("\n") < 200  # stats on one line, headline parts indented
    document = json.loads(text)
    assert document["schema"] == SCHEMA_NAME and document["version"] == SCHEMA_VERSION
    assert document["verdict"]["verdict"] == "GO"
    assert document["summary"]["viewers"] == 50
    loaded = read_results(paths.json_path)
    assert loaded.stats.to_dict() == stats.to_dict()
    assert loaded.verdict == result
    assert loaded.meta == {"scenario": "smoke.toml"}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "not a JSON object"),
        ({"schema": "other"}, "not a livecast results document"),
        ({"schema": SCHEMA_NAME, "version": 99}, "version"),
        ({"schema": SCHEMA_NAME, "version": 1, "meta": {}, "verdict": {}}, "'stats'"),
        (
            {"schema": SCHEMA_NAME, "version": 1, "meta": {}, "verdict": {}, "stats": {}},
            "malformed",
        ),
    ],
)
def test_unreadable_documents_raise_results_error(document: object, message: str) -> None:
    with pytest.raises(ResultsError, match=message):
        load_results(document)


def test_read_results_of_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ResultsError, match="cannot read"):
        read_results(tmp_path / "nope.json")


def test_html_is_self_contained_with_one_svg_per_plot() -> None:
    stats = _stats(4.0)
    result = verdict(stats)
    page = render_html(stats, result, {"scenario": "<script>alert(1)</script>"})
    assert page.count("<svg") == len(PLOT_TITLES)
    for title in PLOT_TITLES:
        assert f"<title>{title}</title>" in page
    assert not re.search(r"https?://", page)
    assert "<script" not in page and "&lt;script&gt;" in page
    assert "<link" not in page and "src=" not in page
    assert "NO-GO" in page
    figure = r"startup_p95: viewers.startup_s.p95 = 4\.4\d* \(SLO &lt;= 3\) VIOLATED"
    assert re.search(figure, page)  # the violated SLO named with its figure
    assert "<td>playlist</td>" in page and "<th>503</th>" in page


def test_go_banner() -> None:
    stats = _stats(1.0)
    page = render_html(stats, verdict(stats), {})
    assert '<section class="banner go"><h1>GO</h1>' in page


def test_histogram_bars_keep_every_count_with_round_edges() -> None:
    histogram = histogram_of([1.0, 2.0, 2.0, 3.0, 10.0])
    bars = histogram_bars(histogram, bins=4)
    assert [(b.label, b.value) for b in bars] == [("0–5", 4), ("5–10", 1)]
    bitrates = histogram_of([8e5, 1.6e6, 1.7e6, 3e6], lowest=1.0, highest=1e11)
    bars = histogram_bars(bitrates, bins=6, scale=1e6)
    assert [b.label for b in bars] == ["0.5–1", "1–1.5", "1.5–2", "2–2.5", "2.5–3"]
    assert [b.value for b in bars] == [1, 0, 2, 0, 1]
    assert histogram_bars(histogram_of([])) == []


def test_svg_charts_escape_text_and_handle_gaps_and_no_data() -> None:
    chart = line_chart(
        'a <b> & "c"',
        [Series("x<y", (0.0, 1.0, 2.0, 3.0), (1.0, float("nan"), 2.0, 3.0))],
        x_label="t & s",
        y_label="n",
    )
    assert "a &lt;b&gt; &amp; &quot;c&quot;" in chart and "x&lt;y" in chart and "t &amp; s" in chart
    assert chart.count("<polyline") == 2  # the NaN splits the line
    assert "no data" in line_chart("empty", [], x_label="", y_label="")
    bars = bar_chart("b", [Bar("<1", 3.0), Bar("1-2", 5.0)], x_label="s", y_label="n")
    assert bars.count("<rect") == 1 + 2 and "&lt;1" in bars
    assert "no data" in bar_chart("b", [], x_label="", y_label="")


def test_nice_ticks() -> None:
    assert nice_ticks(0.0, 10.0) == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
    assert nice_ticks(0.0, 0.37) == [0.0, 0.1, 0.2, 0.3, 0.4]
    assert nice_ticks(5.0, 5.0)[0] <= 5.0 <= nice_ticks(5.0, 5.0)[-1]


def test_progress_line_reports_the_last_complete_second() -> None:
    stats = RunStats()
    stats.set_active_viewers(11.2, 180)
    for _ in range(9):
        stats.record_request("part", 200, 0.030, 11.5)
    stats.record_request("playlist", 503, 0.120, 11.6)
    stats.record_request("part", "reset", None, 11.7)
    stats.record_stall(11.9)
    line = progress_line(stats, 12.3)
    assert line == (
        "t=11s viewers=180 req/s=11 errors/s=2 (503:1 reset:1) "
        "latency p50=30ms p95=120ms stalls/s=1"
    )
    assert progress_line(RunStats(), 0.5) == "t=0s no data yet"
