"""Parsed media playlists, shared between viewers (pure).

The origin renders each playlist version once and every viewer waiting for it receives the same
bytes, so a rehearsal with thousands of viewers would parse the same text thousands of times.
:class:`PlaylistCache` keeps the last few parse results keyed by (body, base URL, mode); a driver
passes one cache to all its :class:`~livecast.player.model.Player` objects. Results are never
mutated after they are built, so sharing them is safe. Without a shared cache each player keeps
its own (a cache is only an optimisation: the answers are identical).

URLs are resolved with ``player.track.join_url``, a fast path for the relative file names
playlists use (``urllib.parse.urljoin`` dominated the model's profile).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from livecast.hls.playlist import MediaPlaylist, parse_media_playlist
from livecast.player.track import (
    MediaItem,
    Position,
    hinted_part,
    index_playlist,
    newest_init_url,
    newest_media_end,
)


@dataclass(frozen=True, slots=True)
class ParsedPlaylist:
    playlist: MediaPlaylist  # not to be mutated: shared between viewers
    items: dict[Position, MediaItem]
    hint: tuple[Position, str] | None
    init_url: str | None
    newest_end: float | None  # program time at the end of the newest listed media


class PlaylistCache:
    """The ``size`` most recent parse results (least recently used evicted)."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[tuple[str, str, bool], ParsedPlaylist] = OrderedDict()

    def parse(self, text: str, base_url: str, parts: bool) -> ParsedPlaylist:
        key = (text, base_url, parts)
        found = self._entries.get(key)
        if found is not None:
            self.hits += 1
            self._entries.move_to_end(key)
            return found
        self.misses += 1
        pl = parse_media_playlist(text)
        parsed = ParsedPlaylist(
            pl,
            index_playlist(pl, base_url, parts=parts),
            hinted_part(pl, base_url) if parts else None,
            newest_init_url(pl, base_url),
            newest_media_end(pl),
        )
        self._entries[key] = parsed
        if len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return parsed
