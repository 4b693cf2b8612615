"""ops/grafana/livecast.json: up to date with its builder (livecast.telemetry.dashboard), valid
against Grafana's own dashboard JSON schema (vendored in ops/grafana/schema/, see its README:
no Grafana server can be installed here), laid out on Grafana's grid, and reading only metrics
that livecast registers or that the helpers agreed on (docs/metrics.md)."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import yaml

from livecast.telemetry import dashboard as builder

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "ops" / "grafana" / "livecast.json"
SCHEMAS = ROOT / "ops" / "grafana" / "schema"
PROVISIONING = ROOT / "ops" / "grafana" / "provisioning"
# Agreed names whose producers may not have landed yet: the edges' /edge/metrics (nginx Lua) and
# the origin's CMCD QoE gauges. Once a name shows up in src/ it is checked like the others.
AGREED_ELSEWHERE = {
    "livecast_edge_requests_total",
    "livecast_edge_sent_bytes_total",
    "livecast_edge_request_duration_seconds",
    "livecast_edge_upstream_response_seconds",
    "livecast_qoe_sessions",
    "livecast_qoe_buffer_starvations_total",
    "livecast_qoe_media_requests_total",
    "livecast_qoe_throughput_bits_per_second",
    "livecast_qoe_startup_seconds",
}


def load() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def schema(name: str, definition: str | None = None) -> jsonschema_rs.Validator:
    document = json.loads((SCHEMAS / f"{name}.jsonschema.json").read_text())
    if definition is not None:  # one definition of a file without a root ($ref) schema
        document = {**document, "$ref": f"#/definitions/{definition}"}
    return jsonschema_rs.validator_for(document)


def errors(validator: jsonschema_rs.Validator, instance: object) -> list[str]:
    return [f"{list(e.instance_path)}: {e.message}" for e in validator.iter_errors(instance)]


def panels(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in data["panels"] if p["type"] != "row"]


def test_the_committed_dashboard_is_what_the_builder_renders() -> None:
    assert DASHBOARD.read_text() == builder.render(), (
        "regenerate: python -m livecast.telemetry.dashboard ops/grafana/livecast.json"
    )


def test_the_dashboard_is_valid_against_grafanas_dashboard_schema() -> None:
    data = load()
    assert errors(schema("dashboard"), data) == []
    assert (
        data["schemaVersion"]
        == json.loads((SCHEMAS / "dashboard.jsonschema.json").read_text())["definitions"][
            "Dashboard"
        ]["properties"]["schemaVersion"]["default"]
    )


def test_the_schema_has_teeth_a_misspelt_or_mistyped_key_fails() -> None:
    validator = schema("dashboard")
    data = load()
    misspelt = copy.deepcopy(data)
    misspelt["panels"][1]["titel"] = "x"
    assert errors(validator, misspelt)
    off_grid = copy.deepcopy(data)
    off_grid["panels"][1]["gridPos"]["w"] = 25
    assert errors(validator, off_grid)
    no_templating = {k: v for k, v in data.items() if k != "templating"}
    assert errors(validator, no_templating)


def test_every_target_is_a_valid_prometheus_query_on_the_templated_datasource() -> None:
    validator = schema("prometheus")
    for panel in panels(load()):
        assert panel["targets"], panel["title"]
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(set(ref_ids)) == len(ref_ids), panel["title"]
        for target in panel["targets"]:
            assert errors(validator, target) == [], (panel["title"], target)
            assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}


def test_panel_options_are_valid_for_their_panel_type() -> None:
    by_type = {
        "timeseries": schema("timeseries", "Options"),
        "stat": schema("stat", "Options"),
    }
    for panel in panels(load()):
        assert errors(by_type[panel["type"]], panel["options"]) == [], panel["title"]


def test_the_datasource_variable_defaults_to_the_provisioned_prometheus() -> None:
    (variable,) = load()["templating"]["list"]
    assert variable["type"] == "datasource" and variable["query"] == "prometheus"
    provisioned = yaml.safe_load((PROVISIONING / "datasources" / "livecast.yaml").read_text())
    (source,) = provisioned["datasources"]
    assert source["type"] == "prometheus"
    assert variable["current"]["value"] == source["uid"] == builder.DATASOURCE_UID
    providers = yaml.safe_load((PROVISIONING / "dashboards" / "livecast.yaml").read_text())
    assert providers["apiVersion"] == 1 and providers["providers"][0]["type"] == "file"


def test_panels_tile_the_grid_without_overlap_and_ids_are_unique() -> None:
    data = load()
    ids = [p["id"] for p in data["panels"]]
    assert len(set(ids)) == len(ids)
    taken: set[tuple[int, int]] = set()
    for panel in data["panels"]:
        g = panel["gridPos"]
        assert g["x"] + g["w"] <= 24, panel["title"]
        cells = {
            (x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])
        }
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells


def test_the_on_call_questions_each_have_a_described_panel() -> None:
    titles = {p["title"]: p for p in panels(load())}
    for wanted in (
        "Viewers",
        "Startup time",
        "Rebuffering ratio",
        "Latency behind live",
        "Edge errors by tier",
        "Origin errors",
        "Origin offload",
        "Edge cache hit ratio by tier",
        "On air",
        "Packager parts per second",
        "Load shedding",
        "Event-loop lag p90",
        "Session leases",
    ):
        assert wanted in titles, wanted
    # each description opens with the question the panel answers
    assert all("?" in p["description"] for p in titles.values()), titles.keys()


def test_every_metric_read_is_registered_by_livecast_or_agreed() -> None:
    source = "\n".join(p.read_text() for p in (ROOT / "src" / "livecast").rglob("*.py"))
    source = source.replace(Path(builder.__file__).read_text(), "")  # not the dashboard itself
    used: set[str] = set()
    for panel in panels(load()):
        for target in panel["targets"]:
            for name in re.findall(r"\b(livecast_[a-z_]+)", target["expr"]):
                used.add(re.sub(r"_(bucket|sum|count)$", "", name))
    assert len(used) > 25
    unknown = {n for n in used if f'"{n}"' not in source and n not in AGREED_ELSEWHERE}
    assert not unknown, f"metrics no livecast code registers: {sorted(unknown)}"


def test_a_panel_wider_than_the_grid_is_refused() -> None:
    wide = builder.Row("r", (builder.Panel("p", "d", (builder.Query("up", "x"),), width=25),))
    with pytest.raises(ValueError, match="width 25"):
        builder.dashboard([wide])
