"""The wire format the dashboard and the rehearsal's ``/metrics`` speak — pure: bytes in, bytes
out; the asyncio adapter is :mod:`livecast.dashboard.server`.

**HTTP/1.1, GET only.** RFC 9112, 3. Request Line: "request-line = method SP request-target SP
HTTP-version"; 2.1: "HTTP-message = start-line CRLF *( field-line CRLF ) CRLF [ message-body ]".
Only GET and HEAD are served (a body is never read); anything else is refused with a
:class:`RequestError` carrying the status to answer (400, 405, 414, 431, 505).

**Server-sent events** (HTML Living Standard, "Server-sent events", 9.2.5 Parsing an event
stream), framed for the ``text/event-stream`` the page listens to, and parsed back (tests, tools)::

    stream        = [ bom ] *event
    event         = *( comment / field ) end-of-line
    comment       = colon *any-char end-of-line
    field         = 1*name-char [ colon [ space ] *any-char ] end-of-line
    end-of-line   = ( cr lf / cr / lf )

"If the field name is "data": Append the field value to the data buffer, then append a single
U+000A LINE FEED (LF) character to the data buffer" — so a value with line breaks goes as one
``data:`` line per line, and the browser joins them back with LF; an event is dispatched at the
blank line that ends it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import urlsplit

from livecast.errors import RequestError

MAX_HEAD = 8192  # bytes: a longer request head is refused (431)
MAX_TARGET = 2048  # bytes: a longer request-target is refused (414)
SSE_CONTENT_TYPE = "text/event-stream; charset=utf-8"
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


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


# ---------------------------------------------------------------- server-sent events


@dataclass(frozen=True, slots=True)
class Event:
    """One dispatched event: its type (``message`` unless named), data and id."""

    data: str
    event: str = "message"
    id: str | None = None


def frame(data: str, *, event: str | None = None, event_id: int | str | None = None) -> bytes:
    """One event on the wire: ``event:``/``id:`` when given, one ``data:`` line per line of
    ``data``, and the blank line that dispatches it. A name or id with a line break (or an id
    with NUL, which the standard ignores) is a ValueError."""
    lines: list[str] = []
    if event is not None:
        if _LINE_BREAK.search(event) or not event:
            raise ValueError(f"an event name is one non-empty line: {event!r}")
        lines.append(f"event: {event}")
    if event_id is not None:
        text = str(event_id)
        if _LINE_BREAK.search(text) or "\0" in text:
            raise ValueError(f"an event id is one line without NUL: {text!r}")
        lines.append(f"id: {text}")
    lines.extend(f"data: {line}" for line in _LINE_BREAK.split(data))
    return ("\n".join(lines) + "\n\n").encode("utf-8")


def comment(text: str = "") -> bytes:
    """A comment line (ignored by clients): keeps an idle connection from timing out."""
    return f": {_LINE_BREAK.sub(' ', text)}\n\n".encode()


def parse(stream: bytes) -> list[Event]:
    """The events a client dispatches from ``stream`` (a trailing event without its blank line is
    not dispatched; an event with no data is dropped, as the standard says)."""
    text = stream.decode("utf-8", "replace").removeprefix("\ufeff")
    events: list[Event] = []
    data: list[str] = []
    name = ""
    last_id: str | None = None
    lines = _LINE_BREAK.split(text)
    for line in lines[:-1]:  # the last piece has no end-of-line yet
        if line == "":
            if data:
                events.append(Event("\n".join(data), name or "message", last_id))
            data, name = [], ""
            continue
        if line.startswith(":"):
            continue
        field, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if field == "data":
            data.append(value)
        elif field == "event":
            name = value
        elif field == "id" and "\0" not in value:
            last_id = value
    return events
