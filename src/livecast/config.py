"""Event configuration: defaults → TOML file → environment → ``validate()``.

An event file (see docs/configuration.md) looks like::

    host = "0.0.0.0"
    port = 8080
    part_duration = 0.3333      # seconds, 0.2–1, snapped to whole frames
    segment_duration = 2.0
    window = 30.0               # seconds of segments in the live playlist

    [[rungs]]
    name = "720p"
    width = 1280
    height = 720
    video_kbps = 2500

    [record]                    # the recording: DVR/start-over, VOD at the same URLs
    dir = "recordings"          # "" (the default): no recording; or $LIVECAST_RECORD_DIR

    [edge]                      # what ``livecast up`` starts in front of the origin
    edges = 2
    shield = false
    port = 8081
    origins = 1                 # ≥ 2: redundant, epoch-locked origins (source = "loop" only)

    [shedding]                  # load shedding by priority (docs/edge.md); off by default
    enabled = true

    [access]                    # signed playback tokens at the origin and edges (docs/access.md)
    tokens = true
    keys = "keys.toml"          # the key ring; "" (the default): $LIVECAST_TOKEN_KEYS

    [admin]                     # the admin API (docs/access.md); off by default
    enabled = true
    port = 8090

Every top-level key can be overridden by an environment variable ``LIVECAST_<KEY>`` (upper case),
e.g. ``LIVECAST_PORT=9000``. Errors name the offending key (:class:`livecast.errors.ConfigError`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from livecast.access.settings import AccessSettings
from livecast.admin.settings import AdminSettings
from livecast.errors import ConfigError
from livecast.ingest.settings import (
    BACKUP_KEY_ENV,
    KEY_ENV,
    EventKeys,
    IngestSettings,
    check_distinct_keys,
)
from livecast.origin.shedding import SheddingConfig
from livecast.packager.event import DEFAULT_STREAM
from livecast.store.settings import RECORD_DIR_ENV, RecordSettings
from livecast.transcode.ladder import DEFAULT_LADDER, DEFAULT_X264_PARAMS, Ladder, Rung

ENV_PREFIX = "LIVECAST_"
SOURCES = ("test", "loop", "rtmp", "srt")
CONTRIBUTION_SOURCES = ("rtmp", "srt")  # an encoder publishes to livecast
LOOP_MAX_SECONDS = 600.0
MAX_ORIGINS = 16
ORIGINS_NEED_LOOP = (
    'several origins need source = "loop" (byte-identical replicas) or a contribution source '
    "(the encoder publishes to every origin, which name and date the segments alike): a test "
    "encode per origin is neither (a viewer failing over would get different media)"
)


def origins_allowed(source: str) -> bool:
    """Whether redundant origins can serve ``source`` under the same names (docs/edge.md)."""
    return source == "loop" or source in CONTRIBUTION_SOURCES


def _default_rungs() -> tuple[Rung, ...]:
    return DEFAULT_LADDER.rungs


WAKEUP_MODES = ("auto", "on", "off")


@dataclass(frozen=True)
class EdgeSettings:
    """The ``[edge]`` table: the nginx tier ``livecast up`` starts (docs/edge.md)."""

    edges: int = 2
    shield: bool = False
    port: int = 8081  # the first edge's port, the others follow; 0: any free ports
    workers: int = 1  # nginx worker processes per tier
    wakeup: str = "auto"  # Lua wake-up collapse: auto (when installed) | on (required) | off
    origins: int = 1  # origin processes behind the tier; ≥ 2: epoch-locked loop replicas

    def validate(self) -> EdgeSettings:
        if not 1 <= self.origins <= MAX_ORIGINS:
            raise ConfigError("edge.origins", f"{self.origins} is outside 1–{MAX_ORIGINS}")
        if not 1 <= self.edges <= 64:
            raise ConfigError("edge.edges", f"{self.edges} is outside 1–64")
        if not 0 <= self.port <= 65535 - self.edges:
            raise ConfigError("edge.port", f"{self.port} leaves no room for {self.edges} edges")
        if self.workers < 1:
            raise ConfigError("edge.workers", f"{self.workers} is not a worker count")
        if self.wakeup not in WAKEUP_MODES:
            raise ConfigError("edge.wakeup", f"{self.wakeup!r} is not one of auto, on, off")
        return self


@dataclass(frozen=True)
class EventConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    source: str = "test"
    part_duration: float = 1 / 3
    segment_duration: float = 2.0
    window: float = 30.0
    fps: int = 30
    preset: str = "ultrafast"
    x264_params: str = DEFAULT_X264_PARAMS
    audio_kbps: int = 128
    ffmpeg: str = ""  # path to a system FFmpeg; empty: $LIVECAST_FFMPEG or the imageio-ffmpeg wheel
    font: str = ""  # TrueType file for the burned-in clock; empty: look in the usual places
    log_level: str = "info"
    loop_seconds: float = 20.0  # source = "loop": length of the pre-encoded loop, whole segments
    cache_dir: str = (
        ""  # source = "loop": where pre-encodes are kept; empty: ~/.cache/livecast/loop
    )
    # source = "loop": wall-clock time (Unix seconds) of media time 0; 0: the clock at start.
    # Origins given the same epoch serve byte-identical parts and playlists (epoch locking).
    epoch: float = 0.0
    rungs: tuple[Rung, ...] = field(default_factory=_default_rungs)
    edge: EdgeSettings = field(default_factory=EdgeSettings)
    ingest: IngestSettings = field(default_factory=IngestSettings)
    events: tuple[EventKeys, ...] = ()  # more events on this server (contribution sources)
    record: RecordSettings = field(default_factory=RecordSettings)
    shedding: SheddingConfig = field(default_factory=SheddingConfig)
    access: AccessSettings = field(default_factory=AccessSettings)
    admin: AdminSettings = field(default_factory=AdminSettings)

    def validate(self) -> EventConfig:
        """Check every value; return a copy with the part duration snapped to whole frames."""
        if not 0 <= self.port <= 65535:
            raise ConfigError("port", f"{self.port} is not a TCP port")
        if self.source not in SOURCES:
            raise ConfigError("source", f"{self.source!r} is not one of {', '.join(SOURCES)}")
        if not 1 <= self.fps <= 120:
            raise ConfigError("fps", f"{self.fps} is outside 1–120")
        frames = round(self.part_duration * self.fps)
        if frames < 1 or abs(frames / self.fps - self.part_duration) > 0.01:
            raise ConfigError(
                "part_duration",
                f"{self.part_duration} s is not close to whole frames at {self.fps}",
            )
        snapped = dataclasses.replace(self, part_duration=frames / self.fps)
        if self.window < 3 * snapped.segment_duration:
            raise ConfigError(
                "window", f"{self.window} s is shorter than 3 segment durations (a live minimum)"
            )
        if self.log_level.lower() not in ("debug", "info", "warning", "error"):
            raise ConfigError("log_level", f"{self.log_level!r} is not debug/info/warning/error")
        self.edge.validate()
        contribution = self.source in CONTRIBUTION_SOURCES
        self.ingest.validate(needs_key=contribution, srt=self.source == "srt")
        self.record.validate()
        self.shedding.validate()
        self.access.validate()
        self.admin.validate()
        if self.admin.enabled and not self.access.tokens:
            raise ConfigError(
                "admin.enabled", "the admin API issues tokens: [access] tokens = true"
            )
        self._validate_events()
        if not math.isfinite(self.epoch) or self.epoch < 0:
            raise ConfigError("epoch", f"{self.epoch} is not a time (Unix seconds, or 0 for now)")
        if self.epoch and self.source != "loop":
            raise ConfigError(
                "epoch",
                "only the loop source can start from a given epoch (a live encode starts now)",
            )
        if self.edge.origins > 1 and not origins_allowed(self.source):
            raise ConfigError("edge.origins", ORIGINS_NEED_LOOP)
        ladder = snapped.ladder()  # the ladder validates durations, rungs, preset and audio
        segments = self.loop_seconds / ladder.segment_duration
        if abs(segments - round(segments)) > 1e-6 or round(segments) < 1:
            raise ConfigError(
                "loop_seconds",
                f"{self.loop_seconds} s is not a whole number of {ladder.segment_duration:g} s "
                "segments",
            )
        if self.loop_seconds > LOOP_MAX_SECONDS:
            raise ConfigError(
                "loop_seconds", f"{self.loop_seconds} s is above {LOOP_MAX_SECONDS:g} s"
            )
        return snapped

    def _validate_events(self) -> None:
        if not self.events:
            return
        if self.source not in CONTRIBUTION_SOURCES:
            raise ConfigError("events", "more events on one server need a contribution source")
        ids = [DEFAULT_STREAM]
        keys = [("ingest.stream_key", self.ingest.stream_key)]
        keys.append(("ingest.backup_key", self.ingest.backup_key))
        ports = {self.ingest.srt_port, self.ingest.srt_port + 1}
        for index, event in enumerate(self.events):
            event.validate(index, srt=self.source == "srt")
            if self.source == "srt" and {event.srt_port, event.srt_port + 1} & ports:
                raise ConfigError(
                    f"events[{index}].srt_port",
                    f"{event.srt_port} (and +1 for a backup) is another input's SRT port",
                )
            ports |= {event.srt_port, event.srt_port + 1}
            if event.id in ids:
                raise ConfigError(f"events[{index}].id", f"{event.id!r} is already an event")
            ids.append(event.id)
            keys += [(f"events[{index}].stream_key", event.stream_key)]
            keys += [(f"events[{index}].backup_key", event.backup_key)]
        check_distinct_keys(keys)

    def ladder(self) -> Ladder:
        return Ladder(
            rungs=self.rungs,
            fps=self.fps,
            audio_kbps=self.audio_kbps,
            part_duration=self.part_duration,
            segment_duration=self.segment_duration,
            preset=self.preset,
            x264_params=self.x264_params,
        )


_SCALAR_FIELDS = {
    f.name: f
    for f in dataclasses.fields(EventConfig)
    if f.name not in ("rungs", "edge", "ingest", "events", "record", "shedding", "access", "admin")
}
_EDGE_FIELDS = {f.name: f for f in dataclasses.fields(EdgeSettings)}
_INGEST_FIELDS = {f.name: f for f in dataclasses.fields(IngestSettings)}
_RECORD_FIELDS = {f.name: f for f in dataclasses.fields(RecordSettings)}
_SHEDDING_FIELDS = {f.name: f for f in dataclasses.fields(SheddingConfig)}
_ACCESS_FIELDS = {f.name: f for f in dataclasses.fields(AccessSettings)}
_ADMIN_FIELDS = {f.name: f for f in dataclasses.fields(AdminSettings)}
# the settings tables read and written field by field, in the order an event file has them
_SETTINGS_TABLES = {
    "record": _RECORD_FIELDS,
    "shedding": _SHEDDING_FIELDS,
    "access": _ACCESS_FIELDS,
    "admin": _ADMIN_FIELDS,
}


def _coerce(key: str, value: Any, kind: Any) -> Any:
    expected = {"int": int, "float": float, "str": str}[kind if isinstance(kind, str) else "str"]
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and expected is not str:
        try:
            return expected(value)
        except ValueError:
            raise ConfigError(key, f"{value!r} is not a valid {expected.__name__}") from None
    if not isinstance(value, expected) or isinstance(value, bool):
        raise ConfigError(key, f"expected {expected.__name__}, got {type(value).__name__}")
    return value


def _rungs(value: Any) -> tuple[Rung, ...]:
    if not isinstance(value, list) or not value:
        raise ConfigError("rungs", "expected a non-empty array of tables ([[rungs]])")
    rungs = []
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise ConfigError(f"rungs[{index}]", "expected a table")
        unknown = set(item) - {"name", "width", "height", "video_kbps"}
        if unknown:
            raise ConfigError(f"rungs[{index}].{sorted(unknown)[0]}", "unknown key")
        try:
            rungs.append(
                Rung(
                    str(item["name"]),
                    int(item["width"]),
                    int(item["height"]),
                    int(item["video_kbps"]),
                )
            )
        except KeyError as exc:
            raise ConfigError(f"rungs[{index}].{exc.args[0]}", "missing") from None
    return tuple(rungs)


def _table_changes(name: str, value: Any, fields: Mapping[str, Any]) -> dict[str, Any]:
    """The keys of a ``[name]`` table, checked against ``fields`` and coerced."""
    if not isinstance(value, dict):
        raise ConfigError(name, f"expected a table ([{name}])")
    changes: dict[str, Any] = {}
    for key, item in value.items():
        spec = fields.get(key)
        if spec is None:
            raise ConfigError(f"{name}.{key}", "unknown key")
        if spec.type == "bool":
            if not isinstance(item, bool):
                raise ConfigError(f"{name}.{key}", f"expected true or false, got {item!r}")
            changes[key] = item
        else:
            changes[key] = _coerce(f"{name}.{key}", item, spec.type)
    return changes


def _edge(value: Any) -> EdgeSettings:
    return EdgeSettings(**_table_changes("edge", value, _EDGE_FIELDS))


def _ingest(config: EventConfig, value: Any) -> IngestSettings:
    return dataclasses.replace(config.ingest, **_table_changes("ingest", value, _INGEST_FIELDS))


def _events(value: Any) -> tuple[EventKeys, ...]:
    if not isinstance(value, list):
        raise ConfigError("events", "expected an array of tables ([[events]])")
    fields = {f.name: f for f in dataclasses.fields(EventKeys)}
    return tuple(
        EventKeys(**_table_changes(f"events[{index}]", item, fields))
        for index, item in enumerate(value)
    )


def _event_keys_from_env(config: EventConfig, environ: Mapping[str, str]) -> EventConfig:
    events = []
    for event in config.events:
        suffix = event.env_suffix
        keys: dict[str, Any] = {
            name: environ[f"{prefix}_{suffix}"]
            for prefix, name in ((KEY_ENV, "stream_key"), (BACKUP_KEY_ENV, "backup_key"))
            if environ.get(f"{prefix}_{suffix}")
        }
        events.append(dataclasses.replace(event, **keys))
    return dataclasses.replace(config, events=tuple(events))


def _apply(config: EventConfig, values: Mapping[str, Any], origin: str) -> EventConfig:
    changes: dict[str, Any] = {}
    for key, value in values.items():
        if key == "rungs":
            changes["rungs"] = _rungs(value)
            continue
        if key == "edge":
            changes["edge"] = _edge(value)
            continue
        if key == "ingest":
            changes["ingest"] = _ingest(config, value)
            continue
        if key == "events":
            changes["events"] = _events(value)
            continue
        table = _SETTINGS_TABLES.get(key)
        if table is not None:  # [record], [shedding], [access], [admin]: over the current ones
            changes[key] = dataclasses.replace(
                getattr(config, key), **_table_changes(key, value, table)
            )
            continue
        spec = _SCALAR_FIELDS.get(key)
        if spec is None:
            raise ConfigError(key, f"unknown key (from {origin})")
        changes[key] = _coerce(key, value, spec.type)
    return dataclasses.replace(config, **changes)


def read_toml(path: str | Path, key: str) -> dict[str, Any]:
    """A TOML file as a dict; an unreadable or malformed file is a ConfigError under ``key``."""
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(key, f"cannot read {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(key, f"{path} is not valid TOML: {exc}") from exc


def load_config(
    path: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> EventConfig:
    """Defaults → TOML file → ``LIVECAST_*`` environment → explicit overrides → validate()."""
    config = EventConfig()
    if path is not None:
        config = _apply(config, read_toml(path, "config"), str(path))
    environ = os.environ if env is None else env
    from_env = {
        key: environ[ENV_PREFIX + key.upper()]
        for key in _SCALAR_FIELDS
        if ENV_PREFIX + key.upper() in environ
    }
    config = _apply(config, from_env, "environment")
    keys: dict[str, Any] = {
        field_name: environ[env_name]
        for env_name, field_name in ((KEY_ENV, "stream_key"), (BACKUP_KEY_ENV, "backup_key"))
        if environ.get(env_name)  # the stream keys: best kept out of the event file
    }
    if keys:
        config = dataclasses.replace(config, ingest=dataclasses.replace(config.ingest, **keys))
    config = _event_keys_from_env(config, environ)
    if RECORD_DIR_ENV in environ:
        record = dataclasses.replace(config.record, dir=environ[RECORD_DIR_ENV])
        config = dataclasses.replace(config, record=record)
    if overrides:
        config = _apply(config, {k: v for k, v in overrides.items() if v is not None}, "options")
    return config.validate()


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)  # exact: a float reads back as the same float
    return json.dumps(str(value))  # a JSON string is a TOML basic string


def config_toml(config: EventConfig) -> str:
    """An event file that :func:`load_config` reads back as ``config`` (without environment
    overrides) — how ``livecast up`` hands its configuration to the origins it spawns."""
    lines = [f"{name} = {_toml_value(getattr(config, name))}" for name in _SCALAR_FIELDS]
    for rung in config.rungs:
        lines += ["", "[[rungs]]"]
        lines += [
            f"{f.name} = {_toml_value(getattr(rung, f.name))}" for f in dataclasses.fields(rung)
        ]
    lines += ["", "[edge]"]
    lines += [f"{name} = {_toml_value(getattr(config.edge, name))}" for name in _EDGE_FIELDS]
    lines += ["", "[ingest]"]
    lines += [f"{name} = {_toml_value(getattr(config.ingest, name))}" for name in _INGEST_FIELDS]
    for table, fields in _SETTINGS_TABLES.items():
        settings = getattr(config, table)
        lines += ["", f"[{table}]"]
        lines += [f"{name} = {_toml_value(getattr(settings, name))}" for name in fields]
    for event in config.events:
        lines += ["", "[[events]]"]
        lines += [
            f"{f.name} = {_toml_value(getattr(event, f.name))}" for f in dataclasses.fields(event)
        ]
    return "\n".join(lines) + "\n"
