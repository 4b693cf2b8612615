"""The targets and the time-boxed campaign: Hypothesis drives each for its share of the budget.

Each target gets ``budget / len(targets)`` seconds. Within it, the runner calls a Hypothesis
``@given`` test in batches (``max_examples`` sized from the inputs per second seen so far) until
the share is used up; the test runs one input under the :class:`~livecast.fuzzing.core.ArcTracer`
and classifies it (:meth:`Target.classify`). A crash makes Hypothesis shrink the input; the
minimal input (the last one that crashed) and its traceback are kept, one per distinct crash site
(exception type and innermost livecast frame), and written to ``out`` when given.

Settings: ``deadline=None`` (a slow input is not a failure), every health check suppressed (the
strategies are large by design), ``database`` a directory under ``out`` (crashes found once are
replayed first next time) or none, ``derandomize=False``.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.database import DirectoryBasedExampleDatabase, ExampleDatabase

from livecast.fuzzing import cmcd, directives, http, media, playlists, tokens
from livecast.fuzzing.core import ArcTracer, PropertyViolation, Target


def all_targets() -> list[Target]:
    """Every target, in campaign order (the HTTP target last: it starts a server)."""
    return [
        *media.TARGETS,
        *playlists.TARGETS,
        *directives.TARGETS,
        *cmcd.TARGETS,
        *tokens.TARGETS,
        *http.TARGETS,
    ]


def select(names: Sequence[str]) -> list[Target]:
    """The targets named (exactly, or by a family prefix such as ``playlists``), in campaign
    order; every target when ``names`` is empty. ValueError names an unknown one."""
    targets = all_targets()
    if not names:
        return targets
    chosen: list[Target] = []
    for name in names:
        matches = [t for t in targets if t.name == name or t.name.startswith(name + ".")]
        if not matches:
            known = ", ".join(t.name for t in targets)
            raise ValueError(f"no fuzz target {name!r} (known: {known})")
        chosen.extend(t for t in matches if t not in chosen)
    return [t for t in targets if t in chosen]


PROGRESS_EVERY = 5.0  # seconds between progress lines
MIN_BATCH, MAX_BATCH = 20, 2000


@dataclass
class Crash:
    """One distinct crash: where, the minimal input found, and its traceback."""

    target: str
    site: str  # "ExceptionType at file:line"
    input: Any
    traceback: str


@dataclass
class TargetResult:
    """Figures of one target's run."""

    name: str
    inputs: int = 0
    refused: int = 0
    paths: int = 0
    known_crashes: int = 0  # inputs that crashed at an already recorded site
    seconds: float = 0.0
    crashes: list[Crash] = field(default_factory=list)


def crash_site(error: BaseException) -> str:
    """``Type at file:line`` of the innermost livecast frame (else the innermost frame); for a
    :class:`PropertyViolation`, the line of the fuzz target that checked the property."""
    frames = traceback.extract_tb(error.__traceback__)
    if isinstance(error, PropertyViolation) and len(frames) >= 2:
        frame = frames[-2]  # the caller of ``violation``
        return f"{type(error).__name__} at {Path(frame.filename).name}:{frame.lineno}"
    inner = [f for f in frames if "/livecast/" in f.filename and "/fuzzing/" not in f.filename]
    chosen = inner or list(frames)
    where = f"{Path(chosen[-1].filename).name}:{chosen[-1].lineno}" if chosen else "?"
    return f"{type(error).__name__} at {where}"


def run_target(
    target: Target,
    seconds: float,
    *,
    tracer: ArcTracer,
    database: ExampleDatabase | None = None,
    clock: Callable[[], float] = time.monotonic,
    progress: Callable[[str], None] | None = None,
) -> TargetResult:
    """Drive ``target`` for about ``seconds``; its figures and distinct crashes."""
    result = TargetResult(target.name)
    tracer.reset()
    start = clock()
    stop_at = start + seconds
    last_report = start
    sites: dict[str, Crash] = {}
    latest: list[Crash] = []  # the last crash seen in a batch: after shrinking, the minimal one

    with target.session(tracer) as run_one:

        def one(value: Any) -> None:
            nonlocal last_report
            now = clock()
            if now >= stop_at:
                return  # out of time: let the batch finish without running anything
            result.inputs += 1
            try:
                with tracer.tracing():
                    run_one(value)
            except BaseException as error:  # every escape is classified
                if isinstance(error, KeyboardInterrupt | SystemExit):
                    raise
                if target.classify(error) == "refused":
                    result.refused += 1
                    return
                site = crash_site(error)
                if site in sites:  # known already: count it, keep exploring elsewhere
                    result.known_crashes += 1
                    return
                latest[:] = [Crash(target.name, site, value, traceback.format_exc())]
                raise
            finally:
                if progress is not None and now - last_report >= PROGRESS_EVERY:
                    last_report = now
                    progress(
                        f"  {target.name}: {now - start:5.1f} s, {result.inputs} inputs, "
                        f"{tracer.count} paths, {len(sites)} crashes"
                    )

        one._hypothesis_internal_add_digest = target.name.encode()  # type: ignore[attr-defined]
        per_second = 200.0
        while clock() < stop_at:
            batch_start, batch_inputs = clock(), result.inputs
            batch = int(min(MAX_BATCH, max(MIN_BATCH, per_second * (stop_at - batch_start) / 2)))
            test = settings(
                max_examples=batch,
                deadline=None,
                database=database,
                derandomize=False,
                suppress_health_check=list(HealthCheck),
                report_multiple_bugs=False,
                phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink),
                print_blob=False,
            )(given(target.strategy)(one))
            latest.clear()
            try:
                test()
            except Exception:  # the crash was recorded by ``one``
                if latest:
                    crash = latest[0]
                    sites.setdefault(crash.site, crash)
            elapsed = clock() - batch_start
            ran = result.inputs - batch_inputs
            if ran and elapsed > 0:
                per_second = ran / elapsed
    result.seconds = clock() - start
    result.paths = tracer.count
    result.crashes = list(sites.values())
    return result


def open_database(out: Path | None) -> ExampleDatabase | None:
    """The example database under ``out`` (``out/hypothesis``), or none."""
    return DirectoryBasedExampleDatabase(str(out / "hypothesis")) if out is not None else None


def write_crashes(crashes: Sequence[Crash], out: Path) -> list[Path]:
    """Each crash's minimal input (``repr``, and the raw bytes when it is bytes) and traceback."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for number, crash in enumerate(crashes, 1):
        stem = f"crash-{crash.target}-{number}"
        (out / f"{stem}.input.txt").write_text(repr(crash.input) + "\n")
        if isinstance(crash.input, bytes):
            (out / f"{stem}.input.bin").write_bytes(crash.input)
        (out / f"{stem}.traceback.txt").write_text(f"{crash.site}\n\n{crash.traceback}")
        written.append(out / stem)
    return written


def run_campaign(
    targets: Sequence[Target],
    budget: float,
    *,
    out: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[TargetResult]:
    """Share ``budget`` seconds evenly over ``targets``; every target's figures."""
    tracer = ArcTracer()
    database = open_database(out)
    share = budget / max(1, len(targets))
    results = []
    for target in targets:
        if progress is not None:
            progress(f"{target.name}: {share:.1f} s — {target.description}")
        result = run_target(target, share, tracer=tracer, database=database, progress=progress)
        results.append(result)
        if out is not None and result.crashes:
            write_crashes(result.crashes, out)
    return results


def render_table(results: Sequence[TargetResult]) -> str:
    """The per-target figures and the total, as a plain text table."""
    header = f"{'target':<28} {'inputs':>9} {'refused':>9} {'paths':>7} {'crashes':>7} {'time':>8}"
    lines = [header, "-" * len(header)]
    for r in results:
        lines.append(
            f"{r.name:<28} {r.inputs:>9} {r.refused:>9} {r.paths:>7} {len(r.crashes):>7} "
            f"{r.seconds:>7.1f}s"
        )
    lines.append("-" * len(header))
    lines.append(
        f"{'total':<28} {sum(r.inputs for r in results):>9} "
        f"{sum(r.refused for r in results):>9} {sum(r.paths for r in results):>7} "
        f"{sum(len(r.crashes) for r in results):>7} {sum(r.seconds for r in results):>7.1f}s"
    )
    for r in results:
        for crash in r.crashes:
            lines.append(f"CRASH {r.name}: {crash.site}: {crash.input!r:.200}")
    return "\n".join(lines)
