"""The player page with signed playback tokens and a stream limit per account, in real headless
Chromium against livecast's own origin (``[access] tokens = true, max_streams = 1``): the page
hands ``?token=`` to hls.js as the ``livecast_token`` cookie and plays; it joins its stream's
lease and heartbeats it; a second stream of the same account is refused with the reason shown;
a page without a token cannot load the stream."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from livecast.access.keys import keygen_stanza, load_key_ring
from livecast.access.tokens import TokenClaims, issue
from livecast.config import load_config
from livecast.pipeline import LivePipeline
from livecast.web.browser import find_chromium, watch
from tests.e2e.watching import played, watch_until
from tests.requirements import skip_missing

pytestmark = pytest.mark.e2e


@pytest_asyncio.fixture
async def guarded(tmp_path: Path) -> AsyncIterator[tuple[LivePipeline, Path]]:
    """The origin with tokens and one stream per account (heartbeats every 2 s ± 20 %)."""
    if find_chromium() is None:
        skip_missing("chromium")
    keys = tmp_path / "keys.toml"
    keys.write_text(keygen_stanza("k1"))
    event = tmp_path / "event.toml"
    event.write_text(
        f'port = 0\n[access]\ntokens = true\nkeys = "{keys}"\nmax_streams = 1\nlease_ttl = 6.0\n'
    )
    async with LivePipeline(load_config(event, env={})).running() as live:
        if "/hls.min.js" not in live.app.static:
            skip_missing("hlsjs")
        yield live, keys


def page(live: LivePipeline, keys: Path, account: str, session: str) -> str:
    claims = TokenClaims("main", account, session, int(time.time()) + 600)
    return f"{live.player_url}?token={issue(claims, load_key_ring(keys, env={}))}"


def admitted(live: LivePipeline) -> int:
    """How many joins and heartbeats the origin admitted so far (its /metrics)."""
    with urllib.request.urlopen(f"{live.base_url}/metrics", timeout=5) as response:
        text = response.read().decode()
    line = 'livecast_sessions_answered_total{result="admitted"} '
    return sum(int(float(row[len(line) :])) for row in text.splitlines() if row.startswith(line))


async def test_the_page_plays_with_its_token_and_a_second_stream_of_the_account_is_refused(
    guarded: tuple[LivePipeline, Path],
) -> None:
    live, keys = guarded
    first = asyncio.create_task(watch_until(page(live, keys, "family", "tv"), 14, played(6.0)))
    await asyncio.sleep(3.0)  # the first page has joined (its join goes out with the page)
    second = await watch(page(live, keys, "family", "phone"), 4.0)
    result = await first
    assert result.fatal_error is None, result.summary()
    assert result.advance >= 6.0, result.summary()
    beats = await asyncio.to_thread(admitted, live)
    assert beats >= 3, beats  # the join and heartbeats every 2 s ± 20 % kept its lease
    assert second.fatal_error is not None and "too_many_streams" in second.fatal_error
    final = second.final
    assert final is not None
    assert any(e["type"] == "session" and e["details"] == "too_many_streams" for e in final.errors)
    # another account plays beside the first
    other = await watch_until(page(live, keys, "neighbour", "tv"), 10, played(2.0))
    assert other.fatal_error is None, other.summary()


async def test_a_page_without_a_token_cannot_load_the_stream(
    guarded: tuple[LivePipeline, Path],
) -> None:
    live, _ = guarded
    result = await watch(live.player_url, 4.0)
    assert result.fatal_error is not None and "manifestLoadError" in result.fatal_error
    assert result.advance == 0.0
