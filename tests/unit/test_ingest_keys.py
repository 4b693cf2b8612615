"""Stream keys: constant-time lookup, fingerprints, and a key never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from livecast.config import config_toml, load_config
from livecast.errors import ConfigError
from livecast.ingest.keys import StreamKeys, fingerprint, key_problem
from livecast.ingest.settings import IngestSettings

KEY = "s3cret-key-42"


def test_stream_for_finds_only_the_exact_key() -> None:
    keys = StreamKeys({"main": KEY, "other": "another-key-7"})
    assert keys.stream_for(KEY) == "main"
    assert keys.stream_for("another-key-7") == "other"
    assert keys.stream_for(KEY[:-1]) is None
    assert keys.stream_for(KEY + "x") is None
    assert keys.stream_for("") is None


def test_fingerprint_is_short_stable_and_not_the_key() -> None:
    assert fingerprint(KEY) == fingerprint(KEY)
    assert len(fingerprint(KEY)) == 8
    assert fingerprint(KEY) != fingerprint(KEY + "x")
    assert KEY not in repr(StreamKeys({"main": KEY}))
    assert KEY not in repr(IngestSettings(stream_key=KEY))
    assert fingerprint(KEY) in repr(IngestSettings(stream_key=KEY))


@pytest.mark.parametrize(
    ("key", "problem"),
    [("k3y-7", "shorter"), ("x" * 300, "longer"), ("has/slash1", "character"),
     ("has space1", "character"), ("tab\tkey12", "character")],
)  # fmt: skip
def test_unusable_keys_are_named_without_quoting_them(key: str, problem: str) -> None:
    found = key_problem(key)
    assert found is not None and problem in found and key not in found


def test_contribution_source_needs_a_key_and_takes_it_from_the_environment() -> None:
    with pytest.raises(ConfigError, match="LIVECAST_STREAM_KEY"):
        load_config(None, env={}, overrides={"source": "rtmp"})
    config = load_config(None, env={"LIVECAST_STREAM_KEY": KEY}, overrides={"source": "rtmp"})
    assert config.ingest.stream_key == KEY
    with pytest.raises(ConfigError, match="shorter") as caught:
        load_config(None, env={"LIVECAST_STREAM_KEY": "k3y!"}, overrides={"source": "rtmp"})
    assert "k3y!" not in str(caught.value)


def test_ingest_table_is_read_validated_and_written_back(tmp_path: Path) -> None:
    path = tmp_path / "event.toml"
    path.write_text(
        'source = "rtmp"\n[ingest]\napp = "show"\nrtmp_port = 0\n'
        "input_loss = 2.5\ntakeover = true\n"
    )
    config = load_config(path, env={"LIVECAST_STREAM_KEY": KEY})
    assert (config.ingest.app, config.ingest.rtmp_port) == ("show", 0)
    assert (config.ingest.input_loss, config.ingest.takeover) == (2.5, True)
    again = tmp_path / "again.toml"
    again.write_text(config_toml(config))
    assert load_config(again, env={}) == config
    for bad, key in (("app = 'a/b'", "ingest.app"), ("input_loss = 0", "ingest.input_loss"),
                     ("rtmp_port = 70000", "ingest.rtmp_port"), ("nope = 1", "ingest.nope"),
                     ("takeover = 1", "ingest.takeover")):  # fmt: skip
        path.write_text(f'source = "rtmp"\n[ingest]\n{bad}\n')
        with pytest.raises(ConfigError) as caught:
            load_config(path, env={"LIVECAST_STREAM_KEY": KEY})
        assert caught.value.key == key


def test_examples_obs_toml_loads() -> None:
    config = load_config("examples/obs.toml", env={"LIVECAST_STREAM_KEY": KEY})
    assert config.source == "rtmp"
    assert (config.ingest.rtmp_port, config.ingest.srt_port, config.ingest.app) == (
        1935,
        9000,
        "live",
    )


def test_a_backup_key_adds_the_backup_input_and_is_never_shown() -> None:
    env = {"LIVECAST_STREAM_KEY": "primary-key-0001", "LIVECAST_BACKUP_KEY": "backup-key-0002"}
    config = load_config(None, env=env, overrides={"source": "rtmp"})
    assert config.ingest.inputs == ("primary", "backup")
    assert config.ingest.backup_key == "backup-key-0002"
    shown = repr(config.ingest)
    assert "backup-key-0002" not in shown and fingerprint("backup-key-0002") in shown
    single = load_config(None, env={"LIVECAST_STREAM_KEY": "primary-key-0001"},
                         overrides={"source": "rtmp"})  # fmt: skip
    assert single.ingest.inputs == ("primary",)


def test_backup_key_and_switch_timings_are_validated() -> None:
    with pytest.raises(ConfigError, match=r"ingest\.backup_key"):
        IngestSettings(stream_key="same-key-00001", backup_key="same-key-00001").validate(
            needs_key=True
        )
    with pytest.raises(ConfigError, match=r"ingest\.backup_key"):
        IngestSettings(stream_key="good-key-00001", backup_key="short").validate(needs_key=True)
    with pytest.raises(ConfigError, match=r"ingest\.failover_after"):
        IngestSettings(stream_key="good-key-00001", failover_after=2.0).validate(needs_key=True)
    with pytest.raises(ConfigError, match=r"ingest\.switch_back_after"):
        IngestSettings(stream_key="good-key-00001", switch_back_after=-1.0).validate(needs_key=True)


def test_more_events_take_their_keys_from_the_file_or_their_own_variables(tmp_path: Path) -> None:
    path = tmp_path / "events.toml"
    path.write_text(
        'source = "rtmp"\n[[events]]\nid = "stage-2"\n[[events]]\nid = "q_and_a"\n'
        'stream_key = "qa-file-key-0001"\n'
    )
    env = {"LIVECAST_STREAM_KEY": KEY, "LIVECAST_STREAM_KEY_STAGE_2": "stage2-key-00001",
           "LIVECAST_BACKUP_KEY_STAGE_2": "stage2-backup-001"}  # fmt: skip
    config = load_config(path, env=env)
    stage, qa = config.events
    assert (stage.id, stage.stream_key, stage.backup_key) == (
        "stage-2", "stage2-key-00001", "stage2-backup-001"
    )  # fmt: skip
    assert stage.inputs == ("primary", "backup") and qa.inputs == ("primary",)
    assert "stage2-key-00001" not in repr(config.events)
    again = tmp_path / "again.toml"
    again.write_text(config_toml(config))
    assert load_config(again, env={}) == config


@pytest.mark.parametrize(
    ("events", "key"),
    [
        ('[[events]]\nid = "main"\nstream_key = "other-key-00001"\n', "events[0].id"),
        ('[[events]]\nid = "a b"\nstream_key = "other-key-00001"\n', "events[0].id"),
        ('[[events]]\nid = "two"\n', "events[0].stream_key"),
        (f'[[events]]\nid = "two"\nstream_key = "{KEY}"\n', "events[0].stream_key"),
        ('[[events]]\nid = "two"\nstream_key = "other-key-00001"\n'
         '[[events]]\nid = "two"\nstream_key = "third-key-00001"\n', "events[1].id"),
        ('[[events]]\nid = "two"\nstream_key = "other-key-00001"\nwhat = 1\n', "events[0].what"),
        ("events = 3\n", "events"),
    ],
)  # fmt: skip
def test_bad_events_are_named(tmp_path: Path, events: str, key: str) -> None:
    path = tmp_path / "events.toml"
    path.write_text(f'source = "rtmp"\n{events}')
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={"LIVECAST_STREAM_KEY": KEY})
    assert caught.value.key == key


def test_more_events_need_a_contribution_source(tmp_path: Path) -> None:
    path = tmp_path / "events.toml"
    path.write_text('source = "test"\n[[events]]\nid = "two"\nstream_key = "other-key-00001"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert caught.value.key == "events"


def test_srt_keys_are_passphrases_and_every_input_has_a_port(tmp_path: Path) -> None:
    path = tmp_path / "srt.toml"
    path.write_text('source = "srt"\n[ingest]\nsrt_port = 9000\n')
    assert load_config(path, env={"LIVECAST_STREAM_KEY": "ten-chars-ok"}).source == "srt"
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={"LIVECAST_STREAM_KEY": "short-key"})  # 9: not an SRT passphrase
    assert caught.value.key == "ingest.stream_key"
    events = '[[events]]\nid = "two"\nstream_key = "second-key-0001"\n'
    for extra, key in ((events, "events[0].srt_port"),
                       (events + "srt_port = 9001\n", "events[0].srt_port")):  # fmt: skip
        path.write_text(f'source = "srt"\n[ingest]\nsrt_port = 9000\n{extra}')
        with pytest.raises(ConfigError) as caught:
            load_config(path, env={"LIVECAST_STREAM_KEY": "ten-chars-ok"})
        assert caught.value.key == key
    path.write_text(f'source = "srt"\n[ingest]\nsrt_port = 9000\n{events}srt_port = 9002\n')
    assert load_config(path, env={"LIVECAST_STREAM_KEY": "ten-chars-ok"}).events[0].srt_port == 9002
