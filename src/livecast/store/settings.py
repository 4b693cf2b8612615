"""The ``[record]`` table of an event file (pure): where the recording goes and how it behaves.

    [record]
    dir = "recordings"          # record every event under this directory ("" = no recording)
    fsync = "segment"           # off | segment | part (docs/recording.md "Durability")
    dvr_window = 7200.0         # seconds of start-over behind the live end (0: the whole event)
    end_linger = 2.0            # after the end (SIGTERM), keep serving this long so that watching
                                # players fetch EXT-X-ENDLIST, then exit

``$LIVECAST_RECORD_DIR`` overrides ``dir``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from livecast.errors import ConfigError
from livecast.store.archive import FSYNC_POLICIES

RECORD_DIR_ENV = "LIVECAST_RECORD_DIR"


@dataclass(frozen=True)
class RecordSettings:
    dir: str = ""
    fsync: str = "segment"
    dvr_window: float = 7200.0
    end_linger: float = 2.0

    @property
    def enabled(self) -> bool:
        return bool(self.dir)

    @property
    def path(self) -> Path:
        return Path(self.dir).expanduser()

    def validate(self) -> RecordSettings:
        if self.fsync not in FSYNC_POLICIES:
            raise ConfigError("record.fsync", f"{self.fsync!r} is not one of off, segment, part")
        if not math.isfinite(self.dvr_window) or self.dvr_window < 0:
            raise ConfigError("record.dvr_window", f"{self.dvr_window} is not ≥ 0 seconds")
        if not math.isfinite(self.end_linger) or not 0 <= self.end_linger <= 600:
            raise ConfigError("record.end_linger", f"{self.end_linger} is outside 0–600 s")
        if self.enabled and self.path.exists() and not self.path.is_dir():
            raise ConfigError("record.dir", f"{self.dir} exists and is not a directory")
        return self
