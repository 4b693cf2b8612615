"""Which input is on air: the primary encoder, the backup, or the slate (pure, sans-IO).

A live event has one or two contribution inputs, in priority order (``primary``, then
``backup``: two encoders publishing to two keys, as AWS MediaLive's input failover pairs them).
:class:`InputSwitch` is told when media arrives on an input and when its publisher leaves, with
the time passed in, and answers "what should be on air now?" (:meth:`InputSwitch.decide`):

* Before any input ever delivered media: nothing (the origin says "waiting for the encoder").
* The on-air input is *lost* when no media arrived on it for ``failover_after`` seconds (or its
  publisher left) while another input is healthy: the switch goes to that input at once. With no
  healthy input to go to, the on-air input is given ``input_loss`` seconds before the *slate*
  ("we'll be right back", generated locally) goes on air instead — a short hiccup of the only
  encoder stays a hiccup, a real loss becomes a slate instead of a stall.
* From the slate, the first input with fresh media goes back on air (the primary preferred).
* From the backup, the switch goes back to the primary only once the primary has delivered media
  without a gap of ``failover_after`` for ``switch_back_after`` seconds (no flapping on an encoder
  that keeps reconnecting).

An input is *healthy* at ``now`` when it has a publisher and its newest media is younger than
``failover_after``. Every change is a :class:`Switch` (the adapter logs it as one line and counts
it); :meth:`InputSwitch.next_check` says when the answer may change without new events, so the
adapter can sleep until then.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from livecast.errors import ConfigError

__all__ = ["SLATE", "InputSwitch", "Switch", "SwitchPolicy"]

SLATE = "slate"


@dataclass(frozen=True)
class SwitchPolicy:
    input_loss: float = 1.5  # no usable input this long: the slate goes on air
    failover_after: float = 1.0  # the on-air input is this stale and another is healthy: switch
    switch_back_after: float = 10.0  # the primary healthy this long: back from the backup

    def validate(self) -> SwitchPolicy:
        for name in ("input_loss", "failover_after", "switch_back_after"):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0:
                raise ConfigError(f"ingest.{name}", f"{value} s must be a positive number")
        if self.failover_after > self.input_loss:
            raise ConfigError(
                "ingest.failover_after",
                f"{self.failover_after} s exceeds input_loss ({self.input_loss} s)",
            )
        return self


@dataclass(frozen=True)
class Switch:
    """The on-air source changed from ``before`` to ``after`` (input names, :data:`SLATE`, or
    None before anything was on air) at ``at``, for ``reason``."""

    before: str | None
    after: str
    at: float
    reason: str


@dataclass
class _Input:
    name: str
    connected: bool = False
    last_media: float | None = None
    healthy_since: float | None = None  # first media after the last gap or (re)connection

    def healthy(self, now: float, fresh: float) -> bool:
        return self.connected and self.last_media is not None and now - self.last_media < fresh


@dataclass
class InputSwitch:
    inputs: tuple[str, ...]  # priority order: the primary first
    policy: SwitchPolicy = field(default_factory=SwitchPolicy)
    on_air: str | None = None
    switches: list[Switch] = field(default_factory=list)
    _state: dict[str, _Input] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.inputs or len(set(self.inputs)) != len(self.inputs) or SLATE in self.inputs:
            raise ConfigError("ingest", f"inputs {self.inputs!r} must be distinct names")
        self._state = {name: _Input(name) for name in self.inputs}

    # ------------------------------------------------------------------ events
    def on_media(self, name: str, now: float) -> None:
        state = self._input(name)
        gap = state.last_media is None or now - state.last_media >= self.policy.failover_after
        if not state.connected or gap or state.healthy_since is None:
            state.healthy_since = now
        state.connected = True
        state.last_media = now

    def on_end(self, name: str, now: float) -> None:
        """The input's publisher left (or was dropped): it is lost from now on."""
        state = self._input(name)
        state.connected = False
        state.healthy_since = None

    # ------------------------------------------------------------------ decisions
    def last_media(self, name: str) -> float | None:
        return self._input(name).last_media

    def healthy(self, name: str, now: float) -> bool:
        return self._input(name).healthy(now, self.policy.failover_after)

    def decide(self, now: float) -> Switch | None:
        """Put on air what should be on air at ``now``; the change, if any."""
        wanted, reason = self._wanted(now)
        if wanted is None or wanted == self.on_air:
            return None
        switch = Switch(self.on_air, wanted, now, reason)
        self.on_air = wanted
        self.switches.append(switch)
        return switch

    def next_check(self, now: float) -> float | None:
        """The earliest time the answer can change without a new event (None: only an event
        can change it)."""
        times: list[float] = []
        for state in self._state.values():
            if state.last_media is not None:
                for delay in (self.policy.failover_after, self.policy.input_loss):
                    times.append(state.last_media + delay)
            if state.healthy_since is not None:
                times.append(state.healthy_since + self.policy.switch_back_after)
        later = [t for t in times if t > now]
        return min(later) if later else None

    def _wanted(self, now: float) -> tuple[str | None, str]:
        fresh = self.policy.failover_after
        healthy = [name for name in self.inputs if self.healthy(name, now)]
        current = self.on_air
        if current is None or current == SLATE:
            if healthy:
                return healthy[0], f"media on {healthy[0]}"
            return current, ""
        state = self._state[current]
        if not state.healthy(now, fresh):
            others = [name for name in healthy if name != current]
            if others:
                return others[0], f"{current}: {self._loss(state, now)}"
            if state.last_media is None or now - state.last_media >= self.policy.input_loss:
                return SLATE, f"{current}: {self._loss(state, now)}, no other input"
            return current, ""
        better = self._preferred_over(current, now)
        if better is not None:
            return better, f"{better} healthy for {self.policy.switch_back_after:g} s"
        return current, ""

    def _preferred_over(self, current: str, now: float) -> str | None:
        """A higher-priority input that has been healthy for ``switch_back_after``."""
        for name in self.inputs[: self.inputs.index(current)]:
            state = self._state[name]
            if (
                state.healthy(now, self.policy.failover_after)
                and state.healthy_since is not None
                and now - state.healthy_since >= self.policy.switch_back_after
            ):
                return name
        return None

    @staticmethod
    def _loss(state: _Input, now: float) -> str:
        if not state.connected:
            return "publisher gone"
        age = now - state.last_media if state.last_media is not None else math.inf
        return f"no media for {age:.1f} s"

    def _input(self, name: str) -> _Input:
        try:
            return self._state[name]
        except KeyError:
            raise ConfigError("ingest", f"no input {name!r} (inputs: {self.inputs})") from None
