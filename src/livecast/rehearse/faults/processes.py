"""stop_process / start_process faults: which commands a timeline step implies (pure), the
:class:`ProcessControl` interface, an implementation over callables or signals registered by name,
and :class:`FaultDriver`, which walks the timeline and issues the commands.

``pause`` stops a process with SIGSTOP and continues it with SIGCONT (the process keeps its
sockets: clients see a stall, not a refusal); ``kill`` terminates it (SIGTERM) and starting it
again calls the ``restart`` callable registered for it. The fault proxies read the same
timeline themselves; the driver only acts on processes and keeps the log of what happened.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import os
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final, Protocol

from livecast.errors import ConfigError, LivecastError
from livecast.scenario.timeline import (
    PROCESS_KINDS,
    StopProcess,
    Timeline,
    Transitions,
)

log = logging.getLogger(__name__)

Action = Callable[[], object]  # may return an awaitable, which is then scheduled
TICK: Final = 0.05


class ProcessControl(Protocol):
    """What the rehearsal can do to a named process of the stack."""

    def stop(self, name: str, mode: str = "pause") -> None: ...

    def start(self, name: str) -> None: ...


@dataclass(frozen=True)
class ProcessCommand:
    """One command implied by the timeline: ``stop``/``start`` ``name`` at ``at``."""

    at: float
    verb: str  # "stop" or "start"
    name: str
    mode: str = "pause"
    fault: int = -1  # index in the scenario's faults array


def process_commands(transitions: Transitions) -> list[ProcessCommand]:
    """The process commands of one timeline step, in time order (stop faults that end start
    their process again)."""
    commands = []
    for fault in transitions.started:
        if fault.kind == "stop_process" and isinstance(fault.effect, StopProcess):
            mode = fault.effect.mode
            commands.append(ProcessCommand(fault.at, "stop", fault.target, mode, fault.index))
        elif fault.kind == "start_process":
            commands.append(ProcessCommand(fault.at, "start", fault.target, fault=fault.index))
    for fault in transitions.ended:
        if fault.kind == "stop_process":
            commands.append(ProcessCommand(fault.end, "start", fault.target, fault=fault.index))
    return sorted(commands, key=lambda command: (command.at, command.fault))


def check_targets(timeline: Timeline, processes: Iterable[str], key: str = "faults") -> None:
    """Refuse a process fault naming a process the stack does not have."""
    known = frozenset(processes)
    for fault in timeline.faults:
        if fault.kind in PROCESS_KINDS and fault.target not in known:
            names = ", ".join(sorted(known)) or "none"
            raise ConfigError(
                f"{key}[{fault.index}].target", f"no process {fault.target!r} (known: {names})"
            )


@dataclass(frozen=True)
class _Handle:
    pause: Action | None
    resume: Action | None
    terminate: Action | None
    restart: Action | None


class Processes:
    """A :class:`ProcessControl` over callables (or a pid, for signals) registered by name."""

    def __init__(self) -> None:
        self._handles: dict[str, _Handle] = {}
        self.state: dict[str, str] = {}  # name → "running" | "paused" | "killed"
        self.history: list[tuple[str, str]] = []  # (name, what was done)
        self.pending: set[asyncio.Future[object]] = set()  # restarts still running

    def names(self) -> list[str]:
        return sorted(self._handles)

    def register(
        self,
        name: str,
        *,
        pause: Action | None = None,
        resume: Action | None = None,
        terminate: Action | None = None,
        restart: Action | None = None,
    ) -> None:
        self._handles[name] = _Handle(pause, resume, terminate, restart)
        self.state[name] = "running"

    def register_pid(
        self,
        name: str,
        pid: int | Callable[[], int | None],
        restart: Action | None = None,
        group: bool = False,
    ) -> None:
        """Signals to a process id (or to whatever pid the callable returns at the time) — with
        ``group``, to the process group it leads (nginx: the master and its workers)."""

        def send(signum: signal.Signals) -> Action:
            def action() -> None:
                target = pid() if callable(pid) else pid
                if target is None:
                    raise LivecastError(f"process {name!r} is not running")
                (os.killpg if group else os.kill)(target, signum)

            return action

        self.register(
            name,
            pause=send(signal.SIGSTOP),
            resume=send(signal.SIGCONT),
            terminate=send(signal.SIGTERM),
            restart=restart,
        )

    def stop(self, name: str, mode: str = "pause") -> None:
        handle = self._handle(name)
        if self.state[name] != "running":
            return
        action = handle.pause if mode == "pause" else handle.terminate
        self._run(name, f"{mode}", action)
        self.state[name] = "paused" if mode == "pause" else "killed"

    def start(self, name: str) -> None:
        handle = self._handle(name)
        state = self.state[name]
        if state == "paused":
            self._run(name, "resume", handle.resume)
        elif state == "killed":
            self._run(name, "restart", handle.restart)
        self.state[name] = "running"

    def restore(self) -> None:
        """Start every process a fault left stopped (call before tearing the stack down)."""
        for name, state in list(self.state.items()):
            if state != "running":
                self.start(name)

    def _handle(self, name: str) -> _Handle:
        handle = self._handles.get(name)
        if handle is None:
            raise LivecastError(f"no process {name!r} registered for faults")
        return handle

    def _run(self, name: str, what: str, action: Action | None) -> None:
        if action is None:
            raise LivecastError(f"process {name!r} cannot {what}")
        self.history.append((name, what))
        result = action()
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            self.pending.add(task)
            task.add_done_callback(self.pending.discard)


@dataclass(frozen=True)
class FaultEvent:
    """A line of the fault log: at rehearsal time ``at``, ``label`` ``what`` (started/ended/…)."""

    at: float
    label: str
    what: str


class FaultDriver:
    """Walks a timeline on the clock: logs fault starts/ends and stops/starts processes."""

    def __init__(
        self,
        timeline: Timeline,
        control: ProcessControl | None = None,
        *,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.timeline = timeline
        self.control = control
        self.events: list[FaultEvent] = []
        self._clock = clock
        self._origin = time.monotonic()
        self._prev = -math.inf
        self._timer: asyncio.TimerHandle | None = None

    def now(self) -> float:
        if self._clock is not None:
            return self._clock()
        return time.monotonic() - self._origin

    def tick(self) -> None:
        """Apply everything that changed since the previous tick."""
        now = self.now()
        step = self.timeline.transitions(self._prev, now)
        self._prev = now
        if not step:
            return
        for fault in step.ended:
            self.events.append(FaultEvent(fault.end, fault.label, "ended"))
        for fault in step.started:
            self.events.append(FaultEvent(fault.at, fault.label, "started"))
        self.events.sort(key=lambda event: event.at)
        for command in process_commands(step):
            self._command(command)

    def _command(self, command: ProcessCommand) -> None:
        if self.control is None:
            return
        label = f"{command.verb} {command.name}"
        try:
            if command.verb == "stop":
                self.control.stop(command.name, command.mode)
            else:
                self.control.start(command.name)
        except (LivecastError, OSError) as error:
            log.warning("fault %s failed: %s", label, error)
            self.events.append(
                FaultEvent(command.at, f"faults[{command.fault}]", f"failed: {error}")
            )

    def start(self) -> None:
        """Tick every :data:`TICK` seconds on the running loop (rehearsal time starts now)."""
        self._origin = time.monotonic()
        self._schedule()

    def _schedule(self) -> None:
        self.tick()
        self._timer = asyncio.get_running_loop().call_later(TICK, self._schedule)

    def stop(self) -> None:
        """Stop ticking; processes a fault left stopped are started again."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        restore = getattr(self.control, "restore", None)
        if callable(restore):
            restore()
