"""The fuzz campaign (``python -m livecast.fuzzing``): a short budget over every target finds no
crash and gets somewhere in each; the runner finds, shrinks and writes a planted crash; the HTTP
answer checker refuses what is not HTTP; the arc tracer counts livecast code only."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from hypothesis import strategies as st

from livecast.errors import LivecastError
from livecast.fuzzing import __main__ as cli
from livecast.fuzzing.core import ArcTracer, PropertyViolation, Target, stateless
from livecast.fuzzing.http import check, parse_responses
from livecast.fuzzing.runner import all_targets, render_table, run_campaign, run_target, select
from livecast.hls.attributes import parse_int

CI_BUDGET = 18.0  # seconds over all targets


def test_a_short_campaign_over_every_target_finds_no_crash_and_explores_each() -> None:
    targets = all_targets()
    assert {t.name.split(".")[0] for t in targets} == {
        "media", "playlists", "directives", "cmcd", "tokens", "http",
    }  # fmt: skip
    started = time.monotonic()
    results = run_campaign(targets, CI_BUDGET)
    elapsed = time.monotonic() - started
    table = render_table(results)
    print(table)
    assert [r.crashes for r in results] == [[] for _ in results], table
    for result in results:
        assert result.inputs > 50, table
        assert result.paths > 20, table
    assert elapsed < CI_BUDGET + 15  # each share kept, plus the origin's start and stop


# ---------------------------------------------------------------- the runner on a planted bug


def planted(value: int) -> None:
    if value % 7 == 3 and value < 500:
        raise LivecastError("documented refusal")
    if value >= 500:
        raise ValueError(f"planted bug at {value}")


PLANTED = Target(
    "planted.bug",
    "integers; ValueError from 500 up",
    st.integers(0, 10_000),
    stateless(planted),
    documented=(LivecastError,),
)


def test_a_crash_is_found_shrunk_to_its_minimal_input_and_written(tmp_path: Path) -> None:
    result = run_target(PLANTED, 3.0, tracer=ArcTracer())
    assert result.inputs > 20 and result.refused > 0
    (crash,) = result.crashes  # one site, however many inputs hit it
    assert crash.input == 500 and crash.site.startswith("ValueError at ")
    assert "planted bug at 500" in crash.traceback


def test_the_command_exits_1_on_a_crash_and_writes_input_and_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "select", lambda names: [PLANTED])
    assert cli.main(["--budget", "2", "--out", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "planted.bug" in out and "CRASH planted.bug: ValueError" in out
    assert (tmp_path / "crash-planted.bug-1.input.txt").read_text() == "500\n"
    assert "ValueError" in (tmp_path / "crash-planted.bug-1.traceback.txt").read_text()
    assert (tmp_path / "hypothesis").is_dir()  # the example database, replayed next time


def test_the_command_runs_a_named_family_and_refuses_unknown_names(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["--budget", "1", "--target", "directives"]) == 0
    out = capsys.readouterr().out
    assert "directives.llhls" in out and "total" in out and "media.fmp4" not in out
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--target", "nope"])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit):
        cli.main(["--budget", "0"])
    assert [t.name for t in select(["tokens"])] == ["tokens.verify", "tokens.issue"]


# ---------------------------------------------------------------- the HTTP answer checker

OK_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\n"


def test_well_formed_pipelined_answers_pass_including_one_to_head() -> None:
    answer = OK_HEAD + b"hello" + OK_HEAD + b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
    assert parse_responses(answer) == [200, 200, 404]
    assert parse_responses(b"") == []  # a clean close
    check(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")


@pytest.mark.parametrize(
    "answer",
    [
        b"garbage",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel",  # body cut short
        b"HTTP/1.1 200 OK\r\n\r\n",  # no Content-Length
        b"HTTP/1.1 200 OK\r\nBad Header\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
        b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 418 I'm a teapot\r\nContent-Length: 0\r\n\r\n",  # not one it documents
    ],
)
def test_what_is_not_a_proper_answer_is_a_violation(answer: bytes) -> None:
    with pytest.raises(PropertyViolation):
        check(answer)


# ---------------------------------------------------------------- distinct paths


def test_arcs_are_counted_in_livecast_modules_only() -> None:
    tracer = ArcTracer()
    with tracer.tracing():
        json.dumps({"a": [1, 2]})
    assert tracer.count == 0
    with tracer.tracing():
        parse_int("12", "n")
    first = tracer.count
    assert first > 0 and all("/livecast/hls/" in arc[0] for arc in tracer.arcs)
    with tracer.tracing():
        parse_int("12", "n")
    assert tracer.count == first  # the same path again is not a new one
    with pytest.raises(LivecastError), tracer.tracing():
        parse_int("x", "n")
    assert tracer.count > first  # the refusal branch is
