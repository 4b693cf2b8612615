"""The on-air decision: primary, backup or slate, with time passed in."""

from __future__ import annotations

import pytest

from livecast.errors import ConfigError
from livecast.ingest.switch import SLATE, InputSwitch, SwitchPolicy

POLICY = SwitchPolicy(input_loss=1.5, failover_after=1.0, switch_back_after=10.0)


def feed(switch: InputSwitch, name: str, start: float, end: float, step: float = 0.1) -> None:
    t = start
    while t <= end + 1e-9:
        switch.on_media(name, t)
        switch.decide(t)
        t = round(t + step, 6)


def test_nothing_on_air_before_the_first_media() -> None:
    switch = InputSwitch(("primary",), POLICY)
    assert switch.decide(100.0) is None
    assert switch.on_air is None
    assert switch.next_check(100.0) is None


def test_first_media_puts_the_input_on_air() -> None:
    switch = InputSwitch(("primary",), POLICY)
    switch.on_media("primary", 1.0)
    change = switch.decide(1.0)
    assert change is not None and (change.before, change.after) == (None, "primary")


def test_only_input_lost_gives_the_slate_after_input_loss_not_before() -> None:
    switch = InputSwitch(("primary",), POLICY)
    feed(switch, "primary", 0.0, 5.0)
    assert switch.decide(6.4) is None  # 1.4 s without media: still a hiccup
    assert switch.next_check(6.4) == pytest.approx(6.5)
    change = switch.decide(6.5)
    assert change is not None and change.after == SLATE
    assert "no media for 1.5 s" in change.reason


def test_publisher_leaving_waits_input_loss_too() -> None:
    switch = InputSwitch(("primary",), POLICY)
    feed(switch, "primary", 0.0, 5.0)
    switch.on_end("primary", 5.05)
    assert switch.decide(5.2) is None
    change = switch.decide(6.5)
    assert change is not None and change.after == SLATE


def test_input_back_from_the_slate_goes_on_air_at_its_first_media() -> None:
    switch = InputSwitch(("primary",), POLICY)
    feed(switch, "primary", 0.0, 5.0)
    switch.decide(7.0)
    assert switch.on_air == SLATE
    switch.on_media("primary", 10.0)
    change = switch.decide(10.0)
    assert change is not None and (change.before, change.after) == (SLATE, "primary")


def test_failover_to_a_healthy_backup_after_failover_after() -> None:
    switch = InputSwitch(("primary", "backup"), POLICY)
    feed(switch, "primary", 0.0, 5.0)
    feed(switch, "backup", 0.0, 5.0)
    assert switch.on_air == "primary"
    switch.on_media("backup", 5.95)
    assert switch.decide(5.95) is None
    switch.on_media("backup", 6.0)
    change = switch.decide(6.0)
    assert change is not None and (change.before, change.after) == ("primary", "backup")
    assert change.reason == "primary: no media for 1.0 s"


def test_publisher_gone_fails_over_at_once() -> None:
    switch = InputSwitch(("primary", "backup"), POLICY)
    feed(switch, "primary", 0.0, 5.0)
    feed(switch, "backup", 0.0, 5.0)
    switch.on_end("primary", 5.0)
    change = switch.decide(5.0)
    assert change is not None and change.after == "backup"
    assert "publisher gone" in change.reason


def test_switch_back_only_after_the_primary_is_healthy_for_switch_back_after() -> None:
    switch = InputSwitch(("primary", "backup"), POLICY)
    feed(switch, "primary", 0.0, 2.0)
    feed(switch, "backup", 0.0, 12.0)
    assert switch.on_air == "backup"
    t = 12.0
    while t < 21.95:  # both publish; the primary healthy from 12 s
        switch.on_media("backup", t)
        switch.on_media("primary", t)
        switch.decide(t)
        t = round(t + 0.1, 6)
    assert switch.on_air == "backup"  # healthy for 9.9 s
    switch.on_media("backup", 22.0)
    switch.on_media("primary", 22.0)
    change = switch.decide(22.0)
    assert change is not None and (change.before, change.after) == ("backup", "primary")


def test_a_flapping_primary_restarts_its_healthy_time() -> None:
    switch = InputSwitch(("primary", "backup"), POLICY)
    feed(switch, "backup", 0.0, 40.0, step=0.5)
    assert switch.on_air == "backup"
    feed(switch, "primary", 10.0, 18.0)
    feed(switch, "primary", 19.5, 28.0)  # a 1.5 s gap at 18 s: healthy again from 19.5 s
    assert switch.on_air == "backup"
    feed(switch, "primary", 28.1, 29.5)
    assert switch.on_air == "primary"
    assert switch.switches[-1].at == pytest.approx(29.5)


def test_both_inputs_lost_gives_the_slate_then_the_primary_wins() -> None:
    switch = InputSwitch(("primary", "backup"), POLICY)
    feed(switch, "primary", 0.0, 5.0)
    feed(switch, "backup", 0.0, 5.0)
    assert switch.decide(6.5) is not None and switch.on_air == SLATE
    switch.on_media("backup", 8.0)
    switch.on_media("primary", 8.0)
    change = switch.decide(8.0)
    assert change is not None and change.after == "primary"


def test_backup_lost_while_primary_on_air_changes_nothing() -> None:
    switch = InputSwitch(("primary", "backup"), POLICY)
    feed(switch, "primary", 0.0, 10.0)
    feed(switch, "backup", 0.0, 2.0)
    assert switch.on_air == "primary"
    assert [s.after for s in switch.switches] == ["primary"]


def test_policy_and_inputs_are_validated() -> None:
    with pytest.raises(ConfigError, match="failover_after"):
        SwitchPolicy(input_loss=1.0, failover_after=2.0).validate()
    with pytest.raises(ConfigError, match="switch_back_after"):
        SwitchPolicy(switch_back_after=0.0).validate()
    with pytest.raises(ConfigError):
        InputSwitch(("a", "a"))
    with pytest.raises(ConfigError):
        InputSwitch((SLATE,))
    with pytest.raises(ConfigError, match="no input 'c'"):
        InputSwitch(("a",)).on_media("c", 0.0)
