"""Exponential backoff with optional full jitter (pure).

hls.js (``utils/error-helper.ts`` ``getRetryDelay``) waits ``min(maxRetryDelayMs,
retryDelayMs · 2^n)`` before retry n (0-based) — every viewer that failed together retries
together. Full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter") draws the delay
uniformly from ``[0, that cap]`` instead, spreading a failed crowd over the window. The random
source is injected (a seeded ``random.Random``), never the global one.
"""

from __future__ import annotations

import random

from livecast.player.config import RetryPolicy


def backoff_cap(policy: RetryPolicy, retry: int) -> float:
    """The un-jittered delay before retry ``retry`` (0-based): min(cap, base · 2^n)."""
    if retry < 0:
        raise ValueError("retry index must be ≥ 0")
    return min(policy.max_delay, policy.base_delay * 2.0 ** min(retry, 60))


def backoff_delay(policy: RetryPolicy, retry: int, rng: random.Random) -> float:
    """Delay before retry ``retry``: the cap itself, or uniform in [0, cap] with jitter on."""
    cap = backoff_cap(policy, retry)
    return rng.uniform(0.0, cap) if policy.jitter else cap


def can_retry(policy: RetryPolicy, retries_done: int) -> bool:
    return retries_done < policy.max_retries


def backoff_schedule(policy: RetryPolicy, rng: random.Random) -> list[float]:
    """Every delay of a request that keeps failing, in order (``max_retries`` of them)."""
    return [backoff_delay(policy, n, rng) for n in range(policy.max_retries)]
