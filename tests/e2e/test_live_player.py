"""End to end: livecast's own stack played by hls.js in real headless Chromium.

Acceptance (issue 2): playback advances ≥ 10 s, no fatal hls.js error, displayed live latency
< 3 s.
"""

from __future__ import annotations

import asyncio
import urllib.request

import pytest

from livecast.pipeline import LivePipeline
from livecast.web.browser import find_chromium
from tests.e2e.watching import played, watch_until
from tests.requirements import skip_missing

pytestmark = pytest.mark.e2e


async def test_player_page_plays_live_with_low_latency(pipeline: LivePipeline) -> None:
    if find_chromium() is None:
        skip_missing("chromium")
    if "/hls.min.js" not in pipeline.app.static:
        skip_missing("hlsjs")
    result = await watch_until(pipeline.player_url, 16, played(10.0))
    summary = result.summary()
    assert result.fatal_error is None, summary
    assert result.advance >= 10.0, summary
    assert result.latency_p50 is not None and result.latency_p50 < 3.0, summary
    final = result.final
    assert final is not None and final.raw.get("lowLatencyMode") is True
    assert final.raw.get("targetLatency", 99) <= 1.5, "PART-HOLD-BACK should drive the target"
    # hls.js sends CMCD: the origin's QoE counts the browser's session (docs/qoe.md)
    metrics = await asyncio.to_thread(read_metrics, pipeline.base_url + "/metrics")
    assert 'livecast_qoe_sessions{event="main",source="origin"} 1' in metrics, metrics[-2000:]


def read_metrics(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return str(answer.read().decode())
