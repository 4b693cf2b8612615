"""Audience shapes — who arrives when, who leaves when, with which player and downlink. Pure.

The same plan drives the rehearsal's virtual viewers and (later) the simulator's cohorts, so both
see the same audience. Every draw comes from one seeded ``random.Random``.

Shapes (times in seconds from show start):
  flash   ``viewers`` arrive within ``within`` seconds of ``at`` — most of them early, as when a
          show starts: arrival offsets follow a Beta(1, ``skew``) distribution (skew 1 = uniform).
  ramp    arrivals spread evenly from ``at`` to ``at + within``.
  steady  everyone is there from the start (arrivals within the first second).
Churn: with ``mean_session`` set, each viewer leaves after an exponentially distributed session;
``replace`` keeps the audience size by sending a new viewer in as one leaves.
Start-over: a ``start_over`` share of the viewers join the recording ``seek_back`` seconds behind
the moment they arrive (drawn uniformly from the range) — every 1/share-th arrival, at a random
phase, so the share holds within one viewer over any stretch of arrivals (churn replacements
too). These draws come from a random stream of their own: the rest of the plan is the one
without start-over.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from livecast.errors import ConfigError

SHAPES = ("flash", "ramp", "steady")
MAX_SEEK_BACK = 7200.0  # seconds: the origin's default DVR window (``[record] dvr_window``)


@dataclass(frozen=True, slots=True)
class AudienceShape:
    kind: str = "flash"
    viewers: int = 200
    at: float = 0.0
    within: float = 10.0
    skew: float = 3.0  # flash only: Beta(1, skew) arrival offsets
    mean_session: float | None = None  # churn: mean seconds a viewer stays
    replace: bool = False  # churn: a new viewer arrives as one leaves
    start_over: float = 0.0  # share of the viewers who join the recording behind live (DVR)
    seek_back: tuple[float, float] = (10.0, 60.0)  # start-over: seconds behind, drawn uniformly

    def validate(self, prefix: str = "audience") -> AudienceShape:
        if self.kind not in SHAPES:
            raise ConfigError(f"{prefix}.kind", f"{self.kind!r} is not one of {', '.join(SHAPES)}")
        if self.viewers < 1:
            raise ConfigError(f"{prefix}.viewers", f"{self.viewers} must be at least 1")
        if self.at < 0 or self.within < 0:
            raise ConfigError(f"{prefix}.within", "times must not be negative")
        if self.skew < 1:
            raise ConfigError(f"{prefix}.skew", f"{self.skew} must be ≥ 1")
        if self.mean_session is not None and self.mean_session <= 0:
            raise ConfigError(f"{prefix}.mean_session", f"{self.mean_session} must be positive")
        if not 0 <= self.start_over <= 1:
            raise ConfigError(f"{prefix}.start_over", f"{self.start_over} is not a share in 0–1")
        low, high = self.seek_back
        if not 0 < low <= high <= MAX_SEEK_BACK:
            raise ConfigError(
                f"{prefix}.seek_back",
                f"[{low:g}, {high:g}] is not [least, most] seconds with 0 < least ≤ most ≤ "
                f"{MAX_SEEK_BACK:g} (the origin's default DVR window)",
            )
        return self


@dataclass(frozen=True, slots=True)
class DownlinkBand:
    kbps: float
    weight: float


@dataclass(frozen=True, slots=True)
class ViewerPlan:
    index: int
    arrive: float
    leave: float | None  # None: stays to the end
    low_latency: bool  # LL-HLS player, else classic HLS
    downlink_bps: float
    seed: int  # the viewer's own random stream (retry jitter)
    seek_back: float | None = None  # start-over: joins this many seconds behind live


def arrival_offsets(shape: AudienceShape, rng: random.Random) -> list[float]:
    """Arrival times of the initial audience, sorted."""
    n = shape.viewers
    if shape.kind == "steady":
        times = [shape.at + rng.random() for _ in range(n)]
    elif shape.kind == "ramp":
        times = [shape.at + shape.within * (i + 0.5) / n for i in range(n)]
    else:
        times = [shape.at + shape.within * rng.betavariate(1.0, shape.skew) for _ in range(n)]
    return sorted(times)


def draw_downlink(bands: list[DownlinkBand], rng: random.Random) -> float:
    """A downlink in bits/s from weighted bands (each ±10 % around its figure)."""
    total = sum(band.weight for band in bands)
    pick = rng.random() * total
    for band in bands:
        pick -= band.weight
        if pick <= 0:
            return band.kbps * 1000 * rng.uniform(0.9, 1.1)
    return bands[-1].kbps * 1000


def plan_audience(
    shape: AudienceShape,
    duration: float,
    *,
    low_latency_share: float,
    downlink: list[DownlinkBand],
    seed: int,
    max_viewers: int | None = None,
) -> list[ViewerPlan]:
    """Every viewer of the rehearsal, in arrival order (churn replacements included)."""
    rng = random.Random(seed)
    dvr_rng = random.Random(f"start-over-{seed}")  # the same live plan with or without DVR
    phase = dvr_rng.random()
    pending = arrival_offsets(shape.validate(), rng)
    plans: list[ViewerPlan] = []
    cap = max_viewers if max_viewers is not None else 20 * shape.viewers
    while pending and len(plans) < cap:
        arrive = pending.pop(0)
        if arrive >= duration:
            break
        leave = None
        if shape.mean_session is not None:
            leave = arrive + rng.expovariate(1.0 / shape.mean_session)
            if leave >= duration:
                leave = None
            elif shape.replace:
                _insert_sorted(pending, leave)
        plans.append(
            ViewerPlan(
                index=len(plans),
                arrive=arrive,
                leave=leave,
                low_latency=rng.random() < low_latency_share,
                downlink_bps=draw_downlink(downlink, rng),
                seed=rng.getrandbits(32),
                seek_back=_seek_back(shape, len(plans), phase, dvr_rng),
            )
        )
    return plans


def _seek_back(shape: AudienceShape, index: int, phase: float, rng: random.Random) -> float | None:
    """Viewer ``index``'s seek-back if it is a start-over viewer (the share's running count
    steps up at it), else None (live)."""
    share = shape.start_over
    if math.floor((index + 1) * share + phase) == math.floor(index * share + phase):
        return None
    return rng.uniform(*shape.seek_back)


def _insert_sorted(values: list[float], value: float) -> None:
    lo, hi = 0, len(values)
    while lo < hi:
        mid = (lo + hi) // 2
        if values[mid] < value:
            lo = mid + 1
        else:
            hi = mid
    values.insert(lo, value)


def concurrent_viewers(plans: list[ViewerPlan], at: float) -> int:
    """How many planned viewers are present at time ``at``."""
    return sum(1 for p in plans if p.arrive <= at and (p.leave is None or p.leave > at))


def expected_peak(plans: list[ViewerPlan], step: float = 1.0) -> int:
    end = max((p.leave or p.arrive for p in plans), default=0.0)
    return max(
        (concurrent_viewers(plans, i * step) for i in range(math.ceil(end / step) + 2)), default=0
    )
