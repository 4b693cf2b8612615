"""Prometheus histograms: cumulative ``_bucket{le}`` with ``+Inf``, ``_sum``, ``_count``, checked by
a strict reading of the exposition format."""

from __future__ import annotations

import math

import pytest

from livecast.errors import ConfigError
from livecast.results.scrape import parse_prometheus_text
from livecast.telemetry.metrics import Registry

SeriesKey = tuple[str, tuple[tuple[str, str], ...]]  # histogram name, labels without le


def strict_histograms(text: str) -> dict[SeriesKey, dict[str, object]]:
    """Each histogram series of ``text``, checked as the format asks: "# TYPE <name> histogram"
    before its samples; buckets cumulative (never decreasing) in increasing ``le``, the last one
    ``le="+Inf"``; ``_count`` equal to the ``+Inf`` bucket; ``_sum`` present."""
    types: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert name not in types, f"TYPE given twice for {name}"
            types[name] = kind
    series: dict[SeriesKey, dict[str, object]] = {}
    for sample in parse_prometheus_text(text):
        for suffix in ("_bucket", "_sum", "_count"):
            base = sample.name.removesuffix(suffix)
            if base != sample.name and types.get(base) == "histogram":
                break
        else:
            continue
        labels = tuple(kv for kv in sample.labels if kv[0] != "le")
        entry = series.setdefault((base, labels), {"buckets": []})
        if suffix == "_bucket":
            le = sample.label("le")
            assert le is not None, f"{sample} has no le label"
            entry["buckets"].append((float(le), sample.value))  # type: ignore[attr-defined]
        else:
            entry[suffix] = sample.value
    for key, entry in series.items():
        buckets: list[tuple[float, float]] = entry["buckets"]  # type: ignore[assignment]
        bounds = [b for b, _ in buckets]
        assert bounds == sorted(bounds) and len(set(bounds)) == len(bounds), key
        assert bounds[-1] == math.inf, f"{key}: no +Inf bucket"
        counts = [c for _, c in buckets]
        assert counts == sorted(counts), f"{key}: buckets not cumulative {counts}"
        assert entry["_count"] == counts[-1], f"{key}: _count differs from the +Inf bucket"
        assert "_sum" in entry, f"{key}: no _sum"
    return series


def test_histogram_renders_cumulative_buckets_sum_and_count() -> None:
    registry = Registry()
    startup = registry.histogram("app_startup_seconds", "Startup time.", (0.5, 1.0, 2.5))
    for value in (0.2, 0.5, 0.7, 3.0):
        startup.observe(value)
    assert registry.render() == (
        b"# HELP app_startup_seconds Startup time.\n"
        b"# TYPE app_startup_seconds histogram\n"
        b'app_startup_seconds_bucket{le="0.5"} 2\n'
        b'app_startup_seconds_bucket{le="1"} 3\n'
        b'app_startup_seconds_bucket{le="2.5"} 3\n'
        b'app_startup_seconds_bucket{le="+Inf"} 4\n'
        b"app_startup_seconds_sum 4.4\n"
        b"app_startup_seconds_count 4\n"
    )


def test_labelled_histogram_puts_le_last_and_passes_the_strict_reading() -> None:
    registry = Registry()
    latency = registry.histogram("x_latency_seconds", "Latency.", (1, 2, 4), ("tier",))
    latency.observe(0.5, "edge")
    latency.observe(9.0, "edge")
    latency.labels("origin").observe(1.5, count=3)
    registry.counter("x_total", "Other.").inc()
    text = registry.render().decode()
    assert 'x_latency_seconds_bucket{tier="edge",le="1"} 1' in text
    series = strict_histograms(text)
    edge = series[("x_latency_seconds", (("tier", "edge"),))]
    assert edge["_count"] == 2 and edge["_sum"] == 9.5
    origin = series[("x_latency_seconds", (("tier", "origin"),))]
    assert origin["buckets"] == [(1.0, 0), (2.0, 3), (4.0, 3), (math.inf, 3)]
    assert origin["_sum"] == 4.5


def test_a_value_on_a_bound_falls_in_that_bucket_upper_bounds_are_inclusive() -> None:
    cell = Registry().histogram("h_seconds", "H.", (1.0, 2.0)).labels()
    cell.observe(1.0)
    cell.observe(2.0)
    assert cell.cumulative() == [(1.0, 1), (2.0, 2), (math.inf, 2)]


def test_add_counts_merges_already_bucketed_observations() -> None:
    cell = Registry().histogram("h_seconds", "H.", (1.0, 2.0)).labels()
    cell.observe(0.5)
    cell.add_counts([1, 0, 2], 10.0)
    assert cell.counts == [2, 0, 2] and cell.count == 4 and cell.sum == 10.5
    with pytest.raises(ValueError, match="3 buckets"):
        cell.add_counts([1, 2], 1.0)
    with pytest.raises(ValueError, match="negative"):
        cell.add_counts([1, -1, 0], 1.0)


def test_nan_and_negative_counts_are_refused() -> None:
    cell = Registry().histogram("h_seconds", "H.", (1.0,)).labels()
    with pytest.raises(ValueError, match="NaN"):
        cell.observe(math.nan)
    with pytest.raises(ValueError, match="negative count"):
        cell.observe(1.0, count=-1)


@pytest.mark.parametrize(
    "buckets", [(), (1.0, 1.0), (2.0, 1.0), (1.0, math.inf), (math.nan,)], ids=str
)
def test_bad_buckets_are_a_config_error(buckets: tuple[float, ...]) -> None:
    with pytest.raises(ConfigError):
        Registry().histogram("h_seconds", "H.", buckets)


def test_le_label_is_reserved_and_redefinition_must_match() -> None:
    registry = Registry()
    with pytest.raises(ConfigError, match="le"):
        registry.histogram("h_seconds", "H.", (1.0,), ("le",))
    first = registry.histogram("h_seconds", "H.", (1.0, 2.0))
    assert registry.histogram("h_seconds", "H.", (1, 2)) is first
    with pytest.raises(ConfigError):
        registry.histogram("h_seconds", "H.", (1.0, 3.0))
    with pytest.raises(ConfigError):
        registry.counter("h_seconds", "H.")
