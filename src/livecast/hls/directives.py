"""Playlist Delivery Directives (draft-pantos-hls-rfc8216bis §6.2.5) — parsing and the blocking
rules, pure.

  "_HLS_msn=<M>: ... the Server MUST hold the request until a Playlist contains a Media Segment
   with a Media Sequence Number of M or later or it times out."
  "_HLS_part=<N>: ... used in combination with _HLS_msn to indicate that the server MUST hold the
   request until a Playlist contains Partial Segment N of Media Sequence Number of M or later ...
   A Client MUST NOT request a Playlist with an _HLS_part directive without an _HLS_msn directive."
  "If the _HLS_msn is greater than the Media Sequence Number of the last Media Segment in the
   current Playlist plus two, or if the _HLS_part exceeds the last Partial Segment in the current
   Playlist by the Advance Part Limit, then the server SHOULD immediately return Bad Request."
  "The Advance Part Limit is 3 divided by the Part Target Duration if the Part Target Duration is
   less than 1 second, or 3 otherwise."
  "If the Playlist contains an EXT-X-ENDLIST tag, the server MUST ignore ... directives."
  "_HLS_skip=YES|v2: ... the Server ... SHOULD produce a Playlist Delta Update."
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from urllib.parse import unquote_plus

from livecast.errors import RequestError

MAX_DIRECTIVE_VALUE = 2**53  # far beyond any real MSN; bigger values are malformed input
_SKIP_VALUES = ("YES", "v2")


@dataclass(frozen=True, slots=True)
class Directives:
    msn: int | None = None
    part: int | None = None
    skip: str | None = None  # "YES" or "v2"

    @property
    def blocking(self) -> bool:
        return self.msn is not None


def _parse_index(name: str, value: str) -> int:
    if not value.isascii() or not value.isdigit() or len(value) > 16:
        raise RequestError(400, f"{name} must be a non-negative decimal integer, got {value!r}")
    number = int(value)
    if number > MAX_DIRECTIVE_VALUE:
        raise RequestError(400, f"{name} is out of range: {value}")
    return number


def parse_directives(query: str) -> Directives:
    """Read ``_HLS_msn``, ``_HLS_part`` and ``_HLS_skip`` from a raw query string.

    Other arguments (CMCD, cache busters) are ignored. Malformed or repeated directives, or
    ``_HLS_part`` without ``_HLS_msn``, raise :class:`RequestError` with status 400.
    """
    found: dict[str, str] = {}
    for pair in query.split("&") if query else ():
        name, _, value = pair.partition("=")
        if not name.startswith("_HLS_"):
            continue
        if name in found:
            raise RequestError(400, f"{name} given more than once")
        found[name] = unquote_plus(value)
    msn = _parse_index("_HLS_msn", found["_HLS_msn"]) if "_HLS_msn" in found else None
    part = _parse_index("_HLS_part", found["_HLS_part"]) if "_HLS_part" in found else None
    skip = found.get("_HLS_skip")
    if part is not None and msn is None:
        raise RequestError(400, "_HLS_part without _HLS_msn")
    if skip is not None and skip not in _SKIP_VALUES:
        raise RequestError(400, f"_HLS_skip must be YES or v2, got {skip!r}")
    return Directives(msn, part, skip)


def advance_part_limit(part_target: float) -> int:
    """§6.2.5.2: 3 / PART-TARGET when the part target is under one second, else 3."""
    return math.floor(3 / part_target) if part_target < 1 else 3


@dataclass(frozen=True, slots=True)
class LivePosition:
    """Where a rendition is now: its newest segment MSN (complete or being produced) and part."""

    last_msn: int
    last_part: int  # index of the newest part in ``last_msn``; -1 if it has none yet
    parts_per_segment: int  # nominal, for bounding absurd part indexes


def check_blocking_request(d: Directives, pos: LivePosition, part_target: float) -> None:
    """Refuse at once (400) what the spec says can never be satisfied in time."""
    if d.msn is None:
        return
    if d.msn > pos.last_msn + 2:
        raise RequestError(
            400, f"_HLS_msn={d.msn} is more than two segments past the last one ({pos.last_msn})"
        )
    if d.part is None:
        return
    limit = advance_part_limit(part_target)
    if d.msn == pos.last_msn and d.part - pos.last_part > limit:
        raise RequestError(
            400,
            f"_HLS_part={d.part} is more than {limit} parts past the last part "
            f"({pos.last_msn}.{pos.last_part})",
        )
    if d.part >= pos.parts_per_segment + limit:
        raise RequestError(400, f"_HLS_part={d.part} is past any segment's parts")
