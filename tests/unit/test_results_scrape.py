"""Tier counters from Prometheus text: parsing, escapes, totals; the registry's own output."""

from __future__ import annotations

import math

import pytest

from livecast.results.scrape import counts_by_label, parse_prometheus_text, request_totals
from livecast.results.stats import RunStats
from livecast.telemetry.metrics import Registry


def test_totals_from_the_registrys_own_rendering() -> None:
    registry = Registry()
    requests = registry.counter(
        "livecast_origin_requests_total", "Responses by type and status.", ("type", "status")
    )
    requests.inc("part", "200", amount=900)
    requests.inc("playlist", "200", amount=95)
    requests.inc("playlist", "503", amount=5)
    requests.inc("part", "404", amount=3)
    registry.gauge("livecast_origin_connections", "Open connections.").set(12)
    totals = request_totals(registry.render().decode())
    assert (totals.requests, totals.responses_5xx) == (1003.0, 5.0)


def test_parse_labels_escapes_specials_and_timestamps() -> None:
    text = (
        "# HELP x_total Things.\n"
        "# TYPE x_total counter\n"
        'x_total{path="a\\"b\\\\c\\nd",status="500"} 7 1700000000000\n'
        "up 1\n"
        'g{le="+Inf"} +Inf\n'
        "nan_gauge NaN\n"
        "\n"
    )
    samples = parse_prometheus_text(text)
    assert samples[0].name == "x_total"
    assert samples[0].label("path") == 'a"b\\c\nd' and samples[0].label("status") == "500"
    assert samples[0].value == 7.0
    assert samples[1].labels == () and samples[1].value == 1.0
    assert samples[2].value == math.inf and math.isnan(samples[3].value)
    assert request_totals(text, "x_total").responses_5xx == 7.0


@pytest.mark.parametrize("line", ["novalue", 'x{a="1"}', 'x{a="1} 2', "x{a} 3", "x abc"])
def test_malformed_lines_are_named(line: str) -> None:
    with pytest.raises(ValueError, match="metrics line"):
        parse_prometheus_text(line)


def test_scraped_totals_feed_tier_rates() -> None:
    stats = RunStats()
    for t, (ok, failed) in enumerate([(0, 0), (100, 0), (250, 10)]):
        text = (
            f'livecast_origin_requests_total{{type="part",status="200"}} {ok}\n'
            f'livecast_origin_requests_total{{type="part",status="503"}} {failed}\n'
        )
        totals = request_totals(text)
        stats.record_tier_sample("origin", float(t), totals.requests, totals.responses_5xx)
    assert stats.tiers["origin"].requests_per_s() == [(1.0, 100.0), (2.0, 160.0)]
    assert stats.tiers["origin"].five_xx_rate == pytest.approx(10 / 260)


def test_load_shedding_503s_are_counted_apart_from_the_failures() -> None:
    registry = Registry()
    requests = registry.counter(
        "livecast_origin_requests_total", "Responses by type and status.", ("type", "status")
    )
    shed = registry.counter("livecast_origin_shed_total", "Shed.", ("class",))
    requests.inc("part", "200", amount=900)
    requests.inc("playlist-dvr", "503", amount=80)  # shed
    requests.inc("segment", "503", amount=20)  # 15 shed, 5 a failure
    requests.inc("part", "500", amount=2)
    shed.inc("dvr", amount=80)
    shed.inc("classic", amount=15)
    totals = request_totals(registry.render().decode())
    assert (totals.requests, totals.responses_5xx, totals.shed) == (1002.0, 7.0, 95.0)
    text = registry.render().decode()
    shed_metric = "livecast_origin_shed_total"
    assert counts_by_label(text, shed_metric, "class") == {"classic": 15, "dvr": 80}
    assert counts_by_label("garbage{", shed_metric, "class") == {}
