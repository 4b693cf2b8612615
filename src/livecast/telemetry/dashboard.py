"""The on-call Grafana dashboard of livecast, built from the panel list below.

``python -m livecast.telemetry.dashboard ops/grafana/livecast.json`` writes the dashboard JSON
that ops/grafana/provisioning/dashboards/livecast.yaml provisions (docs/operations.md); a test
checks the committed file is what this module renders, validates it against Grafana's dashboard
JSON schema and runs every query against a real Prometheus scraping ``livecast up``.

What it reads (metric names agreed in docs/metrics.md): the origin's ``/metrics``
(``livecast_origin_*``, ``livecast_ingest_*``, ``livecast_packager_*``, the CMCD-derived
``livecast_qoe_*``), each nginx tier's ``/edge/metrics`` (``livecast_edge_*{tier,kind,cache,
code}``) and the rehearsal driver's ``/metrics`` (``livecast_rehearsal_*``). Queries use
Grafana's ``$__rate_interval`` and a ``datasource`` variable (any Prometheus; by default the
provisioned one, uid :data:`DATASOURCE_UID`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

UID = "livecast-oncall"
TITLE = "livecast — on call"
DATASOURCE_UID = "livecast-prometheus"  # ops/grafana/provisioning/datasources/livecast.yaml
# The dashboard schema version this JSON is written in: the default of Grafana's dashboard JSON
# schema vendored in ops/grafana/schema/ (the one the test validates against).
SCHEMA_VERSION = 42
RATE = "$__rate_interval"
EDGE = "livecast_edge_requests_total"
ORIGIN = "livecast_origin_requests_total"
# What the dashboard core (dashboard/model.py) counts too: hits among cache lookups, and the
# viewer-facing edges (not the shield) against the origin's media and playlist requests.
CACHE_HIT = 'cache=~"HIT|STALE|UPDATING|REVALIDATED"'
CACHE_LOOKUP = 'cache!~"none|-|BYPASS|"'
EDGE_MEDIA = 'tier=~"edge-.*", kind=~"playlist|part|segment|init"'
ORIGIN_MEDIA = 'type=~"multivariant|playlist-.*|part|segment|init"'
TARGETS = 'role=~"origin|shield|edge|rehearsal"'  # the file_sd labels (prometheus_config)

Unit = Literal["short", "s", "reqps", "bps", "percentunit"]


@dataclass(frozen=True, slots=True)
class Query:
    """One PromQL target of a panel and its series' legend."""

    expr: str
    legend: str


@dataclass(frozen=True, slots=True)
class Panel:
    """A panel: what it shows, what it answers for the on-call engineer, its queries."""

    title: str
    description: str
    queries: tuple[Query, ...]
    unit: Unit = "short"
    kind: Literal["timeseries", "stat"] = "timeseries"
    width: int = 12


@dataclass(frozen=True, slots=True)
class Row:
    title: str
    panels: tuple[Panel, ...]


def quantiles(histogram: str, by: str = "", qs: Sequence[float] = (0.5, 0.95)) -> tuple[Query, ...]:
    """``histogram_quantile`` of a ``_bucket`` rate, one query per quantile."""
    group = f"{by}, le" if by else "le"
    legend_by = " ".join(f"{{{{{b.strip()}}}}}" for b in by.split(",") if b.strip())
    return tuple(
        Query(
            f"histogram_quantile({q}, sum by ({group}) (rate({histogram}_bucket[{RATE}])))",
            f"p{round(q * 100)}{' ' + legend_by if legend_by else ''}",
        )
        for q in qs
    )


def rate(metric: str, by: str = "", selector: str = "") -> str:
    """``sum [by (...)] (rate(metric{selector}[$__rate_interval]))``."""
    grouping = f" by ({by}) " if by else ""
    labels = f"{{{selector}}}" if selector else ""
    return f"sum{grouping}(rate({metric}{labels}[{RATE}]))"


def zero_filled_ratio(numerator: str, denominator: str) -> str:
    """``numerator / denominator`` that is 0 (not absent) where the numerator has no series."""
    return f"({numerator} or {denominator} * 0) / {denominator}"


ROWS: tuple[Row, ...] = (
    Row(
        "Audience and quality of experience",
        (
            Panel(
                "Viewers",
                "How many are watching? Virtual viewers playing now (rehearsal driver) and the "
                "distinct CMCD sessions of the last 30 s per event, as the edges' access logs "
                "(source=edge) and the origin (source=origin) see them.",
                (
                    Query("sum(livecast_rehearsal_viewers)", "rehearsal: playing"),
                    Query(
                        "sum by (event, source) (livecast_qoe_sessions)",
                        "CMCD sessions {{event}} ({{source}})",
                    ),
                ),
                width=8,
            ),
            Panel(
                "Startup time",
                "How long from pressing play to the first frame? Rehearsal viewers' p50/p95 and "
                "the median CMCD startup estimate of sessions started in the last 30 s.",
                (
                    *quantiles("livecast_rehearsal_startup_seconds"),
                    Query(
                        "max by (event, source) (livecast_qoe_startup_seconds)",
                        "CMCD median {{event}} ({{source}})",
                    ),
                ),
                unit="s",
                width=8,
            ),
            Panel(
                "Scrape targets up",
                "Is every livecast process reachable? 1 per origin, shield, edge and rehearsal "
                "driver that Prometheus scraped last time; 0: that process is down or hung.",
                (Query(f"sum by (node) (up{{{TARGETS}}})", "{{node}}"),),
                kind="stat",
                width=8,
            ),
            Panel(
                "Rebuffering ratio",
                "What share of watching time is spent stalled? Rehearsal rebuffer seconds per "
                "viewer-second playing.",
                (
                    Query(
                        f"sum(rate(livecast_rehearsal_rebuffer_seconds_total[{RATE}])) "
                        "/ clamp_min(sum(livecast_rehearsal_viewers), 1)",
                        "rehearsal: stalled s per viewer-s",
                    ),
                ),
                unit="percentunit",
                width=8,
            ),
            Panel(
                "Stalls and buffer starvations per minute",
                "How often do players run dry? Rehearsal stalls, and CMCD requests flagged "
                "buffer-starved (bs) by real players.",
                (
                    Query(f"{rate('livecast_rehearsal_stalls_total')} * 60", "rehearsal stalls"),
                    Query(
                        f"{rate('livecast_qoe_buffer_starvations_total', 'event, source')} * 60",
                        "CMCD bs {{event}} ({{source}})",
                    ),
                ),
                width=8,
            ),
            Panel(
                "Latency behind live",
                "How far behind the live edge do viewers play? Rehearsal p50/p95/p99 (LL-HLS "
                "aims at a few part durations).",
                quantiles("livecast_rehearsal_latency_seconds", qs=(0.5, 0.95, 0.99)),
                unit="s",
                width=8,
            ),
            Panel(
                "Rendition mix (CMCD)",
                "Which bitrates are players fetching? Media requests per second by the CMCD "
                "encoded bitrate (br); a shift to the lowest rung means players are starving.",
                (
                    Query(
                        rate("livecast_qoe_media_requests_total", "bitrate_kbps"),
                        "{{bitrate_kbps}} kbps",
                    ),
                ),
                unit="reqps",
            ),
            Panel(
                "Measured throughput (CMCD mtp)",
                "What throughput do players measure? Median CMCD mtp over the last 30 s.",
                (
                    Query(
                        "max by (event, source) (livecast_qoe_throughput_bits_per_second)",
                        "{{event}} ({{source}})",
                    ),
                ),
                unit="bps",
            ),
        ),
    ),
    Row(
        "Errors",
        (
            Panel(
                "Edge errors by tier",
                "Where do requests fail? 4xx/5xx answers per second by tier and object kind.",
                (
                    Query(
                        rate(EDGE, "tier, kind, code", 'code=~"4xx|5xx"'),
                        "{{tier}} {{kind}} {{code}}",
                    ),
                ),
                unit="reqps",
            ),
            Panel(
                "Edge 5xx ratio by tier",
                "What share of each tier's answers are server errors? 0 when there are none.",
                (
                    Query(
                        zero_filled_ratio(rate(EDGE, "tier", 'code="5xx"'), rate(EDGE, "tier")),
                        "{{tier}}",
                    ),
                ),
                unit="percentunit",
            ),
            Panel(
                "Origin errors",
                "Does the origin refuse or fail requests? 4xx/5xx per second by object type.",
                (Query(rate(ORIGIN, "type, status", 'status=~"[45].."'), "{{type}} {{status}}"),),
                unit="reqps",
            ),
            Panel(
                "Viewer-side errors (rehearsal)",
                "Do viewers see failures? Rehearsal request errors and failed starts per second.",
                (
                    Query(rate("livecast_rehearsal_request_errors_total"), "request errors"),
                    Query(rate("livecast_rehearsal_start_failures_total"), "start failures"),
                ),
                unit="reqps",
            ),
        ),
    ),
    Row(
        "Delivery and origin offload",
        (
            Panel(
                "Origin offload",
                "Do the edges shield the origin? 1 − origin media/playlist requests ÷ the edges' "
                "(shield excluded); near 1 is good, a drop means the caches stopped collapsing.",
                (
                    Query(
                        f"1 - {rate(ORIGIN, selector=ORIGIN_MEDIA)}"
                        f" / {rate(EDGE, selector=EDGE_MEDIA)}",
                        "offload",
                    ),
                ),
                unit="percentunit",
                width=8,
            ),
            Panel(
                "Edge cache hit ratio by tier",
                "Are the caches hitting? Hits (HIT, STALE, UPDATING, REVALIDATED) among cache "
                "lookups, per tier.",
                (
                    Query(
                        zero_filled_ratio(
                            rate(EDGE, "tier", CACHE_HIT), rate(EDGE, "tier", CACHE_LOOKUP)
                        ),
                        "{{tier}}",
                    ),
                ),
                unit="percentunit",
                width=8,
            ),
            Panel(
                "Requests by tier",
                "How much traffic does each tier answer (the origin without Prometheus' scrapes)?",
                (
                    Query(rate(EDGE, "tier"), "{{tier}}"),
                    Query(rate(ORIGIN, selector='type!="metrics"'), "origin"),
                ),
                unit="reqps",
                width=8,
            ),
            Panel(
                "Egress by tier",
                "How many bits per second leave each tier?",
                (
                    Query(f"{rate('livecast_edge_sent_bytes_total', 'tier')} * 8", "{{tier}}"),
                    Query(f"{rate('livecast_origin_response_bytes_total')} * 8", "origin"),
                ),
                unit="bps",
            ),
            Panel(
                "Edge response time p95",
                "Are the edges slow, or is it their upstream? p95 of the whole request and of "
                "the upstream response, by tier and kind (blocking playlist requests wait for "
                "the next part by design).",
                (
                    *quantiles("livecast_edge_request_duration_seconds", "tier, kind", (0.95,)),
                    Query(
                        "histogram_quantile(0.95, sum by (tier, kind, le) "
                        f"(rate(livecast_edge_upstream_response_seconds_bucket[{RATE}])))",
                        "upstream p95 {{tier}} {{kind}}",
                    ),
                ),
                unit="s",
            ),
        ),
    ),
    Row(
        "Ingest and packaging",
        (
            Panel(
                "On air",
                "What are viewers seeing? 1 for the input (primary, backup) or slate on air, "
                "per stream.",
                (
                    Query(
                        "max by (stream, input) (livecast_ingest_on_air)", "{{stream}}: {{input}}"
                    ),
                ),
                width=6,
            ),
            Panel(
                "Encoder bitrate received",
                "Is the encoder's stream arriving whole? The FLV bitrate each input delivers to "
                "the transcoder; 0 while it is on air means a stalled encoder or uplink.",
                (
                    Query(
                        "8 * " + rate("livecast_ingest_received_bytes_total", "stream, input"),
                        "{{stream}}: {{input}}",
                    ),
                ),
                unit="bps",
                width=6,
            ),
            Panel(
                "Encoder publishes and input switches (5 min)",
                "Is the encoder connecting, and is it refused (wrong_key, busy, not_started …)? "
                "Switches between inputs and the slate.",
                (
                    Query(
                        "sum by (result) (increase(livecast_ingest_publishes_total[5m]))",
                        "publish {{result}}",
                    ),
                    Query("sum(increase(livecast_ingest_switches_total[5m]))", "input switches"),
                ),
            ),
            Panel(
                "Packager parts per second",
                "Is the pipeline producing? Parts published per rendition; a rendition at 0 is "
                "frozen for viewers.",
                (Query(rate("livecast_packager_parts_total", "rendition"), "{{rendition}}"),),
                unit="reqps",
            ),
            Panel(
                "Media errors, restarts, drops (5 min)",
                "Is the media path healthy? Unusable encoder output, encoder restarts, media "
                "units dropped by slow readers, recording writes refused.",
                (
                    Query(
                        "sum by (rendition) (increase(livecast_packager_media_errors_total[5m]))",
                        "media errors {{rendition}}",
                    ),
                    Query(
                        "sum(increase(livecast_transcode_restarts_total[5m]))",
                        "transcode restarts",
                    ),
                    Query("sum(increase(livecast_hub_dropped_units_total[5m]))", "dropped units"),
                    Query("sum(increase(livecast_record_errors_total[5m]))", "record errors"),
                ),
            ),
        ),
    ),
    Row(
        "Origin health",
        (
            Panel(
                "Load shedding",
                "Is the origin shedding load? 503s per second by class, and the shed level "
                "(0: none).",
                (
                    Query(rate("livecast_origin_shed_total", "class"), "shed {{class}}"),
                    Query("max(livecast_origin_shed_level)", "shed level"),
                ),
                width=8,
            ),
            Panel(
                "Event-loop lag p90",
                "Is an origin process overloaded? Its event loop's p90 lag.",
                (Query("max by (node) (livecast_origin_loop_lag_seconds)", "{{node}}"),),
                unit="s",
                width=8,
            ),
            Panel(
                "Connections",
                "How many connections are open, and how many requests are parked (blocking "
                "playlist requests waiting for the next part)?",
                (
                    Query("sum by (node) (livecast_origin_connections)", "open {{node}}"),
                    Query("sum(livecast_origin_blocked_requests)", "parked"),
                ),
                width=8,
            ),
            Panel(
                "Session leases",
                "Does the lease store answer? Calls and failures per second (Redis down, hung), "
                "and the session endpoints' answers by result.",
                (
                    Query(rate("livecast_lease_store_round_trips_total"), "lease store calls"),
                    Query(rate("livecast_lease_store_errors_total"), "lease store errors"),
                    Query(
                        rate("livecast_sessions_answered_total", "result"), "sessions {{result}}"
                    ),
                ),
                unit="reqps",
                width=24,
            ),
        ),
    ),
)


GRID_WIDTH = 24
PANEL_HEIGHT = 8


def _datasource() -> dict[str, str]:
    return {"type": "prometheus", "uid": "${datasource}"}


def _panel_json(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, object]:
    targets = [
        {
            "refId": chr(ord("A") + index),
            "datasource": _datasource(),
            "expr": query.expr,
            "legendFormat": query.legend,
            "range": True,
            "editorMode": "code",
        }
        for index, query in enumerate(panel.queries)
    ]
    options: dict[str, object]
    if panel.kind == "stat":
        options = {
            "graphMode": "none",
            "colorMode": "background",
            "justifyMode": "auto",
            "textMode": "value_and_name",
            "wideLayout": True,
            "showPercentChange": False,
            "percentChangeColorMode": "standard",
            "orientation": "auto",
            "reduceOptions": {"calcs": ["lastNotNull"], "values": False, "fields": ""},
        }
        thresholds = [{"value": None, "color": "red"}, {"value": 1, "color": "green"}]
    else:
        options = {
            "legend": {
                "displayMode": "list",
                "placement": "bottom",
                "showLegend": True,
                "calcs": [],
            },
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
        thresholds = [{"value": None, "color": "green"}]
    return {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": _datasource(),
        "gridPos": {"h": PANEL_HEIGHT, "w": panel.width, "x": x, "y": y},
        "targets": targets,
        "options": options,
        "fieldConfig": {
            "defaults": {
                "unit": panel.unit,
                "thresholds": {"mode": "absolute", "steps": thresholds},
            },
            "overrides": [],
        },
    }


def dashboard(rows: Sequence[Row] = ROWS) -> dict[str, object]:
    """The dashboard JSON model: one (open) row per :class:`Row`, its panels laid out left to
    right and wrapped at Grafana's 24-column grid."""
    panels: list[dict[str, object]] = []
    next_id = 1
    y = 0
    for row in rows:
        panels.append(
            {
                "id": next_id,
                "type": "row",
                "title": row.title,
                "collapsed": False,
                "panels": [],
                "gridPos": {"h": 1, "w": GRID_WIDTH, "x": 0, "y": y},
            }
        )
        next_id += 1
        y += 1
        x = 0
        for panel in row.panels:
            if not 0 < panel.width <= GRID_WIDTH:
                raise ValueError(f"panel {panel.title!r}: width {panel.width} is not 1–24")
            if x + panel.width > GRID_WIDTH:
                x, y = 0, y + PANEL_HEIGHT
            panels.append(_panel_json(panel, next_id, x, y))
            next_id += 1
            x += panel.width
        y += PANEL_HEIGHT
    return {
        "uid": UID,
        "title": TITLE,
        "description": "Viewers, startup, rebuffering, latency behind live, errors by tier, "
        "origin offload, ingest and origin health (docs/operations.md).",
        "tags": ["livecast"],
        "timezone": "utc",
        "editable": True,
        "graphTooltip": 1,
        "time": {"from": "now-30m", "to": "now"},
        "refresh": "10s",
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "panels": panels,
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Prometheus",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {"text": "livecast", "value": DATASOURCE_UID},
                    "hide": 0,
                    "refresh": 1,
                }
            ]
        },
        "annotations": {
            "list": [
                {
                    "name": "Annotations & Alerts",
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "type": "dashboard",
                }
            ]
        },
        "links": [],
    }


def render(rows: Sequence[Row] = ROWS) -> str:
    """The dashboard as the committed file holds it (2-space JSON, one trailing newline)."""
    return json.dumps(dashboard(rows), indent=2, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m livecast.telemetry.dashboard [FILE]``: write the JSON (stdout without FILE)."""
    args = list(sys.argv[1:] if argv is None else argv)
    text = render()
    if args:
        Path(args[0]).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
