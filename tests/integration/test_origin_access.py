"""``[access]`` and ``[admin]`` on a running origin (``LivePipeline``, real FFmpeg and sockets):
the stream needs a token, the player page does not, and the admin API's tokens and revocations
act on the origin's own gate; the session endpoints (in memory here) answer joins, floods and
revocations, their figures on /metrics."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from livecast.access.keys import keygen_stanza, load_key_ring
from livecast.access.tokens import TokenClaims, issue
from livecast.admin.api import hash_secret
from livecast.config import load_config
from livecast.pipeline import LivePipeline

pytestmark = pytest.mark.integration

SECRET = "admin-secret-for-the-test"


def call(url: str, body: object = None, headers: dict[str, str] | None = None) -> tuple[int, str]:
    """One request (POST with a JSON ``body``); status and X-Livecast-Reason or the JSON text."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("X-Livecast-Reason") or exc.read().decode()


async def test_tokens_from_the_admin_api_open_the_stream_until_revoked(tmp_path: Path) -> None:
    keys = tmp_path / "keys.toml"
    keys.write_text(keygen_stanza("k1"))
    event = tmp_path / "event.toml"
    event.write_text(
        f'port = 0\n[access]\ntokens = true\nkeys = "{keys}"\nmax_streams = 1\n'
        f'[admin]\nenabled = true\nport = 0\nsecret_hashes = "{hash_secret(SECRET)}"\n'
    )
    async with LivePipeline(load_config(event, env={})).running() as live:
        assert live.admin is not None
        admin = f"http://127.0.0.1:{live.admin.port}/admin/v1"
        bearer = {"Authorization": f"Bearer {SECRET}", "Content-Type": "application/json"}
        stream = live.playlist_url

        def run() -> None:
            assert call(stream) == (403, "missing")
            assert call(live.player_url)[0] == 200  # the page and hls.js need no token
            claims = {"event": "main", "account": "a1", "session": "s1", "ttl_s": 600}
            assert call(f"{admin}/tokens", claims)[0] == 401  # no bearer: nothing issued
            status, text = call(f"{admin}/tokens", claims, bearer)
            assert status == 201, text
            cookie = {"Cookie": f"livecast_token={json.loads(text)['token']}"}
            assert call(stream, headers=cookie)[0] == 200
            # the origin's clock is monotonic; the tokens' are Unix seconds
            stale = TokenClaims("main", "a1", "s0", int(time.time()) - 120)
            expired = {"Cookie": f"livecast_token={issue(stale, load_key_ring(keys, env={}))}"}
            assert call(stream, headers=expired) == (403, "expired")
            # one stream per account: s1 joins, a second session of a1 is refused
            heartbeat = f"{live.base_url}/session/heartbeat"
            status, text = call(f"{heartbeat}?join=1", headers=cookie)
            assert status == 200 and json.loads(text)["next_s"] > 0
            second = call(f"{admin}/tokens", {**claims, "session": "s2"}, bearer)[1]
            other = {"Cookie": f"livecast_token={json.loads(second)['token']}"}
            assert call(f"{heartbeat}?join=1", headers=other) == (403, "too_many_streams")
            # a session beating again at once is answered without the store, until its floor
            assert call(heartbeat, headers=cookie) == (429, "heartbeat_too_soon")
            metrics = call(f"{live.base_url}/metrics")[1]
            assert "livecast_lease_store_round_trips_total 2\n" in metrics
            assert 'livecast_sessions_answered_total{result="heartbeat_too_soon"} 1\n' in metrics
            sessions = json.loads(call(f"{admin}/sessions?account=a1", headers=bearer)[1])
            assert [s["session"] for s in sessions["sessions"]] == ["s1"]
            assert call(f"{admin}/revocations", {"session": "s1"}, bearer)[0] == 204
            assert call(stream, headers=cookie) == (403, "revoked")
            assert call(heartbeat, headers=cookie) == (403, "revoked")

        await asyncio.to_thread(run)
