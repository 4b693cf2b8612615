"""The recording: what reaches the disk, what a restart recovers, what DVR/VOD playlists say.
Real files in a temporary directory; media synthesized (tests/unit/synth). A disk that fills up
or turns read-only: tests/integration/test_recording_disk.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from livecast.errors import ConfigError, StoreError
from livecast.hls.playlist import parse_media_playlist
from livecast.packager.event import LiveEvent
from livecast.store import journal
from livecast.store.archive import RecordedRendition, Recording, Syncer
from livecast.store.journal import RecordedPart, RecordedSegment
from livecast.store.ram import RamRing
from livecast.store.settings import RecordSettings
from tests.unit.synth import EPOCH, SEGMENT, Feeder, make_event


def recorded_event(directory: Path, *, fsync: str = "off") -> tuple[LiveEvent, Recording]:
    recording = Recording(directory, fsync=fsync)
    return make_event(window=12.0, store=recording), recording


def served_segments(event: LiveEvent, rendition: str = "720p") -> dict[int, bytes]:
    """Every segment the live playlist lists, as the origin would serve it."""
    live = event.renditions[rendition]
    playlist = parse_media_playlist(event.media_playlist_bytes(rendition).decode())
    served = {}
    for position, entry in enumerate(playlist.segments):
        if entry.uri is not None:
            msn = playlist.media_sequence + position
            data = live.segment_data(msn)
            assert data is not None
            served[msn] = data
    return served


# ---------------------------------------------------------------------------- journal


def test_journal_lines_replay_to_the_same_segments() -> None:
    segment = RecordedSegment(7, 14.0, EPOCH + 14.0, True, 2, "init-3.mp4")
    text = journal.HEADER + "\n" + journal.init_line("init-3.mp4") + journal.open_line(segment)
    text += journal.part_line(7, RecordedPart(0, 100, 1 / 3, True))
    text += journal.part_line(7, RecordedPart(1, 50, 0.3, False)) + journal.segment_line(7)
    gap = RecordedSegment(8, 16.0, EPOCH + 16.0, False, 2, "init-3.mp4", complete=True, gap=True)
    gap.duration_without_parts = 2.0
    text += journal.gap_line(gap) + journal.END_LINE
    replayed = journal.replay(text)
    first, second = replayed.segments
    assert (first.msn, first.pdt, first.discontinuity, first.discontinuity_sequence) == (
        7,
        EPOCH + 14.0,
        True,
        2,
    )
    assert first.complete and first.size == 150 and first.duration == pytest.approx(1 / 3 + 0.3)
    assert second.gap and second.duration == 2.0
    assert replayed.inits == ["init-3.mp4"] and replayed.ended and replayed.bad_lines == 0


def test_a_torn_last_line_is_ignored_and_a_bad_line_counted() -> None:
    segment = RecordedSegment(1, 0.0, EPOCH, False, 0, "init-1.mp4")
    text = journal.HEADER + "\n" + journal.open_line(segment) + "part 1 zero\n"
    text += journal.part_line(1, RecordedPart(0, 10, 0.5, True)) + "seg 1"  # died mid-line
    replayed = journal.replay(text)
    assert replayed.torn_tail and replayed.bad_lines == 1
    assert not replayed.segments[0].complete and len(replayed.segments[0].parts) == 1


def test_a_file_that_is_not_a_journal_is_refused() -> None:
    with pytest.raises(StoreError, match="not a livecast journal"):
        journal.replay("<html>\n")


# ---------------------------------------------------------------------------- writing


def test_parts_reach_the_disk_as_they_are_cut_and_segments_when_complete(tmp_path: Path) -> None:
    event, recording = recorded_event(tmp_path)
    feeder = Feeder(event)
    feeder.advance_to(SEGMENT + 0.4)  # one segment and a part of the next
    directory = tmp_path / "main" / "720p"
    live = event.renditions["720p"]
    first = live.last_complete_msn()
    assert first is not None
    assert (directory / f"seg-{first}.m4s").read_bytes() == live.segment_data(first)
    partial = directory / f"seg-{first + 1}.m4s.partial"
    assert partial.read_bytes() == live.part_data(first + 1, 0)
    lines = (directory / "journal.log").read_text().splitlines()
    assert lines[0] == journal.HEADER and f"seg {first}" in lines
    assert lines[-1].startswith(f"part {first + 1} 0 ")
    recording.close()


def test_unknown_fsync_policy_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="fsync must be one of"):
        RecordedRendition(tmp_path, fsync="sometimes", syncer=Syncer())


@pytest.mark.parametrize("fsync", ["off", "segment", "part"])
def test_every_policy_records_the_same_bytes(tmp_path: Path, fsync: str) -> None:
    event, recording = recorded_event(tmp_path, fsync=fsync)
    Feeder(event).advance_to(3 * SEGMENT)
    served = served_segments(event)
    recording.close()
    for msn, data in served.items():
        assert (tmp_path / "main" / "720p" / f"seg-{msn}.m4s").read_bytes() == data


# ---------------------------------------------------------------------------- recovery


def test_a_restart_continues_the_live_playlist_with_the_same_msns(tmp_path: Path) -> None:
    event, recording = recorded_event(tmp_path)
    feeder = Feeder(event)
    feeder.advance_to(10 * SEGMENT + 0.7)  # killed two parts into a segment
    before = served_segments(event)
    open_msn = event.renditions["720p"].position()
    assert open_msn is not None
    parts_served = [event.renditions["720p"].part_data(open_msn.last_msn, i) for i in range(2)]
    # no close(): the process died; what the kernel has is what a restart finds
    event2, recording2 = recorded_event(tmp_path)
    live = event2.renditions["720p"]
    assert live.last_complete_msn() == open_msn.last_msn  # the open segment, closed short
    assert [live.part_data(open_msn.last_msn, i) for i in range(2)] == parts_served
    for msn, data in before.items():
        assert live.segment_data(msn) == data  # byte-identical
    Feeder(event2, generation=0, epoch=EPOCH + 22.0).advance_to(2 * SEGMENT)  # back 1.3 s later
    playlist = parse_media_playlist(event2.media_playlist_bytes("720p").decode())
    msns = [playlist.media_sequence + i for i, e in enumerate(playlist.segments) if e.uri]
    assert msns == list(range(msns[0], msns[0] + len(msns)))  # no MSN reused or skipped
    resumed = [e for e in playlist.segments if e.discontinuity]
    assert len(resumed) == 1 and resumed[0].pdt == pytest.approx(EPOCH + 22.0)
    recording.close()
    recording2.close()


def test_the_recording_keeps_what_the_live_window_retires(tmp_path: Path) -> None:
    """Old segments come from disk; RAM holds exactly what the RAM ring alone would."""
    ring = RamRing()
    events = [recorded_event(tmp_path)[0], make_event(window=12.0, store=ring)]
    early = []
    for event in events:
        Feeder(event).advance_to(2 * SEGMENT)
        early.append(served_segments(event))
        Feeder(event, generation=1, epoch=EPOCH + 2 * SEGMENT).advance_to(40 * SEGMENT)
    recorded, ram_only = (event.renditions["720p"] for event in events)
    for msn, data in early[0].items():
        assert recorded.segment_data(msn) == data  # from disk
        assert ram_only.segment_data(msn) is None  # long retired from the window
    recording = events[0].store
    assert isinstance(recording, Recording)
    assert recording.held_bytes == ring.held_bytes
    recording.close()


# ---------------------------------------------------------------------------- DVR and VOD


def test_start_over_is_an_event_playlist_and_the_end_makes_it_vod(tmp_path: Path) -> None:
    event, recording = recorded_event(tmp_path)
    Feeder(event).advance_to(20 * SEGMENT)
    live = event.renditions["720p"]
    dvr = parse_media_playlist(live.recorded_playlist(EPOCH + 5.0).decode())
    assert dvr.playlist_type == "EVENT" and not dvr.endlist
    assert dvr.segments[0].pdt == pytest.approx(EPOCH + 4.0)  # the segment holding 5.0
    assert dvr.segments[0].map is not None and dvr.server_control is None
    ranged = parse_media_playlist(live.recorded_playlist(EPOCH + 4.0, EPOCH + 9.0).decode())
    assert ranged.playlist_type == "VOD" and ranged.endlist and len(ranged.segments) == 3
    with pytest.raises(StoreError, match="before the DVR window"):
        live.recorded_playlist(EPOCH + 1.0, dvr_window=20.0)
    with pytest.raises(StoreError, match="after the newest recorded segment"):
        live.recorded_playlist(EPOCH + 100.0)
    event.end()
    vod = parse_media_playlist(event.media_playlist_bytes("720p").decode())
    assert vod.playlist_type == "VOD" and vod.endlist and vod.part_inf is None
    assert sum(s.duration for s in vod.segments) == pytest.approx(40.0, abs=SEGMENT)
    assert live.recorded_playlist(EPOCH + 1.0, dvr_window=20.0)  # no window once it ended
    recording.close()
    event2, recording2 = recorded_event(tmp_path)  # after a restart: still the VOD
    assert event2.ended and event2.media_playlist_bytes("720p") == event.media_playlist_bytes(
        "720p"
    )
    recording2.close()


# ---------------------------------------------------------------------------- bad places to record


def test_a_record_dir_that_cannot_hold_a_recording_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory\n")
    with pytest.raises(ConfigError, match="exists and is not a directory"):
        RecordSettings(dir=str(blocker)).validate()
    recording = Recording(blocker / "below")  # a directory cannot be made under a file
    with pytest.raises(StoreError, match="cannot open the recording in"):
        recording.open("main", "720p")
    foreign = tmp_path / "foreign" / "main" / "720p"
    foreign.mkdir(parents=True)
    (foreign / "journal.log").write_text("<html>not ours</html>\n")
    with pytest.raises(StoreError, match="not a livecast journal"):
        Recording(tmp_path / "foreign").open("main", "720p")
    assert (foreign / "journal.log").read_text() == "<html>not ours</html>\n"  # left alone


@pytest.mark.parametrize("stopped_at", [10.05, 10.3, 10.35])
def test_a_restart_at_any_instant_keeps_msns_contiguous_in_every_rendition(
    tmp_path: Path, stopped_at: float
) -> None:
    """When the encoder stops, one rendition may have opened a segment the others have not: the
    next run starts after the newest, and the others list the missing number with EXT-X-GAP
    (a player numbers segments by their position in the playlist)."""
    event, recording = recorded_event(tmp_path)
    Feeder(event).advance_to(stopped_at)
    Feeder(event, generation=1, epoch=EPOCH + stopped_at + 0.5).advance_to(4.0)
    for rendition in ("720p", "360p", "audio"):
        playlist = parse_media_playlist(event.media_playlist_bytes(rendition).decode())
        for position, entry in enumerate(playlist.segments):
            if entry.uri is not None:
                assert entry.uri == f"seg-{playlist.media_sequence + position}.m4s"
    event.end()
    vod = parse_media_playlist(event.media_playlist_bytes("720p").decode())
    for position, entry in enumerate(vod.segments):
        assert entry.uri == f"seg-{vod.media_sequence + position}.m4s"
    recording.close()
