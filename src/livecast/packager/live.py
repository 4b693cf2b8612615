"""Live renditions: the packager's state for one rendition and the playlist it renders — sans-IO.

A :class:`LiveRendition` owns a :class:`SegmentCutter` per encoder run ("generation"), keeps the
timeline of the live window (segments and their parts: numbers, durations, PDT — no bytes) and
builds the :class:`MediaPlaylist` for it. The bytes go through the store seam
(:mod:`livecast.store.contract`): put as they are cut, retired when the window no longer serves
them. Time never enters: PDT comes from the encoder's capture epoch. The window is measured in PDT
(wall-clock capture time), which keeps its meaning across encoder runs whose media time restarts.

With a recording (:class:`~livecast.store.archive.RecordedRendition`) the rendition starts from
what the recording holds — the live window of a restarted origin continues with the same MSNs —
and serves DVR and VOD playlists over the whole recording (:meth:`LiveRendition.recorded_playlist`).

Window rules (draft-pantos-hls-rfc8216bis §6.2.2, Apple LL-HLS):
  * the playlist lists at least 3 target durations of segments (``window`` ≥ 3 × TD, validated);
  * EXT-X-PART tags are listed only for segments ending within 3 target durations of the live end,
    and part files stay downloadable 3 target durations longer (6 × TD);
  * a segment stays downloadable for one more window after it leaves the playlist ("… available to
    clients for a period of time equal to the duration of the Playlist file plus the duration of
    the segment").
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from livecast.errors import MediaError, RequestError, StoreError
from livecast.hls.attributes import format_pdt
from livecast.hls.directives import LivePosition
from livecast.hls.playlist import MediaPlaylist, SegmentEntry
from livecast.hls.tags import MapTag, PartInf, PartTag, PreloadHint, ServerControl, Skip
from livecast.media.fmp4 import Fragment, InitSegment, TrackInfo, parse_init
from livecast.packager.cutter import Cut, Part, PartCut, Segment, SegmentCut, SegmentCutter
from livecast.store.archive import RecordedRendition
from livecast.store.contract import RenditionStore, WindowPolicy, part_name, segment_name
from livecast.store.journal import RecordedSegment
from livecast.store.ram import RamRendition


def _segment_of(recorded: RecordedSegment) -> Segment:
    """A recovered segment as the packager's timeline holds it."""
    segment = Segment(
        msn=recorded.msn,
        start=recorded.start,
        pdt=recorded.pdt,
        discontinuity=recorded.discontinuity,
        init_name=recorded.init_name,
        discontinuity_sequence=recorded.discontinuity_sequence,
        complete=True,
        gap=recorded.gap,
        duration_without_parts=recorded.duration_without_parts,
    )
    start = recorded.start
    for part in recorded.parts:
        segment.parts.append(
            Part(recorded.msn, part.index, start, part.duration, part.independent, part.size)
        )
        start += part.duration
    return segment


@dataclass(frozen=True, slots=True)
class PackagingConfig:
    part_target: float  # declared PART-TARGET, ≥ every part's duration
    segment_duration: float  # nominal; segments cut on k × segment_duration
    window: float = 30.0  # seconds of segments listed in the playlist

    @property
    def target_duration(self) -> int:
        return max(1, math.ceil(self.segment_duration - 1e-6))

    @property
    def parts_per_segment(self) -> int:
        return max(1, math.ceil(self.segment_duration / self.part_target - 1e-6))

    def window_policy(self) -> WindowPolicy:
        return WindowPolicy.live(window=self.window, target_duration=self.target_duration)

    def server_control(self) -> ServerControl:
        td = self.target_duration
        return ServerControl(
            can_block_reload=True,
            part_hold_back=math.ceil(3000 * self.part_target) / 1000,
            hold_back=3.0 * td,
            can_skip_until=6.0 * td,
        )


class LiveRendition:
    def __init__(
        self, name: str, config: PackagingConfig, store: RenditionStore | None = None
    ) -> None:
        self.name = name
        self.config = config
        self.window = config.window_policy()
        self.store: RenditionStore = store if store is not None else RamRendition()
        self.track: TrackInfo | None = None
        self.frame_rate: float | None = None
        self.init_names: set[str] = set()  # init segments the live window refers to
        self._cutter: SegmentCutter | None = None
        self._segments: deque[Segment] = deque()  # complete, oldest first (listed + retained)
        self._by_msn: dict[int, Segment] = {}
        self._parts_served: deque[Segment] = deque()  # complete, whose part files are served
        self._discontinuity_count = 0  # discontinuities seen so far
        self.ended = False
        self.recording = self.store if isinstance(self.store, RecordedRendition) else None
        if self.recording is not None:
            self._restore(self.recording.take_recovered(), ended=self.recording.ended)

    def _restore(self, recorded: list[RecordedSegment], *, ended: bool) -> None:
        """Start from the recording: the segments of the live window, the end mark."""
        assert self.recording is not None
        self.ended = ended
        if not recorded:
            return
        live_end = recorded[-1].pdt + recorded[-1].duration
        kept = [
            s
            for s in recorded
            if self.window.keeps_segment(segment_end=s.pdt + s.duration, live_end=live_end)
        ]
        for old in kept or recorded[-1:]:
            segment = _segment_of(old)
            self._segments.append(segment)
            self._by_msn[segment.msn] = segment
            self.init_names.add(segment.init_name)
            if self.window.keeps_parts(segment_end=segment.pdt_end, live_end=live_end):
                self._parts_served.append(segment)
                self.recording.restore_parts(old)
        self._discontinuity_count = self._segments[-1].discontinuity_sequence
        init = self.recording.init(self._segments[-1].init_name)
        if init is not None:
            try:
                self.track = parse_init(init)
            except MediaError:
                self.track = None

    # ------------------------------------------------------------------ input
    def start_generation(
        self,
        init: InitSegment,
        *,
        epoch: float,
        msn_base: int,
        generation_id: str,
        gap_durations: dict[int, float] | None = None,
    ) -> list[Cut]:
        """A (re)started encoder sent its init segment: close what is open, start a new run."""
        cuts = self.flush()
        self._fill_gaps(msn_base, gap_durations or {})
        init_name = f"init-{generation_id}.mp4"
        self.store.put_init(init_name, init.data)
        self.init_names.add(init_name)
        self.track = init.track
        self._cutter = SegmentCutter(
            timescale=init.track.timescale,
            part_target=self.config.part_target,
            segment_duration=self.config.segment_duration,
            epoch=epoch,
            msn_base=msn_base,
            init_name=init_name,
            discontinuity=bool(self._segments),
        )
        return cuts

    def flush(self) -> list[Cut]:
        """The encoder run stopped: close the open part and segment (short ones)."""
        cuts = self._cutter.flush() if self._cutter else []
        for cut in cuts:
            self._on_cut(cut)
        return cuts

    def _fill_gaps(self, msn_base: int, durations: dict[int, float]) -> None:
        """Segment numbers before the new run's first that this rendition never produced (the
        other renditions had opened one more segment when the encoder stopped): listed with
        EXT-X-GAP, so that MSNs stay contiguous — a player numbers segments by position — and
        as long as the other renditions' segment of that number (``durations``): the timeline
        gets no hole that was not in the media."""
        if not self._segments:
            return
        previous = self._segments[-1]
        for msn in range(previous.msn + 1, msn_base):
            gap = Segment(
                msn=msn,
                start=previous.end,
                pdt=previous.pdt_end,
                discontinuity=False,
                init_name=previous.init_name,
                discontinuity_sequence=self._discontinuity_count,
                complete=True,
                gap=True,
                duration_without_parts=durations.get(msn, 0.0),
            )
            self._by_msn[msn] = gap
            self._segments.append(gap)
            self.store.put_gap(gap)
            previous = gap

    def add_fragment(self, fragment: Fragment) -> list[Cut]:
        if self._cutter is None:
            raise MediaError(f"rendition {self.name}: fragment before any init segment")
        if self.frame_rate is None and self.track and self.track.kind == "video":
            seconds = fragment.duration / self.track.timescale
            self.frame_rate = round(fragment.sample_count / seconds, 3) if seconds else None
        cuts = self._cutter.push(fragment)
        for cut in cuts:
            self._on_cut(cut)
        return cuts

    def end(self) -> list[Cut]:
        """The event is over: flush and mark the playlist with EXT-X-ENDLIST (and the recording
        with its end: it is VOD from now on, also after a restart)."""
        cuts = self.flush()
        self.ended = True
        if self.recording is not None:
            self.recording.end()
        return cuts

    def _on_cut(self, cut: Cut) -> None:
        segment = cut.segment
        if segment.msn not in self._by_msn:
            self._discontinuity_count += 1 if segment.discontinuity else 0
            segment.discontinuity_sequence = self._discontinuity_count
        self._by_msn[segment.msn] = segment
        if isinstance(cut, PartCut):
            self.store.put_part(segment, cut.part, cut.data)
        elif isinstance(cut, SegmentCut) and (
            not self._segments or self._segments[-1] is not segment
        ):
            self.store.put_segment(segment, cut.data)
            self._segments.append(segment)
            self._parts_served.append(segment)
            self._prune()

    def _prune(self) -> None:
        """Retire from the store what the live window no longer serves (module doc)."""
        live_end = self._segments[-1].pdt_end
        while self._parts_served and not self.window.keeps_parts(
            segment_end=self._parts_served[0].pdt_end, live_end=live_end
        ):
            self.store.retire_parts(self._parts_served.popleft().msn)
        while len(self._segments) > 1 and not self.window.keeps_segment(
            segment_end=self._segments[0].pdt_end, live_end=live_end
        ):
            old = self._segments.popleft()
            del self._by_msn[old.msn]
            self.store.retire_segment(old.msn)
        referenced = {s.init_name for s in self._segments}
        if self._cutter is not None:
            referenced.add(self._cutter.init_name)
        for name in self.init_names - referenced:
            self.init_names.discard(name)
            self.store.retire_init(name)

    # ------------------------------------------------------------------ queries
    def newest_segment(self) -> Segment | None:
        """The segment being produced, else the newest complete one."""
        return self.open_segment or (self._segments[-1] if self._segments else None)

    @property
    def open_segment(self) -> Segment | None:
        return self._cutter.open_segment if self._cutter else None

    @property
    def ready(self) -> bool:
        return bool(self._segments)

    def position(self) -> LivePosition | None:
        """Newest segment (complete or being produced) and its newest part."""
        newest = self.open_segment or (self._segments[-1] if self._segments else None)
        if newest is None:
            return None
        return LivePosition(newest.msn, len(newest.parts) - 1, self.config.parts_per_segment)

    def next_part(self) -> tuple[int, int] | None:
        """(msn, index) of the part being produced: the EXT-X-PRELOAD-HINT target."""
        if self.ended:
            return None
        if (seg := self.open_segment) is not None:
            return seg.msn, len(seg.parts)
        if self._segments:
            return self._segments[-1].msn + 1, 0
        return None

    def _live_end(self) -> float:
        """Wall-clock end of the newest media (the window is measured in PDT: module doc)."""
        seg = self.open_segment or (self._segments[-1] if self._segments else None)
        return seg.pdt_end if seg else 0.0

    def last_complete_msn(self) -> int | None:
        return self._segments[-1].msn if self._segments else None

    def has_segment(self, msn: int) -> bool:
        """Segment ``msn`` or a later one is complete (§6.2.5.2 "... M or later")."""
        last = self.last_complete_msn()
        return last is not None and last >= msn

    def has_part(self, msn: int, index: int) -> bool:
        """Part ``index`` of ``msn`` or a later part exists. A part index past a segment's last
        part means part 0 of the next segment (§6.2.5.2)."""
        pos = self.position()
        if pos is None or (pos.last_part < 0 and pos.last_msn <= msn):
            return False
        if pos.last_part < 0:  # newest segment has no part yet: look at the one before
            return pos.last_msn - 1 > msn or (
                pos.last_msn - 1 == msn and self._has_index(msn, index)
            )
        if pos.last_msn > msn + 1:
            return True
        if pos.last_msn == msn + 1:
            return True  # part 0 of msn + 1 exists, so segment msn is complete
        return pos.last_msn == msn and pos.last_part >= index

    def _has_index(self, msn: int, index: int) -> bool:
        seg = self._by_msn.get(msn)
        return seg is not None and index < len(seg.parts)

    def _refuse_before_media(self) -> None:
        """No media yet (the event is starting, or this origin restarted and waits for its
        encoder): refuse media requests with 503, as the playlists are refused, not 404 — behind
        an edge, a 503 passes the request to the next origin (``proxy_next_upstream http_503``),
        which has the part the viewer saw listed, while a 404 would reach the viewer."""
        if not self.ended and self.position() is None:
            raise RequestError(503, f"rendition {self.name} has not started")

    def init_data(self, name: str) -> bytes | None:
        self._refuse_before_media()
        if name in self.init_names or self.recording is not None:
            return self.store.init(name)
        return None

    def segment_data(self, msn: int) -> bytes | None:
        self._refuse_before_media()
        seg = self._by_msn.get(msn)
        if seg is not None:
            return self.store.segment(msn) if seg.complete and not seg.gap else None
        if self.recording is not None:  # older than the live window: from the recording
            return self.recording.segment(msn)
        return None

    def part_data(self, msn: int, index: int) -> bytes | None:
        self._refuse_before_media()
        seg = self._by_msn.get(msn)
        if seg is None or index >= len(seg.parts):
            return None
        if not self.window.keeps_parts(segment_end=seg.pdt_end, live_end=self._live_end()):
            return None  # part files are kept 3 target durations past their listing
        return self.store.part(msn, index)

    def part_is_pending(self, msn: int, index: int) -> bool:
        """The part is hinted (or will be, for a brand-new segment) but not yet complete."""
        return self.next_part() == (msn, index)

    # ------------------------------------------------------------------ playlist
    def media_playlist(self, *, skip: bool = False) -> MediaPlaylist:
        cfg = self.config
        listed = self._listed_segments()
        open_seg = self.open_segment
        live_end = self._live_end()
        skipped = self._skippable(listed) if skip else 0
        entries: list[SegmentEntry] = []
        previous_init = None
        for position, seg in enumerate(listed):
            if position < skipped:
                continue  # the first listed segment repeats EXT-X-MAP
            with_parts = self.window.lists_parts(segment_end=seg.pdt_end, live_end=live_end)
            entries.append(self._entry(seg, with_parts=with_parts, previous_init=previous_init))
            previous_init = seg.init_name
        if open_seg is not None and open_seg.parts:
            entries.append(self._entry(open_seg, with_parts=True, previous_init=previous_init))
        if entries and not skipped:
            entries[0].discontinuity = False  # counted by EXT-X-DISCONTINUITY-SEQUENCE instead
        first = listed[0] if listed else open_seg
        pl = MediaPlaylist(
            target_duration=cfg.target_duration,
            media_sequence=first.msn if first else 0,
            discontinuity_sequence=first.discontinuity_sequence if first else 0,
            server_control=cfg.server_control(),
            part_inf=PartInf(cfg.part_target),
            skip=Skip(skipped) if skip and skipped else None,
            segments=entries,
            endlist=self.ended,
        )
        hint = self.next_part()
        if hint is not None:
            pl.preload_hints.append(PreloadHint("PART", part_name(*hint)))
        return pl

    def _listed_segments(self) -> list[Segment]:
        """The newest complete segments covering at least ``window`` seconds."""
        listed: list[Segment] = []
        total = 0.0
        for seg in reversed(self._segments):
            listed.append(seg)
            total += seg.duration
            if total >= self.window.listed - 1e-6:
                break
        listed.reverse()
        return listed

    def _skippable(self, listed: list[Segment]) -> int:
        """Segments that end more than CAN-SKIP-UNTIL before the end of the playlist."""
        until = 6.0 * self.config.target_duration
        live_end = self._live_end()
        count = 0
        for seg in listed:
            if live_end - seg.pdt_end < until:
                break
            count += 1
        return count

    def _entry(self, seg: Segment, *, with_parts: bool, previous_init: str | None) -> SegmentEntry:
        parts = (
            [PartTag(part_name(p.msn, p.index), p.duration, p.independent) for p in seg.parts]
            if with_parts
            else []
        )
        return SegmentEntry(
            uri=segment_name(seg.msn) if seg.complete else None,
            duration=seg.duration,
            parts=parts,
            pdt=seg.pdt,
            discontinuity=seg.discontinuity,
            map=MapTag(seg.init_name) if seg.init_name != previous_init else None,
            gap=seg.gap,
        )

    # ------------------------------------------------------------------ recording
    def recorded_playlist(
        self, start: float | None = None, end: float | None = None, *, dvr_window: float = 0.0
    ) -> bytes:
        """A playlist over the recording from PDT ``start`` to ``end`` (start-over / DVR), or the
        whole event when both are None. EVENT while it can still grow; VOD with EXT-X-ENDLIST once
        the event ended or ``end`` is in the past. Raises :class:`StoreError` (→ 404) with the
        reason when the range is outside what may be served: before the DVR window (``dvr_window``
        seconds back from the live end, 0 = the whole event; no limit once the event ended),
        after the newest segment, or empty."""
        if self.recording is None:
            raise StoreError("this origin keeps no recording")
        index = self.recording.index
        first, last = index.first, index.last
        if first is None or last is None:
            raise StoreError("nothing is recorded yet")
        oldest = first.pdt
        if dvr_window > 0 and not self.ended:
            oldest = max(oldest, last.pdt_end - dvr_window)
        begin = oldest if start is None else start
        if begin < oldest - self.config.segment_duration:
            raise StoreError(
                f"start {format_pdt(begin)} is before the DVR window (it begins at "
                f"{format_pdt(oldest)})"
            )
        if begin >= last.pdt_end:
            raise StoreError(
                f"start {format_pdt(begin)} is after the newest recorded segment (it ends at "
                f"{format_pdt(last.pdt_end)})"
            )
        if end is not None and end <= begin:
            raise StoreError("end must be after start")
        head = index.find_pdt(begin)
        tail = index.count - 1 if end is None else min(index.find_pdt(end), index.count - 1)
        closed = self.ended or (end is not None and end < last.pdt_end)
        return index.render(
            head,
            tail,
            target_duration=self.config.target_duration,
            playlist_type="VOD" if closed else "EVENT",
            endlist=closed,
        )

    @property
    def serves_vod(self) -> bool:
        """The event ended and is recorded: the playlist is the VOD of the whole event."""
        return self.ended and self.recorded_range() is not None

    def recorded_range(self) -> tuple[float, float] | None:
        """(PDT of the first recorded segment, PDT end of the newest), if any."""
        if self.recording is None:
            return None
        first, last = self.recording.index.first, self.recording.index.last
        return (first.pdt, last.pdt_end) if first and last else None

    def bitrates(self) -> tuple[int, int]:
        """(peak, average) segment bit rate over the retained complete segments, bits/s."""
        rates = [8 * s.size / s.duration for s in self._segments if s.duration > 0]
        if not rates:
            return 0, 0
        total_bits = sum(8 * s.size for s in self._segments)
        total_time = sum(s.duration for s in self._segments)
        return math.ceil(max(rates)), math.ceil(total_bits / total_time)
