"""Every crash the fuzz campaign (``python -m livecast.fuzzing``, docs/fuzzing.md) found, as the
minimal input it shrank to, with the fixed behaviour asserted."""

from __future__ import annotations

import pytest

from livecast.errors import PlaylistError
from livecast.fuzzing.cmcd import CmcdInput, run_player
from livecast.hls.attributes import parse_int
from livecast.hls.playlist import parse_media_playlist
from livecast.player.cmcd import CmcdData, encode, parse

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
