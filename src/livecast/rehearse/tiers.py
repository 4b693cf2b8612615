"""Per-tier figures of a rehearsal's stack while it runs: the edges' and the shield's access logs,
followed incrementally (each line read once), summed per tier kind.

nginx has no request counter of its own in ``nginx-light``; every edge and shield writes one line
per request (``livecast.edge.accesslog``), and its ``$upstream_cache_status`` says whether the
answer came from the cache. A tier *kind* is the tier name without its index: ``edge-0`` and
``edge-1`` are both "edge" — the report shows tiers, not machines.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from livecast.edge.accesslog import parse_access_log_line
from livecast.rehearse.objects import ObjectLedger


@dataclass(slots=True)
class TierTotals:
    """Cumulative counts of one tier kind."""

    requests: int = 0
    responses_5xx: int = 0
    cache_lookups: int = 0  # requests with a cache status (the cache was involved)
    cache_hits: int = 0  # … answered from the cache (HIT, STALE, UPDATING)
    malformed: int = 0

    @property
    def hit_ratio(self) -> float | None:
        return self.cache_hits / self.cache_lookups if self.cache_lookups else None


def tier_kind(name: str) -> str:
    """``edge-3`` → ``edge``; ``shield`` → ``shield``."""
    head, _, index = name.rpartition("-")
    return head if head and index.isdigit() else name


class AccessLogFollower:
    """Reads what was appended to each access log since the last :meth:`poll`."""

    def __init__(self, logs: Mapping[str, Path], ledger: ObjectLedger | None = None) -> None:
        self.logs = dict(logs)
        self.ledger = ledger  # per-object figures (``rehearse.objects``), fed every record
        self._offsets = dict.fromkeys(self.logs, 0)
        self._partial = dict.fromkeys(self.logs, b"")
        self.totals: dict[str, TierTotals] = {}
        for name in self.logs:
            self.totals.setdefault(tier_kind(name), TierTotals())

    def poll(self) -> dict[str, TierTotals]:
        """Count the new complete lines of every log; the cumulative totals per tier kind."""
        for name, path in self.logs.items():
            chunk = b""
            with contextlib.suppress(FileNotFoundError), open(path, "rb") as log:
                log.seek(self._offsets[name])
                chunk = log.read()
            self._offsets[name] += len(chunk)
            data = self._partial[name] + chunk
            complete, _, rest = data.rpartition(b"\n")
            self._partial[name] = rest
            if complete:
                self._count(tier_kind(name), complete.decode("utf-8", "replace"))
        return self.totals

    def _count(self, kind: str, text: str) -> None:
        totals = self.totals[kind]
        for line in text.split("\n"):
            record = parse_access_log_line(line) if line else None
            if record is None:
                totals.malformed += bool(line)
                continue
            totals.requests += 1
            if self.ledger is not None:
                self.ledger.add(kind, record)
            if record.status >= 500:
                totals.responses_5xx += 1
            if record.cache_status is not None:
                totals.cache_lookups += 1
                totals.cache_hits += record.from_cache
