"""Signed playback tokens, pure: issue/verify, every reason code, skew, rotation, revocation,
bounded work for absurd input, and no credential in any message (docs/access.md)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livecast.access import tokens
from livecast.access.keys import KeyRing, decode_secret, load_key_ring
from livecast.access.tokens import (
    MAX_TOKEN_BYTES,
    REASONS,
    RevocationList,
    TokenClaims,
    issue,
    token_id,
    verify,
)
from livecast.errors import AccessError, ConfigError, LivecastError

OLD = KeyRing({"k1": b"1" * 32}, "k1")
BOTH = OLD.with_key("k2", b"2" * 32).signing_with("k2")
NOW = 1_800_000_000.0
CLAIMS = TokenClaims("main", "acct-1", "sess_1", exp=int(NOW) + 3600)


def refusal(
    token: str | None,
    *,
    event: str = "main",
    now: float = NOW,
    ring: KeyRing = OLD,
    skew: float = 60.0,
    revoked: RevocationList | None = None,
) -> str:
    """The reason ``token`` is refused for (and that its message quotes neither the token nor
    its signature)."""
    with pytest.raises(AccessError) as caught:
        verify(token, event=event, now=now, key_ring=ring, skew=skew, revoked=revoked)
    if token and len(token) > 8:
        message = str(caught.value)
        signature = token.rsplit(".", 1)[-1]
        assert token not in message
        assert len(signature) < 8 or signature not in message
    assert caught.value.reason in REASONS
    return caught.value.reason


@pytest.fixture
def hmac_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every HMAC the token core computes (by signing input)."""
    calls: list[str] = []
    real = tokens.sign

    def counted(key: bytes, signing_input: str) -> str:
        calls.append(signing_input)
        return real(key, signing_input)

    monkeypatch.setattr(tokens, "sign", counted)
    yield calls


def test_issue_then_verify_gives_the_claims_back_with_the_kid() -> None:
    token = issue(CLAIMS, OLD)
    assert token.startswith("v1.k1.main.acct-1.sess_1.1800003600.0.")
    assert len(token.rsplit(".", 1)[1]) == 43
    assert verify(token, event="main", now=NOW, key_ring=OLD) == TokenClaims(
        "main", "acct-1", "sess_1", 1800003600, 0, "k1"
    )


def test_the_signature_is_hmac_sha256_of_the_text_before_the_last_dot() -> None:
    import hashlib
    import hmac

    token = issue(CLAIMS, OLD)
    text, sig = token.rsplit(".", 1)
    digest = hmac.new(b"1" * 32, text.encode(), hashlib.sha256).digest()
    assert base64.urlsafe_b64decode(sig + "=") == digest


@pytest.mark.parametrize("token", [None, ""])
def test_no_token_is_missing(token: str | None) -> None:
    assert refusal(token) == "missing"


def test_a_key_not_in_the_ring_is_unknown_key() -> None:
    token = issue(CLAIMS, KeyRing({"k9": b"9" * 32}, "k9"))
    assert refusal(token) == "unknown_key"


def test_a_changed_claim_or_signature_is_bad_signature() -> None:
    token = issue(CLAIMS, OLD)
    assert refusal(token.replace(".acct-1.", ".acct-2.")) == "bad_signature"
    text, sig = token.rsplit(".", 1)
    flipped = ("B" if sig[0] == "A" else "A") + sig[1:]
    assert refusal(f"{text}.{flipped}") == "bad_signature"
    forged = issue(CLAIMS, KeyRing({"k1": b"x" * 32}, "k1"))
    assert refusal(forged) == "bad_signature"


def test_expiry_with_the_skew() -> None:
    token = issue(CLAIMS, OLD)
    assert verify(token, event="main", now=CLAIMS.exp + 59.9, key_ring=OLD)
    assert refusal(token, now=CLAIMS.exp + 60) == "expired"
    assert refusal(token, now=CLAIMS.exp + 1, skew=0.0) == "expired"


def test_a_token_from_an_issuer_20_s_ahead_verifies_61_s_does_not() -> None:
    ahead = TokenClaims("main", "a", "s", exp=int(NOW) + 3620, nbf=int(NOW) + 20)
    assert verify(issue(ahead, OLD), event="main", now=NOW, key_ring=OLD).nbf == int(NOW) + 20
    too_far = TokenClaims("main", "a", "s", exp=int(NOW) + 3661, nbf=int(NOW) + 61)
    assert refusal(issue(too_far, OLD)) == "not_yet_valid"
    assert verify(issue(too_far, OLD), event="main", now=NOW + 1, key_ring=OLD)


def test_a_token_for_another_event_is_wrong_event() -> None:
    assert refusal(issue(CLAIMS, OLD), event="paid") == "wrong_event"


def test_rotation_old_tokens_verify_while_both_keys_are_in_the_ring() -> None:
    old_token = issue(CLAIMS, OLD)
    new_token = issue(CLAIMS, BOTH)
    assert new_token.startswith("v1.k2.")
    assert verify(old_token, event="main", now=NOW, key_ring=BOTH).kid == "k1"
    assert verify(new_token, event="main", now=NOW, key_ring=BOTH).kid == "k2"
    dropped = BOTH.without("k1")
    assert verify(new_token, event="main", now=NOW, key_ring=dropped).kid == "k2"
    assert refusal(old_token, ring=dropped) == "unknown_key"
    with pytest.raises(ConfigError, match="still signs"):
        BOTH.without("k2")


def test_a_10_kb_token_is_malformed_before_any_hmac(hmac_calls: list[str]) -> None:
    token = issue(CLAIMS, OLD)
    huge = token[:-44] + "A" * 10_240 + token[-44:]
    hmac_calls.clear()
    assert refusal(huge) == "malformed"
    assert refusal("." * 10_240) == "malformed"
    assert refusal(token + "x" * (MAX_TOKEN_BYTES - len(token) + 1)) == "malformed"
    assert hmac_calls == []


@pytest.mark.parametrize(
    "mutate",
    [
        lambda t: t[:-1] + "=",  # not base64url
        lambda t: t[:-1] + "+",
        lambda t: t + "A",  # 44 characters
        lambda t: t[:-1],  # 42 characters
        lambda t: t + "=",  # padded
        lambda t: "v2" + t[2:],  # another version
        lambda t: "V1" + t[2:],
        lambda t: t.replace(".1800003600.", ".-1800003600."),  # negative exp
        lambda t: t.replace(".1800003600.", ".0."),  # zero exp
        lambda t: t.replace(".1800003600.", ".01800003600."),  # leading zero
        lambda t: t.replace(".1800003600.", ".1800003600.5."),  # a dot in exp
        lambda t: t.replace(".1800003600.", ".18e8."),  # not an integer
        lambda t: t.replace(".1800003600.", ".１８００."),  # non-ASCII digits
        lambda t: t.replace(".1800003600.", ".99999999999999999."),  # 17 digits
        lambda t: t.replace(".acct-1.", ".acct.1."),  # a dot in a field
        lambda t: t.replace(".acct-1.", ".acct\n1."),  # a newline in a field
        lambda t: t.replace(".acct-1.", ".."),  # an empty field
        lambda t: t.replace(".acct-1.", "." + "a" * 65 + "."),  # a field over 64
        lambda t: t + "\n",
        lambda t: " " + t,
        lambda t: t.replace(".", "", 1),  # seven fields
        lambda t: "v1.",
        lambda t: "garbage",
    ],
)
def test_malformed_tokens(mutate: object, hmac_calls: list[str]) -> None:
    assert callable(mutate)
    bad = mutate(issue(CLAIMS, OLD))
    hmac_calls.clear()
    assert refusal(bad) == "malformed"
    assert hmac_calls == []  # refused before any HMAC work


def test_no_message_contains_the_token_or_its_signature() -> None:
    revoked = RevocationList()
    token = issue(CLAIMS, OLD)
    revoked.revoke_token(token, NOW)
    wrong = issue(CLAIMS, KeyRing({"k1": b"x" * 32}, "k1"))
    cases: dict[str, tuple[str, dict[str, Any]]] = {
        "unknown_key": (issue(CLAIMS, KeyRing({"k9": b"9" * 32}, "k9")), {}),
        "bad_signature": (wrong, {}),
        "expired": (token, {"now": NOW + 7200}),
        "wrong_event": (token, {"event": "paid"}),
        "revoked": (token, {"revoked": revoked}),
        "malformed": (token + "A", {}),
        "not_yet_valid": (
            issue(TokenClaims("main", "a", "s", int(NOW) + 9000, int(NOW) + 600), OLD),
            {},
        ),
    }
    for reason, (bad, options) in cases.items():
        assert refusal(bad, **options) == reason  # refusal() checks token and signature
    assert sorted([*cases, "missing"]) == sorted(REASONS)


def test_revoking_a_session_refuses_its_tokens_until_they_are_dead() -> None:
    revoked = RevocationList(max_token_life=3600.0)
    token = issue(CLAIMS, OLD)
    other = issue(TokenClaims("main", "acct-1", "other", int(NOW) + 3600), OLD)
    until = revoked.revoke_session("sess_1", NOW)
    assert until == NOW + 3600 + 60
    assert refusal(token, revoked=revoked) == "revoked"
    assert verify(other, event="main", now=NOW, key_ring=OLD, revoked=revoked)
    assert revoked.prune(until - 1) == 0 and len(revoked) == 1
    assert revoked.prune(until) == 1 and len(revoked) == 0


def test_revoking_one_token_leaves_the_others_of_its_session() -> None:
    revoked = RevocationList()
    token = issue(CLAIMS, OLD)
    sibling = issue(TokenClaims("main", "acct-1", "sess_1", int(NOW) + 1800), OLD)
    assert revoked.revoke_token(token, NOW) == CLAIMS.exp + 60
    assert refusal(token, revoked=revoked) == "revoked"
    assert verify(sibling, event="main", now=NOW, key_ring=OLD, revoked=revoked)
    assert revoked.revokes_id("sess_1", token_id(token), NOW)
    assert len(token_id(token)) == 32 and token_id(token) not in token


def test_the_revocation_list_stays_bounded() -> None:
    revoked = RevocationList(max_token_life=10.0, skew=0.0, max_entries=3)
    for index in range(3):
        revoked.revoke_session(f"s{index}", NOW)
    with pytest.raises(LivecastError, match="revocation list"):
        revoked.revoke_session("s3", NOW + 5)
    revoked.revoke_session("s3", NOW + 10)  # the first three ran out: pruned to make room
    assert len(revoked) == 1


def test_claims_that_cannot_stand_in_a_token_are_refused_at_issue() -> None:
    for bad in (
        TokenClaims("ma.in", "a", "s", 10),
        TokenClaims("main", "a\n", "s", 10),
        TokenClaims("main", "a", "", 10),
        TokenClaims("main", "a", "s", 0),
        TokenClaims("main", "a", "s", -5),
        TokenClaims("main", "a", "s", 10, nbf=-1),
        TokenClaims("main", "a", "s", 10**17),
    ):
        with pytest.raises(ConfigError):
            issue(bad, OLD)


def test_key_ring_validation_names_the_key_and_never_the_secret() -> None:
    secret = b"s" * 16
    with pytest.raises(ConfigError, match=r"keys\.short") as caught:
        KeyRing({"short": secret}, "short").validate()
    assert "sss" not in str(caught.value)
    with pytest.raises(ConfigError, match="signing"):
        KeyRing({"k1": b"1" * 32}, "k2").validate()
    with pytest.raises(ConfigError, match="key id"):
        KeyRing({"k.1": b"1" * 32}, "k.1").validate()
    with pytest.raises(ConfigError, match="empty"):
        KeyRing({}, "k1").validate()
    shown = repr(BOTH)
    assert "k1" in shown and "k2" in shown and "1111" not in shown and "2222" not in shown
    assert base64.b64encode(b"1" * 32).decode() not in shown


def test_a_key_ring_from_a_file_and_the_environment(tmp_path: object) -> None:
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    one, two = base64.b64encode(b"1" * 32).decode(), base64.urlsafe_b64encode(b"2" * 32).decode()
    path = tmp_path / "keys.toml"
    path.write_text(f'signing = "k1"\n[keys]\nk1 = "{one}"\n')
    assert load_key_ring(path, env={}) == OLD
    env = {"LIVECAST_TOKEN_KEYS": f"k2:{two.rstrip('=')}", "LIVECAST_TOKEN_SIGNING": "k2"}
    assert load_key_ring(path, env=env) == BOTH
    assert load_key_ring(None, env={"LIVECAST_TOKEN_KEYS": f"k1:{one}"}) == OLD
    with pytest.raises(ConfigError, match="signing"):
        load_key_ring(None, env={"LIVECAST_TOKEN_KEYS": f"k1:{one},k2:{two}"})
    with pytest.raises(ConfigError, match="not base64") as caught:
        load_key_ring(None, env={"LIVECAST_TOKEN_KEYS": "k1:not*base64!secret"})
    assert "secret" not in str(caught.value).replace("the secret", "")
    path.write_text('signing = "k1"\n[keys]\nk1 = "c2hvcnQ="\n')
    with pytest.raises(ConfigError, match=r"keys\.k1.*at least 32"):
        load_key_ring(path, env={})
    path.write_text('signing = "k1"\nsecret = 1\n')
    with pytest.raises(ConfigError, match="secret"):
        load_key_ring(path, env={})
    assert decode_secret("k", base64.b64encode(b"abc").decode()) == b"abc"


names = st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True)


@settings(max_examples=200, deadline=None)
@given(
    event=names,
    account=names,
    session=names,
    exp=st.integers(1, 10**16 - 1),
    nbf=st.integers(0, 10**16 - 1),
)
def test_any_valid_claims_round_trip(
    event: str, account: str, session: str, exp: int, nbf: int
) -> None:
    claims = TokenClaims(event, account, session, exp, nbf)
    token = issue(claims, BOTH)
    assert len(token) <= MAX_TOKEN_BYTES
    back = tokens.parse(token)[0]
    assert back == TokenClaims(event, account, session, exp, nbf, "k2")
    now = float(max(nbf, 1))
    if now < exp + 60:
        assert verify(token, event=event, now=now, key_ring=BOTH) == back


@settings(max_examples=500, deadline=None)
@given(
    text=st.one_of(
        st.text(max_size=600),
        st.lists(st.text(max_size=70), min_size=7, max_size=9).map(".".join),
        st.lists(names, min_size=8, max_size=8).map(lambda f: "v1." + ".".join(f[1:])),
    )
)
def test_verify_raises_nothing_but_access_error(text: str) -> None:
    try:
        verify(text, event="main", now=NOW, key_ring=BOTH)
    except AccessError as error:
        assert error.reason in REASONS
        if len(text) >= 48:
            assert text not in str(error)


def test_revocation_changes_come_in_order_once_each_and_bounded() -> None:
    revoked = RevocationList(max_entries=5)
    assert revoked.changes(0) == tokens.RevocationChanges(revoked.epoch, 0, False, ())
    revoked.revoke_session("s1", 100.0)
    revoked.revoke_session("s2", 100.0)
    revoked.revoke_session("s1", 200.0)  # again: moves to the end with a new number
    changes = revoked.changes(0)
    assert [(e.id, changes.seq) for e in changes.entries] == [("s2", 3), ("s1", 3)]
    assert revoked.changes(2).entries == (changes.entries[1],)
    page = revoked.changes(0, limit=1)
    assert (page.seq, page.more, [e.id for e in page.entries]) == (2, True, ["s2"])
    assert revoked.changes(3).entries == () and revoked.changes(3).seq == 3
    assert revoked.changes(99).seq == 3  # a reader from another list: told the current number
    revoked.prune(200.0 + 86400 + 60)
    assert revoked.changes(0).entries == () and len(revoked) == 0
    for n in range(5):
        revoked.revoke_session(f"n{n}", 1e9)
    assert len(revoked.changes(0).entries) == 5  # as bounded as the list
    assert RevocationList().epoch != revoked.epoch
