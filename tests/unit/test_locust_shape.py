"""The distributed rehearsal's pure pieces: the audience plan as a Locust load shape (flash with
skew, ramp, churn), the workers' shares, the handshake's verdicts, the wire forms; the CLI's
refusal of engine flags that do not fit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from livecast.access.keys import KeyRing
from livecast.access.tokens import verify
from livecast.cli import main
from livecast.errors import LivecastError
from livecast.rehearse.locust_shape import (
    LOOKAHEAD,
    SLACK_PER_WORKER,
    Assignment,
    Hello,
    ShapeSchedule,
    access_to_wire,
    assign,
    loss_of,
    parse_address,
    plan_from_wire,
    plan_to_wire,
    refusal,
)
from livecast.rehearse.progress import Progress, merge_progress
from livecast.rehearse.viewer_access import ViewerAccess, session_id
from livecast.scenario.audience import AudienceShape, DownlinkBand, ViewerPlan, plan_audience

BANDS = [DownlinkBand(6000, 1)]


def plans_of(shape: AudienceShape, duration: float = 60.0) -> list[ViewerPlan]:
    return plan_audience(shape, duration, low_latency_share=0.5, downlink=BANDS, seed=7)


def arrivals_per_second(plans: list[ViewerPlan], duration: float) -> list[int]:
    return [sum(1 for p in plans if p.arrive < s + 1) for s in range(int(duration))]


@pytest.mark.parametrize(
    "shape",
    [
        AudienceShape(kind="flash", viewers=300, within=10.0, skew=3.0),
        AudienceShape(kind="ramp", viewers=120, at=5.0, within=30.0),
        AudienceShape(kind="steady", viewers=50, mean_session=8.0, replace=True),
    ],
    ids=["flash-skew", "ramp", "churn-replace"],
)
def test_the_shape_follows_the_plan_arrivals_second_by_second(shape: AudienceShape) -> None:
    plans = plans_of(shape)
    schedule = ShapeSchedule.of(plans, 60.0, workers=3)
    assert schedule.counts_per_second() == arrivals_per_second(plans, 60.0)
    last = None
    for second in range(-2, 60):
        tick = schedule.tick(float(second), last)
        assert tick is not None
        count, rate = tick
        # users exist LOOKAHEAD seconds ahead of their arrival, plus one idle per worker
        ahead = sum(1 for p in plans if p.arrive <= second + LOOKAHEAD)
        assert count == ahead + 3 * SLACK_PER_WORKER
        assert count >= (last[0] if last else 0)  # never down: leavers idle, not stopped
        if last is not None and count == last[0]:
            assert tick == last  # no new dispatch while the count holds
        else:
            assert rate == max(1.0, count - (last[0] if last else 0))  # one dispatch step
        last = tick
    assert schedule.tick(60.0, last) is None  # the show is over: the test stops


def test_flash_skew_front_loads_and_churn_counts_replacements() -> None:
    flash = ShapeSchedule.of(plans_of(AudienceShape(viewers=300, within=10.0, skew=3.0)), 60, 1)
    per_second = flash.counts_per_second()
    assert per_second[1] - per_second[0] < per_second[0]  # most arrive in the first seconds
    assert per_second[9] - per_second[8] < per_second[0] and per_second[-1] == 300
    churn = plans_of(AudienceShape(kind="steady", viewers=50, mean_session=8.0, replace=True))
    assert len(churn) > 50 and ShapeSchedule.of(churn, 60, 1).counts_per_second()[-1] == len(churn)


def test_each_worker_plays_the_drivers_share_in_arrival_order() -> None:
    plans = plans_of(AudienceShape(viewers=101, within=10.0))
    shares = assign(plans, 4)
    assert sorted(p.index for share in shares for p in share) == list(range(101))
    assert [len(s) for s in shares] == [26, 25, 25, 25]
    for share in shares:
        assert [p.arrive for p in share] == sorted(p.arrive for p in share)


def test_handshake_refuses_another_version_or_scenario() -> None:
    sha = "ab" * 32
    assert refusal(Hello("w", "0.1.0", sha), "0.1.0", sha) is None
    assert refusal(Hello("w", "0.1.0", ""), "0.1.0", sha) is None  # no --scenario: not checked
    version = refusal(Hello("w", "9.9.9", sha), "0.1.0", sha)
    assert version is not None and "9.9.9" in version and "same livecast version" in version
    scenario = refusal(Hello("w", "0.1.0", "cd" * 32), "0.1.0", sha)
    assert scenario is not None and "scenario file" in scenario


def test_messages_round_trip() -> None:
    plan = ViewerPlan(3, 1.25, 9.5, False, 2e6, 123, seek_back=30.0)
    assert plan_from_wire(plan_to_wire(plan)) == plan
    assignment = Assignment(1, 2, 1000.0, 30.0, ("http://a/m.m3u8",), False, 12.0, (plan,))
    assert Assignment.from_dict(assignment.to_dict()) == assignment
    hello = Hello("host_1", "0.1.0", "ff")
    assert Hello.from_dict(hello.to_dict()) == hello
    merged = merge_progress(
        4, [Progress(4, 10, 100, 1, 1.2, 1.9), Progress(4, 5, 50, 0, None, None)]
    )
    assert merged == Progress(4, 15, 150, 1, 1.2, 1.9)
    assert Progress.from_dict(merged.to_dict()) == merged
    loss = loss_of("host_1", 1, 5.0, "missing heartbeats", 7, [plan, plan])
    assert loss.viewers_not_arrived == 0 and "7 viewers playing" in loss.describe()


def test_the_viewers_tokens_are_signed_where_the_ring_is_and_travel_with_their_plans() -> None:
    plans = [ViewerPlan(i, 0.1 * i, None, True, 6e6, 1000 + i) for i in range(3)]
    ring = KeyRing({"k1": b"r" * 32}, "k1")
    access = ViewerAccess(ring, "main", accounts=2, leases=True)
    wire = access_to_wire(access, plans, 1_800_000_000.0)
    assert wire["session_url"] == "/session/heartbeat"
    tokens = dict(wire["tokens"])
    claims = verify(tokens[2], event="main", now=1_800_000_000.0, key_ring=ring)
    assert (claims.account, claims.session) == ("acct-000000", session_id(2, 1002))
    assignment = Assignment(
        0, 1, 1000.0, 30.0, ("http://a/m.m3u8",), True, None, tuple(plans),
        "/session/heartbeat", tuple(tokens[p.index] for p in plans),
    )  # fmt: skip
    assert Assignment.from_dict(json.loads(json.dumps(assignment.to_dict()))) == assignment
    assert access_to_wire(None, plans, 0.0) == {}  # no access checks: nothing on the wire


def test_addresses() -> None:
    assert parse_address("10.0.0.5:5557", "--master") == ("10.0.0.5", 5557)
    assert parse_address("[::1]:5557", "--master") == ("::1", 5557)
    for bad in ("5557", "host:", "host:99999", ":80"):
        with pytest.raises(LivecastError, match="--master"):
            parse_address(bad, "--master")


def test_engine_flags_that_do_not_fit_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = tmp_path / "s.toml"
    scenario.write_text("duration = 5\n")
    out = str(tmp_path / "out")
    cases = [
        (["--master-bind", "0.0.0.0:5557"], "--master-bind needs --engine locust"),
        (["--engine", "locust", "--workers", "0"], "at least 1"),
        (["--engine", "locust", "--master-bind", "nowhere"], "not HOST:PORT"),
        (["--engine", "locust", "--connect-timeout", "0"], "must be positive"),
        (["--workers", "-1"], "negative"),
    ]
    for flags, message in cases:
        assert main(["rehearse", str(scenario), "--out", out, *flags]) == 2
        assert message in capsys.readouterr().err
