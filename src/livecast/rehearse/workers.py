"""One driver process per core; their per-second progress and final stats merged in the parent.

Viewer ``i`` of the plan runs in worker ``i % workers``. Each worker ships a :class:`Progress` per
second and, at the end, its :class:`RunStats` as a dict (mergeable histograms), over one
``multiprocessing`` queue. The parent never blocks its event loop on the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import queue
import resource
from collections.abc import Callable
from multiprocessing.context import ForkProcess
from typing import Any

from livecast.edge.nginx import die_with_parent
from livecast.errors import LivecastError
from livecast.rehearse.driver import Driver, DriverConfig
from livecast.rehearse.progress import Progress, merge_progress
from livecast.results.stats import RunStats
from livecast.scenario.audience import ViewerPlan


def raise_open_files_limit() -> int:
    """Allow as many sockets as the hard limit permits (thousands of viewers × 4 connections)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else 1 << 20
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            return target
    return soft


def _worker(index: int, plans: list[ViewerPlan], config: DriverConfig, out: Any) -> None:
    die_with_parent()  # a rehearsal killed mid-run leaves no viewers running
    raise_open_files_limit()
    from livecast.origin.wire import install_uvloop

    install_uvloop()

    def report(progress: Progress) -> None:
        out.put(("progress", index, progress))

    try:
        stats = asyncio.run(Driver(plans, config, RunStats(seed=index), report).run())
        out.put(("done", index, stats.to_dict()))
    except BaseException as exc:  # reported, then the parent decides
        out.put(("failed", index, f"{type(exc).__name__}: {exc}"))


async def run_workers(
    plans: list[ViewerPlan],
    config: DriverConfig,
    workers: int,
    on_progress: Callable[[Progress], None] | None = None,
) -> RunStats:
    """Run the plan over ``workers`` processes (0: one per core); the merged stats."""
    count = workers or os.cpu_count() or 1
    count = max(1, min(count, len(plans)))
    context = multiprocessing.get_context("fork")
    out = context.Queue()
    processes: list[ForkProcess] = [
        context.Process(target=_worker, args=(i, plans[i::count], config, out), daemon=True)
        for i in range(count)
    ]
    for process in processes:
        process.start()
    merged = RunStats()
    pending: dict[int, list[Progress]] = {}
    done: set[int] = set()
    failures: list[str] = []
    try:
        while len(done) < count:
            try:
                kind, index, payload = out.get_nowait()
            except queue.Empty:
                if not any(p.is_alive() for p in processes) and out.empty():
                    failures.append("a worker process died without reporting")
                    break
                await asyncio.sleep(0.05)
                continue
            if kind == "progress":
                pending.setdefault(payload.t, []).append(payload)
                if len(pending[payload.t]) == count - len(done) and on_progress is not None:
                    on_progress(merge_progress(payload.t, pending.pop(payload.t)))
            elif kind == "done":
                merged.merge(RunStats.from_dict(payload))
                done.add(index)
            else:
                failures.append(f"worker {index}: {payload}")
                done.add(index)
    finally:
        for process in processes:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join()
    if failures:
        raise LivecastError("the rehearsal driver failed: " + "; ".join(failures))
    return merged
