"""A small Prometheus registry: counters and gauges with labels, rendered as text format 0.0.4.

Pure code: no threads, no clock, no I/O. A metric owns one :class:`CounterCell` or
:class:`GaugeCell` per combination of label values; hot paths resolve the cell once with
``metric.labels(...)`` and then call ``cell.inc()`` (or touch ``cell.value``) directly.

    registry = Registry()
    requests = registry.counter("app_requests_total", "Requests served.", ("status",))
    requests.inc("200")
    ok = requests.labels("200")   # pre-resolved cell for a hot path
    ok.inc()
    registry.render()             # b'# HELP app_requests_total Requests served.\\n...'

Definition mistakes (bad names, a name registered twice with a different shape) raise
:class:`~livecast.errors.ConfigError`; misuse of values (wrong number of label values, a
counter going down) raises ``ValueError``.
"""

from __future__ import annotations

import math
import re
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


CellT = TypeVar("CellT", CounterCell, GaugeCell)


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


Metric = Counter | Gauge
CounterOrGauge = TypeVar("CounterOrGauge", Counter, Gauge)


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

    def _add(self, metric: CounterOrGauge) -> CounterOrGauge:
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
