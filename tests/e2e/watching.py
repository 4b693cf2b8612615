"""``watch`` that stops as soon as the viewer has seen enough.

:func:`livecast.web.browser.watch` samples the page for a fixed time; a test that asserts "at
least N s played within T s" can stop at the first sample that shows it instead of waiting out
T: the played time only grows, so reaching N at any moment before T is the same as having
reached it at T. The deadline stays T and the assertions stay the test's.
"""

from __future__ import annotations

from collections.abc import Callable

from livecast.web.browser import WatchResult, watch


async def watch_until(
    page_url: str,
    seconds: float,
    enough: Callable[[WatchResult], bool],
    *,
    sample_every: float = 0.5,
) -> WatchResult:
    """As :func:`livecast.web.browser.watch` for at most ``seconds``, ending after the first
    sample for which ``enough(result)`` holds (that sample is the final one)."""
    return await watch(page_url, seconds, sample_every=sample_every, enough=enough)


def played(seconds: float) -> Callable[[WatchResult], bool]:
    """``enough`` for :func:`watch_until`: ``seconds`` of media played and playing now."""

    def check(result: WatchResult) -> bool:
        final = result.final
        return final is not None and final.playing and result.advance >= seconds

    return check
