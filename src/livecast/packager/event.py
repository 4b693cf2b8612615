"""A live event: the renditions of one multivariant playlist and the playlists they render.

Sans-IO.

The event turns encoder output (init segments and fragments per rendition, grouped in generations
that restart after an encoder failure) into parts and segments, and renders playlist text once per
state change so that every viewer waiting for the same version shares the same bytes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from livecast.errors import MediaError
from livecast.hls.playlist import (
    MultivariantPlaylist,
    render_media_playlist,
    render_multivariant_playlist,
)
from livecast.hls.tags import Media, RenditionReport, StreamInf
from livecast.media.fmp4 import Fragment, InitSegment
from livecast.packager.cutter import Cut
from livecast.packager.live import LiveRendition, PackagingConfig
from livecast.store.contract import Store
from livecast.store.ram import RamRing

AUDIO_GROUP = "aac"


@dataclass(frozen=True, slots=True)
class RenditionSpec:
    name: str  # URL-safe, e.g. "720p" or "audio"
    kind: str  # "video" or "audio"


DEFAULT_STREAM = "main"


class LiveEvent:
    """The packager of one stream (``stream`` id); its media bytes go to ``store``."""

    def __init__(
        self,
        config: PackagingConfig,
        renditions: list[RenditionSpec],
        *,
        stream: str = DEFAULT_STREAM,
        store: Store | None = None,
    ) -> None:
        if not renditions:
            raise MediaError("an event needs at least one rendition")
        self.config = config
        self.stream = stream
        self.store: Store = store if store is not None else RamRing()
        self.specs = {spec.name: spec for spec in renditions}
        self.renditions = {
            spec.name: LiveRendition(spec.name, config, self.store.open(stream, spec.name))
            for spec in renditions
        }
        self.dvr_window = 7200.0  # seconds of start-over behind the live end (0: whole event)
        self.version = 0  # bumped on every published part or segment
        self._playlist_cache: dict[tuple[str, bool], tuple[int, bytes]] = {}
        self._multivariant_cache: tuple[int, bytes] | None = None
        self.generation = -1
        self.epoch = 0.0
        self._msn_base = 0
        self._gap_durations: dict[int, float] = {}

    # ------------------------------------------------------------------ encoder input
    def start_generation(self, generation: int, epoch: float) -> None:
        """A new encoder run begins; media time 0 of it was captured at wall clock ``epoch``.

        MSNs continue after the newest segment of any rendition; the very first run starts at
        ``epoch / segment_duration`` so that a restarted livecast never reuses segment names.
        """
        flushed = [cut for r in self.renditions.values() for cut in r.flush()]
        self._changed(flushed)  # what the stopped run left open is complete now, in every rendition
        self._gap_durations = self._newest_durations()
        if self._gap_durations:
            self._msn_base = max(self._gap_durations) + 1
        else:
            self._msn_base = math.floor(epoch / self.config.segment_duration)
        self.generation = generation
        self.epoch = epoch

    def _newest_durations(self) -> dict[int, float]:
        """Each rendition's newest segment: MSN → its longest duration, what a rendition that
        lacks that number lists as its EXT-X-GAP (``LiveRendition``)."""
        durations: dict[int, float] = {}
        for rendition in self.renditions.values():
            newest = rendition.newest_segment()
            if newest is not None:
                durations[newest.msn] = max(durations.get(newest.msn, 0.0), newest.duration)
        return durations

    def on_init(self, rendition: str, init: InitSegment) -> list[Cut]:
        cuts = self._rendition(rendition).start_generation(
            init,
            epoch=self.epoch,
            msn_base=self._msn_base,
            generation_id=f"{self._msn_base}",
            gap_durations=self._gap_durations,
        )
        return self._changed(cuts, always=True)

    def on_fragment(self, rendition: str, fragment: Fragment) -> list[Cut]:
        return self._changed(self._rendition(rendition).add_fragment(fragment))

    def end(self) -> None:
        for rendition in self.renditions.values():
            rendition.end()
        self._changed([], always=True)

    def _rendition(self, name: str) -> LiveRendition:
        try:
            return self.renditions[name]
        except KeyError:
            raise MediaError(f"unknown rendition {name!r}") from None

    def _changed(self, cuts: list[Cut], *, always: bool = False) -> list[Cut]:
        if cuts or always:
            self.version += 1
        return cuts

    # ------------------------------------------------------------------ state
    @property
    def ready(self) -> bool:
        """Every rendition has a complete segment, so real bit rates are known."""
        return all(r.ready for r in self.renditions.values())

    @property
    def ended(self) -> bool:
        return all(r.ended for r in self.renditions.values())

    # ------------------------------------------------------------------ playlists
    def media_playlist_bytes(self, name: str, *, skip: bool = False) -> bytes:
        """The rendition's playlist at the current version; rendered once per version. Once the
        event ended, a recorded rendition's playlist is the VOD of the whole event."""
        key = (name, skip)
        cached = self._playlist_cache.get(key)
        if cached is not None and cached[0] == self.version:
            return cached[1]
        rendition = self._rendition(name)
        if rendition.serves_vod:
            data = rendition.recorded_playlist()
            self._playlist_cache[key] = (self.version, data)
            return data
        playlist = rendition.media_playlist(skip=skip)
        playlist.rendition_reports = self._reports(exclude=name)
        data = render_media_playlist(playlist).encode()
        self._playlist_cache[key] = (self.version, data)
        return data

    def _reports(self, exclude: str) -> list[RenditionReport]:
        reports = []
        for name, rendition in self.renditions.items():
            position = rendition.position()
            if name == exclude or position is None:
                continue
            last_part = position.last_part if position.last_part >= 0 else None
            reports.append(RenditionReport(f"../{name}/index.m3u8", position.last_msn, last_part))
        return reports

    def multivariant_bytes(self, query: str = "") -> bytes:
        """The multivariant playlist; ``query`` (e.g. ``start=…``) is appended to every media
        playlist URI, so that a start-over viewer's player asks for DVR playlists throughout."""
        if query:
            playlist = self.multivariant()
            playlist.variants = [replace(v, uri=f"{v.uri}?{query}") for v in playlist.variants]
            playlist.media = [
                replace(m, uri=f"{m.uri}?{query}") if m.uri else m for m in playlist.media
            ]
            return render_multivariant_playlist(playlist).encode()
        if self._multivariant_cache and self._multivariant_cache[0] == self.version:
            return self._multivariant_cache[1]
        data = render_multivariant_playlist(self.multivariant()).encode()
        self._multivariant_cache = (self.version, data)
        return data

    def multivariant(self) -> MultivariantPlaylist:
        """Variant attributes from the real streams: codecs and size from the init segments,
        frame rate from the fragments, BANDWIDTH/AVERAGE-BANDWIDTH from segment sizes."""
        audio = [r for r in self.renditions.values() if self.specs[r.name].kind == "audio"]
        pl = MultivariantPlaylist()
        audio_peak = audio_avg = 0
        audio_codec = None
        for rendition in audio:
            peak, avg = rendition.bitrates()
            audio_peak, audio_avg = max(audio_peak, peak), max(audio_avg, avg)
            track = rendition.track
            audio_codec = track.codec if track else audio_codec
            pl.media.append(
                Media(
                    type="AUDIO",
                    group_id=AUDIO_GROUP,
                    name=rendition.name,
                    uri=f"{rendition.name}/index.m3u8",
                    default=rendition is audio[0],
                    autoselect=True,
                    channels=str(track.channels) if track and track.channels else None,
                )
            )
        for rendition in self.renditions.values():
            if self.specs[rendition.name].kind != "video" or rendition.track is None:
                continue
            peak, avg = rendition.bitrates()
            codecs = rendition.track.codec + (f",{audio_codec}" if audio_codec else "")
            pl.variants.append(
                StreamInf(
                    bandwidth=peak + audio_peak,
                    average_bandwidth=avg + audio_avg,
                    codecs=codecs,
                    resolution=(rendition.track.width, rendition.track.height),
                    frame_rate=rendition.frame_rate,
                    audio=AUDIO_GROUP if audio else None,
                    uri=f"{rendition.name}/index.m3u8",
                )
            )
        pl.variants.sort(key=lambda v: -v.bandwidth)
        return pl
