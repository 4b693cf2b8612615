"""The CTA-5004 reader: the key table, the query and header forms, refusals, and fuzzing against
the virtual players' encoder (player.cmcd)."""

from __future__ import annotations

import contextlib
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livecast.errors import CmcdError, LivecastError
from livecast.player import cmcd as encoder
from livecast.qoe import cmcd
from livecast.qoe.cmcd import Cmcd, from_target, parse_headers, parse_payload, parse_query


def test_key_table_covers_cmcd_v1_with_headers_and_types() -> None:
    v1 = ["br", "bl", "bs", "cid", "d", "dl", "mtp", "nor", "nrr", "ot", "pr", "rtp", "sf"]
    assert sorted(cmcd.KEYS) == sorted([*v1, "sid", "st", "su", "tb", "v"])
    assert {spec.header for spec in cmcd.KEYS.values()} == set(cmcd.HEADERS)
    assert cmcd.KEYS["bs"].header == "CMCD-Status" and cmcd.KEYS["bs"].type == "boolean"
    assert cmcd.KEYS["mtp"].unit == "kbps" and cmcd.KEYS["bl"].unit == "ms"
    assert cmcd.KEYS["ot"].tokens >= {"m", "v", "a", "av", "i"}
    assert all(spec.text for spec in cmcd.KEYS.values())


def test_query_form_of_the_spec_example() -> None:
    # CTA-5004 §3.1 example form: CMCD=<url-encoded payload>
    record = parse_query(
        "bl%3D21300%2Cbr%3D3200%2Cbs%2Cd%3D4004%2Cmtp%3D25400%2Cot%3Dv%2Csid%3D%22"
        "6e2fb550-c457-11e9-bb97-0800200c9a66%22%2Ctb%3D6000"
    )
    assert record == Cmcd(
        bl=21300, br=3200, bs=True, d=4004, mtp=25400, ot="v", tb=6000,
        sid="6e2fb550-c457-11e9-bb97-0800200c9a66",
    )  # fmt: skip


def test_header_form_merges_the_four_headers_any_case() -> None:
    record = parse_headers(
        {
            "Host": "x",
            "cmcd-object": "br=3200,d=4004,ot=v,tb=6000",
            "CMCD-Request": "bl=21300,mtp=25400,su",
            "CMCD-Session": 'cid="faec5fc2",pr=1.5,sf=h,sid="6e2f",st=v,v=1',
            "Cmcd-Status": "bs,rtp=15000",
        }
    )
    assert record is not None
    assert (record.br, record.bl, record.su, record.bs, record.rtp) == (
        3200,
        21300,
        True,
        True,
        15000,
    )
    assert (record.cid, record.pr, record.sf, record.st, record.sid) == (
        "faec5fc2",
        1.5,
        "h",
        "v",
        "6e2f",
    )
    assert parse_headers({"Host": "x"}) is None
    with pytest.raises(CmcdError, match="twice"):
        parse_headers({"CMCD-Object": "br=1", "CMCD-Request": "br=2"})


def test_custom_and_unknown_keys_are_kept_by_syntax() -> None:
    record = parse_payload(
        'com.example-myNumericKey=500,com.example-myStringKey="myStringValue",zz,q=tok'
    )
    assert record.extra == (
        ("com.example-myNumericKey", 500),
        ("com.example-myStringKey", "myStringValue"),
        ("zz", True),
        ("q", "tok"),
    )


def test_target_lookup_and_empty() -> None:
    assert from_target("/live/main/index.m3u8") is None
    assert from_target("/x.m4s?a=1&CMCD=bs%2Csu") == Cmcd(bs=True, su=True)
    assert parse_payload("") == Cmcd()


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("br=fast", "not an integer"),
        ("br=-5", "out of range"),
        ("br", "value is required"),
        ("bs=1", "bare key"),
        ("ot=x", "unknown token"),
        ('sid="' + "x" * 65 + '"', "longer than 64"),
        ("sid=abc", "double quotes"),
        ('sid="abc', "unterminated string"),
        ('sid="a"b', "bad syntax"),
        ("a,,b", "bad key"),
        ("su,", "empty key"),
        ("br=1,br=1", "twice"),
        ("pr=1.2.3", "not a decimal"),
        ("x=a b", "no integer"),
        ("x" * 5000, "longer than 4096"),
        (",".join(f"k{i}" for i in range(70)), "more than 64"),
    ],
)
def test_malformed_payloads_are_refused_clearly(payload: str, message: str) -> None:
    with pytest.raises(CmcdError, match=message):
        parse_payload(payload)


@pytest.mark.parametrize(
    "payload",
    [
        "a=" + " " * 4000 + '"',  # took 219 s with the first (backtracking) item pattern
        "a=" + "\t " * 2000 + '"',
        "a=" + " x" * 2000 + '"',
        'a="' + "\\" * 4000,
        '"a' * 2000,
        " " * 4000 + "a",
        "a=," * 1300,
    ],
)
def test_hostile_payloads_are_read_in_linear_time(payload: str) -> None:
    began = time.perf_counter()
    with contextlib.suppress(CmcdError):
        parse_payload(payload)
    assert time.perf_counter() - began < 0.05  # linear: ≈ 0.3 ms at most here


def test_cmcd_error_is_a_livecast_error() -> None:
    with pytest.raises(LivecastError):
        parse_query("%C3%28")


_session_text = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=0, max_size=20
)


@settings(max_examples=300, deadline=None)
@given(
    sid=_session_text,
    cid=_session_text,
    ot=st.sampled_from(["m", "v", "a", "av", "i"]),
    bitrate=st.none() | st.integers(0, 50_000_000),
    buffer_s=st.floats(0, 1000),
    measured=st.none() | st.floats(0, 1e9),
    top=st.none() | st.integers(0, 50_000_000),
    starting=st.booleans(),
)
def test_round_trip_with_the_players_encoder(
    sid: str,
    cid: str,
    ot: str,
    bitrate: int | None,
    buffer_s: float,
    measured: float | None,
    top: int | None,
    starting: bool,
) -> None:
    data = encoder.request_data(
        session_id=sid, content_id=cid, object_type=ot, bitrate_bps=bitrate,
        buffer_s=buffer_s, measured_bps=measured, top_bitrate_bps=top, starting=starting,
    )  # fmt: skip
    expected = Cmcd(
        br=data.br, bl=data.bl, cid=cid, mtp=data.mtp, ot=ot, sf="h", sid=sid, st="l",
        su=starting, tb=data.tb,
    )  # fmt: skip
    assert parse_query(encoder.url_encode(encoder.encode(data))) == expected
    query = encoder.CmcdQuery(sid, cid).query(
        object_type=ot, bitrate_bps=bitrate, buffer_s=buffer_s, measured_bps=measured,
        top_bitrate_bps=top, starting=starting,
    )  # fmt: skip
    assert from_target(f"/live/main/v0/p1.m4s?{query}") == expected


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=300) | st.binary(max_size=300).map(lambda b: b.decode("latin-1")))
def test_arbitrary_text_raises_only_cmcd_error(text: str) -> None:
    for parse in (parse_query, parse_payload, lambda t: parse_headers({"CMCD-Request": t})):
        with contextlib.suppress(CmcdError):
            parse(text)


_piece = st.sampled_from(
    [
        "br=",
        "bs",
        "su",
        ",",
        "=",
        '"',
        "\\",
        "%2C",
        "%3D",
        "%22",
        "1",
        "-",
        ".",
        "ot=v",
        'sid="a',
        " ",
    ]
)


@settings(max_examples=500, deadline=None)
@given(st.lists(_piece | st.text(max_size=3), max_size=30).map("".join))
def test_near_valid_payloads_raise_only_cmcd_error(text: str) -> None:
    try:
        record = parse_query(text)
    except CmcdError:
        return
    assert isinstance(record, Cmcd)
