"""The loop source's configuration, cache key and offline (not real-time) pre-encode inputs."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from livecast.config import load_config
from livecast.errors import ConfigError
from livecast.sources.loop_source import cache_key, default_cache_dir, offline
from livecast.sources.testsrc import test_source
from livecast.transcode.ladder import DEFAULT_LADDER


def test_loop_source_is_configurable() -> None:
    config = load_config(
        None, env={"LIVECAST_CACHE_DIR": "/tmp/x"}, overrides={"source": "loop", "loop_seconds": 8}
    )
    assert (config.source, config.loop_seconds, config.cache_dir) == ("loop", 8.0, "/tmp/x")
    assert load_config(None, env={}).loop_seconds == 20.0


@pytest.mark.parametrize("seconds", [3.0, 0.0, 5.5, 602.0])
def test_loop_seconds_must_be_whole_segments(seconds: float) -> None:
    with pytest.raises(ConfigError, match="loop_seconds"):
        load_config(None, env={}, overrides={"source": "loop", "loop_seconds": seconds})


def test_unknown_source_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"'source'.*test, loop"):
        load_config(None, env={}, overrides={"source": "file"})


def test_offline_inputs_are_not_read_in_real_time() -> None:
    live = test_source(DEFAULT_LADDER, 0.0, None, duration=4.0)
    assert "-re" in live.input_args
    args = offline(live).input_args
    assert "-re" not in args and "-readrate_initial_burst" not in args
    assert args.count("-t") == 2  # the duration still limits both inputs
    assert args.index("-t") < args.index("-i")


def test_cache_key_changes_with_what_shapes_the_media() -> None:
    base = cache_key(DEFAULT_LADDER, Fraction(20), None, "ffmpeg version 9")
    assert base == cache_key(DEFAULT_LADDER, Fraction(20), None, "ffmpeg version 9")
    assert base != cache_key(DEFAULT_LADDER, Fraction(22), None, "ffmpeg version 9")
    assert base != cache_key(DEFAULT_LADDER, Fraction(20), None, "ffmpeg version 8")
    assert base != cache_key(DEFAULT_LADDER, Fraction(20), "/f.ttf", "ffmpeg version 9")


def test_default_cache_dir_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "livecast" / "loop"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir() == Path.home() / ".cache" / "livecast" / "loop"
