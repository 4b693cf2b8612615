"""The ``livecast_qoe_*`` metrics of the origin's ``/metrics``, one aggregator per source
("edge": the edges' access logs; "origin": requests reaching the origin), labels ``event``
(stream id) and ``source``:

* ``livecast_qoe_sessions`` — gauge: distinct CMCD sessions seen in the last 30 s;
* ``livecast_qoe_buffer_starvations_total`` — requests carrying ``bs``;
* ``livecast_qoe_media_requests_total{bitrate_kbps}`` — video requests by ``br`` (bitrate mix);
* ``livecast_qoe_throughput_bits_per_second`` — gauge: median ``mtp`` over the last 30 s;
* ``livecast_qoe_startup_seconds`` — gauge: median startup estimate of the sessions that started
  in the last 30 s (``qoe.aggregate`` defines the estimate).

:meth:`QoeMetrics.collect` is a collector (``origin.http``: called before each ``/metrics``
answer); it takes the time from the clock it was given, and is pure apart from that.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

from livecast.qoe.aggregate import QoeAggregator
from livecast.telemetry.metrics import Registry

SOURCES = ("edge", "origin")


class QoeMetrics:
    """Exports the figures of ``sources`` (source name → aggregator) into ``registry``."""

    def __init__(
        self,
        registry: Registry,
        sources: Mapping[str, QoeAggregator],
        clock: Callable[[], float],
    ) -> None:
        self.sources = dict(sources)
        self.clock = clock
        labels = ("event", "source")
        self.sessions = registry.gauge(
            "livecast_qoe_sessions", "Distinct CMCD sessions seen in the last 30 s", labels
        )
        self.starvations = registry.counter(
            "livecast_qoe_buffer_starvations_total", "Requests carrying CMCD bs", labels
        )
        self.media = registry.counter(
            "livecast_qoe_media_requests_total",
            "Video requests by CMCD br (bitrate mix)",
            (*labels, "bitrate_kbps"),
        )
        self.throughput = registry.gauge(
            "livecast_qoe_throughput_bits_per_second",
            "Median CMCD mtp over the last 30 s",
            labels,
        )
        self.startup = registry.gauge(
            "livecast_qoe_startup_seconds",
            "Median CMCD startup estimate of sessions started in the last 30 s",
            labels,
        )
        self._exported: dict[tuple[str, ...], int] = {}  # counters' values already added

    def _advance(self, key: tuple[str, ...], total: int) -> int:
        """How much a counter grew since the last export."""
        grown = total - self._exported.get(key, 0)
        self._exported[key] = total
        return max(0, grown)

    def collect(self) -> None:
        """Bring every series up to date (the gauges at the clock's now)."""
        now = self.clock()
        for source, aggregator in self.sources.items():
            windows = aggregator.window_figures(now)
            for event, totals in aggregator.events.items():
                grown = self._advance(("bs", event, source), totals.starvations)
                self.starvations.inc(event, source, amount=grown)
                for br, count in totals.media_requests.items():
                    grown = self._advance(("br", event, source, str(br)), count)
                    self.media.inc(event, source, str(br), amount=grown)
                figures = windows[event]
                self.sessions.set(figures.sessions, event, source)
                mtp = figures.throughput_kbps
                self.throughput.set(math.nan if mtp is None else mtp * 1000, event, source)
                startup = figures.startup_s
                self.startup.set(math.nan if startup is None else startup, event, source)
