"""What a fuzz target is, and how the outcome of one input is classified.

A :class:`Target` names a Hypothesis strategy of inputs and a session that yields the function
running one input. Running an input ends one of three ways:

* ``ok`` — the input was accepted and every property held;
* ``refused`` — the input was refused with one of the target's *documented* exception types (the
  :class:`~livecast.errors.LivecastError` subclass its parser promises, e.g. ``MediaError``);
* a *crash* — any other exception, or a :class:`PropertyViolation` raised by the run function
  because a property broke (a round trip that differs, an answer that is not HTTP, a server that
  no longer answers).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Literal

from hypothesis import strategies as st

from livecast.fuzzing.paths import ArcTracer

Outcome = Literal["ok", "refused"]
RunOne = Callable[[Any], None]  # runs one input; returns (ok) or raises


class PropertyViolation(AssertionError):
    """A property of a target broke for one input (never a documented refusal)."""


def violation(condition: bool, message: str) -> None:
    """Raise :class:`PropertyViolation` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise PropertyViolation(message)


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
