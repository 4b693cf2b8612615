"""A reader of Common Media Client Data (CTA-5004, CMCD v1) as servers receive it.

No maintained Python CMCD parser exists on PyPI (checked 2026-12-04: the package index has
none; the maintained ones are JavaScript, e.g. ``@svta/cml-cmcd``), so this is one pure module
with the spec's key table. ``player.cmcd`` is the encoder of the virtual players; this module is
the strict reader of what any client sends.

Entry points (pure, also the fuzz targets' API; they raise only :class:`CmcdError`):

* :func:`parse_query` — the value of the ``CMCD=`` query argument (still URL-encoded);
* :func:`parse_headers` — a request's headers (the four ``CMCD-*`` headers, any case);
* :func:`parse_payload` — an already decoded payload; :func:`from_target` — a request target.

CTA-5004 §3.1 (transmission modes): "Custom HTTP request headers", "HTTP query argument" — the
query form is one argument named ``CMCD`` whose value is the URL-encoded payload; the header form
spreads the keys over ``CMCD-Object``, ``CMCD-Request``, ``CMCD-Session`` and ``CMCD-Status``.

CTA-5004 §3.2 (syntax): "The data payload … is a comma-separated list of key/value pairs …
Key names are case-sensitive … Custom key names MAY be used, but they MUST carry a hyphenated
prefix … String values MUST be enclosed by double quotes … Token values are unquoted … If the
value is a Boolean true, the key MUST be sent without a value (=true is not sent); a false value
is omitted … All information in the payload is OPTIONAL." Receivers ignore keys they do not
know; here custom and unknown keys are kept (in :attr:`Cmcd.extra`, read by type) and never
checked against a meaning.

Bounds: a payload over :data:`MAX_PAYLOAD` characters, more than :data:`MAX_KEYS` keys, a
string over 64 characters (the spec's limit for ``cid``/``sid``, applied to every string) or an
integer over :data:`MAX_INTEGER` is refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote

from livecast.errors import CmcdError

ValueType = Literal["integer", "decimal", "boolean", "string", "token"]
Header = Literal["CMCD-Object", "CMCD-Request", "CMCD-Session", "CMCD-Status"]
Value = int | float | bool | str

MAX_PAYLOAD = 4096
MAX_KEYS = 64
MAX_STRING = 64
MAX_INTEGER = 10**12
HEADERS: tuple[Header, ...] = ("CMCD-Object", "CMCD-Request", "CMCD-Session", "CMCD-Status")


@dataclass(frozen=True, slots=True)
class KeySpec:
    """One reserved key of CTA-5004 §3.3, Table 1: its type, unit and header, and the spec text."""

    key: str
    name: str
    type: ValueType
    unit: str  # "kbps", "ms", "" …
    header: Header
    text: str  # the spec's description (abridged where long)
    tokens: frozenset[str] = frozenset()  # the allowed values of a token key


# CTA-5004 §3.3, Table 1 (CMCD v1), in the spec's alphabetical order.
KEYS: dict[str, KeySpec] = {
    spec.key: spec
    for spec in (
        KeySpec(
            "br", "Encoded bitrate", "integer", "kbps", "CMCD-Object",
            "The encoded bitrate of the audio or video object being requested. This may not be "
            "known precisely by the player; however, it MAY be estimated based upon playlist/"
            "manifest declarations. If the playlist declares both peak and average bitrate "
            "values, the peak value should be transmitted.",
        ),
        KeySpec(
            "bl", "Buffer length", "integer", "ms", "CMCD-Request",
            "The buffer length associated with the media object being requested. This value "
            "MUST be rounded to the nearest 100 ms.",
        ),
        KeySpec(
            "bs", "Buffer starvation", "boolean", "", "CMCD-Status",
            "Key is included without a value if the buffer was starved at some point between "
            "the prior request and this object request, resulting in the player being in a "
            "rebuffering state and the video or audio playback being stalled.",
        ),
        KeySpec(
            "cid", "Content ID", "string", "", "CMCD-Session",
            "A unique string identifying the current content. Maximum length is 64 characters.",
        ),
        KeySpec(
            "d", "Object duration", "integer", "ms", "CMCD-Object",
            "The playback duration in milliseconds of the object being requested.",
        ),
        KeySpec(
            "dl", "Deadline", "integer", "ms", "CMCD-Request",
            "Deadline from the request time until the first sample of this Segment/Object needs "
            "to be available in order to not create a buffer underrun or any other playback "
            "problems. This value MUST be rounded to the nearest 100ms.",
        ),
        KeySpec(
            "mtp", "Measured throughput", "integer", "kbps", "CMCD-Request",
            "The throughput between client and server, as measured by the client … This value "
            "MUST be rounded to the nearest 100 kbps.",
        ),
        KeySpec(
            "nor", "Next object request", "string", "", "CMCD-Request",
            "Relative path of the next object to be requested.",
        ),
        KeySpec(
            "nrr", "Next range request", "string", "", "CMCD-Request",
            "If the next request will be a partial object request, then this string denotes "
            'the byte range to be requested … "<range-start>-<range-end>".',
        ),
        KeySpec(
            "ot", "Object type", "token", "", "CMCD-Object",
            "The media type of the current object being requested: m = text file, such as a "
            "manifest or playlist; a = audio only; v = video only; av = muxed audio and video; "
            "i = init segment; c = caption or subtitle; tt = ISOBMFF timed text track; "
            "k = cryptographic key, license or certificate; o = other.",
            frozenset({"m", "a", "v", "av", "i", "c", "tt", "k", "o"}),
        ),
        KeySpec(
            "pr", "Playback rate", "decimal", "", "CMCD-Session",
            "1 if real-time, 2 if double speed, 0 if not playing. SHOULD only be sent if not "
            "equal to 1.",
        ),
        KeySpec(
            "rtp", "Requested maximum throughput", "integer", "kbps", "CMCD-Status",
            "The requested maximum throughput that the client considers sufficient for delivery "
            "of the asset. Values MUST be rounded to the nearest 100kbps.",
        ),
        KeySpec(
            "sf", "Streaming format", "token", "", "CMCD-Session",
            "The streaming format that defines the current request: d = MPEG DASH, "
            "h = HTTP Live Streaming (HLS), s = Smooth Streaming, o = other.",
            frozenset({"d", "h", "s", "o"}),
        ),
        KeySpec(
            "sid", "Session ID", "string", "", "CMCD-Session",
            "A GUID identifying the current playback session. A playback session typically "
            "ties together segments belonging to a single media asset. Maximum length is 64 "
            "characters.",
        ),
        KeySpec(
            "st", "Stream type", "token", "", "CMCD-Session",
            "v = all segments are available – e.g., VOD; l = segments become available over "
            "time – e.g., LIVE.",
            frozenset({"v", "l"}),
        ),
        KeySpec(
            "su", "Startup", "boolean", "", "CMCD-Request",
            "Key is included without a value if the object is needed urgently due to startup, "
            "seeking or recovery after a buffer-empty event. The media SHOULD not be rendering "
            "when this request is made.",
        ),
        KeySpec(
            "tb", "Top bitrate", "integer", "kbps", "CMCD-Object",
            "The highest bitrate rendition in the manifest or playlist that the client is "
            "allowed to play, given current codec, licensing and sizing constraints.",
        ),
        KeySpec(
            "v", "CMCD version", "integer", "", "CMCD-Session",
            "The version of this specification used for interpreting the defined key names and "
            "values. If this key is omitted, the client and server MUST interpret the values as "
            "being defined by version 1.",
        ),
    )
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Cmcd:
    """The CMCD of one request, units as sent (kbit/s, ms); None for a key that was absent."""

    br: int | None = None
    bl: int | None = None
    bs: bool = False
    cid: str | None = None
    d: int | None = None
    dl: int | None = None
    mtp: int | None = None
    nor: str | None = None
    nrr: str | None = None
    ot: str | None = None
    pr: float | None = None
    rtp: int | None = None
    sf: str | None = None
    sid: str | None = None
    st: str | None = None
    su: bool = False
    tb: int | None = None
    v: int = 1
    extra: tuple[tuple[str, Value], ...] = ()  # custom and unknown keys, in payload order


_KEY = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# Each pattern below has disjoint alternatives and no two adjacent quantifiers over common
# characters, so matching is linear in the payload (no backtracking blow-up on hostile input).
_KEY_PART = re.compile(r'[ \t]*([^=,"\s]*)[ \t]*')
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)
_BARE = re.compile(r'[^,"]*')
_BLANKS = re.compile(r"[ \t]*")
_INTEGER = re.compile(r"-?[0-9]{1,15}")
_DECIMAL = re.compile(r"-?[0-9]{1,15}(?:\.[0-9]{1,15})?")
_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9_.:/!#$%&'*+^`|~-]{0,63}")
_ESCAPE = re.compile(r"\\(.)", re.S)


def _integer(key: str, raw: str) -> int:
    if not _INTEGER.fullmatch(raw):
        raise CmcdError(f"CMCD key {key!r}: {raw[:40]!r} is not an integer")
    value = int(raw)
    if not 0 <= value <= MAX_INTEGER:
        raise CmcdError(f"CMCD key {key!r}: {value} is out of range 0..{MAX_INTEGER}")
    return value


def _string(key: str, raw: str) -> str:
    if len(raw) < 2 or not raw.startswith('"') or not raw.endswith('"'):
        raise CmcdError(f"CMCD key {key!r}: string values must be in double quotes")
    value = _ESCAPE.sub(r"\1", raw[1:-1])
    if len(value) > MAX_STRING:
        raise CmcdError(f"CMCD key {key!r}: string longer than {MAX_STRING} characters")
    return value


def _value(spec: KeySpec, raw: str | None) -> Value:
    """A reserved key's value, checked against its type in the key table."""
    if spec.type == "boolean":
        if raw is None or raw == "true":  # bare key; "=true" tolerated though not to be sent
            return True
        if raw == "false":
            return False
        raise CmcdError(f"CMCD key {spec.key!r}: a boolean is sent as the bare key")
    if raw is None:
        raise CmcdError(f"CMCD key {spec.key!r}: a value is required")
    if spec.type == "integer":
        return _integer(spec.key, raw)
    if spec.type == "decimal":
        if not _DECIMAL.fullmatch(raw):
            raise CmcdError(f"CMCD key {spec.key!r}: {raw[:40]!r} is not a decimal")
        return float(raw)
    if spec.type == "string":
        return _string(spec.key, raw)
    if raw not in spec.tokens:
        raise CmcdError(f"CMCD key {spec.key!r}: unknown token {raw[:40]!r}")
    return raw


def _extra_value(key: str, raw: str | None) -> Value:
    """A custom or unknown key's value, typed by its syntax alone."""
    if raw is None:
        return True
    if raw.startswith('"'):
        return _string(key, raw)
    if _INTEGER.fullmatch(raw):
        return int(raw)
    if _DECIMAL.fullmatch(raw):
        return float(raw)
    if _TOKEN.fullmatch(raw):
        return raw
    raise CmcdError(f"CMCD key {key!r}: {raw[:40]!r} is no integer, decimal, string or token")


def _end(pattern: re.Pattern[str], text: str, position: int) -> int:
    match = pattern.match(text, position)
    assert match is not None  # patterns that match the empty string
    return match.end()


def _items(payload: str) -> list[tuple[str, str | None]]:
    """``key[=value]`` pairs of a payload, in order (syntax only)."""
    if len(payload) > MAX_PAYLOAD:
        raise CmcdError(f"CMCD payload longer than {MAX_PAYLOAD} characters")
    out: list[tuple[str, str | None]] = []
    position, end = 0, len(payload)
    while position < end:
        start = position
        match = _KEY_PART.match(payload, position)
        assert match is not None  # every part of it may be empty
        key, position, raw = match.group(1), match.end(), None
        if not _KEY.fullmatch(key):
            raise CmcdError(f"CMCD payload: bad key {key[:40]!r} at character {start}")
        if payload.startswith("=", position):
            position = _end(_BLANKS, payload, position + 1)
            value = (_QUOTED if payload.startswith('"', position) else _BARE).match(
                payload, position
            )
            if value is None:
                raise CmcdError(f"CMCD payload: unterminated string at character {position}")
            raw, position = value.group().rstrip(" \t"), _end(_BLANKS, payload, value.end())
        if position < end:
            if payload[position] != ",":
                raise CmcdError(f"CMCD payload: bad syntax at character {position}")
            position += 1
        out.append((key, raw))
        if len(out) > MAX_KEYS:
            raise CmcdError(f"CMCD payload with more than {MAX_KEYS} keys")
    if payload.endswith(","):
        raise CmcdError("CMCD payload: empty key after the last ','")
    return out


def _collect(payload: str, into: dict[str, Value], extra: list[tuple[str, Value]]) -> None:
    extra_keys = {k for k, _ in extra}
    for key, raw in _items(payload):
        if key in into or key in extra_keys:
            raise CmcdError(f"CMCD key {key!r} sent twice")
        spec = KEYS.get(key)
        if spec is None:
            extra.append((key, _extra_value(key, raw)))
            extra_keys.add(key)
        else:
            into[key] = _value(spec, raw)


def _record(values: dict[str, Value], extra: list[tuple[str, Value]]) -> Cmcd:
    return Cmcd(**values, extra=tuple(extra))  # type: ignore[arg-type]  # typed by the table


def parse_payload(payload: str) -> Cmcd:
    """A decoded payload (``br=800,bl=1200,…``) into a record; empty payload → empty record."""
    values: dict[str, Value] = {}
    extra: list[tuple[str, Value]] = []
    _collect(payload, values, extra)
    return _record(values, extra)


def parse_query(value: str) -> Cmcd:
    """The value of the ``CMCD`` query argument (URL-encoded, as sent) into a record."""
    if len(value) > 3 * MAX_PAYLOAD:
        raise CmcdError(f"CMCD query argument longer than {3 * MAX_PAYLOAD} characters")
    try:
        payload = unquote(value.replace("+", " "), errors="strict")
    except UnicodeDecodeError as error:
        raise CmcdError("CMCD query argument: percent-escapes are not UTF-8") from error
    return parse_payload(payload)


def parse_headers(headers: Mapping[str, str]) -> Cmcd | None:
    """The four ``CMCD-*`` headers (names in any case) into one record; None when none is
    there. A key may come in any of them (receivers do not enforce the table's header), but
    only once."""
    values: dict[str, Value] = {}
    extra: list[tuple[str, Value]] = []
    seen = False
    wanted = {name.lower() for name in HEADERS}
    for name, text in headers.items():
        if name.lower() in wanted and text not in ("", "-"):
            seen = True
            _collect(text, values, extra)
    return _record(values, extra) if seen else None


def query_value(target: str) -> str | None:
    """The raw (still URL-encoded) value of the ``CMCD`` argument of a request target."""
    _, question, query = target.partition("?")
    if not question:
        return None
    for argument in query.split("&"):
        if argument.startswith("CMCD="):
            return argument[5:]
    return None


def from_target(target: str) -> Cmcd | None:
    """The CMCD of a request target's query, or None when it has no ``CMCD`` argument."""
    value = query_value(target)
    return None if value is None else parse_query(value)
