# ruff: noqa: F811  (the ``hmac_calls`` fixture is shared with test_access_tokens)
"""The origin's token gate, pure: where the token comes from, which event it must be for, the
remembered verdicts (one HMAC per token), revocation, bounded cookie parsing, exempt paths."""

from __future__ import annotations

import pytest

from livecast.access.keys import KeyRing
from livecast.access.token_gate import (
    MAX_COOKIE_BYTES,
    MAX_COOKIES,
    REASON_HEADER,
    REFUSALS,
    TokenGate,
    find_token,
)
from livecast.access.tokens import REASONS, RevocationList, TokenClaims, issue
from livecast.origin.contract import Request
from livecast.origin.gate import Gate, Refusal
from tests.unit.test_access_tokens import hmac_calls  # noqa: F401  (the fixture)

RING = KeyRing({"k1": b"1" * 32}, "k1")
NOW = 1_800_000_000.0
MAIN = issue(TokenClaims("main", "acct", "sess", int(NOW) + 600), RING)
PAID = issue(TokenClaims("paid", "acct", "sess2", int(NOW) + 600), RING)
PART = "/live/720p/part-12.3.m4s"  # the default stream's short URL: event "main"
PAID_PLAYLIST = "/live/paid/720p/index.m3u8"


def get(path: str, query: str = "", *headers: tuple[str, str]) -> Request:
    return Request("GET", path, query, tuple(headers))


def cookie(value: str) -> tuple[str, str]:
    return ("cookie", value)


def reason(refusal: Refusal | None) -> str | None:
    """The refusal's reason (checked against its 403 and header), None for a pass."""
    if refusal is None:
        return None
    assert refusal is REFUSALS[refusal.reason]  # built once, shared
    response = refusal.response
    assert response.status == 403 and response.body == (refusal.reason + "\n").encode()
    assert (REASON_HEADER, refusal.reason) in response.extra_headers
    assert response.cache_control == "no-store"
    return refusal.reason


def test_it_is_an_origin_gate_with_one_refusal_per_reason() -> None:
    gate: Gate = TokenGate(RING)
    assert gate.authorize(get(PART, f"token={MAIN}"), NOW) is None
    assert sorted(REFUSALS) == sorted(REASONS)


def test_the_token_in_a_cookie_or_the_query() -> None:
    gate = TokenGate(RING)
    assert gate.authorize(get(PART, "", cookie(f"a=b; livecast_token={MAIN}; c=d")), NOW) is None
    assert gate.authorize(get(PART, f"_HLS_msn=3&token={MAIN}&x=1"), NOW) is None
    encoded = MAIN.replace("-", "%2D").replace(".", "%2E")
    assert gate.authorize(get(PART, f"token={encoded}"), NOW) is None


def test_the_first_query_token_counts_and_the_query_wins_over_the_cookie() -> None:
    gate = TokenGate(RING)
    assert reason(gate.authorize(get(PART, f"token={PAID}&token={MAIN}"), NOW)) == "wrong_event"
    assert gate.authorize(get(PART, f"token={MAIN}&token={PAID}"), NOW) is None
    both = get(PART, f"token={MAIN}", cookie(f"livecast_token={PAID}"))
    assert gate.authorize(both, NOW) is None


def test_no_token_is_a_403_missing() -> None:
    gate = TokenGate(RING)
    assert reason(gate.authorize(get(PART), NOW)) == "missing"
    assert reason(gate.authorize(get(PART, "tokens=1", cookie("other=1")), NOW)) == "missing"
    assert reason(gate.authorize(get(PART, "token="), NOW)) == "missing"


def test_the_event_is_the_stream_of_the_path() -> None:
    gate = TokenGate(RING)
    assert reason(gate.authorize(get(PAID_PLAYLIST, f"token={MAIN}"), NOW)) == "wrong_event"
    assert gate.authorize(get(PAID_PLAYLIST, f"token={PAID}"), NOW) is None
    assert gate.authorize(get("/live/main/main.m3u8", f"token={MAIN}"), NOW) is None
    assert gate.authorize(get("/live/%70aid/main.m3u8", f"token={PAID}"), NOW) is None
    other_default = TokenGate(RING, default_stream="paid")
    assert other_default.authorize(get(PART, f"token={PAID}"), NOW) is None


def test_exempt_paths_pass_without_a_token_and_other_paths_take_any_event() -> None:
    gate = TokenGate(RING)
    assert gate.authorize(get("/metrics"), NOW) is None
    assert gate.authorize(get("/healthz"), NOW) is None
    assert gate.authorize(get("/healthz/ready"), NOW) is None
    assert reason(gate.authorize(get("/metricsx"), NOW)) == "missing"
    assert reason(gate.authorize(get("/"), NOW)) == "missing"
    assert gate.authorize(get("/", f"token={PAID}"), NOW) is None  # the player page: any event
    only_player = TokenGate(RING, exempt_prefixes=("/",))
    assert only_player.authorize(get("/player.js"), NOW) is None
    assert reason(only_player.authorize(get(PART), NOW)) == "missing"  # live URLs: never exempt


def test_a_verdict_is_remembered_one_hmac_per_token(hmac_calls: list[str]) -> None:
    gate = TokenGate(RING)
    for index in range(50):
        assert gate.authorize(get(PART, f"token={MAIN}"), NOW + index) is None
    assert len(hmac_calls) == 1
    assert reason(gate.authorize(get(PAID_PLAYLIST, f"token={MAIN}"), NOW)) == "wrong_event"
    assert len(hmac_calls) == 2  # another event: another verdict
    assert gate.remembered == 1  # refusals are not remembered


def test_a_remembered_verdict_ends_with_the_token(hmac_calls: list[str]) -> None:
    gate = TokenGate(RING)
    request = get(PART, f"token={MAIN}")
    assert gate.authorize(request, NOW) is None
    assert gate.authorize(request, NOW + 600 + 59) is None
    assert reason(gate.authorize(request, NOW + 600 + 60)) == "expired"
    assert len(hmac_calls) == 2 and gate.remembered == 0


def test_the_remembered_verdicts_are_bounded() -> None:
    gate = TokenGate(RING, cache_size=3)
    many = [issue(TokenClaims("main", "a", f"s{i}", int(NOW) + 600), RING) for i in range(5)]
    for token in many:
        assert gate.authorize(get(PART, f"token={token}"), NOW) is None
    assert gate.remembered == 3
    gate.forget()
    assert gate.remembered == 0


def test_a_revocation_applies_to_remembered_verdicts(hmac_calls: list[str]) -> None:
    revoked = RevocationList()
    gate = TokenGate(RING, revoked=revoked)
    request = get(PART, f"token={MAIN}")
    assert gate.authorize(request, NOW) is None
    revoked.revoke_session("sess", NOW + 1)
    assert reason(gate.authorize(request, NOW + 2)) == "revoked"
    assert gate.authorize(get(PAID_PLAYLIST, f"token={PAID}"), NOW + 2) is None
    revoked.revoke_token(PAID, NOW + 3)
    assert reason(gate.authorize(get(PAID_PLAYLIST, f"token={PAID}"), NOW + 4)) == "revoked"
    assert len(hmac_calls) == 2  # the revocations needed no new HMAC


@pytest.mark.parametrize(
    "headers",
    [
        (cookie(f"livecast_token={MAIN}\r\nX-Injected: 1"),),
        (cookie(f"livecast_token={MAIN}\nSet-Cookie: a=b"),),
        (cookie("a=\x00; livecast_token=x"),),
        (cookie("a=" + "b" * MAX_COOKIE_BYTES + f"; livecast_token={MAIN}"),),
        (
            cookie(
                "; ".join(f"c{i}=v" for i in range(MAX_COOKIES + 1)) + f"; livecast_token={MAIN}"
            ),
        ),
        (*[cookie("x=" + "y" * 1000)] * 9, cookie(f"livecast_token={MAIN}")),
    ],
)
def test_unusable_cookie_headers_are_malformed(
    headers: tuple[tuple[str, str], ...], hmac_calls: list[str]
) -> None:
    gate = TokenGate(RING)
    assert reason(gate.authorize(get(PART, "", *headers), NOW)) == "malformed"
    assert hmac_calls == []


def test_an_unusable_query_token_is_malformed() -> None:
    gate = TokenGate(RING)
    assert reason(gate.authorize(get(PART, "token=%ff%fe"), NOW)) == "malformed"
    assert reason(gate.authorize(get(PART, "token=" + "A" * 2000), NOW)) == "malformed"
    assert reason(gate.authorize(get(PART, f"token={MAIN}%0d%0a"), NOW)) == "malformed"
    assert reason(gate.authorize(get(PART, "token=" + "A" * 1000), NOW)) == "malformed"


def test_a_cookie_after_many_headers_and_a_quoted_cookie() -> None:
    request = get(PART, "", ("accept", "*/*"), cookie("a=1"), cookie(f'livecast_token="{MAIN}"'))
    assert find_token(request) == MAIN
    assert find_token(get(PART, "x=1&y=2")) is None
