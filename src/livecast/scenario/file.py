"""Rehearsal scenarios (TOML, documented in docs/rehearsal.md) — parsed and validated, pure.

Every error is a :class:`~livecast.errors.ConfigError` naming the bad key, e.g.
``audience.viewers`` or ``faults[1].latency_ms``; ``livecast rehearse`` turns it into exit code 2.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from livecast.config import read_toml
from livecast.edge.topology import MAX_EDGES
from livecast.errors import ConfigError
from livecast.origin.shedding import SheddingConfig
from livecast.results.indicators import Capacity
from livecast.results.slo import DEFAULT_SLOS, Slo, parse_slos
from livecast.scenario.access import AccessSpec, parse_access
from livecast.scenario.audience import AudienceShape, DownlinkBand
from livecast.scenario.timeline import PROCESS_KINDS, Timeline, parse_timeline

TOP_KEYS = {
    "name",
    "duration",
    "seed",
    "workers",
    "retry_jitter",
    "target",
    "audience",
    "players",
    "downlink",
    "slo",
    "faults",
    "target_viewers",
    "target_edges",
    "capacity",
    "simulate",  # the simulator's model of the night (livecast.simulate.settings)
    "access",  # tokens and stream leases on the stack (livecast.scenario.access)
}
TARGET_KEYS = {
    "urls", "stack", "source", "loop_seconds", "part_duration", "cache_dir", "edges", "shield",
    "publishers", "switch_back_after", "shedding", "shedding_dvr_ms",
}  # fmt: skip
STACK_SOURCES = ("loop", "test", "rtmp")
CONTRIBUTION_KEYS = ("publishers", "switch_back_after")  # only with source = "rtmp"
PUBLISHER_NAMES = ("publisher", "backup_publisher")  # process-fault targets, in input order
AUDIENCE_KEYS = {
    "kind", "viewers", "at", "within", "skew", "mean_session", "replace", "start_over", "seek_back",
}  # fmt: skip
PLAYER_KEYS = {"low_latency_share"}
DEFAULT_DOWNLINK = (DownlinkBand(25_000, 6), DownlinkBand(6_000, 3), DownlinkBand(2_000, 1))


@dataclass(frozen=True)
class StackSpec:
    """The stack livecast starts for the rehearsal and stops afterwards."""

    source: str = "loop"
    loop_seconds: float = 20.0
    part_duration: float = 1 / 3
    cache_dir: str = ""
    edges: int = 0  # nginx edges in front of the origin (0: viewers go to the origin itself)
    shield: bool = False  # a shield tier between the edges and the origin
    publishers: int = 0  # source = "rtmp": FFmpeg encoders publishing (1 primary, 2 + backup)
    switch_back_after: float = 10.0  # source = "rtmp": the primary healthy this long: back
    shedding: bool = False  # the stack's [shedding] table: enabled (docs/edge.md)
    shedding_dvr_ms: float | None = None  # its dvr_ms threshold (None: the stack's default)
    access: AccessSpec | None = None  # [access]: tokens (and leases) on the stack

    @property
    def contribution(self) -> bool:
        """Whether the stack is fed by encoders the rehearsal starts (``source = "rtmp"``)."""
        return self.source == "rtmp"


@dataclass(frozen=True)
class Scenario:
    name: str = "rehearsal"
    duration: float = 30.0
    seed: int = 1
    workers: int = 0  # 0: one per core
    retry_jitter: bool = True
    urls: tuple[str, ...] = ()  # external entry points (multivariant playlists)
    stack: StackSpec | None = field(default_factory=StackSpec)
    audience: AudienceShape = field(default_factory=AudienceShape)
    low_latency_share: float = 0.8
    downlink: tuple[DownlinkBand, ...] = DEFAULT_DOWNLINK
    slos: tuple[Slo, ...] = DEFAULT_SLOS
    faults: Timeline = field(default_factory=Timeline)
    target_viewers: int | None = None  # the audience the show expects (projection, docs)
    target_edges: int | None = None  # edges at the show (default: the rehearsal's)
    capacity: Capacity = field(default_factory=Capacity)  # one node of each tier


def _table(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, Mapping):
        raise ConfigError(key, "expected a table")
    return value


def _unknown(table: Mapping[str, Any], known: set[str], prefix: str) -> None:
    extra = sorted(set(table) - known)
    if extra:
        where = f"{prefix}.{extra[0]}" if prefix else extra[0]
        raise ConfigError(where, "unknown key")


def _number(
    table: Mapping[str, Any], key: str, default: float, where: str, minimum: float | None = None
) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(where, f"must be a number, got {value!r}")
    if minimum is not None and value < minimum:
        raise ConfigError(where, f"{value} is below {minimum:g}")
    return float(value)


def _boolean(table: Mapping[str, Any], key: str, default: bool, where: str) -> bool:
    value = table.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(where, "must be true or false")
    return value


def _integer(table: Mapping[str, Any], key: str, default: int, where: str, minimum: int) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(where, f"must be an integer, got {value!r}")
    if value < minimum:
        raise ConfigError(where, f"{value} is below {minimum}")
    return value


def _target(table: Mapping[str, Any]) -> tuple[tuple[str, ...], StackSpec | None]:
    _unknown(table, TARGET_KEYS, "target")
    urls = table.get("urls", [])
    if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
        raise ConfigError("target.urls", "expected a list of playlist URLs")
    for index, url in enumerate(urls):
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"target.urls[{index}]", f"{url!r} is not an http(s) URL")
    stack = _boolean(table, "stack", not urls, "target.stack")
    if stack and urls:
        raise ConfigError("target.stack", "give either urls or stack = true, not both")
    if not stack and not urls:
        raise ConfigError("target.urls", "no target: give urls or stack = true")
    if not stack:
        return tuple(urls), None
    source = table.get("source", "loop")
    if source not in STACK_SOURCES:
        raise ConfigError("target.source", f"{source!r} is not loop, test or rtmp")
    cache_dir = table.get("cache_dir", "")
    if not isinstance(cache_dir, str):
        raise ConfigError("target.cache_dir", "must be a string")
    edges = _integer(table, "edges", 0, "target.edges", 0)
    if edges > MAX_EDGES:
        raise ConfigError("target.edges", f"{edges} is more than {MAX_EDGES}")
    shield = _boolean(table, "shield", False, "target.shield")
    if shield and not edges:
        raise ConfigError("target.shield", "a shield needs edges in front of it (edges ≥ 1)")
    spec = StackSpec(
        edges=edges,
        shield=shield,
        source=source,
        loop_seconds=_number(table, "loop_seconds", 20.0, "target.loop_seconds", 2.0),
        part_duration=_number(table, "part_duration", 1 / 3, "target.part_duration", 0.2),
        cache_dir=cache_dir,
        **_shedding(table),
    )
    return (), _contribution(table, spec)


def _shedding(table: Mapping[str, Any]) -> dict[str, Any]:
    """``shedding`` turns on the stack's load shedding; ``shedding_dvr_ms`` (only with it)
    sets the DVR threshold, at most the classic one (thresholds rise with the priority)."""
    shedding = _boolean(table, "shedding", False, "target.shedding")
    if "shedding_dvr_ms" not in table:
        return {"shedding": shedding}
    if not shedding:
        raise ConfigError("target.shedding_dvr_ms", "only with shedding = true")
    dvr_ms = _number(table, "shedding_dvr_ms", 0.0, "target.shedding_dvr_ms", 0.0)
    classic_ms = SheddingConfig().classic_ms
    if dvr_ms > classic_ms:
        raise ConfigError("target.shedding_dvr_ms", f"{dvr_ms} is above classic_ms {classic_ms:g}")
    return {"shedding": True, "shedding_dvr_ms": dvr_ms}


def _contribution(table: Mapping[str, Any], spec: StackSpec) -> StackSpec:
    """``source = "rtmp"``: how many encoders the rehearsal starts and the failover's
    switch-back delay; those keys are refused with any other source."""
    if not spec.contribution:
        for key in CONTRIBUTION_KEYS:
            if key in table:
                raise ConfigError(f"target.{key}", 'only with source = "rtmp"')
        return spec
    publishers = _integer(table, "publishers", 1, "target.publishers", 1)
    if publishers > len(PUBLISHER_NAMES):
        raise ConfigError(
            "target.publishers", f"{publishers}: 1 (primary) or 2 (primary and backup)"
        )
    switch_back = _number(table, "switch_back_after", 10.0, "target.switch_back_after", 0.5)
    if switch_back > 3600:
        raise ConfigError("target.switch_back_after", f"{switch_back} s is above 3600 s")
    return dataclasses.replace(spec, publishers=publishers, switch_back_after=switch_back)


def _audience(table: Mapping[str, Any]) -> AudienceShape:
    _unknown(table, AUDIENCE_KEYS, "audience")
    session = table.get("mean_session")
    replace = _boolean(table, "replace", False, "audience.replace")
    kind = table.get("kind", "flash")
    if not isinstance(kind, str):
        raise ConfigError("audience.kind", "must be a string")
    start_over = _number(table, "start_over", 0.0, "audience.start_over", 0.0)
    if start_over > 1:
        raise ConfigError("audience.start_over", f"{start_over} is above 1 (a share of viewers)")
    if "seek_back" in table and not start_over:
        raise ConfigError("audience.seek_back", "only with start_over > 0 (start-over viewers)")
    return AudienceShape(
        kind=kind,
        viewers=_integer(table, "viewers", 200, "audience.viewers", 1),
        at=_number(table, "at", 0.0, "audience.at", 0.0),
        within=_number(table, "within", 10.0, "audience.within", 0.0),
        skew=_number(table, "skew", 3.0, "audience.skew", 1.0),
        mean_session=None
        if session is None
        else _number(table, "mean_session", 0.0, "audience.mean_session", 0.001),
        replace=replace,
        start_over=start_over,
        seek_back=_seek_back(table.get("seek_back", [10.0, 60.0])),
    ).validate()


def _seek_back(value: Any) -> tuple[float, float]:
    """``seek_back = [least, most]`` seconds (a single number: always that far back)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = [value, value]
    numbers = isinstance(value, list) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value
    )
    if not numbers or len(value) != 2:
        raise ConfigError(
            "audience.seek_back", f"expected [least, most] seconds behind live, got {value!r}"
        )
    return float(value[0]), float(value[1])


def _downlink(raw: Any) -> tuple[DownlinkBand, ...]:
    if raw is None:
        return DEFAULT_DOWNLINK
    if not isinstance(raw, list) or not raw:
        raise ConfigError("downlink", "expected [[downlink]] tables with kbps and weight")
    bands = []
    for index, band in enumerate(raw):
        where = f"downlink[{index}]"
        if not isinstance(band, Mapping):
            raise ConfigError(where, "expected a table")
        _unknown(band, {"kbps", "weight"}, where)
        bands.append(
            DownlinkBand(
                kbps=_number(band, "kbps", 0.0, f"{where}.kbps", 50.0),
                weight=_number(band, "weight", 1.0, f"{where}.weight", 0.0),
            )
        )
    return tuple(bands)


def _capacity(table: Mapping[str, Any]) -> Capacity:
    """``[capacity]``: what one node of each tier carries; defaults from docs/benchmarks.md."""
    defaults = Capacity()
    known = {f.name for f in dataclasses.fields(defaults)}
    _unknown(table, known, "capacity")
    values = {
        name: _number(table, name, getattr(defaults, name), f"capacity.{name}", 1e-9)
        for name in sorted(known)
    }
    return Capacity(**values)


def _optional_count(data: Mapping[str, Any], key: str) -> int | None:
    return None if key not in data else _integer(data, key, 0, key, 1)


def _check_publisher_faults(faults: Timeline, stack: StackSpec | None) -> None:
    """A process fault on an encoder the scenario does not start is refused before anything
    runs (other process names are checked once the stack is up)."""
    started = PUBLISHER_NAMES[: stack.publishers] if stack is not None else ()
    for fault in faults.faults:
        target = fault.target
        if fault.kind in PROCESS_KINDS and target in PUBLISHER_NAMES and target not in started:
            needs = "publishers = 2" if target == PUBLISHER_NAMES[1] else "stack = true"
            raise ConfigError(
                f"faults[{fault.index}].target",
                f'no {target!r}: it needs [target] source = "rtmp" with {needs}',
            )


def parse_scenario(data: Mapping[str, Any]) -> Scenario:
    _unknown(data, TOP_KEYS, "")
    urls, stack = _target(_table(data, "target"))
    if "access" in data:
        if stack is None:
            raise ConfigError("access", "only with stack = true (the rehearsal holds the keys)")
        stack = dataclasses.replace(stack, access=parse_access(_table(data, "access")))
    faults = parse_timeline(data.get("faults"))
    _check_publisher_faults(faults, stack)
    players = _table(data, "players")
    _unknown(players, PLAYER_KEYS, "players")
    share = _number(players, "low_latency_share", 0.8, "players.low_latency_share", 0.0)
    if share > 1:
        raise ConfigError("players.low_latency_share", f"{share} is above 1")
    jitter = _boolean(data, "retry_jitter", True, "retry_jitter")
    name = data.get("name", "rehearsal")
    if not isinstance(name, str):
        raise ConfigError("name", "must be a string")
    return Scenario(
        name=name,
        duration=_number(data, "duration", 30.0, "duration", 1.0),
        seed=_integer(data, "seed", 1, "seed", 0),
        workers=_integer(data, "workers", 0, "workers", 0),
        retry_jitter=jitter,
        urls=urls,
        stack=stack,
        audience=_audience(_table(data, "audience")),
        low_latency_share=share,
        downlink=_downlink(data.get("downlink")),
        slos=parse_slos(_table(data, "slo")),
        faults=faults,
        target_viewers=_optional_count(data, "target_viewers"),
        target_edges=_optional_count(data, "target_edges"),
        capacity=_capacity(_table(data, "capacity")),
    )


def load_scenario(path: str | Path) -> Scenario:
    return parse_scenario(read_toml(path, "scenario"))
