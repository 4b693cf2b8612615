"""The little HTTP/1.1 the dashboard and the rehearsal's ``/metrics`` speak: a GET's request head
in, a response head out. Pure: bytes in, bytes out; the asyncio adapter is
:mod:`livecast.dashboard.server`.

RFC 9112, 3. Request Line: "request-line = method SP request-target SP HTTP-version"; 2.1:
"HTTP-message = start-line CRLF *( field-line CRLF ) CRLF [ message-body ]". Only GET and HEAD
are served (a body is never read); anything else is refused with a :class:`RequestError` carrying
the status to answer (400, 405, 414, 505).
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import urlsplit

from livecast.errors import RequestError

MAX_HEAD = 8192  # bytes: a longer request head is refused (431)
MAX_TARGET = 2048  # bytes: a longer request-target is refused (414)


@dataclass(frozen=True, slots=True)
class RequestHead:
    method: str  # GET or HEAD
    path: str  # the request-target's path, without the query
    query: str
    headers: dict[str, str]  # field names lower-cased; a repeated field keeps the last value


def parse_request_head(head: bytes) -> RequestHead:
    """A request head (request line and field lines, up to the blank line excluded)."""
    if len(head) > MAX_HEAD:
        raise RequestError(431, "request head too large")
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError as exc:  # pragma: no cover - latin-1 decodes every byte
        raise RequestError(400, "undecodable request head") from exc
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not all(parts):
        raise RequestError(400, f"malformed request line {lines[0][:80]!r}")
    method, target, version = parts
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise RequestError(505, f"unsupported version {version[:20]!r}")
    if len(target) > MAX_TARGET:
        raise RequestError(414, "request-target too long")
    if not target.startswith("/"):
        raise RequestError(400, f"not an origin-form request-target {target[:80]!r}")
    if method not in ("GET", "HEAD"):
        raise RequestError(405, f"method {method[:20]!r} not allowed")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise RequestError(400, f"malformed field line {line[:80]!r}")
        headers[name.lower()] = value.strip()
    split = urlsplit(target)
    return RequestHead(method, split.path, split.query, headers)


def response_head(
    status: int,
    content_type: str,
    length: int | None,
    *,
    extra: tuple[tuple[str, str], ...] = (),
) -> bytes:
    """A response head; ``length`` None (a stream) sends no Content-Length and closes after."""
    reason = HTTPStatus(status).phrase
    lines = [f"HTTP/1.1 {status} {reason}", f"Content-Type: {content_type}"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    lines.append("Cache-Control: no-store")
    lines.append("Connection: close")
    lines.extend(f"{name}: {value}" for name, value in extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def error_response(status: int, message: str) -> bytes:
    """A plain-text error answer, head and body."""
    body = (message + "\n").encode("utf-8")
    return response_head(status, "text/plain; charset=utf-8", len(body)) + body
