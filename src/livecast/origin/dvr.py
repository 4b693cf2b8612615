"""Start-over (DVR) query arguments: ``start`` and ``end`` of a recorded range — pure.

``…/main.m3u8?start=<time>[&end=<time>]`` and ``…/<rendition>/index.m3u8?start=…[&end=…]`` ask for
a playlist over the recording instead of the live window, as AWS MediaPackage's start/end
parameters do. ``<time>`` is RFC 3339 (``2026-12-04T20:00:00Z``, an offset, fractions) or Unix
seconds. A malformed or repeated argument is a 400 with the reason; a range the recording does not
cover is the packager's 404 (``LiveRendition.recorded_playlist``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import unquote_plus

from livecast.errors import RequestError

ARGUMENTS = ("start", "end")
LATEST = 4102444800.0  # 2100-01-01: later times are typos, not shows


@dataclass(frozen=True, slots=True)
class RecordedRange:
    start: float | None = None  # Unix seconds
    end: float | None = None

    def query(self) -> str:
        """The canonical query string (Unix seconds, milliseconds): one cache key per range."""
        args = [
            f"{name}={value:.3f}"
            for name, value in zip(ARGUMENTS, (self.start, self.end), strict=True)
            if value is not None
        ]
        return "&".join(args)


def parse_time(name: str, text: str) -> float:
    """Unix seconds from RFC 3339 or a decimal number of seconds."""
    try:
        value = float(text)
    except ValueError:
        value = _rfc3339(name, text)
    if not math.isfinite(value) or not 0 < value < LATEST:
        raise RequestError(400, f"{name} is out of range: {text!r}")
    return value


def _rfc3339(name: str, text: str) -> float:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise RequestError(
            400, f"{name} must be RFC 3339 (2026-12-04T20:00:00Z) or Unix seconds, got {text!r}"
        ) from None
    if moment.tzinfo is None:
        raise RequestError(400, f"{name} needs a time zone (Z or ±hh:mm): {text!r}")
    return moment.timestamp()


def parse_range(query: str) -> RecordedRange | None:
    """The ``start``/``end`` arguments of a raw query string; None when neither is there."""
    found: dict[str, str] = {}
    for pair in query.split("&") if query else ():
        name, _, value = pair.partition("=")
        if name not in ARGUMENTS:
            continue
        if name in found:
            raise RequestError(400, f"{name} given more than once")
        found[name] = unquote_plus(value)
    if not found:
        return None
    if "start" not in found:
        raise RequestError(400, "end without start")
    start = parse_time("start", found["start"])
    end = parse_time("end", found["end"]) if "end" in found else None
    if end is not None and end <= start:
        raise RequestError(400, "end must be after start")
    return RecordedRange(start, end)
