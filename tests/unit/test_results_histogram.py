"""Mergeable histograms and reservoirs: merge equals recording all, error bound, JSON round trip."""

from __future__ import annotations

import json
import math
import random

import pytest

from livecast.results.histogram import Histogram, Reservoir, histogram_of, percentile


def _latencies(seed: int, n: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.lognormvariate(-2.0, 1.0) for _ in range(n)]


def test_exact_percentile_is_nearest_rank() -> None:
    values = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]
    assert percentile(values, 50) == 5.0
    assert percentile(values, 95) == 10.0
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 10.0
    assert percentile([7.0], 99) == 7.0
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile(values, 101)


def test_merge_of_two_equals_recording_all() -> None:
    a_values, b_values = _latencies(1, 3000), _latencies(2, 2000)
    a, b = histogram_of(a_values), histogram_of(b_values)
    a.merge(b)
    everything = histogram_of(a_values + b_values)
    assert a.count == everything.count == 5000
    assert a.buckets() == everything.buckets()
    assert a.min == everything.min and a.max == everything.max
    assert a.sum == pytest.approx(everything.sum)
    for p in (1, 50, 90, 99, 99.9):
        assert a.percentile(p) == everything.percentile(p)


@pytest.mark.parametrize("p", [0, 1, 25, 50, 75, 90, 95, 99, 99.9, 100])
def test_percentile_within_relative_error_of_exact(p: float) -> None:
    values = sorted(_latencies(3, 10_000))
    histogram = histogram_of(values)
    exact = percentile(values, p)
    assert histogram.percentile(p) == pytest.approx(exact, rel=histogram.relative_error)


def test_zero_and_out_of_range_values() -> None:
    histogram = Histogram(lowest=1e-3, highest=10.0)
    for value in (0.0, 0.0, 5.0, 50.0):
        histogram.record(value)
    assert histogram.percentile(50) == 0.0
    assert histogram.percentile(100) == 50.0  # top bucket clamps to the exact max
    assert histogram.mean == pytest.approx(55.0 / 4)
    assert math.isnan(Histogram().percentile(50))
    with pytest.raises(ValueError):
        histogram.record(-1.0)
    with pytest.raises(ValueError):
        histogram.record(math.nan)


def test_merge_refuses_other_layout() -> None:
    with pytest.raises(ValueError):
        Histogram().merge(Histogram(lowest=1.0, highest=1e9))


def test_json_round_trip() -> None:
    histogram = histogram_of(_latencies(4, 500))
    histogram.record(0.0, count=3)
    back = Histogram.from_dict(json.loads(json.dumps(histogram.to_dict())))
    assert back == histogram
    assert back.percentile(99) == histogram.percentile(99)
    empty = Histogram.from_dict(json.loads(json.dumps(Histogram().to_dict())))
    assert empty.count == 0 and empty == Histogram()


def test_reservoir_keeps_everything_under_capacity_and_bounds_above() -> None:
    small = Reservoir(capacity=10)
    for v in range(5):
        small.record(float(v))
    assert small.values() == [0.0, 1.0, 2.0, 3.0, 4.0]
    big = Reservoir(capacity=100, seed=3)
    for v in range(10_000):
        big.record(float(v))
    assert len(big) == 100 and big.seen == 10_000
    mean = sum(big.values()) / 100  # a uniform sample of 0..9999: 4999.5 ± 3σ (866)
    assert mean == 5137.56 and abs(mean - 4999.5) <= 3 * 2886.75 / 100**0.5


def test_reservoir_merge_is_bottom_k_of_union_and_round_trips() -> None:
    a, b = Reservoir(capacity=50, seed=1), Reservoir(capacity=50, seed=2)
    for v in range(1000):
        a.record(float(v))
        b.record(float(v + 1000))
    union = sorted(
        list(zip(a.to_dict()["keys"], a.to_dict()["values"], strict=True))
        + list(zip(b.to_dict()["keys"], b.to_dict()["values"], strict=True))
    )[:50]
    a.merge(b)
    assert a.seen == 2000
    assert a.values() == sorted(v for _, v in union)
    back = Reservoir.from_dict(json.loads(json.dumps(a.to_dict())))
    assert back.values() == a.values() and back.seen == 2000
    back.record(5.0)
    a.record(5.0)
    assert back.values() == a.values()


def test_reservoir_records_a_weighted_cohort_in_proportion() -> None:
    few = Reservoir(capacity=10)
    few.record(7.0, count=3)
    assert few.values() == [7.0, 7.0, 7.0] and few.seen == 3
    mixed = Reservoir(capacity=1000, seed=9)
    for v in range(10_000):
        mixed.record(float(v))  # 10,000 singles
    mixed.record(-1.0, count=30_000)  # one cohort three times their size
    share = mixed.values().count(-1.0) / len(mixed)
    assert mixed.seen == 40_000 and len(mixed) == 1000
    assert share == 0.754  # this seed's draw; 0.75 ± 3σ (0.041) of a 1000-value sample
    assert abs(share - 0.75) <= 3 * (0.75 * 0.25 / 1000) ** 0.5
