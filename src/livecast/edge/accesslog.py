"""The edges' access log: the format nginx writes and a pure reader of it (per-tier figures).

Every edge and shield logs one tab-separated line per request in :data:`LOG_FORMAT` (rendered
into each config by ``edge.nginx_conf``). The tier's name is a literal in its format, so lines of
several tiers can be tallied together and still be told apart. The four CMCD request headers
(CTA-5004's header form; the query form is part of ``$request_uri``) close each line, read by
``livecast.qoe.edge_logs``; lines of logs written before them (12 fields) are still read.

nginx doc, ``log_format``: "escape=default: characters “"”, “\\”, and other characters with
values less than 32 (0.7.0) or above 126 (1.1.6) will be escaped as “\\xXX”." — so a tab never
occurs inside a field. An empty or unset variable is logged as "-".

``$upstream_cache_status`` (nginx doc): "keeps the status of accessing a response cache (0.8.3).
The status can be either “MISS”, “BYPASS”, “EXPIRED”, “STALE”, “UPDATING”, “REVALIDATED”, or
“HIT”." HIT, STALE and UPDATING are answered from the cache without asking the upstream for this
request; the others asked it (REVALIDATED with a conditional request).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

# (name, nginx variable) in log order; the tier name is substituted by the renderer.
FIELDS: tuple[tuple[str, str], ...] = (
    ("time", "$msec"),
    ("tier", "{tier}"),
    ("method", "$request_method"),
    ("target", "$request_uri"),
    ("status", "$status"),
    ("bytes_sent", "$body_bytes_sent"),
    ("request_time", "$request_time"),
    ("cache_status", "$upstream_cache_status"),
    ("upstream_addr", "$upstream_addr"),
    ("upstream_status", "$upstream_status"),
    ("upstream_response_time", "$upstream_response_time"),
    ("worker", "$pid"),
    # CTA-5004 header form of CMCD (the query form is in $request_uri): "-" when not sent.
    ("cmcd_request", "$http_cmcd_request"),
    ("cmcd_object", "$http_cmcd_object"),
    ("cmcd_status", "$http_cmcd_status"),
    ("cmcd_session", "$http_cmcd_session"),
)
CMCD_HEADERS = ("CMCD-Request", "CMCD-Object", "CMCD-Status", "CMCD-Session")
_LEGACY_FIELDS = len(FIELDS) - len(CMCD_HEADERS)  # lines written before the CMCD fields
FORMAT_NAME = "livecast_edge"
FROM_CACHE = frozenset({"HIT", "STALE", "UPDATING"})


def log_format(tier: str) -> str:
    """The ``log_format`` string (without quotes) for a tier named ``tier``."""
    if not tier or any(c in tier for c in "\t\n'\"\\ {}$;"):
        raise ValueError(f"unusable tier name {tier!r}")
    return "\\t".join(variable.replace("{tier}", tier) for _, variable in FIELDS)


@dataclass(frozen=True, slots=True)
class AccessRecord:
    time: float  # seconds since the epoch, when the request finished
    tier: str  # "edge-0", "shield", …
    method: str
    target: str  # the request URI as the client sent it, query included
    status: int
    bytes_sent: int
    request_time: float  # seconds from the first request byte to the last response byte
    cache_status: str | None  # HIT, MISS, … or None when the cache was not involved
    upstream_addrs: tuple[str, ...]  # one per attempt (failover), empty when not asked
    upstream_status: str | None
    upstream_response_time: float | None  # total over the attempts
    worker: int  # pid of the nginx worker that answered
    # The four CMCD request headers as sent (header name → value), only those present; the
    # value is nginx-escaped ("\\xXX" for '"' and '\\'), see :attr:`cmcd_headers`.
    cmcd_logged: tuple[tuple[str, str], ...] = ()

    @property
    def from_cache(self) -> bool:
        return self.cache_status in FROM_CACHE

    @property
    def path(self) -> str:
        return self.target.partition("?")[0]

    @property
    def cmcd_headers(self) -> dict[str, str]:
        """The CMCD headers of the request, unescaped (nginx logs '"' as ``\\x22``)."""
        return {name: _unescape(value) for name, value in self.cmcd_logged}


def _unescape(value: str) -> str:
    """nginx ``escape=default`` undone: ``\\xXX`` → the character."""
    if "\\x" not in value:
        return value
    raw = re.sub(r"\\x([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), value)
    return raw.encode("latin-1", "replace").decode("utf-8", "replace")  # logged as ASCII


def _optional(value: str) -> str | None:
    return None if value in ("", "-") else value


def _attempts(value: str) -> list[str]:
    """Values of ``$upstream_*`` variables: ", " between servers, " : " between groups."""
    return [v for v in value.replace(" : ", ", ").split(", ") if v not in ("", "-")]


def parse_access_log_line(line: str) -> AccessRecord | None:
    """One log line → a record; None for a line that is not in :data:`LOG_FORMAT`."""
    parts = line.rstrip("\r\n").split("\t")
    if len(parts) not in (len(FIELDS), _LEGACY_FIELDS):
        return None
    (stamp, tier, method, target, status, sent, rtime, cache, addrs, ustatus, utime, pid) = parts[
        :_LEGACY_FIELDS
    ]
    logged = tuple(
        (name, value)
        for name, value in zip(CMCD_HEADERS, parts[_LEGACY_FIELDS:], strict=False)
        if value not in ("", "-")
    )
    try:
        times = [float(t) for t in _attempts(utime)]
        return AccessRecord(
            time=float(stamp),
            tier=tier,
            method=method,
            target=target,
            status=int(status),
            bytes_sent=int(sent),
            request_time=float(rtime),
            cache_status=_optional(cache),
            upstream_addrs=tuple(_attempts(addrs)),
            upstream_status=_optional(ustatus),
            upstream_response_time=sum(times) if times else None,
            worker=int(pid),
            cmcd_logged=logged,
        )
    except ValueError:
        return None


@dataclass(frozen=True)
class Tally:
    """Requests of one or more tiers, by cache status."""

    requests: int = 0
    by_status: Mapping[str, int] = field(default_factory=dict)  # "-" when no cache status
    upstream_requests: int = 0  # attempts sent upstream, failover retries included
    malformed: int = 0

    @property
    def from_cache(self) -> int:
        return sum(n for status, n in self.by_status.items() if status in FROM_CACHE)

    @property
    def hit_ratio(self) -> float:
        """Share of the cacheable requests answered from the cache (0 when there were none)."""
        cached = sum(n for status, n in self.by_status.items() if status != "-")
        return self.from_cache / cached if cached else 0.0


def tally(
    lines: Iterable[str], where: Callable[[AccessRecord], bool] | None = None
) -> dict[str, Tally]:
    """Count log lines per tier (optionally only the records ``where`` accepts)."""
    requests: Counter[str] = Counter()
    statuses: dict[str, Counter[str]] = {}
    upstream: Counter[str] = Counter()
    malformed = 0
    for line in lines:
        if not line.strip():
            continue
        record = parse_access_log_line(line)
        if record is None:
            malformed += 1
            continue
        if where is not None and not where(record):
            continue
        requests[record.tier] += 1
        statuses.setdefault(record.tier, Counter())[record.cache_status or "-"] += 1
        upstream[record.tier] += len(record.upstream_addrs)
    tiers = sorted(requests) or ([""] if malformed else [])
    return {
        tier: Tally(
            requests=requests[tier],
            by_status=dict(statuses.get(tier, {})),
            upstream_requests=upstream[tier],
            malformed=malformed,
        )
        for tier in tiers
    }
