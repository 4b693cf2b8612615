"""The edges' access logs into a :class:`~livecast.qoe.aggregate.QoeAggregator`: records to CMCD
requests (pure), a bounded incremental tail of the log files, and the whole-run figures of a
rehearsal's kept logs.

Each edge logs ``$request_uri`` (the query form, ``CMCD=…``) and the four ``CMCD-*`` headers
(``edge.accesslog.FIELDS``); a request carrying both forms is read from the query (players use
one). Only the edges' records count: a shield's (``shield``) are the edges' misses again.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path

from livecast.edge.accesslog import AccessRecord, parse_access_log_line
from livecast.errors import CmcdError
from livecast.origin.streams import stream_of
from livecast.qoe.aggregate import CmcdRequest, QoeAggregator, RunFigures
from livecast.qoe.cmcd import Cmcd, from_target, parse_headers

ACCESS_LOGS_DIR = "access-logs"  # where a rehearsal keeps its tiers' logs, in its --out directory
# Each poll runs on the origin's event loop (before a /metrics answer): ≈ 850 lines per log at
# most (≈ 35 ms); a log further behind than MAX_BACKLOG is skipped ahead to its newest
# MAX_READ bytes (counted in skipped_bytes): the figures stay current, a sample under a load.
MAX_READ = 256 * 1024  # bytes read per log per poll (the rest waits for the next poll)
MAX_BACKLOG = 4 * 1024 * 1024  # bytes a log may be behind before the tail skips ahead


def cmcd_of(record: AccessRecord) -> Cmcd | None:
    """The CMCD a logged request carried (query form first, else headers); None without any;
    :class:`CmcdError` when it cannot be read."""
    found = from_target(record.target)
    if found is None and record.cmcd_logged:
        found = parse_headers(record.cmcd_headers)
    return found


def request_of(record: AccessRecord) -> CmcdRequest | None:
    """A logged request as a CMCD request; None when it carried no CMCD or is for no event."""
    cmcd = cmcd_of(record)
    event = stream_of(record.path) if cmcd is not None else None
    if cmcd is None or event is None:
        return None
    return CmcdRequest(
        started=record.time - record.request_time,
        finished=record.time,
        event=event,
        status=record.status,
        bytes_sent=record.bytes_sent,
        cmcd=cmcd,
    )


def is_edge(tier: str) -> bool:
    """Edge tiers are ``edge-<n>``; the shield is not one."""
    return tier.startswith("edge-")


def feed_lines(lines: Iterable[str], aggregator: QoeAggregator) -> int:
    """Fold the edge records among ``lines`` into ``aggregator``; the number of CMCD requests.
    Unreadable CMCD is counted in ``aggregator.malformed``."""
    count = 0
    for line in lines:
        record = parse_access_log_line(line) if line else None
        if record is None or not is_edge(record.tier):
            continue
        try:
            request = request_of(record)
        except CmcdError:
            aggregator.malformed += 1
            continue
        if request is not None:
            aggregator.add(request)
            count += 1
    return count


class AccessLogTail:
    """Follows access log files by offset: each poll reads what was appended since (at most
    :data:`MAX_READ` bytes per file), complete lines only. A file that shrank was rotated or
    truncated: it is read again from its start."""

    def __init__(self, logs: Mapping[str, Path], aggregator: QoeAggregator) -> None:
        self.logs = dict(logs)
        self.aggregator = aggregator
        self._offsets = dict.fromkeys(self.logs, 0)
        self._partial = dict.fromkeys(self.logs, b"")
        self.skipped_bytes = 0  # skipped ahead over, a log being further behind than MAX_BACKLOG

    def poll(self) -> int:
        """Read the new lines of every log; the number of CMCD requests folded in."""
        count = 0
        for name, path in self.logs.items():
            chunk = b""
            with contextlib.suppress(FileNotFoundError), open(path, "rb") as log:
                size = log.seek(0, 2)
                if size < self._offsets[name]:
                    self._offsets[name], self._partial[name] = 0, b""
                if size - self._offsets[name] > MAX_BACKLOG:
                    self.skipped_bytes += size - MAX_READ - self._offsets[name]
                    self._offsets[name] = size - MAX_READ
                    self._partial[name] = b"\x00"  # mid-line: the first line read is cut
                log.seek(self._offsets[name])
                chunk = log.read(MAX_READ)
            self._offsets[name] += len(chunk)
            complete, _, rest = (self._partial[name] + chunk).rpartition(b"\n")
            self._partial[name] = rest[-MAX_READ:]  # a line longer than this is not one of ours
            if complete:
                text = complete.decode("utf-8", "replace")
                count += feed_lines(text.split("\n"), self.aggregator)
        return count


def keep_access_logs(logs: Mapping[str, Path], into: Path) -> dict[str, Path]:
    """Copy each tier's log to ``into/<tier>.log`` (a rehearsal keeps them beside its results);
    the copies that exist."""
    into.mkdir(parents=True, exist_ok=True)
    kept: dict[str, Path] = {}
    for name, path in logs.items():
        target = into / f"{name}.log"
        with contextlib.suppress(FileNotFoundError):
            shutil.copyfile(path, target)
            kept[name] = target
    return kept


def run_qoe(logs: Iterable[Path]) -> tuple[dict[str, RunFigures], QoeAggregator]:
    """The whole-run CMCD QoE per event of the edges' access logs ``logs`` (e.g. a rehearsal's
    ``<out>/access-logs/edge-*.log``), and the aggregator (its malformed count, sessions)."""
    aggregator = QoeAggregator()
    for path in logs:
        with open(path, encoding="utf-8", errors="replace") as log:
            feed_lines((line.rstrip("\n") for line in log), aggregator)
    return aggregator.run_figures(), aggregator
