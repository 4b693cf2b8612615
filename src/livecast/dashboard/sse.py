"""Server-sent events: framing for the ``text/event-stream`` the dashboard page listens to, and a
parser of it (for tests and tools). Pure: bytes in, bytes out.

The format (HTML Living Standard, "Server-sent events", 9.2.5 Parsing an event stream)::

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

CONTENT_TYPE = "text/event-stream; charset=utf-8"
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


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
