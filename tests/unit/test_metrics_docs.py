"""docs/metrics.md documents every metric the livecast processes register, and the names follow
the Prometheus conventions (https://prometheus.io/docs/practices/naming/: "should have a suffix
describing the unit, in plural form … an accumulating count has total as a suffix"; "use base
units (e.g. seconds, bytes …)").

The names are read from the source, not from a running process: every ``counter("…"``,
``gauge("…"``, ``histogram("…"`` call in ``src/`` (whatever the registry is called there), every
``METRIC_… = "livecast_…"`` constant (the rehearsal driver registers its metrics through those),
and the nginx Lua exporter's names (``edge.metrics_lua.METRIC_NAMES``). Code ⊆ docs: a name the
docs list ahead of the code (a helper still writing it) is fine."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from livecast.edge.metrics_lua import METRIC_NAMES, REQUEST_DURATION, UPSTREAM_RESPONSE

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "metrics.md"
CALL = re.compile(r"\b(counter|gauge|histogram)\(\s*\"(livecast_[a-z0-9_]+)\"")
CONSTANT = re.compile(r"^METRIC_[A-Z0-9_]+\s*(?::[^=]+)?=\s*\"(livecast_[a-z0-9_]+)\"", re.M)
# the documented rows: | `name` | type | labels | meaning |
ROW = re.compile(r"^\| `(livecast_[a-z0-9_]+)` \| (counter|gauge|histogram) \|", re.M)
UNITS = ("_seconds", "_bytes", "_bits_per_second")
BAD_UNITS = re.compile(r"_(ms|msec|millis|milliseconds|us|kb|kib|mb|mib|kbps|minutes|hours)(_|$)")


def registered() -> dict[str, str]:
    """name → kind ("counter", "gauge", "histogram", or "" when only a constant names it)."""
    names: dict[str, str] = {}
    for path in sorted((ROOT / "src").rglob("*.py")):
        text = path.read_text()
        for kind, name in CALL.findall(text):
            names[name] = kind
        for name in CONSTANT.findall(text):
            names.setdefault(name, "")
    names.setdefault(METRIC_NAMES[0], "counter")
    names.setdefault(METRIC_NAMES[1], "counter")
    names.setdefault(REQUEST_DURATION, "histogram")
    names.setdefault(UPSTREAM_RESPONSE, "histogram")
    return names


def documented() -> dict[str, str]:
    return dict(ROW.findall(DOCS.read_text()))


def test_the_source_is_read() -> None:
    names = registered()
    # one of each way of registering: a registry call, a constant, the Lua exporter
    assert names["livecast_origin_requests_total"] == "counter"
    assert names["livecast_ingest_on_air"] == "gauge"
    assert "livecast_rehearsal_stalls_total" in names
    assert names["livecast_edge_request_duration_seconds"] == "histogram"
    assert len(names) >= 40


def test_every_registered_metric_is_documented_with_its_type() -> None:
    docs = documented()
    missing = sorted(set(registered()) - set(docs))
    assert not missing, f"not in docs/metrics.md: {missing}"
    wrong = {n: (k, docs[n]) for n, k in registered().items() if k and docs[n] != k}
    assert not wrong, f"type in docs/metrics.md differs from the code: {wrong}"


def naming_problems(name: str, kind: str) -> list[str]:
    """What is wrong with a metric ``name`` of ``kind`` (empty: nothing)."""
    problems = []
    if not re.fullmatch(r"livecast_[a-z][a-z0-9]*(_[a-z0-9]+)*", name):
        problems.append("not livecast_snake_case")
    if kind == "counter" and not name.endswith("_total"):
        problems.append("a counter must end in _total")
    if kind != "counter" and name.endswith("_total"):
        problems.append("only counters end in _total")
    if BAD_UNITS.search(name):
        problems.append("not a base unit")
    timed = re.search(r"_(duration|latency|time|lag|startup|gap|response)(_|$)", name)
    if kind == "histogram" and timed and not name.endswith("_seconds"):
        problems.append("a histogram of time must be in _seconds")
    return problems


def test_every_metric_name_follows_the_conventions() -> None:
    names = {**documented(), **{n: k for n, k in registered().items() if k}}
    problems = {name: naming_problems(name, kind) for name, kind in names.items()}
    assert not {name: p for name, p in problems.items() if p}


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("livecast_requests", "counter"),
        ("livecast_viewers_total", "gauge"),
        ("livecast_startup_ms", "histogram"),
        ("livecast_request_duration", "histogram"),
        ("livecast_sent_kb_total", "counter"),
        ("livecastRequests_total", "counter"),
    ],
)
def test_the_conventions_check_refuses_bad_names(name: str, kind: str) -> None:
    assert naming_problems(name, kind)


def test_units_of_the_documented_metrics() -> None:
    """Every name with a unit carries a base unit listed in the conventions."""
    for name in documented():
        if re.search(r"_(seconds|bytes|bits)", name):
            assert any(unit in name for unit in UNITS), name
