"""A small Prometheus registry: counters, gauges and histograms with labels, rendered as text
format 0.0.4.

Pure code: no threads, no clock, no I/O. A metric owns one :class:`CounterCell`,
:class:`GaugeCell` or :class:`HistogramCell` per combination of label values; hot paths resolve
the cell once with ``metric.labels(...)`` and then call ``cell.inc()`` / ``cell.observe()`` (or
touch ``cell.value``) directly.

    registry = Registry()
    requests = registry.counter("app_requests_total", "Requests served.", ("status",))
    requests.inc("200")
    ok = requests.labels("200")   # pre-resolved cell for a hot path
    ok.inc()
    registry.render()             # b'# HELP app_requests_total Requests served.\\n...'
    startup = registry.histogram("app_startup_seconds", "Startup.", (0.5, 1.0, 2.0))
    startup.observe(0.7)          # app_startup_seconds_bucket{le="1"} 1 … _sum 0.7, _count 1

A histogram follows the exposition format: "A histogram with a base metric name of <basename>
exposes multiple time series during a scrape: cumulative counters for the observation buckets,
exposed as <basename>_bucket{le="<upper inclusive bound>"}; the total sum of all observed values,
exposed as <basename>_sum; the count of events that have been observed, exposed as
<basename>_count (identical to <basename>_bucket{le="+Inf"} above)". Its buckets are fixed when it
is registered (finite, strictly increasing upper bounds; ``+Inf`` is always added).

Definition mistakes (bad names, a name registered twice with a different shape) raise
:class:`~livecast.errors.ConfigError`; misuse of values (wrong number of label values, a
counter going down) raises ``ValueError``.
"""

from __future__ import annotations

import bisect
import itertools
import math
import re
from collections.abc import Sequence
from typing import ClassVar, Generic, TypeVar

from livecast.errors import ConfigError

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")


class CounterCell:
    """One counter time series: a value that only goes up."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        if amount < 0:
            raise ValueError(f"a counter cannot decrease (inc by {amount})")
        self.value += amount


class GaugeCell:
    """One gauge time series: a value that goes up and down."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount

    def dec(self, amount: float = 1.0) -> None:
        self.value -= amount

    def set(self, value: float) -> None:
        self.value = value


class HistogramCell:
    """One histogram time series: per-bucket counts (not cumulative), their sum and count."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds  # finite upper bounds, increasing; the last bucket is +Inf
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    @property
    def count(self) -> int:
        return sum(self.counts)

    @property
    def value(self) -> float:
        """The number of observations (what ``series()`` reports for a histogram)."""
        return float(self.count)

    def observe(self, value: float, count: int = 1) -> None:
        """``count`` observations of ``value`` (NaN is refused: it has no bucket)."""
        if math.isnan(value):
            raise ValueError("a histogram cannot observe NaN")
        if count < 0:
            raise ValueError(f"a histogram cannot observe a negative count ({count})")
        self.counts[bisect.bisect_left(self.bounds, value)] += count
        self.sum += value * count

    def add_counts(self, counts: Sequence[int], total: float) -> None:
        """Add already bucketed observations (per-bucket counts for these bounds and +Inf, and
        their sum) — how merged per-second reports are fed in."""
        if len(counts) != len(self.counts):
            raise ValueError(
                f"{len(counts)} bucket counts for a histogram of {len(self.counts)} buckets"
            )
        if any(n < 0 for n in counts):
            raise ValueError(f"negative bucket counts {list(counts)}")
        for i, n in enumerate(counts):
            self.counts[i] += n
        self.sum += total

    def cumulative(self) -> list[tuple[float, int]]:
        """``(le, observations ≤ le)`` for every bound, ending with ``(+Inf, count)``."""
        out: list[tuple[float, int]] = []
        running = 0
        for bound, n in zip((*self.bounds, math.inf), self.counts, strict=True):
            running += n
            out.append((bound, running))
        return out


CellT = TypeVar("CellT", CounterCell, GaugeCell, HistogramCell)


class _Metric(Generic[CellT]):
    """A named metric family: HELP text, label names and one cell per label-value tuple."""

    kind: ClassVar[str]

    def __init__(self, name: str, help_text: str, label_names: tuple[str, ...] = ()) -> None:
        _check_metric_name(name)
        for label in label_names:
            _check_label_name(name, label)
        if len(set(label_names)) != len(label_names):
            raise ConfigError(name, f"duplicate label names {label_names}")
        self.name = name
        self.help_text = help_text
        self.label_names = tuple(label_names)
        self._cells: dict[tuple[str, ...], CellT] = {}
        if not label_names:
            self._cells[()] = self._new_cell()

    def _new_cell(self) -> CellT:
        raise NotImplementedError

    def labels(self, *label_values: str) -> CellT:
        """The cell for these label values (created at 0 on first use)."""
        cell = self._cells.get(label_values)
        if cell is None:
            cell = self._create_cell(label_values)
        return cell

    def _create_cell(self, label_values: tuple[str, ...]) -> CellT:
        if len(label_values) != len(self.label_names):
            raise ValueError(
                f"{self.name} takes {len(self.label_names)} label values "
                f"{self.label_names}, got {label_values!r}"
            )
        key = tuple(str(value) for value in label_values)
        cell = self._cells.get(key)
        if cell is None:
            cell = self._cells[key] = self._new_cell()
        return cell

    def value(self, *label_values: str) -> float:
        """Current value for these label values; 0 if that series was never touched."""
        cell = self._cells.get(label_values)
        return 0.0 if cell is None else cell.value

    def series(self) -> list[tuple[tuple[str, ...], float]]:
        """Every (label values, value) pair, in creation order."""
        return [(labels, cell.value) for labels, cell in self._cells.items()]

    def render_lines(self) -> list[str]:
        lines = [
            f"# HELP {self.name} {escape_help(self.help_text)}",
            f"# TYPE {self.name} {self.kind}",
        ]
        for label_values, cell in self._cells.items():
            labels = format_labels(self.label_names, label_values)
            lines.append(f"{self.name}{labels} {format_value(cell.value)}")
        return lines


class Counter(_Metric[CounterCell]):
    """A monotonically increasing count; its name must end in ``_total``."""

    kind = "counter"

    def __init__(self, name: str, help_text: str, label_names: tuple[str, ...] = ()) -> None:
        if not name.endswith("_total"):
            raise ConfigError(name, "counter names must end in _total")
        super().__init__(name, help_text, label_names)

    def _new_cell(self) -> CounterCell:
        return CounterCell()

    def inc(self, *label_values: str, amount: float = 1.0) -> None:
        self.labels(*label_values).inc(amount)


class Gauge(_Metric[GaugeCell]):
    """A value that can go up and down (open connections, parked requests)."""

    kind = "gauge"

    def _new_cell(self) -> GaugeCell:
        return GaugeCell()

    def inc(self, *label_values: str, amount: float = 1.0) -> None:
        self.labels(*label_values).inc(amount)

    def dec(self, *label_values: str, amount: float = 1.0) -> None:
        self.labels(*label_values).dec(amount)

    def set(self, value: float, *label_values: str) -> None:
        self.labels(*label_values).set(value)


class Histogram(_Metric[HistogramCell]):
    """Observations counted into fixed buckets (``_bucket{le}``, ``_sum``, ``_count``)."""

    kind = "histogram"

    def __init__(
        self,
        name: str,
        help_text: str,
        buckets: Sequence[float],
        label_names: tuple[str, ...] = (),
    ) -> None:
        if "le" in label_names:
            raise ConfigError(name, "a histogram cannot have a label named le")
        self.buckets = check_buckets(name, buckets)
        super().__init__(name, help_text, label_names)

    def _new_cell(self) -> HistogramCell:
        return HistogramCell(self.buckets)

    def observe(self, value: float, *label_values: str) -> None:
        self.labels(*label_values).observe(value)

    def render_lines(self) -> list[str]:
        lines = [
            f"# HELP {self.name} {escape_help(self.help_text)}",
            f"# TYPE {self.name} {self.kind}",
        ]
        for label_values, cell in self._cells.items():
            for bound, running in cell.cumulative():
                labels = format_labels(
                    (*self.label_names, "le"), (*label_values, format_value(bound))
                )
                lines.append(f"{self.name}_bucket{labels} {running}")
            labels = format_labels(self.label_names, label_values)
            lines.append(f"{self.name}_sum{labels} {format_value(cell.sum)}")
            lines.append(f"{self.name}_count{labels} {cell.count}")
        return lines


def check_buckets(name: str, buckets: Sequence[float]) -> tuple[float, ...]:
    """A histogram's finite upper bounds: at least one, strictly increasing, no NaN/±Inf (the
    ``+Inf`` bucket is implicit); ConfigError otherwise."""
    bounds = tuple(float(b) for b in buckets)
    if not bounds:
        raise ConfigError(name, "a histogram needs at least one bucket bound")
    if any(math.isnan(b) or math.isinf(b) for b in bounds):
        raise ConfigError(name, f"bucket bounds must be finite (+Inf is implicit): {bounds}")
    if any(b >= c for b, c in itertools.pairwise(bounds)):
        raise ConfigError(name, f"bucket bounds must increase strictly: {bounds}")
    return bounds


Metric = Counter | Gauge | Histogram
MetricT = TypeVar("MetricT", Counter, Gauge, Histogram)


class Registry:
    """An ordered set of metrics rendered together for one ``/metrics`` endpoint."""

    def __init__(self) -> None:
        self._metrics: dict[str, Metric] = {}

    def counter(self, name: str, help_text: str, label_names: tuple[str, ...] = ()) -> Counter:
        """Register a counter, or return the existing one if defined identically."""
        existing = self._metrics.get(name)
        if existing is None:
            return self._add(Counter(name, help_text, label_names))
        if isinstance(existing, Counter) and existing.label_names == tuple(label_names):
            return existing
        raise ConfigError(name, "already registered with a different type or labels")

    def gauge(self, name: str, help_text: str, label_names: tuple[str, ...] = ()) -> Gauge:
        """Register a gauge, or return the existing one if defined identically."""
        existing = self._metrics.get(name)
        if existing is None:
            return self._add(Gauge(name, help_text, label_names))
        if isinstance(existing, Gauge) and existing.label_names == tuple(label_names):
            return existing
        raise ConfigError(name, "already registered with a different type or labels")

    def histogram(
        self,
        name: str,
        help_text: str,
        buckets: Sequence[float],
        label_names: tuple[str, ...] = (),
    ) -> Histogram:
        """Register a histogram with fixed buckets, or return the existing one if identical."""
        existing = self._metrics.get(name)
        if existing is None:
            return self._add(Histogram(name, help_text, buckets, label_names))
        if (
            isinstance(existing, Histogram)
            and existing.label_names == tuple(label_names)
            and existing.buckets == tuple(float(b) for b in buckets)
        ):
            return existing
        raise ConfigError(name, "already registered with a different type, labels or buckets")

    def _add(self, metric: MetricT) -> MetricT:
        self._metrics[metric.name] = metric
        return metric

    def get(self, name: str) -> Metric | None:
        return self._metrics.get(name)

    def names(self) -> list[str]:
        return list(self._metrics)

    def render(self) -> bytes:
        """All metrics in Prometheus text exposition format 0.0.4."""
        lines: list[str] = []
        for metric in self._metrics.values():
            lines.extend(metric.render_lines())
        if not lines:
            return b""
        return ("\n".join(lines) + "\n").encode("utf-8")


def escape_help(text: str) -> str:
    """HELP text escaping: backslash and newline."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def escape_label_value(value: str) -> str:
    """Label value escaping: backslash, double quote and newline."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def format_labels(names: tuple[str, ...], values: tuple[str, ...]) -> str:
    """``{a="1",b="2"}``, or ``""`` when there are no labels."""
    if not names:
        return ""
    pairs = ",".join(
        f'{name}="{escape_label_value(value)}"' for name, value in zip(names, values, strict=True)
    )
    return "{" + pairs + "}"


def format_value(value: float) -> str:
    """A sample value: integers without a fraction, ``+Inf``/``-Inf``/``NaN`` spelled out."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


def _check_metric_name(name: str) -> None:
    if not _METRIC_NAME.match(name):
        raise ConfigError(name, "not a valid Prometheus metric name")


def _check_label_name(metric: str, label: str) -> None:
    if not _LABEL_NAME.match(label) or label.startswith("__"):
        raise ConfigError(metric, f"label {label!r} is not a valid Prometheus label name")
