"""The stream hub: every reader gets every unit through its own bounded queue; a slow reader
loses units (counted, flagged) without holding up the others; the publisher turns a source's
bytes into units and reports a broken run once; the packager's feed follows runs and gives up on
one it cannot follow."""

from __future__ import annotations

import pytest

from livecast.errors import LivecastError, MediaError
from livecast.hub.publisher import Publisher
from livecast.hub.stream import Batch, MediaUnit, RunStarted, Stream, StreamEnded, StreamHub
from livecast.packager.feed import PackagerFeed
from tests.unit.synth import EPOCH, make_event, video_fragment, video_init

RENDITIONS = ("720p", "360p", "audio")


def _stream() -> Stream:
    return StreamHub().create("main", RENDITIONS)


def test_every_reader_gets_every_unit_in_order() -> None:
    stream = _stream()
    wakes: list[str] = []
    fast = stream.attach("packager", wake=lambda: wakes.append("packager"))
    other = stream.attach("recorder", wake=lambda: wakes.append("recorder"))
    units = [RunStarted(0, EPOCH), MediaUnit("720p", 0, video_init()), StreamEnded()]
    for unit in units:
        stream.publish(unit)
    assert wakes == ["packager", "recorder"]  # woken once each, when the queue filled
    assert fast.take() == Batch(units, 0)
    assert other.take() == Batch(units, 0)
    assert fast.take() == Batch([], 0)
    assert stream.published == 3 and fast.delivered == 3


def test_a_slow_reader_drops_and_counts_without_holding_up_the_others() -> None:
    stream = _stream()
    slow = stream.attach("monitor", wake=lambda: None, capacity=4)
    fast = stream.attach("packager", wake=lambda: None, capacity=100)
    units = [MediaUnit("720p", 0, video_fragment(index)) for index in range(10)]
    for unit in units:
        stream.publish(unit)
    taken = slow.take()
    assert taken.units == units[:4]  # the oldest are kept; what did not fit is dropped
    assert taken.dropped == 6 and slow.dropped == 6
    assert len(fast.take().units) == 10
    stream.publish(StreamEnded())
    assert slow.take() == Batch([StreamEnded()], 0)  # the drop is reported once
    assert slow.dropped == 6


def test_the_stream_refuses_what_it_does_not_carry() -> None:
    stream = _stream()
    with pytest.raises(LivecastError, match="no rendition '1080p'"):
        stream.publish(MediaUnit("1080p", 0, video_init()))
    stream.attach("packager", wake=lambda: None)
    with pytest.raises(LivecastError, match="already has a reader"):
        stream.attach("packager", wake=lambda: None)
    with pytest.raises(LivecastError, match="room for one unit"):
        stream.attach("tiny", wake=lambda: None, capacity=0)
    with pytest.raises(LivecastError, match="exists already"):
        hub = StreamHub()
        hub.create("a", RENDITIONS)
        hub.create("a", RENDITIONS)


def test_publisher_reads_bytes_into_units_and_drops_late_bytes() -> None:
    stream = _stream()
    queue = stream.attach("packager", wake=lambda: None)
    broken: list[tuple[str, str]] = []
    publisher = Publisher(stream, lambda rendition, exc: broken.append((rendition, str(exc))))
    publisher.on_start(0, EPOCH)
    init = video_init()
    publisher.on_data("720p", 0, init.data[:10])  # split anywhere
    publisher.on_data("720p", 0, init.data[10:] + video_fragment(0).data)
    publisher.on_start(1, EPOCH + 5)
    publisher.on_data("720p", 0, video_fragment(1).data)  # late bytes of run 0: ignored
    units = queue.take().units
    assert isinstance(units[0], RunStarted) and units[0].generation == 0
    assert [type(u.item).__name__ for u in units if isinstance(u, MediaUnit)] == [
        "InitSegment",
        "Fragment",
    ]
    assert units[-1] == RunStarted(1, EPOCH + 5) and broken == []


def test_unreadable_bytes_break_the_run_once_and_the_next_run_is_read() -> None:
    stream = _stream()
    queue = stream.attach("packager", wake=lambda: None)
    broken: list[str] = []
    publisher = Publisher(stream, lambda rendition, exc: broken.append(rendition))
    publisher.on_start(0, EPOCH)
    publisher.on_data("360p", 0, b"\x00\x00\x00\x03junk")
    publisher.on_data("360p", 0, b"\x00\x00\x00\x03more junk")
    publisher.on_data("720p", 0, video_init().data)  # the run is over for every rendition
    publisher.on_data("1080p", 0, b"")  # ignored too: the run is broken already
    assert broken == ["360p"] and publisher.media_errors == 1
    assert queue.take().units == [RunStarted(0, EPOCH)]
    publisher.on_start(1, EPOCH + 3)
    publisher.on_data("360p", 1, video_init(640, 360).data)
    assert len(queue.take().units) == 2 and broken == ["360p"]


def _feed_batch(*units: RunStarted | MediaUnit | StreamEnded, dropped: int = 0) -> Batch:
    return Batch(list(units), dropped)


def test_packager_feed_follows_runs_and_counts_parts() -> None:
    event = make_event()
    feed = PackagerFeed(event)
    fragments: list[MediaUnit] = [MediaUnit("720p", 0, video_fragment(i)) for i in range(12)]
    result = feed.apply(
        _feed_batch(RunStarted(0, EPOCH), MediaUnit("720p", 0, video_init()), *fragments)
    )
    assert result.runs_started == [0] and event.generation == 0
    assert result.changed and result.parts["720p"] > 0 and result.broken is None
    assert feed.apply(_feed_batch(StreamEnded())).ended and event.renditions["720p"].ended


def test_packager_feed_breaks_a_run_it_cannot_follow() -> None:
    event = make_event()
    feed = PackagerFeed(event)
    feed.apply(_feed_batch(RunStarted(0, EPOCH)))
    # a fragment before its init segment breaks a packaging rule: the run is given up
    result = feed.apply(_feed_batch(MediaUnit("720p", 0, video_fragment(0))))
    assert result.broken is not None and result.broken[0] == "720p"
    assert isinstance(result.broken[1], MediaError)
    # the rest of the run is skipped without another report
    later = feed.apply(_feed_batch(MediaUnit("720p", 0, video_init())))
    assert later.broken is None and not later.changed
    # units lost by the queue break the run too
    feed.apply(_feed_batch(RunStarted(1, EPOCH + 10), MediaUnit("720p", 1, video_init())))
    lagged = feed.apply(_feed_batch(MediaUnit("720p", 1, video_fragment(0)), dropped=3))
    assert lagged.broken is not None and "3 units dropped" in str(lagged.broken[1])
    assert not lagged.parts
