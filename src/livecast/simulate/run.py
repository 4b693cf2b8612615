"""``livecast simulate SCENARIO.toml --out DIR``: the model run end to end (the adapter).

Reads the scenario (the rehearsal's file with its ``[simulate]`` table), checks that the model
fits in memory before allocating it, runs the steps with a progress line, and writes the same
``results.json`` / ``report.html`` and verdict as a rehearsal (``meta.simulated`` = true, the
tier series and what saturated in ``meta.simulation``). Exit codes as ``rehearse``: 0 GO,
1 NO-GO, 2 could not run (bad scenario: the key is named).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from livecast.config import read_toml
from livecast.errors import ConfigError
from livecast.results.indicators import RunContext
from livecast.results.report import write_results
from livecast.results.slo import Slo, SloCheck, Verdict, verdict
from livecast.results.stats import RunStats
from livecast.scenario.file import Scenario, parse_scenario
from livecast.simulate.faults import check_targets
from livecast.simulate.model import Model
from livecast.simulate.record import Recorder
from livecast.simulate.settings import SimSettings, parse_settings

CASCADE_SLO = Slo("no_overload_cascade", "simulated.origin_overload_cascade", "<=", 0.0)
BYTES_PER_COHORT_STEP = 8 * 12  # arrays of float64 held per cohort (state and schedules)
BYTES_PER_STEP = 4_000  # per-second results (histograms) kept per step


@dataclass
class SimulationResult:
    stats: RunStats
    verdict: Verdict
    meta: dict[str, Any]


def parse_simulation(data: Mapping[str, Any], base_dir: Path) -> tuple[Scenario, SimSettings]:
    """The scenario and its ``[simulate]`` settings, validated (ConfigError names the key)."""
    scenario = parse_scenario(data)
    stack = scenario.stack
    settings = parse_settings(
        data.get("simulate"),
        duration=scenario.duration,
        edges=stack.edges if stack is not None else 0,
        shield=stack.shield if stack is not None else False,
        part_duration=stack.part_duration if stack is not None else 1 / 3,
        base_dir=base_dir,
    )
    edges = settings.edges.count if settings.edges else 0
    check_targets(scenario.faults, edges, settings.shield is not None)
    check_memory(scenario, settings)
    return scenario, settings


def model_bytes(scenario: Scenario, settings: SimSettings) -> float:
    """What the model will hold: cohort arrays and their schedules, and per-step results."""
    edges = settings.edges.count if settings.edges else 1
    cohorts = edges * 2 * len(scenario.downlink)
    schedule = int(64 / settings.step) + 2
    steps = scenario.duration / settings.step
    return cohorts * BYTES_PER_COHORT_STEP * (1 + schedule) + steps * BYTES_PER_STEP


def check_memory(scenario: Scenario, settings: SimSettings) -> None:
    need = model_bytes(scenario, settings)
    limit = settings.memory_limit_gb * 1e9
    if need > limit:
        steps = scenario.duration / settings.step
        raise ConfigError(
            "simulate.memory_limit_gb",
            f"the model would need about {need / 1e9:.1f} GB (edges × modes × bands × "
            f"{int(64 / settings.step) + 2} scheduled steps, and {steps:,.0f} steps of "
            f"results), over the limit of {settings.memory_limit_gb:g} GB: use fewer edges, a "
            "longer step or a higher limit",
        )


def simulate(
    scenario: Scenario,
    settings: SimSettings,
    progress: Callable[[float, Recorder], None] | None = None,
) -> SimulationResult:
    started = time.monotonic()
    model = Model(scenario, settings)
    recorder = Recorder(scenario.seed, settings.step)
    for i in range(model.steps):
        recorder.add(model.step(i))
        if progress is not None:
            progress(i * settings.step, recorder)
    for departure in model.finish():
        recorder._departure(departure)
    stats = recorder.finish()
    stats.indicators.context = run_context(scenario, settings)
    saturation, cascade = recorder.saturation()
    wall = time.monotonic() - started
    checks = list(verdict(stats, scenario.slos).checks)
    subject = (
        f"origin overload cascade from {cascade['starts_at_s']:g} s" if cascade else
        "origin overload cascade"
    )  # fmt: skip
    checks.append(SloCheck(CASCADE_SLO, subject, 1.0 if cascade else 0.0))
    meta = {
        "scenario": scenario.name,
        "duration_s": scenario.duration,
        "simulated": True,
        "viewers_planned": scenario.audience.viewers,
        "simulation": {
            "model": {
                "step_s": settings.step, "steps": model.steps, "viewers_peak": recorder.peak,
                "wall_s": round(wall, 3),
                "viewer_steps_per_s": recorder.viewer_steps / wall if wall > 0 else None,
                "profile": settings.profile_source,
                "edges": settings.edges.count if settings.edges else 0,
                "shield": settings.shield is not None,
                "origins": settings.origin.count if settings.origin else 0,
            },
            "tiers": {name: series.to_dict() for name, series in recorder.tiers.items()},
            "saturation": saturation,
            "cascade": cascade,
        },
    }  # fmt: skip
    return SimulationResult(stats, Verdict(tuple(checks)), meta)


def run_context(scenario: Scenario, settings: SimSettings) -> RunContext:
    """What the shared figures (``results.fidelity``) need to know about the simulated run."""
    windows = tuple(
        (fault.at, min(fault.end, scenario.duration)) for fault in scenario.faults.faults
    )
    return RunContext(
        part_target=settings.stream.part_duration,
        target_duration=settings.stream.segment_duration,
        edges=settings.edges.count if settings.edges else 0,
        shield=settings.shield is not None,
        fault_windows=windows,
        target_viewers=scenario.target_viewers,
        target_edges=scenario.target_edges,
        capacity=scenario.capacity,
    )


def simulate_data(data: Mapping[str, Any], base_dir: Path) -> SimulationResult:
    """A scenario's parsed TOML → its simulation (what a sweep runs per configuration)."""
    scenario, settings = parse_simulation(data, base_dir)
    return simulate(scenario, settings)


def _progress_printer(stream: TextIO, duration: float) -> Callable[[float, Recorder], None]:
    last = [time.monotonic()]

    def show(t: float, recorder: Recorder) -> None:
        now = time.monotonic()
        if now - last[0] < 1.0:
            return
        last[0] = now
        print(f"simulate: t={t:,.0f}/{duration:,.0f} s viewers={recorder.peak:,.0f} peak",
              file=stream, flush=True)  # fmt: skip

    return show


def run_file(path: str | Path, out_dir: str | Path, stream: TextIO = sys.stderr) -> int:
    """The CLI: 0 GO, 1 NO-GO, 2 could not run."""
    path = Path(path)
    try:
        data = read_toml(path, "scenario")
        scenario, settings = parse_simulation(data, path.parent)
    except ConfigError as error:
        print(f"livecast simulate: {error}", file=stream)
        return 2
    result = simulate(scenario, settings, _progress_printer(stream, scenario.duration))
    paths = write_results(Path(out_dir), result.stats, result.verdict, result.meta)
    model = result.meta["simulation"]["model"]
    print(
        f"simulate: {model['steps']:,} steps, peak {model['viewers_peak']:,.0f} viewers in "
        f"{model['wall_s']:.1f} s ({model['viewer_steps_per_s'] or 0:,.0f} viewer·steps/s)",
        file=stream,
    )
    for entry in result.meta["simulation"]["saturation"]:
        print(f"simulate: {entry['component']} over capacity from {entry['first_at_s']:g} s, "
              f"peak {entry['peak_utilisation']:.3g}× at {entry['peak_at_s']:g} s",
              file=stream)  # fmt: skip
    print(result.verdict.summary(), file=stream)
    print(f"results: {paths.json_path}\nreport: {paths.html_path}", file=stream)
    return result.verdict.exit_code
