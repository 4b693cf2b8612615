"""A 2-hour event in a few seconds: the loop source's replay schedule (sources.loop) driven by an
injected clock feeds the packager and the recording. Memory stays flat from the first hour to the
second (bounded by the live window, not the event), and the VOD is the whole event."""

from __future__ import annotations

import tracemalloc
from fractions import Fraction
from pathlib import Path

import pytest

from livecast.hls.playlist import parse_media_playlist
from livecast.media import boxes
from livecast.media.fmp4 import FMP4StreamReader, Fragment, InitSegment
from livecast.packager.event import LiveEvent, RenditionSpec
from livecast.packager.live import PackagingConfig
from livecast.sources.loop import LoopTrack, ReplaySchedule, load_track
from livecast.store.archive import Recording
from tests.unit.synth import AAC_FRAME, AUDIO_RATE, EPOCH
from tests.unit.test_loop_schedule import video_stream

LOOP = Fraction(4)
AUDIO_FRAMES = 16  # per fragment (1/3 s): fewer, larger fragments keep the test fast
HOURS = 2


def video_track() -> LoopTrack:
    return load_track("720p", video_stream(), LOOP)  # 30 fps, 1/3 s fragments, 2 s GOP


def audio_track() -> LoopTrack:
    fragment = AUDIO_FRAMES * AAC_FRAME
    body = b"".join(
        boxes.fragment(
            sequence=i + 1,
            decode_time=i * fragment,
            sample_durations=[AAC_FRAME] * AUDIO_FRAMES,
            sample_sizes=[8] * AUDIO_FRAMES,
            first_is_sync=True,
        )
        for i in range(int(4.1 * AUDIO_RATE / fragment) + 1)
    )
    return load_track("audio", boxes.init_segment("audio", timescale=AUDIO_RATE) + body, LOOP)


class AcceleratedReplay:
    """What :class:`~livecast.sources.loop_source.LoopSource` does, with the clock in our hand."""

    def __init__(self, event: LiveEvent) -> None:
        self.event = event
        self.tracks = (video_track(), audio_track())
        self.schedule = ReplaySchedule(self.tracks)
        self.readers = {t.rendition: FMP4StreamReader() for t in self.tracks}
        event.start_generation(0, EPOCH)
        for track in self.tracks:
            self._feed(track.rendition, track.init)

    def _feed(self, rendition: str, data: bytes) -> None:
        for item in self.readers[rendition].feed(data):
            if isinstance(item, InitSegment):
                self.event.on_init(rendition, item)
            elif isinstance(item, Fragment):
                self.event.on_fragment(rendition, item)

    def run_until(self, elapsed: float) -> None:
        step = 10.0
        now = self.schedule.next_release()
        while now < elapsed:
            now = min(elapsed, now + step)
            for track, n in self.schedule.due(now):
                self._feed(track.rendition, track.render(n))


def test_two_hours_keep_memory_flat_and_record_the_whole_event(tmp_path: Path) -> None:
    recording = Recording(tmp_path, fsync="off")
    config = PackagingConfig(part_target=0.33334, segment_duration=2.0, window=30.0)
    specs = [RenditionSpec("720p", "video"), RenditionSpec("audio", "audio")]
    event = LiveEvent(config, specs, store=recording)
    replay = AcceleratedReplay(event)
    replay.run_until(3600.0)  # an hour: every cache and buffer at its working size
    tracemalloc.start()  # (tracing every allocation is slow: the last 40 minutes only)
    try:
        replay.run_until(4800.0)
        before, _ = tracemalloc.get_traced_memory()
        held_first = recording.held_bytes
        replay.run_until(HOURS * 3600.0)
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert after - before < 64 * 1024, "memory grows with the event"
    assert recording.held_bytes <= held_first * 1.05  # the RAM ring: the window only
    event.end()
    for rendition in ("720p", "audio"):
        vod = parse_media_playlist(event.media_playlist_bytes(rendition).decode())
        assert vod.endlist and vod.playlist_type == "VOD"
        assert sum(s.duration for s in vod.segments) == pytest.approx(HOURS * 3600, abs=2.0)
        assert abs(len(vod.segments) - HOURS * 1800) <= 1  # audio may end in a short one
    live = event.renditions["720p"]
    first = parse_media_playlist(event.media_playlist_bytes("720p").decode()).media_sequence
    assert (
        live.segment_data(first) == (tmp_path / "main" / "720p" / f"seg-{first}.m4s").read_bytes()
    )
    recording.close()
