"""The rehearsal's terminal output: the plain line (unchanged) and the rich live view."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from livecast.errors import ConfigError
from livecast.rehearse.live import LiveOptions, LiveOutputs, TerminalView, plain_line, sparkline
from livecast.rehearse.progress import STARTUP_BUCKETS, BucketCounts, Progress


def report(t: int, active: int, started: int = 0, rebuffer_s: float = 0.0) -> Progress:
    return Progress(t, active, 40 * active, 1, 1.25, 2.5, started=started, rebuffer_s=rebuffer_s,
                    startup=BucketCounts.of(STARTUP_BUCKETS, [(0.6, started)]))  # fmt: skip


def test_plain_line_keeps_its_format() -> None:
    assert plain_line(Progress(7, 20, 300, 2, 1.234, None)) == (
        "t=   7s viewers=    20 req/s=    300 errors=    2 latency p50=1.23s p95=—"
    )


def test_sparkline_scales_to_the_maximum_and_keeps_the_last_values() -> None:
    assert sparkline([0, 4, 8]) == "▁▅█"
    assert sparkline([0, 0]) == "▁▁"
    assert sparkline(list(range(100)), width=10) == sparkline(list(range(90, 100)), width=10)


def test_rich_view_shows_the_figures_and_the_viewers_sparkline() -> None:
    view = TerminalView(duration=15)
    view.add(report(0, 10, started=10))
    view.add(report(1, 20, started=10, rebuffer_s=0.3))
    console = Console(record=True, file=io.StringIO(), force_terminal=True, width=110)
    console.print(view.render())
    text = console.export_text()
    assert "t = 1 s of 15 s" in text
    assert "viewers" in text and "req/s" in text and "startup p50 / p95" in text
    row = next(line for line in text.splitlines() if "800" in line)
    assert "20" in row and "1.25 s / 2.50 s" in row  # viewers, latency of the latest second
    assert "1.00 %" in row  # rebuffering: 0.3 s of 30 viewer-seconds
    assert "0.62 s / 0.74 s" in row  # startup quantiles in (0.5, 0.75]
    assert "▅█" in text and "peak 20" in text
    assert "started 20" in text


def test_live_outputs_print_the_plain_line_when_the_stream_is_not_a_terminal() -> None:
    stream = io.StringIO()
    outputs = LiveOutputs(LiveOptions(), stream)
    outputs.progress(report(3, 5))
    assert stream.getvalue() == plain_line(report(3, 5)) + "\n"
    assert outputs.metrics.viewers.value == 5


async def test_live_outputs_draw_the_rich_view_from_the_first_report() -> None:
    stream = io.StringIO()
    outputs = LiveOutputs(LiveOptions(rich=True), stream, duration=15)
    await outputs.start()
    assert stream.getvalue() == ""  # nothing drawn before the show starts
    outputs.progress(report(0, 7, started=7))
    await outputs.stop()
    text = stream.getvalue()
    assert "livecast rehearse · t = 0 s of 15 s" in text and "t=   0s" not in text
    assert outputs.metrics.started.value == 7


def test_a_port_out_of_range_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="--metrics-port"):
        LiveOptions(metrics_port=70000)
    with pytest.raises(ConfigError, match="--dashboard-port"):
        LiveOptions(dashboard_port=-1)
