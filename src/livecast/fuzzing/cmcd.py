"""CMCD targets (CTA-5004, Common Media Client Data) — the player's encoder and its reader.

CTA-5004 §3.2: "the data payload … is a comma-separated list of key/value pairs … Keys are
case-sensitive … String values MUST be enclosed by double quotes … Token values are unquoted";
"If the value is TRUE [for a Boolean key], the key MUST be sent without a value"; §3.1 (query
argument mode): "the data payload MUST be URL-encoded" under the argument name ``CMCD``.

``cmcd.player`` draws request data (session and content ids with commas, quotes, backslashes,
``=`` and non-ASCII; bitrates, buffer lengths, throughputs at their edges) and checks the
encoder against its reader: ``parse(encode(d))`` gives back every value sent; the URL-encoded
fast path :class:`CmcdQuery` equals ``"CMCD=" + url_encode(encode(...))``; and ``from_url`` of a
URL carrying the argument reads the same values. The reader of hostile payloads is the QoE
parser's business (``livecast.qoe.cmcd``), fuzzed by its own target once that module exists.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st

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


TARGETS = (
    Target(
        "cmcd.player",
        "player CMCD: encode → parse round trip, CmcdQuery fast path, URL form",
        cmcd_inputs,
        stateless(run_player),
    ),
)
