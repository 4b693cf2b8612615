"""The slate's input: a solid colour a test can find, the message when a font exists, silence."""

from __future__ import annotations

from livecast.sources.slate import SLATE_RGB, slate_source
from livecast.transcode.ladder import DEFAULT_LADDER, build_argv


def test_slate_is_the_top_rung_at_the_ladder_rate_with_silence() -> None:
    ladder = DEFAULT_LADDER
    spec = slate_source(ladder, None, 4.0)
    top = ladder.rungs[0]
    color = "0x{:02X}{:02X}{:02X}".format(*SLATE_RGB)
    assert f"color=c={color}:size={top.width}x{top.height}:rate={ladder.fps}" in spec.input_args
    assert any(arg.startswith("anullsrc=") for arg in spec.input_args)
    assert spec.input_args.count("-t") == 2  # both inputs end: the pre-encode terminates
    assert "-re" not in spec.input_args
    assert "drawtext" not in spec.filtergraph  # no font, no text: still a slate


def test_slate_message_is_escaped_for_the_filtergraph() -> None:
    spec = slate_source(DEFAULT_LADDER, "/fonts/a font.ttf", 4.0)
    assert "text=We\\\\\\'ll be right back" in spec.filtergraph
    argv = build_argv("ffmpeg", spec, DEFAULT_LADDER, {"720p": 3, "480p": 4, "360p": 5, "audio": 6})
    assert argv[0] == "ffmpeg" and "-filter_complex" in argv
