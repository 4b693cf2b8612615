"""The parking lot of held requests, pure, with ``now`` passed in: release by key, expiry by
deadline slot, unparking, and the counts."""

from __future__ import annotations

import pytest

from livecast.origin.parking import ParkingLot


def lot() -> ParkingLot[str]:
    return ParkingLot(resolution=0.05)


def test_release_hands_back_every_waiter_of_the_key_once() -> None:
    parking = lot()
    parking.park("a", "k1", 10.0)
    parking.park("b", "k1", 12.0)
    parking.park("c", "k2", 10.0)
    assert len(parking) == 3 and parking.waiting("k1") == 2 and parking
    assert sorted(parking.release("k1")) == ["a", "b"]
    assert list(parking.release("k1")) == []
    assert parking.held_keys() == ["k2"] and len(parking) == 1
    assert parking.due(100.0) == [("k2", ["c"])]  # a and b left no deadline behind
    assert not parking and len(parking) == 0


def test_due_at_the_first_slot_at_or_after_the_deadline_grouped_by_key() -> None:
    parking = ParkingLot[str](resolution=0.25)  # exact in binary: no rounding in the test
    parking.park("a", "k1", 10.01)  # due from 10.25
    parking.park("b", "k1", 10.2)
    parking.park("c", "k2", 10.25)
    parking.park("d", "k3", 10.3)  # due from 10.5
    assert parking.due(10.0) == []
    assert parking.due(10.249) == []
    assert parking.due(10.25) == [("k1", ["a", "b"]), ("k2", ["c"])]
    assert parking.due(10.25) == []
    assert parking.held_keys() == ["k3"] and parking.waiting("k1") == 0
    assert parking.due(10.49) == []
    assert parking.due(10.5) == [("k3", ["d"])]
    assert len(parking) == 0


def test_never_due_before_the_deadline_nor_a_slot_after_it() -> None:
    parking = lot()
    deadlines = [1000.0 + n * 0.0137 for n in range(200)]
    for n, deadline in enumerate(deadlines):
        parking.park(f"w{n}", n, deadline)
    now, seen = 1000.0, 0
    while seen < len(deadlines):
        now += 0.05  # the sweeps
        for key, waiters in parking.due(now):
            assert isinstance(key, int) and waiters == [f"w{key}"]
            assert deadlines[key] <= now + 1e-9 and now - deadlines[key] < 0.1
            seen += 1


def test_an_unparked_waiter_is_neither_released_nor_due() -> None:
    parking = lot()
    parking.park("gone", "k", 5.0)
    parking.park("stays", "k", 5.0)
    assert parking.unpark("gone", "k")
    assert not parking.unpark("gone", "k")
    assert not parking.unpark("stays", "other-key")
    assert parking.due(6.0) == [("k", ["stays"])]
    parking.park("again", "k", 7.0)
    assert parking.unpark("again", "k")
    assert parking.release("k") == () and parking.due(8.0) == [] and len(parking) == 0


def test_a_waiter_may_park_again_after_its_release() -> None:
    parking = lot()
    parking.park("a", "k1", 5.0)
    for waiter in parking.release("k1"):
        parking.park(waiter, "k2", 6.0)
    assert parking.held_keys() == ["k2"] and parking.due(6.0) == [("k2", ["a"])]


def test_release_all_empties_the_lot() -> None:
    parking = lot()
    parking.park("a", "k1", 5.0)
    parking.park("b", "k2", 6.0)
    released = [(key, list(waiters)) for key, waiters in parking.release_all()]
    assert released == [("k1", ["a"]), ("k2", ["b"])]
    assert len(parking) == 0 and parking.held_keys() == [] and parking.due(99.0) == []


def test_an_unhashable_key_is_refused_before_anything_changes() -> None:
    parking = lot()
    with pytest.raises(TypeError):
        parking.park("a", ["not", "hashable"], 5.0)  # type: ignore[arg-type]
    assert len(parking) == 0 and parking.due(99.0) == []


def test_the_resolution_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        ParkingLot[str](resolution=0)
