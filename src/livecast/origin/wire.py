"""HTTP/1.1 wire pieces of the origin: limits, canned refusals, response heads, and the
server's metrics with their label children resolved once."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, fields
from http import HTTPStatus

from livecast.errors import ConfigError
from livecast.origin.contract import OBJECT_TYPES, Response
from livecast.telemetry.metrics import CounterCell, Registry

CLOSEREASONS = ("slow_client", "idle_timeout", "bad_request", "client", "shutdown")

COMMON_HEADERS = "Access-Control-Allow-Origin: *\r\nAccess-Control-Expose-Headers: Age, Date\r\n"
CONNECTION_LINE = {True: b"Connection: keep-alive\r\n\r\n", False: b"Connection: close\r\n\r\n"}
WIRE_KEY = (("close", "keep-alive"), ("head-close", "head-keep-alive"))  # [head][keep_alive]
REASONS = {status.value: status.phrase for status in HTTPStatus}
METHODS = {b"GET": "GET", b"HEAD": "HEAD"}
REFUSALS = (400, 414, 431)  # protocol errors: answered, then the connection is closed

METHOD_NOT_ALLOWED = Response(405, b"method not allowed\n", extra_headers=(("Allow", "GET, HEAD"),))
BAD_REQUEST = Response(400, b"bad request\n")
URI_TOO_LONG = Response(414, b"URI too long\n")
HEADERS_TOO_LARGE = Response(431, b"request header fields too large\n")
INTERNAL_ERROR = Response(500, b"internal server error\n")
HOLD_EXPIRED = Response(503, b"blocking request timed out\n", cache_control="max-age=1")


@dataclass(frozen=True)
class HttpLimits:
    max_url_bytes: int = 8192
    max_header_bytes: int = 16384
    max_headers: int = 100
    idle_timeout: float = 15.0  # keep-alive connection with no request in flight
    max_write_buffer: int = 4 * 1024 * 1024  # bytes waiting for a client before it is cut off
    max_pipelined: int = 16  # requests queued behind a parked one
    sweep_interval: float = 0.05  # deadline resolution of parked requests

    def __post_init__(self) -> None:
        for name in (field.name for field in fields(self)):
            if not getattr(self, name) > 0:
                raise ConfigError(f"http.{name}", f"must be positive, got {getattr(self, name)}")


def install_uvloop() -> bool:
    """Make uvloop the event loop policy if it is installed; True when it is."""
    try:
        import uvloop
    except ImportError:
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True


def encode_head(response: Response) -> bytes:
    """Status line and headers of ``response`` except ``Date`` and ``Connection``."""
    lines = [
        f"HTTP/1.1 {response.status} {REASONS.get(response.status, 'Unknown')}\r\n",
        f"Content-Type: {response.content_type}\r\n",
        f"Content-Length: {len(response.body)}\r\n",
    ]
    if response.cache_control:
        lines.append(f"Cache-Control: {response.cache_control}\r\n")
    lines.append(COMMON_HEADERS)
    for name, value in response.extra_headers:
        line = f"{name}: {value}"
        if "\r" not in line and "\n" not in line:  # no response splitting
            lines.append(line + "\r\n")
    return "".join(lines).encode("latin-1", errors="replace")


class OriginMetrics:
    """The server's metrics with label children resolved once, for a tiny per-request cost."""

    def __init__(self, registry: Registry) -> None:
        counter, gauge = registry.counter, registry.gauge
        self.requests = counter(
            "livecast_origin_requests_total", "Responses by type and status.", ("type", "status")
        )
        self.response_bytes = counter(
            "livecast_origin_response_bytes_total", "Bytes written, by type.", ("type",)
        )
        self.blocked = gauge("livecast_origin_blocked_requests", "Requests parked.").labels()
        self.connections = gauge("livecast_origin_connections", "Open connections.").labels()
        closed = counter(
            "livecast_origin_connections_closed_total", "Connections closed.", ("reason",)
        )
        self.closed = {reason: closed.labels(reason) for reason in CLOSEREASONS}
        self._cells: dict[tuple[str, int], tuple[CounterCell, CounterCell]] = {}

    def count_response(self, object_type: str, status: int, size: int) -> None:
        cells = self._cells.get((object_type, status)) or self._resolve(object_type, status)
        cells[0].value += 1
        cells[1].value += size

    def _resolve(self, object_type: str, status: int) -> tuple[CounterCell, CounterCell]:
        label = object_type if object_type in OBJECT_TYPES else "other"
        cells = (self.requests.labels(label, str(status)), self.response_bytes.labels(label))
        self._cells[(object_type, status)] = cells
        return cells
