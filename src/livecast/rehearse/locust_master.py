"""The Locust master of a distributed rehearsal — a process of its own (gevent), started by
``livecast rehearse --engine locust`` (asyncio):

    python -m livecast.rehearse.locust_master MASTER.json

``MASTER.json`` (:class:`MasterConfig`) holds where to listen, how many workers to wait for, the
livecast version and scenario hash every worker must match, the planned viewers and the run's
entry points. The master speaks on stdout, one JSON object a line (``event`` names it):

  listening {port}            the workers' port is open
  accepted {worker, slot}     a worker passed the handshake
  refused {worker, reason}    a worker did not (other version, other scenario, too many)
  ready {show_start}          every worker is in; the show starts at this wall-clock time
  progress {t, active, …}     one closed second, all workers merged
  lost {worker, slot, t, …}   a worker stopped answering (or quit) mid-run; the run goes on
  done {results}              the merged RunStats and the losses are in the results file
  error {message}             the run could not happen (no workers in time)

Handshake: Locust acknowledges a worker's ``client_ready`` but registers it (gives it users) only
once its :class:`~livecast.rehearse.locust_shape.Hello` is accepted; a refused worker is told why
and never counted. At the start each accepted worker gets its
:class:`~livecast.rehearse.locust_shape.Assignment`, then the load shape follows the plan's
arrivals (:class:`~livecast.rehearse.locust_shape.ShapeSchedule`).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gevent  # type: ignore[import-untyped]
import gevent.event  # type: ignore[import-untyped]
import locust
from locust.env import Environment
from locust.exception import RPCError
from locust.rpc import Message
from locust.runners import STATE_CLEANUP, STATE_STOPPED, STATE_STOPPING, MasterRunner
from locust.shape import LoadTestShape

from livecast.rehearse import locust_user
from livecast.rehearse.locust_shape import (
    Assignment,
    Hello,
    ShapeSchedule,
    WorkerLoss,
    assign,
    loss_of,
    plan_from_wire,
    plan_to_wire,
    refusal,
)
from livecast.rehearse.progress import Progress, merge_progress
from livecast.scenario.audience import ViewerPlan

HELLO = "livecast_hello"  # worker → master
ACCEPTED = "livecast_accepted"  # master → worker: {slot}
REFUSED = "livecast_refused"  # master → worker: {reason}
GO = "livecast_go"  # master → worker: its Assignment
LEAD = 2.0  # seconds from "every worker is in" to the show start (the first users spawn)
PROGRESS_DELAY = 0.6  # seconds after a second closes before it is printed (reports in flight)
END_GRACE = 90.0  # seconds past the show's end before the master gives up waiting for workers
STOPPED = (STATE_STOPPING, STATE_STOPPED, STATE_CLEANUP)


@dataclass(frozen=True)
class MasterConfig:
    bind_host: str
    bind_port: int  # 0: any free port (local workers)
    workers: int  # accepted workers to wait for
    connect_timeout: float  # seconds to wait for them
    version: str
    scenario_sha256: str
    duration: float
    entry_urls: tuple[str, ...]
    retry_jitter: bool
    held_limit: float | None
    plans: tuple[ViewerPlan, ...]
    results: str  # the file the merged RunStats and losses go to
    session_url: str | None = None  # access checks on the stack (locust_shape.access_to_wire)
    tokens: Mapping[int, str] = field(default_factory=dict)  # plan index → playback token

    def to_dict(self) -> dict[str, Any]:
        data = {k: getattr(self, k) for k in self.__dataclass_fields__}
        data["entry_urls"] = list(self.entry_urls)
        data["plans"] = [plan_to_wire(p) for p in self.plans]
        data["tokens"] = [[index, token] for index, token in self.tokens.items()]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MasterConfig:
        fields = dict(data)
        fields["entry_urls"] = tuple(fields["entry_urls"])
        fields["plans"] = tuple(plan_from_wire(row) for row in fields["plans"])
        fields["tokens"] = {int(index): str(token) for index, token in data.get("tokens", ())}
        return cls(**fields)


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


class PlanShape(LoadTestShape):
    """The scenario's arrivals as Locust's load shape, from the show start on."""

    def __init__(self, schedule: ShapeSchedule) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.schedule = schedule
        self.show_start = float("inf")  # set when every worker is in
        self.last: tuple[int, float] | None = None

    def tick(self) -> tuple[int, float] | None:
        self.last = self.schedule.tick(time.time() - self.show_start, self.last)
        return self.last


class LivecastMaster(MasterRunner):
    """Locust's master, with the livecast handshake in front of worker registration."""

    def __init__(self, environment: Environment, config: MasterConfig) -> None:
        super().__init__(environment, config.bind_host, config.bind_port)
        self.config = config
        self.accepted: dict[str, int] = {}  # client id → slot
        self.pending: dict[str, Message] = {}  # connected, hello not yet judged
        self.assignments: list[Assignment] = []
        self.show_start = float("inf")
        self.seconds: dict[int, dict[str, Progress]] = {}
        self.playing: dict[str, int] = {}  # client id → viewers at its last report
        self.losses: dict[str, WorkerLoss] = {}
        self.register_message(HELLO, self._on_hello)
        self.register_message(locust_user.PROGRESS_MESSAGE, self._on_progress)

    def handle_message(self, client_id: str, msg: Message) -> None:
        if msg.type == "client_ready" and client_id not in self.accepted:
            self.pending[client_id] = msg  # acknowledged, registered once accepted
            self.send_message("ack", {"index": self.get_worker_index(client_id)}, client_id)  # type: ignore[no-untyped-call]
            return
        super().handle_message(client_id, msg)

    def _on_hello(self, environment: Environment, msg: Message, **_: Any) -> None:
        hello = Hello.from_dict(msg.data)
        worker = hello.client_id
        reason = refusal(hello, self.config.version, self.config.scenario_sha256)
        if reason is None and worker not in self.accepted and self.assignments:
            reason = "the rehearsal has already started"
        elif reason is None and len(self.accepted) >= self.config.workers:
            reason = f"the rehearsal has its {self.config.workers} worker(s) already"
        ready = self.pending.pop(worker, None)
        if reason is not None:
            self.send_message(REFUSED, {"reason": reason}, worker)
            emit("refused", worker=worker, reason=reason)
            return
        slot = self.accepted.setdefault(worker, len(self.accepted))
        self.send_message(ACCEPTED, {"slot": slot}, worker)
        MasterRunner.handle_message(
            self,
            worker,
            ready or Message("client_ready", locust.__version__, worker),  # type: ignore[no-untyped-call]
        )
        emit("accepted", worker=worker, slot=slot)

    def _on_progress(self, environment: Environment, msg: Message, **_: Any) -> None:
        data = dict(msg.data)
        worker = str(data.pop("client_id", msg.node_id))
        if worker not in self.accepted:
            return
        report = Progress.from_dict(data)
        self.seconds.setdefault(report.t, {})[worker] = report
        self.playing[worker] = report.active

    # ------------------------------------------------------------ the run
    def go(self, shape: PlanShape) -> None:
        """Every worker is in: assignments out, then the shape starts (users spawn ahead)."""
        self.show_start = shape.show_start = time.time() + LEAD
        config = self.config
        shares = assign(config.plans, config.workers)
        for worker, slot in sorted(self.accepted.items(), key=lambda item: item[1]):
            assignment = Assignment(
                slot, config.workers, self.show_start, config.duration, config.entry_urls,
                config.retry_jitter, config.held_limit, tuple(shares[slot]), config.session_url,
                tuple(config.tokens.get(plan.index, "") for plan in shares[slot]) if config.tokens
                else (),
            )  # fmt: skip
            self.assignments.append(assignment)
            self.send_message(GO, assignment.to_dict(), worker)
        emit("ready", show_start=self.show_start, workers=len(self.accepted))
        self.start_shape()

    def watch(self) -> None:
        """Once a second: the merged progress line of the second that closed, and any worker
        that went missing or quit."""
        second = 0
        while second < self.config.duration:
            gevent.sleep(max(0.0, self.show_start + second + 1 + PROGRESS_DELAY - time.time()))
            parts = self.seconds.pop(second, {})
            emit("progress", **merge_progress(second, list(parts.values())).to_dict())
            if self.state not in STOPPED:
                self._look_for_losses()
            second += 1

    def _look_for_losses(self) -> None:
        for worker in self.accepted:
            node = self.clients.get(worker)
            if node is None:
                self._lose(worker, "quit")
            elif node.state == "missing":
                self._lose(worker, "missing heartbeats")

    def last_losses(self, no_final: set[str]) -> None:
        """At the end: workers gone missing since the last look, or without a final report
        (dead too recently for Locust to have noticed)."""
        for worker in self.accepted:
            node = self.clients.get(worker)
            if node is not None and node.state == "missing":
                self._lose(worker, "missing heartbeats")
            elif worker in no_final:
                self._lose(worker, "no final report")

    def _lose(self, worker: str, reason: str) -> None:
        if worker in self.losses:
            return
        slot = self.accepted[worker]
        t = time.time() - self.show_start
        plans = self.assignments[slot].plans if slot < len(self.assignments) else ()
        loss = loss_of(worker, slot, t, reason, self.playing.get(worker, 0), plans)
        self.losses[worker] = loss
        emit("lost", **loss.to_dict())


def _wait_for_workers(runner: LivecastMaster) -> bool:
    deadline = time.monotonic() + runner.config.connect_timeout
    while len(runner.accepted) < runner.config.workers:
        if time.monotonic() > deadline:
            return False
        gevent.sleep(0.1)
    return True


def run(config: MasterConfig) -> int:
    os.environ.setdefault("LOCUST_WAIT_FOR_WORKERS_REPORT_AFTER_RAMP_UP", "0.2")
    shape = PlanShape(ShapeSchedule.of(config.plans, config.duration, config.workers))
    environment = Environment(
        user_classes=[locust_user.LivecastViewer], events=locust.events, shape_class=shape
    )
    try:
        runner = LivecastMaster(environment, config)
    except (RPCError, SystemExit) as exc:  # Locust exits on "address in use"
        where = f"{config.bind_host}:{config.bind_port}"
        emit("error", message=f"the Locust master cannot listen on {where}: {exc or 'busy'}")
        return 2
    environment.runner = shape.runner = runner
    hooks: Any = environment.events
    hooks.init.fire(environment=environment, runner=runner, web_ui=None)
    emit("listening", port=runner.server.port)
    if not _wait_for_workers(runner):
        emit(
            "error",
            message=f"{config.workers} worker(s) expected, {len(runner.accepted)} accepted within "
            f"{config.connect_timeout:g} s (livecast rehearse-worker --master HOST:PORT)",
        )
        runner.quit()
        return 2
    ended = gevent.event.Event()
    hooks.test_stop.add_listener(lambda **_: ended.set())
    runner.go(shape)
    watcher = gevent.spawn(runner.watch)
    ended.wait(max(0.0, runner.show_start + config.duration + END_GRACE - time.time()))
    watcher.join(timeout=PROGRESS_DELAY + 1.0)
    runner.last_losses(locust_user.RESULTS.awaiting)
    document = {
        "stats": locust_user.RESULTS.total.to_dict(),
        "losses": [loss.to_dict() for loss in runner.losses.values()],
        "ended": ended.is_set(),
    }
    Path(config.results).write_text(json.dumps(document))
    emit("done", results=config.results)
    runner.quit()
    return 0


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m livecast.rehearse.locust_master MASTER.json", file=sys.stderr)
        return 2
    config = MasterConfig.from_dict(json.loads(Path(argv[0]).read_text()))
    return run(config)


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # no wait on ZeroMQ's lingering sockets
