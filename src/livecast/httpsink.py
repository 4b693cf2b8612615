"""The httptools response callbacks shared by livecast's HTTP clients (probe, rehearsal driver).

One :class:`ResponseSink` per connection, :meth:`~ResponseSink.reset` before each response (the
parser follows a keep-alive connection from message to message): status time (first byte), body
size, the body when asked for, completion, and the connection's keep-alive state — read when the
headers are complete, because llhttp forgets it once the message is complete (reading it
afterwards made every request open a new connection).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import httptools

HEAD_LIMIT = 65536  # bytes of a response head scanned for Age at most
_AGE = re.compile(rb"\r\nage:[ \t]*([^\r\n]*)", re.IGNORECASE)


def age_header(head: bytes) -> bytes | None:
    """The raw ``Age`` header of a response head (status line and headers), if any — read here
    rather than through the parser's per-header callbacks (a Python call per header line)."""
    if b"ge:" not in head and b"GE:" not in head:  # the usual case: no Age header at all
        return None
    found = _AGE.search(head)
    return found.group(1).rstrip(b" \t") if found is not None else None


def scan_head(head: bytes, data: bytes | memoryview) -> tuple[bytes | None, bytes | None]:
    """One more read of a response whose head is being scanned for Age (it may span reads):
    (the head so far, or None once it is complete or past :data:`HEAD_LIMIT`; the raw Age)."""
    head += data
    end = head.find(b"\r\n\r\n")
    if end < 0 and len(head) <= HEAD_LIMIT:
        return head, None
    return None, age_header(head[: end + 2] if end >= 0 else head)


class ResponseSink:
    __slots__ = (
        "chunks", "clock", "complete", "first_byte", "keep_alive", "keep_body", "parser", "size",
    )  # fmt: skip

    def __init__(self, keep_body: bool, clock: Callable[[], float] = time.monotonic) -> None:
        self.keep_body = keep_body
        self.clock = clock
        self.chunks: list[bytes] = []
        self.size = 0
        self.complete = False
        self.first_byte = 0.0
        self.keep_alive = False
        self.parser = httptools.HttpResponseParser(self)

    def reset(self, keep_body: bool) -> None:
        """Ready for the next response on the same connection (same parser)."""
        self.keep_body = keep_body
        self.chunks = []
        self.size = 0
        self.complete = False
        self.first_byte = 0.0
        self.keep_alive = False

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)

    @property
    def status(self) -> int:
        return int(self.parser.get_status_code())

    def on_status(self, status: bytes) -> None:
        self.first_byte = self.clock()

    def on_headers_complete(self) -> None:
        self.keep_alive = bool(self.parser.should_keep_alive())

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.keep_body:
            self.chunks.append(body)

    def on_message_complete(self) -> None:
        self.complete = True
