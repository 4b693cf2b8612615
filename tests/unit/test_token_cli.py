"""``livecast token``: keygen → issue → verify in-process, exit codes 0 / 1 / 2, and the secret
never on stderr (docs/access.md)."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest

from livecast.access.keys import load_key_ring
from livecast.access.tokens import verify
from livecast.cli import main


@pytest.fixture
def keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A key file made by ``livecast token keygen``, and no key ring in the environment."""
    monkeypatch.delenv("LIVECAST_TOKEN_KEYS", raising=False)
    monkeypatch.delenv("LIVECAST_TOKEN_SIGNING", raising=False)
    assert main(["token", "keygen", "--kid", "k1"]) == 0
    path = tmp_path / "keys.toml"
    path.write_text(capsys.readouterr().out)
    return path


def issue_token(keys: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    args = ["token", "issue", "--keys", str(keys), "--event", "main"]
    assert main([*args, "--account", "acct", "--session", "s1", *extra]) == 0
    return capsys.readouterr().out.strip()


def test_keygen_prints_a_ring_with_a_32_byte_secret(keys: Path) -> None:
    ring = load_key_ring(keys, env={})
    assert ring.signing_kid == "k1" and len(ring.signing_key) == 32
    assert "[keys]" in keys.read_text()


def test_keygen_names_the_key_by_date_and_makes_a_new_secret_each_time(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["token", "keygen"]) == 0
    first = capsys.readouterr().out
    assert main(["token", "keygen"]) == 0
    assert first != capsys.readouterr().out
    assert f'signing = "k{time.strftime("%Y%m%d", time.gmtime())}"' in first
    assert main(["token", "keygen", "--kid", "bad.kid"]) == 2


def test_issue_then_verify(keys: Path, capsys: pytest.CaptureFixture[str]) -> None:
    token = issue_token(keys, capsys, "--ttl", "120")
    claims = verify(token, event="main", now=time.time(), key_ring=load_key_ring(keys, env={}))
    assert claims.account == "acct" and claims.nbf == 0
    assert 119 <= claims.exp - time.time() <= 121
    assert main(["token", "verify", "--keys", str(keys), "--event", "main", token]) == 0
    out = capsys.readouterr().out
    assert "account=acct" in out and "session=s1" in out and "kid=k1" in out


def test_not_before_now(keys: Path, capsys: pytest.CaptureFixture[str]) -> None:
    token = issue_token(keys, capsys, "--not-before-now")
    claims = verify(token, event="main", now=time.time(), key_ring=load_key_ring(keys, env={}))
    assert abs(claims.nbf - time.time()) < 5


def test_a_refused_token_prints_the_reason_and_exits_1(
    keys: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token = issue_token(keys, capsys)
    assert main(["token", "verify", "--keys", str(keys), "--event", "paid", token]) == 1
    captured = capsys.readouterr()
    assert captured.out == "wrong_event\n"
    assert token not in captured.err and token.rsplit(".", 1)[1] not in captured.err
    assert main(["token", "verify", "--keys", str(keys), "--event", "main", token + "x"]) == 1
    assert capsys.readouterr().out == "malformed\n"


def test_verify_reads_the_token_from_stdin(
    keys: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    token = issue_token(keys, capsys)
    monkeypatch.setattr("sys.stdin", io.StringIO(token + "\n"))
    assert main(["token", "verify", "--keys", str(keys), "--event", "main", "-"]) == 0


def test_bad_input_exits_2_without_printing_a_secret(
    keys: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = str(tmp_path / "nope.toml")
    base = ["--event", "main", "--account", "a", "--session", "s"]
    assert main(["token", "issue", "--keys", missing, *base]) == 2
    assert main(["token", "issue", "--keys", str(keys), *base, "--ttl", "0"]) == 2
    assert main(["token", "issue", "--keys", str(keys), "--event", "a.b", *base[2:]]) == 2
    assert main(["token", "verify", "--keys", str(keys), "--event", "a b", "tok"]) == 2
    short = tmp_path / "short.toml"
    short.write_text('signing = "k1"\n[keys]\nk1 = "c2hvcnRzZWNyZXQ="\n')
    assert main(["token", "issue", "--keys", str(short), *base]) == 2
    err = capsys.readouterr().err
    assert "keys.k1" in err and "c2hvcnRzZWNyZXQ" not in err and "shortsecret" not in err
    with pytest.raises(SystemExit) as exited:
        main(["token", "issue", "--keys", str(keys)])
    assert exited.value.code == 2


def test_the_ring_may_come_from_the_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import base64

    monkeypatch.setenv("LIVECAST_TOKEN_KEYS", "e1:" + base64.b64encode(b"e" * 32).decode())
    monkeypatch.delenv("LIVECAST_TOKEN_SIGNING", raising=False)
    args = ["token", "issue", "--event", "main", "--account", "a", "--session", "s"]
    assert main(args) == 0
    assert capsys.readouterr().out.startswith("v1.e1.main.a.s.")
