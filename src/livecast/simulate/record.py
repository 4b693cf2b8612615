"""The model's steps as the rehearsal's results: ``RunStats``, tier series and what saturated.

Counts are rounded to whole requests and viewers when recorded (a cohort of 2.4 viewers is
recorded as 2); totals of millions are unaffected, a validation run of a few hundred viewers
within one viewer per (mode, band) and step. Per-viewer distributions are cohort means: every
viewer of a cohort leaving in the same step has the same rebuffering ratio.

Saturation: a tier is saturated in a step when its busiest node's utilisation (requests or
bytes over capacity) exceeds 1. The *origin overload cascade* — the incident's failure class —
is an origin saturated while the requests it is offered keep growing past the capacity, fed by
failed requests that come back as retries or by misses the edges no longer collapse: named
when the origin stays over capacity for ``CASCADE_SECONDS`` with viewers' requests failing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from livecast.results.stats import LatencySummary, RunStats, ViewerOutcome
from livecast.simulate.model import (
    ABANDONED,
    FATAL,
    START_FAILED,
    Departure,
    StepFigures,
)  # fmt: skip
from livecast.simulate.tiers import IK, REQUEST_KIND

CASCADE_SECONDS = 5.0
LINKS = frozenset({"edge-uplinks", "shield-uplink"})


@dataclass
class TierSeries:
    t_s: list[float] = field(default_factory=list)
    offered_rps: list[float] = field(default_factory=list)
    served_rps: list[float] = field(default_factory=list)
    offered_bps: list[float] = field(default_factory=list)
    utilisation: list[float] = field(default_factory=list)
    capacity_rps: float = 0.0
    capacity_bps: float = 0.0
    requests_total: float = 0.0
    failed_total: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "t_s": self.t_s, "offered_rps": self.offered_rps, "served_rps": self.served_rps,
            "capacity_rps": self.capacity_rps, "offered_bps": self.offered_bps,
            "capacity_bps": self.capacity_bps, "utilisation": self.utilisation,
        }  # fmt: skip


class Recorder:
    def __init__(self, seed: int, step: float) -> None:
        self.stats = RunStats(seed)
        self.step = step
        self.tiers: dict[str, TierSeries] = {}
        self.cache = [0.0, 0.0]  # edge lookups, hits
        self.viewer_steps = 0.0
        self.peak = 0.0
        self.startups: dict[float, float] = {}  # startup time (0.1 ms) → viewers
        self.carry: dict[str, float] = {}  # departures: the fraction of a viewer not recorded

    def add(self, fig: StepFigures) -> None:
        self._requests(fig)
        self._viewers(fig)
        self._tiers(fig)
        self.viewer_steps += fig.present
        self.peak = max(self.peak, fig.present)

    def _requests(self, fig: StepFigures) -> None:
        stats, t = self.stats, fig.t
        sent = 0
        for k in range(len(IK)):
            kind = REQUEST_KIND[k]
            total, failed, refused = fig.requests[k], fig.failed[k], fig.refused[k]
            ok = round(total - failed)
            stats.record_requests(kind, 200, float(fig.latency[k]), t, ok)
            stats.record_requests(kind, "refused", None, t, round(refused))
            stats.record_requests(kind, self._failure_status(fig), None, t,
                                  round(failed - refused))  # fmt: skip
            sent += round(total)
        stats.record_sent_over(t, sent, round(fig.retries), fig.retries_burst)
        client = stats.indicators.client
        client.count("retries", round(fig.retries))
        client.count("retried_requests", round(fig.retried))

    @staticmethod
    def _failure_status(fig: StepFigures) -> str:
        """A failure the origins caused is their 503 (shedding); else the edges' time-out."""
        origin = fig.tiers.get("origin")
        return "503" if origin is not None and origin.failed > 0 else "504"

    def _viewers(self, fig: StepFigures) -> None:
        stats, t = self.stats, fig.t
        second = stats.timeline.at(t)
        second.active_viewers = round(fig.present)
        second.stalls += round(fig.stalls)
        for mode, latency in enumerate(fig.latency_live):
            second.live_latency_s.record(
                float(latency), round(fig.present_by_mode[mode] * self.step)
            )
        for value, weight in zip(fig.startup_values, fig.startup_weights, strict=True):
            if weight > 0:  # kept fractional until the end: a step's joiners split into many
                key = round(float(value), 4)
                self.startups[key] = self.startups.get(key, 0.0) + float(weight)
        for departure in fig.departed:
            self._departure(departure)

    def _departure(self, d: Departure) -> None:
        carried = self.carry.get(d.kind, 0.0) + d.count  # fractions carried to the next one
        count = math.floor(carried + 0.5)
        self.carry[d.kind] = carried - count
        if count <= 0:
            return
        viewers = self.stats.viewers
        if d.kind in (START_FAILED, ABANDONED):
            viewers.record(ViewerOutcome(None, start_failed=d.kind == START_FAILED,
                                         exited_before_start=d.kind == ABANDONED,
                                         fatal_error="start" if d.kind == START_FAILED else None),
                           count)  # fmt: skip
            return
        latency = LatencySummary(1, d.latency_s, d.latency_s, d.latency_s)
        outcome = ViewerOutcome(
            startup_s=None, stalls=round(d.stalls), stalled_s=d.stalled_s, played_s=d.played_s,
            latency=latency, avg_bitrate_bps=d.bitrate_bps,
            fatal_error="fatal" if d.kind == FATAL else None,
        )  # fmt: skip
        viewers.record_after_start(outcome, count)  # their start was recorded then

    def _tiers(self, fig: StepFigures) -> None:
        step = self.step
        for name, tier in fig.tiers.items():
            series = self.tiers.setdefault(name, TierSeries())
            series.t_s.append(fig.t)
            series.offered_rps.append(tier.offered / step)
            series.served_rps.append(tier.served / step)
            series.offered_bps.append(tier.offered_bytes * 8 / step)
            series.utilisation.append(tier.utilisation)
            series.capacity_rps = tier.capacity / step if math.isfinite(tier.capacity) else 0.0
            series.capacity_bps = tier.capacity_bytes * 8 / step
            series.requests_total += tier.offered
            series.failed_total += tier.failed
            if name not in LINKS:  # links are in the saturation table, not the tier counters
                self.stats.record_tier_sample(name, fig.t + step, series.requests_total,
                                              series.failed_total)  # fmt: skip
        if "edge" in fig.tiers:
            self.cache[0] += fig.upstream_hits[0]
            self.cache[1] += fig.upstream_hits[1]

    def finish(self) -> RunStats:
        carry = 0.0  # whole viewers, the fractions carried over in order of startup time
        for value, weight in sorted(self.startups.items()):
            carry += weight
            count = math.floor(carry + 0.5)
            if count > 0:
                self.stats.viewers.record_startup(value, count)
                carry -= count
        edge = self.stats.tiers.get("edge")
        if edge is not None:
            edge.cache_lookups, edge.cache_hits = self.cache[0], self.cache[1]
        for name in self.tiers.keys() - LINKS:
            self.stats.tiers[name].samples.insert(0, (0.0, 0.0, 0.0))
        return self.stats

    def saturation(self) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """(components over capacity, first first; the origin overload cascade or None)."""
        found: list[dict[str, Any]] = []
        for name, series in self.tiers.items():
            over = [i for i, u in enumerate(series.utilisation) if u > 1.0]
            if not over:
                continue
            peak = max(range(len(series.utilisation)), key=series.utilisation.__getitem__)
            bytes_bound = series.offered_bps[peak] > series.capacity_bps > 0
            found.append({
                "component": name, "first_at_s": series.t_s[over[0]],
                "peak_utilisation": series.utilisation[peak], "peak_at_s": series.t_s[peak],
                "seconds_over": len(over) * self.step,
                "resource": "bytes" if bytes_bound else "requests",
            })  # fmt: skip
        found.sort(key=lambda entry: float(entry["first_at_s"]))
        return found, self._cascade(found)

    def _cascade(self, found: list[dict[str, Any]]) -> dict[str, Any] | None:
        origin = next((entry for entry in found if entry["component"] == "origin"), None)
        if origin is None or origin["seconds_over"] < CASCADE_SECONDS:
            return None
        series = self.tiers["origin"]
        start = origin["first_at_s"]
        peak = origin["peak_utilisation"]
        served = max(series.served_rps) if series.served_rps else 0.0
        offered = max(series.offered_rps) if series.offered_rps else 0.0
        return {
            "name": "origin overload cascade",
            "starts_at_s": start,
            "description": (
                f"the origin goes over capacity at {start:g} s and stays over for "
                f"{origin['seconds_over']:g} s (peak {peak:.3g}× its capacity: up to "
                f"{offered:,.0f} requests/s offered, {served:,.0f} served); the requests it "
                "fails come back as retries and the edges pass them on"
            ),
        }
