"""The scenario's fault timeline as the model sees it at one step (pure).

The rehearsal applies faults to real links and processes; the simulator reads the same
``[[faults]]`` entries as changes to its tiers:

==========================  =====================================================================
target                      effect in the model
==========================  =====================================================================
``origin``                  ``latency``/``slow_first_byte``: added to every origin answer of the
                            matching kinds; ``http_status``/``reset``: that share of them fail;
                            ``bandwidth``: the origin's bytes/s; ``stop_process``: outage
``edge-N``, ``edge-A..B``   ``stop_process``: the edges are lost (their viewers' requests are
                            refused; viewers who give up rejoin through the other edges);
                            network kinds as for the origin, on those edges' answers
``shield``                  as an edge
``publisher``, ``source``   ``stop_process``: the contribution drops — no new parts or segments
                            (a ``backup_publisher`` fault alone changes nothing: the primary runs)
==========================  =====================================================================
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from livecast.errors import ConfigError
from livecast.scenario.timeline import (
    Bandwidth,
    Fault,
    HttpStatus,
    Latency,
    Reset,
    SlowFirstByte,
    StopProcess,
    Timeline,
)

KINDS = ("multivariant", "playlist", "part", "segment", "init")
_EDGE = re.compile(r"^edge-(\d+)(?:\.\.(\d+))?$")
CONTRIBUTION_TARGETS = frozenset({"publisher", "source"})
QUIET_TARGETS = frozenset({"backup_publisher"})


@dataclass
class NodeFaults:
    """What the faults do to one node (or a set of edges) at this step."""

    down: bool = False
    latency: dict[str, float] = field(default_factory=lambda: dict.fromkeys(KINDS, 0.0))
    error: dict[str, float] = field(default_factory=lambda: dict.fromkeys(KINDS, 0.0))
    bytes_per_s: float | None = None


@dataclass
class StepFaults:
    edges: npt.NDArray[np.int64]  # indices (0-based) of the edges the faults touch
    edge: list[NodeFaults]  # one per index above
    shield: NodeFaults
    origin: NodeFaults
    contribution_down: bool = False


def edge_indices(target: str, edges: int) -> list[int] | None:
    """0-based edge indices of ``edge-N`` / ``edge-A..B`` (1-based, inclusive), else None."""
    found = _EDGE.match(target)
    if found is None:
        return None
    first = int(found.group(1))
    last = int(found.group(2) or first)
    return list(range(first - 1, last)) if 1 <= first <= last <= edges else []


def check_targets(timeline: Timeline, edges: int, shield: bool) -> None:
    """Every fault names something the model has, else a ConfigError naming the fault."""
    for fault in timeline.faults:
        target = fault.target
        where = f"faults[{fault.index}].target"
        indices = edge_indices(target, edges)
        if indices == []:
            raise ConfigError(where, f"{target!r}: the model has edges 1..{edges}")
        if indices is not None or target == "origin" or target in CONTRIBUTION_TARGETS:
            continue
        if target in QUIET_TARGETS:
            continue
        if target == "shield" and shield:
            continue
        raise ConfigError(where, f"{target!r} is not origin, shield, edge-N or publisher")


def _apply(node: NodeFaults, fault: Fault) -> None:
    effect = fault.effect
    if isinstance(effect, StopProcess):
        node.down = True
        return
    if isinstance(effect, Bandwidth):
        rate = effect.bytes_per_second
        node.bytes_per_s = rate if node.bytes_per_s is None else min(node.bytes_per_s, rate)
        return
    for kind in KINDS:
        if not fault.matches(kind):
            continue
        if isinstance(effect, Latency):
            node.latency[kind] += (effect.latency_ms + effect.jitter_ms / 2) / 1000.0
        elif isinstance(effect, SlowFirstByte):
            node.latency[kind] += effect.delay_ms / 1000.0
        elif isinstance(effect, HttpStatus | Reset):
            node.error[kind] = 1 - (1 - node.error[kind]) * (1 - effect.probability)


def faults_at(timeline: Timeline, t: float, edges: int) -> StepFaults:
    """The faults in effect at ``t`` (seconds from show start), per node."""
    per_edge: dict[int, NodeFaults] = {}
    shield, origin = NodeFaults(), NodeFaults()
    contribution_down = False
    for fault in timeline.active(t):
        target = fault.target
        if target in CONTRIBUTION_TARGETS:
            contribution_down = contribution_down or isinstance(fault.effect, StopProcess)
            continue
        if target == "origin":
            _apply(origin, fault)
        elif target == "shield":
            _apply(shield, fault)
        for index in edge_indices(target, edges) or ():
            _apply(per_edge.setdefault(index, NodeFaults()), fault)
    indices = np.array(sorted(per_edge), dtype=np.int64)
    return StepFaults(indices, [per_edge[i] for i in sorted(per_edge)], shield, origin,
                      contribution_down)  # fmt: skip
