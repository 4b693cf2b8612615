"""Service level objectives, how each is measured from :class:`RunStats`, and the GO/NO-GO verdict.

An SLO is ``Slo(name, metric, op, threshold)``: the run is GO when every measured metric satisfies
``measured <op> threshold``. Metric names (a wildcard tier checks every tier on its own):

    viewers.<distribution>.<stat>   distribution: startup_s, stalls, stalled_s, rebuffering_ratio,
                                    latency_behind_live_s, avg_bitrate_bps, switches;
                                    stat: p50, p95, p99.9 (any pNN), mean, min, max
    viewers.rebuffering_ratio       aggregate: total stalled / (stalled + played)
    viewers.fatal_error_rate        viewers that ended on a fatal error / viewers
    viewers.video_start_failure_rate, viewers.exit_before_start_rate
    dvr_viewers.…                   the same figures of the start-over (DVR) viewers, who are
                                    counted apart: ``viewers.…`` is the live viewers'
    requests.<kind|all|live|dvr>.latency_s.<stat>   kind: multivariant, playlist, part, segment,
                                    init, or a start-over viewer's playlist-dvr, segment-dvr, …;
                                    live/dvr: all of the live/start-over viewers' requests
    requests.<kind|all|live|dvr>.5xx_rate, requests.<kind|all|live|dvr>.error_rate
    tiers.<tier|*>.5xx_rate, tiers.<tier|*>.requests_per_s   (from the stack's own counters)
    tiers.<tier>.hit_ratio   (a caching tier: edge, shield — from its access log)
    objects.*, freshness.*, errors.*, retry.*, load.*, projected.*   the scale-invariant
                             indicators and the projection to the target audience
                             (``livecast.results.fidelity``; ``*`` for a tier or an object kind)

A metric that cannot be measured (no viewer started, no tier counters scraped) is reported as
"not measured" and does not make the run NO-GO; the error-rate SLOs catch a run where nobody played.

Scenario files configure SLOs in a ``[slo]`` table (parsed by :func:`parse_slos`)::

    [slo]
    defaults = true                 # keep the default SLOs (the default); false drops them
    startup_p95 = 2.5               # a bare number replaces a default SLO's threshold
    [slo.part_latency_p99]
    metric = "requests.part.latency_s.p99"
    op = "<="
    threshold = 0.5

Exit codes of ``livecast rehearse``: :data:`EXIT_GO` 0, :data:`EXIT_NO_GO` 1,
:data:`EXIT_COULD_NOT_RUN` 2 (unreachable target, bad scenario).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from livecast.errors import ConfigError
from livecast.results.fidelity import (
    INDICATOR_FAMILIES,
    Figures,
    indicator_figures,
    known_indicator,
    metric_matches,
)
from livecast.results.histogram import Histogram
from livecast.results.stats import VIEWER_DISTRIBUTIONS, RequestKindStats, RunStats, is_dvr_kind

EXIT_GO = 0
EXIT_NO_GO = 1
EXIT_COULD_NOT_RUN = 2

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    "<": operator.lt,
    ">=": operator.ge,
    ">": operator.gt,
}

_VIEWER_RATES = {
    "fatal_error_rate": "fatal_errors",
    "video_start_failure_rate": "start_failures",
    "exit_before_start_rate": "exits_before_start",
}


@dataclass(frozen=True)
class Slo:
    name: str
    metric: str
    op: str
    threshold: float

    def holds_for(self, measured: float) -> bool:
        return OPERATORS[self.op](measured, self.threshold)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "metric": self.metric,
            "op": self.op,
            "threshold": self.threshold,
        }


DEFAULT_SLOS: tuple[Slo, ...] = (
    Slo("startup_p95", "viewers.startup_s.p95", "<=", 3.0),
    Slo("rebuffering_ratio", "viewers.rebuffering_ratio", "<=", 0.02),
    Slo("fatal_error_rate", "viewers.fatal_error_rate", "<=", 0.01),
    Slo("latency_p95", "viewers.latency_behind_live_s.p95", "<=", 5.0),
    Slo("tier_5xx_rate", "tiers.*.5xx_rate", "<=", 0.01),
    # scale-invariant indicators (docs/rehearsal.md, "Fidelity"): what a few hundred viewers
    # measure that still holds for the night's audience
    Slo("upstream_per_object", "objects.*.*.upstream_per_object", "<=", 1.5),
    Slo("overlapping_fetches", "objects.*.overlapping_share", "<=", 0.05),
    Slo("playlist_staleness_p95", "freshness.staleness_p95_parts", "<=", 2.0),
    Slo("too_old_playlists", "freshness.too_old_share", "<=", 0.01),
    Slo("early_404_share", "errors.early_404_share", "<=", 0.001),
    Slo("held_past_share", "errors.held_past_share", "<=", 0.001),
    Slo("retries_per_failed_request", "retry.retries_per_failed_request", "<=", 3.0),
    Slo("retry_wave", "retry.wave_peak_to_mean", "<=", 4.0),
    Slo("projected_utilisation", "projected.*.utilisation", "<=", 1.0),
)


@dataclass(frozen=True)
class Measurement:
    subject: str  # the metric, with a wildcard tier replaced by the tier's name
    value: float | None  # None: not measured


def _statistic(histogram: Histogram, stat: str) -> float | None:
    if not histogram.count:
        return None
    if stat == "mean":
        return histogram.mean
    if stat == "min":
        return histogram.min
    if stat == "max":
        return histogram.max
    return histogram.percentile(float(stat[1:]))


def _valid_stat(stat: str) -> bool:
    if stat in ("mean", "min", "max"):
        return True
    try:
        return stat.startswith("p") and 0.0 <= float(stat[1:]) <= 100.0
    except ValueError:
        return False


def validate_metric(metric: str) -> None:
    """Raise ``ValueError`` naming what is wrong with a metric name."""
    parts = metric.split(".")
    family = parts[0]
    if family in VIEWER_FAMILIES:
        if len(parts) == 2 and (parts[1] in _VIEWER_RATES or parts[1] == "rebuffering_ratio"):
            return
        if len(parts) == 3 and parts[1] in VIEWER_DISTRIBUTIONS and _valid_stat(parts[2]):
            return
    elif family == "requests":
        if len(parts) == 3 and parts[2] in ("5xx_rate", "error_rate"):
            return
        if len(parts) == 4 and parts[2] == "latency_s" and _valid_stat(parts[3]):
            return
    elif family == "tiers" and len(parts) == 3 and parts[2] in TIER_FIGURES:
        return
    if family in INDICATOR_FAMILIES and known_indicator(metric):
        return
    raise ValueError(f"unknown metric {metric!r}")


TIER_FIGURES = ("5xx_rate", "requests_per_s", "hit_ratio")
VIEWER_FAMILIES = ("viewers", "dvr_viewers")


def request_kinds(stats: RunStats, kind: str) -> list[RequestKindStats]:
    """The request kinds a metric's ``kind`` covers: one, "all", or "live"/"dvr" (every kind
    of the live / the start-over viewers)."""
    if kind == "all":
        return list(stats.requests.values())
    if kind in ("live", "dvr"):
        dvr = kind == "dvr"
        return [s for name, s in stats.requests.items() if is_dvr_kind(name) == dvr]
    found = stats.requests.get(kind)
    return [found] if found is not None else []


def merged_latency(kinds: list[RequestKindStats]) -> Histogram:
    """The latency histograms of ``kinds`` added together."""
    merged = Histogram()
    for kind_stats in kinds:
        merged.merge(kind_stats.latency_s)
    return merged


def _request_latency(stats: RunStats, kind: str) -> Histogram:
    return merged_latency(request_kinds(stats, kind))


def _request_rate(stats: RunStats, kind: str, counted: str) -> float | None:
    present = request_kinds(stats, kind)
    total = sum(k.total for k in present)
    if not total:
        return None
    hits = sum(k.count_where("5") if counted == "5xx_rate" else k.errors for k in present)
    return hits / total


def measure(stats: RunStats, metric: str, figures: Figures | None = None) -> list[Measurement]:
    """The measured figure(s) of ``metric``: one, or one per tier for ``tiers.*`` (and per
    tier/kind for an indicator with ``*``). ``figures``: the run's indicator figures, if known."""
    validate_metric(metric)
    parts = metric.split(".")
    if parts[0] in INDICATOR_FAMILIES:
        if figures is None:
            figures = indicator_figures(stats)
        found = [
            Measurement(name, value)
            for name, value in figures.items()
            if metric_matches(metric, name)
        ]
        return found or [Measurement(metric, None)]
    if parts[0] in VIEWER_FAMILIES:
        viewers = stats.viewers if parts[0] == "viewers" else stats.dvr_viewers
        if parts[1] == "rebuffering_ratio" and len(parts) == 2:
            return [Measurement(metric, viewers.rebuffering_ratio)]
        if parts[1] in _VIEWER_RATES:
            return [Measurement(metric, viewers.rate(_VIEWER_RATES[parts[1]]))]
        value = _statistic(viewers.distributions[parts[1]], parts[2])
        return [Measurement(metric, value)]
    if parts[0] == "requests":
        if parts[2] == "latency_s":
            return [Measurement(metric, _statistic(_request_latency(stats, parts[1]), parts[3]))]
        return [Measurement(metric, _request_rate(stats, parts[1], parts[2]))]
    tiers = sorted(stats.tiers) if parts[1] == "*" else [parts[1]]
    measurements = []
    for tier in tiers:
        counters = stats.tiers.get(tier)
        value = None
        if counters is not None:
            value = {
                "5xx_rate": counters.five_xx_rate,
                "requests_per_s": counters.mean_requests_per_s,
                "hit_ratio": counters.hit_ratio,
            }[parts[2]]
        measurements.append(Measurement(f"tiers.{tier}.{parts[2]}", value))
    return measurements or [Measurement(metric, None)]


@dataclass(frozen=True)
class SloCheck:
    slo: Slo
    subject: str
    measured: float | None

    @property
    def measured_ok(self) -> bool:
        return self.measured is not None and not math.isnan(self.measured)

    @property
    def violated(self) -> bool:
        measured = self.measured
        if measured is None or math.isnan(measured):
            return False
        return not self.slo.holds_for(measured)

    def describe(self) -> str:
        figure = f"{self.measured:.4g}" if self.measured_ok else "not measured"
        verdict = "VIOLATED" if self.violated else ("ok" if self.measured_ok else "-")
        bound = f"{self.slo.op} {self.slo.threshold:g}"
        return f"{self.slo.name}: {self.subject} = {figure} (SLO {bound}) {verdict}{self.by()}"

    def by(self) -> str:
        """How far past its threshold a violated figure is: " (3.2× the limit)"."""
        if not self.violated or self.measured is None:
            return ""
        threshold, measured = self.slo.threshold, self.measured
        if self.slo.op in ("<=", "<") and threshold > 0:
            return f" ({measured / threshold:.3g}× the limit)"
        if self.slo.op in (">=", ">") and measured > 0:
            return f" ({threshold / measured:.3g}× short)"
        return ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "slo": self.slo.to_dict(),
            "subject": self.subject,
            "measured": self.measured if self.measured_ok else None,
            "violated": self.violated,
        }


@dataclass(frozen=True)
class Verdict:
    checks: tuple[SloCheck, ...]

    @property
    def violations(self) -> tuple[SloCheck, ...]:
        return tuple(check for check in self.checks if check.violated)

    @property
    def go(self) -> bool:
        return not self.violations

    @property
    def label(self) -> str:
        return "GO" if self.go else "NO-GO"

    @property
    def exit_code(self) -> int:
        return EXIT_GO if self.go else EXIT_NO_GO

    def summary(self) -> str:
        """One line: "GO" or "NO-GO: name (subject = 4.2 > 3), ..."."""
        if self.go:
            return "GO"
        named = [
            f"{c.slo.name} ({c.subject} = {c.measured:.4g}, SLO {c.slo.op} {c.slo.threshold:g})"
            for c in self.violations
        ]
        return "NO-GO: " + ", ".join(named)

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.label,
            "exit_code": self.exit_code,
            "summary": self.summary(),
            "checks": [check.to_dict() for check in self.checks],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Verdict:
        checks = []
        for check in data["checks"]:
            slo = Slo(**check["slo"])
            measured = check["measured"]
            value = None if measured is None else float(measured)
            checks.append(SloCheck(slo, str(check["subject"]), value))
        return cls(tuple(checks))


def verdict(stats: RunStats, slos: tuple[Slo, ...] = DEFAULT_SLOS) -> Verdict:
    figures = indicator_figures(stats)
    checks = [
        SloCheck(slo, measurement.subject, measurement.value)
        for slo in slos
        for measurement in measure(stats, slo.metric, figures)
    ]
    return Verdict(tuple(checks))


def _number(value: object, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ConfigError(key, f"must be a number, got {value!r}")
    return float(value)


def _parse_one(name: str, table: Mapping[str, Any], key: str) -> Slo:
    unknown = set(table) - {"metric", "op", "threshold"}
    if unknown:
        raise ConfigError(f"{key}.{sorted(unknown)[0]}", "unknown key (metric, op, threshold)")
    for field in ("metric", "threshold"):
        if field not in table:
            raise ConfigError(f"{key}.{field}", "missing")
    metric = table["metric"]
    if not isinstance(metric, str):
        raise ConfigError(f"{key}.metric", f"must be a string, got {metric!r}")
    try:
        validate_metric(metric)
    except ValueError as error:
        raise ConfigError(f"{key}.metric", str(error)) from error
    op = table.get("op", "<=")
    if op not in OPERATORS:
        raise ConfigError(f"{key}.op", f"must be one of {', '.join(OPERATORS)}, got {op!r}")
    return Slo(name, metric, op, _number(table["threshold"], f"{key}.threshold"))


def parse_slos(table: Mapping[str, Any], key: str = "slo") -> tuple[Slo, ...]:
    """SLOs from a scenario's ``[slo]`` table; errors name the bad key (``slo.x.threshold``)."""
    keep_defaults = table.get("defaults", True)
    if not isinstance(keep_defaults, bool):
        raise ConfigError(f"{key}.defaults", f"must be true or false, got {keep_defaults!r}")
    slos = {slo.name: slo for slo in DEFAULT_SLOS} if keep_defaults else {}
    defaults_by_name = {slo.name: slo for slo in DEFAULT_SLOS}
    for name, value in table.items():
        if name == "defaults":
            continue
        entry_key = f"{key}.{name}"
        if isinstance(value, Mapping):
            slos[name] = _parse_one(name, value, entry_key)
        elif name in defaults_by_name:
            default = defaults_by_name[name]
            slos[name] = Slo(name, default.metric, default.op, _number(value, entry_key))
        else:
            raise ConfigError(entry_key, "a number overrides a default SLO; this is not one")
    return tuple(slos.values())
