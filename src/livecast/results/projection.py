"""Per-viewer load and its projection to the target audience (pure): a linear model, stated.

Load per viewer. Each tier's requests and bytes per second over the seconds when the audience
was all there (active viewers ≥ 90 % of the peak, away from faults: :func:`steady_seconds`),
divided by the active viewers; and the same at about half the audience (30–70 % of the peak,
while the crowd arrives), whose ratio is the *growth*: 1 for a tier whose load follows the
viewers (edges), below 1 for one that a working cache shields (the origin behind edges).

The projection (``projected.<tier>.*``) carries the measured coefficients to ``target_viewers``
viewers on ``target_edges`` edges (default: the rehearsal's edges) and one shield:

* edges: every viewer's requests reach an edge — ``edge req/s per viewer × V / E'`` per edge;
* behind a caching tier of ``n`` instances, each instance's upstream requests are split, per
  second, into *first fetches* (at most one per object new to the instance, a cost per
  instance) and *excess* (every other upstream request: misses that were not collapsed,
  uncacheable answers, refetches — assumed to grow with the viewers, the conservative reading):
  ``upstream' = first fetches per instance per s × n' + excess per viewer per s × V``;
* the shield (if any) receives the edges' upstream and sends its own to the origin; without a
  shield the origin receives the edges'; without edges it receives every viewer's;
* bytes: the tier's bytes per request times its projected requests.

Assumptions: the object rate per instance does not depend on the audience (same ladder, same
part duration), the viewer mix (LL-HLS/classic, downlinks) is the rehearsal's, and load is
spread evenly over the edges. The simulator (``livecast simulate``) replaces this model.
Utilisation = max(projected req/s / capacity, projected bytes/s / capacity) per node; over 1 is
NO-GO by default (``projected_utilisation``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise

from livecast.results.indicators import Indicators, RunContext, TierObjects

STEADY_SHARE = 0.9  # of the peak audience
HALF_SHARE = (0.3, 0.7)
AFTER_FAULT = 10.0  # seconds after a fault's end that are not steady yet


@dataclass(frozen=True)
class TierLoad:
    """One tier's figures over a set of seconds (totals, for ratios)."""

    viewer_seconds: float = 0.0
    seconds: int = 0
    requests: float = 0.0
    bytes: float = 0.0
    upstream: float = 0.0  # caching tiers: requests sent upstream
    new_objects: float = 0.0  # caching tiers: objects first requested at an instance

    def per_viewer(self, amount: float) -> float | None:
        return amount / self.viewer_seconds if self.viewer_seconds > 0 else None


def _in_fault(t: int, windows: Sequence[tuple[float, float]]) -> bool:
    return any(start - 1 <= t <= end + AFTER_FAULT for start, end in windows)


def audience_seconds(active: Mapping[int, int], context: RunContext) -> tuple[list[int], list[int]]:
    """(steady seconds, half-audience seconds) of a run from its active viewers per second."""
    if not active:
        return [], []
    peak = max(active.values())
    if peak <= 0:
        return [], []
    windows = context.fault_windows
    steady = [t for t, n in sorted(active.items()) if n >= STEADY_SHARE * peak]
    steady = [t for t in steady if not _in_fault(t, windows)] or steady
    low, high = HALF_SHARE[0] * peak, HALF_SHARE[1] * peak
    half = [t for t, n in sorted(active.items()) if low <= n <= high]
    return steady, half


def counter_rates(samples: Sequence[tuple[float, float]]) -> dict[int, float]:
    """Increase per whole second of a cumulative counter sampled at (t_s, total)."""
    rates: dict[int, float] = {}
    for (t0, v0), (t1, v1) in pairwise(samples):
        if t1 <= t0:
            continue
        increase = v1 - v0 if v1 >= v0 else v1  # a restarted process counts from zero
        rates[int(t1)] = rates.get(int(t1), 0.0) + increase
    return rates


def load_over(
    seconds: Sequence[int],
    active: Mapping[int, int],
    requests: Mapping[int, float],
    bytes_: Mapping[int, float] | None = None,
    tier: TierObjects | None = None,
) -> TierLoad:
    """A tier's totals over ``seconds`` (per-second figures from the maps)."""
    viewer_seconds = float(sum(active.get(t, 0) for t in seconds))
    if tier is not None:
        rows = [tier.seconds.get(t, [0, 0, 0, 0]) for t in seconds]
        return TierLoad(
            viewer_seconds,
            len(seconds),
            float(sum(r[0] for r in rows)),
            float(sum(r[3] for r in rows)),
            float(sum(r[1] for r in rows)),
            float(sum(r[2] for r in rows)),
        )
    return TierLoad(
        viewer_seconds,
        len(seconds),
        float(sum(requests.get(t, 0.0) for t in seconds)),
        float(sum((bytes_ or {}).get(t, 0.0) for t in seconds)),
    )


@dataclass(frozen=True)
class Projection:
    """Per node of a tier at the target audience."""

    tier: str
    nodes: int
    requests_per_s: float
    bytes_per_s: float
    capacity_requests_per_s: float
    capacity_bytes_per_s: float

    @property
    def utilisation(self) -> float:
        return max(
            self.requests_per_s / self.capacity_requests_per_s,
            self.bytes_per_s / self.capacity_bytes_per_s,
        )

    @property
    def bound_by(self) -> str:
        by_requests = self.requests_per_s / self.capacity_requests_per_s
        by_bytes = self.bytes_per_s / self.capacity_bytes_per_s
        return "requests" if by_requests >= by_bytes else "bytes"


def _upstream_total(load: TierLoad, instances: int, nodes: int, viewers: float) -> float | None:
    """A caching tier's upstream req/s at ``nodes`` instances and ``viewers`` viewers."""
    if load.seconds <= 0 or instances <= 0:
        return None
    first = min(load.new_objects, load.upstream)
    per_instance = first / (instances * load.seconds)
    excess = load.per_viewer(max(0.0, load.upstream - first))
    if excess is None:
        return None
    return per_instance * nodes + excess * viewers


def _bytes_per_request(load: TierLoad) -> float:
    return load.bytes / load.requests if load.requests > 0 else 0.0


def project(
    indicators: Indicators,
    loads: Mapping[str, TierLoad],
) -> list[Projection]:
    """Per-node load of each tier at the context's target audience; [] without a target."""
    context = indicators.context
    viewers = context.target_viewers
    if viewers is None:
        return []
    capacity = context.capacity

    def node(tier: str, nodes: int, rps: float, bytes_per_request: float) -> Projection:
        return Projection(
            tier,
            nodes,
            rps / nodes,
            rps * bytes_per_request / nodes,
            capacity.of(tier, "requests_per_s"),
            capacity.of(tier, "bytes_per_s"),
        )

    out: list[Projection] = []
    edge_load = loads.get("edge")
    origin_load = loads.get("origin")
    edges_tier = indicators.tiers.get("edge")
    if not context.edges or edge_load is None or edges_tier is None:
        client = loads.get("client")
        if client is None or (rate := client.per_viewer(client.requests)) is None:
            return []
        per_request = _bytes_per_request(origin_load or client)
        return [node("origin", 1, rate * viewers, per_request)]
    edges = context.target_edges or context.edges
    edge_rate = edge_load.per_viewer(edge_load.requests)
    if edge_rate is None:
        return []
    out.append(node("edge", edges, edge_rate * viewers, _bytes_per_request(edge_load)))
    to_next = _upstream_total(edge_load, edges_tier.instances, edges, viewers)
    if to_next is None:
        return out
    shield_tier = indicators.tiers.get("shield")
    shield_load = loads.get("shield")
    if context.shield and shield_tier is not None and shield_load is not None:
        out.append(node("shield", 1, to_next, _bytes_per_request(shield_load)))
        to_origin = _upstream_total(shield_load, shield_tier.instances, 1, viewers)
        if to_origin is None:
            return out
        to_next = to_origin
    origin_bytes = _bytes_per_request(origin_load) if origin_load else 0.0
    out.append(node("origin", 1, to_next, origin_bytes))
    return out
