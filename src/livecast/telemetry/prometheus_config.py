"""What Prometheus scrapes in a running livecast: file_sd target groups and a scrape config.

Pure code (no I/O, no clock): :func:`topology_targets` turns the addresses of a running
``livecast up`` (its origins, shield and edges, optionally a rehearsal driver's metrics port)
into :class:`TargetGroup` s; :func:`file_sd_json` renders them as a file for Prometheus's file
service discovery, :func:`prometheus_yml` renders a scrape configuration that reads such files.
``livecast up --prometheus-targets FILE`` writes the JSON once the topology runs
(docs/operations.md).

The file_sd format (Prometheus configuration docs, ``<file_sd_config>``): "It reads a set of
files containing a list of zero or more ``<static_config>``\\ s [...] JSON: ``[ { "targets":
[ "<host>", ... ], "labels": { "<labelname>": "<labelvalue>", ... } }, ... ]``". A target is
``host:port``; the reserved label ``__metrics_path__`` sets the path scraped (the edges serve
``/edge/metrics``, the origin and the rehearsal driver ``/metrics``), ``job`` the job label.

Each target carries ``role`` (origin, shield, edge, rehearsal) and ``node`` (origin-0…,
shield, edge-0…, rehearsal) — not ``tier``, which the edges' own series carry and which a
target label of the same name would push aside to ``exported_tier``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from livecast.errors import ConfigError

ORIGIN_METRICS = "/metrics"
EDGE_METRICS = "/edge/metrics"
REHEARSAL_METRICS = "/metrics"
JOB = "livecast"
ROLES = ("origin", "shield", "edge", "rehearsal")

# "Label names may contain ASCII letters, numbers, as well as underscores. They must match the
# regex [a-zA-Z_][a-zA-Z0-9_]*." (Prometheus data model); ``__`` names are reserved but two of
# them (``__metrics_path__``, ``__scheme__``) are how a target group sets what is scraped.
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_SETTABLE_RESERVED = frozenset({"__metrics_path__", "__scheme__"})
# Prometheus durations: "((([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?
# (([0-9]+)s)?(([0-9]+)ms)?|0)" — the subset livecast writes: whole ms, s or m.
_DURATION = re.compile(r"[1-9][0-9]*(ms|s|m)")


@dataclass(frozen=True, slots=True)
class TargetGroup:
    """One file_sd entry: ``host:port`` targets sharing one metrics path and labels."""

    targets: tuple[str, ...]
    metrics_path: str = "/metrics"
    labels: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.targets:
            raise ConfigError("targets", "a target group needs at least one host:port")
        for target in self.targets:
            host, sep, port = target.rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ConfigError("targets", f"{target!r} is not host:port")
        if not self.metrics_path.startswith("/"):
            raise ConfigError("metrics_path", f"{self.metrics_path!r} does not start with /")
        for name in self.labels:
            if not _LABEL.fullmatch(name):
                raise ConfigError("labels", f"{name!r} is not a Prometheus label name")
            if name.startswith("__"):
                raise ConfigError("labels", f"{name!r} is reserved (set metrics_path instead)")

    def as_json(self) -> dict[str, object]:
        """The file_sd entry: ``{"targets": [...], "labels": {...}}``."""
        labels = {"__metrics_path__": self.metrics_path, **dict(sorted(self.labels.items()))}
        return {"targets": list(self.targets), "labels": labels}


def host_port(base_url: str) -> str:
    """``http://127.0.0.1:8081`` → ``127.0.0.1:8081`` (IPv6 keeps its brackets); only plain
    http with an explicit port, since that is what livecast's processes listen on."""
    parts = urlsplit(base_url)
    if parts.scheme != "http":
        raise ConfigError("targets", f"{base_url!r} is not an http:// URL")
    try:
        port = parts.port
    except ValueError as exc:
        raise ConfigError("targets", f"{base_url!r}: {exc}") from None
    if port is None or not parts.hostname:
        raise ConfigError("targets", f"{base_url!r} names no host and port")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError("targets", f"{base_url!r} is not a base URL (scheme, host, port)")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{host}:{port}"


def topology_targets(
    origin_base_urls: Sequence[str],
    tiers: Sequence[tuple[str, str]] = (),
    rehearsal_base_urls: Sequence[str] = (),
    job: str = JOB,
) -> list[TargetGroup]:
    """The target groups of a running topology: each origin's ``/metrics`` (``origin-0`` is the
    ``livecast up`` process, then its replicas), each nginx tier's ``/edge/metrics`` (``tiers``:
    ``(name, base URL)`` pairs, ``shield`` or ``edge-N``), each rehearsal driver's ``/metrics``.
    One group per target so each keeps its own ``node`` label."""
    if not origin_base_urls:
        raise ConfigError("targets", "a topology has at least one origin")
    groups: list[TargetGroup] = []
    for index, url in enumerate(origin_base_urls):
        groups.append(_group(url, ORIGIN_METRICS, job, "origin", f"origin-{index}"))
    names = [name for name, _ in tiers]
    if len(set(names)) != len(names):
        raise ConfigError("targets", f"tier names repeat: {names}")
    for name, url in tiers:
        role = "shield" if name == "shield" else "edge"
        if role == "edge" and not re.fullmatch(r"edge-[0-9]+", name):
            raise ConfigError("targets", f"{name!r} is neither shield nor edge-N")
        groups.append(_group(url, EDGE_METRICS, job, role, name))
    return groups + rehearsal_targets(rehearsal_base_urls, job)


def rehearsal_targets(base_urls: Sequence[str], job: str = JOB) -> list[TargetGroup]:
    """The target groups of rehearsal drivers (``livecast rehearse --metrics-port``): ``node``
    is ``rehearsal``, or ``rehearsal-N`` when there are several — a file of their own beside the
    topology's, since a rehearsal comes and goes while the stack runs."""
    return [
        _group(
            url,
            REHEARSAL_METRICS,
            job,
            "rehearsal",
            "rehearsal" if len(base_urls) == 1 else f"rehearsal-{index}",
        )
        for index, url in enumerate(base_urls)
    ]


def _group(url: str, path: str, job: str, role: str, node: str) -> TargetGroup:
    return TargetGroup((host_port(url),), path, {"job": job, "role": role, "node": node})


def file_sd_json(groups: Sequence[TargetGroup]) -> str:
    """The file_sd file's text (JSON, one trailing newline)."""
    return json.dumps([g.as_json() for g in groups], indent=2) + "\n"


@dataclass(frozen=True, slots=True)
class ScrapeSettings:
    """The scrape configuration's knobs: how often to scrape and to re-read the target files."""

    scrape_interval: str = "5s"
    scrape_timeout: str = "4s"
    evaluation_interval: str = "15s"
    refresh_interval: str = "5s"
    job: str = JOB

    def __post_init__(self) -> None:
        for name in (
            "scrape_interval",
            "scrape_timeout",
            "evaluation_interval",
            "refresh_interval",
        ):
            if not _DURATION.fullmatch(getattr(self, name)):
                raise ConfigError(name, f"{getattr(self, name)!r} is not a duration like 5s")
        if _seconds(self.scrape_timeout) > _seconds(self.scrape_interval):
            # Prometheus refuses it: "scrape timeout greater than scrape interval"
            raise ConfigError("scrape_timeout", "longer than scrape_interval")
        if not _LABEL.fullmatch(self.job):
            raise ConfigError("job", f"{self.job!r} is not a job name livecast writes")


def _seconds(duration: str) -> float:
    """A duration :data:`_DURATION` accepts, in seconds."""
    for suffix, scale in (("ms", 0.001), ("s", 1.0), ("m", 60.0)):
        if duration.endswith(suffix):
            return int(duration.removesuffix(suffix)) * scale
    raise ValueError(duration)


def prometheus_yml(target_files: Sequence[str], settings: ScrapeSettings | None = None) -> str:
    """A whole ``prometheus.yml`` with one job that reads ``target_files`` (file_sd JSON, as
    :func:`file_sd_json` writes; globs allowed). Every scalar is written as a JSON string,
    which YAML reads as the same string."""
    if not target_files:
        raise ConfigError("target_files", "the scrape config needs at least one target file")
    s = settings or ScrapeSettings()
    files = "".join(f"          - {json.dumps(path)}\n" for path in target_files)
    return (
        "# Rendered by livecast.telemetry.prometheus_config (docs/operations.md).\n"
        "global:\n"
        f"  scrape_interval: {s.scrape_interval}\n"
        f"  scrape_timeout: {s.scrape_timeout}\n"
        f"  evaluation_interval: {s.evaluation_interval}\n"
        "scrape_configs:\n"
        f"  - job_name: {json.dumps(s.job)}\n"
        "    file_sd_configs:\n"
        "      - files:\n"
        f"{files}"
        f"        refresh_interval: {s.refresh_interval}\n"
    )
