"""Tokens on every URI of a playlist (access/uri_tokens.py): the RFC 8216bis places, the query
and fragment rules, other hosts left alone — by example, against the real origin's playlists, and
as properties over generated playlists (Hypothesis)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from hypothesis import given, settings
from hypothesis import strategies as st

from livecast.access.uri_tokens import (
    TemplateCache,
    add_argument,
    compile_playlist,
    query_argument,
    token_argument,
)
from tests.unit.synth import Feeder, make_event

TOKEN = "v1.k1.main.a1.s1.1800003600.0.dBPnYAxIXSvrnY6eY5ivvk7cueqRV957PDzYtgjXRTQ"
ARG = query_argument("token", TOKEN)


def test_every_uri_place_of_rfc_8216bis_gets_the_token_and_nothing_else_changes() -> None:
    playlist = (
        b"#EXTM3U\n"
        b'#EXT-X-SESSION-DATA:DATA-ID="com.x",URI="data.json"\n'
        b'#EXT-X-CONTENT-STEERING:SERVER-URI="/steer",PATHWAY-ID="a"\n'
        b'#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="en, main",URI="audio/index.m3u8"\n'
        b'#EXT-X-STREAM-INF:BANDWIDTH=1000,CODECS="avc1.64001f,mp4a.40.2",AUDIO="aud"\n'
        b"720p/index.m3u8\n"
        b'#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=100,URI="720p/iframes.m3u8?x=1"\n'
        b'#EXT-X-MAP:URI="init-0.mp4"\n'
        b'#EXT-X-KEY:METHOD=SAMPLE-AES,URI="skd://key-server/1",KEYFORMAT="com.apple.streamingkeydelivery"\n'
        b'#EXTINF:2.0,URI="not-a-uri"\n'
        b"seg-1.m4s\r\n"
        b'#EXT-X-PART:DURATION=0.333,URI="part-2.0.m4s",INDEPENDENT=YES\n'
        b'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part-2.1.m4s?"\n'
        b'#EXT-X-RENDITION-REPORT:URI="../480p/index.m3u8",LAST-MSN=2,LAST-PART=0\n'
        b'#EXT-X-DATERANGE:ID="ad",START-DATE="2026-01-01T00:00:00Z",X-ASSET-URI="https://ads.example/a.m3u8"\n'
        b"https://cdn.example/seg-2.m4s\n"
        b"//live.example:8080/seg-3.m4s#t=1\n"
        b"\n"
    )
    out = add_argument(playlist, "token", TOKEN, host=b"LIVE.example:8080").decode()
    t = f"token={TOKEN}"
    assert f'URI="data.json?{t}"' in out
    assert f'SERVER-URI="/steer?{t}"' in out
    assert f'NAME="en, main",URI="audio/index.m3u8?{t}"' in out
    assert f"\n720p/index.m3u8?{t}\n" in out
    assert f'URI="720p/iframes.m3u8?x=1&{t}"' in out
    assert f'#EXT-X-MAP:URI="init-0.mp4?{t}"' in out
    assert 'URI="skd://key-server/1",' in out  # a scheme without our authority: untouched
    assert '#EXTINF:2.0,URI="not-a-uri"\n' in out  # a title, not an attribute list
    assert f"\nseg-1.m4s?{t}\r\n" in out  # CRLF kept
    assert f'URI="part-2.0.m4s?{t}",INDEPENDENT=YES' in out
    assert f'URI="part-2.1.m4s?{t}"' in out  # ends in "?": no second separator
    assert f'URI="../480p/index.m3u8?{t}",LAST-MSN=2' in out
    assert 'X-ASSET-URI="https://ads.example/a.m3u8"' in out  # another host: never the token
    assert "\nhttps://cdn.example/seg-2.m4s\n" in out
    assert f"\n//live.example:8080/seg-3.m4s?{t}#t=1\n" in out  # own host; before the fragment
    assert out.count("token=") == 11
    assert re.sub(r"[?&]?token=[^\"#\r\n]*", "", out).encode() == playlist.replace(
        b"part-2.1.m4s?", b"part-2.1.m4s"
    )


def test_the_origins_own_playlists_round_trip() -> None:
    event = make_event()
    Feeder(event).advance_to(20.5)
    for playlist in (event.multivariant_bytes(), event.media_playlist_bytes("720p")):
        out = add_argument(playlist, "token", TOKEN)
        lines, original = out.decode().splitlines(), playlist.decode().splitlines()
        assert len(lines) == len(original)
        uris = [line for line in lines if line and not line.startswith("#")]
        uris += re.findall(r'URI="([^"]+)"', out.decode())
        assert uris and all(dict(parse_qsl(urlsplit(u).query))["token"] == TOKEN for u in uris)
        assert out.replace(b"?" + ARG, b"").replace(b"&" + ARG, b"") == playlist
    media = add_argument(event.media_playlist_bytes("720p"), "token", TOKEN).decode()
    for tag in ("EXT-X-MAP", "EXT-X-PART", "EXT-X-PRELOAD-HINT", "EXT-X-RENDITION-REPORT"):
        assert re.search(rf'#{tag}:.*URI="[^"]+\?token={re.escape(TOKEN)}"', media), tag


def test_the_token_argument_is_read_like_the_gate_and_bounded() -> None:
    assert token_argument("") is None
    assert token_argument("CMCD=x") is None
    assert token_argument(f"_HLS_msn=3&token={TOKEN}") == ARG
    assert token_argument("token=v1%2Ek1") == b"token=v1.k1"  # decoded, re-encoded canonically
    assert token_argument("token=a&token=b") == b"token=a"  # the first, as the gate
    assert token_argument("token=" + "a" * 10_000) is None  # 10 KB: never copied onto URIs
    assert token_argument("token=a%0D%0ASet-Cookie:x") is None  # header injection: not a token
    assert token_argument("token=") is None
    assert token_argument("&".join(["x=1"] * 64) + "&token=a") is None


def test_a_template_is_compiled_once_per_shared_answer() -> None:
    cache = TemplateCache(size=2)
    body = b"#EXTM3U\nseg-1.m4s\n"
    assert cache.rewrite(body, b"token=a") == b"#EXTM3U\nseg-1.m4s?token=a\n"
    assert cache.rewrite(body, b"token=b") == b"#EXTM3U\nseg-1.m4s?token=b\n"
    assert cache.compiled == 1
    for other in (b"#EXTM3U\nx\n", b"#EXTM3U\ny\n", body):
        cache.rewrite(other, b"token=a")
    assert cache.compiled == 4  # bounded: the first was dropped
    assert compile_playlist(b"").render(b"token=a") == b""


# ---------------------------------------------------------------------- properties

SEGMENT = st.text("abcxyz019-_./%", min_size=1, max_size=12).filter(
    lambda s: not s.startswith(("#", "//", "{$")) and ":" not in s
)
QUERY = st.one_of(st.just(""), st.just("?"), st.text("abc=&019", max_size=8).map("?{}".format))
FRAGMENT = st.one_of(st.just(""), st.text("abc019", max_size=4).map("#{}".format))
HOSTS = st.sampled_from(["", "//live.example", "http://live.example", "https://other.example"])


@dataclass(frozen=True)
class Item:
    text: str  # one playlist line
    uri: str | None  # the URI in it, if any
    rewritten: bool  # whether it must get the token


@st.composite
def uris(draw: st.DrawFn) -> tuple[str, bool]:
    host = draw(HOSTS)
    path = draw(SEGMENT)
    uri = (f"{host}/{path}" if host else path) + draw(QUERY) + draw(FRAGMENT)
    return uri, host in ("", "//live.example", "http://live.example")


@st.composite
def items(draw: st.DrawFn) -> Item:
    uri, rewritten = draw(uris())
    kind = draw(st.sampled_from(["line", "map", "part", "media", "title", "other-tag"]))
    if kind == "line":
        return Item(uri, uri, rewritten)
    if kind == "map":
        return Item(f'#EXT-X-MAP:URI="{uri}"', uri, rewritten)
    if kind == "part":
        return Item(f'#EXT-X-PART:DURATION=0.33,URI="{uri}",INDEPENDENT=YES', uri, rewritten)
    if kind == "media":
        name = draw(st.text("ab ,=", max_size=6))
        return Item(f'#EXT-X-MEDIA:TYPE=AUDIO,NAME="{name}",URI="{uri}"', uri, rewritten)
    if kind == "title":
        return Item(f'#EXTINF:2.0,URI="{uri}"', None, False)
    return Item(f'#EXT-X-SERVER-CONTROL:X-URI="{uri}"', None, False)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(items(), max_size=12),
    st.sampled_from(["\n", "\r\n"]),
    st.text(max_size=40),
)
def test_every_uri_gets_the_value_back_and_removing_it_gives_the_original(
    lines: list[Item], newline: str, value: str
) -> None:
    playlist = newline.join(["#EXTM3U", *(i.text for i in lines)]) + newline
    argument = query_argument("token", value)
    out = add_argument(playlist.encode(), "token", value, host=b"live.example").decode()
    out_lines = out.split(newline)
    assert len(out_lines) == len(playlist.split(newline))
    for item, line in zip(lines, out_lines[1:], strict=False):
        if item.uri is None or not item.rewritten:
            assert line == item.text
            continue
        if item.text == item.uri:
            uri = line
        else:
            found = re.search(r'URI="([^"]*)"', line)
            assert found is not None
            uri = found[1]
        split = urlsplit(uri)
        assert parse_qsl(split.query, keep_blank_values=True)[-1] == ("token", value)
        head, hash_, fragment = item.uri.partition("#")
        expected_sep = "" if head.endswith(("?", "&")) else ("&" if "?" in head else "?")
        expected = head + expected_sep + argument.decode() + hash_ + fragment
        assert uri == expected
        if item.text == item.uri:
            assert line == expected
        else:
            assert line == item.text.replace(f'URI="{item.uri}"', f'URI="{expected}"')
