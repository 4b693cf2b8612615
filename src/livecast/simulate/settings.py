"""The ``[simulate]`` table of a scenario: the topology, stream and model knobs (pure).

The rest of the scenario (audience, players, downlinks, faults, SLOs) is the rehearsal's,
parsed by :mod:`livecast.scenario.file`; a rehearsal ignores this table. Defaults come from the
scenario's ``[target]`` (edges, shield, part duration) and the capacity profile::

    [simulate]
    step = 1.0                  # seconds per model step
    profile = "profile.toml"    # livecast calibrate's output (relative to this file); default
                                # the built-in profile (this machine, docs/benchmarks.md)
    rejoin_share = 1.0          # viewers who lose their stream (fatal error) and come back …
    rejoin_after = 5.0          # … this many seconds later, through a working edge
    abandon_after = 2.0         # startup longer than this: viewers start to leave …
    abandon_per_second = 0.058  # … this share per second beyond it (Krishnan & Sitaraman 2012)
    exit_surge = 0.0            # the audience leaves over the last N seconds (0: it stays)
    shared_cores = 0            # > 0: every tier and the viewers share this many cores (the
                                # rehearsal machine); 0: production, each tier on its own nodes
    memory_limit_gb = 8.0       # refuse a model that would need more
    rehearsal_probes = false    # add the rehearsal's own origin traffic (its freshness
                                # follower's blocking reload per part, a /metrics scrape per
                                # second) — to predict a rehearsal of this file

    [[simulate.surge]]          # join (or, negative, exit) surges on top of the audience shape
    at = 600.0
    duration = 60.0
    viewers_per_minute = 1000000

    [simulate.stream]           # the ladder (defaults: livecast's own)
    segment_duration = 2.0
    video_kbps = [2500, 1200, 600]
    audio_kbps = 128

    [simulate.edges]            # K edges; a figure given here replaces the profile's
    count = 200
    cores = 32
    gbps = 400
    collapse = true             # per-object miss collapsing (proxy_cache_lock + wake-up)
    lock_timeout = 8.0          # seconds a waiting request waits for the lock holder
    negative_ttl = 1.0          # a 404/5xx is cached this long
    [simulate.edges.ttl]        # how long an answer stays fresh at a cache, seconds
    playlist = 0.5              # a plain playlist (max-age=1: nginx counts whole seconds, an
                                # entry is refetched ≈ twice a second; measured at the edges)
    multivariant = 0.5
    stale_if_error = true       # an expired playlist is served stale when the upstream fails
    uplink_gbps = 100           # each edge's link to its upstream

    [simulate.shield]           # between the edges and the origins (default: [target] shield)
    enabled = true
    cores = 16
    gbps = 100
    collapse = true

    [simulate.origin]
    count = 2
    cores = 16
    shedding = true             # over capacity: a fast 503 with max-age (else queue, time out)
    queue_limit = 0.25          # seconds of work queued before it sheds (or times out)
    gbps = 25

Every out-of-range value is a ConfigError naming its key (``simulate.edges.count``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from livecast.errors import ConfigError
from livecast.simulate.profile import Profile, load_profile

BITS = 8.0
GBPS = 1e9 / BITS  # bytes/s per Gb/s


@dataclass(frozen=True)
class Surge:
    at: float
    duration: float
    viewers_per_minute: float


@dataclass(frozen=True)
class StreamSpec:
    part_duration: float = 1 / 3
    segment_duration: float = 2.0
    video_kbps: tuple[float, ...] = (2500.0, 1200.0, 600.0)
    audio_kbps: float = 128.0

    @property
    def parts_per_segment(self) -> float:
        return self.segment_duration / self.part_duration


@dataclass(frozen=True)
class CacheTier:
    """K caching nodes (the edges, or the shield)."""

    count: int
    requests_per_s: float  # per node
    bytes_per_s: float  # per node (NIC)
    latency_s: float
    collapse: bool = True
    lock_timeout: float = 8.0
    negative_ttl: float = 1.0
    stale_if_error: bool = True
    uplink_bytes_per_s: float = 100 * GBPS
    upstream_per_object: float = 1.0
    playlist_ttl: float = 0.5
    multivariant_ttl: float = 0.5


@dataclass(frozen=True)
class OriginTier:
    count: int
    cores: int
    requests_per_s: Mapping[str, float]  # per core, by object kind
    bytes_per_s: float
    latency_s: float
    shedding: bool = True
    queue_limit: float = 0.25


@dataclass(frozen=True)
class SimSettings:
    step: float = 1.0
    profile: Profile = field(default_factory=Profile)
    profile_source: str = "built-in"
    rejoin_share: float = 1.0
    rejoin_after: float = 5.0
    abandon_after: float = 2.0
    abandon_per_second: float = 0.058
    exit_surge: float = 0.0
    shared_cores: int = 0
    memory_limit_gb: float = 8.0
    rehearsal_probes: bool = False
    surges: tuple[Surge, ...] = ()
    stream: StreamSpec = field(default_factory=StreamSpec)
    edges: CacheTier | None = None
    shield: CacheTier | None = None
    origin: OriginTier | None = None


class _Table:
    """Typed reads of one TOML table, errors naming ``prefix.key``."""

    def __init__(self, raw: Any, prefix: str, known: set[str]) -> None:
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            raise ConfigError(prefix, "expected a table")
        extra = sorted(set(raw) - known)
        if extra:
            raise ConfigError(f"{prefix}.{extra[0]}", "unknown key")
        self.raw, self.prefix = raw, prefix

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}"

    def number(
        self,
        name: str,
        default: float,
        low: float,
        high: float = float("inf"),
        *,
        open_low: bool = False,
    ) -> float:
        value = self.raw.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(self.key(name), f"must be a number, got {value!r}")
        if value < low or (open_low and value == low) or value > high:
            bound = f"above {low:g}" if open_low else f"at least {low:g}"
            limit = "" if high == float("inf") else f" and at most {high:g}"
            raise ConfigError(self.key(name), f"{value} must be {bound}{limit}")
        return float(value)

    def integer(self, name: str, default: int, low: int, high: int = 10**9) -> int:
        value = self.raw.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(self.key(name), f"must be an integer, got {value!r}")
        if not low <= value <= high:
            raise ConfigError(self.key(name), f"{value} is outside {low}–{high}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self.raw.get(name, default)
        if not isinstance(value, bool):
            raise ConfigError(self.key(name), "must be true or false")
        return value


TOP = {"step", "profile", "rejoin_share", "rejoin_after", "abandon_after", "abandon_per_second",
       "exit_surge", "shared_cores", "memory_limit_gb", "surge", "stream", "edges", "shield",
       "origin", "rehearsal_probes"}  # fmt: skip
CACHE_KEYS = {"count", "cores", "requests_per_s", "gbps", "collapse", "lock_timeout",
              "negative_ttl", "stale_if_error", "uplink_gbps", "enabled", "ttl"}  # fmt: skip
ORIGIN_KEYS = {"count", "cores", "gbps", "shedding", "queue_limit", "requests_per_s"}


def _stream(raw: Any, part_duration: float) -> StreamSpec:
    table = _Table(raw, "simulate.stream", {"segment_duration", "video_kbps", "audio_kbps"})
    segment = table.number("segment_duration", 2.0, 0.5, 20.0)
    if segment < part_duration:
        raise ConfigError(table.key("segment_duration"), "shorter than the part duration")
    kbps = table.raw.get("video_kbps", [2500, 1200, 600])
    numbers = (
        isinstance(kbps, list)
        and kbps
        and all(
            isinstance(k, int | float) and not isinstance(k, bool) and 50 <= k <= 100_000
            for k in kbps
        )
    )
    if not numbers:
        raise ConfigError(table.key("video_kbps"), "expected a list of bitrates in 50–100000 kbps")
    return StreamSpec(
        part_duration=part_duration,
        segment_duration=segment,
        video_kbps=tuple(sorted((float(k) for k in kbps), reverse=True)),
        audio_kbps=table.number("audio_kbps", 128.0, 16.0, 512.0),
    )


def _cache(raw: Any, prefix: str, count: int, base: Any, hold: float) -> CacheTier:
    table = _Table(raw, prefix, CACHE_KEYS)
    ttl = _Table(table.raw.get("ttl"), f"{prefix}.ttl", {"playlist", "multivariant"})
    cores = table.integer("cores", base.cores, 1, 4096)
    per_core = table.number("requests_per_s", base.requests_per_s, 0.0, open_low=True)
    gbps = table.number("gbps", base.bytes_per_s / GBPS, 0.0, open_low=True)
    return CacheTier(
        count=table.integer("count", count, 1, 100_000),
        requests_per_s=per_core * cores,
        bytes_per_s=gbps * GBPS,
        latency_s=base.latency_s,
        collapse=table.boolean("collapse", True),
        lock_timeout=table.number("lock_timeout", hold + 2.0, 0.0, open_low=True),
        negative_ttl=table.number("negative_ttl", 1.0, 0.0),
        stale_if_error=table.boolean("stale_if_error", True),
        uplink_bytes_per_s=table.number("uplink_gbps", 100.0, 0.0, open_low=True) * GBPS,
        upstream_per_object=base.upstream_per_object,
        playlist_ttl=ttl.number("playlist", 0.5, 0.0, open_low=True),
        multivariant_ttl=ttl.number("multivariant", 0.5, 0.0, open_low=True),
    )


def _origin(raw: Any, profile: Profile) -> OriginTier:
    table = _Table(raw, "simulate.origin", ORIGIN_KEYS)
    base = profile.origin
    rates = dict(base.requests_per_s)
    given = table.raw.get("requests_per_s")
    if given is not None:
        rate_table = _Table(given, table.key("requests_per_s"), set(rates))
        rates = {k: rate_table.number(k, v, 0.0, open_low=True) for k, v in rates.items()}
    return OriginTier(
        count=table.integer("count", 1, 1, 1000),
        cores=table.integer("cores", base.cores, 1, 4096),
        requests_per_s=rates,
        bytes_per_s=table.number("gbps", base.bytes_per_s / GBPS, 0.0, open_low=True) * GBPS,
        latency_s=base.latency_s,
        shedding=table.boolean("shedding", True),
        queue_limit=table.number("queue_limit", 0.25, 0.0, 60.0, open_low=True),
    )


def _surges(raw: Any, duration: float) -> tuple[Surge, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError("simulate.surge", "expected [[simulate.surge]] tables")
    surges = []
    for index, item in enumerate(raw):
        table = _Table(item, f"simulate.surge[{index}]", {"at", "duration", "viewers_per_minute"})
        at = table.number("at", 0.0, 0.0, duration)
        surges.append(
            Surge(
                at=at,
                duration=table.number("duration", 60.0, 0.0, duration - at, open_low=True),
                viewers_per_minute=table.number("viewers_per_minute", 0.0, -1e10, 1e10),
            )
        )
    return tuple(surges)


def _profile(raw: Any, base_dir: Path) -> tuple[Profile, str]:
    if raw is None:
        return Profile(), "built-in"
    if not isinstance(raw, str) or not raw:
        raise ConfigError("simulate.profile", "expected the path of a profile (livecast calibrate)")
    path = Path(raw) if Path(raw).is_absolute() else base_dir / raw
    if not path.is_file():
        raise ConfigError("simulate.profile", f"{path} does not exist")
    try:
        return load_profile(path), str(path)
    except ConfigError as error:
        raise ConfigError(f"simulate.profile → {error.key}", str(error)) from error


def parse_settings(
    raw: Any,
    *,
    duration: float,
    edges: int,
    shield: bool,
    part_duration: float,
    base_dir: Path,
) -> SimSettings:
    """The ``[simulate]`` table; ``edges``/``shield``/``part_duration`` from ``[target]``."""
    table = _Table(raw, "simulate", TOP)
    profile, source = _profile(table.raw.get("profile"), base_dir)
    stream = _stream(table.raw.get("stream"), part_duration)
    hold = 3 * stream.segment_duration  # the origin's longest blocking hold (3 × TD)
    edge_raw = table.raw.get("edges")
    edge_count = edges if edge_raw is None or "count" not in edge_raw else 1
    edge_tier = (
        _cache(edge_raw, "simulate.edges", edge_count, profile.edge, hold)
        if edges or edge_raw is not None
        else None
    )
    shield_raw = table.raw.get("shield")
    wants_shield = shield
    if isinstance(shield_raw, Mapping) and "enabled" in shield_raw:
        wants_shield = _Table(shield_raw, "simulate.shield", CACHE_KEYS).boolean("enabled", shield)
    if wants_shield and edge_tier is None:
        raise ConfigError("simulate.shield.enabled", "a shield needs edges in front of it")
    shield_tier = (
        _cache(shield_raw, "simulate.shield", 1, profile.shield, hold) if wants_shield else None
    )
    settings = SimSettings(
        step=table.number("step", 1.0, 0.01, 60.0),
        profile=profile,
        profile_source=source,
        rejoin_share=table.number("rejoin_share", 1.0, 0.0, 1.0),
        rejoin_after=table.number("rejoin_after", 5.0, 0.0, duration),
        abandon_after=table.number("abandon_after", 2.0, 0.0),
        abandon_per_second=table.number("abandon_per_second", 0.058, 0.0, 1.0),
        exit_surge=table.number("exit_surge", 0.0, 0.0, duration),
        shared_cores=table.integer("shared_cores", 0, 0, 4096),
        memory_limit_gb=table.number("memory_limit_gb", 8.0, 0.0, open_low=True),
        rehearsal_probes=table.boolean("rehearsal_probes", False),
        surges=_surges(table.raw.get("surge"), duration),
        stream=stream,
        edges=edge_tier,
        shield=shield_tier,
        origin=_origin(table.raw.get("origin"), profile),
    )
    _check_ttls(settings, duration)
    return settings


def _check_ttls(settings: SimSettings, duration: float) -> None:
    """A TTL as long as the event would serve one answer all night: refused, naming it."""
    for name, tier in (("edges", settings.edges), ("shield", settings.shield)):
        if tier is None:
            continue
        for key, value in (("negative_ttl", tier.negative_ttl), ("ttl.playlist", tier.playlist_ttl),
                           ("ttl.multivariant", tier.multivariant_ttl)):  # fmt: skip
            if value >= duration:
                raise ConfigError(
                    f"simulate.{name}.{key}",
                    f"{value:g} s is not shorter than the event ({duration:g} s)",
                )
