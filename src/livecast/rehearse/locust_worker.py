"""A Locust worker of a distributed rehearsal — ``livecast rehearse-worker`` (gevent, its own
process: ``livecast`` re-executes ``python -m livecast.rehearse.locust_worker`` so that gevent
patches the standard library before anything else is imported).

    livecast rehearse-worker --master HOST:PORT [--scenario FILE] [--connect-timeout S]

It connects to the master (``livecast rehearse --engine locust --master-bind HOST:PORT``), says
which livecast version it runs and, with ``--scenario``, that file's sha256; a master that refuses
it (another version, another scenario, enough workers already) says why, and the worker exits 2
with ``refused by the master: …``. An accepted worker receives its share of the planned viewers
and the show start, plays them (:mod:`~livecast.rehearse.locust_user`, plan mode), and exits 0
when the master ends the run. Nothing listening at HOST:PORT within ``--connect-timeout`` seconds
is exit 2 too.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gevent  # type: ignore[import-untyped]
import gevent.event  # type: ignore[import-untyped]
import locust
from locust.env import Environment
from locust.rpc import Message
from locust.runners import WorkerRunner

import livecast
from livecast import accel

# a worker process: the compiled viewer core (livecast.accel), before the viewers' modules
if __name__ == "__main__":
    accel.enable()

from livecast.errors import LivecastError
from livecast.rehearse import locust_user
from livecast.rehearse.locust_master import ACCEPTED, GO, HELLO, LEAD, REFUSED
from livecast.rehearse.locust_shape import Assignment, Hello, parse_address

EXIT_COULD_NOT_RUN = 2
DEFAULT_CONNECT_TIMEOUT = 30.0
CLOCK_TOLERANCE = 0.5  # seconds of apparent clock difference with the master before a warning


class MasterUnreachable(Exception):
    """No acknowledgement from the master in time (gevent.Timeout's exception)."""


@dataclass
class Handshake:
    """What the master said to this worker."""

    decided: Any = field(default_factory=gevent.event.Event)
    reason: str | None = None  # refused: why
    slot: int | None = None  # accepted: its place
    assignment: Assignment | None = None


def scenario_sha256(path: str) -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError as exc:
        raise LivecastError(f"cannot read the scenario {path}: {exc.strerror or exc}") from exc


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="livecast rehearse-worker",
        description="a Locust worker of a distributed rehearsal (docs/rehearsal.md)",
    )
    parser.add_argument("--master", required=True, help="HOST:PORT the master listens on")
    parser.add_argument("--scenario", default=None, help="the scenario file: the master checks it")
    parser.add_argument(
        "--connect-timeout",
        type=float,
        default=DEFAULT_CONNECT_TIMEOUT,
        help=f"seconds to reach the master (default {DEFAULT_CONNECT_TIMEOUT:g})",
    )
    return parser


def connect(environment: Environment, host: str, port: int, timeout: float) -> WorkerRunner:
    try:
        with gevent.Timeout(timeout, MasterUnreachable):
            return environment.create_worker_runner(host, port)
    except MasterUnreachable as exc:
        raise LivecastError(
            f"cannot reach the master at {host}:{port} within {timeout:g} s (is `livecast "
            f"rehearse --engine locust --master-bind {host}:{port}` running, its port open?)"
        ) from exc
    except Exception as exc:  # ZeroMQ: an address it cannot use
        raise LivecastError(f"cannot connect to the master at {host}:{port}: {exc}") from exc


def warn_of_skew(lead: float) -> None:
    """The master sets the show start :data:`LEAD` seconds after it sends it: far from that on
    this clock (beyond network delay), the clocks differ and viewers arrive off their plan."""
    skew = LEAD - lead
    if abs(skew) > CLOCK_TOLERANCE:
        print(
            f"warning: this clock seems {abs(skew):.1f} s {'ahead of' if skew > 0 else 'behind'} "
            "the master's: synchronise the machines with NTP (viewers arrive on wall-clock time)",
            file=sys.stderr, flush=True,
        )  # fmt: skip


def handshake(environment: Environment, runner: WorkerRunner, sha: str, timeout: float) -> int:
    """Hello → accepted or refused; then play until the master ends the run."""
    said = Handshake()

    def on_accepted(msg: Message, **_: Any) -> None:
        said.slot = int(msg.data["slot"])
        said.decided.set()

    def on_refused(msg: Message, **_: Any) -> None:
        said.reason = str(msg.data["reason"])
        said.decided.set()

    def on_go(msg: Message, **_: Any) -> None:
        said.assignment = Assignment.from_dict(msg.data)
        locust_user.start_plans(environment, said.assignment)
        print(
            f"worker {said.assignment.slot}: {len(said.assignment.plans)} viewers to play",
            file=sys.stderr, flush=True,
        )  # fmt: skip
        warn_of_skew(said.assignment.show_start - time.time())

    runner.register_message(ACCEPTED, on_accepted)
    runner.register_message(REFUSED, on_refused)
    runner.register_message(GO, on_go)
    hello = Hello(runner.client_id, livecast.__version__, sha)
    runner.send_message(HELLO, hello.to_dict())
    if not said.decided.wait(timeout):
        raise LivecastError(f"the master did not answer the handshake within {timeout:g} s")
    if said.reason is not None:
        runner.quit()
        raise LivecastError(f"refused by the master: {said.reason}")
    print(f"accepted by the master as worker {said.slot}", file=sys.stderr, flush=True)
    runner.greenlet.join()  # until the master quits this worker (or 60 s without its heartbeat)
    if said.assignment is None:
        raise LivecastError("the master ended before the rehearsal started")
    return 0


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    try:
        host, port = parse_address(args.master, "--master")
        if args.connect_timeout <= 0:
            raise LivecastError(f"--connect-timeout {args.connect_timeout:g} must be positive")
        sha = scenario_sha256(args.scenario) if args.scenario else ""
        environment = Environment(user_classes=[locust_user.LivecastViewer], events=locust.events)
        runner = connect(environment, host, port, args.connect_timeout)
        hooks: Any = environment.events
        hooks.init.fire(environment=environment, runner=runner, web_ui=None)
        return handshake(environment, runner, sha, args.connect_timeout)
    except LivecastError as exc:
        print(f"livecast rehearse-worker: {exc}", file=sys.stderr, flush=True)
        return EXIT_COULD_NOT_RUN


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # no wait on ZeroMQ's lingering sockets
