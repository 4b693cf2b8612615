"""HLS attribute lists (draft-pantos-hls-rfc8216bis §4.2) — parse and render.

"An attribute-list is a comma-separated list of attribute/value pairs with no whitespace.
 An attribute/value pair has the following syntax: AttributeName=AttributeValue
 ... An AttributeName is an unquoted string containing characters from the set [A-Z], [0-9],
 and '-'."

Value types used here: decimal-integer, decimal-floating-point, quoted-string ("..." without
CR, LF or '"'), enumerated-string (unquoted), decimal-resolution (<w>x<h>).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from livecast.errors import PlaylistError

_PAIR = re.compile(r'([A-Z0-9-]+)=("[^"\r\n]*"|[^",]*)(?:,|$)')


def parse_attributes(text: str) -> dict[str, str]:
    """Attribute list → {name: raw value}; quoted strings keep their quotes (see ``unquote``)."""
    out: dict[str, str] = {}
    pos = 0
    while pos < len(text):
        match = _PAIR.match(text, pos)
        if match is None:
            raise PlaylistError(f"malformed attribute list at {text[pos:]!r}")
        name, value = match.group(1), match.group(2)
        if name in out:
            raise PlaylistError(f"attribute {name} appears twice")
        out[name] = value
        pos = match.end()
    return out


def unquote(value: str) -> str:
    if len(value) < 2 or value[0] != '"' or value[-1] != '"':
        raise PlaylistError(f"expected a quoted-string, got {value!r}")
    return value[1:-1]


def quote(value: str) -> str:
    if any(c in value for c in '"\r\n'):
        raise PlaylistError(f"a quoted-string cannot contain quotes or line breaks: {value!r}")
    return f'"{value}"'


def parse_int(value: str, name: str) -> int:
    # "decimal-integer: an unquoted string of characters from the set [0..9]" (§4.2); str.isdigit
    # alone also accepts "²" or "١", which int() then refuses with a ValueError
    if not (value.isascii() and value.isdigit()):
        raise PlaylistError(f"{name} must be a decimal-integer, got {value!r}")
    return int(value)


def parse_float(value: str, name: str) -> float:
    try:
        return float(value)
    except ValueError as exc:
        raise PlaylistError(f"{name} must be a decimal-floating-point, got {value!r}") from exc


def fmt_float(value: float, digits: int = 5) -> str:
    """Shortest decimal form with at most ``digits`` decimals (no exponent, no trailing zeros)."""
    text = f"{value:.{digits}f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def parse_bool(value: str, name: str) -> bool:
    if value not in ("YES", "NO"):
        raise PlaylistError(f"{name} must be YES or NO, got {value!r}")
    return value == "YES"


def render_attributes(pairs: list[tuple[str, str]]) -> str:
    return ",".join(f"{name}={value}" for name, value in pairs)


PDT_SLACK = 5e-5  # seconds; float spacing is 3e-5 s at year 9999 (datetime's last year)
# The instants a date-time can stand for in UTC: a parsed "0001-01-01T00:00:00+05:00" is in
# year 0 and "9999-12-31T23:59:59-05:00" in year 10000, which datetime cannot hold.
PDT_FIRST = datetime(1, 1, 1, tzinfo=UTC).timestamp()
PDT_LAST = datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC).timestamp()


def format_pdt(epoch: float) -> str:
    """EXT-X-PROGRAM-DATE-TIME value: ISO 8601 with milliseconds, UTC."""
    # Milliseconds are truncated, after a 50 µs allowance for binary floating point: a parsed
    # "…59.999Z" far from 1970 is 59.998999…, which plain truncation writes back as .998
    if not PDT_FIRST <= epoch <= PDT_LAST:
        raise PlaylistError(f"{epoch} s is outside years 1–9999 of a program date-time")
    moment = datetime.fromtimestamp(epoch + PDT_SLACK, tz=UTC)
    # %Y is not zero-padded below year 1000 on every platform; ISO 8601 wants four digits
    return (
        f"{moment.year:04d}"
        + moment.strftime("-%m-%dT%H:%M:%S.")
        + f"{moment.microsecond // 1000:03d}Z"
    )


def parse_pdt(text: str) -> float:
    try:
        epoch = datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError as exc:
        raise PlaylistError(f"bad EXT-X-PROGRAM-DATE-TIME {text!r}") from exc
    if not PDT_FIRST <= epoch <= PDT_LAST:
        raise PlaylistError(f"EXT-X-PROGRAM-DATE-TIME {text!r} is outside years 1–9999 in UTC")
    return epoch
