"""Bandwidth estimate and rendition choice, after hls.js's ``AbrController``.

Estimate (hls.js ``EwmaBandWidthEstimator``): each transfer gives a sample of
``8 · bytes / seconds`` weighted by its duration in seconds (at least ``minDelayMs`` = 50 ms) and
feeds two exponentially weighted moving averages with half-lives in seconds of media transferred
— fast (``abrEwmaFastLive`` 3 s) and slow (``abrEwmaSlowLive`` 9 s). Each average is corrected
for its zero start (divided by ``1 − α^total_weight``), and the estimate is the smaller of the two,
so it drops fast and climbs slowly. Before any sample it is ``abrEwmaDefaultEstimate``.

A video fetch slower than real time caps the estimate while it is still loading (hls.js abandons
such a fetch; this model only re-decides from the cap — see ``slow_fetch_bound``).

Choice (hls.js ``findBestLevel``, simplified): the highest rendition whose bitrate fits the
adjusted estimate — ``0.95 ×`` (``abrBandWidthFactor``) for the current rendition and below,
``0.7 ×`` (``abrBandWidthUpFactor``) above it, so going up needs headroom. Once playing, a
rendition must also fetch its next fragment before the buffer runs dry:
``bitrate × fragment_duration / adjusted_estimate ≤ max(buffer_ahead, fragment_duration)``,
which forces a step down when the buffer is low; when nothing fits, the lowest rendition.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


class Ewma:
    """hls.js ``EWMA``: half-life in units of sample weight (seconds)."""

    def __init__(self, half_life: float) -> None:
        self.half_life = half_life
        self.alpha: float = math.exp(math.log(0.5) / half_life)
        self.estimate = 0.0
        self.total_weight = 0.0

    def sample(self, weight: float, value: float) -> None:
        adjusted_alpha: float = self.alpha**weight
        self.estimate = value * (1.0 - adjusted_alpha) + adjusted_alpha * self.estimate
        self.total_weight += weight

    def value(self) -> float:
        if self.total_weight:
            zero_factor: float = 1.0 - self.alpha**self.total_weight
            if zero_factor:
                return self.estimate / zero_factor
        return self.estimate


class BandwidthEstimator:
    """min(fast EWMA, slow EWMA) of transfer throughput, in bit/s."""

    def __init__(
        self,
        fast_half_life: float = 3.0,
        slow_half_life: float = 9.0,
        default_bps: float = 500_000.0,
        min_sample_seconds: float = 0.05,
    ) -> None:
        self.fast = Ewma(fast_half_life)
        self.slow = Ewma(slow_half_life)
        self.default_bps = default_bps
        self.min_sample_seconds = min_sample_seconds
        self.samples = 0

    def reset(self, default_bps: float) -> None:
        """Forget every sample and start again from ``default_bps`` (hls.js ``resetEstimator``
        after an emergency switch down, so that the next regular decision does not undo it)."""
        self.fast = Ewma(self.fast.half_life)
        self.slow = Ewma(self.slow.half_life)
        self.default_bps = default_bps
        self.samples = 0

    def sample(self, seconds: float, size: int) -> None:
        seconds = max(seconds, self.min_sample_seconds)
        bps = 8.0 * size / seconds
        self.fast.sample(seconds, bps)
        self.slow.sample(seconds, bps)
        self.samples += 1

    @property
    def has_samples(self) -> bool:
        return self.fast.total_weight >= 0.001  # hls.js minWeight_

    def estimate(self) -> float:
        if self.fast.total_weight < 0.001:  # not has_samples
            return self.default_bps
        fast, slow = self.fast.value(), self.slow.value()
        return fast if fast < slow else slow


@dataclass(slots=True)  # not frozen: built after every video fetch (read-only by convention)
class AbrInputs:
    bitrates: Sequence[int]  # bit/s per rendition, ascending
    current: int  # index into ``bitrates``
    estimate_bps: float
    buffer_ahead: float  # seconds of media buffered ahead of the playhead
    fragment_duration: float  # seconds of the next fetch (part target or target duration)
    playing: bool  # after the first frame
    down_factor: float = 0.95
    up_factor: float = 0.7


def choose_level(inputs: AbrInputs) -> int:
    """Index of the rendition to load next (see the module docstring)."""
    for index in range(len(inputs.bitrates) - 1, -1, -1):
        factor = inputs.down_factor if index <= inputs.current else inputs.up_factor
        adjusted = inputs.estimate_bps * factor
        bitrate = inputs.bitrates[index]
        if bitrate > adjusted:
            continue
        if inputs.playing:
            fetch_time = bitrate * inputs.fragment_duration / adjusted
            if fetch_time > max(inputs.buffer_ahead, inputs.fragment_duration):
                continue
            if inputs.buffer_ahead < inputs.fragment_duration and fetch_time > inputs.buffer_ahead:
                continue
        return index
    return 0


def slow_fetch_bound(bitrate: int, fragment_duration: float, loading_for: float) -> float | None:
    """Evidence from a fetch still in flight (after hls.js's abandon rules, without aborting):
    a fragment of ``fragment_duration`` s at ``bitrate`` that has been loading for
    ``loading_for`` s — longer than it lasts — arrives at most at
    ``bitrate × fragment_duration / loading_for``; None while it is not slower than real time."""
    if loading_for <= fragment_duration:
        return None
    return bitrate * fragment_duration / loading_for


def slow_fetch_check_at(began: float, duration: float, last_check: float, interval: float) -> float:
    """When a video fetch that began loading at ``began`` (``duration`` s of media) is next
    checked: on a grid of ``interval`` from its start (hls.js's 100 ms ``_abandonRulesCheck``
    timer), once it has loaded as long as its media lasts and after the ``last_check``."""
    after = max(began + duration, last_check)
    return began + interval * (math.floor((after - began) / interval) + 1)


def start_level(bitrates: Sequence[int], rule: str, estimate_bps: float, up_factor: float) -> int:
    """The first rendition: lowest, highest, or the highest the default estimate allows."""
    if rule == "lowest":
        return 0
    if rule == "highest":
        return len(bitrates) - 1
    fitting = [i for i, bitrate in enumerate(bitrates) if bitrate <= estimate_bps * up_factor]
    return fitting[-1] if fitting else 0
