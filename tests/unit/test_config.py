"""Configuration: defaults → file → environment → validate(), errors naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from livecast.config import EdgeSettings, load_config
from livecast.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "event.toml"
    path.write_text(text)
    return path


def test_defaults_are_the_demo_ladder() -> None:
    config = load_config(env={})
    assert (config.host, config.port) == ("127.0.0.1", 8080)
    assert [r.name for r in config.rungs] == ["720p", "480p", "360p"]
    assert config.part_duration == pytest.approx(1 / 3)
    assert config.segment_duration == 2.0


def test_file_then_environment_then_options(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'port = 9000\nhost = "0.0.0.0"\npart_duration = 0.2\n'
        '[[rungs]]\nname = "540p"\nwidth = 960\nheight = 540\nvideo_kbps = 1800\n',
    )
    config = load_config(path, env={"LIVECAST_PORT": "9100"}, overrides={"host": "::1"})
    assert (config.host, config.port, config.part_duration) == ("::1", 9100, 0.2)
    assert [r.name for r in config.rungs] == ["540p"]


def test_part_duration_snaps_to_whole_frames(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "part_duration = 0.3333"), env={}).part_duration == (
        pytest.approx(1 / 3)
    )


@pytest.mark.parametrize(
    ("text", "env", "key"),
    [
        ("prt = 3", {}, "prt"),
        ('port = "x"', {}, "port"),
        ("port = 70000", {}, "port"),
        ("", {"LIVECAST_PORT": "abc"}, "port"),
        ("part_duration = 0.05", {}, "part_duration"),
        ("part_duration = 1.5", {}, "part_duration"),
        ("segment_duration = 1.9", {}, "segment_duration"),
        ("window = 4", {}, "window"),
        ('source = "carrier-pigeon"', {}, "source"),
        ('[[rungs]]\nname = "x"\nwidth = 10\nheight = 10\nvideo_kbps = 100\n', {}, "rungs.width"),
        ('[[rungs]]\nname = "x"\nwidth = 640\n', {}, "rungs[0].height"),
        ("port = [", {}, "config"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, text: str, env: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), env=env)
    assert info.value.key == key
    assert repr(key) in str(info.value)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.toml", env={})


def test_edge_table_sets_what_livecast_up_starts(tmp_path: Path) -> None:
    from livecast.edge.topology import spec_from_settings

    path = tmp_path / "event.toml"
    path.write_text('[edge]\nedges = 3\nshield = true\nport = 9000\nwakeup = "off"\n')
    config = load_config(path, env={})
    assert config.edge == EdgeSettings(edges=3, shield=True, port=9000, wakeup="off")
    spec = spec_from_settings(config.edge)
    assert (spec.edges, spec.shield, spec.port, spec.wakeup) == (3, True, 9000, False)
    # command-line values win over the file; auto → None (use Lua when installed)
    spec = spec_from_settings(EdgeSettings(), edges=1, shield=True, port=0)
    assert (spec.edges, spec.shield, spec.port, spec.wakeup) == (1, True, 0, None)
    assert load_config(None, env={}).edge == EdgeSettings()


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ("edges = 0", "edge.edges"),
        ("edges = 65", "edge.edges"),
        ('edges = "two"', "edge.edges"),
        ('shield = "yes"', "edge.shield"),
        ("port = 65535", "edge.port"),
        ("workers = 0", "edge.workers"),
        ('wakeup = "maybe"', "edge.wakeup"),
        ("colour = 1", "edge.colour"),
    ],
)
def test_bad_edge_table_names_the_key(tmp_path: Path, table: str, key: str) -> None:
    path = tmp_path / "event.toml"
    path.write_text(f"[edge]\n{table}\n")
    with pytest.raises(ConfigError) as raised:
        load_config(path, env={})
    assert raised.value.key == key


def test_epoch_and_origins_from_file_environment_and_options(tmp_path: Path) -> None:
    path = write(tmp_path, 'source = "loop"\nepoch = 1764000000\n[edge]\norigins = 3\n')
    config = load_config(path, env={})
    assert (config.epoch, config.edge.origins) == (1_764_000_000.0, 3)
    config = load_config(path, env={"LIVECAST_EPOCH": "1764000123.5"}, overrides={"epoch": None})
    assert config.epoch == 1_764_000_123.5
    assert load_config(path, env={}, overrides={"epoch": 0.0}).epoch == 0.0  # 0: the clock
    defaults = load_config(None, env={})
    assert (defaults.epoch, defaults.edge.origins) == (0.0, 1)
    from livecast.edge.topology import spec_from_settings

    assert spec_from_settings(config.edge).origins == 3
    assert spec_from_settings(config.edge, origins=2).origins == 2  # the command line wins


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        ("[edge]\norigins = 2\n", "edge.origins", "byte-identical"),  # the test source
        ('source = "loop"\n[edge]\norigins = 0\n', "edge.origins", "outside"),
        ('source = "loop"\n[edge]\norigins = 17\n', "edge.origins", "outside"),
        ("epoch = 1764000000\n", "epoch", "only the loop source"),
        ('source = "loop"\nepoch = -1\n', "epoch", "not a time"),
        ('source = "loop"\nepoch = inf\n', "epoch", "not a time"),
    ],
)
def test_origins_and_epoch_are_checked(tmp_path: Path, text: str, key: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words) as raised:
        load_config(write(tmp_path, text), env={})
    assert raised.value.key == key


def test_several_origins_on_the_command_line_need_the_loop_source() -> None:
    from livecast.cli import main

    assert main(["up", "--origins", "2", "--source", "test", "--port", "0"]) == 2


def test_config_toml_reads_back_as_the_same_config(tmp_path: Path) -> None:
    """What ``livecast up`` hands to the origins it spawns: the resolved configuration."""
    from livecast.config import config_toml

    path = write(
        tmp_path,
        'source = "loop"\npart_duration = 0.2\nfont = "/a \\"b\\".ttf"\nloop_seconds = 8\n'
        '[[rungs]]\nname = "540p"\nwidth = 960\nheight = 540\nvideo_kbps = 1800\n'
        "[edge]\norigins = 2\nshield = true\n",
    )
    config = load_config(path, env={"LIVECAST_WINDOW": "12.5"}, overrides={"epoch": 1e9 + 1 / 3})
    again = tmp_path / "again.toml"
    again.write_text(config_toml(config))
    assert load_config(again, env={}) == config
    assert load_config(write(tmp_path, config_toml(load_config(None, env={}))), env={}) == (
        load_config(None, env={})
    )
