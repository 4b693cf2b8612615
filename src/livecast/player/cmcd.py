"""Common Media Client Data (CTA-5004) as the ``CMCD`` query argument.

Syntax (CTA-5004 §3): ``key=value`` pairs joined by ``,``, keys in alphabetical order; strings
(``sid``, ``cid``) in double quotes; tokens (``ot``, ``sf``, ``st``) bare; integers bare; a boolean
true is the bare key (``su``) and false is omitted. As a query argument the whole payload is
URL-encoded (``CMCD=br%3D800%2C…``, as hls.js's ``cmcd-controller`` does with
``encodeURIComponent``). Rounding: ``bl`` to the nearest 100 ms, ``mtp`` to the nearest
100 kbit/s; ``br``/``tb`` are integer kbit/s.

Keys written: br (encoded bitrate of the current rendition), bl (buffer length, ms), bs (buffer
starvation: "Key is included without a value if the buffer was starved at some point between the
prior request and this object request … MUST NOT be sent if the buffer was not starved since the
prior request"), cid (content id), mtp (measured throughput), ot (m manifest/playlist, v video,
a audio, av muxed, i init), sf (h = HLS), sid (session id), st (l = live), su (starting up),
tb (top bitrate).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, quote, unquote, urlsplit

TOKEN_KEYS = frozenset({"ot", "sf", "st"})
STRING_KEYS = frozenset({"sid", "cid"})


@dataclass(frozen=True, slots=True)
class CmcdData:
    sid: str
    cid: str
    br: int | None  # kbit/s
    bl: int | None  # ms
    mtp: int | None  # kbit/s
    ot: str
    su: bool = False
    tb: int | None = None
    bs: bool = False
    sf: str = "h"
    st: str = "l"


def round_to(value: float, step: int) -> int:
    """``value`` rounded to the nearest multiple of ``step`` (halves up)."""
    return int((value + step / 2) // step) * step


def object_type(kind: str, media_type: str) -> str:
    """CMCD ``ot`` of a request kind: m for playlists, i for init, else the track's type."""
    if kind in ("multivariant", "playlist"):
        return "m"
    if kind == "init":
        return "i"
    return media_type


def request_data(
    *,
    session_id: str,
    content_id: str,
    object_type: str,
    bitrate_bps: int | None,
    buffer_s: float,
    measured_bps: float | None,
    top_bitrate_bps: int | None,
    starting: bool,
    starved: bool = False,
) -> CmcdData:
    """CMCD of one request, units and rounding per CTA-5004 (see the module docstring)."""
    return CmcdData(
        sid=session_id,
        cid=content_id,
        br=round(bitrate_bps / 1000) if bitrate_bps is not None else None,
        bl=round_to(buffer_s * 1000, 100),
        mtp=round_to(measured_bps / 1000, 100) if measured_bps is not None else None,
        ot=object_type,
        su=starting,
        bs=starved,
        tb=round(top_bitrate_bps / 1000) if top_bitrate_bps is not None else None,
    )


def _quote_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def encode(data: CmcdData) -> str:
    """The payload, keys in alphabetical order (written out in that order: this runs for every
    request of every virtual viewer)."""
    out = [] if data.bl is None else [f"bl={data.bl}"]
    if data.br is not None:
        out.append(f"br={data.br}")
    if data.bs:
        out.append("bs")
    out.append(f"cid={_quote_string(data.cid)}")
    if data.mtp is not None:
        out.append(f"mtp={data.mtp}")
    out.append(f"ot={data.ot},sf={data.sf},sid={_quote_string(data.sid)},st={data.st}")
    if data.su:
        out.append("su")
    if data.tb is not None:
        out.append(f"tb={data.tb}")
    return ",".join(out)


# encodeURIComponent: everything but A–Z a–z 0–9 - _ . ! ~ * ' ( ) is percent-encoded; quote()
# with safe="" is the same apart from ! ~ * ' ( ), which it encodes too (both are valid).
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")
_ESCAPE_ASCII = {byte: f"%{byte:02X}" for byte in range(128) if byte not in _UNRESERVED}


def url_encode(payload: str) -> str:
    """``quote(payload, safe="")``, at C speed for the ASCII payloads CMCD has."""
    if payload.isascii():
        return payload.translate(_ESCAPE_ASCII)
    return quote(payload, safe="")


def with_cmcd(url: str, payload: str) -> str:
    """``url`` with ``CMCD=<url-encoded payload>`` appended to its query."""
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}CMCD={url_encode(payload)}"


class CmcdQuery:
    """The ``CMCD=…`` query argument of one session, built straight into its URL-encoded form:
    the session's strings are quoted and encoded once, only the numbers change per request.
    ``query(request_data(...))`` equals ``"CMCD=" + url_encode(encode(...))``."""

    __slots__ = ("_cid", "_sid")

    def __init__(self, session_id: str, content_id: str) -> None:
        self._cid = url_encode(f",cid={_quote_string(content_id)}")
        self._sid = url_encode(f",sid={_quote_string(session_id)}")

    def query(
        self,
        *,
        object_type: str,
        bitrate_bps: int | None,
        buffer_s: float,
        measured_bps: float | None,
        top_bitrate_bps: int | None,
        starting: bool,
        starved: bool = False,
    ) -> str:
        """Same inputs and rounding as :func:`request_data`."""
        bl = round_to(buffer_s * 1000, 100)
        out = f"CMCD=bl%3D{bl}"
        if bitrate_bps is not None:
            out += f"%2Cbr%3D{round(bitrate_bps / 1000)}"
        if starved:
            out += "%2Cbs"
        out += self._cid
        if measured_bps is not None:
            out += f"%2Cmtp%3D{round_to(measured_bps / 1000, 100)}"
        out += f"%2Cot%3D{object_type}%2Csf%3Dh{self._sid}%2Cst%3Dl"
        if starting:
            out += "%2Csu"
        if top_bitrate_bps is not None:
            out += f"%2Ctb%3D{round(top_bitrate_bps / 1000)}"
        return out


def with_query(url: str, argument: str) -> str:
    """``url`` with one more (already encoded) query argument."""
    return f"{url}{'&' if '?' in url else '?'}{argument}"


# One key=value item: quoted strings may hold commas and backslash escapes (CTA-5004 §3.2:
# "String values MUST be enclosed by double quotes"), so the payload is not split on every ",".
_ITEM = re.compile(r'(?:"(?:[^"\\]|\\.)*"?|[^,"])+', re.S)
_ESCAPE = re.compile(r"\\(.)", re.S)


def parse(payload: str) -> dict[str, str | int | bool]:
    """A payload back into values: strings unquoted, integers as int, bare keys True."""
    out: dict[str, str | int | bool] = {}
    for item in _ITEM.findall(payload):
        key, eq, value = item.partition("=")
        if not eq:
            out[key] = True
        elif value.startswith('"'):
            out[key] = _ESCAPE.sub(r"\1", value[1:-1])
        elif key in TOKEN_KEYS:
            out[key] = value
        else:
            digits = value.removeprefix("-")
            out[key] = int(value) if digits.isascii() and digits.isdigit() else value
    return out


def from_url(url: str) -> dict[str, str | int | bool] | None:
    """The CMCD data carried by ``url``'s query, or None."""
    values = parse_qs(urlsplit(url).query, keep_blank_values=True).get("CMCD")
    return parse(values[0]) if values else None


def raw_payload(url: str) -> str | None:
    """The decoded CMCD payload string of ``url`` (for checking key order)."""
    for item in urlsplit(url).query.split("&"):
        if item.startswith("CMCD="):
            return unquote(item[5:])
    return None
