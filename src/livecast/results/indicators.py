"""Scale-invariant indicators: what a run of a few hundred viewers measures that still holds at
the night's audience (pure, mergeable, JSON-serialisable).

QoE figures of a small rehearsal stay green when an edge tier leaks misses to the origin, a
player retries in lock-step or a playlist arrives stale: at a few hundred viewers the origin
absorbs it. These are the ratios that do not shrink with the audience:

* per caching tier (edge, shield) and object kind, from the tier's access log
  (:class:`ObjectTally`, filled by ``rehearse.objects``): requests sent upstream per distinct
  object per tier instance (ideal 1), upstream fetches that overlapped another fetch of the same
  object (collapse failures), answers from a stale cache entry, answers held past 3 × target
  duration, 4xx/5xx, bytes — and, per second, upstream requests and new objects (the over-time
  plot and the projection's split into per-edge and per-viewer load);
* per viewer, from the driver (:class:`ClientIndicators`): retries and the failed requests they
  repeat, 404s of media that answered 200 a moment later (an early request cached negative),
  requests held past 3 × target duration, the age of every playlist received (now − the newest
  media's PROGRAM-DATE-TIME end; staleness against the origin's own age, see ``fidelity``),
  bytes per request kind;
* the run's context (:class:`RunContext`): part target and target duration, tier sizes, fault
  windows, the origin's own playlist age (a reference follower), the target audience and the
  capacity profile — so ``results.json`` carries what ``fidelity`` needs to recompute every
  figure, and ``compare`` can.

Figures and projections are computed from these by :mod:`livecast.results.fidelity`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from livecast.results.histogram import Histogram

OBJECT_KINDS = (
    "multivariant", "playlist-blocking", "playlist-plain", "playlist-dvr",
    "part", "segment", "init",
)  # fmt: skip
AGE_LAYOUT = (1e-4, 3600.0, 0.01)
TALLY_FIELDS = (
    "requests",
    "upstream",
    "objects",
    "overlapping",
    "stale",
    "held_past",
    "status_4xx",
    "status_5xx",
    "bytes_sent",
)


@dataclass(slots=True)
class ObjectTally:
    """One tier kind, one object kind, over the run (all instances of the tier added)."""

    requests: int = 0  # answered by the tier
    upstream: int = 0  # attempts sent upstream (failover retries included)
    objects: int = 0  # distinct objects requested, counted once per tier instance
    overlapping: int = 0  # upstream fetches begun while another fetch of the object was running
    stale: int = 0  # answered from a stale cache entry (STALE, UPDATING)
    held_past: int = 0  # answered after more than 3 × target duration
    status_4xx: int = 0
    status_5xx: int = 0
    bytes_sent: int = 0

    def merge(self, other: ObjectTally) -> None:
        for name in TALLY_FIELDS:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def upstream_per_object(self) -> float | None:
        return self.upstream / self.objects if self.objects else None

    def to_list(self) -> list[int]:
        return [getattr(self, name) for name in TALLY_FIELDS]

    @classmethod
    def from_list(cls, values: Iterable[Any]) -> ObjectTally:
        return cls(*(int(v) for v in values))


class TierObjects:
    """A caching tier's per-object figures: totals per object kind and a per-second series.

    ``seconds[t] = [requests, upstream, new objects, bytes_sent]`` (all object kinds), where a
    new object is one first requested at an instance during that second."""

    __slots__ = ("by_kind", "instances", "seconds")

    def __init__(self, instances: int = 0) -> None:
        self.instances = instances
        self.by_kind: dict[str, ObjectTally] = {}
        self.seconds: dict[int, list[int]] = {}

    def kind(self, name: str) -> ObjectTally:
        tally = self.by_kind.get(name)
        if tally is None:
            tally = self.by_kind[name] = ObjectTally()
        return tally

    def second(self, t: int) -> list[int]:
        row = self.seconds.get(t)
        if row is None:
            row = self.seconds[t] = [0, 0, 0, 0]
        return row

    def total(self) -> ObjectTally:
        total = ObjectTally()
        for tally in self.by_kind.values():
            total.merge(tally)
        return total

    def merge(self, other: TierObjects) -> None:
        self.instances = max(self.instances, other.instances)
        for name, tally in other.by_kind.items():
            self.kind(name).merge(tally)
        for t, row in other.seconds.items():
            mine = self.second(t)
            for i, value in enumerate(row):
                mine[i] += value

    def to_dict(self) -> dict[str, Any]:
        return {
            "instances": self.instances,
            "fields": list(TALLY_FIELDS),
            "by_kind": {k: t.to_list() for k, t in sorted(self.by_kind.items())},
            "seconds": {str(t): row for t, row in sorted(self.seconds.items())},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TierObjects:
        tier = cls(int(data.get("instances", 0)))
        tier.by_kind = {str(k): ObjectTally.from_list(v) for k, v in data["by_kind"].items()}
        tier.seconds = {int(t): [int(v) for v in row] for t, row in data["seconds"].items()}
        return tier


CLIENT_COUNTERS = (
    "retries",  # requests that repeated a failed one
    "retried_requests",  # distinct failed requests that were retried (first retries)
    "media_requests",  # init, part and segment requests answered (any status)
    "media_404",
    "early_404",  # media 404s whose URL answered 200 later in the run (same driver)
    "held_past",  # answers that took longer than 3 × target duration
    "playlists",  # playlist answers with an age (PROGRAM-DATE-TIME present)
)


class ClientIndicators:
    """What the viewers saw, beyond QoE; summed over driver processes on merge."""

    __slots__ = ("bytes_by_kind", "counters", "playlist_age_s")

    def __init__(self) -> None:
        self.counters: dict[str, int] = dict.fromkeys(CLIENT_COUNTERS, 0)
        self.bytes_by_kind: dict[str, int] = {}
        self.playlist_age_s = Histogram(*AGE_LAYOUT)

    def count(self, name: str, n: int = 1) -> None:
        self.counters[name] += n

    def add_bytes(self, kind: str, size: int) -> None:
        self.bytes_by_kind[kind] = self.bytes_by_kind.get(kind, 0) + size

    def merge(self, other: ClientIndicators) -> None:
        for name, value in other.counters.items():
            self.counters[name] = self.counters.get(name, 0) + value
        for kind, size in other.bytes_by_kind.items():
            self.add_bytes(kind, size)
        self.playlist_age_s.merge(other.playlist_age_s)

    def to_dict(self) -> dict[str, Any]:
        return {
            "counters": dict(self.counters),
            "bytes_by_kind": dict(sorted(self.bytes_by_kind.items())),
            "playlist_age_s": self.playlist_age_s.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClientIndicators:
        client = cls()
        client.counters.update({str(k): int(v) for k, v in data["counters"].items()})
        client.bytes_by_kind = {str(k): int(v) for k, v in data["bytes_by_kind"].items()}
        client.playlist_age_s = Histogram.from_dict(data["playlist_age_s"])
        return client


@dataclass(frozen=True)
class Capacity:
    """What one node of each tier can carry (requests/s, bytes/s). Defaults: this machine's
    benchmarks (docs/benchmarks.md) — the origin (one asyncio process) answering LL-HLS blocking
    clients, an nginx edge or shield with one worker on one core; bytes: a 10 Gb/s NIC."""

    origin_requests_per_s: float = 26_000.0
    shield_requests_per_s: float = 38_000.0
    edge_requests_per_s: float = 38_000.0
    origin_bytes_per_s: float = 1.25e9
    shield_bytes_per_s: float = 1.25e9
    edge_bytes_per_s: float = 1.25e9

    def of(self, tier: str, figure: str) -> float:
        value: float = getattr(self, f"{tier}_{figure}")
        return value


@dataclass(frozen=True)
class RunContext:
    """What the figures need to know about the run that produced the counts."""

    part_target: float | None = None  # seconds (EXT-X-PART-INF:PART-TARGET)
    target_duration: float | None = None  # seconds (EXT-X-TARGETDURATION)
    edges: int = 0  # nginx edges in the rehearsal
    shield: bool = False
    fault_windows: tuple[tuple[float, float], ...] = ()  # (start, end) seconds from show start
    target_viewers: int | None = None  # the audience the show expects
    target_edges: int | None = None  # edges at the show (default: the rehearsal's)
    capacity: Capacity = field(default_factory=Capacity)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["fault_windows"] = [list(w) for w in self.fault_windows]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunContext:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["fault_windows"] = tuple(
            (float(a), float(b)) for a, b in values.get("fault_windows", ())
        )
        values["capacity"] = Capacity(**values.get("capacity", {}))
        return cls(**values)


class Indicators:
    """The raw material of the scale-invariant indicators of one run."""

    __slots__ = ("client", "context", "origin_age_s", "origin_bytes", "tiers")

    def __init__(self) -> None:
        self.client = ClientIndicators()
        self.tiers: dict[str, TierObjects] = {}  # "edge", "shield"
        self.origin_age_s = Histogram(*AGE_LAYOUT)  # the origin's own playlists, followed directly
        self.origin_bytes: list[tuple[float, float]] = []  # (t_s, bytes written so far)
        self.context = RunContext()

    def merge(self, other: Indicators) -> None:
        self.client.merge(other.client)
        for name, tier in other.tiers.items():
            self.tiers.setdefault(name, TierObjects()).merge(tier)
        self.origin_age_s.merge(other.origin_age_s)
        self.origin_bytes = sorted(self.origin_bytes + other.origin_bytes)
        if other.context != RunContext():
            self.context = other.context

    def to_dict(self) -> dict[str, Any]:
        return {
            "client": self.client.to_dict(),
            "tiers": {name: tier.to_dict() for name, tier in sorted(self.tiers.items())},
            "origin_age_s": self.origin_age_s.to_dict(),
            "origin_bytes": [list(sample) for sample in self.origin_bytes],
            "context": self.context.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Indicators:
        indicators = cls()
        indicators.client = ClientIndicators.from_dict(data["client"])
        indicators.tiers = {str(n): TierObjects.from_dict(t) for n, t in data["tiers"].items()}
        indicators.origin_age_s = Histogram.from_dict(data["origin_age_s"])
        indicators.origin_bytes = [(float(t), float(b)) for t, b in data["origin_bytes"]]
        indicators.context = RunContext.from_dict(data["context"])
        return indicators
