"""What the fault proxy does to a connection or a request (pure: rng and time passed in).

:func:`decide` turns the faults active on a link into one :class:`Action` per request (HTTP-aware
mode) or per connection (TCP mode, ``target=None``); :class:`Pacer` turns an action's latency and
bandwidth cap into delivery times for the bytes of a response; :class:`FaultCounters` keeps what
was injected, for the rehearsal report.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Final

from livecast.scenario.timeline import (
    ANY,
    HTTP_ONLY_KINDS,
    NETWORK_KINDS,
    Bandwidth,
    Fault,
    HttpStatus,
    Latency,
    Reset,
    SlowFirstByte,
    classify,
)

MIN_SLICE: Final = 1024
MAX_SLICE: Final = 16 * 1024
SLICE_SECONDS: Final = 0.02  # a paced write every 20 ms at most


@dataclass(frozen=True)
class Action:
    """What to do with one request (or, in TCP mode, one connection)."""

    object_type: str = "other"
    reset: bool = False
    status: int | None = None  # answer with this instead of forwarding
    body: str = ""
    cache_control: str = ""  # of that answer ("": no Cache-Control header)
    latency: float = 0.0  # seconds added to every chunk of the response
    jitter: float = 0.0  # ± seconds drawn per chunk
    first_byte_delay: float = 0.0  # seconds added to the first chunk only
    rate: float | None = None  # bytes per second, None = uncapped
    applied: tuple[str, ...] = ()  # the kinds that shaped this action

    @property
    def forwards(self) -> bool:
        return not self.reset and self.status is None

    @property
    def shaped(self) -> bool:
        return bool(self.latency or self.jitter or self.first_byte_delay or self.rate)


FORWARD: Final = Action()


def applicable(faults: Iterable[Fault], object_type: str | None) -> list[Fault]:
    """The network faults that apply to a request of ``object_type`` (``None``: TCP mode, where
    only faults matching ``any`` apply and HTTP-only kinds never do)."""
    chosen = []
    for fault in faults:
        if fault.kind not in NETWORK_KINDS:
            continue
        if object_type is None:
            if fault.kind in HTTP_ONLY_KINDS or ANY not in fault.match:
                continue
        elif not fault.matches(object_type):
            continue
        chosen.append(fault)
    return chosen


def decide(target: str | None, faults: Iterable[Fault], rng: random.Random) -> Action:
    """One :class:`Action` for a request to ``target`` (``None``: a new TCP connection).

    Resets win over injected statuses, which win over shaping; latencies add up, the tightest
    bandwidth cap and the longest first-byte delay apply. The random draws happen in fault order,
    so a seeded ``rng`` gives the same decisions for the same requests.
    """
    object_type = "other" if target is None else classify(target)
    chosen = applicable(faults, None if target is None else object_type)
    if not chosen:
        return Action(object_type) if object_type != "other" else FORWARD
    for fault in chosen:
        if isinstance(fault.effect, Reset) and _draw(rng, fault.effect.probability):
            return Action(object_type, reset=True, applied=("reset",))
    for fault in chosen:
        effect = fault.effect
        if isinstance(effect, HttpStatus) and _draw(rng, effect.probability):
            return Action(
                object_type,
                status=effect.status,
                body=effect.body,
                cache_control=effect.cache_control,
                applied=("http_status",),
            )
    return _shape(object_type, chosen)


def _shape(object_type: str, faults: list[Fault]) -> Action:
    latency = jitter = first_byte = 0.0
    rate: float | None = None
    applied: list[str] = []
    for fault in faults:
        effect = fault.effect
        if isinstance(effect, Latency):
            latency += effect.latency_ms / 1000.0
            jitter += effect.jitter_ms / 1000.0
        elif isinstance(effect, SlowFirstByte):
            first_byte = max(first_byte, effect.delay_ms / 1000.0)
        elif isinstance(effect, Bandwidth):
            cap = effect.bytes_per_second
            rate = cap if rate is None else min(rate, cap)
        else:
            continue
        if fault.kind not in applied:
            applied.append(fault.kind)
    return Action(
        object_type,
        latency=latency,
        jitter=jitter,
        first_byte_delay=first_byte,
        rate=rate,
        applied=tuple(applied),
    )


def resets_starting(started: Iterable[Fault], name: str) -> list[Reset]:
    """Reset faults on link ``name`` that just started and match any request: they cut the
    connections already open (each with its probability), not only new ones."""
    return [
        fault.effect
        for fault in started
        if fault.target == name and isinstance(fault.effect, Reset) and ANY in fault.match
    ]


def cut_open_links(resets: Iterable[Reset], links: int, rng: random.Random) -> list[bool]:
    """For each of ``links`` open connections, whether one of ``resets`` cuts it."""
    chosen = list(resets)
    return [any(_draw(rng, reset.probability) for reset in chosen) for _ in range(links)]


def _draw(rng: random.Random, probability: float) -> bool:
    if probability >= 1.0:
        return True
    return probability > 0.0 and rng.random() < probability


def chunk_delay(action: Action, rng: random.Random, first: bool) -> float:
    """Seconds to hold one chunk of a response: latency ± jitter, plus the first-byte delay."""
    delay = action.latency
    if action.jitter:
        delay = max(0.0, delay + rng.uniform(-action.jitter, action.jitter))
    if first:
        delay += action.first_byte_delay
    return delay


def slice_size(rate: float) -> int:
    """Bytes per paced write at ``rate`` bytes/s."""
    return int(min(MAX_SLICE, max(MIN_SLICE, rate * SLICE_SECONDS)))


@dataclass
class Pacer:
    """Delivery times for one direction of a link: order kept, bandwidth cap honoured.

    A slice is due when its last byte would have crossed a link of ``rate`` bytes/s, so ``n``
    bytes sent at once at rate ``r`` finish no sooner than ``n / r`` seconds later.
    """

    last_due: float = 0.0

    def plan(
        self, now: float, size: int, delay: float = 0.0, rate: float | None = None
    ) -> list[tuple[float, int]]:
        """``(due, length)`` slices for ``size`` bytes arriving at ``now``."""
        start = max(now + delay, self.last_due)
        if rate is None or size == 0:
            self.last_due = start
            return [(start, size)]
        step = slice_size(rate)
        slices = []
        offset = 0
        due = start
        while offset < size:
            length = min(step, size - offset)
            due += length / rate
            slices.append((due, length))
            offset += length
        self.last_due = due
        return slices


def injected_response(
    status: int, body: str = "", *, keep_alive: bool, head: bool, cache_control: str = ""
) -> bytes:
    """The bytes of an injected answer (keep-alive preserved when the client asked for it);
    no ``Cache-Control`` unless given — a failing origin or load balancer sends none, and a
    cache then applies its own TTL for errors (``edge.nginx_conf.ERROR_TTL``)."""
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Injected"
    text = (body or f"{status} {reason} (injected by the livecast fault proxy)\n").encode()
    head_lines = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(text)}\r\n"
        + (f"Cache-Control: {cache_control}\r\n" if cache_control else "")
        + "X-Livecast-Fault: http_status\r\n"
        f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
    ).encode()
    return head_lines if head else head_lines + text


@dataclass
class FaultCounters:
    """What one proxy did: connections, requests, and injections by kind and object type."""

    connections: int = 0
    requests: int = 0
    forwarded: int = 0
    upstream_errors: int = 0
    injected: Counter[str] = field(default_factory=Counter)  # "latency", "http_status:503", …
    by_object: Counter[str] = field(default_factory=Counter)  # "part:http_status", …

    def record(self, action: Action) -> None:
        for kind in action.applied:
            name = f"http_status:{action.status}" if kind == "http_status" else kind
            self.injected[name] += 1
            self.by_object[f"{action.object_type}:{kind}"] += 1

    def as_dict(self) -> dict[str, object]:
        return {
            "connections": self.connections,
            "requests": self.requests,
            "forwarded": self.forwarded,
            "upstream_errors": self.upstream_errors,
            "injected": dict(sorted(self.injected.items())),
            "by_object": dict(sorted(self.by_object.items())),
        }
