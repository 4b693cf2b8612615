"""A contribution-fed run's input switches (pure): what the origin's own /metrics said about
the encoders, followed while the run went, and the report's "Contribution" section.

The origin counts every change of what is on air (``livecast_ingest_switches_total{from,to}``),
says what is on air now (``livecast_ingest_on_air{input} 1``: primary, backup or slate) and how
long the last switch left the programme without new media (``livecast_ingest_switch_gap_seconds``:
from the old input's last media to the new input on air — the switch time viewers saw). A
rehearsal scrapes /metrics once a second and feeds each text to :meth:`IngestLog.observe`:

    log = IngestLog()
    change = log.observe(t_s, metrics_text)      # an AirChange when the on-air input changed
    meta["contribution"] = log.to_dict() | stall_figures(stats)

A change is dated by the scrape that first saw it (it happened within the second before); a gap
is the origin's own measurement, read with the change it belongs to (the origin sets the on-air
gauge and the gap together). Counts by from→to come from the counters, so a change that came
and went between two scrapes is still counted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from livecast.results.html import figure, table
from livecast.results.scrape import parse_prometheus_text
from livecast.results.stats import RunStats
from livecast.results.svg import escape

SWITCHES = "livecast_ingest_switches_total"
ON_AIR = "livecast_ingest_on_air"
SWITCH_GAP = "livecast_ingest_switch_gap_seconds"
PUBLISHES = "livecast_ingest_publishes_total"
NOTHING = "none"  # the counters' "from" before anything was on air
ARROW = "→"


def accepted_publishes(text: str) -> float:
    """Encoders the origin accepted so far (every reconnection counts), from /metrics."""
    return sum(
        s.value
        for s in parse_prometheus_text(text)
        if s.name == PUBLISHES and s.label("result") == "accepted"
    )


def on_air_input(text: str, stream: str = "main") -> str | None:
    """What is on air at ``stream`` (an input's name or the slate), from /metrics."""
    return next(
        (
            s.label("input")
            for s in parse_prometheus_text(text)
            if s.name == ON_AIR and s.value == 1 and s.label("stream") == stream
        ),
        None,
    )


@dataclass(frozen=True)
class AirChange:
    """The on-air input changed from ``before`` to ``after``, seen at ``t_s``; ``gap_s`` is the
    origin's switch time when one input replaced another (None for the slate's switches)."""

    t_s: float
    before: str
    after: str
    gap_s: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"t_s": round(self.t_s, 3), "from": self.before, "to": self.after,
                "gap_s": self.gap_s}  # fmt: skip

    def describe(self) -> str:
        gap = "" if self.gap_s is None else f" (switch time {self.gap_s:.2f} s)"
        return f"t={self.t_s:.0f}s on air: {self.before} {ARROW} {self.after}{gap}"


@dataclass
class IngestLog:
    """What the origin said about one stream's inputs over the run."""

    stream: str = "main"
    publishers: int = 0
    on_air: str | None = None
    changes: list[AirChange] = field(default_factory=list)
    switches: dict[str, int] = field(default_factory=dict)  # "primary→backup" → count
    last_gap_s: float | None = None
    accepted: int = 0

    def observe(self, t_s: float, text: str) -> AirChange | None:
        """One scrape of /metrics; the change of the on-air input it shows, if any."""
        on_air, gap, switches, accepted = None, None, {}, 0.0
        for sample in parse_prometheus_text(text):
            if sample.name == PUBLISHES and sample.label("result") == "accepted":
                accepted += sample.value
            if sample.label("stream") != self.stream:
                continue
            if sample.name == ON_AIR and sample.value == 1:
                on_air = sample.label("input")
            elif sample.name == SWITCH_GAP:
                gap = sample.value
            elif sample.name == SWITCHES and sample.label("from") != NOTHING:
                switches[f"{sample.label('from')}{ARROW}{sample.label('to')}"] = int(sample.value)
        self.accepted = int(accepted)
        self.switches = {k: n for k, n in sorted(switches.items()) if n}
        change = self._change(t_s, on_air, gap)
        self.on_air, self.last_gap_s = on_air or self.on_air, gap
        return change

    def _change(self, t_s: float, on_air: str | None, gap: float | None) -> AirChange | None:
        before = self.on_air
        if on_air is None or before is None or on_air == before:
            return None
        fresh_gap = gap if gap is not None and gap != self.last_gap_s else None
        change = AirChange(t_s, before, on_air, fresh_gap)
        self.changes.append(change)
        return change

    def to_dict(self) -> dict[str, Any]:
        return {
            "publishers": self.publishers,
            "switches": dict(self.switches),
            "on_air_changes": [change.to_dict() for change in self.changes],
            "last_switch_gap_s": self.last_gap_s,
            "on_air_at_end": self.on_air,
            "publishes_accepted": self.accepted,
        }


def stall_figures(stats: RunStats) -> dict[str, float | None]:
    """The viewers' stall time over the run (the switch's cost as viewers saw it)."""
    viewers = stats.viewers
    stalled = viewers.distributions["stalled_s"]
    started = viewers.counters["started"]
    return {
        "viewers_stalled_s_total": viewers.counters["stalled_s"],
        "viewers_stalls": viewers.counters["stalls"],
        "viewer_stalled_s_mean": viewers.counters["stalled_s"] / started if started else None,
        "viewer_stalled_s_p95": stalled.percentile(95) if stalled.count else None,
        "viewer_stalled_s_max": stalled.max if stalled.count else None,
        "rebuffering_ratio": viewers.rebuffering_ratio,
    }


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def ingest_section(stats: RunStats, meta: Mapping[str, Any]) -> str:
    """The "Contribution" section of report.html; empty for a run without encoders."""
    facts = meta.get("contribution")
    if not isinstance(facts, Mapping):
        return ""
    switches = facts.get("switches") or {}
    switch_rows = [[str(name), str(count)] for name, count in dict(switches).items()]
    change_rows = [
        [figure(_number(c.get("t_s"))), f"{c.get('from')} {ARROW} {c.get('to')}",
         figure(_number(c.get("gap_s")))]
        for c in facts.get("on_air_changes") or [] if isinstance(c, Mapping)
    ]  # fmt: skip
    stall_rows = [[name, figure(value)] for name, value in stall_figures(stats).items()]
    gap = figure(_number(facts.get("last_switch_gap_s")))
    return f"""<h2>Contribution: input switches</h2>
<p>{escape(str(facts.get("publishers", "?")))} encoder(s) publishing; last switch time
(the old input's last media → the new input on air, from the origin's
<code>{SWITCH_GAP}</code>): <strong>{escape(gap)} s</strong>; on air at the end:
{escape(str(facts.get("on_air_at_end") or "–"))}.</p>
{table(["switch", "count"], switch_rows or [["none", "0"]])}
<p>On-air changes, seen by scraping the origin's /metrics once a second:</p>
{table(["t (s)", "change", "switch time (s)"], change_rows or [["–", "none", "–"]])}
<p>Viewers' stall time over the run:</p>
{table(["figure", "value"], stall_rows)}
"""
