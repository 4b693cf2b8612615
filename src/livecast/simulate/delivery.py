"""The delivery tiers in one step: what each edge, the shield and the origins are offered,
send upstream, fail and take to answer (pure, numpy; the rules are :mod:`livecast.simulate.tiers`).

:class:`Delivery` runs the requests down (edges → shield → origins) and the outcomes back up:
per edge and object kind, the share of the viewers' requests that fail and the time they take.
It keeps what carries over to the next step: the upstream's answer time (a blocking request's
wait), the init segments already at each edge, how stale the caches' plain playlists are, and
the load of a shared machine (``machine_factor``, set by the model).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from livecast.simulate.faults import StepFaults
from livecast.simulate.settings import CacheTier, SimSettings
from livecast.simulate.tiers import (
    BLOCKING,
    IK,
    INIT,
    MV,
    PART,
    PL_BLOCK,
    PL_PLAIN,
    REQUEST_KIND,
    SEGMENT,
    CacheRules,
    combine,
    dependent_share,
    overload_share,
    pass_failures,
    queueing_factor,
    upstream_requests,
)  # fmt: skip
from livecast.simulate.viewers import CLASSIC, LL

Floats = npt.NDArray[np.float64]
OBJECT_BYTES = np.array([600.0, 4000.0, 3000.0, 0.0, 0.0, 900.0])  # media from the bitrate
RTT = 0.0005  # seconds, client ↔ edge (loopback-like; production adds its own in the profile)
BURST_WINDOW = 0.1  # seconds: synchronised retries (no jitter) arrive within it


@dataclass
class TierStep:
    offered: float  # requests in the step
    served: float
    failed: float
    capacity: float  # requests the tier can answer in the step
    offered_bytes: float
    capacity_bytes: float
    utilisation: float  # the busiest node's, requests or bytes


def negative_cached(dependent: Floats, tier: CacheTier, spread: Floats) -> Floats:
    """A failed answer is cached ``negative_ttl`` seconds (``proxy_cache_valid 5xx``): of a
    kind that is not held for its one fetch, the requests arriving meanwhile get it too —
    ``negative_ttl / spread`` of those that would have been hits."""
    share = np.minimum(1.0, tier.negative_ttl / spread)
    share = np.where(BLOCKING, 0.0, share)
    if tier.stale_if_error:
        share[PL_PLAIN] = share[MV] = 0.0  # a stale copy is served instead
    return np.asarray(dependent + (1.0 - dependent) * share[None, :], dtype=np.float64)


class Delivery:
    def __init__(self, settings: SimSettings, duration: float, rungs: int) -> None:
        self.settings = settings
        self.stream = settings.stream
        self.dt = settings.step
        self.edges = settings.edges.count if settings.edges else 1
        self.rungs = rungs
        edges = settings.edges
        self.playlist_ttl = edges.playlist_ttl if edges else self.stream.segment_duration / 2
        self.multivariant_ttl = (
            edges.multivariant_ttl if edges else self.stream.segment_duration / 2
        )
        # seconds over which the requests for one object arrive at a cache, per kind
        self.spread = np.array([self.multivariant_ttl, self.stream.part_duration,
                                self.playlist_ttl, self.stream.part_duration,
                                self.stream.segment_duration, duration])  # fmt: skip
        self.up_latency = np.full(len(IK), settings.origin.latency_s if settings.origin else 0.0)
        self.init_fetched = np.zeros(self.edges, dtype=bool)
        self.staleness = 0.0  # how late the caches' plain playlists are (a slow refresh)
        self.stale_failure = 0.0  # share of their refreshes failing
        self.machine_factor = 1.0  # a shared machine's load on every answer time
        self.mean_bps = 0.0  # the viewers' mean bitrate (media sizes)

    def objects(
        self,
        rung: npt.NDArray[np.int64],
        watching: npt.NDArray[np.bool_],
        joining: npt.NDArray[np.bool_],
    ) -> Floats:
        """New objects per edge and kind in the step ``[edge, IK]``."""
        p, d, dt = self.stream.part_duration, self.stream.segment_duration, self.dt
        out = np.zeros((self.edges, len(IK)))
        for mode in (LL, CLASSIC):
            used = np.zeros((self.edges, self.rungs), dtype=bool)
            for band in range(rung.shape[1]):
                used[np.arange(self.edges), rung[:, band]] |= watching[:, mode, band]
            used[:, -1] |= watching[:, mode, :].any(axis=1)  # joiners start on the lowest rung
            tracks = used.sum(axis=1) + used.any(axis=1)  # + audio
            if mode == LL:
                out[:, PL_BLOCK] += tracks * dt / p
                out[:, PART] += tracks * dt / p
            else:
                out[:, PL_PLAIN] += tracks * dt / self.playlist_ttl
                out[:, SEGMENT] += tracks * dt / d
        out[:, MV] = np.where(joining, dt / self.multivariant_ttl, 0.0)
        out[:, INIT] = np.where(self.init_fetched, 0.0, 1 + self.rungs)
        return out

    def _cache_rules(self, tier: CacheTier) -> CacheRules:
        return CacheRules(tier.collapse, tier.lock_timeout, tier.upstream_per_object,
                          tier.stale_if_error, self.spread)  # fmt: skip

    def _origin(
        self, offered: Floats, faults: StepFaults, bytes_: float
    ) -> tuple[Floats, Floats, TierStep]:
        """(failure share [IK], answer time [IK], tier figures) of the origins."""
        origin = self.settings.origin
        assert origin is not None
        kinds = REQUEST_KIND  # the faults and capacities name the request kinds
        work = sum(offered[k] / origin.requests_per_s[kinds[k]] for k in range(len(IK)))
        capacity_s = origin.count * origin.cores * self.dt
        rho = work / capacity_s
        bytes_cap = (faults.origin.bytes_per_s or origin.bytes_per_s * origin.count) * self.dt
        rho_bytes = bytes_ / bytes_cap if bytes_cap > 0 else 0.0
        busiest = max(rho, rho_bytes)
        over = float(overload_share(np.array([busiest]))[0])
        errors = np.array([faults.origin.error[k] for k in kinds])
        failure = np.ones(len(IK)) if faults.origin.down else combine(over, errors)
        answer = origin.latency_s * float(queueing_factor(np.array([rho]))[0]) * self.machine_factor
        if not origin.shedding and busiest > 1:
            answer += origin.queue_limit
        latency = answer + np.array([faults.origin.latency[k] for k in kinds])
        total = float(offered.sum())
        served = total * (1 - float(np.average(failure, weights=offered + 1e-12)))
        capacity_requests = total / rho if rho > 0 else float("inf")
        step = TierStep(
            total, served, total - served, capacity_requests, bytes_, bytes_cap, busiest
        )
        return failure, latency, step

    def _cache_tier(
        self,
        tier: CacheTier,
        offered: Floats,
        objects: Floats,
        down: npt.NDArray[np.bool_],
        extra_latency: Floats,
        up_latency: Floats,
        bytes_: Floats,
        burst: Floats,
    ) -> tuple[Floats, Floats, Floats, Floats, TierStep]:
        """A caching tier of ``len(offered)`` nodes: (upstream [node, IK], own failure share
        [node], answer time [node], dependent share [node, IK], figures)."""
        capacity = tier.requests_per_s * self.dt
        total = offered.sum(axis=1)
        rho = total / capacity
        rho_bytes = bytes_ / (tier.bytes_per_s * self.dt)
        busiest = np.maximum(rho, rho_bytes)
        own = overload_share(busiest)
        if burst.any():  # synchronised retries beyond what the node absorbs at once
            absorb = tier.requests_per_s * (BURST_WINDOW + 0.5)
            burst_fail = np.where(burst > absorb, 1 - absorb / np.maximum(burst, 1e-12), 0.0)
            own = combine(own, burst_fail * burst / np.maximum(total, 1e-12))
        own = np.where(down, 1.0, own)
        answer = tier.latency_s * queueing_factor(rho) * self.machine_factor + extra_latency
        served = offered * (1 - own)[:, None]
        rules = self._cache_rules(tier)
        wait = self.stream.part_duration + float(np.max(up_latency))
        upstream = upstream_requests(served, objects, rules, wait, float(np.max(up_latency)))
        dependent = dependent_share(served, upstream, rules)
        tot = float(total.sum())
        failed = float((offered * own[:, None]).sum())
        step = TierStep(tot, tot - failed, failed, capacity * len(total), float(bytes_.sum()),
                        tier.bytes_per_s * self.dt * len(total), float(busiest.max()))  # fmt: skip
        return upstream, own, answer, dependent, step

    def _object_sizes(self) -> Floats:
        """Bytes of one answer per kind ``[IK]`` (media: a track's share of the mean bitrate)."""
        mean_bps = self.mean_bps
        sizes = OBJECT_BYTES.copy()
        sizes[PART] = self.stream.part_duration * mean_bps / 2 / 8  # video or audio part
        sizes[SEGMENT] = self.stream.segment_duration * mean_bps / 2 / 8
        return sizes

    def _media_bytes(self, offered: Floats) -> float:
        """Bytes of the answers to ``offered`` requests ``[IK]``."""
        return float((offered * self._object_sizes()).sum())

    def deliver(
        self,
        requests: Floats,
        objects: Floats,
        up: npt.NDArray[np.bool_],
        edge_latency: Floats,
        edge_errors: Floats,
        viewer_bytes: Floats,
        burst: Floats,
        faults: StepFaults,
    ) -> tuple[dict[str, TierStep], Floats, Floats]:
        """Requests down the tiers and outcomes back: (tier figures, failure share
        ``[edge, IK]``, answer time ``[edge, IK]``)."""
        tiers: dict[str, TierStep] = {}
        edges, shield = self.settings.edges, self.settings.shield
        if edges is None:
            offered = requests.sum(axis=0)
            fail, lat, tiers["origin"] = self._origin(offered, faults, float(viewer_bytes.sum()))
            self.up_latency = lat
            return (
                tiers,
                np.broadcast_to(fail, requests.shape).copy(),
                RTT + lat[None, :] + 0 * requests,
            )
        e_up, e_own, e_answer, e_dep, tiers["edge"] = self._cache_tier(
            edges, requests, objects, ~up, np.zeros(self.edges), self.up_latency, viewer_bytes,
            burst,
        )  # fmt: skip
        if shield is not None:
            s_offered = e_up.sum(axis=0)[None, :]
            s_down = np.array([faults.shield.down])
            s_extra = np.array([max(faults.shield.latency.values())])
            s_up, s_own, s_answer, s_dep, tiers["shield"] = self._cache_tier(
                shield, s_offered, objects.max(axis=0)[None, :], s_down, s_extra,
                self.up_latency, np.array([self._media_bytes(s_offered[0])]), np.zeros(1),
            )  # fmt: skip
            origin_offered = s_up[0]
        else:
            origin_offered = e_up.sum(axis=0)
        if self.settings.rehearsal_probes:  # a follower's blocking reload per part, a scrape
            origin_offered = origin_offered.copy()
            origin_offered[PL_BLOCK] += self.dt / self.stream.part_duration
            origin_offered[MV] += self.dt
        o_fail, o_lat, tiers["origin"] = self._origin(
            origin_offered, faults, self._media_bytes(origin_offered)
        )
        up_fail, up_lat = o_fail, o_lat
        if shield is not None:
            up_fail = pass_failures(s_own[0], s_dep[0], o_fail)
            up_lat = s_answer[0] + s_dep[0] * o_lat
        self.up_latency = up_lat
        self.init_fetched |= (requests[:, INIT] > 0) & up
        own = combine(e_own[:, None], edge_errors)
        failure = pass_failures(own, negative_cached(e_dep, edges, self.spread), up_fail[None, :])
        failure[~up] = 1.0
        e_link, tiers["edge-uplinks"] = self._links(e_up, edges.uplink_bytes_per_s)
        if shield is not None:
            s_link, tiers["shield-uplink"] = self._links(s_up, shield.uplink_bytes_per_s)
            up_lat = up_lat + s_dep[0] * s_link[0]
        latency = (
            RTT + e_answer[:, None] + edge_latency + e_dep * (up_lat[None, :] + e_link[:, None])
        )
        self.staleness = float(up_lat[PL_PLAIN]) if edges.stale_if_error else 0.0
        # … and while its refreshes fail, a classic player sees no new segment at all
        self.stale_failure = float(up_fail[PL_PLAIN]) if edges.stale_if_error else 0.0
        return tiers, failure, np.asarray(latency, dtype=np.float64)

    def _links(self, upstream: Floats, capacity: float) -> tuple[Floats, TierStep]:
        """Each node's link to its upstream (``[node, IK]`` requests sent up): the delay its
        answers queue behind when the link is over capacity (the backlog it cannot carry in
        the step), and the links' figures (utilisation of the busiest)."""
        sizes = self._object_sizes()
        sent = (upstream * sizes[None, :]).sum(axis=1)
        per_step = capacity * self.dt
        rho = sent / per_step
        delay = np.maximum(rho - 1.0, 0.0) * self.dt
        total = float(sent.sum())
        step = TierStep(float(upstream.sum()), float(upstream.sum()), 0.0, float("inf"), total,
                        per_step * len(sent), float(rho.max()))  # fmt: skip
        return np.asarray(delay, dtype=np.float64), step
