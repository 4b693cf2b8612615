"""CMCD of the requests reaching the origin, and the wiring of the ``livecast_qoe_*`` metrics
into an origin server.

The origin's fast path answers a keep-alive GET from its answer cache without building a
request; CMCD must not slow it. So the connection only asks ``b"CMCD=" in target`` and hands the
raw target and its ``now`` to :meth:`CmcdTap.offer` (a bounded deque append, ≈ 0.2 µs); the
targets are parsed in batches by :meth:`CmcdTap.drain` before each ``/metrics`` answer (≈ 40 µs
per request on this machine, so at most :data:`DRAIN_LIMIT` per answer, ≈ 20 ms of the loop).
Past :data:`CAPACITY` pending targets, the oldest are dropped and counted (``dropped``): under
a load the scrapes cannot keep up with, the figures are those of a sample. Only the query form
is read at the origin (the edges' logs carry the header form too; livecast's players use the
query form).

At the origin a request's duration and size are not known when it is offered: its start stands
for its end and its size is 0 — the startup estimate then runs to the start of the first request
without ``su``. Behind edges only their misses reach the origin, so ``source="origin"`` counts
what the origin saw, not the audience.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from livecast.errors import CmcdError
from livecast.origin.streams import stream_of
from livecast.qoe.aggregate import CmcdRequest, QoeAggregator
from livecast.qoe.cmcd import from_target
from livecast.qoe.edge_logs import AccessLogTail
from livecast.qoe.metrics import QoeMetrics
from livecast.telemetry.metrics import Registry

CAPACITY = 5_000  # targets pending between two /metrics answers (the oldest dropped beyond)
DRAIN_LIMIT = 500  # targets parsed per /metrics answer (≈ 20 ms of the event loop)


class CmcdTap:
    """Raw request targets carrying CMCD, parsed later into ``aggregator`` (pure: times are
    passed in; ``offset`` is added to them, e.g. epoch − monotonic, so both sources share a
    clock)."""

    __slots__ = ("aggregator", "dropped", "offset", "pending")

    def __init__(
        self, aggregator: QoeAggregator, *, offset: float = 0.0, capacity: int = CAPACITY
    ) -> None:
        self.aggregator = aggregator
        self.offset = offset
        self.pending: deque[tuple[bytes, float]] = deque(maxlen=capacity)
        self.dropped = 0

    def offer(self, target: bytes, now: float) -> None:
        """One request's raw target (already known to hold ``CMCD=``), at ``now``."""
        pending = self.pending
        if len(pending) == pending.maxlen:
            self.dropped += 1
        pending.append((target, now))

    def drain(self, limit: int = DRAIN_LIMIT) -> int:
        """Parse up to ``limit`` pending targets (oldest first) into the aggregator; the number
        of CMCD requests."""
        count = 0
        aggregator, offset, pending = self.aggregator, self.offset, self.pending
        for _ in range(min(limit, len(pending))):
            raw, at = pending.popleft()
            target = raw.decode("latin-1")
            event = stream_of(target.partition("?")[0])
            if event is None:
                continue
            try:
                cmcd = from_target(target)
            except CmcdError:
                aggregator.malformed += 1
                continue
            if cmcd is not None:
                aggregator.add(CmcdRequest(at + offset, at + offset, event, 0, 0, cmcd))
                count += 1
        return count


@dataclass(slots=True)
class OriginQoe:
    """The two sources of an origin's ``livecast_qoe_*``: its own requests (``tap``) and, under
    ``livecast up``, its edges' access logs (``edge_logs``, set once the edges run)."""

    edge: QoeAggregator
    origin: QoeAggregator
    tap: CmcdTap
    metrics: QoeMetrics
    edge_logs: AccessLogTail | None = None

    def collect(self) -> None:
        """Before each ``/metrics`` answer: new edge log lines, pending origin targets, then the
        metrics."""
        if self.edge_logs is not None:
            self.edge_logs.poll()
        self.tap.drain()
        self.metrics.collect()


def origin_qoe(registry: Registry, clock: Callable[[], float], offset: float) -> OriginQoe:
    """Aggregators, tap and metrics for one origin; ``clock`` gives the metrics' now (epoch
    seconds, the edges' log clock), ``offset`` turns the server's clock into it."""
    edge, origin = QoeAggregator(), QoeAggregator()
    tap = CmcdTap(origin, offset=offset)
    metrics = QoeMetrics(registry, {"edge": edge, "origin": origin}, clock)
    return OriginQoe(edge, origin, tap, metrics)
