"""Per-object figures of a caching tier from its access log (pure): how many requests reached
the upstream for each distinct object at each tier instance, and whether they overlapped.

An *object* is what a correct cache stores once per instance:

* media (``init-…``, ``seg-…``, ``part-…``) by path — the query (CMCD, cache busters) never
  changes the bytes;
* a blocking playlist by path and its ``_HLS_msn`` / ``_HLS_part`` / ``_HLS_skip`` directives
  (RFC 8216bis §6.2.5.2: the answer to a given directive never changes);
* a plain playlist (the multivariant too) by path and part target: its content changes with
  every part, so one fetch per part target is the ideal (the edges refresh a plain playlist at
  most once per part, ``edge.nginx_conf``);
* a start-over playlist (``?start=…[&end=…]``, ``origin.dvr``) likewise, by path, range and part
  target — each range is its own answer (and the edges' cache key keeps it): a media playlist is
  of kind ``playlist-dvr``, a multivariant stays ``multivariant``.

For each record the ledger counts the tier's answer, the attempts it sent upstream
(``$upstream_addr``: one per attempt), the object if this instance had not seen it before, and an
*overlapping* fetch when an upstream fetch of the object ran while another one of the same object
at the same instance was still running — a collapse that let a second request through. Records
carry the time the answer ended and its duration (``$request_time``), so a fetch ran during
``[time − request_time, time]``.
"""

from __future__ import annotations

import math
import re

from livecast.edge.accesslog import AccessRecord
from livecast.results.indicators import TierObjects

_MEDIA = re.compile(r"/(?:(?P<part>part-[^/]*)|(?P<segment>seg-[^/]*)|(?P<init>init-[^/]*))$")
MAX_OBJECTS_PER_INSTANCE = 100_000  # the oldest half is forgotten beyond this
FETCHES_KEPT = 4  # recent fetch intervals kept per object (overlap checks)
RANGE_ARGUMENTS = ("start=", "end=")  # a recorded range: a start-over or VOD playlist


def object_of(target: str, when: float, part_target: float) -> tuple[str, str]:
    """(object kind, object key) of a request target answered at ``when`` (epoch seconds)."""
    path, _, query = target.partition("?")
    if path.endswith(".m3u8"):
        args = query.split("&")
        directives = sorted(arg for arg in args if arg.startswith("_HLS_"))
        if any(arg.startswith("_HLS_msn=") for arg in directives):
            return "playlist-blocking", path + "?" + "&".join(directives)
        multivariant = path.endswith("/main.m3u8")
        recorded = sorted(arg for arg in args if arg.startswith(RANGE_ARGUMENTS))
        if recorded:
            kind = "multivariant" if multivariant else "playlist-dvr"
            key = f"{path}?{'&'.join(recorded)}@{math.floor(when / part_target)}"
            return kind, key
        kind = "multivariant" if multivariant else "playlist-plain"
        return kind, f"{path}@{math.floor(when / part_target)}"
    match = _MEDIA.search(path)
    if match is None:
        return "other", path
    return match.lastgroup or "other", path


class ObjectLedger:
    """Feeds access records of several tier instances into per-tier-kind :class:`TierObjects`."""

    def __init__(self, part_target: float, held_limit: float, show_start: float = 0.0) -> None:
        if part_target <= 0 or held_limit <= 0:
            raise ValueError("part_target and held_limit must be positive")
        self.part_target = part_target
        self.held_limit = held_limit
        self.show_start = show_start  # epoch seconds of t = 0 (per-second rows)
        self.tiers: dict[str, TierObjects] = {}
        # instance → object key → its recent upstream fetches (start, end)
        self._seen: dict[str, dict[str, list[tuple[float, float]]]] = {}
        self.forgotten = 0  # objects dropped from memory (bounded per instance)

    def add(self, kind: str, record: AccessRecord) -> None:
        """One answer of instance ``record.tier`` of tier kind ``kind`` ("edge", "shield")."""
        tier = self.tiers.get(kind)
        if tier is None:
            tier = self.tiers[kind] = TierObjects()
        seen = self._seen.get(record.tier)
        if seen is None:
            seen = self._seen[record.tier] = {}
            tier.instances += 1
        object_kind, key = object_of(record.target, record.time, self.part_target)
        tally = tier.kind(object_kind)
        row = tier.second(math.floor(record.time - self.show_start))
        upstream = len(record.upstream_addrs)
        tally.requests += 1
        tally.upstream += upstream
        tally.bytes_sent += record.bytes_sent
        row[0] += 1
        row[1] += upstream
        row[3] += record.bytes_sent
        tally.stale += record.cache_status in ("STALE", "UPDATING")
        tally.held_past += record.request_time > self.held_limit
        if 400 <= record.status < 500:
            tally.status_4xx += 1
        elif record.status >= 500:
            tally.status_5xx += 1
        fetches = seen.get(key)
        if fetches is None:
            fetches = seen[key] = []
            tally.objects += 1
            row[2] += 1
            if len(seen) > MAX_OBJECTS_PER_INSTANCE:
                self._forget(seen)
        if upstream:
            tally.overlapping += self._fetched(fetches, record)

    @staticmethod
    def _fetched(fetches: list[tuple[float, float]], record: AccessRecord) -> int:
        """Remember the fetch; 1 when it ran while an earlier-logged fetch of the object did."""
        start, end = record.time - record.request_time, record.time
        overlapped = any(s < end and start < e for s, e in fetches)
        fetches.append((start, end))
        if len(fetches) > FETCHES_KEPT:
            del fetches[0]
        return int(overlapped)

    def _forget(self, seen: dict[str, list[tuple[float, float]]]) -> None:
        for key in list(seen)[: len(seen) // 2]:
            del seen[key]
            self.forgotten += 1
