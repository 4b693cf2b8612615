"""CMCD (CTA-5004) encoding and the values the player puts on every request."""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from livecast.player import PlayerConfig
from livecast.player.cmcd import (
    CmcdData,
    CmcdQuery,
    encode,
    from_url,
    parse,
    raw_payload,
    request_data,
    round_to,
    url_encode,
    with_cmcd,
)

from .test_player_server import EPOCH, session


def test_encode_sorts_keys_quotes_strings_and_writes_true_as_a_bare_key() -> None:
    data = CmcdData(sid="abc", cid="live", br=638, bl=1200, mtp=3200, ot="v", su=True, tb=1598)
    assert encode(data) == (
        'bl=1200,br=638,cid="live",mtp=3200,ot=v,sf=h,sid="abc",st=l,su,tb=1598'
    )
    assert "su" not in encode(CmcdData("abc", "live", 638, 0, None, "m"))
    assert "mtp" not in encode(CmcdData("abc", "live", 638, 0, None, "m"))


def test_query_argument_is_url_encoded_and_parses_back() -> None:
    data = CmcdData(sid='a "b"', cid="live", br=1, bl=0, mtp=None, ot="a", su=True)
    url = with_cmcd("http://h/live/audio/index.m3u8?_HLS_msn=5&_HLS_part=1", encode(data))
    query = urlsplit(url).query
    assert query.startswith("_HLS_msn=5&_HLS_part=1&CMCD=")
    cmcd_value = query.split("CMCD=", 1)[1]
    assert not set(cmcd_value) & set(',="')
    assert from_url(url) == {
        "bl": 0,
        "br": 1,
        "cid": "live",
        "ot": "a",
        "sf": "h",
        "sid": 'a "b"',
        "st": "l",
        "su": True,
    }
    assert with_cmcd("http://h/x.m4s", "br=1").startswith("http://h/x.m4s?CMCD=")


def test_url_encode_is_quote_with_nothing_safe() -> None:
    for text in ('sid="a\\"b",bl=100,su', "a b/c?d&e%f~g_h.i-j!*'()", "caf\u00e9 \u2603"):
        assert url_encode(text) == quote(text, safe="")


def test_prebuilt_query_equals_the_encoded_payload() -> None:
    builder = CmcdQuery('viewer "7"', "show, live")
    for bitrate, buffer_s, measured, top, starting, starved in (
        (None, 0.0, None, None, True, False),
        (638_000, 1.249, 3_249_999.0, 1_598_000, False, True),
        (2_500_000, 12.0, 123.0, 2_500_000, True, False),
        (None, 0.0, None, None, False, True),
    ):
        expected = encode(
            request_data(
                session_id='viewer "7"', content_id="show, live", object_type="v",
                bitrate_bps=bitrate, buffer_s=buffer_s, measured_bps=measured,
                top_bitrate_bps=top, starting=starting, starved=starved,
            )
        )  # fmt: skip
        assert ("bs" in parse(expected)) == starved
        built = builder.query(
            object_type="v", bitrate_bps=bitrate, buffer_s=buffer_s, measured_bps=measured,
            top_bitrate_bps=top, starting=starting, starved=starved,
        )  # fmt: skip
        assert built == "CMCD=" + quote(expected, safe="")


def test_rounding_to_the_nearest_step() -> None:
    assert round_to(1249, 100) == 1200
    assert round_to(1250, 100) == 1300
    assert round_to(49.9, 100) == 0
    assert parse("bl=1200,su") == {"bl": 1200, "su": True}


def test_values_on_every_request_of_a_session() -> None:
    config = PlayerConfig("viewer-7", content_id="show", start_level="lowest")
    player, server = session(config, seconds=8.0)
    bitrates = {v.uri.split("/")[0]: round(v.bandwidth / 1000) for v in player.variants}
    top = max(bitrates.values())
    first_frame = player.buffer.first_frame_at if player.buffer else None
    assert first_frame is not None
    mtp_seen = False
    for sent in server.sent:
        request = sent.request
        payload = raw_payload(request.url)
        assert payload is not None, request.url
        keys = [item.partition("=")[0] for item in payload.split(",")]
        assert keys == sorted(keys)
        cmcd = parse(payload)
        assert cmcd["sid"] == "viewer-7" and cmcd["cid"] == "show"
        assert cmcd["sf"] == "h" and cmcd["st"] == "l"
        assert isinstance(cmcd["bl"], int) and cmcd["bl"] % 100 == 0
        if "mtp" in cmcd:
            mtp_seen = True
            assert isinstance(cmcd["mtp"], int) and cmcd["mtp"] % 100 == 0
        path = urlsplit(request.url).path
        rendition = path.split("/")[2]
        expected_ot = {"multivariant": "m", "playlist": "m", "init": "i"}.get(
            request.kind, "a" if rendition == "audio" else "v"
        )
        assert cmcd["ot"] == expected_ot, (request.kind, path)
        if request.kind == "multivariant":
            assert "br" not in cmcd  # no rendition chosen yet
        else:
            assert cmcd["tb"] == top
            if request.kind == "part" and rendition != "audio":
                assert cmcd["br"] == bitrates[rendition]
        starting = request.not_before < first_frame  # created at not_before (no retries here)
        assert ("su" in cmcd) == starting, (sent.at, first_frame, request.kind)
    assert mtp_seen
    assert player.buffer.stall_count == 0
    assert not any("bs" in (from_url(s.request.url) or {}) for s in server.sent)  # never starved


def test_bs_follows_each_stall_once_it_began_until_the_request_after() -> None:
    """CTA-5004 ``bs``: "included without a value if the buffer was starved at some point
    between the prior request and this object request … MUST NOT be sent if the buffer was not
    starved since the prior request"."""

    def bandwidth(now: float) -> float:
        return 30e3 if EPOCH + 15.0 <= now < EPOCH + 18.0 else 20e6

    config = PlayerConfig("starved", start_level="lowest")
    player, server = session(config, 20.0, bandwidth)
    assert player.buffer is not None and player.buffer.stall_count == 1
    flagged = [s.at - EPOCH for s in server.sent if "bs" in (from_url(s.request.url) or {})]
    # the link starves the buffer from 15 s; the stall (2.2 s) ends soon after the link is
    # back at 18 s: bs is on the requests sent while it lasted, never before nor long after
    assert flagged and all(15.0 <= t <= 18.0 + 0.5 for t in flagged), flagged
    assert any(t > 18.5 for t in (s.at - EPOCH for s in server.sent))  # requests went on
    # the buffer length grows once playing: some media request reports > 0 ms
    bls = [parse(raw_payload(s.request.url) or "")["bl"] for s in server.kinds("part")]
    assert max(int(b) for b in bls) >= 500
