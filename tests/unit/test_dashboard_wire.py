"""Server-sent event framing (text/event-stream) and the request heads the dashboard accepts."""

from __future__ import annotations

import pytest

from livecast.dashboard.wire import (
    Event,
    comment,
    frame,
    parse,
    parse_request_head,
    response_head,
)
from livecast.errors import RequestError


def test_an_event_is_its_fields_and_a_blank_line() -> None:
    assert frame('{"t": 1}', event="point", event_id=7) == (
        b'event: point\nid: 7\ndata: {"t": 1}\n\n'
    )
    assert frame("x") == b"data: x\n\n"


def test_line_breaks_in_data_become_data_lines_that_a_client_joins_back() -> None:
    framed = frame("one\r\ntwo\rthree\nfour")
    assert framed == b"data: one\ndata: two\ndata: three\ndata: four\n\n"
    assert parse(framed) == [Event("one\ntwo\nthree\nfour")]


def test_parse_follows_the_standard_comments_ids_names_and_undispatched_tails() -> None:
    stream = (
        b"\xef\xbb\xbf: hello\n\n"  # BOM and a comment: nothing dispatched
        + frame("a", event="point", event_id=1)
        + b"data:no space\r\n\r\n"  # CRLF; the space after the colon is optional
        + b"event: empty\n\n"  # no data: dropped
        + b"data: tail without its blank line\n"
    )
    assert parse(stream) == [Event("a", "point", "1"), Event("no space", "message", "1")]
    assert parse(comment("keep\nalive")) == []


@pytest.mark.parametrize("bad", [{"event": "a\nb"}, {"event": ""}, {"event_id": "1\n2"},
                                 {"event_id": "a\0b"}])  # fmt: skip
def test_names_and_ids_with_line_breaks_are_refused(bad: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        frame("x", **bad)  # type: ignore[arg-type]


def test_request_head_parses_a_get() -> None:
    head = parse_request_head(b"GET /events?x=1 HTTP/1.1\r\nHost: a\r\nAccept: text/event-stream")
    assert (head.method, head.path, head.query) == ("GET", "/events", "x=1")
    assert head.headers == {"host": "a", "accept": "text/event-stream"}


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (b"POST / HTTP/1.1", 405),
        (b"GET / HTTP/2.0", 505),
        (b"GET  / HTTP/1.1", 400),
        (b"GET http://x/ HTTP/1.1", 400),
        (b"GET / HTTP/1.1\r\nno colon", 400),
        (b"GET / HTTP/1.1\r\nName : v", 400),
        (b"GET /" + b"a" * 3000 + b" HTTP/1.1", 414),
        (b"GET / HTTP/1.1\r\nX: " + b"a" * 9000, 431),
    ],
)
def test_bad_request_heads_carry_the_status_to_answer(head: bytes, status: int) -> None:
    with pytest.raises(RequestError) as caught:
        parse_request_head(head)
    assert caught.value.status == status


def test_a_stream_response_has_no_length() -> None:
    head = response_head(200, "text/event-stream", None)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"Content-Length" not in head
    assert head.endswith(b"\r\n\r\n")
    assert b"Content-Length: 5\r\n" in response_head(404, "text/plain", 5)
