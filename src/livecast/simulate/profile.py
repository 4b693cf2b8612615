"""The capacity profile: what one node of each tier carries, measured here (pure).

``livecast calibrate --out profile.toml`` measures this machine with the real components and
writes one; the defaults below are this machine's figures from ``docs/benchmarks.md``. A profile
is meant to be edited for production hardware (a 64-core origin, a 400 Gb/s edge): every figure
is per node, in base units::

    [origin]                      # one livecast origin process per core
    cores = 1
    latency_s = 0.0015            # answer time at light load (blocking holds not included)
    bytes_per_s = 1.25e9          # its NIC
    [origin.requests_per_s]       # per core, by object kind
    multivariant = 30000
    playlist = 26000              # blocking reloads (held, then answered)
    part = 30000
    segment = 25000
    init = 30000

    [edge]                        # an nginx edge (the shield is the same kind of node)
    cores = 1
    requests_per_s = 38000        # per core
    cpu_s_per_request = 2.6e-5
    latency_s = 0.004             # what a hit costs at light load
    bytes_per_s = 1.25e9
    upstream_per_object = 1.0     # measured collapse: upstream requests per new object

    [driver]                      # the rehearsal's virtual viewers (validation, sizing)
    cpu_s_per_request = 2.26e-4
    requests_per_viewer_per_s = 12.6

Every figure must be positive: a zero or negative value is a ConfigError naming the key
(``origin.requests_per_s.part``), which the CLI turns into exit code 2.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from livecast.config import read_toml
from livecast.errors import ConfigError

OBJECT_KINDS = ("multivariant", "playlist", "part", "segment", "init")
NIC_10G = 1.25e9  # bytes/s


def _default_origin_rates() -> dict[str, float]:
    # docs/benchmarks.md: 26–34 k LL-HLS req/s per core (1,000 clients), 32.6 k plain
    return {"multivariant": 30_000.0, "playlist": 26_000.0, "part": 30_000.0,
            "segment": 25_000.0, "init": 30_000.0}  # fmt: skip


@dataclass(frozen=True)
class OriginProfile:
    cores: int = 1
    latency_s: float = 0.0015
    bytes_per_s: float = NIC_10G
    requests_per_s: Mapping[str, float] = field(default_factory=_default_origin_rates)

    def rate(self, kind: str) -> float:
        """Requests of ``kind`` one core answers per second (DVR kinds as their live kind)."""
        return self.requests_per_s.get(kind.removesuffix("-dvr"), self.requests_per_s["part"])


@dataclass(frozen=True)
class CacheProfile:
    """An nginx edge or shield."""

    cores: int = 1
    requests_per_s: float = 38_000.0
    cpu_s_per_request: float = 2.6e-5
    latency_s: float = 0.004
    bytes_per_s: float = NIC_10G
    upstream_per_object: float = 1.0

    @property
    def node_requests_per_s(self) -> float:
        return self.requests_per_s * self.cores


@dataclass(frozen=True)
class DriverProfile:
    cpu_s_per_request: float = 2.26e-4
    requests_per_viewer_per_s: float = 12.6

    @property
    def viewers_per_core(self) -> float:
        return 1.0 / (self.cpu_s_per_request * self.requests_per_viewer_per_s)


@dataclass(frozen=True)
class Profile:
    machine: str = "livecast reference (docs/benchmarks.md, 2-core VM)"
    measured: str = ""  # ISO date of the calibration; "" for the built-in defaults
    origin: OriginProfile = field(default_factory=OriginProfile)
    edge: CacheProfile = field(default_factory=CacheProfile)
    shield: CacheProfile = field(default_factory=CacheProfile)
    driver: DriverProfile = field(default_factory=DriverProfile)

    def validate(self) -> Profile:
        for section in ("origin", "edge", "shield", "driver"):
            part = getattr(self, section)
            for f in fields(part):
                value = getattr(part, f.name)
                if isinstance(value, Mapping):
                    for kind, rate in value.items():
                        _positive(rate, f"{section}.{f.name}.{kind}")
                else:
                    _positive(value, f"{section}.{f.name}")
        missing = [k for k in OBJECT_KINDS if k not in self.origin.requests_per_s]
        if missing:
            raise ConfigError(f"origin.requests_per_s.{missing[0]}", "missing")
        return self


def _positive(value: Any, key: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(key, f"must be a number, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(key, f"{value} must be above 0")


def _section(cls: type[Any], raw: Any, key: str, default: Any) -> Any:
    if raw is None:
        return default
    if not isinstance(raw, Mapping):
        raise ConfigError(key, "expected a table")
    known = {f.name for f in fields(cls)}
    extra = sorted(set(raw) - known)
    if extra:
        raise ConfigError(f"{key}.{extra[0]}", "unknown key")
    values = dict(raw)
    if "requests_per_s" in values and isinstance(values["requests_per_s"], Mapping):
        rates = dict(default.requests_per_s)
        unknown = sorted(set(values["requests_per_s"]) - set(OBJECT_KINDS))
        if unknown:
            raise ConfigError(f"{key}.requests_per_s.{unknown[0]}", "not an object kind")
        rates.update(values["requests_per_s"])
        values["requests_per_s"] = rates
    if "cores" in values and (
        isinstance(values["cores"], bool) or not isinstance(values["cores"], int)
    ):
        raise ConfigError(f"{key}.cores", "must be an integer")
    return replace(default, **values)


def parse_profile(data: Mapping[str, Any], prefix: str = "") -> Profile:
    """A profile from its TOML tables; keys in errors carry ``prefix`` (``simulate.profile.``)."""
    known = {"machine", "measured", "origin", "edge", "shield", "driver"}
    extra = sorted(set(data) - known)
    if extra:
        raise ConfigError(prefix + extra[0], "unknown key")
    base = Profile()
    try:
        profile = Profile(
            machine=str(data.get("machine", base.machine)),
            measured=str(data.get("measured", base.measured)),
            origin=_section(OriginProfile, data.get("origin"), prefix + "origin", base.origin),
            edge=_section(CacheProfile, data.get("edge"), prefix + "edge", base.edge),
            shield=_section(CacheProfile, data.get("shield"), prefix + "shield", base.shield),
            driver=_section(DriverProfile, data.get("driver"), prefix + "driver", base.driver),
        )
        return profile.validate()
    except ConfigError as error:
        if prefix and not error.key.startswith(prefix):
            raise ConfigError(prefix + error.key, str(error).split(": ", 1)[1]) from error
        raise


def load_profile(path: str | Path) -> Profile:
    return parse_profile(read_toml(path, "profile"))


def _value(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, int):
        return str(value)
    return repr(float(value))


def profile_toml(profile: Profile, comments: Mapping[str, str] | None = None) -> str:
    """The profile as TOML (``load_profile`` reads it back unchanged); ``comments`` maps a
    ``section.key`` to a note written beside it (how the figure was measured)."""
    notes = comments or {}
    lines = [f"machine = {_value(profile.machine)}", f"measured = {_value(profile.measured)}"]
    for section in ("origin", "edge", "shield", "driver"):
        part = getattr(profile, section)
        lines += ["", f"[{section}]"]
        nested: list[str] = []
        for f in fields(part):
            value = getattr(part, f.name)
            note = notes.get(f"{section}.{f.name}")
            suffix = f"  # {note}" if note else ""
            if isinstance(value, Mapping):
                nested += ["", f"[{section}.{f.name}]"]
                for kind in OBJECT_KINDS:
                    kind_note = notes.get(f"{section}.{f.name}.{kind}")
                    tail = f"  # {kind_note}" if kind_note else ""
                    nested.append(f"{kind} = {_value(value[kind])}{tail}")
            else:
                lines.append(f"{f.name} = {_value(value)}{suffix}")
        lines += nested
    return "\n".join(lines) + "\n"
