"""The audience as the edges saw it through CMCD, beside what the players measured (pure): a
rehearsal with edges writes ``meta.cmcd`` and the report's "CMCD at the edges" section.

A rehearsal through nginx edges keeps their access logs (``<out>/access-logs/``); every request
of its virtual players carries CMCD (CTA-5004, ``player/cmcd.py``), so the same whole-run QoE an
operator gets from a real audience's logs (:mod:`livecast.qoe`) can be set against the players'
own figures of the same run. Where the two disagree beyond the tolerances of docs/qoe.md, either
the players' CMCD or the log reading is wrong — the comparison keeps the operator's view honest:

    meta["cmcd"] = cmcd_meta(run_figures, malformed, players)

``players`` holds the players' figures to compare with (viewers, started, stalls, startup p50,
mean bitrate, latency p50), read from the run's summary by :func:`players_of`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from livecast.qoe.aggregate import RunFigures
from livecast.results.html import figure, table
from livecast.results.svg import escape

# The tolerances docs/qoe.md states and tests/integration/test_cmcd_qoe.py holds a run to.
STARTUP_TOLERANCE_S = 0.15
BITRATE_TOLERANCE = 0.15


def mean_bitrate_bps(figures: RunFigures) -> float | None:
    """The mean ``br`` of the video requests, in bit/s (the bitrate mix in one figure)."""
    requests = figures.media_requests_by_bitrate
    total = sum(requests.values())
    if not total:
        return None
    return 1000.0 * sum(br * n for br, n in requests.items()) / total


def event_meta(figures: RunFigures) -> dict[str, Any]:
    """One event's whole-run CMCD figures as JSON."""
    return {
        "sessions": figures.sessions,
        "started_sessions": figures.started_sessions,
        "startup_median_s": figures.startup_median_s,
        "startup_p90_s": figures.startup_p90_s,
        "starvations": figures.starvations,
        "sessions_with_starvation": figures.sessions_with_starvation,
        "bitrate_shares": {str(br): round(s, 4) for br, s in figures.bitrate_shares().items()},
        "mean_bitrate_bps": mean_bitrate_bps(figures),
        "throughput_median_kbps": figures.throughput_median_kbps,
        "buffer_ahead_median_s": figures.buffer_ahead_median_s,
    }


def players_of(summary: Mapping[str, Any], counters: Mapping[str, Any]) -> dict[str, Any]:
    """The players' own figures the CMCD ones are set against (results.json's names)."""
    return {
        "viewers": counters.get("viewers"),
        "started": counters.get("started"),
        "stalls": counters.get("stalls"),
        "startup_p50_s": summary.get("startup_p50_s"),
        "mean_bitrate_bps": summary.get("avg_bitrate_mean_bps"),
        "latency_p50_s": summary.get("latency_behind_live_p50_s"),
    }


def agreement(edge: Mapping[str, Any], players: Mapping[str, Any]) -> dict[str, bool | None]:
    """Whether each CMCD figure agrees with the players' within docs/qoe.md's tolerances;
    None where either side has no figure."""

    def close(a: Any, b: Any, within: float) -> bool | None:
        if not isinstance(a, int | float) or not isinstance(b, int | float):
            return None
        return abs(a - b) <= within

    bitrate = players.get("mean_bitrate_bps")
    stalls = players.get("stalls")
    return {
        "sessions": edge["sessions"] == players.get("viewers"),
        "startup": close(edge["startup_median_s"], players.get("startup_p50_s"),
                         STARTUP_TOLERANCE_S),
        "bitrate": close(edge["mean_bitrate_bps"], bitrate,
                         BITRATE_TOLERANCE * bitrate if isinstance(bitrate, int | float) else 0),
        "starvation": None if stalls is None else edge["sessions_with_starvation"] <= stalls,
    }  # fmt: skip


def cmcd_meta(
    figures: Mapping[str, RunFigures], malformed: int, players: Mapping[str, Any]
) -> dict[str, Any]:
    """``meta.cmcd``: per event the edges' CMCD figures and their agreement with the players
    (compared for the event the players watched, ``main``, or the only one)."""
    events = {name: event_meta(f) for name, f in sorted(figures.items())}
    watched = "main" if "main" in events else next(iter(events), None)
    return {
        "events": events,
        "malformed_requests": malformed,
        "players": dict(players),
        "compared_event": watched,
        "agreement": agreement(events[watched], players) if watched is not None else {},
    }


def cmcd_section(meta: Mapping[str, Any]) -> str:
    """The report's "CMCD at the edges" section; empty for a run without edges."""
    facts = meta.get("cmcd")
    if not isinstance(facts, Mapping) or facts.get("compared_event") is None:
        return ""
    event = str(facts["compared_event"])
    edge = facts["events"][event]
    players = facts.get("players") or {}
    agree = facts.get("agreement") or {}

    def verdict(key: str) -> str:
        value = agree.get(key)
        return "–" if value is None else "agrees" if value else "DISAGREES"

    def num(value: Any) -> str:
        return figure(float(value)) if isinstance(value, int | float) else "–"

    rows = [
        ["sessions", num(edge["sessions"]), num(players.get("viewers")), verdict("sessions")],
        ["startup median (s)", num(edge["startup_median_s"]), num(players.get("startup_p50_s")),
         verdict("startup")],
        ["mean bitrate (bit/s)", num(edge["mean_bitrate_bps"]),
         num(players.get("mean_bitrate_bps")), verdict("bitrate")],
        ["sessions that starved / stalls", num(edge["sessions_with_starvation"]),
         num(players.get("stalls")), verdict("starvation")],
        ["throughput median (kbit/s)", num(edge["throughput_median_kbps"]), "–", "–"],
        ["buffer ahead median (s) / latency p50 (s)", num(edge["buffer_ahead_median_s"]),
         num(players.get("latency_p50_s")), "–"],
    ]  # fmt: skip
    return f"""<h2>CMCD at the edges</h2>
<p>The audience as an operator sees it: the CMCD (CTA-5004) of every request in the edges'
access logs, event <code>{escape(event)}</code>, beside the players' own figures (tolerances:
startup ± {STARTUP_TOLERANCE_S} s, bitrate ± {BITRATE_TOLERANCE:.0%}; docs/qoe.md).
{escape(str(facts.get("malformed_requests", 0)))} request(s) with unreadable CMCD.</p>
{table(["figure", "edges (CMCD)", "players", ""], rows)}
"""
