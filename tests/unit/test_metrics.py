"""The Prometheus registry: text format 0.0.4, escaping, counters and gauges."""

from __future__ import annotations

import math

import pytest

from livecast.errors import ConfigError
from livecast.telemetry.metrics import (
    CONTENT_TYPE,
    Counter,
    Gauge,
    Registry,
    escape_label_value,
    format_value,
)


def test_render_has_help_type_and_samples_in_registration_order() -> None:
    registry = Registry()
    requests = registry.counter("app_requests_total", "Requests served.", ("type", "status"))
    open_now = registry.gauge("app_open", "Open connections.")
    requests.inc("part", "200")
    requests.inc("part", "200")
    requests.inc("playlist", "404", amount=3)
    open_now.set(7)

    assert registry.render() == (
        b"# HELP app_requests_total Requests served.\n"
        b"# TYPE app_requests_total counter\n"
        b'app_requests_total{type="part",status="200"} 2\n'
        b'app_requests_total{type="playlist",status="404"} 3\n'
        b"# HELP app_open Open connections.\n"
        b"# TYPE app_open gauge\n"
        b"app_open 7\n"
    )


def test_labelled_metric_without_series_renders_only_help_and_type() -> None:
    registry = Registry()
    registry.counter("x_total", "Nothing yet.", ("reason",))
    assert registry.render() == b"# HELP x_total Nothing yet.\n# TYPE x_total counter\n"


def test_empty_registry_renders_nothing() -> None:
    assert Registry().render() == b""


def test_label_values_escape_backslash_quote_and_newline() -> None:
    registry = Registry()
    counter = registry.counter("odd_total", "Odd labels.", ("path",))
    counter.inc('a\\b"c\nd')
    assert b'odd_total{path="a\\\\b\\"c\\nd"} 1\n' in registry.render()
    assert escape_label_value('"') == '\\"'


def test_help_text_escapes_backslash_and_newline_but_not_quotes() -> None:
    registry = Registry()
    registry.gauge("g", 'line one\nback\\slash "quoted"')
    assert b'# HELP g line one\\nback\\\\slash "quoted"\n' in registry.render()


def test_rendered_text_is_utf8() -> None:
    registry = Registry()
    registry.counter("u_total", "Unicode.", ("name",)).inc("café")
    assert 'u_total{name="café"} 1'.encode() in registry.render()


def test_counter_cells_are_shared_and_only_go_up() -> None:
    counter = Counter("c_total", "A counter.", ("k",))
    cell = counter.labels("a")
    assert counter.labels("a") is cell
    cell.inc()
    cell.inc(2.5)
    counter.inc("a")
    assert counter.value("a") == 4.5
    assert counter.value("never") == 0.0
    with pytest.raises(ValueError):
        cell.inc(-1)


def test_gauge_goes_up_down_and_is_set() -> None:
    gauge = Gauge("g", "A gauge.", ("k",))
    gauge.inc("a")
    gauge.inc("a", amount=4)
    gauge.dec("a")
    assert gauge.value("a") == 4
    gauge.set(-2.5, "a")
    assert gauge.value("a") == -2.5
    gauge.labels("b").set(1)
    assert gauge.series() == [(("a",), -2.5), (("b",), 1.0)]


def test_wrong_number_of_label_values_is_refused() -> None:
    counter = Counter("c_total", "A counter.", ("a", "b"))
    with pytest.raises(ValueError):
        counter.inc("only-one")


def test_non_string_label_values_map_to_one_series() -> None:
    counter = Counter("c_total", "A counter.", ("status",))
    counter.labels(200).inc()  # type: ignore[arg-type]
    counter.labels("200").inc()
    counter.labels(200).inc()  # type: ignore[arg-type]
    assert counter.series() == [(("200",), 3.0)]


def test_counter_names_must_end_in_total() -> None:
    with pytest.raises(ConfigError):
        Counter("requests", "No suffix.")


@pytest.mark.parametrize("name", ["1abc", "has-dash", "", "sp ace"])
def test_invalid_metric_names_are_refused(name: str) -> None:
    with pytest.raises(ConfigError):
        Gauge(name, "Bad.")


@pytest.mark.parametrize("label", ["__reserved", "1x", "a-b"])
def test_invalid_label_names_are_refused(label: str) -> None:
    with pytest.raises(ConfigError):
        Gauge("g", "Bad label.", (label,))


def test_duplicate_label_names_are_refused() -> None:
    with pytest.raises(ConfigError):
        Gauge("g", "Twice.", ("a", "a"))


def test_registry_returns_the_same_metric_for_an_identical_definition() -> None:
    registry = Registry()
    first = registry.counter("c_total", "A counter.", ("k",))
    assert registry.counter("c_total", "A counter.", ("k",)) is first
    assert registry.get("c_total") is first
    assert registry.names() == ["c_total"]


def test_registry_refuses_a_conflicting_definition() -> None:
    registry = Registry()
    registry.counter("c_total", "A counter.", ("k",))
    with pytest.raises(ConfigError):
        registry.counter("c_total", "A counter.", ("other",))
    registry.gauge("g", "A gauge.")
    with pytest.raises(ConfigError):
        registry.gauge("g", "A gauge.", ("k",))


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.0, "0"),
        (3.0, "3"),
        (-2.0, "-2"),
        (0.25, "0.25"),
        (1e20, "1e+20"),
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
        (math.nan, "NaN"),
    ],
)
def test_value_formatting(value: float, text: str) -> None:
    assert format_value(value) == text


def test_content_type_is_text_format_0_0_4() -> None:
    assert CONTENT_TYPE == "text/plain; version=0.0.4; charset=utf-8"
