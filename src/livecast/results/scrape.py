"""Tier counters from the stack's own Prometheus text (format 0.0.4); pure, no I/O.

A rehearsal scrapes each tier's ``/metrics`` once a second and turns the text into one
``(t_s, requests_total, responses_5xx_total)`` sample for :meth:`RunStats.record_tier_sample`:

    totals = request_totals(body.decode(), "livecast_origin_requests_total")
    stats.record_tier_sample("origin", t_s, totals.requests, totals.responses_5xx)

Samples are ``name{label="value",...} value [timestamp]``; comment lines (``# HELP``, ``# TYPE``)
and blank lines are skipped. A malformed line raises ``ValueError`` naming the line.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

ORIGIN_REQUESTS_METRIC = "livecast_origin_requests_total"
ORIGIN_BYTES_METRIC = "livecast_origin_response_bytes_total"
# the origin's load-shedding 503s (origin.shedding): answers the operator configured, not
# failures — counted apart from the tier's 5xx (docs/edge.md, "Load shedding")
ORIGIN_SHED_METRIC = "livecast_origin_shed_total"

_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}


@dataclass(frozen=True)
class PrometheusSample:
    name: str
    labels: tuple[tuple[str, str], ...]
    value: float

    def label(self, name: str) -> str | None:
        return next((value for key, value in self.labels if key == name), None)


@dataclass(frozen=True)
class RequestTotals:
    requests: float
    responses_5xx: float  # without the shed ones (``shed``)
    bytes: float = 0.0  # of ``bytes_metric``, when asked for
    shed: float = 0.0  # 503s of the origin's load shedding, by design


def _parse_labels(text: str, line: str) -> tuple[tuple[tuple[str, str], ...], int]:
    """Labels from ``text`` just after ``{``; returns them and the index just after ``}``."""
    labels: list[tuple[str, str]] = []
    i = 0
    while True:
        while i < len(text) and text[i] in " ,":
            i += 1
        if i < len(text) and text[i] == "}":
            return tuple(labels), i + 1
        equals = text.find("=", i)
        if equals < 0 or equals + 1 >= len(text) or text[equals + 1] != '"':
            raise ValueError(f"malformed labels in metrics line {line!r}")
        key = text[i:equals].strip()
        value_chars: list[str] = []
        i = equals + 2
        while i < len(text) and text[i] != '"':
            if text[i] == "\\" and i + 1 < len(text):
                value_chars.append(_ESCAPES.get(text[i + 1], "\\" + text[i + 1]))
                i += 2
            else:
                value_chars.append(text[i])
                i += 1
        if i >= len(text):
            raise ValueError(f"unterminated label value in metrics line {line!r}")
        labels.append((key, "".join(value_chars)))
        i += 1


def _parse_value(text: str, line: str) -> float:
    fields = text.split()
    if not fields:
        raise ValueError(f"no value in metrics line {line!r}")
    special = {"+Inf": math.inf, "-Inf": -math.inf, "NaN": math.nan}
    if fields[0] in special:
        return special[fields[0]]
    try:
        return float(fields[0])
    except ValueError as error:
        raise ValueError(f"bad value in metrics line {line!r}") from error


def parse_prometheus_text(text: str) -> list[PrometheusSample]:
    samples = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        brace = line.find("{")
        space = line.find(" ")
        if brace >= 0 and (space < 0 or brace < space):
            name = line[:brace]
            labels, end = _parse_labels(line[brace + 1 :], line)
            value = _parse_value(line[brace + 1 + end :], line)
        else:
            if space < 0:
                raise ValueError(f"no value in metrics line {line!r}")
            name, labels, value = line[:space], (), _parse_value(line[space:], line)
        samples.append(PrometheusSample(name, labels, value))
    return samples


def request_totals(
    text: str,
    metric: str = ORIGIN_REQUESTS_METRIC,
    status_label: str = "status",
    bytes_metric: str = ORIGIN_BYTES_METRIC,
) -> RequestTotals:
    """Sum of ``metric`` over all label values, and of its samples whose status is 5xx — less the
    load-shedding 503s (:data:`ORIGIN_SHED_METRIC`: deliberate answers, counted in ``shed``);
    and the sum of ``bytes_metric``."""
    requests = responses_5xx = written = shed = 0.0
    for sample in parse_prometheus_text(text):
        if sample.name == bytes_metric:
            written += sample.value
        if sample.name == ORIGIN_SHED_METRIC:
            shed += sample.value
        if sample.name != metric:
            continue
        requests += sample.value
        status = sample.label(status_label) or ""
        if len(status) == 3 and status.startswith("5"):
            responses_5xx += sample.value
    return RequestTotals(requests, max(0.0, responses_5xx - shed), written, shed)


def counts_by_label(
    text: str, metric: str, label: str, where: Mapping[str, str] | None = None
) -> dict[str, int]:
    """``metric``'s samples (those whose labels match ``where``) summed by one label's values —
    e.g. the origin's shed 503s by ``class``; a malformed text counts as none."""
    try:
        samples = parse_prometheus_text(text)
    except ValueError:
        return {}
    wanted = tuple((where or {}).items())
    counts: dict[str, int] = {}
    for sample in samples:
        if sample.name == metric and all(sample.label(k) == v for k, v in wanted):
            key = sample.label(label) or "?"
            counts[key] = counts.get(key, 0) + int(sample.value)
    return dict(sorted(counts.items()))


def responses_of_type(
    text: str, object_type: str, metric: str = ORIGIN_REQUESTS_METRIC
) -> dict[str, int]:
    """The origin's responses of one object type (its ``type`` label, e.g. ``playlist-dvr``) by
    status, from its /metrics text ({} when it has none); a malformed text counts as none."""
    return counts_by_label(text, metric, "status", {"type": object_type})
