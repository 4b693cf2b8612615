"""Player configuration, defaults mirroring hls.js (v1.5 ``hls.js/src/config.ts``).

Mirrored hls.js settings:
  * ``fragLoadPolicy.default.errorRetry``: 6 retries, ``retryDelayMs`` 1000, ``maxRetryDelayMs``
    8000 (media: init, parts, segments);
  * ``playlistLoadPolicy.default.errorRetry``: 2 retries, 1 s → 8 s;
  * ``manifestLoadPolicy.default.errorRetry``: 1 retry, 1 s → 8 s;
  * ``abrEwmaFastLive`` 3 s, ``abrEwmaSlowLive`` 9 s, ``abrEwmaDefaultEstimate`` 500 kbit/s,
    ``abrBandWidthFactor`` 0.95, ``abrBandWidthUpFactor`` 0.7;
  * ``liveSyncDurationCount`` 3 (classic HLS starts 3 target durations behind the live edge);
    in low-latency mode hls.js targets PART-HOLD-BACK, as this model does;
  * the abandon rules of a loading fragment are checked every 100 ms (``AbrController``'s
    ``setInterval(this._abandonRulesCheck, 100)``): ``slow_fetch_check_interval``.

Start-over (``seek_back``): the viewer asks for the recording from ``seek_back`` seconds before
its play request (``main.m3u8?start=<now − seek_back>``, ``player.track.start_over_url``), as a
page with a DVR seek bar sets hls.js's ``startPosition``. hls.js buffers up to
``max(maxBufferLength 30 s, 8 × maxBufferSize 60 MB / bitrate)`` ahead (≥ 160 s at 3 Mbit/s), so
a start-over viewer a minute back fetches its whole backlog back to back, as the model (which has
no buffer cap) does; far longer seek-backs would over-fetch.

Not in hls.js: full jitter on the backoff (``RetryPolicy.jitter``, on by default — switch it off to
reproduce hls.js's synchronised retries, i.e. a retry storm) and the thresholds of the media
buffer model (``start_buffer``, ``resume_buffer``), which stand in for the browser's
HAVE_FUTURE_DATA readiness rule; see ``player.buffer``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Literal

from livecast.errors import ConfigError

Mode = Literal["llhls", "classic"]
StartLevel = Literal["lowest", "highest", "estimate"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retries of one request kind: delay before retry n (0-based) is
    ``min(max_delay, base_delay · 2**n)``, or a uniform draw below it when ``jitter`` is on."""

    max_retries: int
    base_delay: float = 1.0
    max_delay: float = 8.0
    jitter: bool = True
    timeout: float = 20.0  # seconds for the whole response (blocking requests get more)

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ConfigError("max_retries", "must be ≥ 0")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ConfigError("base_delay", "delays must be ≥ 0")
        if self.timeout <= 0:
            raise ConfigError("timeout", "must be > 0")

    def without_jitter(self) -> RetryPolicy:
        return RetryPolicy(self.max_retries, self.base_delay, self.max_delay, False, self.timeout)


MULTIVARIANT_RETRY = RetryPolicy(max_retries=1)
PLAYLIST_RETRY = RetryPolicy(max_retries=2)
FRAGMENT_RETRY = RetryPolicy(max_retries=6)


@dataclass(frozen=True, slots=True)
class PlayerConfig:
    """One viewer. ``downlink_bps`` is not enforced here (the model never sleeps): adapters and
    simulators throttle to it; the bandwidth estimate uses the times they report."""

    session_id: str
    content_id: str = "live"
    mode: Mode = "llhls"
    start_level: StartLevel = "estimate"
    downlink_bps: float | None = None
    leave_at: float | None = None  # wall-clock seconds: the viewer leaves then (churn)
    seek_back: float | None = None  # start-over: join this many seconds behind the play request
    # the origin's lease endpoint (``/session/heartbeat``, relative to the entry URL): joins and
    # heartbeats when the origin limits streams per account (``player.session``); None: none
    session_url: str | None = None
    default_estimate_bps: float = 500_000.0
    ewma_fast_half_life: float = 3.0
    ewma_slow_half_life: float = 9.0
    bandwidth_factor: float = 0.95
    bandwidth_up_factor: float = 0.7
    min_sample_seconds: float = 0.05  # hls.js EwmaBandWidthEstimator minDelayMs
    live_sync_duration_count: int = 3
    start_buffer: float = 0.1
    resume_buffer: float = 0.5
    latency_sample_interval: float = 1.0
    slow_fetch_check_interval: float = 0.1  # seconds between checks of a loading video fetch
    hold_margin: float = 1.0  # seconds beyond the server's 3 × TD hold before timing out
    multivariant_retry: RetryPolicy = field(default=MULTIVARIANT_RETRY)
    playlist_retry: RetryPolicy = field(default=PLAYLIST_RETRY)
    fragment_retry: RetryPolicy = field(default=FRAGMENT_RETRY)

    def __post_init__(self) -> None:
        if self.mode not in ("llhls", "classic"):
            raise ConfigError("mode", f"must be llhls or classic, got {self.mode!r}")
        if self.start_level not in ("lowest", "highest", "estimate"):
            raise ConfigError("start_level", f"unknown start level {self.start_level!r}")
        if self.downlink_bps is not None and self.downlink_bps <= 0:
            raise ConfigError("downlink_bps", "must be > 0")
        if self.ewma_fast_half_life <= 0 or self.ewma_slow_half_life <= 0:
            raise ConfigError("ewma_fast_half_life", "half-lives must be > 0")
        if not 0 < self.bandwidth_up_factor <= 1 or not 0 < self.bandwidth_factor <= 1:
            raise ConfigError("bandwidth_factor", "factors must be within (0, 1]")
        if self.start_buffer < 0 or self.resume_buffer < 0:
            raise ConfigError("resume_buffer", "buffer thresholds must be ≥ 0")
        if self.seek_back is not None and not 0 < self.seek_back < math.inf:
            raise ConfigError("seek_back", f"must be > 0 seconds, got {self.seek_back!r}")
        if self.latency_sample_interval <= 0 or self.slow_fetch_check_interval <= 0:
            raise ConfigError("latency_sample_interval", "intervals must be > 0")

    @property
    def start_over(self) -> bool:
        """A start-over (DVR) viewer: its requests and outcome are counted apart from live."""
        return self.seek_back is not None

    def retry_policy(self, kind: str) -> RetryPolicy:
        """The policy of a request kind: multivariant, playlist, or media (init/part/segment)."""
        if kind == "multivariant":
            return self.multivariant_retry
        if kind == "playlist":
            return self.playlist_retry
        return self.fragment_retry

    def without_jitter(self) -> PlayerConfig:
        """The same viewer with every backoff synchronised (hls.js behaviour: a retry storm)."""
        return replace(
            self,
            multivariant_retry=self.multivariant_retry.without_jitter(),
            playlist_retry=self.playlist_retry.without_jitter(),
            fragment_retry=self.fragment_retry.without_jitter(),
        )
