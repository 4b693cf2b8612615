"""The origin's own playlist age, followed directly while a rehearsal runs — the reference the
viewers' playlist ages are measured against (staleness in parts, ``results.fidelity``).

A viewer that receives a playlist at ``now`` whose newest media ends at program time ``end``
holds a playlist ``now − end`` old. Even at the origin that age is not zero (the packager
publishes a part when it is complete, and the clock of the program is the capture's), so the
follower asks the origin itself, with blocking reloads of one media playlist (each answered the
moment the next part exists), and records the age of every answer. A daemon thread with urllib:
one request in flight, bounded by its timeout, never in the viewers' path.
"""

from __future__ import annotations

import contextlib
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urljoin

from livecast.hls.playlist import parse_media_playlist, parse_multivariant_playlist
from livecast.player.track import blocking_url, newest_media_end
from livecast.results.histogram import Histogram

FOLLOW_TIMEOUT = 10.0  # seconds for one blocking reload (the origin holds at most 3 × TD)


@dataclass(frozen=True)
class PlaylistFacts:
    media_url: str  # the first variant's media playlist
    target_duration: float
    part_target: float | None  # None: no EXT-X-PART-INF (classic HLS)


def _get(url: str, timeout: float) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        body: bytes = response.read()
    return body.decode("utf-8", "replace")


def playlist_facts(multivariant_url: str, timeout: float = 10.0) -> PlaylistFacts:
    """Target duration and part target of the stream behind a multivariant playlist (or a media
    playlist given directly). Raises ``OSError``/``ValueError``/``PlaylistError`` on failure."""
    text = _get(multivariant_url, timeout)
    media_url = multivariant_url
    if "#EXT-X-TARGETDURATION" not in text:
        variants = parse_multivariant_playlist(text).variants
        if not variants:
            raise ValueError("the multivariant playlist lists no variant")
        media_url = urljoin(multivariant_url, variants[0].uri)
        text = _get(media_url, timeout)
    pl = parse_media_playlist(text)
    part_target = pl.part_inf.part_target if pl.part_inf is not None else None
    return PlaylistFacts(media_url, float(pl.target_duration), part_target)


class OriginFollower:
    """Blocking reloads of ``media_url``; the age of each answer goes into ``ages``."""

    def __init__(
        self, media_url: str, ages: Histogram, clock: Callable[[], float] = time.time
    ) -> None:
        self.media_url = media_url
        self.ages = ages
        self.clock = clock
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="origin-follower", daemon=True)
        self._lock = threading.Lock()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def snapshot(self) -> Histogram:
        with self._lock:
            return self.ages.copy()

    def _run(self) -> None:
        url = self.media_url
        while not self._stop.is_set():
            try:
                pl = parse_media_playlist(_get(url, FOLLOW_TIMEOUT))
            except Exception:  # a fault on the timeline, or the stack stopping: try again
                self.errors += 1
                url = self.media_url
                self._stop.wait(0.2)
                continue
            end = newest_media_end(pl)
            if end is not None:
                with self._lock, contextlib.suppress(ValueError):
                    self.ages.record(max(0.0, self.clock() - end))
            following = pl.next_part()
            if following is None or pl.endlist:
                url = self.media_url
                self._stop.wait(0.1)
            else:
                url = blocking_url(self.media_url, *following)
