"""Connection choice and deadlines for drivers (``player.lanes``), with fake lanes and a fake
clock: routing, reuse, the four-lane limit and its first-in first-out queue, closing an idle lane
for another host, and a deadline wheel that is never early and at most one slot late."""

from __future__ import annotations

import pytest

from livecast.player.lanes import MAX_LANES, DeadlineWheel, LanePool, Router
from livecast.player.requests import Request


class FakeLane:
    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.busy = False
        self.closed = False

    def close(self) -> None:
        self.closed = True


def pool() -> LanePool[FakeLane]:
    return LanePool(FakeLane)


def request(n: int) -> Request:
    return Request(n, f"http://o.test/live/part-{n}.m4s", "part", 10.0, 0.0)


def test_routes_keep_the_query_and_default_to_port_80() -> None:
    router = Router()
    assert router.route("http://127.0.0.1:8080/live/a.m3u8?_HLS_msn=3&CMCD=x") == (
        "127.0.0.1",
        8080,
        "/live/a.m3u8?_HLS_msn=3&CMCD=x",
    )
    assert router.route("http://origin.test/x") == ("origin.test", 80, "/x")
    assert router.route("http://origin.test") == ("origin.test", 80, "/")
    assert router.route("http://[::1]:9000/y") == ("::1", 9000, "/y")


def test_an_idle_lane_to_the_same_host_is_reused() -> None:
    lanes = pool()
    first = lanes.acquire("o", 80)
    assert first is not None
    assert lanes.acquire("o", 80) is first  # idle: reused
    first.busy = True
    second = lanes.acquire("o", 80)
    assert second is not None and second is not first
    assert lanes.acquire("o", 81) not in (first, second)  # another port: another lane


def test_at_most_four_lanes_then_requests_wait_first_in_first_out() -> None:
    lanes = pool()
    for _ in range(MAX_LANES):
        lane = lanes.acquire("o", 80)
        assert lane is not None
        lane.busy = True
    assert len(lanes.lanes) == MAX_LANES
    assert lanes.acquire("o", 80) is None
    assert lanes.acquire("other", 80) is None  # nothing idle to give up either
    lanes.wait(request(1))
    lanes.wait(request(2))
    assert [lanes.next_waiting(), lanes.next_waiting()] == [request(1), request(2)]
    assert lanes.next_waiting() is None


def test_a_full_pool_closes_an_idle_lane_to_another_host() -> None:
    lanes = pool()
    opened: list[FakeLane] = []
    for _ in range(MAX_LANES):
        lane = lanes.acquire("a", 80)
        assert lane is not None
        lane.busy = True
        opened.append(lane)
    idle = opened[0]
    idle.busy = False
    assert lanes.acquire("a", 80) is idle  # its own host first
    replacement = lanes.acquire("b", 80)
    assert replacement is not None and replacement.host == "b"
    assert idle.closed and idle not in lanes.lanes and len(lanes.lanes) == MAX_LANES


def test_a_failed_lane_is_discarded_and_everything_closes_at_the_end() -> None:
    lanes = pool()
    lane = lanes.acquire("o", 80)
    assert lane is not None
    lanes.discard(lane)
    assert lane.closed and lanes.lanes == []
    lanes.discard(lane)  # twice is harmless
    kept = lanes.acquire("o", 80)
    lanes.wait(request(3))
    lanes.close_all()
    assert kept is not None and kept.closed
    assert lanes.lanes == [] and lanes.next_waiting() is None


class Item:
    def __init__(self, name: str) -> None:
        self.name = name
        self.armed_slot: int | None = None

    def __repr__(self) -> str:
        return self.name


def test_the_wheel_is_never_early_and_at_most_one_slot_late() -> None:
    wheel: DeadlineWheel[Item] = DeadlineWheel(0.25, now=100.0)
    a, b = Item("a"), Item("b")
    wheel.arm(a, 100.1)
    wheel.arm(b, 100.5)
    assert wheel.due(100.1) == []  # its slot (from 100.25) has not begun
    assert wheel.due(100.25) == [a]
    assert wheel.due(100.49) == []
    assert wheel.due(100.5) == [b]  # on a slot boundary: due right then
    assert a.armed_slot is None and b.armed_slot is None
    assert wheel.due(200.0) == [] and len(wheel) == 0


def test_arming_later_keeps_the_earlier_deadline_and_arming_earlier_moves_it() -> None:
    wheel: DeadlineWheel[Item] = DeadlineWheel(0.01, now=0.0)
    item = Item("v")
    wheel.arm(item, 1.0)
    wheel.arm(item, 5.0)  # later: ignored (it wakes at 1.0 and is armed again then)
    wheel.arm(item, 0.5)  # earlier: moves
    assert len(wheel) == 2  # the entry at 1.0 is stale
    assert wheel.due(0.49) == []
    assert wheel.due(0.5) == [item]
    assert wheel.due(1.0) == []  # the stale entry is skipped
    wheel.arm(item, 2.0)
    wheel.arm(item, 2.0)
    assert wheel.due(2.0) == [item]  # once, not twice


def test_a_past_deadline_is_due_at_the_next_call_and_disarm_forgets() -> None:
    wheel: DeadlineWheel[Item] = DeadlineWheel(0.1, now=10.0)
    late, gone = Item("late"), Item("gone")
    assert wheel.due(10.05) == []
    wheel.arm(late, 3.0)  # already past: the next slot not handed out
    wheel.arm(gone, 10.3)
    wheel.disarm(gone)
    assert wheel.due(10.2) == [late]
    assert wheel.due(11.0) == []


def test_a_long_gap_hands_out_every_slot_in_order() -> None:
    wheel: DeadlineWheel[Item] = DeadlineWheel(0.01, now=0.0)
    items = [Item(str(i)) for i in range(5)]
    for i, item in enumerate(reversed(items)):
        wheel.arm(item, 1000.0 - i * 100.0)
    assert wheel.due(5000.0) == items
    with pytest.raises(ValueError):
        DeadlineWheel(0.0, now=0.0)
