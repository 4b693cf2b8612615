"""A rehearsal stack that checks who watches (the scenario's ``[access]``, ``scenario.access``):
the key ring the rehearsal makes for it, the Redis it starts for the leases, the token its own
probes carry, and what the run measured of it (``meta.access`` in results.json).

  * a fresh key ring (``keys.toml``, mode 0600, in the stack's temporary directory) for the
    stack, its edges and the virtual viewers' tokens (``rehearse.viewer_access``);
  * ``lease_store = "redis"``: Debian's redis-server on 127.0.0.1 for the run
    (``access.redis_server``), the stack's leases in it; afterwards its own command counts
    (``INFO commandstats``) give the round trips — per viewer per minute of watching, the
    figure the issue asks for (goal: O(1) per heartbeat, none per media request);
  * the rehearsal's own requests (reachability, playlist facts, the origin follower) go through
    urllib: while the run lasts they carry a probe token's cookie (no lease: probes do not
    count against any account).
"""

from __future__ import annotations

import contextlib
import os
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from livecast.access.keys import KeyRing, keygen_stanza, load_key_ring
from livecast.access.token_gate import COOKIE_NAME
from livecast.access.tokens import TokenClaims, issue
from livecast.packager.event import DEFAULT_STREAM
from livecast.rehearse.viewer_access import ViewerAccess
from livecast.results.stats import RunStats
from livecast.scenario.access import AccessSpec

KEYS_FILE = "keys.toml"
PROBE_ACCOUNT = "rehearsal-probe"
# What a client sends: the lease store's scripts (INFO commandstats also counts the commands a
# script runs inside Redis — ZADD, PEXPIRE… — which are no round trips); HELLO, PING, INFO are
# the connections' and the rehearsal's own
ROUND_TRIPS = frozenset({"evalsha", "evalsha_ro", "eval", "eval_ro", "script|load", "fcall"})


class StackAccess:
    """The ``[access]`` side of one rehearsal's stack; a context manager (Redis stops)."""

    def __init__(self, spec: AccessSpec, workdir: Path, duration: float) -> None:
        self.spec = spec
        self.keys_path = workdir / KEYS_FILE
        self.keys_path.write_text(keygen_stanza("rehearsal"))
        os.chmod(self.keys_path, 0o600)
        self.key_ring: KeyRing = load_key_ring(self.keys_path, env={})
        self.token_life = duration + 3600.0
        self.redis = None
        if spec.redis:
            from livecast.access.redis_server import RedisServer

            self.redis = RedisServer(workdir / "redis")
            self.redis.start()

    def close(self) -> None:
        if self.redis is not None:
            self.redis.stop()

    def __enter__(self) -> StackAccess:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ the stack
    def event_lines(self) -> list[str]:
        """The ``[access]`` table of the stack's event file."""
        redis_url = self.redis.url if self.redis is not None else None
        return self.spec.event_table(str(self.keys_path), redis_url)

    def viewer_access(self) -> ViewerAccess:
        return ViewerAccess(
            key_ring=self.key_ring,
            event=DEFAULT_STREAM,
            accounts=self.spec.accounts,
            leases=self.spec.leases,
            token_life=self.token_life,
        ).validate()

    # ------------------------------------------------------------------ the rehearsal's probes
    @contextlib.contextmanager
    def probes_carry_a_token(self) -> Iterator[None]:
        """urllib's requests in this process carry the probe token's cookie meanwhile."""
        cookie = f"{COOKIE_NAME}={self.probe_token(time.time())}"
        opener = urllib.request.build_opener()
        opener.addheaders = [*opener.addheaders, ("Cookie", cookie)]
        urllib.request.install_opener(opener)
        try:
            yield
        finally:
            urllib.request.install_opener(None)  # back to the default

    def probe_token(self, now: float) -> str:
        """A token of no viewer's account, for the rehearsal's own requests."""
        claims = TokenClaims(DEFAULT_STREAM, PROBE_ACCOUNT, "probe", exp=int(now + self.token_life))
        return issue(claims, self.key_ring)

    # ------------------------------------------------------------------ what was measured
    def meta(self, stats: RunStats) -> dict[str, object]:
        """``meta.access``: the setting, the session answers, Redis round trips per viewer."""
        spec = self.spec
        session = stats.requests.get("session")
        meta: dict[str, object] = {
            "accounts": spec.accounts,
            "max_streams": spec.max_streams,
            "lease_store": spec.lease_store if spec.leases else None,
            "session_answers": dict(session.status_counts) if session is not None else {},
        }
        viewer_minutes = viewer_seconds(stats) / 60
        meta["viewer_minutes"] = round(viewer_minutes, 1)
        if self.redis is not None:
            counts = self.redis.commandstats()
            trips = sum(n for command, n in counts.items() if command in ROUND_TRIPS)
            meta["redis_commands"] = counts
            meta["redis_round_trips"] = trips
            meta["redis_round_trips_per_viewer_minute"] = (
                round(trips / viewer_minutes, 2) if viewer_minutes else None
            )
        return meta


def describe_access(meta: dict[str, object]) -> str:
    """The rehearsal's line about ``meta.access``."""
    answers = meta.get("session_answers")
    counts = answers if isinstance(answers, dict) else {}
    refused = sum(int(n) for status, n in counts.items() if status in ("401", "403"))
    line = f"access: {meta.get('accounts')} accounts, max {meta.get('max_streams')} streams"
    if meta.get("lease_store") is not None:
        line += f", leases in {meta.get('lease_store')}: {refused} stream(s) refused"
    per_minute = meta.get("redis_round_trips_per_viewer_minute")
    if per_minute is not None:
        line += (
            f"; Redis {meta.get('redis_round_trips')} round trips, "
            f"{per_minute} per viewer per minute"
        )
    return line


def viewer_seconds(stats: RunStats) -> float:
    """Seconds of watching summed over the viewers: the per-second active viewers' sum."""
    return float(sum(stats.timeline.column("active_viewers")))
