"""The ``[ingest]`` table of an event file (pure): where encoders publish, and with which key.

    source = "rtmp"             # or "srt"

    [ingest]
    app = "live"                # rtmp://HOST:1935/live, stream key = the event's key
    rtmp_port = 1935
    srt_port = 9000             # source = "srt": the primary's port (the backup: srt_port + 1)
    srt_latency_ms = 120        # the listener's SRT latency (the larger of both ends applies)
    stream_key = ""             # or $LIVECAST_STREAM_KEY (preferred: keeps it out of the file)
    backup_key = ""             # or $LIVECAST_BACKUP_KEY: a second encoder, the backup input
    input_loss = 1.5            # seconds without usable input before the slate goes on air
    failover_after = 1.0        # the on-air input this stale and the other one healthy: switch
    switch_back_after = 10.0    # the primary healthy this long: back from the backup
    slate = true                # "we'll be right back" on input loss (false: viewers stall)
    takeover = false            # a second publisher on a live key: refuse (false) or take over
    end_on_unpublish = false    # the last publisher unpublishing cleanly ends the event (VOD)

Keys are never shown: :meth:`IngestSettings.__repr__` prints their fingerprints.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from livecast.errors import ConfigError
from livecast.ingest.keys import fingerprint, key_problem
from livecast.ingest.switch import SwitchPolicy

__all__ = ["BACKUP_KEY_ENV", "KEY_ENV", "EventKeys", "IngestSettings", "check_distinct_keys"]

KEY_ENV = "LIVECAST_STREAM_KEY"
BACKUP_KEY_ENV = "LIVECAST_BACKUP_KEY"
_APP = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_EVENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


SRT_PASSPHRASE = (10, 79)  # SRTO_PASSPHRASE: 10..79 characters


def _key_in_use(key: str, where: str, *, srt: bool = False) -> None:
    problem = key_problem(key)
    if problem is not None:
        raise ConfigError(where, f"the key {problem}")
    low, high = SRT_PASSPHRASE
    if srt and not low <= len(key) <= high:
        raise ConfigError(where, f"an SRT key is the passphrase: {low}–{high} characters")


@dataclass(frozen=True)
class EventKeys:
    """Another event on the same server (``[[events]]``): its stream id (``/live/<id>/…``) and
    the keys its encoders publish with (``$LIVECAST_STREAM_KEY_<ID>``, ``…BACKUP_KEY_<ID>``)."""

    id: str
    stream_key: str = ""
    backup_key: str = ""
    srt_port: int = 0  # source = "srt": this event's primary port (the backup: srt_port + 1)

    @property
    def env_suffix(self) -> str:
        return self.id.upper().replace("-", "_")

    @property
    def inputs(self) -> tuple[str, ...]:
        return ("primary", "backup") if self.backup_key else ("primary",)

    def validate(self, index: int, *, srt: bool = False) -> EventKeys:
        where = f"events[{index}]"
        if not _EVENT_ID.match(self.id):
            raise ConfigError(f"{where}.id", f"{self.id!r} is not a stream id ([A-Za-z0-9_-])")
        if not self.stream_key:
            raise ConfigError(
                f"{where}.stream_key", f"missing (set $LIVECAST_STREAM_KEY_{self.env_suffix})"
            )
        _key_in_use(self.stream_key, f"{where}.stream_key", srt=srt)
        if self.backup_key:
            _key_in_use(self.backup_key, f"{where}.backup_key", srt=srt)
        if srt and not 1 <= self.srt_port <= 65534:
            raise ConfigError(f"{where}.srt_port", "an event over SRT needs a port of its own")
        return self

    def __repr__(self) -> str:
        shown = fingerprint(self.stream_key) if self.stream_key else "none"
        backup = fingerprint(self.backup_key) if self.backup_key else "none"
        return f"EventKeys(id={self.id!r}, stream_key=<{shown}>, backup_key=<{backup}>)"


def check_distinct_keys(keys: list[tuple[str, str]]) -> None:
    """Every key publishes to exactly one input of one event: ``(where, key)`` pairs."""
    seen: dict[str, str] = {}
    for where, key in keys:
        if key and key in seen:
            raise ConfigError(where, f"the same key as {seen[key]}: every input needs its own")
        seen[key] = where


@dataclass(frozen=True)
class IngestSettings:
    app: str = "live"
    host: str = ""  # empty: the event's host
    rtmp_port: int = 1935
    srt_port: int = 9000
    srt_latency_ms: int = 120
    stream_key: str = ""
    backup_key: str = ""
    input_loss: float = 1.5
    failover_after: float = 1.0
    switch_back_after: float = 10.0
    slate: bool = True
    takeover: bool = False
    end_on_unpublish: bool = False  # a clean unpublish of the last publisher ends the event
    max_message_kb: int = 16_384  # one RTMP message (an FLV tag) larger than this is refused

    def validate(self, *, needs_key: bool, srt: bool = False) -> IngestSettings:
        if not _APP.match(self.app):
            raise ConfigError("ingest.app", f"{self.app!r} is not a valid RTMP application name")
        for key, port in (("ingest.rtmp_port", self.rtmp_port), ("ingest.srt_port", self.srt_port)):
            if not 0 <= port <= 65535:
                raise ConfigError(key, f"{port} is not a port")
        if not math.isfinite(self.input_loss) or not 0.2 <= self.input_loss <= 30:
            raise ConfigError("ingest.input_loss", f"{self.input_loss} s is outside 0.2–30 s")
        self.policy.validate()
        if not 20 <= self.srt_latency_ms <= 8000:
            raise ConfigError("ingest.srt_latency_ms", f"{self.srt_latency_ms} is outside 20–8000")
        if srt and self.srt_port == 65535:
            raise ConfigError("ingest.srt_port", "the backup needs srt_port + 1")
        if not 64 <= self.max_message_kb <= 262_144:
            raise ConfigError(
                "ingest.max_message_kb", f"{self.max_message_kb} is outside 64–262144"
            )
        if needs_key:
            if not self.stream_key:
                raise ConfigError(
                    "ingest.stream_key",
                    f"a contribution source needs a stream key (set ${KEY_ENV})",
                )
            _key_in_use(self.stream_key, "ingest.stream_key", srt=srt)
        if self.backup_key:
            _key_in_use(self.backup_key, "ingest.backup_key", srt=srt)
            if self.backup_key == self.stream_key:
                raise ConfigError("ingest.backup_key", "the backup needs a key of its own")
        return self

    @property
    def policy(self) -> SwitchPolicy:
        return SwitchPolicy(self.input_loss, self.failover_after, self.switch_back_after)

    @property
    def inputs(self) -> tuple[str, ...]:
        """The contribution inputs in priority order."""
        return ("primary", "backup") if self.backup_key else ("primary",)

    def __repr__(self) -> str:
        def shown(key: str) -> str:
            return f"<{fingerprint(key)}>" if key else "<none>"

        return (
            f"IngestSettings(app={self.app!r}, host={self.host!r}, rtmp_port={self.rtmp_port}, "
            f"srt_port={self.srt_port}, srt_latency_ms={self.srt_latency_ms}, "
            f"stream_key={shown(self.stream_key)}, "
            f"backup_key={shown(self.backup_key)}, input_loss={self.input_loss}, "
            f"failover_after={self.failover_after}, "
            f"switch_back_after={self.switch_back_after}, slate={self.slate}, "
            f"takeover={self.takeover}, max_message_kb={self.max_message_kb})"
        )
