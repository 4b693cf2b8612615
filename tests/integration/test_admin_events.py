"""The admin API acts on the running pipeline (``livecast serve`` wiring, real sockets, real
FFmpeg as the encoder): an event created on an RTMP server answers its publish URL and a fresh
stream key; its encoder is refused until the event starts; once started, FFmpeg publishes to the
returned URL and the media playlist answers (with a token); the status shows the pipeline live
and the origin serving it; stop puts EXT-X-ENDLIST in the playlist at once. On a server whose
source cannot take new events, create is a 409 and nothing changes (docs/access.md)."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from livecast.access.keys import keygen_stanza
from livecast.admin.api import AdminResponse, hash_secret
from livecast.admin.server import perform
from livecast.admin.state import AdminCall
from livecast.config import load_config
from livecast.ingest.keys import fingerprint
from livecast.pipeline import LivePipeline
from tests.integration.test_contribution import KEY, publish, stop
from tests.integration.test_origin_access import call
from tests.integration.test_rtmp_server import APP, ScriptedPublisher

pytestmark = pytest.mark.integration

SECRET = "admin-secret-for-events"
EVENT = "stage-9"


def event_file(tmp_path: Path, source: str) -> Path:
    keys = tmp_path / "keys.toml"
    keys.write_text(keygen_stanza("k1"))
    event = tmp_path / "event.toml"
    event.write_text(
        f'port = 0\nsource = "{source}"\n[ingest]\nrtmp_port = 0\n'
        f'[access]\ntokens = true\nkeys = "{keys}"\n'
        f'[admin]\nenabled = true\nport = 0\nsecret_hashes = "{hash_secret(SECRET)}"\n'
    )
    return event


async def publish_status(port: int, key: str) -> str:
    """The onStatus code a publish with ``key`` is answered with."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"\x03" + bytes(1536))
    await reader.readexactly(1 + 1536 * 2)
    writer.write(bytes(1536))
    client = ScriptedPublisher(reader, writer)
    await client.command("connect", 1, {"app": APP, "tcUrl": f"rtmp://127.0.0.1/{APP}"})
    await client.command("createStream", 2, None)
    await client.command("publish", 3, None, key, "live", stream_id=1)
    try:
        return await client.until_status()
    finally:
        writer.close()


async def test_an_event_created_through_the_admin_api_takes_its_encoder_once_started(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="livecast")
    config = load_config(event_file(tmp_path, "rtmp"), env={"LIVECAST_STREAM_KEY": KEY})
    async with LivePipeline(config).running(ready=False) as live:
        assert live.admin is not None and live.rtmp is not None
        admin = f"http://127.0.0.1:{live.admin.port}/admin/v1"
        bearer = {"Authorization": f"Bearer {SECRET}", "Content-Type": "application/json"}
        media = f"{live.base_url}/live/{EVENT}/360p/index.m3u8"

        async def api(path: str, body: object = None) -> tuple[int, Any]:
            status, text = await asyncio.to_thread(call, f"{admin}{path}", body, bearer)
            return status, json.loads(text) if text else None

        status, created = await api("/events", {"id": EVENT, "title": "Stage 9"})
        assert status == 201, created
        key = created["stream_key"]
        (ingest,) = live.ingest_urls
        assert created["publish_url"] == f"{ingest}/{key}" and len(key) >= 32
        assert created["ingest"] == {"url": ingest, "key_fingerprint": fingerprint(key)}
        assert created["state"] == "created"
        assert "stream_key" not in (await api(f"/events/{EVENT}"))[1]  # shown once
        assert (await api("/events", {"id": EVENT, "title": "again"}))[0] == 409

        status, issued = await api(
            "/tokens", {"event": EVENT, "account": "a1", "session": "s1", "ttl_s": 600}
        )
        assert status == 201, issued
        cookie = {"Cookie": f"livecast_token={issued['token']}"}
        assert (await asyncio.to_thread(call, media, None, cookie))[0] == 404  # not started
        # the encoder is refused until the event starts, with the reason in the log
        assert await publish_status(live.rtmp.port, key) == "NetStream.Publish.BadName"
        assert "is created but not started" in caplog.text

        status, started = await api(f"/events/{EVENT}/start", {})
        assert (status, started["state"]) == (200, "live"), started
        assert (await api(f"/events/{EVENT}/start", {}))[0] == 409  # once
        encoder = await publish(created["publish_url"], 30.0)
        try:
            await live.wait_ready(timeout=20, stream=EVENT)
            status, playlist = await asyncio.to_thread(call, media, None, cookie)
            assert status == 200 and "#EXT-X-PART:" in playlist, playlist
            assert (await asyncio.to_thread(call, media))[0] == 403  # the token is required
            status, report = await api("/status")
            assert status == 200, report
            pipelines = {p["stream"]: p for p in report["pipelines"]}
            stage = pipelines[EVENT]
            assert (stage["state"], stage["source"], stage["on_air"]) == ("live", "rtmp", "primary")
            assert "360p" in stage["renditions"] and stage["recording"] is None
            assert 0 <= stage["media_age_s"] < 5
            assert pipelines["main"]["state"] == "waiting"  # no encoder for main
            (origin,) = report["origins"]
            assert EVENT in origin["streams"] and origin["requests"] >= 3
            assert origin["address"] == live.base_url.removeprefix("http://")
            assert report["edges"] == [] and report["events"]["live"] == 2

            status, stopped = await api(f"/events/{EVENT}/stop", {})
            assert (status, stopped["state"]) == (200, "ended"), stopped
            status, playlist = await asyncio.to_thread(call, media, None, cookie)
            assert status == 200 and "#EXT-X-ENDLIST" in playlist
            assert (await api("/status"))[1]["events"] == {"created": 0, "live": 1, "ended": 1}
            assert await publish_status(live.rtmp.port, key) == "NetStream.Publish.BadName"
            assert "has ended" in caplog.text
        finally:
            await stop(encoder)
    assert key not in caplog.text  # keys are logged by their fingerprints
    assert fingerprint(key) in caplog.text


async def test_a_source_that_cannot_take_new_events_answers_409(tmp_path: Path) -> None:
    """A test source makes its own event: create is refused and the catalog is unchanged (the
    pipeline is built, not started: the API's two steps as the server runs them)."""
    pipeline = LivePipeline(load_config(event_file(tmp_path, "test"), env={}))
    assert pipeline.admin is not None
    api = pipeline.admin.api
    control = api.state.control
    assert control is not None
    headers = [("Authorization", f"Bearer {SECRET}")]
    body = json.dumps({"id": EVENT, "title": "Stage 9"}).encode()
    outcome = api.handle("POST", "/admin/v1/events", "", headers, body, "10.0.0.1", 1.0)
    assert isinstance(outcome, AdminCall)
    try:
        result: object = await perform(control, outcome, 1.0)
    except Exception as exc:
        result = exc
    answer = api.finish(outcome, result, 1.0)
    assert isinstance(answer, AdminResponse)
    assert answer.status == 409 and "cannot take new events" in answer.json()["error"]
    assert api.state.catalog.list() == [] and api.state.reserved == {}
    assert pipeline.not_started == set() and EVENT not in pipeline.channels
