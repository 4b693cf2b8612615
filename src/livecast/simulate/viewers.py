"""The audience as cohorts: viewers grouped by edge × player mode × downlink band (pure, numpy).

No Python object per viewer: every figure is an array ``[edge, mode, band]`` of viewer counts or
per-viewer means, so a step costs the same for 200 viewers or 65 million. The player policy is
the rehearsal's (``livecast.player``): the hls.js retry budgets and backoff caps of
:class:`~livecast.player.config.PlayerConfig` (full jitter or none), the first rendition by
:func:`~livecast.player.abr.start_level` from the downlink, and the request cadence of the
player model — LL-HLS: per track (video, audio) a blocking playlist reload and a part per part
duration; classic: a playlist reload and a segment per target duration.

What a viewer experiences in one step (``dt``) follows from the request outcomes at its edge:

* **startup** (joiners): multivariant → media playlists → init → first part (LL-HLS waits for
  the next part: uniform in [0, part duration]) or first segment, each answer's time added, a
  failed step retried after the policy's backoff; the start fails when a step's retries run out,
  and viewers leave when startup exceeds ``abandon_after`` (``abandon_per_second`` per second);
* **stalls**: a part that arrives later than the buffer allows (the shift stays: the viewer
  plays further behind live), a fetch cycle longer than the media it brings (a continuous stall:
  ``1 − duration / cycle`` of the time), a failed media request whose backoff outlasts the
  buffer, no new media at all (the contribution dropped), a downlink share below the lowest rung;
* **fatal errors**: a request kind whose retries all fail (``F^(retries + 1)``) ends the viewer
  after the retry window; ``rejoin_share`` of them come back ``rejoin_after`` later.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from livecast.player.abr import start_level
from livecast.player.config import PlayerConfig, RetryPolicy
from livecast.player.retry import backoff_cap
from livecast.simulate.settings import StreamSpec

Floats = npt.NDArray[np.float64]
LL, CLASSIC = 0, 1
UP_FACTOR = PlayerConfig("x").bandwidth_up_factor
STARTUP_POINTS = np.array([0.05, 0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 0.95])


def mean_backoff(policy: RetryPolicy, retry: int) -> float:
    """Expected delay before retry ``retry`` (half the cap with full jitter)."""
    cap = backoff_cap(policy, retry)
    return cap / 2 if policy.jitter else cap


def retry_window(policy: RetryPolicy) -> float:
    """How long a request that keeps failing takes to become fatal (expected)."""
    return sum(mean_backoff(policy, n) for n in range(policy.max_retries))


def rung_for(video_bps: Floats, audio_bps: float, throughput_bps: Floats) -> npt.NDArray[np.int64]:
    """The rung each throughput picks (index into ``video_bps``, highest first): hls.js's
    start level with the up-switch factor (``player.abr.start_level``), the highest whose
    bitrate fits, vectorised; ``rung_for_one`` is the same through the player's own function."""
    ascending = video_bps[::-1] + audio_bps
    fits = np.searchsorted(ascending, throughput_bps * UP_FACTOR, side="right") - 1
    picks = np.maximum(fits, 0)
    return np.asarray(len(ascending) - 1 - picks, dtype=np.int64)


def rung_for_one(video_bps: Floats, audio_bps: float, throughput_bps: float) -> int:
    ascending = [int(b + audio_bps) for b in video_bps[::-1]]
    return len(ascending) - 1 - start_level(ascending, "estimate", throughput_bps, UP_FACTOR)


@dataclass
class Policy:
    """The player policy the cohorts follow (the rehearsal's PlayerConfig)."""

    multivariant: RetryPolicy
    playlist: RetryPolicy
    fragment: RetryPolicy
    start_buffer: float

    @classmethod
    def of(cls, jitter: bool) -> Policy:
        config = PlayerConfig("simulated")
        if not jitter:
            config = config.without_jitter()
        return cls(config.multivariant_retry, config.playlist_retry, config.fragment_retry,
                   config.start_buffer)  # fmt: skip


def request_rates(stream: StreamSpec) -> Floats:
    """Requests per viewer per second by mode and object kind (``[mode, IK]``), steady state:
    two tracks (video, audio) each."""
    p, d = stream.part_duration, stream.segment_duration
    rates = np.zeros((2, 6))
    rates[LL, 1] = 2 / p  # blocking playlist reloads
    rates[LL, 3] = 2 / p  # parts
    rates[CLASSIC, 2] = 2 / d  # plain playlist reloads
    rates[CLASSIC, 4] = 2 / d  # segments
    return rates


def startup_mixture(
    rounds: Floats,
    failures: Floats,
    policies: tuple[RetryPolicy, ...],
    part_wait: float,
) -> tuple[Floats, Floats, Floats]:
    """(startup values, weights, start-failure share) of joiners, per cohort.

    ``rounds[..., r]``: answer time of startup step r; ``failures[..., r]``: its failure share.
    Each step succeeds at once, after one retry, or after two (weights from the failure share);
    the part wait is spread over ``STARTUP_POINTS``. Returns arrays ``[..., points]``.
    """
    base = rounds.sum(axis=-1)
    ok_first = np.prod(1.0 - failures, axis=-1)
    any_fail = 1.0 - ok_first
    delay1 = np.sum(failures * np.array([mean_backoff(p, 0) for p in policies]), axis=-1)
    delay1 = np.where(any_fail > 0, delay1 / np.maximum(any_fail, 1e-12), 0.0)
    fatal = 1.0 - np.prod(
        1.0 - failures ** np.array([p.max_retries + 1 for p in policies]), axis=-1
    )
    waits = STARTUP_POINTS * part_wait
    values = base[..., None] + waits
    once = (base + delay1)[..., None] + waits
    all_values = np.concatenate([values, once], axis=-1)
    weight = 1.0 / len(STARTUP_POINTS)
    w_ok = np.repeat((ok_first * weight)[..., None], len(STARTUP_POINTS), axis=-1)
    w_once = np.repeat((np.maximum(any_fail - fatal, 0.0) * weight)[..., None],
                       len(STARTUP_POINTS), axis=-1)  # fmt: skip
    return all_values, np.concatenate([w_ok, w_once], axis=-1), fatal


def abandon_share(startup: Floats, after: float, per_second: float) -> Floats:
    """Share of viewers leaving before the first frame at each startup time."""
    return np.asarray(np.clip((startup - after) * per_second, 0.0, 1.0), dtype=np.float64)


def fatal_share(failure: Floats, requests: Floats, policy: RetryPolicy) -> Floats:
    """Share of viewers whose ``requests`` of one kind in a step include one whose every retry
    fails (failure share ``failure`` each)."""
    chain = failure ** (policy.max_retries + 1)
    return np.asarray(1.0 - (1.0 - chain) ** requests, dtype=np.float64)


def continuous_stall(cycle: Floats, media: Floats | float) -> Floats:
    """Share of the time stalled when each ``media`` seconds of content take ``cycle`` to fetch."""
    safe = np.maximum(cycle, 1e-12)
    return np.asarray(np.where(cycle > media, 1.0 - media / safe, 0.0), dtype=np.float64)
