"""The scrape targets and config of livecast.telemetry.prometheus_config: what Prometheus is
told to scrape for a topology, and the clear errors for addresses it could not scrape."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from livecast.cli import _parser
from livecast.errors import ConfigError
from livecast.telemetry.prometheus_config import (
    ScrapeSettings,
    TargetGroup,
    file_sd_json,
    host_port,
    prometheus_yml,
    rehearsal_targets,
    topology_targets,
)
from livecast.telemetry.targets_file import write_atomically


def test_a_topology_gives_one_group_per_process_with_its_path_role_and_node() -> None:
    groups = topology_targets(
        ["http://127.0.0.1:8080", "http://127.0.0.1:40001"],
        [
            ("shield", "http://127.0.0.1:39000"),
            ("edge-0", "http://127.0.0.1:8081"),
            ("edge-1", "http://[::1]:8082"),
        ],
        ["http://127.0.0.1:9500"],
    )
    entries = json.loads(file_sd_json(groups))
    assert entries == [
        {
            "targets": ["127.0.0.1:8080"],
            "labels": {
                "__metrics_path__": "/metrics",
                "job": "livecast",
                "node": "origin-0",
                "role": "origin",
            },
        },
        {
            "targets": ["127.0.0.1:40001"],
            "labels": {
                "__metrics_path__": "/metrics",
                "job": "livecast",
                "node": "origin-1",
                "role": "origin",
            },
        },
        {
            "targets": ["127.0.0.1:39000"],
            "labels": {
                "__metrics_path__": "/edge/metrics",
                "job": "livecast",
                "node": "shield",
                "role": "shield",
            },
        },
        {
            "targets": ["127.0.0.1:8081"],
            "labels": {
                "__metrics_path__": "/edge/metrics",
                "job": "livecast",
                "node": "edge-0",
                "role": "edge",
            },
        },
        {
            "targets": ["[::1]:8082"],
            "labels": {
                "__metrics_path__": "/edge/metrics",
                "job": "livecast",
                "node": "edge-1",
                "role": "edge",
            },
        },
        {
            "targets": ["127.0.0.1:9500"],
            "labels": {
                "__metrics_path__": "/metrics",
                "job": "livecast",
                "node": "rehearsal",
                "role": "rehearsal",
            },
        },
    ]


def test_no_target_label_is_named_tier_since_the_edges_series_carry_their_own() -> None:
    groups = topology_targets(["http://127.0.0.1:8080"], [("edge-0", "http://127.0.0.1:8081")])
    assert all("tier" not in g.labels for g in groups)


def test_several_rehearsal_drivers_are_numbered() -> None:
    groups = topology_targets(
        ["http://127.0.0.1:8080"], rehearsal_base_urls=["http://h:1", "http://h:2"]
    )
    assert [g.labels["node"] for g in groups[1:]] == ["rehearsal-0", "rehearsal-1"]
    (alone,) = rehearsal_targets(["http://127.0.0.1:9500"])
    assert alone.as_json() == {
        "targets": ["127.0.0.1:9500"],
        "labels": {
            "__metrics_path__": "/metrics",
            "job": "livecast",
            "node": "rehearsal",
            "role": "rehearsal",
        },
    }


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:8081", "127.0.0.1:8081"),
        ("http://127.0.0.1:8081/", "127.0.0.1:8081"),
        ("http://[::1]:8081", "[::1]:8081"),
        ("http://edge.example:80", "edge.example:80"),
    ],
)
def test_host_port_of_a_base_url(url: str, expected: str) -> None:
    assert host_port(url) == expected


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://127.0.0.1:8081", "not an http:// URL"),
        ("127.0.0.1:8081", "not an http:// URL"),
        ("http://127.0.0.1", "names no host and port"),
        ("http://:8081", "names no host and port"),
        ("http://127.0.0.1:99999", "out of range"),
        ("http://127.0.0.1:8081/live/main.m3u8", "not a base URL"),
        ("http://127.0.0.1:8081/?x=1", "not a base URL"),
    ],
)
def test_an_address_prometheus_could_not_scrape_is_refused_clearly(url: str, why: str) -> None:
    with pytest.raises(ConfigError, match=why):
        host_port(url)


def test_a_topology_without_origin_or_with_odd_tier_names_is_refused() -> None:
    with pytest.raises(ConfigError, match="at least one origin"):
        topology_targets([])
    with pytest.raises(ConfigError, match="neither shield nor edge-N"):
        topology_targets(["http://h:1"], [("cdn", "http://h:2")])
    with pytest.raises(ConfigError, match="repeat"):
        topology_targets(["http://h:1"], [("edge-0", "http://h:2"), ("edge-0", "http://h:3")])


@pytest.mark.parametrize(
    ("kwargs", "why"),
    [
        ({"targets": ()}, "at least one"),
        ({"targets": ("h",)}, "not host:port"),
        ({"targets": ("h:0",)}, "not host:port"),
        ({"targets": ("h:1",), "metrics_path": "metrics"}, "does not start with /"),
        ({"targets": ("h:1",), "labels": {"bad-name": "x"}}, "not a Prometheus label name"),
        ({"targets": ("h:1",), "labels": {"__scheme__": "https"}}, "reserved"),
    ],
)
def test_a_bad_target_group_is_refused(kwargs: dict[str, object], why: str) -> None:
    with pytest.raises(ConfigError, match=why):
        TargetGroup(**kwargs)  # type: ignore[arg-type]


def test_the_scrape_config_reads_the_target_files_at_the_chosen_intervals() -> None:
    text = prometheus_yml(
        ["/run/livecast/targets.json", "/etc/x/*.json"],
        ScrapeSettings(scrape_interval="1s", scrape_timeout="900ms", refresh_interval="1s"),
    )
    assert text.splitlines()[1:] == [
        "global:",
        "  scrape_interval: 1s",
        "  scrape_timeout: 900ms",
        "  evaluation_interval: 15s",
        "scrape_configs:",
        '  - job_name: "livecast"',
        "    file_sd_configs:",
        "      - files:",
        '          - "/run/livecast/targets.json"',
        '          - "/etc/x/*.json"',
        "        refresh_interval: 1s",
    ]


@pytest.mark.parametrize(
    ("kwargs", "why"),
    [
        ({"scrape_interval": "5"}, "not a duration"),
        ({"scrape_interval": "0s"}, "not a duration"),
        ({"refresh_interval": "1h"}, "not a duration"),
        ({"scrape_interval": "1s", "scrape_timeout": "2s"}, "longer than scrape_interval"),
        ({"scrape_interval": "1m", "scrape_timeout": "61s"}, "longer than scrape_interval"),
        ({"job": "live cast"}, "not a job name"),
    ],
)
def test_bad_scrape_settings_are_refused(kwargs: dict[str, str], why: str) -> None:
    with pytest.raises(ConfigError, match=why):
        ScrapeSettings(**kwargs)


def test_a_scrape_config_without_target_files_is_refused() -> None:
    with pytest.raises(ConfigError, match="at least one target file"):
        prometheus_yml([])


def test_the_targets_file_is_replaced_whole(tmp_path: Path) -> None:
    path = tmp_path / "sd" / "targets.json"
    write_atomically(path, "[]\n")
    write_atomically(path, file_sd_json(topology_targets(["http://127.0.0.1:8080"])))
    assert json.loads(path.read_text())[0]["targets"] == ["127.0.0.1:8080"]
    assert [p.name for p in path.parent.iterdir()] == ["targets.json"]  # no temporary left


def test_livecast_up_takes_a_prometheus_targets_file() -> None:
    args = _parser().parse_args(["up", "--prometheus-targets", "/tmp/t.json"])
    assert args.prometheus_targets == "/tmp/t.json"
    assert _parser().parse_args(["up"]).prometheus_targets is None
