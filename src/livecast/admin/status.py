"""What ``GET /admin/v1/status`` says about a running server (schema ``Status`` of
:mod:`livecast.admin.openapi`): one entry per event's pipeline, the origin, the edges.

The pipeline and origin parts are read from memory (:func:`pipeline_statuses`,
:func:`origin_status`: no I/O). The edges are asked over HTTP for nginx's ``stub_status``
(``/edge/status`` on every edge of ``livecast up``): :func:`parse_stub_status` is pure,
:func:`edge_statuses` fetches every edge at once, each within ``timeout`` — an edge that does not
answer is listed ``up: false`` with the reason, never an error of the whole answer.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from livecast.access.heartbeat import ADMITTED, SessionEndpoints
from livecast.access.leases import MemoryLeaseStore
from livecast.store.archive import Recording

if TYPE_CHECKING:
    from livecast.pipeline import LivePipeline

__all__ = [
    "EdgeFigures",
    "edge_status",
    "edge_statuses",
    "origin_status",
    "parse_stub_status",
    "pipeline_statuses",
]

MAX_STATUS_BYTES = 64 * 1024
_STUB = re.compile(
    r"Active connections:\s*(?P<active>\d+)\s+server accepts handled requests\s+"
    r"(?P<accepts>\d+)\s+(?P<handled>\d+)\s+(?P<requests>\d+)\s+"
    r"Reading:\s*(?P<reading>\d+)\s+Writing:\s*(?P<writing>\d+)\s+Waiting:\s*(?P<waiting>\d+)"
)
_FIGURES = ("active", "accepts", "handled", "requests", "reading", "writing", "waiting")


def pipeline_statuses(pipeline: LivePipeline) -> list[dict[str, Any]]:
    """Every event of the server: its channel's state (``waiting`` for its first segments,
    ``live``, ``ended``), source, what is on air (contribution), renditions, the age of its newest
    part, its recording; then the events created but not started."""
    statuses = []
    source = pipeline.config.source
    for stream_id, channel in pipeline.channels.items():
        event = channel.event
        contribution = pipeline.contributions.get(stream_id)
        age = channel.media_age()
        statuses.append(
            {
                "stream": stream_id,
                "state": "ended" if event.ended else "live" if event.ready else "waiting",
                "source": source,
                "on_air": contribution.on_air if contribution is not None else None,
                "renditions": list(event.renditions),
                "media_age_s": None if age is None else round(max(0.0, age), 3),
                "recording": recording_status(pipeline.recording, stream_id, event.ended),
            }
        )
    renditions = [*pipeline.ladder.renditions]
    for stream_id in sorted(pipeline.not_started):
        statuses.append(
            {
                "stream": stream_id,
                "state": "created",
                "source": source,
                "on_air": None,
                "renditions": renditions,
                "media_age_s": None,
                "recording": None,
            }
        )
    return statuses


def recording_status(
    recording: Recording | None, stream_id: str, ended: bool
) -> dict[str, Any] | None:
    """The recording of ``stream_id``: ended (VOD), the disk's refused writes and lost segments
    over its renditions; None when the server does not record."""
    if recording is None:
        return None
    errors = gaps = 0
    for stream, _, rendition in recording.renditions():
        if stream == stream_id:
            errors += rendition.errors
            gaps += rendition.gap_segments
    return {"ended": ended, "errors": errors, "gap_segments": gaps}


def origin_status(pipeline: LivePipeline) -> dict[str, Any]:
    """The origin: where it listens, its open connections, the responses it sent so far, the
    streams it serves, the shed level (None: shedding off) and its lease store."""
    server = pipeline.server
    metrics = server.metrics
    return {
        "address": pipeline.base_url.removeprefix("http://"),
        "connections": int(metrics.connections.value),
        "requests": int(sum(value for _, value in metrics.requests.series())),
        "streams": pipeline.streams.ids(),
        "shed_level": server.shed_level if server.shedder is not None else None,
        "leases": lease_status(pipeline.sessions),
    }


def lease_status(sessions: SessionEndpoints | None) -> dict[str, Any] | None:
    """The lease store's kind, the joins and heartbeats it admitted here, and (in memory) the
    leases it holds; None without stream limits."""
    if sessions is None:
        return None
    store = sessions.store
    memory = isinstance(store, MemoryLeaseStore)
    return {
        "store": "memory" if memory else "redis",
        "admitted": sessions.core.answered.get(ADMITTED, 0),
        "leases": store.table.stats().leases if isinstance(store, MemoryLeaseStore) else None,
    }


@dataclass(frozen=True, slots=True)
class EdgeFigures:
    """nginx's ``stub_status``: open connections, the totals since start, and the open ones by
    what they are doing."""

    active: int
    accepts: int
    handled: int
    requests: int
    reading: int
    writing: int
    waiting: int


def parse_stub_status(text: str) -> EdgeFigures | None:
    """The figures of a ``stub_status`` page, or None if ``text`` is not one."""
    match = _STUB.search(text)
    if match is None:
        return None
    return EdgeFigures(*(int(match[name]) for name in _FIGURES))


def edge_entry(url: str, figures: EdgeFigures | None, problem: str | None) -> dict[str, Any]:
    """One edge in the status answer (schema ``Edge``)."""
    entry: dict[str, Any] = {"url": url, "up": figures is not None, "error": problem}
    for name in _FIGURES:
        entry[name] = None if figures is None else getattr(figures, name)
    return entry


async def edge_status(url: str, timeout: float) -> dict[str, Any]:
    """One edge's ``stub_status`` at ``url`` (``http://host:port/edge/status``), within
    ``timeout``."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        return edge_entry(url, None, "not an http:// URL")
    host = parts.hostname
    target = parts.path or "/"
    writer = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, parts.port or 80)
            writer.write(f"GET {target} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
            data = await reader.read(MAX_STATUS_BYTES)
            while data and not reader.at_eof() and len(data) < MAX_STATUS_BYTES:
                data += await reader.read(MAX_STATUS_BYTES - len(data))
    except (OSError, TimeoutError) as exc:
        return edge_entry(url, None, f"no answer: {type(exc).__name__}")
    finally:
        if writer is not None:
            writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].split()
    if len(status_line) < 2 or status_line[1] != b"200":
        shown = status_line[1].decode("latin-1") if len(status_line) >= 2 else "no status"
        return edge_entry(url, None, f"answered {shown}")
    figures = parse_stub_status(body.decode("latin-1"))
    return edge_entry(url, figures, None if figures is not None else "not a stub_status page")


async def edge_statuses(urls: tuple[str, ...], timeout: float) -> list[dict[str, Any]]:
    """Every edge's status, asked at once."""
    return list(await asyncio.gather(*(edge_status(url, timeout) for url in urls)))
