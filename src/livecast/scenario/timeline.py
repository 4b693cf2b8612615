"""The fault timeline of a rehearsal scenario (pure: no I/O, time passed in).

A scenario lists faults as a TOML array of tables; times are seconds since the rehearsal started::

    [[faults]]
    at = 10.0                 # when it starts
    duration = 5.0            # optional: omitted = until the end of the rehearsal
    kind = "latency"          # latency | bandwidth | reset | http_status | slow_first_byte
                              # | stop_process | start_process
    target = "origin"         # the fault proxy (link) name, or the process name
    latency_ms = 3000
    match = "part"            # optional: any (default), or one or a list of
                              # multivariant / playlist / part / segment / init / other

Keys per kind (everything else is refused, naming the key as ``faults[2].latency_ms``):

* ``latency``: ``latency_ms`` (required), ``jitter_ms`` (0)
* ``bandwidth``: ``rate_kbps`` (required, kbit/s)
* ``reset``: ``probability`` (1.0) — of each new connection / matching request being reset;
  with ``match = "any"`` the connections open when it starts are cut too
* ``http_status``: ``status`` (503), ``probability`` (1.0), ``body`` (a short text),
  ``cache_control`` ("": none, as a failing origin or load balancer answers; e.g. "no-store",
  "max-age=5" for an origin that sheds load so that the edges cache the refusal)
* ``slow_first_byte``: ``delay_ms`` (required)
* ``stop_process``: ``mode`` = ``"pause"`` (SIGSTOP/SIGCONT, default) or ``"kill"``
  (terminate, and start again when the duration ends); the process is started again when
  ``duration`` ends, else it stays down until a ``start_process``
* ``start_process``: no extra keys (``duration`` is not allowed)

``match`` is honoured by the HTTP-aware fault proxy, which knows each request's target; a plain TCP
link applies only faults that match ``any``.
"""

from __future__ import annotations

import math
import posixpath
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from livecast.errors import ConfigError

OBJECT_TYPES: Final = ("multivariant", "playlist", "part", "segment", "init", "other")
ANY: Final = "any"
NETWORK_KINDS: Final = ("latency", "bandwidth", "reset", "http_status", "slow_first_byte")
PROCESS_KINDS: Final = ("stop_process", "start_process")
KINDS: Final = NETWORK_KINDS + PROCESS_KINDS
HTTP_ONLY_KINDS: Final = ("http_status", "slow_first_byte")
STOP_MODES: Final = ("pause", "kill")
_MULTIVARIANT_STEMS: Final = frozenset({"main", "master", "multivariant", "playlist"})
_COMMON_KEYS: Final = frozenset({"at", "duration", "kind", "target", "match"})


@dataclass(frozen=True)
class Latency:
    """Delay every chunk of a response by ``latency_ms`` ± up to ``jitter_ms``."""

    latency_ms: float
    jitter_ms: float = 0.0


@dataclass(frozen=True)
class Bandwidth:
    """Cap the response direction at ``rate_kbps`` kbit/s (paced writes)."""

    rate_kbps: float

    @property
    def bytes_per_second(self) -> float:
        return self.rate_kbps * 1000.0 / 8.0


@dataclass(frozen=True)
class Reset:
    """Reset a new connection (or request) with ``probability``."""

    probability: float = 1.0


@dataclass(frozen=True)
class HttpStatus:
    """Answer a matching request with ``status`` instead of forwarding it."""

    status: int = 503
    probability: float = 1.0
    body: str = ""
    cache_control: str = ""  # the answer's Cache-Control ("": no header)


@dataclass(frozen=True)
class SlowFirstByte:
    """Hold the first byte of a matching response for ``delay_ms``."""

    delay_ms: float


@dataclass(frozen=True)
class StopProcess:
    """Stop the named process: ``pause`` (SIGSTOP) or ``kill`` (terminate)."""

    mode: str = "pause"


@dataclass(frozen=True)
class StartProcess:
    """Start (or continue) the named process."""


Effect = Latency | Bandwidth | Reset | HttpStatus | SlowFirstByte | StopProcess | StartProcess


@dataclass(frozen=True)
class Fault:
    """One entry of the timeline: ``effect`` on ``target`` during [at, at + duration)."""

    index: int
    kind: str
    at: float
    duration: float | None
    target: str
    effect: Effect
    match: frozenset[str] = field(default_factory=lambda: frozenset({ANY}))

    @property
    def end(self) -> float:
        return math.inf if self.duration is None else self.at + self.duration

    @property
    def label(self) -> str:
        return f"faults[{self.index}] {self.kind} on {self.target}"

    def active_at(self, now: float) -> bool:
        return self.at <= now < self.end

    def matches(self, object_type: str) -> bool:
        return ANY in self.match or object_type in self.match


@dataclass(frozen=True)
class Transitions:
    """What changed between two instants: faults that started and faults that ended."""

    started: tuple[Fault, ...] = ()
    ended: tuple[Fault, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.started or self.ended)


@dataclass(frozen=True)
class Timeline:
    """The faults of one scenario, ordered by start time."""

    faults: tuple[Fault, ...] = ()

    def active(self, now: float, target: str | None = None) -> list[Fault]:
        """Faults in effect at ``now`` (optionally only those on ``target``)."""
        return [
            fault
            for fault in self.faults
            if fault.active_at(now) and (target is None or fault.target == target)
        ]

    def transitions(self, prev: float, now: float) -> Transitions:
        """Faults that started or ended in the half-open interval (prev, now]."""
        started = tuple(fault for fault in self.faults if prev < fault.at <= now)
        ended = tuple(fault for fault in self.faults if prev < fault.end <= now)
        return Transitions(started, ended)

    def targets(self) -> frozenset[str]:
        return frozenset(fault.target for fault in self.faults)

    @property
    def last_change(self) -> float:
        """The last instant at which anything starts or ends (0 for an empty timeline)."""
        times = [t for fault in self.faults for t in (fault.at, fault.end) if t != math.inf]
        return max(times, default=0.0)


def classify(target: str) -> str:
    """The object type of a request target, from its URL shape."""
    path, _, query = target.partition("?")
    name = posixpath.basename(path.rstrip("/") if path != "/" else path)
    if name.endswith(".m3u8"):
        stem = name[: -len(".m3u8")]
        top = stem in _MULTIVARIANT_STEMS and "_HLS_" not in query
        return "multivariant" if top else "playlist"
    if name.startswith("part-") or ".part" in name:
        return "part"
    if name.startswith("init") and name.endswith((".mp4", ".m4s")):
        return "init"
    if name.endswith((".m4s", ".ts", ".mp4", ".aac", ".m4a", ".m4v")):
        return "segment"
    return "other"


def parse_timeline(raw: Any, key: str = "faults") -> Timeline:
    """The :class:`Timeline` of a scenario's ``faults`` array (``None`` = no faults)."""
    if raw is None:
        return Timeline()
    if not isinstance(raw, Sequence) or isinstance(raw, str | bytes):
        raise ConfigError(key, "expected an array of tables ([[faults]])")
    faults = [parse_fault(entry, index, key) for index, entry in enumerate(raw)]
    return Timeline(tuple(sorted(faults, key=lambda fault: (fault.at, fault.index))))


def parse_fault(raw: Any, index: int, key: str = "faults") -> Fault:
    """One fault from its table; every error names the offending key."""
    where = f"{key}[{index}]"
    if not isinstance(raw, Mapping):
        raise ConfigError(where, "expected a table")
    kind = raw.get("kind")
    if kind not in KINDS:
        raise ConfigError(f"{where}.kind", f"{kind!r} is not one of {', '.join(KINDS)}")
    reader = _Reader(raw, where)
    at = reader.number("at", minimum=0.0)
    duration = reader.optional_number("duration", minimum=0.0, exclusive=True)
    target = reader.text("target")
    match = _match(raw.get("match", ANY), f"{where}.match")
    effect = _EFFECTS[kind](reader)
    if kind == "start_process" and duration is not None:
        raise ConfigError(f"{where}.duration", "start_process is instantaneous")
    unknown = sorted(set(raw) - _COMMON_KEYS - reader.used)
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}", f"unknown key for kind {kind!r}")
    return Fault(index, kind, at, duration, target, effect, match)


def _match(value: Any, key: str) -> frozenset[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, Sequence) or not items:
        raise ConfigError(key, "expected a name or a non-empty list of names")
    allowed = (ANY, *OBJECT_TYPES)
    for item in items:
        if item not in allowed:
            raise ConfigError(key, f"{item!r} is not one of {', '.join(allowed)}")
    return frozenset(items)


class _Reader:
    """Typed access to one fault table, remembering which keys were read."""

    def __init__(self, raw: Mapping[str, Any], where: str) -> None:
        self.raw = raw
        self.where = where
        self.used: set[str] = set()

    def _key(self, name: str) -> str:
        return f"{self.where}.{name}"

    def optional_number(
        self,
        name: str,
        *,
        minimum: float = 0.0,
        maximum: float = math.inf,
        exclusive: bool = False,
    ) -> float | None:
        self.used.add(name)
        value = self.raw.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(self._key(name), f"expected a number, got {type(value).__name__}")
        number = float(value)
        too_low = number <= minimum if exclusive else number < minimum
        if not math.isfinite(number) or too_low or number > maximum:
            bound = f"> {minimum:g}" if exclusive else f">= {minimum:g}"
            upper = "" if maximum == math.inf else f" and <= {maximum:g}"
            raise ConfigError(self._key(name), f"{value!r} is not {bound}{upper}")
        return number

    def number(
        self,
        name: str,
        default: float | None = None,
        *,
        minimum: float = 0.0,
        maximum: float = math.inf,
        exclusive: bool = False,
    ) -> float:
        value = self.optional_number(name, minimum=minimum, maximum=maximum, exclusive=exclusive)
        if value is not None:
            return value
        if default is None:
            raise ConfigError(self._key(name), "missing")
        return default

    def text(self, name: str, default: str | None = None, choices: Sequence[str] = ()) -> str:
        self.used.add(name)
        value = self.raw.get(name, default)
        if value is None:
            raise ConfigError(self._key(name), "missing")
        if not isinstance(value, str) or (not value and default is None):
            raise ConfigError(self._key(name), "expected a non-empty string")
        if choices and value not in choices:
            raise ConfigError(self._key(name), f"{value!r} is not one of {', '.join(choices)}")
        return value

    def status(self, name: str) -> int:
        self.used.add(name)
        value = self.raw.get(name, 503)
        if isinstance(value, bool) or not isinstance(value, int) or not 200 <= value <= 599:
            raise ConfigError(self._key(name), f"{value!r} is not an HTTP status (200–599)")
        return value


def _latency(reader: _Reader) -> Latency:
    return Latency(reader.number("latency_ms"), reader.number("jitter_ms", 0.0))


def _bandwidth(reader: _Reader) -> Bandwidth:
    return Bandwidth(reader.number("rate_kbps", exclusive=True))


def _reset(reader: _Reader) -> Reset:
    return Reset(reader.number("probability", 1.0, maximum=1.0))


def _http_status(reader: _Reader) -> HttpStatus:
    status = reader.status("status")
    probability = reader.number("probability", 1.0, maximum=1.0)
    body = reader.text("body", "")
    cache_control = reader.text("cache_control", "")
    if any(c in cache_control for c in "\r\n"):
        raise ConfigError(reader._key("cache_control"), "must be one line")
    return HttpStatus(status, probability, body, cache_control)


def _slow_first_byte(reader: _Reader) -> SlowFirstByte:
    return SlowFirstByte(reader.number("delay_ms"))


def _stop_process(reader: _Reader) -> StopProcess:
    return StopProcess(reader.text("mode", "pause", STOP_MODES))


def _start_process(reader: _Reader) -> StartProcess:
    return StartProcess()


_EFFECTS: Final[Mapping[str, Callable[[_Reader], Effect]]] = {
    "latency": _latency,
    "bandwidth": _bandwidth,
    "reset": _reset,
    "http_status": _http_status,
    "slow_first_byte": _slow_first_byte,
    "stop_process": _stop_process,
    "start_process": _start_process,
}
