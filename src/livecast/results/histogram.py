"""Mergeable log-linear histograms, a mergeable reservoir sample, and exact percentiles.

Pure code: no clock, no I/O, no global random state.

:class:`Histogram` keeps a sparse ``{bucket index: count}`` dict over geometrically growing
buckets (HDR-histogram style): bucket ``i`` covers ``[lowest·g^i, lowest·g^(i+1))`` with
``g = 1 + 2·relative_error``, and a value is reported as the geometric middle of its bucket, so a
percentile is within ``relative_error`` (0.5 % by default) of the exact nearest-rank value. Values
below ``lowest`` (zero included) share one bucket reported as 0; values above ``highest`` share the
top bucket. Exact ``min``/``max``/``sum`` are kept too, and every percentile is clamped to
``[min, max]``. Two histograms with the same layout merge by adding counts, so worker processes
ship ``to_dict()`` as JSON and the parent merges ``from_dict()``.

:class:`Reservoir` is a bottom-k sample (each value gets a pseudo-random key from a seeded
SplitMix64; the ``capacity`` smallest keys are kept), which merges exactly: the union of two
bottom-k samples, cut to k, is the bottom-k sample of the union.

    latency = Histogram()
    latency.record(0.120)
    latency.merge(Histogram.from_dict(worker_dict))
    latency.percentile(95)          # seconds, within 0.5 %
    percentile(sorted(values), 95)  # exact, nearest rank
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

DEFAULT_LOWEST = 1e-6
DEFAULT_HIGHEST = 3600.0
DEFAULT_RELATIVE_ERROR = 0.005

_BELOW_LOWEST = -1  # bucket index of values under ``lowest`` (reported as 0)


def percentile(sorted_values: Sequence[float], percent: float) -> float:
    """Exact nearest-rank percentile of already sorted values; ``percent`` in [0, 100]."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    _check_percent(percent)
    return sorted_values[_nearest_rank(len(sorted_values), percent) - 1]


def interpolated_percentile(values: Sequence[float], percent: float) -> float:
    """Percentile with linear interpolation between closest ranks (numpy's default), for small
    samples reported as they are (probe, browser, one viewer); ``percent`` in [0, 100]."""
    if not values:
        raise ValueError("percentile of no values")
    _check_percent(percent)
    ordered = sorted(values)
    rank = (len(ordered) - 1) * percent / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _check_percent(percent: float) -> None:
    if not 0.0 <= percent <= 100.0:
        raise ValueError(f"percent must be within [0, 100], got {percent}")


def _nearest_rank(count: int, percent: float) -> int:
    """1-based rank of the nearest-rank percentile among ``count`` values."""
    return min(count, max(1, math.ceil(percent / 100.0 * count - 1e-9)))


class Histogram:
    """A sparse log-linear histogram of non-negative values; mergeable and JSON-serialisable."""

    __slots__ = (
        "_buckets",
        "_growth_log",
        "_index_scale",
        "_log_lowest",
        "count",
        "highest",
        "lowest",
        "max",
        "min",
        "relative_error",
        "sum",
    )

    def __init__(
        self,
        lowest: float = DEFAULT_LOWEST,
        highest: float = DEFAULT_HIGHEST,
        relative_error: float = DEFAULT_RELATIVE_ERROR,
    ) -> None:
        if not 0.0 < lowest < highest:
            raise ValueError(f"need 0 < lowest < highest, got {lowest}, {highest}")
        if not 0.0 < relative_error < 0.5:
            raise ValueError(f"relative_error must be within (0, 0.5), got {relative_error}")
        self.lowest = lowest
        self.highest = highest
        self.relative_error = relative_error
        self._growth_log = math.log1p(2.0 * relative_error)
        self._index_scale = 1.0 / self._growth_log
        self._log_lowest = math.log(lowest)
        self._buckets: dict[int, int] = {}
        self.count = 0
        self.sum = 0.0
        self.min = math.inf
        self.max = -math.inf

    @property
    def layout(self) -> tuple[float, float, float]:
        return (self.lowest, self.highest, self.relative_error)

    @property
    def mean(self) -> float:
        return self.sum / self.count if self.count else math.nan

    def bucket_index(self, value: float) -> int:
        if value < self.lowest:
            return _BELOW_LOWEST
        clamped = value if value < self.highest else self.highest
        return int((math.log(clamped) - self._log_lowest) * self._index_scale)

    def bucket_value(self, index: int) -> float:
        """The value reported for bucket ``index``: the geometric middle of its bounds."""
        if index == _BELOW_LOWEST:
            return 0.0
        return self.lowest * math.exp((index + 0.5) * self._growth_log)

    def record(self, value: float, count: int = 1) -> None:
        if count <= 0:
            if count == 0:
                return
            raise ValueError(f"count must be positive, got {count}")
        if not 0.0 <= value < math.inf:
            raise ValueError(f"histogram values must be finite and >= 0, got {value}")
        if value < self.lowest:
            index = _BELOW_LOWEST
        else:  # bucket_index, inlined for the hot path
            clamped = value if value < self.highest else self.highest
            index = int((math.log(clamped) - self._log_lowest) * self._index_scale)
        buckets = self._buckets
        buckets[index] = buckets.get(index, 0) + count
        self.count += count
        self.sum += value * count
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value

    def merge(self, other: Histogram) -> None:
        """Add ``other``'s counts into this histogram (same layout required)."""
        if other.layout != self.layout:
            raise ValueError(f"cannot merge histogram layouts {other.layout} into {self.layout}")
        for index, count in other._buckets.items():
            self._buckets[index] = self._buckets.get(index, 0) + count
        self.count += other.count
        self.sum += other.sum
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)

    def percentile(self, percent: float) -> float:
        """Nearest-rank percentile within ``relative_error``; NaN when empty."""
        _check_percent(percent)
        if not self.count:
            return math.nan
        rank = _nearest_rank(self.count, percent)
        if rank == self.count:
            return self.max
        if rank == 1:
            return self.min
        seen = 0
        for index in sorted(self._buckets):
            seen += self._buckets[index]
            if seen >= rank:
                return min(self.max, max(self.min, self.bucket_value(index)))
        return self.max

    def buckets(self) -> list[tuple[float, int]]:
        """(reported value, count) per non-empty bucket, ascending."""
        return [(self.bucket_value(i), self._buckets[i]) for i in sorted(self._buckets)]

    def copy(self) -> Histogram:
        twin = Histogram(*self.layout)
        twin.merge(self)
        return twin

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Histogram):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Histogram(count={self.count}, p50={self.percentile(50):.6g})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "lowest": self.lowest,
            "highest": self.highest,
            "relative_error": self.relative_error,
            "count": self.count,
            "sum": self.sum,
            "min": self.min if self.count else None,
            "max": self.max if self.count else None,
            "buckets": {str(i): c for i, c in sorted(self._buckets.items())},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Histogram:
        histogram = cls(
            float(data["lowest"]), float(data["highest"]), float(data["relative_error"])
        )
        histogram._buckets = {int(i): int(c) for i, c in data["buckets"].items()}
        histogram.count = int(data["count"])
        if histogram.count != sum(histogram._buckets.values()):
            raise ValueError("histogram count does not match its buckets")
        histogram.sum = float(data["sum"])
        if histogram.count:
            histogram.min = float(data["min"])
            histogram.max = float(data["max"])
        return histogram


def histogram_of(values: Iterable[float], **layout: float) -> Histogram:
    histogram = Histogram(**layout)
    for value in values:
        histogram.record(value)
    return histogram


_KEY_SPACE = 1 << 64
_MASK64 = _KEY_SPACE - 1


def splitmix64(state: int) -> int:
    """One SplitMix64 output for ``state``: a cheap, well-mixed 64-bit hash."""
    z = (state + 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


class Reservoir:
    """A bounded uniform sample of recorded values (bottom-k by pseudo-random key); mergeable.

    ``seed`` should differ between worker processes so their keys are independent.
    """

    __slots__ = ("_heap", "_next_key_state", "capacity", "seen")

    def __init__(self, capacity: int = 5000, seed: int = 0) -> None:
        if capacity <= 0:
            raise ValueError(f"capacity must be positive, got {capacity}")
        self.capacity = capacity
        self.seen = 0
        self._next_key_state = splitmix64(seed)
        # max-heap on key through negation: (-key, value)
        self._heap: list[tuple[int, float]] = []

    def _next_key(self) -> int:
        self._next_key_state = (self._next_key_state + 1) & _MASK64
        return splitmix64(self._next_key_state)

    def _threshold(self) -> int:
        """Keys at or above this cannot enter the sample."""
        return -self._heap[0][0] if len(self._heap) >= self.capacity else _KEY_SPACE

    def record(self, value: float, count: int = 1) -> None:
        """Record ``value`` ``count`` times (a cohort, say) in O(min(count, capacity)) steps."""
        if count == 1:  # the hot path: _next_key and _offer inlined
            self.seen += 1
            state = self._next_key_state = (self._next_key_state + 1) & _MASK64
            key = splitmix64(state)
            heap = self._heap
            if len(heap) < self.capacity:
                heapq.heappush(heap, (-key, value))
            elif key < -heap[0][0]:
                heapq.heapreplace(heap, (-key, value))
            return
        if count < 0:
            raise ValueError(f"count must be >= 0, got {count}")
        self.seen += count
        # the smallest keys of ``count`` uniform draws, in order (sequential order statistics)
        position = 0.0
        threshold = self._threshold()
        for drawn in range(min(count, self.capacity)):
            uniform = (self._next_key() + 1) / _KEY_SPACE
            position = 1.0 - (1.0 - position) * uniform ** (1.0 / (count - drawn))
            key = min(int(position * _KEY_SPACE), _MASK64)
            if key >= threshold:
                break
            self._offer(key, value)
            threshold = self._threshold()

    def _offer(self, key: int, value: float) -> None:
        if len(self._heap) < self.capacity:
            heapq.heappush(self._heap, (-key, value))
        elif key < -self._heap[0][0]:
            heapq.heapreplace(self._heap, (-key, value))

    def merge(self, other: Reservoir) -> None:
        self.seen += other.seen
        for negative_key, value in other._heap:
            self._offer(-negative_key, value)

    def values(self) -> list[float]:
        """The sampled values, sorted ascending."""
        return sorted(value for _, value in self._heap)

    def __len__(self) -> int:
        return len(self._heap)

    def to_dict(self) -> dict[str, Any]:
        ordered = sorted(self._heap, reverse=True)  # ascending key
        return {
            "capacity": self.capacity,
            "seen": self.seen,
            "key_state": self._next_key_state,
            "keys": [-k for k, _ in ordered],
            "values": [v for _, v in ordered],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Reservoir:
        reservoir = cls(int(data["capacity"]))
        reservoir.seen = int(data["seen"])
        reservoir._next_key_state = int(data["key_state"])
        keys, values = data["keys"], data["values"]
        if len(keys) != len(values) or len(keys) > reservoir.capacity:
            raise ValueError("reservoir keys and values do not match its capacity")
        reservoir._heap = [(-int(k), float(v)) for k, v in zip(keys, values, strict=True)]
        heapq.heapify(reservoir._heap)
        return reservoir
