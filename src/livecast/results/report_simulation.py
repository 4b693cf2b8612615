"""A simulated run's section of report.html (pure): the model, what saturated, the tiers' load.

``livecast simulate`` writes the same results as a rehearsal, with ``meta["simulated"] = True``
and ``meta["simulation"]``::

    {"model": {"step_s", "steps", "viewers_peak", "wall_s", "viewer_steps_per_s", "profile"},
     "tiers": {tier: {"t_s", "offered_rps", "served_rps", "capacity_rps", "offered_bps",
                      "capacity_bps", "utilisation"}},          # "edge", "shield", "origin"
     "saturation": [{"component", "first_at_s", "peak_utilisation", "peak_at_s",
                     "seconds_over", "resource"}],               # first one first; [] if none
     "cascade": None | {"name", "starts_at_s", "description"}}

The section says the figures are a model's prediction, lists the saturated components (the
cascade, if any, highlighted) and plots each tier's offered vs served load against its capacity,
and every tier's utilisation against 1.0. Long series are cut to at most ``MAX_POINTS`` points,
keeping each bucket's peak, so a saturation shows however short it was.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from livecast.results.html import figure, table
from livecast.results.svg import Series, escape, line_chart

MAX_POINTS = 600
TIER_ORDER = ("edge", "shield", "origin")
X_LABEL = "seconds since show start"
SATURATION_HEADERS = [
    "component",
    "first over capacity at (s)",
    "peak utilisation",
    "peak at (s)",
    "seconds over",
    "resource",
]
_BANNER_STYLE = "background:#455a64"
_CASCADE_STYLE = (
    "background:#fff3cd;border-left:6px solid #c62828;padding:0.5em 1em;margin:0.5em 0 1em"
)


def _number(value: object) -> float | None:
    """A finite float, or None for anything else (bools included)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _floats(values: object) -> tuple[float, ...]:
    """A JSON list as floats; a non-number becomes NaN (a gap in the plot)."""
    if not isinstance(values, Sequence) or isinstance(values, str):
        return ()
    return tuple(math.nan if (v := _number(value)) is None else v for value in values)


def _peak_index(ys: Sequence[float], start: int, stop: int) -> int:
    """The index of the largest finite value in ys[start:stop] (``start`` if none is finite)."""
    best = start
    for i in range(start, stop):
        if math.isfinite(ys[i]) and (not math.isfinite(ys[best]) or ys[i] > ys[best]):
            best = i
    return best


def downsample(
    xs: Sequence[float], ys: Sequence[float], limit: int = MAX_POINTS
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """At most ``limit`` points: consecutive buckets, each represented by its peak (max y)."""
    count = min(len(xs), len(ys))
    if count <= limit:
        return tuple(xs[:count]), tuple(ys[:count])
    size = math.ceil(count / limit)
    peaks = [_peak_index(ys, start, min(start + size, count)) for start in range(0, count, size)]
    return tuple(xs[i] for i in peaks), tuple(ys[i] for i in peaks)


def _series(name: str, xs: tuple[float, ...], values: object) -> Series:
    sampled_x, sampled_y = downsample(xs, _floats(values))
    return Series(name, sampled_x, sampled_y)


def _level(name: str, xs: tuple[float, ...], level: float | None) -> list[Series]:
    """A horizontal line at ``level`` across the run (none without a level or times)."""
    finite = [x for x in xs if math.isfinite(x)]
    if level is None or not finite:
        return []
    return [Series(name, (min(finite), max(finite)), (level, level))]


# ---------------------------------------------------------------------------- pieces of HTML


def _ordered_tiers(tiers: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    known = [name for name in TIER_ORDER if name in tiers]
    others = sorted(name for name in tiers if name not in TIER_ORDER)
    return [(name, tiers[name]) for name in known + others if isinstance(tiers[name], Mapping)]


def _count(value: object) -> str:
    number = _number(value)
    return "–" if number is None else f"{number:,.0f}"


def _model_banner(model: Mapping[str, Any]) -> str:
    step, steps = _number(model.get("step_s")), _number(model.get("steps"))
    simulated = figure(step * steps) if step is not None and steps is not None else "–"
    facts = (
        f"{_count(steps)} steps of {figure(step)} s ({simulated} s of show), "
        f"peak {_count(model.get('viewers_peak'))} viewers; computed in "
        f"{figure(_number(model.get('wall_s')))} s of wall time "
        f"({_count(model.get('viewer_steps_per_s'))} viewer-steps/s); "
        f"profile: {model.get('profile') or 'built-in'}."
    )
    return (
        f'<section class="banner" style="{_BANNER_STYLE}"><h1>Simulated run</h1>'
        "<p>Every figure in this report is a model's prediction, not a measurement: no viewer, "
        f"edge or origin ran.</p><p>{escape(facts)}</p></section>"
    )


def _times(entry: Mapping[str, Any], key: str) -> str:
    return figure(_number(entry.get(key)))


def _saturation_rows(saturation: object) -> list[list[str]]:
    if not isinstance(saturation, Sequence) or isinstance(saturation, str):
        return []
    rows = []
    for entry in saturation:
        if not isinstance(entry, Mapping):
            continue
        peak = _number(entry.get("peak_utilisation"))
        rows.append([
            str(entry.get("component", "?")),
            _times(entry, "first_at_s"),
            "–" if peak is None else f"{peak:.3g}×",
            _times(entry, "peak_at_s"),
            _count(entry.get("seconds_over")),
            str(entry.get("resource", "?")),
        ])  # fmt: skip
    return rows


def _cascade(cascade: object) -> str:
    if not isinstance(cascade, Mapping):
        return ""
    name = str(cascade.get("name") or "cascade")
    starts = figure(_number(cascade.get("starts_at_s")))
    description = str(cascade.get("description") or "")
    return (
        f'<p class="cascade" style="{_CASCADE_STYLE}"><strong>{escape(name)}</strong> '
        f"(from {escape(starts)} s): {escape(description)}</p>"
    )


def _saturation(simulation: Mapping[str, Any]) -> str:
    rows = _saturation_rows(simulation.get("saturation"))
    listing = table(SATURATION_HEADERS, rows) if rows else "<p>No component saturated.</p>"
    return f"<h3>Saturation</h3>\n{_cascade(simulation.get('cascade'))}\n{listing}"


def _requests_chart(name: str, tier: Mapping[str, Any]) -> str:
    xs = _floats(tier.get("t_s"))
    series = [
        _series("offered", xs, tier.get("offered_rps")),
        _series("served", xs, tier.get("served_rps")),
        *_level("capacity", xs, _number(tier.get("capacity_rps"))),
    ]
    return line_chart(
        f"{name}: requests/s offered vs served",
        series,
        x_label=X_LABEL,
        y_label="requests/s",
    )


def _bandwidth_chart(name: str, tier: Mapping[str, Any]) -> str:
    xs = _floats(tier.get("t_s"))
    series = [
        _series("offered", xs, tier.get("offered_bps")),
        *_level("capacity", xs, _number(tier.get("capacity_bps"))),
    ]
    return line_chart(f"{name}: bits/s offered", series, x_label=X_LABEL, y_label="bits/s")


def _utilisation_chart(tiers: list[tuple[str, Mapping[str, Any]]]) -> str:
    series = [_series(name, _floats(t.get("t_s")), t.get("utilisation")) for name, t in tiers]
    every_x = tuple(x for one in series for x in one.xs)
    return line_chart(
        "Utilisation per tier (1.0 = at capacity)",
        [*series, *_level("capacity (1.0)", every_x, 1.0)],
        x_label=X_LABEL,
        y_label="offered / capacity",
    )


def _charts(tiers: list[tuple[str, Mapping[str, Any]]]) -> str:
    charts = [_requests_chart(name, tier) for name, tier in tiers]
    charts += [_bandwidth_chart(name, tier) for name, tier in tiers if "offered_bps" in tier]
    if tiers:
        charts.append(_utilisation_chart(tiers))
    return "\n".join(charts)


def simulation_section(meta: Mapping[str, Any]) -> str:
    """The "Simulation" section of report.html; empty for a run that was not simulated."""
    simulation = meta.get("simulation")
    if not isinstance(simulation, Mapping):
        return ""
    model = simulation.get("model")
    tiers_map = simulation.get("tiers")
    tiers = _ordered_tiers(tiers_map) if isinstance(tiers_map, Mapping) else []
    return f"""<h2>Simulation: the model's prediction</h2>
{_model_banner(model if isinstance(model, Mapping) else {})}
{_saturation(simulation)}
<h3>Load per tier</h3>
<p>Offered: what the viewers (and their retries) asked of the tier; served: what it answered;
the flat line is its capacity. Long series show each bucket's peak.</p>
<div class="charts">
{_charts(tiers)}
</div>
"""
