"""Arrivals and departures per model step, from the scenario's audience shape (pure, numpy).

The rehearsal draws one arrival time per viewer (``livecast.scenario.audience``); the simulator
takes the same shapes as rates, so its cost does not grow with the audience:

* flash: arrival offsets follow Beta(1, ``skew``) over ``within`` seconds from ``at`` — the share
  arrived by offset x is ``1 − (1 − x/within)^skew``;
* ramp: evenly over ``within`` seconds; steady: within the first second from ``at``;
* churn (``mean_session``): each present viewer leaves with rate 1/mean_session (the exponential
  sessions of the rehearsal); ``replace`` sends a new viewer in as one leaves;
* surges (``[[simulate.surge]]``): ``viewers_per_minute`` more arrivals (negative: departures)
  spread evenly over the surge;
* the exit surge (``exit_surge`` seconds): whoever is left leaves evenly over the last seconds.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from livecast.scenario.audience import AudienceShape
from livecast.simulate.settings import Surge

Floats = npt.NDArray[np.float64]


def arrived_share(shape: AudienceShape, t: Floats) -> Floats:
    """Share of the initial audience arrived by times ``t`` (seconds from show start)."""
    span = 1.0 if shape.kind == "steady" else max(shape.within, 1e-9)
    x = np.clip((t - shape.at) / span, 0.0, 1.0)
    if shape.kind == "flash":
        return np.asarray(1.0 - (1.0 - x) ** shape.skew, dtype=np.float64)
    return x


def initial_arrivals(shape: AudienceShape, duration: float, step: float) -> Floats:
    """Viewers of the initial audience arriving in each step ``[i·step, (i+1)·step)``."""
    steps = int(np.ceil(duration / step))
    edges = np.arange(steps + 1, dtype=np.float64) * step
    share = arrived_share(shape, edges)
    return np.diff(share) * float(shape.viewers)


def surge_rates(surges: tuple[Surge, ...], duration: float, step: float) -> Floats:
    """Surge viewers per step (negative: leaving), each surge spread evenly over its span."""
    steps = int(np.ceil(duration / step))
    out = np.zeros(steps, dtype=np.float64)
    starts = np.arange(steps, dtype=np.float64) * step
    for surge in surges:
        overlap = np.clip(
            np.minimum(starts + step, surge.at + surge.duration) - np.maximum(starts, surge.at),
            0.0,
            None,
        )
        out += overlap * surge.viewers_per_minute / 60.0
    return out


def churn_share(shape: AudienceShape, step: float) -> float:
    """Share of the present viewers leaving in one step (exponential sessions)."""
    if shape.mean_session is None:
        return 0.0
    return float(1.0 - np.exp(-step / shape.mean_session))


def exit_share(t: float, step: float, duration: float, exit_surge: float) -> float:
    """Share of the present viewers leaving in the step at ``t`` during the exit surge."""
    if exit_surge <= 0 or t + step <= duration - exit_surge:
        return 0.0
    remaining = max(duration - t, step)
    return min(1.0, step / remaining)
