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

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from livecast.player.buffer import MediaBuffer
from livecast.player.requests import RequestLedger
from livecast.results.histogram import interpolated_percentile


def rebuffering_ratio(stalled: float, played: float) -> float:
    total = stalled + played
    return stalled / total if total > 0 else 0.0


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
            p50=interpolated_percentile(ordered, 50),
            p95=interpolated_percentile(ordered, 95),
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


def build_record(
    *,
    session_id: str,
    mode: str,
    outcome: str,
    started_at: float | None,
    finished_at: float | None,
    error: str | None,
    buffer: MediaBuffer | None,
    latency_samples: Sequence[float],
    start_bitrate: int | None,
    switches: int,
    ledger: RequestLedger,
) -> QoeRecord:
    """The record of a viewer from its buffer (already advanced to the moment wanted)."""
    first_frame = buffer.first_frame_at if buffer else None
    played = buffer.played if buffer else 0.0
    stalled = buffer.stalled if buffer else 0.0
    startup = None
    if first_frame is not None and started_at is not None:
        startup = first_frame - started_at
    return QoeRecord(
        session_id=session_id,
        mode=mode,
        outcome=outcome,
        started_at=started_at,
        finished_at=finished_at,
        startup_time=startup,
        video_start_failure=outcome == "start_failure",
        exit_before_video_start=outcome == "exit_before_start",
        error=error,
        stall_count=buffer.stall_count if buffer else 0,
        stalled_time=stalled,
        played_time=played,
        rebuffering_ratio=rebuffering_ratio(stalled, played),
        latency=LatencySummary.of(latency_samples),
        average_bitrate=buffer.bitrate_seconds / played if buffer and played > 0 else None,
        start_bitrate=start_bitrate,
        switches=switches,
        requests={kind: dict(statuses) for kind, statuses in ledger.by_status.items()},
        bytes_by_kind=dict(ledger.bytes_by_kind),
        latency_samples=tuple(latency_samples),
    )
