"""The edges' CMCD QoE beside the players' figures: meta.cmcd and its report section."""

from __future__ import annotations

from livecast.qoe.aggregate import RunFigures
from livecast.results.report_cmcd import cmcd_meta, cmcd_section, players_of


def figures(sessions: int = 40, startup: float | None = 0.10, starved: int = 0) -> RunFigures:
    return RunFigures(
        sessions=sessions,
        started_sessions=sessions,
        startup_median_s=startup,
        startup_p90_s=startup,
        starvations=3 * starved,
        sessions_with_starvation=starved,
        media_requests_by_bitrate={800: 30, 2500: 70},
        media_bytes_by_bitrate={800: 3_000, 2500: 21_000},
        throughput_median_kbps=6100.0,
        buffer_ahead_median_s=1.5,
    )


PLAYERS = players_of(
    {"startup_p50_s": 0.12, "avg_bitrate_mean_bps": 2_000_000.0, "latency_behind_live_p50_s": 1.6},
    {"viewers": 40, "started": 40, "stalls": 1},
)


def test_figures_that_agree_within_the_stated_tolerances() -> None:
    meta = cmcd_meta({"main": figures(starved=1)}, 0, PLAYERS)
    main = meta["events"]["main"]
    assert main["mean_bitrate_bps"] == 1000 * (800 * 0.3 + 2500 * 0.7)  # 1.99 Mbit/s
    assert main["bitrate_shares"] == {"800": 0.3, "2500": 0.7}
    assert meta["agreement"] == {
        "sessions": True, "startup": True, "bitrate": True, "starvation": True
    }  # fmt: skip
    html = cmcd_section({"cmcd": meta})
    assert "CMCD at the edges" in html and "DISAGREES" not in html


def test_each_disagreement_is_named() -> None:
    meta = cmcd_meta({"main": figures(sessions=39, startup=0.5, starved=2)}, 4, PLAYERS)
    assert meta["agreement"] == {
        "sessions": False, "startup": False, "bitrate": True, "starvation": False
    }  # fmt: skip
    assert cmcd_section({"cmcd": meta}).count("DISAGREES") == 3
    assert meta["malformed_requests"] == 4


def test_missing_figures_are_not_judged_and_no_edges_no_section() -> None:
    meta = cmcd_meta({"other": figures(startup=None)}, 0, players_of({}, {}))
    assert meta["compared_event"] == "other"
    assert meta["agreement"]["startup"] is None and meta["agreement"]["starvation"] is None
    assert cmcd_section({}) == "" and cmcd_section({"cmcd": cmcd_meta({}, 0, PLAYERS)}) == ""
