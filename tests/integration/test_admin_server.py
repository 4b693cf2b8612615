"""The admin API on a real socket (127.0.0.1, a free port): 401/200 and keep-alive over one
connection, the adapter's own limits (413, 411, idle timeout), and schemathesis runs (its CLI,
every check) against the served OpenAPI document with the bearer header — over the bare API, and
over the API of a running pipeline (``livecast serve`` wiring: events created, started and stopped
on an RTMP server, the real status with an unreachable edge) (docs/access.md)."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from livecast.access.keys import KeyRing, keygen_stanza
from livecast.access.leases import LeasePolicy, LeaseTable
from livecast.admin.api import AdminApi, Buckets, RateLimit, hash_secret
from livecast.admin.server import AdminLimits, AdminServer
from livecast.admin.state import AdminState
from livecast.config import load_config
from livecast.pipeline import LivePipeline
from tests.integration.test_contribution import KEY

pytestmark = pytest.mark.integration

SECRET = "integration-admin-secret"
EXAMPLES_PER_OPERATION = 30
SCHEMATHESIS_TIMEOUT = 120.0


@pytest.fixture
async def server() -> AsyncIterator[AdminServer]:
    state = AdminState(KeyRing({"k1": b"1" * 32}, "k1"), leases=LeaseTable(LeasePolicy()))
    # schemathesis sends hundreds of requests from one address: a bucket wide enough for them
    api = AdminApi(state, [hash_secret(SECRET)], rate_limit=RateLimit(10_000, 10_000))
    admin = AdminServer(api, limits=AdminLimits(idle_timeout=1.0))
    await admin.start("127.0.0.1", 0)
    yield admin
    await admin.stop()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {
        k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)
    }
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers, body


def request(method: str, path: str, body: bytes = b"", *, auth: bool = True) -> bytes:
    lines = [f"{method} /admin/v1{path} HTTP/1.1", "Host: 127.0.0.1"]
    if auth:
        lines.append(f"Authorization: Bearer {SECRET}")
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def test_401_then_200_on_one_keep_alive_connection(server: AdminServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(request("GET", "/events", auth=False))
    status, headers, _ = await read_response(reader)
    assert (status, headers["www-authenticate"]) == (401, "Bearer")
    assert headers["connection"] == "keep-alive"
    created = json.dumps({"id": "main", "title": "Main"}).encode()
    # pipelined: both requests in one write, answered in order
    writer.write(request("POST", "/events", created) + request("GET", "/events/main"))
    assert (await read_response(reader))[0] == 201
    status, _, body = await read_response(reader)
    assert (status, json.loads(body)["state"]) == (200, "created")
    writer.close()
    await writer.wait_closed()


async def test_adapter_limits(server: AdminServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"POST /admin/v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 999999\r\n\r\n")
    status, headers, _ = await read_response(reader)
    assert (status, headers["connection"]) == (413, "close")
    assert await reader.read() == b""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"POST /admin/v1/events HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    assert (await read_response(reader))[0] == 411
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GARBAGE\r\n\r\n")
    assert (await read_response(reader))[0] == 400
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    assert await asyncio.wait_for(reader.read(), 5) == b""  # closed after the idle timeout
    writer.close()


async def schemathesis(port: int, cwd: Path, minimum_operations: int = 9) -> str:
    """Run schemathesis (every check) against the document served on ``port``; its summary."""
    st = Path(sys.executable).parent / "st"
    url = f"http://127.0.0.1:{port}/admin/v1/openapi.json"
    args = [
        "run", url, "--checks", "all", "-H", f"Authorization: Bearer {SECRET}",
        "--max-examples", str(EXAMPLES_PER_OPERATION), "--seed", "15", "--workers", "1",
    ]  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        str(st), *args, cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        output, _ = await asyncio.wait_for(process.communicate(), SCHEMATHESIS_TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    text = output.decode("utf-8", "replace")
    assert process.returncode == 0, text[-6000:]
    assert "No issues found" in text, text[-6000:]
    operations = re.search(r"Operations:\s+(\d+) selected", text)
    assert operations is not None and int(operations.group(1)) >= minimum_operations, text[-3000:]
    cases = re.search(r"(\d+) generated, (\d+) passed", text)
    assert cases is not None and cases.group(1) == cases.group(2), text[-3000:]
    return f"{operations.group(1)} operations, {cases.group(0)}"


async def test_schemathesis_against_the_served_document(
    server: AdminServer, tmp_path: Path
) -> None:
    print(f"schemathesis: {await schemathesis(server.port, tmp_path)}")


async def test_schemathesis_against_a_running_pipeline(tmp_path: Path) -> None:
    keys = tmp_path / "keys.toml"
    keys.write_text(keygen_stanza("k1"))
    event = tmp_path / "event.toml"
    event.write_text(  # an RTMP server without encoders: events come and go, nothing transcodes
        f'port = 0\nsource = "rtmp"\n[ingest]\nrtmp_port = 0\nslate = false\n'
        f'[access]\ntokens = true\nkeys = "{keys}"\nmax_streams = 2\n'
        f'[admin]\nenabled = true\nport = 0\nsecret_hashes = "{hash_secret(SECRET)}"\n'
    )
    live = LivePipeline(load_config(event, env={"LIVECAST_STREAM_KEY": KEY}))
    async with live.running(ready=False):
        assert live.admin is not None
        live.admin.api.buckets = Buckets(RateLimit(10_000, 10_000))  # schemathesis is one client
        live.edge_status_urls = ("http://127.0.0.1:9/edge/status",)  # an edge that is down
        summary = await schemathesis(live.admin.port, tmp_path)
        created = [e.id for e in live.admin.api.state.catalog.list() if e.id != "main"]
        print(f"schemathesis on a pipeline: {summary}; {len(created)} events created")
        assert created and live.not_started | set(live.channels) >= set(created)
