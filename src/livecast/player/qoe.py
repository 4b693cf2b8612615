"""Per-viewer quality of experience, with the Mux/Conviva definitions (brief §6).

  * startup time: ``start(now)`` (the play request) → first frame (``player.buffer`` defines it);
  * video start failure: a fatal error before the first frame;
  * exit before video start: the viewer left (``leave_at``) before the first frame, no error;
  * rebuffering ratio: stalled / (stalled + played) seconds — stalls before the first frame are
    startup, not rebuffering;
  * latency behind live: wall clock − PDT of the frame being presented, sampled while playing;
  * average bitrate: video bitrate under the playhead, weighted by played time;
  * switches: rendition changes after the start rendition.

:class:`QoeRecord` is a frozen snapshot; ``as_dict()`` is JSON-able (results are merged by
``livecast.results``, not here).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


def rebuffering_ratio(stalled: float, played: float) -> float:
    total = stalled + played
    return stalled / total if total > 0 else 0.0


def _percentile(ordered: Sequence[float], q: float) -> float:
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True, slots=True)
class LatencySummary:
    count: int
    mean: float
    p50: float
    p95: float
    min: float
    max: float

    @classmethod
    def of(cls, samples: Sequence[float]) -> LatencySummary | None:
        if not samples:
            return None
        ordered = sorted(samples)
        return cls(
            count=len(ordered),
            mean=sum(ordered) / len(ordered),
            p50=_percentile(ordered, 50),
            p95=_percentile(ordered, 95),
            min=ordered[0],
            max=ordered[-1],
        )


@dataclass(frozen=True, slots=True)
class QoeRecord:
    session_id: str
    mode: str
    outcome: str  # "watching", "ended", "left", "exit_before_start", "start_failure", "fatal"
    started_at: float | None  # wall clock of the play request
    finished_at: float | None
    startup_time: float | None
    video_start_failure: bool
    exit_before_video_start: bool
    error: str | None
    stall_count: int
    stalled_time: float
    played_time: float
    rebuffering_ratio: float
    latency: LatencySummary | None
    average_bitrate: float | None  # bit/s
    start_bitrate: int | None
    switches: int
    requests: dict[str, dict[str, int]] = field(default_factory=dict)  # kind → status → count
    bytes_by_kind: dict[str, int] = field(default_factory=dict)
    latency_samples: tuple[float, ...] = ()

    @property
    def total_bytes(self) -> int:
        return sum(self.bytes_by_kind.values())

    def as_dict(self, with_samples: bool = False) -> dict[str, Any]:
        data = asdict(self)
        if not with_samples:
            del data["latency_samples"]
        else:
            data["latency_samples"] = list(self.latency_samples)
        data["total_bytes"] = self.total_bytes
        return data
