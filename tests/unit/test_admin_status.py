"""The status's edge part: nginx's ``stub_status`` page parsed (the text nginx writes), an edge
that does not answer listed down with the reason, never failing the whole answer."""

from __future__ import annotations

import socket

from livecast.admin.status import EdgeFigures, edge_entry, edge_statuses, parse_stub_status

# what nginx 1.22's stub_status module writes (ngx_http_stub_status_module.c)
STUB = (
    "Active connections: 291 \n"
    "server accepts handled requests\n"
    " 16630948 16630948 31070465 \n"
    "Reading: 6 Writing: 179 Waiting: 106 \n"
)


def test_a_stub_status_page_is_parsed() -> None:
    figures = parse_stub_status(STUB)
    assert figures == EdgeFigures(291, 16630948, 16630948, 31070465, 6, 179, 106)
    entry = edge_entry("http://e1/edge/status", figures, None)
    assert (entry["up"], entry["active"], entry["requests"], entry["error"]) == (
        True,
        291,
        31070465,
        None,
    )


def test_anything_else_is_not_a_stub_status_page() -> None:
    assert parse_stub_status("<html>502 Bad Gateway</html>") is None
    assert parse_stub_status(STUB.replace("Waiting: 106", "Waiting: x")) is None
    assert parse_stub_status("") is None


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_an_edge_that_does_not_answer_is_down_with_the_reason() -> None:
    down = f"http://127.0.0.1:{closed_port()}/edge/status"
    entries = await edge_statuses((down, "ftp://edge/status"), timeout=1.0)
    assert [(e["url"], e["up"]) for e in entries] == [(down, False), ("ftp://edge/status", False)]
    assert entries[0]["error"].startswith("no answer: ") and entries[0]["active"] is None
    assert entries[1]["error"] == "not an http:// URL"
