"""``watch`` that stops as soon as the viewer has seen enough.

:func:`livecast.web.browser.watch` samples the page for a fixed time; a test that asserts "at
least N s played within T s" can stop at the first sample that shows it instead of waiting out
T: the played time only grows, so reaching N at any moment before T is the same as having
reached it at T. The deadline stays T and the assertions stay the test's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from livecast.web.browser import Sample, WatchResult, open_page


async def watch_until(
    page_url: str,
    seconds: float,
    enough: Callable[[WatchResult], bool],
    *,
    sample_every: float = 0.5,
) -> WatchResult:
    """As :func:`livecast.web.browser.watch` for at most ``seconds``, ending after the first
    sample for which ``enough(result)`` holds (that sample is the final one)."""
    result = WatchResult(url=page_url, seconds=seconds)
    async with open_page(page_url) as opened:
        result.page_errors = opened.errors
        start = time.monotonic()
        deadline = start + seconds
        while True:
            now = time.monotonic()
            stats = await opened.stats()
            if stats is not None:
                result.samples.append(Sample(now - start, stats))
                if enough(result):
                    break
            if now >= deadline:
                break
            await asyncio.sleep(min(sample_every, max(0.0, deadline - time.monotonic())))
    return result


def played(seconds: float) -> Callable[[WatchResult], bool]:
    """``enough`` for :func:`watch_until`: ``seconds`` of media played and playing now."""

    def check(result: WatchResult) -> bool:
        final = result.final
        return final is not None and final.playing and result.advance >= seconds

    return check
