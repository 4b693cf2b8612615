"""The FFmpeg argv builder, the ladder's validation, the test source and the binary/font lookup."""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path

import pytest

from livecast.errors import ConfigError, TranscodeError
from livecast.sources.testsrc import clock_text, escape_filter_value
from livecast.sources.testsrc import test_source as make_test_source
from livecast.transcode.ffmpeg import FFMPEG_ENV, FONT_ENV, find_ffmpeg, find_font
from livecast.transcode.ladder import DEFAULT_LADDER, DEFAULT_RUNGS, Ladder, Rung, build_argv

FDS = {"720p": 3, "480p": 4, "360p": 5, "audio": 6}
FONT = "/fonts/Mono.ttf"


def argv_for(ladder: Ladder = DEFAULT_LADDER, duration: float | None = 4.0) -> list[str]:
    source = make_test_source(ladder, 1_700_000_000.25, FONT, duration)
    fds = {name: 3 + i for i, name in enumerate(ladder.renditions)}
    return build_argv("/bin/ffmpeg", source, ladder, fds)


def outputs(argv: list[str]) -> list[list[str]]:
    """Split the argv after -filter_complex into one option list per output (ends in pipe:N)."""
    rest = argv[argv.index("-filter_complex") + 2 :]
    sections, current = [], []
    for arg in rest:
        current.append(arg)
        if arg.startswith("pipe:"):
            sections.append(current)
            current = []
    assert current == [], "options after the last output"
    return sections


def opt(section: list[str], name: str) -> str:
    return section[section.index(name) + 1]


# ------------------------------------------------------------------ ladder defaults


def test_default_ladder_timing() -> None:
    lad = DEFAULT_LADDER
    assert lad.renditions == ("720p", "480p", "360p", "audio")
    assert [(r.width, r.height) for r in lad.rungs] == [(1280, 720), (854, 480), (640, 360)]
    assert (lad.part_frames, lad.parts_per_segment, lad.segment_frames) == (10, 6, 60)
    assert lad.video_frag_duration_us == 333_333  # rounded down: 10 frames ≥ it, 9 < it
    assert lad.audio_fragment_frames == 2
    assert lad.audio_frag_duration_us == 42_666


@pytest.mark.parametrize("part", [0.2, 1 / 3, 0.4, 0.5, 2 / 3, 1.0])
def test_fragment_durations_cut_exactly(part: float) -> None:
    lad = Ladder(DEFAULT_RUNGS, part_duration=part, segment_duration=round(part * 6, 9))
    frame_us = 1_000_000 / lad.fps
    assert lad.part_frames * frame_us >= lad.video_frag_duration_us
    assert (lad.part_frames - 1) * frame_us < lad.video_frag_duration_us
    aac_us = 1024 * 1_000_000 / lad.audio_rate
    frames = lad.audio_fragment_frames
    assert frames * aac_us >= lad.audio_frag_duration_us > (frames - 1) * aac_us
    # whole audio fragments can always fill a part to ≥ 85 % without exceeding it
    fragment = frames * aac_us / 1e6
    assert math.floor(part / fragment) * fragment >= 0.85 * part


def test_durations_snap_to_whole_frames_and_parts() -> None:
    lad = Ladder(DEFAULT_RUNGS, part_duration=0.333, segment_duration=1.999)
    assert lad.part_duration == 1 / 3 and lad.segment_duration == 2.0
    assert lad == DEFAULT_LADDER


# ------------------------------------------------------------------ argv structure


def test_one_process_with_one_output_per_rendition_on_its_pipe() -> None:
    argv = argv_for()
    assert argv[0] == "/bin/ffmpeg"
    assert argv.count("-filter_complex") == 1
    sections = outputs(argv)
    assert [s[-1] for s in sections] == ["pipe:3", "pipe:4", "pipe:5", "pipe:6"]
    assert [opt(s, "-map") for s in sections] == ["[vout0]", "[vout1]", "[vout2]", "[a]"]
    for section in sections:
        assert opt(section, "-f") == "mp4"
        flags = set(opt(section, "-movflags").split("+"))
        assert {"frag_keyframe", "empty_moov", "default_base_moof"} <= flags


def test_decode_once_split_and_scale_per_rung() -> None:
    graph = opt(argv_for(), "-filter_complex")
    assert graph.count("split=3") == 1
    for i, rung in enumerate(DEFAULT_RUNGS):
        assert f"[vsplit{i}]scale={rung.width}:{rung.height}" in graph
        assert f"[vout{i}]" in graph
    assert argv_for().count("-c:a") == 1  # AAC encoded once


def test_duration_goes_before_every_input() -> None:
    argv = argv_for(duration=4.0)
    inputs = [i for i, a in enumerate(argv) if a == "-i"]
    limits = [i for i, a in enumerate(argv) if a == "-t"]
    assert len(inputs) == 2 and len(limits) == 2
    assert limits[0] < inputs[0] < limits[1] < inputs[1]
    assert all(float(argv[i + 1]) == 4.0 for i in limits)
    assert "-t" not in argv_for(duration=None)


def test_inputs_are_read_in_real_time_without_a_burst() -> None:
    argv = argv_for()
    head = argv[: argv.index("-filter_complex")]
    assert head.count("-re") == 2
    assert [float(head[i + 1]) for i, a in enumerate(head) if a == "-readrate_initial_burst"] == [
        0.001,
        0.001,
    ]


def test_video_outputs_have_aligned_fixed_gops() -> None:
    for rung, section in zip(DEFAULT_RUNGS, outputs(argv_for())[:3], strict=True):
        assert opt(section, "-c:v") == "libx264"
        assert opt(section, "-tune") == "zerolatency"
        assert opt(section, "-preset") == "ultrafast"
        assert opt(section, "-x264-params") == "cabac=1:deblock=1:8x8dct=1"
        assert opt(section, "-g") == opt(section, "-keyint_min") == "60"
        assert opt(section, "-sc_threshold") == "0"
        assert opt(section, "-bf") == "0"
        assert opt(section, "-force_key_frames") == "expr:gte(n,n_forced*60)"
        assert opt(section, "-b:v") == opt(section, "-maxrate") == f"{rung.video_kbps}k"
        assert opt(section, "-bufsize") == f"{rung.video_kbps}k"
        assert opt(section, "-frag_duration") == "333333"


def test_audio_output() -> None:
    audio = outputs(argv_for())[3]
    assert opt(audio, "-c:a") == "aac"
    assert opt(audio, "-profile:a") == "aac_low"
    assert (opt(audio, "-b:a"), opt(audio, "-ar"), opt(audio, "-ac")) == ("128k", "48000", "2")
    assert opt(audio, "-frag_duration") == "42666"
    assert "-g" not in audio


def test_part_and_segment_durations_flow_into_the_argv() -> None:
    lad = Ladder(DEFAULT_RUNGS, part_duration=0.5, segment_duration=1.0, tune_zerolatency=False)
    video = outputs(argv_for(lad))[0]
    assert opt(video, "-frag_duration") == "500000"
    assert opt(video, "-g") == "30"
    assert "-tune" not in video


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"part_duration": 0.1}, "part_duration"),
        ({"part_duration": 1.5}, "part_duration"),
        ({"part_duration": 0.25}, "part_duration"),  # 7.5 frames at 30 fps
        ({"part_duration": 0.33}, "part_duration"),  # 9.9 frames
        ({"segment_duration": 2.1}, "segment_duration"),  # not a multiple of 1/3 s
        ({"segment_duration": 1 / 3}, "segment_duration"),  # a single part
        ({"segment_duration": 12.0}, "segment_duration"),
        ({"fps": 0}, "fps"),
        ({"fps": 29.97}, "fps"),
        ({"audio_rate": 22_050}, "audio_rate"),
        ({"audio_kbps": 4}, "audio_kbps"),
        ({"audio_channels": 6}, "audio_channels"),
        ({"preset": "fast;rm"}, "preset"),
        ({"x264_params": "cabac=1;rm -rf"}, "x264_params"),
        ({"rungs": ()}, "rungs"),
        ({"rungs": (DEFAULT_RUNGS[0], DEFAULT_RUNGS[0])}, "rungs"),
        ({"rungs": tuple(reversed(DEFAULT_RUNGS))}, "rungs"),
    ],
)
def test_invalid_ladder_names_the_key(kwargs: dict[str, object], key: str) -> None:
    args: dict[str, object] = {"rungs": DEFAULT_RUNGS, **kwargs}
    with pytest.raises(ConfigError) as info:
        Ladder(**args)  # type: ignore[arg-type]
    assert info.value.key == key
    assert key in str(info.value)


@pytest.mark.parametrize(
    ("rung", "key"),
    [
        (("audio", 640, 360, 600), "rungs.name"),
        (("a b", 640, 360, 600), "rungs.name"),
        (("x", 641, 360, 600), "rungs.width"),
        (("x", 640, 8, 600), "rungs.height"),
        (("x", 640, 360, 10), "rungs.video_kbps"),
    ],
)
def test_invalid_rung_names_the_key(rung: tuple[str, int, int, int], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        Rung(*rung)
    assert info.value.key == key


@pytest.mark.parametrize(
    "fds",
    [
        {"720p": 3, "480p": 4, "360p": 5},  # audio missing
        {**FDS, "1080p": 7},  # unknown
        {"720p": 3, "480p": 3, "360p": 5, "audio": 6},  # duplicate
        {"720p": 1, "480p": 4, "360p": 5, "audio": 6},  # stdout
    ],
)
def test_bad_fds_rejected(fds: dict[str, int]) -> None:
    source = make_test_source(DEFAULT_LADDER, 0.0, None)
    with pytest.raises(ConfigError) as info:
        build_argv("ffmpeg", source, DEFAULT_LADDER, fds)
    assert info.value.key == "fds"


# ------------------------------------------------------------------ test source


def test_source_without_font_has_no_overlay(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="livecast.sources"):
        source = make_test_source(DEFAULT_LADDER, 0.0, None)
    assert "drawtext" not in source.filtergraph
    assert "no font" in caplog.text
    assert source.filtergraph.endswith("[a]")
    assert "[v]" in source.filtergraph
    assert "testsrc2=size=1280x720:rate=30" in source.input_args
    assert "sine=frequency=1000:beep_factor=2:sample_rate=48000" in source.input_args


def test_source_overlay_uses_font_and_escapes() -> None:
    source = make_test_source(DEFAULT_LADDER, 0.0, "/odd:dir/a,b's.ttf")
    assert r"fontfile=/odd\\:dir/a\,b\\\'s.ttf:" in source.filtergraph
    assert "%{frame_num}" in source.filtergraph


def test_escape_filter_value() -> None:
    assert escape_filter_value("plain") == "plain"
    assert escape_filter_value("a:b") == r"a\\:b"
    assert escape_filter_value("[x];y,z") == r"\[x\]\;y\,z"


def _render_clock(text: str, t: float) -> str:
    """Evaluate clock_text's %{eif:expr:d:N} fields in Python, as drawtext would at time t."""

    def field(match: re.Match[str]) -> str:
        expr = match.group(1).replace("t+", f"{t!r}+")
        value = eval(expr, {"floor": math.floor, "mod": lambda a, b: a % b})
        return f"{int(value):0{match.group(2)}d}"

    return re.sub(r"%\{eif:(.+?):d:(\d)\}", field, text)


@pytest.mark.parametrize(
    ("epoch", "t", "shown"),
    [
        (1_700_000_000.9876, 1.5, "22:13:22.487"),
        (1_700_000_000.0, 0.0, "22:13:20.000"),
        (1_700_006_399.5, 0.5, "00:00:00.000"),  # midnight UTC
        (1_700_000_000.25, 1 / 30 * 45, "22:13:21.750"),
    ],
)
def test_clock_text_is_epoch_plus_pts(epoch: float, t: float, shown: str) -> None:
    assert _render_clock(clock_text(epoch), t) == f"{shown} UTC  frame %{{frame_num}}"


# ------------------------------------------------------------------ binary and font lookup


def test_find_ffmpeg_explicit_path(tmp_path: Path) -> None:
    with pytest.raises(TranscodeError, match="not found"):
        find_ffmpeg(str(tmp_path / "nope"))
    exe = tmp_path / "ffmpeg"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    assert find_ffmpeg(str(exe)) == str(exe)


def test_find_ffmpeg_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FFMPEG_ENV, str(tmp_path / "missing"))
    with pytest.raises(TranscodeError, match=FFMPEG_ENV):
        find_ffmpeg()
    exe = tmp_path / "ff"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    monkeypatch.setenv(FFMPEG_ENV, str(exe))
    assert find_ffmpeg() == str(exe)


def test_find_font(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(FONT_ENV, raising=False)
    font = tmp_path / "x.ttf"
    assert find_font([str(tmp_path / "none.ttf")]) is None
    font.write_bytes(b"")
    assert find_font([str(tmp_path / "none.ttf"), str(font)]) == str(font)
    monkeypatch.setenv(FONT_ENV, str(font))
    assert find_font([]) == str(font)
    monkeypatch.setenv(FONT_ENV, str(tmp_path / "missing.ttf"))
    assert find_font([]) is None
