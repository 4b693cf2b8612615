"""The viewer's stream lease — pure: the join and the jittered heartbeats a player sends to an
origin that limits the concurrent streams of each account (``access.heartbeat``,
docs/access.md), as the player page does.

    GET <session_url>?join=1   with the play request: the stream takes one of the account's slots
    GET <session_url>          every ``next_s`` seconds the last answer named (the origin jitters
                               it ±20 % so that a flash crowd's heartbeats spread out)

The answers and what the player does:

  * ``200 {"next_s": …}`` — held: the next heartbeat then;
  * ``401``/``403`` — refused (``too_many_streams``, ``lease_expired``, ``ended_by_newer_stream``,
    ``revoked``…: the body's first line): the player stops, as the page does (a start failure
    before the first frame, a fatal error after it — a rehearsal whose legitimate audience is
    refused is not GO);
  * ``404`` — the origin limits nothing: no more heartbeats;
  * anything else (``429`` too soon, ``5xx``, a timeout, a reset) — retried with backoff per
    :data:`SESSION_RETRY`; when retries run out the player keeps watching and tries again one
    regular interval later: a lease store in trouble must not stop the show (the origin's
    fail-open/closed policy decides). Until a join is admitted the retries are joins.

The player's media never waits for the lease: the join goes out beside the multivariant request.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass

from livecast.player.config import RetryPolicy
from livecast.player.retry import backoff_delay

SESSION_RETRY = RetryPolicy(max_retries=3, base_delay=1.0, max_delay=8.0, timeout=5.0)
DEFAULT_INTERVAL = 10.0  # seconds between heartbeats until the origin names its own
MIN_INTERVAL = 0.5  # a ``next_s`` below this is taken as this (a broken answer must not flood)
MAX_INTERVAL = 3600.0
MAX_REASON = 64  # characters of a refusal reason kept


@dataclass(frozen=True, slots=True)
class Beat:
    """Send the next heartbeat (``url``) at ``at`` — wall clock, like ``Request.not_before``."""

    url: str
    at: float
    retries: int  # 0: a regular heartbeat; n: the n-th retry of a failed one


@dataclass(frozen=True, slots=True)
class Refused:
    """The origin ended the stream: ``reason`` is its code."""

    reason: str


class SessionLease:
    """One viewer's lease: which heartbeat to send next, from the answers to the last."""

    __slots__ = ("_failures", "active", "interval", "joined", "policy", "url")

    def __init__(self, url: str, policy: RetryPolicy = SESSION_RETRY) -> None:
        self.url = url  # absolute: /session/heartbeat at the viewer's entry point
        self.policy = policy
        self.interval = DEFAULT_INTERVAL
        self.active = True  # False after a refusal or a 404: nothing more to send
        self.joined = False  # a join was admitted: later beats are heartbeats, retries too
        self._failures = 0  # consecutive failures of the heartbeat being retried

    def join(self, now: float) -> Beat:
        return Beat(self._join_url(), now, 0)

    def _join_url(self) -> str:
        return self.url + ("&" if "?" in self.url else "?") + "join=1"

    def _next_url(self) -> str:
        """A join until one is admitted (a join refused 429 or lost never took a slot)."""
        return self.url if self.joined else self._join_url()

    def on_answer(
        self, status: int, body: bytes | None, now: float, rng: random.Random
    ) -> Beat | Refused | None:
        """What follows the answer ``status`` (``body``: the answer's text)."""
        if not self.active:
            return None
        if 200 <= status < 300:
            next_s = _next_s(body)
            if next_s is None:
                return self.on_failure(now, rng)
            self.interval = next_s
            self._failures = 0
            self.joined = True
            return Beat(self.url, now + next_s, 0)
        if status in (401, 403):
            self.active = False
            return Refused(_reason(body, status))
        if status == 404:
            self.active = False
            return None
        return self.on_failure(now, rng)

    def on_failure(self, now: float, rng: random.Random) -> Beat | None:
        """A heartbeat failed (transport, 429, 5xx, a broken answer): retried with backoff, and
        once retries run out, the next regular heartbeat one interval on."""
        if not self.active:
            return None
        if self._failures < self.policy.max_retries:
            delay = backoff_delay(self.policy, self._failures, rng)
            self._failures += 1
            return Beat(self._next_url(), now + delay, self._failures)
        self._failures = 0
        return Beat(self._next_url(), now + self.interval, 0)


def _next_s(body: bytes | None) -> float | None:
    """``next_s`` of a 200's JSON, bounded; None if the body does not carry one."""
    try:
        answer = json.loads(body or b"")
    except ValueError:
        return None
    if not isinstance(answer, dict):
        return None
    value = answer.get("next_s")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    seconds = float(value)
    if math.isnan(seconds):
        return None
    return min(max(seconds, MIN_INTERVAL), MAX_INTERVAL)


def _reason(body: bytes | None, status: int) -> str:
    text = (body or b"").decode("utf-8", "replace").strip().split("\n", 1)[0]
    printable = "".join(char for char in text[:MAX_REASON] if char.isprintable())
    return printable or f"http_{status}"
