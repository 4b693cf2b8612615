"""The rehearsal driver's own Prometheus metrics (``livecast_rehearsal_*``), fed from the merged
per-second :class:`~livecast.rehearse.progress.Progress` reports. Pure: no I/O, no clock; the
rehearsal's ``--metrics-port`` server renders :attr:`RehearsalMetrics.registry`.

    metrics = RehearsalMetrics()
    metrics.observe(progress)      # once a second, the merged report of all viewer processes
    metrics.registry.render()      # Prometheus text format 0.0.4

Names (agreed with the dashboard and docs/metrics.md): ``livecast_rehearsal_viewers`` (gauge,
playing now), ``…_viewers_started_total``, ``…_start_failures_total``, ``…_stalls_total``,
``…_rebuffer_seconds_total``, ``…_requests_total``, ``…_request_errors_total`` and the histograms
``…_startup_seconds`` and ``…_latency_seconds`` (latency behind live), whose buckets are the
progress reports' (:data:`~livecast.rehearse.progress.STARTUP_BUCKETS`,
:data:`~livecast.rehearse.progress.LATENCY_BUCKETS`).
"""

from __future__ import annotations

from livecast.rehearse.progress import LATENCY_BUCKETS, STARTUP_BUCKETS, Progress
from livecast.telemetry.metrics import Registry

VIEWERS = "livecast_rehearsal_viewers"
VIEWERS_STARTED = "livecast_rehearsal_viewers_started_total"
START_FAILURES = "livecast_rehearsal_start_failures_total"
STALLS = "livecast_rehearsal_stalls_total"
REBUFFER_SECONDS = "livecast_rehearsal_rebuffer_seconds_total"
REQUESTS = "livecast_rehearsal_requests_total"
REQUEST_ERRORS = "livecast_rehearsal_request_errors_total"
STARTUP_SECONDS = "livecast_rehearsal_startup_seconds"
LATENCY_SECONDS = "livecast_rehearsal_latency_seconds"


class RehearsalMetrics:
    """A registry of the ``livecast_rehearsal_*`` metrics and what one progress report adds."""

    def __init__(self, registry: Registry | None = None) -> None:
        self.registry = registry = registry if registry is not None else Registry()
        self.viewers = registry.gauge(VIEWERS, "Virtual viewers playing now.").labels()
        self.started = registry.counter(
            VIEWERS_STARTED, "Virtual viewers whose first frame played."
        ).labels()
        self.start_failures = registry.counter(
            START_FAILURES, "Virtual viewers that gave up before their first frame."
        ).labels()
        self.stalls = registry.counter(STALLS, "Playback stalls of the virtual viewers.").labels()
        self.rebuffer = registry.counter(
            REBUFFER_SECONDS, "Seconds the virtual viewers spent stalled, all added."
        ).labels()
        self.requests = registry.counter(
            REQUESTS, "HTTP requests of the virtual viewers that ended (answered or failed)."
        ).labels()
        self.errors = registry.counter(
            REQUEST_ERRORS, "Requests of the virtual viewers answered 4xx/5xx or not answered."
        ).labels()
        self.startup = registry.histogram(
            STARTUP_SECONDS, "Startup time of the virtual viewers (play request to first frame).",
            STARTUP_BUCKETS,
        ).labels()  # fmt: skip
        self.latency = registry.histogram(
            LATENCY_SECONDS, "Latency behind live of the virtual viewers, sampled while playing.",
            LATENCY_BUCKETS,
        ).labels()  # fmt: skip
        self.last_t: int | None = None  # the newest second observed

    def observe(self, progress: Progress) -> None:
        """One closed second, merged over the viewer processes."""
        self.viewers.set(progress.active)
        self.started.inc(progress.started)
        self.start_failures.inc(progress.start_failures)
        self.stalls.inc(progress.stalls)
        self.rebuffer.inc(progress.rebuffer_s)
        self.requests.inc(progress.requests)
        self.errors.inc(progress.errors)
        self.startup.add_counts(progress.startup.counts, progress.startup.sum)
        self.latency.add_counts(progress.latency.counts, progress.latency.sum)
        self.last_t = progress.t

    def render(self) -> bytes:
        return self.registry.render()
