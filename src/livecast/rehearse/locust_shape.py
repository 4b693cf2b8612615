"""The distributed rehearsal's pure pieces: the audience plan as a Locust load shape, the plans
each worker plays, the master↔worker handshake and what a lost worker cost. No I/O.

Load shape: a Locust user plays exactly one planned viewer, so the user count is the number of
viewers that have arrived — cumulative arrivals, churn replacements included. It never goes down:
a viewer that leaves (``plan.leave``) ends its player and its user idles, so Locust never stops a
playing viewer. Users are spawned :data:`LOOKAHEAD` seconds ahead of their arrival and wait for it
(Locust dispatches users in steps; the wait makes arrivals exact to the plan), and each worker
gets :data:`SLACK_PER_WORKER` more users than its share (Locust balances users over workers by
its own order, not by our assignment): a user that finds no plan left idles.

Assignment: worker slot ``k`` of ``n`` (the order the master accepted them) plays
``plans[k::n]`` — the driver's own split — in arrival order: its j-th user the j-th plan.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from livecast.errors import LivecastError
from livecast.rehearse.viewer_access import ViewerAccess, session_id
from livecast.scenario.audience import ViewerPlan

LOOKAHEAD = 3.0  # seconds: users are spawned this far ahead of their viewer's arrival
SLACK_PER_WORKER = 1  # users per worker beyond the plan (they idle)
MIN_SPAWN_RATE = 1.0


@dataclass(frozen=True, slots=True)
class ShapeSchedule:
    """Locust ``LoadTestShape`` ticks from the plan's arrivals (t: seconds from show start)."""

    arrivals: tuple[float, ...]  # sorted
    duration: float
    workers: int
    lookahead: float = LOOKAHEAD

    @classmethod
    def of(cls, plans: Sequence[ViewerPlan], duration: float, workers: int) -> ShapeSchedule:
        return cls(tuple(sorted(p.arrive for p in plans)), duration, workers)

    def arrived(self, t: float) -> int:
        """Viewers that have arrived by ``t`` (arrival ≤ t)."""
        return bisect.bisect_right(self.arrivals, t)

    def user_count(self, t: float) -> int:
        """Users that should exist at ``t``: arrivals up to ``t + lookahead`` plus the slack."""
        return self.arrived(t + self.lookahead) + SLACK_PER_WORKER * self.workers

    def tick(self, t: float, last: tuple[int, float] | None = None) -> tuple[int, float] | None:
        """(user count, spawn rate) at ``t``, None once the show is over; ``last`` (the previous
        tick) again while the count holds (Locust starts a dispatch at every change). The rate
        dispatches a step in one go (Locust spaces its dispatch steps a second apart)."""
        if t >= self.duration:
            return None
        count = self.user_count(t)
        if last is not None and last[0] == count:
            return last
        previous = last[0] if last is not None else 0
        return count, max(MIN_SPAWN_RATE, float(count - previous))

    def counts_per_second(self) -> list[int]:
        """Arrivals by the end of each second of the show (what the shape follows)."""
        return [self.arrived(s + 1 - 1e-9) for s in range(math.ceil(self.duration))]


def assign(plans: Sequence[ViewerPlan], workers: int) -> list[list[ViewerPlan]]:
    """Each worker slot's plans, in arrival order (the driver's ``plans[k::n]`` split)."""
    ordered = sorted(plans, key=lambda p: (p.arrive, p.index))
    return [ordered[k::workers] for k in range(workers)]


def parse_address(value: str, flag: str) -> tuple[str, int]:
    """``HOST:PORT`` → (host, port); LivecastError naming the flag otherwise."""
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise LivecastError(f"{flag} {value!r} is not HOST:PORT")
    return host.strip("[]"), int(port)


# ---------------------------------------------------------------- messages
def access_to_wire(
    access: ViewerAccess | None, plans: Sequence[ViewerPlan], now: float
) -> dict[str, Any]:
    """``session_url`` and ``tokens`` ([index, token] per planned viewer) for the master's
    config: the tokens are signed here, where the key ring is — the master and the workers
    only hand them on (the ring never crosses the network). Nothing without access checks."""
    if access is None:
        return {}
    tokens = [[p.index, access.token(p.index, session_id(p.index, p.seed), now)] for p in plans]
    return {"session_url": access.session_url, "tokens": tokens}


def plan_to_wire(plan: ViewerPlan) -> list[Any]:
    return [plan.index, plan.arrive, plan.leave, plan.low_latency, plan.downlink_bps, plan.seed,
            plan.seek_back]  # fmt: skip


def plan_from_wire(row: Sequence[Any]) -> ViewerPlan:
    index, arrive, leave, low_latency, downlink, seed, seek_back = row
    return ViewerPlan(
        index=int(index),
        arrive=float(arrive),
        leave=None if leave is None else float(leave),
        low_latency=bool(low_latency),
        downlink_bps=float(downlink),
        seed=int(seed),
        seek_back=None if seek_back is None else float(seek_back),
    )


@dataclass(frozen=True, slots=True)
class Hello:
    """Worker → master after Locust connected it: who it is and what it runs."""

    client_id: str
    version: str  # livecast.__version__
    scenario_sha256: str = ""  # of the worker's --scenario file, if it was given one

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Hello:
        sha = data.get("scenario_sha256") or ""
        return cls(str(data["client_id"]), str(data["version"]), str(sha))


def refusal(hello: Hello, version: str, scenario_sha256: str) -> str | None:
    """Why the master refuses this worker, or None (accepted)."""
    if hello.version != version:
        return (
            f"livecast {hello.version} on the worker, {version} on the master: "
            "every machine of a rehearsal runs the same livecast version"
        )
    if hello.scenario_sha256 and hello.scenario_sha256 != scenario_sha256:
        return (
            f"the worker's scenario file (sha256 {hello.scenario_sha256[:12]}…) is not the "
            f"master's (sha256 {scenario_sha256[:12]}…)"
        )
    return None


@dataclass(frozen=True, slots=True)
class Assignment:
    """Master → an accepted worker at the start: its viewers and the run's clock."""

    slot: int
    workers: int
    show_start: float  # wall clock of t = 0 (NTP-synchronised machines)
    duration: float
    entry_urls: tuple[str, ...]
    retry_jitter: bool
    held_limit: float | None
    plans: tuple[ViewerPlan, ...]
    session_url: str | None = None  # the stack limits streams: the viewers keep leases
    tokens: tuple[str, ...] = ()  # the plans' playback tokens, in order (none: no checks)

    def to_dict(self) -> dict[str, Any]:
        data = {k: getattr(self, k) for k in self.__slots__ if k != "plans"}
        data["entry_urls"] = list(self.entry_urls)
        data["plans"] = [plan_to_wire(p) for p in self.plans]
        data["tokens"] = list(self.tokens)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Assignment:
        held = data.get("held_limit")
        return cls(
            slot=int(data["slot"]),
            workers=int(data["workers"]),
            show_start=float(data["show_start"]),
            duration=float(data["duration"]),
            entry_urls=tuple(str(u) for u in data["entry_urls"]),
            retry_jitter=bool(data["retry_jitter"]),
            held_limit=None if held is None else float(held),
            plans=tuple(plan_from_wire(row) for row in data["plans"]),
            session_url=None if data.get("session_url") is None else str(data["session_url"]),
            tokens=tuple(str(token) for token in data.get("tokens", ())),
        )


@dataclass(frozen=True, slots=True)
class WorkerLoss:
    """A worker that stopped answering (or quit) mid-run, and the viewers it took with it."""

    worker: str  # Locust client id (hostname_uuid)
    slot: int
    t: float  # seconds from show start when the master noticed
    reason: str  # "missing heartbeats" | "quit" | "no final report"
    viewers_playing: int  # at its last progress report
    viewers_not_arrived: int  # its planned viewers still to arrive: never played

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        return (
            f"worker {self.slot} ({self.worker}) lost at t={self.t:.0f}s ({self.reason}): "
            f"{self.viewers_playing} viewers playing, {self.viewers_not_arrived} planned "
            "viewers not played; the run continues with the others"
        )


def loss_of(
    worker: str, slot: int, t: float, reason: str, playing: int, plans: Sequence[ViewerPlan]
) -> WorkerLoss:
    not_arrived = sum(1 for p in plans if p.arrive > t)
    return WorkerLoss(worker, slot, t, reason, playing, not_arrived)
