"""What ``livecast rehearse`` shows while it runs: the plain progress line (one a second, for logs
and pipes — CI and the tests read it, its format does not change) or, on a terminal, a live view
drawn with ``rich``: viewers, req/s, errors, startup, rebuffering, latency behind live and a
sparkline of the viewers over time.

:class:`TerminalView` keeps the reports (bounded) and makes the view; :func:`plain_line` is the
line. Both are pure — the view is a ``rich`` renderable, printed by whoever owns the console
(:class:`livecast.rehearse.live.LiveOutputs`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from livecast.dashboard.model import histogram_quantile
from livecast.rehearse.progress import STARTUP_BUCKETS, BucketCounts, Progress

SPARK = "▁▂▃▄▅▆▇█"
KEPT_SECONDS = 600  # reports kept for the sparkline (10 min)
SPARK_WIDTH = 60  # characters


def plain_line(p: Progress) -> str:
    """The one-line-a-second progress output (unchanged: logs and tests read it)."""

    def fmt(value: float | None) -> str:
        return "—" if value is None else f"{value:.2f}s"

    return (
        f"t={p.t:4d}s viewers={p.active:6d} req/s={p.requests:7d} errors={p.errors:5d} "
        f"latency p50={fmt(p.latency_p50)} p95={fmt(p.latency_p95)}"
    )


def sparkline(values: Sequence[float], width: int = SPARK_WIDTH) -> str:
    """The last ``width`` values as block characters, scaled from 0 to their maximum."""
    shown = list(values)[-width:]
    top = max(shown, default=0.0)
    if top <= 0:
        return SPARK[0] * len(shown)
    last = len(SPARK) - 1
    return "".join(SPARK[min(last, round(v / top * last))] for v in shown)


def quantile_of(buckets: BucketCounts, q: float) -> float | None:
    """``q`` quantile of bucket counts (``histogram_quantile``'s estimate)."""
    cumulative: list[tuple[float, float]] = []
    running = 0
    for bound, n in zip((*buckets.bounds, float("inf")), buckets.counts, strict=True):
        running += n
        cumulative.append((bound, float(running)))
    return histogram_quantile(q, cumulative)


class TerminalView:
    """The reports so far, and the live view of them."""

    def __init__(self, duration: float | None = None) -> None:
        self.duration = duration
        self.reports: deque[Progress] = deque(maxlen=KEPT_SECONDS)
        self.startup = BucketCounts.empty(STARTUP_BUCKETS)  # whole run
        self.started = 0
        self.start_failures = 0
        self.stalls = 0
        self.rebuffer_s = 0.0
        self.viewer_seconds = 0.0  # viewers playing, summed over the seconds
        self.requests = 0
        self.errors = 0

    def add(self, p: Progress) -> None:
        self.reports.append(p)
        self.startup = self.startup.merged(p.startup)
        self.started += p.started
        self.start_failures += p.start_failures
        self.stalls += p.stalls
        self.rebuffer_s += p.rebuffer_s
        self.viewer_seconds += p.active
        self.requests += p.requests
        self.errors += p.errors

    @property
    def rebuffering_ratio(self) -> float | None:
        """Stalled time over viewer time, the run so far."""
        return self.rebuffer_s / self.viewer_seconds if self.viewer_seconds > 0 else None

    def render(self) -> RenderableType:
        latest = self.reports[-1] if self.reports else None

        def secs(value: float | None) -> str:
            return "—" if value is None else f"{value:.2f} s"

        clock = "—" if latest is None else f"t = {latest.t} s"
        if latest is not None and self.duration is not None:
            clock += f" of {self.duration:g} s"
        table = Table(title=f"livecast rehearse · {clock}", show_header=True, expand=False)
        for column in ("viewers", "req/s", "errors/s", "startup p50 / p95", "rebuffering",
                       "latency p50 / p95"):  # fmt: skip
            table.add_column(column, justify="right")
        ratio = self.rebuffering_ratio
        table.add_row(
            "—" if latest is None else str(latest.active),
            "—" if latest is None else str(latest.requests),
            "—" if latest is None else str(latest.errors),
            f"{secs(quantile_of(self.startup, 0.5))} / {secs(quantile_of(self.startup, 0.95))}",
            "—" if ratio is None else f"{100 * ratio:.2f} %",
            "—" if latest is None else f"{secs(latest.latency_p50)} / {secs(latest.latency_p95)}",
        )
        totals = Text(
            f"started {self.started}  start failures {self.start_failures}  stalls {self.stalls}"
            f"  requests {self.requests}  errors {self.errors}",
            style="dim",
        )
        viewers = [float(p.active) for p in self.reports]
        peak = max(viewers, default=0.0)
        spark = Text.assemble(
            ("viewers ", "bold"), (sparkline(viewers), "cyan"), f"  peak {peak:.0f}"
        )
        return Group(table, spark, totals)
