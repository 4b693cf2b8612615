"""The gate in front of the origin, pure: refusals, the rule gate, and ``now`` passed in.
(That a refused request never gets a cached answer or a parking place is proven against the real
adapter in tests/integration/test_http_response_cache.py.)"""

from __future__ import annotations

import pytest

from livecast.errors import ConfigError
from livecast.origin.contract import Request
from livecast.origin.gate import (
    ALLOW_ALL,
    FORBIDDEN,
    AllowAll,
    Gate,
    Refusal,
    Rule,
    RuleGate,
    active,
    refuse_streams,
)

PAID = refuse_streams(["paid"])


def get(path: str, query: str = "", headers: tuple[tuple[str, str], ...] = ()) -> Request:
    return Request("GET", path, query, headers)


def test_a_refusal_is_a_403_that_no_cache_may_keep() -> None:
    response = FORBIDDEN.response
    assert (response.status, response.body) == (403, b"forbidden\n")
    assert response.cache_control == "no-store"
    assert not response.reusable and not response.permanent
    assert FORBIDDEN.response is response  # built once


def test_a_refusal_names_its_status_reason_and_headers() -> None:
    refusal = Refusal("token expired", 401, (("WWW-Authenticate", 'Bearer error="expired"'),))
    assert refusal.response.status == 401 and refusal.response.body == b"token expired\n"
    assert refusal.response.extra_headers == (("WWW-Authenticate", 'Bearer error="expired"'),)
    for status in (200, 302, 503):
        with pytest.raises(ConfigError, match="4xx"):
            Refusal(status=status)


@pytest.mark.parametrize(
    ("path", "refused"),
    [
        ("/live/paid/main.m3u8", True),
        ("/live/paid/720p/index.m3u8", True),
        ("/live/paid/720p/part-10.2.m4s", True),
        ("/live/%70aid/main.m3u8", True),  # percent-encoding does not get past it
        ("/live/paid%2F720p/seg-3.m4s", True),
        ("/live/free/main.m3u8", False),
        ("/live/main.m3u8", False),  # the short URLs are the default stream's
        ("/live/720p/index.m3u8", False),
        ("/player.html", False),
        ("/metrics", False),
    ],
)
def test_refuse_streams_reads_the_stream_as_the_router_does(path: str, refused: bool) -> None:
    gate = RuleGate([PAID])
    assert (gate.authorize(get(path), 0.0) is FORBIDDEN) is refused


def test_refusing_the_default_stream_covers_its_short_urls() -> None:
    gate = RuleGate([refuse_streams(["studio"], default_stream="studio")])
    for path in ("/live/main.m3u8", "/live/720p/seg-1.m4s", "/live/studio/main.m3u8"):
        assert gate.authorize(get(path), 0.0) is FORBIDDEN, path
    assert gate.authorize(get("/live/main/main.m3u8"), 0.0) is None


def test_refuse_streams_checks_its_ids() -> None:
    with pytest.raises(ConfigError):
        refuse_streams(["a/b"])


def test_a_predicate_sees_the_query_the_headers_and_now() -> None:
    expired = Refusal("token expired", 401)

    def token_expired(request: Request, now: float) -> bool:
        expiry = dict(arg.partition("=")[::2] for arg in request.query.split("&")).get("exp")
        return expiry is None or float(expiry) <= now

    def no_referer(request: Request, now: float) -> bool:
        return not any(name == "referer" for name, _ in request.headers)

    gate = RuleGate([Rule(token_expired, expired), Rule(no_referer)])
    with_referer = (("referer", "https://player.example/"),)
    request = get("/live/s/720p/index.m3u8", "_HLS_msn=4&exp=100", with_referer)
    assert gate.authorize(request, 99.9) is None
    assert gate.authorize(request, 100.0) is expired
    assert gate.authorize(get("/live/s/main.m3u8", "exp=100"), 50.0) is FORBIDDEN
    assert gate.authorize(get("/live/s/main.m3u8"), 50.0) is expired  # the first rule wins


def test_allow_all_and_no_gate_are_the_same_thing() -> None:
    assert ALLOW_ALL.authorize(get("/live/paid/main.m3u8"), 0.0) is None
    assert active(None) is None and active(ALLOW_ALL) is None and active(AllowAll()) is None
    gate: Gate = RuleGate([])
    assert active(gate) is gate
    assert gate.authorize(get("/live/paid/main.m3u8"), 0.0) is None
