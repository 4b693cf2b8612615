"""The delivery tiers of the model, one step at a time (pure, numpy): what a caching tier sends
upstream, what a node of a given capacity serves, and how failures come back down.

Object kinds (``IK``, as the rehearsal's object ledger counts them): multivariant, blocking
playlist reloads (LL-HLS ``_HLS_msn``/``_HLS_part``), plain playlists (classic players), parts,
segments, init. A *blocking* kind is asked for before it exists: every request of it waits for
the same upstream fetch.

Upstream requests of a caching tier, per node and kind, over one step:

* **collapse on** (``proxy_cache_lock`` + the wake-up collapse): one fetch per new object
  (× the calibrated ``upstream_per_object``), plus, for blocking kinds, the waiters whose wait
  outlives the lock: a waiter gives up the lock after ``lock_timeout`` and goes upstream itself;
  waits spread over [0, W] (W = part duration + the upstream's answer time), so the share is
  ``max(0, 1 − lock_timeout / W)``;
* **collapse off**: every request of a blocking kind goes upstream (they all arrive before the
  object exists); of another kind, the requests arriving while the first fetch is in flight:
  ``objects · (1 + (n − 1) · min(1, answer time / spread))``, n = requests per object, spread =
  how long requests for one object keep arriving (a segment: its duration);
* failures: a blocking kind's waiters share the fate of the one fetch (``dependent`` = 1); of
  another kind only misses reach the upstream (``dependent`` = miss share), and an expired
  plain playlist is served stale when the upstream fails (``stale_if_error``).

A node over capacity answers ``capacity / offered`` of its requests and fails the rest (503 when
the origin sheds, a time-out otherwise); its answer time grows as ``1 / (1 − ρ)`` (M/M/1),
capped at ``QUEUE_CAP`` times the light-load figure.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]

IK = ("multivariant", "playlist-blocking", "playlist-plain", "part", "segment", "init")
MV, PL_BLOCK, PL_PLAIN, PART, SEGMENT, INIT = range(len(IK))
BLOCKING = np.array([False, True, False, True, False, False])
REQUEST_KIND = ("multivariant", "playlist", "playlist", "part", "segment", "init")
QUEUE_CAP = 50.0
MAX_UTILISATION = 0.98


def queueing_factor(rho: Floats) -> Floats:
    """Answer time multiplier at utilisation ``rho`` (M/M/1 ``1/(1 − ρ)``, capped)."""
    clipped = np.minimum(rho, MAX_UTILISATION)
    return np.asarray(np.minimum(1.0 / (1.0 - clipped), QUEUE_CAP), dtype=np.float64)


def overload_share(rho: Floats) -> Floats:
    """Share of the offered requests a node over capacity cannot answer."""
    safe = np.maximum(rho, 1e-12)
    return np.asarray(np.where(rho > 1.0, 1.0 - 1.0 / safe, 0.0), dtype=np.float64)


@dataclass(frozen=True)
class CacheRules:
    collapse: bool
    lock_timeout: float
    upstream_per_object: float
    stale_if_error: bool
    spread: Floats  # per kind: seconds over which requests for one object arrive


def upstream_requests(
    served: Floats, objects: Floats, rules: CacheRules, wait: float, answer_time: float
) -> Floats:
    """Requests one caching tier sends upstream per kind (arrays ``[..., IK]``)."""
    fetches = np.minimum(served, objects) * rules.upstream_per_object
    fetches = np.minimum(fetches, served)
    if rules.collapse:
        leak = max(0.0, 1.0 - rules.lock_timeout / max(wait, 1e-9))
        extra = np.where(BLOCKING, (served - fetches) * leak, 0.0)
        return np.asarray(fetches + extra, dtype=np.float64)
    per_object = np.where(objects > 0, served / np.maximum(objects, 1e-12), 0.0)
    window = np.minimum(1.0, answer_time / rules.spread)
    plain = np.minimum(
        served, np.minimum(served, objects) * (1 + np.maximum(per_object - 1, 0) * window)
    )
    return np.asarray(np.where(BLOCKING, served, plain), dtype=np.float64)


def dependent_share(served: Floats, upstream: Floats, rules: CacheRules) -> Floats:
    """Share of a tier's answers that fail when its upstream fails, per kind."""
    miss = np.where(served > 0, upstream / np.maximum(served, 1e-12), 0.0)
    dependent = np.where(BLOCKING, 1.0, np.minimum(miss, 1.0))
    if rules.stale_if_error:
        dependent[..., PL_PLAIN] = 0.0
        dependent[..., MV] = 0.0
    return np.asarray(dependent, dtype=np.float64)


def pass_failures(own: Floats, dependent: Floats, upstream_failure: Floats) -> Floats:
    """Failure share of a tier's answers: its own, or an upstream failure it passes on."""
    return np.asarray(own + (1.0 - own) * dependent * upstream_failure, dtype=np.float64)


def combine(a: Floats | float, b: Floats | float) -> Floats:
    """Failure share of two independent causes."""
    return np.asarray(1.0 - (1.0 - np.asarray(a)) * (1.0 - np.asarray(b)), dtype=np.float64)
