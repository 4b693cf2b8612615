"""``GET /admin/v1/sessions`` over a Redis lease store (a real redis-server on 127.0.0.1): the
admin API of a running origin (``livecast serve`` wiring) lists the sessions its viewers joined
through ``/session/heartbeat`` and those another origin holds in the same Redis, per account and
for every account; the status names the store; Redis down is a 503 to retry (docs/access.md)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from livecast.access.keys import keygen_stanza
from livecast.access.leases import LeasePolicy
from livecast.access.redis_server import RedisServer
from livecast.admin.api import hash_secret
from livecast.config import load_config
from livecast.pipeline import LivePipeline
from tests.integration.test_contribution import KEY
from tests.integration.test_origin_access import call

pytestmark = pytest.mark.integration

SECRET = "admin-secret-for-sessions"


async def test_sessions_are_listed_from_redis(tmp_path: Path, redis_server: RedisServer) -> None:
    from livecast.access.redis_leases import RedisLeaseStore

    keys = tmp_path / "keys.toml"
    keys.write_text(keygen_stanza("k1"))
    event = tmp_path / "event.toml"
    event.write_text(  # an RTMP server without its encoder: nothing to transcode, no slate
        f'port = 0\nsource = "rtmp"\n[ingest]\nrtmp_port = 0\nslate = false\n'
        f'[access]\ntokens = true\nkeys = "{keys}"\nmax_streams = 2\n'
        f'lease_store = "{redis_server.url}"\n'
        f'[admin]\nenabled = true\nport = 0\nsecret_hashes = "{hash_secret(SECRET)}"\n'
    )
    config = load_config(event, env={"LIVECAST_STREAM_KEY": KEY})
    other_origin = RedisLeaseStore.connect(redis_server.url, LeasePolicy(max_streams=2))
    try:
        async with LivePipeline(config).running(ready=False) as live:
            assert live.admin is not None and live.sessions is not None
            assert isinstance(live.sessions.store, RedisLeaseStore)
            admin = f"http://127.0.0.1:{live.admin.port}/admin/v1"
            bearer = {"Authorization": f"Bearer {SECRET}", "Content-Type": "application/json"}
            heartbeat = f"{live.base_url}/session/heartbeat?join=1"

            async def api(path: str, body: object = None) -> tuple[int, Any]:
                status, text = await asyncio.to_thread(call, f"{admin}{path}", body, bearer)
                return status, json.loads(text)

            for account, session in (("a1", "s1"), ("a1", "s2"), ("a2", "s3")):
                claims = {"event": "main", "account": account, "session": session, "ttl_s": 600}
                status, issued = await api("/tokens", claims)
                assert status == 201, issued
                cookie = {"Cookie": f"livecast_token={issued['token']}"}
                status, text = await asyncio.to_thread(call, heartbeat, None, cookie)
                assert status == 200, text
            # another origin's viewer of a3, in the same Redis
            assert (await other_origin.admit("a3", "s4", time.time())).admitted

            status, listed = await api("/sessions?account=a1")
            assert status == 200, listed
            assert [s["session"] for s in listed["sessions"]] == ["s1", "s2"]
            assert all(s["expires"] > time.time() + 20 for s in listed["sessions"])
            status, listed = await api("/sessions")
            assert status == 200 and listed["truncated"] is False
            found = sorted((s["account"], s["session"]) for s in listed["sessions"])
            assert found == [("a1", "s1"), ("a1", "s2"), ("a2", "s3"), ("a3", "s4")]
            assert (await api("/sessions?account=nobody"))[1]["sessions"] == []

            (origin,) = (await api("/status"))[1]["origins"]
            assert origin["leases"] == {"store": "redis", "admitted": 3, "leases": None}

            redis_server.stop()  # Redis down: a 503 to retry, not an empty list
            status, refused = await api("/sessions?account=a1")
            assert status == 503 and "did not answer" in refused["error"], refused
    finally:
        await other_origin.close()
