"""One second of a rehearsal's audience, for the live terminal line — what every engine's viewer
process reports (the local driver's workers over a queue, Locust's workers as a message) and how
the reports of one second are merged. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Progress:
    """One second of one viewer process's run (or of all of them, merged)."""

    t: int
    active: int
    requests: int
    errors: int
    latency_p50: float | None
    latency_p95: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Progress:
        def opt(key: str) -> float | None:
            value = data.get(key)
            return None if value is None else float(value)

        return cls(
            int(data["t"]), int(data["active"]), int(data["requests"]), int(data["errors"]),
            opt("latency_p50"), opt("latency_p95"),
        )  # fmt: skip


def merge_progress(t: int, parts: Sequence[Progress]) -> Progress:
    """The processes' reports of second ``t``: sums, and the worst process's latency (a
    conservative figure)."""

    def worst(values: list[float | None]) -> float | None:
        known = [v for v in values if v is not None]
        return max(known) if known else None

    return Progress(
        t=t,
        active=sum(p.active for p in parts),
        requests=sum(p.requests for p in parts),
        errors=sum(p.errors for p in parts),
        latency_p50=worst([p.latency_p50 for p in parts]),
        latency_p95=worst([p.latency_p95 for p in parts]),
    )
