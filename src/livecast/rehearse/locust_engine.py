"""``livecast rehearse --engine locust``: the audience on Locust's master/worker runtime — the
asyncio side (gevent and asyncio do not share a process).

The rehearsal keeps the stack, the fault proxies and timeline, the scraping and the verdict; this
engine only replaces the local driver processes. It starts the master
(:mod:`~livecast.rehearse.locust_master`) with the plans, and either ``workers`` local workers
(``python -m livecast.rehearse.locust_worker --master 127.0.0.1:PORT``) or none, waiting for
``workers`` remote ones at ``--master-bind HOST:PORT``. The master picks the show start once every
worker is in; the rehearsal's clock follows it. Its progress lines become the rehearsal's, its
merged RunStats the run's; a worker lost mid-run is printed at once and comes back in
:attr:`LocustSwarm.losses` (the result is then marked partial). Every process started here has a
deadline and is killed at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

import livecast
from livecast.edge.nginx import die_with_parent
from livecast.errors import LivecastError
from livecast.rehearse.driver import DriverConfig
from livecast.rehearse.locust_shape import WorkerLoss, access_to_wire, plan_to_wire
from livecast.rehearse.progress import Progress
from livecast.results.stats import RunStats
from livecast.scenario.audience import ViewerPlan

LOG_DIR = "locust"  # under the rehearsal's --out: the master's and local workers' logs
START_GRACE = 30.0  # seconds beyond --connect-timeout for the master to say ready (imports)
END_GRACE = 120.0  # seconds beyond the show's end for the master to say done
LOCAL_CONNECT_TIMEOUT = 30.0  # a local worker's --connect-timeout
DEFAULT_WAIT = 120.0  # seconds the master waits for its workers by default
LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True, slots=True)
class LocustOptions:
    workers: int  # local workers to start, or (master_bind) remote ones to wait for
    master_bind: tuple[str, int] | None = None  # None: local workers, master on 127.0.0.1
    connect_timeout: float = DEFAULT_WAIT  # seconds the master waits for its workers
    scenario_sha256: str = ""  # of the scenario file (workers given --scenario must match)

    def validate(self) -> LocustOptions:
        if self.workers < 1:
            raise LivecastError(f"--workers {self.workers}: the Locust engine needs at least 1")
        if self.connect_timeout <= 0:
            raise LivecastError(f"--connect-timeout {self.connect_timeout:g} must be positive")
        return self


class LocustSwarm:
    """The master and its local workers for one rehearsal."""

    def __init__(self, options: LocustOptions, out_dir: Path, stream: TextIO) -> None:
        self.options = options.validate()
        self.log_dir = out_dir / LOG_DIR
        self.stream = stream
        self.master: asyncio.subprocess.Process | None = None
        self.workers: list[asyncio.subprocess.Process] = []
        self.losses: list[WorkerLoss] = []
        self.duration = 0.0
        self.show_start = 0.0
        self._tmp = tempfile.TemporaryDirectory(prefix="livecast-locust-")
        self._results = Path(self._tmp.name) / "results.json"

    async def start(self, plans: list[ViewerPlan], config: DriverConfig) -> float:
        """Master up, workers in: the show start (wall clock) the master picked."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.duration = config.duration
        options = self.options
        host, port = options.master_bind or ("127.0.0.1", 0)
        master_config = {
            "bind_host": host, "bind_port": port, "workers": options.workers,
            "connect_timeout": options.connect_timeout, "version": livecast.__version__,
            "scenario_sha256": options.scenario_sha256, "duration": config.duration,
            "entry_urls": list(config.entry_urls), "retry_jitter": config.retry_jitter,
            "held_limit": config.held_limit, "results": str(self._results),
            "plans": [plan_to_wire(p) for p in plans],
            **access_to_wire(config.access, plans, time.time()),
        }  # fmt: skip
        config_path = Path(self._tmp.name) / "master.json"
        config_path.write_text(json.dumps(master_config))
        self.master = await self._spawn(
            "livecast.rehearse.locust_master", [str(config_path)], "master.log"
        )
        listening = await self._expect("listening", START_GRACE)
        bound = int(listening["port"])
        if options.master_bind is None:
            for k in range(options.workers):
                args = ["--master", f"127.0.0.1:{bound}", "--connect-timeout",
                        str(LOCAL_CONNECT_TIMEOUT)]  # fmt: skip
                worker = await self._spawn(
                    "livecast.rehearse.locust_worker", args, f"worker{k}.log"
                )
                self.workers.append(worker)
        else:
            self._warn_loopback(host, config.entry_urls)
            print(
                f"locust master listening on {host}:{bound}: waiting for {options.workers} "
                f"worker(s) (livecast rehearse-worker --master {host}:{bound})",
                file=self.stream, flush=True,
            )  # fmt: skip
        ready = await self._expect("ready", options.connect_timeout + START_GRACE)
        self.show_start = float(ready["show_start"])
        return self.show_start

    async def run(self, on_progress: Callable[[Progress], None]) -> RunStats:
        """Until the master is done: progress and losses as they come; the merged RunStats."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, self.show_start - time.time()) + self.duration + END_GRACE
        while True:
            event = await self._next_event(max(0.0, deadline - loop.time()))
            kind = event.get("event")
            if kind == "progress":
                on_progress(Progress.from_dict(event))
            elif kind == "lost":
                event.pop("event")
                loss = WorkerLoss(**event)
                self.losses.append(loss)
                print(f"LOST: {loss.describe()}", file=self.stream, flush=True)
            elif kind == "done":
                break
        document = json.loads(self._results.read_text())
        if not document.get("ended", True):
            print("locust: the workers did not all stop in time", file=self.stream, flush=True)
        return RunStats.from_dict(document["stats"])

    async def close(self) -> None:
        for process in [*self.workers, self.master]:
            if process is not None and process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.terminate()
        for process in [*self.workers, self.master]:
            if process is None:
                continue
            try:
                await asyncio.wait_for(process.wait(), 5.0)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        self._tmp.cleanup()

    def _warn_loopback(self, host: str, urls: tuple[str, ...]) -> None:
        """Remote workers cannot reach entry points on the master's loopback (a stack the
        rehearsal started serves there)."""
        if host in LOOPBACK or not any(urlsplit(url).hostname in LOOPBACK for url in urls):
            return
        print(
            f"warning: the entry points ({', '.join(urls)}) are on this machine's loopback: "
            "workers on other machines cannot reach them (give the scenario [target] urls)",
            file=self.stream, flush=True,
        )  # fmt: skip

    # ------------------------------------------------------------ the master's lines
    async def _spawn(self, module: str, args: list[str], log: str) -> asyncio.subprocess.Process:
        with open(self.log_dir / log, "wb") as out:  # the child keeps its own descriptor
            return await asyncio.create_subprocess_exec(
                sys.executable, "-m", module, *args,
                stdout=asyncio.subprocess.PIPE if module.endswith("master") else out,
                stderr=out, preexec_fn=die_with_parent,
            )  # fmt: skip

    async def _next_event(self, timeout: float) -> dict[str, Any]:
        """The master's next line (accepted/refused workers printed on the way)."""
        assert self.master is not None and self.master.stdout is not None
        while True:
            try:
                line = await asyncio.wait_for(self.master.stdout.readline(), timeout)
            except TimeoutError as exc:
                raise LivecastError(f"the Locust master said nothing for {timeout:g} s") from exc
            if not line:
                raise LivecastError(f"the Locust master ended: {self._master_log_tail()}")
            try:
                event: dict[str, Any] = json.loads(line)
            except ValueError:
                continue  # not one of its event lines
            kind = event.get("event")
            if kind == "error":
                raise LivecastError(str(event.get("message")))
            if kind == "accepted":
                print(f"worker {event['slot']} accepted: {event['worker']}", file=self.stream)
            elif kind == "refused":
                print(f"worker refused: {event['worker']}: {event['reason']}", file=self.stream)
            else:
                return event

    async def _expect(self, kind: str, timeout: float) -> dict[str, Any]:
        event = await self._next_event(timeout)
        if event.get("event") != kind:
            raise LivecastError(f"the Locust master said {event!r}, expected {kind!r}")
        return event

    def _master_log_tail(self) -> str:
        try:
            text = (self.log_dir / "master.log").read_text(errors="replace")
        except OSError:
            return "no log"
        return text.strip()[-800:] or "no output"
