"""The origin's answer cache by request target — pure (no I/O; ``now`` is passed in).

Thousands of LL-HLS viewers ask for the same few targets at the same moments: the same blocking
playlist reload, the same part, the same segment. The adapter (``origin.http``) keeps what the
handler answered for a GET of a target and gives it to the next GETs of that target without
asking the handler again. What may be kept is the handler's to say (``origin.contract``):

* a ``reusable`` answer depends only on the handler's state: valid until the state changes
  (:meth:`AnswerCache.state_changed`, called by ``OriginServer.notify``);
* a ``permanent`` answer never changes (immutable media): valid for good;
* a request the handler held (a blocking reload not yet satisfiable, RFC 8216bis §6.2.5.2) is held
  the same way until the state changes, for as long from its own arrival as the first one was.

Anything else (``no-store`` refusals of the gate, per-request answers) is never kept. Keys are
request targets as the adapter's ``cache_key`` maps them, so the handler decides which query
arguments (CMCD, cache busters) share an answer. Each table is bounded: a flood of distinct
targets stops the caching of reusable answers and holds, and restarts the permanent table; it
never grows memory without bound.
"""

from __future__ import annotations

from typing import NamedTuple

from livecast.origin.contract import Hold, Response

MAX_CACHED_TARGETS = 20_000  # per table


class _KnownHold(NamedTuple):
    key: object
    object_type: str
    seconds: float  # how long the first request was held for


class AnswerCacheCounts(NamedTuple):
    reusable: int
    permanent: int
    holds: int


class AnswerCache:
    """Answers and holds already given for request targets, with the expiry rules above."""

    def __init__(self, *, max_targets: int = MAX_CACHED_TARGETS) -> None:
        self.max_targets = max_targets
        self._reusable: dict[bytes, Response] = {}
        self._permanent: dict[bytes, Response] = {}
        self._holds: dict[bytes, _KnownHold] = {}

    def answer(self, target: bytes) -> Response | None:
        """The answer already given to a GET of ``target`` that is still valid, if any."""
        return self._reusable.get(target) or self._permanent.get(target)

    def remember(self, target: bytes, response: Response) -> None:
        """Keep ``response`` for later GETs of ``target`` as far as it allows."""
        if response.permanent:
            if len(self._permanent) >= self.max_targets:
                self._permanent.clear()
            self._permanent[target] = response
        elif response.reusable and len(self._reusable) < self.max_targets:
            self._reusable[target] = response

    def hold(self, target: bytes, now: float) -> Hold | None:
        """A GET of ``target`` was held since the last state change: the same hold for a request
        arriving at ``now`` (its deadline counted from ``now``), if any."""
        known = self._holds.get(target)
        return None if known is None else Hold(known.key, now + known.seconds, known.object_type)

    def remember_hold(self, target: bytes, hold: Hold, now: float) -> None:
        """A GET of ``target`` arriving at ``now`` was held under ``hold``."""
        if len(self._holds) < self.max_targets:
            self._holds[target] = _KnownHold(hold.key, hold.object_type, hold.deadline - now)

    def state_changed(self) -> None:
        """The handler's state changed: reusable answers and holds are no longer valid."""
        self._reusable.clear()
        self._holds.clear()

    def counts(self) -> AnswerCacheCounts:
        return AnswerCacheCounts(len(self._reusable), len(self._permanent), len(self._holds))
