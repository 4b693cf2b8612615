"""The store seam: the packager puts every object it cuts, gets them back byte for byte, and
retires what the live window no longer serves — so the RAM ring stays bounded by the window."""

from __future__ import annotations

from livecast.packager.cutter import Part, Segment
from livecast.packager.event import LiveEvent, RenditionSpec
from livecast.packager.live import PackagingConfig
from livecast.store.contract import WindowPolicy
from livecast.store.ram import RamRendition, RamRing
from tests.unit.synth import SEGMENT, Feeder, make_event


def test_window_policy_follows_the_spec_rules() -> None:
    policy = WindowPolicy.live(window=12.0, target_duration=2)
    assert (policy.listed, policy.segments_kept, policy.parts_kept, policy.parts_listed) == (
        12.0,
        24.0,
        12.0,
        6.0,
    )
    assert policy.keeps_segment(segment_end=76.0, live_end=100.0)
    assert not policy.keeps_segment(segment_end=75.9, live_end=100.0)
    assert policy.keeps_parts(segment_end=88.0, live_end=100.0)
    assert not policy.keeps_parts(segment_end=87.9, live_end=100.0)
    assert policy.lists_parts(segment_end=94.1, live_end=100.0)
    assert not policy.lists_parts(segment_end=94.0, live_end=100.0)


def test_ram_rendition_counts_what_it_holds_and_forgets_what_is_retired() -> None:
    store = RamRendition()
    store.put_init("init-1.mp4", b"i" * 10)
    segment = Segment(5, 10.0, 1010.0, False, "init-1.mp4")
    store.put_part(segment, Part(5, 0, 10.0, 1.0, True, 100), b"a" * 100)
    store.put_part(segment, Part(5, 1, 11.0, 1.0, False, 50), b"b" * 50)
    store.put_segment(segment, b"a" * 100 + b"b" * 50)
    assert store.held_bytes == 310 and store.held_objects == 4
    assert store.part(5, 1) == b"b" * 50 and store.segment(5) == b"a" * 100 + b"b" * 50
    store.retire_parts(5)
    assert store.part(5, 0) is None and store.segment(5) is not None
    assert store.held_bytes == 160
    store.retire_segment(5)
    store.retire_init("init-1.mp4")
    assert store.held_bytes == 0 and store.held_objects == 0
    store.retire_segment(99)  # retiring what is not there is harmless


def test_ring_opens_one_store_per_stream_and_rendition() -> None:
    ring = RamRing()
    assert ring.open("main", "720p") is ring.open("main", "720p")
    assert ring.open("main", "720p") is not ring.open("other", "720p")


def test_every_object_the_packager_cuts_goes_through_the_store() -> None:
    ring = RamRing()
    config = PackagingConfig(part_target=1 / 3, segment_duration=SEGMENT, window=30.0)
    event = LiveEvent(
        config,
        [
            RenditionSpec("720p", "video"),
            RenditionSpec("360p", "video"),
            RenditionSpec("audio", "audio"),
        ],
        stream="show",
        store=ring,
    )
    Feeder(event).advance_to(10.0)
    rendition = event.renditions["720p"]
    held = ring.open("show", "720p")
    assert rendition.store is held
    msn = rendition.last_complete_msn()
    assert msn is not None
    segment = rendition.segment_data(msn)
    assert segment is not None and segment == held.segment(msn)
    parts = [rendition.part_data(msn, i) for i in range(config.parts_per_segment)]
    assert b"".join(p or b"" for p in parts) == segment
    (init_name,) = rendition.init_names
    assert rendition.init_data(init_name) == held.init(init_name)
    assert ring.open("main", "720p").held_objects == 0  # nothing leaked to the default stream


def test_ram_ring_is_bounded_by_the_live_window_whatever_the_event_length() -> None:
    ring = RamRing()
    event = make_event(window=12.0, store=ring)
    feeder = Feeder(event)
    held: list[tuple[int, int]] = []
    for second in range(1, 301):
        feeder.advance_to(float(second))
        held.append((ring.held_bytes, ring.held_objects))
    # same media rate, same window: never more held in the fifth minute than in the first
    assert max(held[240:]) <= max(held[:60])
    assert max(o for _, o in held[240:]) <= max(o for _, o in held[:60])
    rendition = event.renditions["720p"]
    newest = rendition.last_complete_msn()
    assert newest is not None
    # what the window serves: 2 × 12 s of segments, parts of the last 6 × TD only
    kept = [m for m in range(newest - 100, newest + 1) if rendition.segment_data(m) is not None]
    assert len(kept) * SEGMENT == 2 * 12.0 + SEGMENT
    assert ring.open("main", "720p").segment(kept[0] - 1) is None
    with_parts = [m for m in kept if ring.open("main", "720p").part(m, 0) is not None]
    assert len(with_parts) * SEGMENT <= 6.0 * event.config.target_duration + SEGMENT


def test_init_segments_of_past_runs_are_retired_with_their_segments() -> None:
    event = make_event(window=6.0)
    feeder = Feeder(event)
    feeder.advance_to(10.0)
    rendition = event.renditions["720p"]
    (first_init,) = rendition.init_names
    event.start_generation(1, 2_000_000_000.0)
    Feeder(event, generation=1, epoch=2_000_000_000.0).advance_to(30.0)
    assert first_init not in rendition.init_names
    assert rendition.init_data(first_init) is None
    assert rendition.store.init(first_init) is None
