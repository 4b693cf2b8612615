"""Every crash the fuzz campaign (``python -m livecast.fuzzing``, docs/fuzzing.md) found, as the
minimal input it shrank to, with the fixed behaviour asserted."""

from __future__ import annotations

import pytest

from livecast.errors import MediaError, PlaylistError
from livecast.fuzzing.cmcd import CmcdInput, run_player
from livecast.fuzzing.media import MediaInput, run_media
from livecast.hls.attributes import format_pdt, parse_int, parse_pdt
from livecast.hls.playlist import parse_media_playlist, render_media_playlist
from livecast.media import boxes
from livecast.media.fmp4 import parse_init
from livecast.media.rewrite import rewrite_fragment
from livecast.player.cmcd import CmcdData, encode, parse

# ---------------------------------------------------------------- media.fmp4

AUDIO_FRAGMENT = boxes.fragment(
    sequence=9, decode_time=2**33, sample_durations=[1024], sample_sizes=[6], first_is_sync=True
)


def test_a_decode_time_past_64_bits_is_a_media_error() -> None:
    """Found by media.fmp4: ``rewrite_fragment(…, decode_time=2**64)`` of a valid audio fragment
    raised ``struct.error: int too large to convert`` while writing the tfdt."""
    track = parse_init(boxes.init_segment("audio", timescale=48000))
    with pytest.raises(MediaError, match="64-bit tfdt"):
        rewrite_fragment(AUDIO_FRAGMENT, track, decode_time=2**64)
    with pytest.raises(MediaError, match="32-bit mfhd"):
        rewrite_fragment(AUDIO_FRAGMENT, track, sequence=-1)
    with pytest.raises(MediaError):  # through the fuzz target, which checks the error's origin
        run_media(MediaInput("rewrite", AUDIO_FRAGMENT, False, "audio", decode_time=2**64))
    rewritten = rewrite_fragment(AUDIO_FRAGMENT, track, decode_time=2**64 - 1, sequence=2**32 - 1)
    assert rewritten.count(b"\xff" * 8) == 1


# ---------------------------------------------------------------- playlists.media


def test_non_ascii_digits_in_a_decimal_integer_are_a_playlist_error() -> None:
    """Found by playlists.media: ``'#EXTM3U\\n#EXT-X-VERSION:²\\n'`` — ``"²".isdigit()`` is
    true, so ``int("²")`` raised ValueError out of the parser."""
    with pytest.raises(PlaylistError, match="decimal-integer"):
        parse_media_playlist("#EXTM3U\n#EXT-X-VERSION:²\n")
    for text in ("²", "١٢", "٣"):
        with pytest.raises(PlaylistError):
            parse_int(text, "#EXT-X-MEDIA-SEQUENCE")
    assert parse_int("0012", "n") == 12


def round_trip(text: str) -> str:
    first = render_media_playlist(parse_media_playlist(text))
    assert render_media_playlist(parse_media_playlist(first)) == first
    return first


def test_a_program_date_time_near_year_9999_keeps_its_milliseconds() -> None:
    """Found by playlists.media: ``…PROGRAM-DATE-TIME:9999-12-31T23:59:59.999Z`` rendered as
    ``.998`` (the parsed float is 59.998999…, truncated), then ``.997`` on the next pass."""
    text = "#EXTM3U\n#EXT-X-PROGRAM-DATE-TIME:9999-12-31T23:59:59.999Z\n#EXT-X-TARGETDURATION:2\n"
    assert "#EXT-X-PROGRAM-DATE-TIME:9999-12-31T23:59:59.999Z" in round_trip(text)
    assert format_pdt(1764000000.33334) == "2025-11-24T16:00:00.333Z"  # still truncated


def test_a_program_date_time_before_year_1000_renders_four_year_digits() -> None:
    """Found by playlists.media: ``0001-01-01T00:00:00Z`` rendered as ``1-01-01T…`` (``%Y`` is
    not zero-padded), which the parser then refused."""
    text = "#EXTM3U\n#EXT-X-PROGRAM-DATE-TIME:0001-01-01T00:00:00Z\n\n#EXT-X-TARGETDURATION:2\n"
    assert "#EXT-X-PROGRAM-DATE-TIME:0001-01-01T00:00:00.000Z" in round_trip(text)
    assert format_pdt(parse_pdt("0999-06-01T12:00:00Z")) == "0999-06-01T12:00:00.000Z"


@pytest.mark.parametrize("value", ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00"])
def test_a_program_date_time_outside_years_1_to_9999_in_utc_is_a_playlist_error(
    value: str,
) -> None:
    """Found by playlists.media: these parse, but their UTC instant is in year 10000 or 0, so
    rendering raised ValueError ("year 10000 is out of range")."""
    with pytest.raises(PlaylistError, match="outside years"):
        parse_media_playlist(
            f"#EXTM3U\n#EXT-X-PROGRAM-DATE-TIME:{value}\n#EXT-X-TARGETDURATION:2\n"
        )
    with pytest.raises(PlaylistError, match="outside years"):
        format_pdt(-62135614800.0)


# ---------------------------------------------------------------- cmcd.player


def test_a_content_id_with_a_comma_reads_back() -> None:
    """Found by cmcd.player: ``content_id='a,b'`` — the reader split the payload on every comma,
    including the one inside the quoted string."""
    run_player(CmcdInput("s1", "a,b", "m", None, 0.0, None, None, False))
    payload = encode(CmcdData(sid='x"y\\', cid="a,b=c", br=800, bl=1000, mtp=None, ot="v"))
    assert parse(payload) == {
        "bl": 1000,
        "br": 800,
        "cid": "a,b=c",
        "ot": "v",
        "sf": "h",
        "sid": 'x"y\\',
        "st": "l",
    }


@pytest.mark.parametrize("value", ["²", "--5", "-²", "١٢"])
def test_a_non_decimal_number_stays_text(value: str) -> None:
    """``"--5".lstrip("-").isdigit()`` and ``"²".isdigit()`` are true; ``int()`` of either
    raised ValueError — the value is now kept as the text it is."""
    assert parse(f"br={value},su") == {"br": value, "su": True}
    assert parse("bl=-300") == {"bl": -300}
