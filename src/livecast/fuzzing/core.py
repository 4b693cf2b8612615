"""What a fuzz target is, and how the outcome of one input is classified.

A :class:`Target` names a Hypothesis strategy of inputs and a session that yields the function
running one input. Running an input ends one of three ways:

* ``ok`` — the input was accepted and every property held;
* ``refused`` — the input was refused with one of the target's *documented* exception types (the
  :class:`~livecast.errors.LivecastError` subclass its parser promises, e.g. ``MediaError``);
* a *crash* — any other exception, or a :class:`PropertyViolation` raised by the run function
  because a property broke (a round trip that differs, an answer that is not HTTP, a server that
  no longer answers).

Distinct paths (:class:`ArcTracer`) are the line arcs ``(file, from line, to line)`` executed in
livecast's own modules (not in this package), recorded with :func:`sys.settrace`: Python 3.11
has no ``sys.monitoring``, and ``settrace`` is the cheapest hook that sees arcs without a
dependency. It is on only while an input runs (:meth:`ArcTracer.tracing`, so Hypothesis's own
generation is not traced) and in server threads that called
:meth:`ArcTracer.install_in_thread`. The global hook answers ``None`` for any frame outside
livecast, so foreign code costs one dict lookup per call; a livecast frame's local hook records
the arc from its previous line (the entry arc starts at ``-co_firstlineno``, a negative
pseudo-line, as coverage.py does).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from types import CodeType, FrameType
from typing import Any, Literal

from hypothesis import strategies as st

import livecast

Outcome = Literal["ok", "refused"]
RunOne = Callable[[Any], None]  # runs one input; returns (ok) or raises


class PropertyViolation(AssertionError):
    """A property of a target broke for one input (never a documented refusal)."""


def violation(condition: bool, message: str) -> None:
    """Raise :class:`PropertyViolation` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise PropertyViolation(message)


# ---------------------------------------------------------------- distinct paths

_ROOT = str(Path(livecast.__file__).resolve().parent) + "/"
_SKIP = _ROOT + "fuzzing/"

Arc = tuple[str, int, int]
TraceHook = Any  # sys.settrace's hook type is not spelled out by typeshed in a usable way


def _is_livecast(code: CodeType) -> bool:
    filename = code.co_filename
    return filename.startswith(_ROOT) and not filename.startswith(_SKIP)


class ArcTracer:
    """Collects the distinct arcs executed in livecast modules while it is tracing."""

    def __init__(self) -> None:
        self.arcs: set[Arc] = set()
        self._wanted: dict[CodeType, bool] = {}
        self.enabled = False

    def reset(self) -> None:
        """Forget the arcs seen (a new target starts counting from zero)."""
        self.arcs = set()

    @property
    def count(self) -> int:
        return len(self.arcs)

    def _global(self, frame: FrameType, event: str, arg: object) -> TraceHook:
        if not self.enabled:
            return None
        code = frame.f_code
        wanted = self._wanted.get(code)
        if wanted is None:
            wanted = self._wanted[code] = _is_livecast(code)
        if not wanted:
            return None
        arcs = self.arcs
        filename = code.co_filename
        last = -code.co_firstlineno

        def local(frame: FrameType, event: str, arg: object) -> TraceHook:
            nonlocal last
            if event == "line":
                line = frame.f_lineno
                arcs.add((filename, last, line))
                last = line
            elif event == "return":
                arcs.add((filename, last, -code.co_firstlineno))
            return local

        return local

    @contextlib.contextmanager
    def tracing(self) -> Iterator[None]:
        """Trace the calling thread (and threads that called :meth:`install_in_thread`)."""
        previous = sys.gettrace()
        self.enabled = True
        sys.settrace(self._global)
        try:
            yield
        finally:
            sys.settrace(previous)
            self.enabled = False

    def install_in_thread(self) -> None:
        """Call first thing in a server thread: its livecast frames are traced while
        :attr:`enabled` (the flag is read on every call, so the hook can stay installed)."""
        sys.settrace(self._global)


# ---------------------------------------------------------------- targets

Session = Callable[[ArcTracer], AbstractContextManager[RunOne]]


def stateless(run: RunOne) -> Session:
    """The session of a target that needs no setup: it yields ``run`` itself."""

    @contextlib.contextmanager
    def session(tracer: ArcTracer) -> Iterator[RunOne]:
        yield run

    return session


@dataclass(frozen=True)
class Target:
    """One fuzz target: ``strategy`` draws inputs; ``session()`` is a context manager yielding
    the function that runs one input (a server started and stopped around the run, say; its
    threads record arcs in the tracer it is given);
    ``documented`` are the exception types the code under test promises for bad input."""

    name: str
    description: str
    strategy: st.SearchStrategy[Any]
    session: Session
    documented: tuple[type[BaseException], ...] = ()

    def classify(self, error: BaseException) -> Outcome | None:
        """``refused`` for a documented refusal, None for a crash."""
        if isinstance(error, PropertyViolation):
            return None
        return "refused" if isinstance(error, self.documented) else None
