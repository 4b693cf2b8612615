"""CMCD targets (CTA-5004, Common Media Client Data) — the player's encoder and its reader.

CTA-5004 §3.2: "the data payload … is a comma-separated list of key/value pairs … Keys are
case-sensitive … String values MUST be enclosed by double quotes … Token values are unquoted";
"If the value is TRUE [for a Boolean key], the key MUST be sent without a value"; §3.1 (query
argument mode): "the data payload MUST be URL-encoded" under the argument name ``CMCD``.

``cmcd.player`` draws request data (session and content ids with commas, quotes, backslashes,
``=`` and non-ASCII; bitrates, buffer lengths, throughputs at their edges) and checks the
encoder against its reader: ``parse(encode(d))`` gives back every value sent; the URL-encoded
fast path :class:`CmcdQuery` equals ``"CMCD=" + url_encode(encode(...))``; and ``from_url`` of a
URL carrying the argument reads the same values.

``cmcd.qoe`` fuzzes the strict reader of what any client sends (``livecast.qoe.cmcd``): payloads
of reserved keys (CTA-5004 §3.3 Table 1), custom (``com.example-x``) and malformed keys, with
values of every type and of the wrong type (negative, 16-digit and 10¹² + 1 integers, decimals,
quoted strings with escapes and commas, 65-character strings, tokens, ``=true``/``=false``, bare
keys), whitespace, repeats, trailing commas; read as a payload, as the URL-encoded ``CMCD`` query
argument (also with bad percent-escapes and ``+``), or spread over the four ``CMCD-*`` headers in
any case. Properties: only :class:`~livecast.errors.CmcdError` escapes; an accepted record's
values have their key's type and bounds; and the players' own ``encode`` output is always
accepted and read back to the values the player sent.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st

from livecast.errors import CmcdError
from livecast.fuzzing.core import Target, stateless, violation
from livecast.player.cmcd import (
    CmcdData,
    CmcdQuery,
    encode,
    from_url,
    parse,
    request_data,
    url_encode,
    with_cmcd,
)
from livecast.qoe import cmcd as qoe

ids = st.sampled_from(("s1", "a,b", 'a"b', "a\\b", "a=b", "é", "", " ", '\\"', "main")) | st.text(
    max_size=16
)
rates = st.none() | st.integers(0, 10**10) | st.sampled_from((0, 1, 999, 1000, 1499, 1500))


@dataclass(frozen=True)
class CmcdInput:
    """What one player request reports, in the units :func:`request_data` takes."""

    session_id: str
    content_id: str
    object_type: str
    bitrate_bps: int | None
    buffer_s: float
    measured_bps: int | None
    top_bitrate_bps: int | None
    starting: bool


cmcd_inputs = st.builds(
    CmcdInput,
    ids,
    ids,
    st.sampled_from(("m", "i", "v", "a", "av")),
    rates,
    st.floats(0, 3600, allow_nan=False) | st.sampled_from((0.0, 0.049, 0.05, 0.15, 1e-9)),
    rates,
    rates,
    st.booleans(),
)


def expected(data: CmcdData) -> dict[str, str | int | bool]:
    """The values a reader must get back from ``encode(data)``."""
    out: dict[str, str | int | bool] = {
        "cid": data.cid,
        "sid": data.sid,
        "ot": data.ot,
        "sf": data.sf,
        "st": data.st,
    }
    for key, value in (("bl", data.bl), ("br", data.br), ("mtp", data.mtp), ("tb", data.tb)):
        if value is not None:
            out[key] = value
    if data.su:
        out["su"] = True
    return out


def run_player(item: CmcdInput) -> None:
    """Encode, read back, compare; the fast path and the URL form (see the module)."""
    data = request_data(
        session_id=item.session_id,
        content_id=item.content_id,
        object_type=item.object_type,
        bitrate_bps=item.bitrate_bps,
        buffer_s=item.buffer_s,
        measured_bps=item.measured_bps,
        top_bitrate_bps=item.top_bitrate_bps,
        starting=item.starting,
    )
    payload = encode(data)
    violation(parse(payload) == expected(data), f"parse(encode()) differs for {payload!r}")
    fast = CmcdQuery(item.session_id, item.content_id).query(
        object_type=item.object_type,
        bitrate_bps=item.bitrate_bps,
        buffer_s=item.buffer_s,
        measured_bps=item.measured_bps,
        top_bitrate_bps=item.top_bitrate_bps,
        starting=item.starting,
    )
    violation(fast == "CMCD=" + url_encode(payload), f"CmcdQuery differs: {fast!r}")
    url = with_cmcd("/live/720p/index.m3u8?_HLS_msn=3", payload)
    violation(from_url(url) == expected(data), f"from_url differs for {url!r}")


RESERVED = tuple(qoe.KEYS)
RAW_VALUES = (
    None, "0", "800", "-1", "1000000000000", "1000000000001", "9999999999999999", "1.5", "-0.5",
    "1e3", "²", "", "true", "false", "TRUE", '"s1"', '""', '"a,b"', '"a\\"b"', '"x', 'x"',
    '"' + "a" * 65 + '"', "m", "v", "a", "av", "i", "h", "l", "d", "s", "tok/en", "a b", "=",
)  # fmt: skip


@st.composite
def payloads(draw: st.DrawFn) -> str:
    keys = st.sampled_from(RESERVED) | st.sampled_from(("com.example-x", "x-y", "", "BR", "b r"))
    items = draw(
        st.lists(
            st.tuples(
                keys | st.text(max_size=6), st.sampled_from(RAW_VALUES) | st.text(max_size=8)
            ),
            max_size=8,
        )
    )
    space = draw(st.sampled_from(("", "", " ")))
    text = ",".join(k if v is None else f"{k}{space}={space}{v}" for k, v in items)
    return text + draw(st.sampled_from(("", "", ",", " ")))


@dataclass(frozen=True)
class QoeInput:
    """A payload, and how it reaches the reader: ``payload``, ``query`` or ``headers``."""

    payload: str
    form: str
    header_names: tuple[str, ...] = ()
    escape: str = ""  # query form: appended raw (bad percent-escapes, ``+``)
    player: CmcdInput | None = None  # an encoder input instead of a drawn payload


qoe_inputs = st.one_of(
    st.builds(
        QoeInput,
        payloads(),
        st.sampled_from(("payload", "query", "headers")),
        st.lists(
            st.sampled_from((*qoe.HEADERS, "cmcd-object", "CMCD-REQUEST", "X-Other")), max_size=4
        ).map(tuple),
        st.sampled_from(("", "", "%", "%zz", "%ff", "%C2%B2", "+", "%2C")),
    ),
    st.builds(QoeInput, st.just(""), st.just("player"), player=cmcd_inputs),
)

TYPES = {"integer": int, "decimal": float, "boolean": bool, "string": str, "token": str}


def _check_record(record: qoe.Cmcd) -> None:
    for key, spec in qoe.KEYS.items():
        value = getattr(record, key)
        if value is None:
            continue
        wanted = TYPES[spec.type]
        violation(type(value) is wanted, f"{key}={value!r} is not a {spec.type}")
        if wanted is int:
            violation(0 <= value <= qoe.MAX_INTEGER, f"{key}={value} is out of bounds")
        if wanted is str:
            violation(len(value) <= qoe.MAX_STRING, f"{key} is longer than {qoe.MAX_STRING}")


def run_qoe(item: QoeInput) -> None:
    """Read a payload in its form; or read back the players' encoding (see the module)."""
    if item.player is not None:
        data = request_data(
            session_id=item.player.session_id[: qoe.MAX_STRING] or "s",
            content_id=item.player.content_id[: qoe.MAX_STRING] or "c",
            object_type=item.player.object_type,
            bitrate_bps=item.player.bitrate_bps,
            buffer_s=item.player.buffer_s,
            measured_bps=item.player.measured_bps,
            top_bitrate_bps=item.player.top_bitrate_bps,
            starting=item.player.starting,
        )
        try:
            read = qoe.parse_query(url_encode(encode(data)))
        except CmcdError as error:
            violation(False, f"the players' CMCD {encode(data)!r} is refused: {error}")
            return
        sent = expected(data)
        got = {key: getattr(read, key) for key in sent}
        violation(got == sent, f"read back {got}, sent {sent}")
        return
    if item.form == "payload":
        record: qoe.Cmcd | None = qoe.parse_payload(item.payload)
    elif item.form == "query":
        record = qoe.parse_query(url_encode(item.payload) + item.escape)
    else:
        names = item.header_names or ("CMCD-Request",)
        parts = item.payload.split(",")
        headers: dict[str, str] = {}
        for index, part in enumerate(parts):
            name = names[index % len(names)]
            headers[name] = f"{headers[name]},{part}" if name in headers else part
        record = qoe.parse_headers(headers)
    if record is not None:
        _check_record(record)


TARGETS = (
    Target(
        "cmcd.qoe",
        "the QoE CMCD reader: payload, query and header forms; the players' encoding read back",
        qoe_inputs,
        stateless(run_qoe),
        documented=(CmcdError,),
    ),
    Target(
        "cmcd.player",
        "player CMCD: encode → parse round trip, CmcdQuery fast path, URL form",
        cmcd_inputs,
        stateless(run_player),
    ),
)
