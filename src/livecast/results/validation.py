"""The model against the rehearsal: the five figures ``livecast simulate`` must predict (pure).

``benchmarks/bench_simulate_validation.py`` rehearses a scenario on the real stack, simulates the
same file, reads both results.json (``results.report.read_results``) and compares, per scenario,
the figures of :data:`FIGURES`:

    origin_requests_per_s   the origin tier's requests per second, mean over the run (its own
                            counter, scraped each second): ``tiers.origin.requests_per_s``
    edge_hit_ratio          the edges' cache hits / cache lookups over the run (their access
                            logs): ``tiers.edge.hit_ratio``
    five_xx_rate            share of the viewers' requests answered 5xx (a transport failure —
                            timeout, refused connection, reset — counts as a request, not as a
                            5xx): ``requests.all.5xx_rate`` = ``RunStats.request_share("5")``
    startup_p95_s           the viewers' startup time, 95th percentile: ``viewers.startup_s.p95``
    rebuffering_ratio       stalled / (stalled + played), all viewers together:
                            ``viewers.rebuffering_ratio``

Each is read with ``results.slo.measure`` under the metric name shown (:data:`METRICS`), so a
figure here is by construction the one the SLO of that name judges.

**Agreement** (:func:`agrees`): the prediction is within :data:`RELATIVE_TOLERANCE` (15 %) of
the measured figure, or within the figure's absolute floor (:data:`ABSOLUTE_FLOORS`) — the larger
of the two allowances::

    |predicted − measured| ≤ max(0.15 × |measured|, floor)

A relative tolerance alone would ask a near-zero rate to be matched to the last error: 15 % of a
measured 5xx rate of 0.0004 is 0.00006, a handful of requests. The floors:

* ``five_xx_rate`` 0.005 — half the default per-tier 5xx SLO (``tier_5xx_rate`` ≤ 0.01): a
  model that is off by less than that cannot be the whole difference between an error-free run
  and a run at the SLO; at that size a 5xx rate is a few dozen answers in a 40-s rehearsal of
  250 viewers (≈ 100,000 requests), the rehearsal's own noise (examples/showtime.toml's
  edge 5xx rate: 1.01–1.14 % over five identical runs).
* ``rebuffering_ratio`` 0.005 — a quarter of the default SLO (≤ 0.02), and what one hiccup of
  the 2-core rehearsal machine costs that the model does not have: a second in which the driver
  and the stack fall behind stalls every viewer once for ≈ 0.2 s, 0.2 / 40 = 0.005 of a 40-s show
  (docs/rehearsal.md: the same scenario measured 0.15 % and 2.2 % on two runs for that reason).
* ``origin_requests_per_s``, ``edge_hit_ratio``, ``startup_p95_s``: no floor (0). None of them
  is near zero in a live show: the origin answers every new object once per edge (tens of
  requests per second), a working edge's hit ratio is ≈ 0.9+, and a start takes a multivariant, a
  playlist, an init and a part. Note that the origin's counter also holds the rehearsal's own
  traffic to it (a blocking reload per part from the freshness follower, the /metrics scrape:
  ≈ 4 requests/s), which a model of the viewers must add or leave inside the 15 %.

A figure that was not measured (None: no edges, no viewer started) is not compared: the row says
"not measured" and does not count in "N of M within tolerance"; a measured figure without a
prediction counts as a miss.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from livecast.results.slo import measure
from livecast.results.stats import RunStats

FIGURES: Final = (
    "origin_requests_per_s",
    "edge_hit_ratio",
    "five_xx_rate",
    "startup_p95_s",
    "rebuffering_ratio",
)

METRICS: Final[Mapping[str, str]] = {
    "origin_requests_per_s": "tiers.origin.requests_per_s",
    "edge_hit_ratio": "tiers.edge.hit_ratio",
    "five_xx_rate": "requests.all.5xx_rate",
    "startup_p95_s": "viewers.startup_s.p95",
    "rebuffering_ratio": "viewers.rebuffering_ratio",
}

RELATIVE_TOLERANCE: Final = 0.15

ABSOLUTE_FLOORS: Final[Mapping[str, float]] = {
    "origin_requests_per_s": 0.0,
    "edge_hit_ratio": 0.0,
    "five_xx_rate": 0.005,
    "startup_p95_s": 0.0,
    "rebuffering_ratio": 0.005,
}


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def validation_figures(stats: RunStats) -> dict[str, float | None]:
    """The five figures of one run (rehearsal or simulation), None where not measured."""
    figures: dict[str, float | None] = {}
    for name in FIGURES:
        (found,) = measure(stats, METRICS[name])
        figures[name] = _finite(found.value)
    return figures


def tolerance(name: str, measured: float) -> float:
    """How far a prediction of ``name`` may be from ``measured``: 15 % of it, or the floor."""
    if name not in ABSOLUTE_FLOORS:
        raise KeyError(f"unknown validation figure {name!r} (one of {', '.join(FIGURES)})")
    return max(RELATIVE_TOLERANCE * abs(measured), ABSOLUTE_FLOORS[name])


def agrees(name: str, predicted: float | None, measured: float | None) -> bool:
    """Whether ``predicted`` is within the tolerance of ``measured`` (False if either is missing
    or not finite)."""
    predicted, measured = _finite(predicted), _finite(measured)
    if predicted is None or measured is None:
        tolerance(name, 0.0)  # an unknown name is an error, not a miss
        return False
    return abs(predicted - measured) <= tolerance(name, measured)


@dataclass(frozen=True)
class ValidationRow:
    """One figure of one scenario: what the rehearsal measured, what the model predicted."""

    scenario: str
    figure: str
    measured: float | None
    predicted: float | None

    @property
    def compared(self) -> bool:
        """Counted in "N of M": the rehearsal measured the figure."""
        return _finite(self.measured) is not None

    @property
    def within(self) -> bool:
        return agrees(self.figure, self.predicted, self.measured)

    @property
    def difference(self) -> float | None:
        """predicted − measured (None when either is missing)."""
        predicted, measured = _finite(self.predicted), _finite(self.measured)
        return None if predicted is None or measured is None else predicted - measured


def validation_rows(
    scenario: str,
    measured: Mapping[str, float | None],
    predicted: Mapping[str, float | None] | None,
) -> list[ValidationRow]:
    """The rows of one scenario, in :data:`FIGURES` order (``predicted`` None: no model run)."""
    guess = predicted or {}
    return [ValidationRow(scenario, name, measured.get(name), guess.get(name)) for name in FIGURES]


def _number(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:.1f}"
    if magnitude >= 0.01:
        return f"{value:.4g}"
    return f"{value:.2e}"


def _difference(row: ValidationRow) -> str:
    difference = row.difference
    if difference is None:
        return "—"
    text = f"{'+' if difference >= 0 else '-'}{_number(abs(difference))}"
    measured = row.measured
    if measured:
        text += f" ({difference / abs(measured) * 100:+.1f} %)"
    return text


def _verdict(row: ValidationRow) -> str:
    if not row.compared:
        return "not measured"
    if _finite(row.predicted) is None:
        return "no prediction"
    allowance = _number(tolerance(row.figure, row.measured or 0.0))
    return f"{'yes' if row.within else 'NO'} (±{allowance})"


def agreement(rows: Iterable[ValidationRow]) -> tuple[int, int]:
    """(N within tolerance, M compared) over ``rows``."""
    compared = [row for row in rows if row.compared]
    return sum(row.within for row in compared), len(compared)


def validation_table(rows: Iterable[ValidationRow]) -> str:
    """Markdown: scenario, figure, measured, predicted, difference, within tolerance; then the
    total line "N of M within tolerance"."""
    listed = list(rows)
    lines = [
        "| scenario | figure | measured | predicted | difference | within tolerance |",
        "|---|---|---|---|---|---|",
    ]
    for row in listed:
        cells = (
            row.scenario,
            row.figure,
            _number(row.measured),
            _number(row.predicted),
            _difference(row),
            _verdict(row),
        )
        lines.append("| " + " | ".join(cells) + " |")
    within, compared = agreement(listed)
    lines.append("")
    lines.append(f"{within} of {compared} within tolerance")
    return "\n".join(lines) + "\n"
