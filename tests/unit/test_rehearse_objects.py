"""Per-object figures of a caching tier from its access log (``rehearse.objects``): object keys,
upstream requests per object per instance, overlapping fetches, stale and held answers."""

from __future__ import annotations

from pathlib import Path

import pytest

from livecast.edge.accesslog import parse_access_log_line
from livecast.rehearse.objects import ObjectLedger, object_of
from livecast.rehearse.tiers import AccessLogFollower

T0 = 1_764_000_000.0
PART = "/live/720p/part-12.3.m4s"
BLOCKING = "/live/720p/index.m3u8?_HLS_msn=12&_HLS_part=3"


def record_line(
    tier: str,
    target: str,
    at: float,
    *,
    upstream: bool = False,
    took: float = 0.01,
    status: int = 200,
    cache: str = "HIT",
) -> str:
    fields = [f"{T0 + at:.3f}", tier, "GET", target, str(status), "1000", f"{took:.3f}",
              "MISS" if upstream else cache, "127.0.0.1:9000" if upstream else "-",
              "200" if upstream else "-", f"{took:.3f}" if upstream else "-", "42"]  # fmt: skip
    return "\t".join(fields)


def feed(ledger: ObjectLedger, *lines: str) -> None:
    for text in lines:
        record = parse_access_log_line(text)
        assert record is not None
        ledger.add(record.tier.partition("-")[0], record)


def test_object_keys_ignore_cmcd_and_keep_the_llhls_directives() -> None:
    assert object_of(PART + "?CMCD=sid%3D%22a%22", T0, 1 / 3) == ("part", PART)
    assert object_of("/live/720p/seg-12.m4s?x=1", T0, 1 / 3) == ("segment", "/live/720p/seg-12.m4s")
    assert object_of("/live/720p/init-0.mp4", T0, 1 / 3)[0] == "init"
    kind, key = object_of(BLOCKING + "&CMCD=bl%3D300", T0, 1 / 3)
    assert kind == "playlist-blocking" and key == "/live/720p/index.m3u8?_HLS_msn=12&_HLS_part=3"
    # reordered directives are the same object
    assert object_of("/live/720p/index.m3u8?_HLS_part=3&_HLS_msn=12", T0, 1 / 3)[1] == key
    # plain playlists: one object per part target
    plain = [object_of("/live/720p/index.m3u8", T0 + dt, 1 / 3) for dt in (0.0, 0.1, 0.4)]
    assert plain[0] == plain[1] != plain[2] and plain[0][0] == "playlist-plain"
    assert object_of("/live/main.m3u8", T0, 1 / 3)[0] == "multivariant"
    assert object_of("/player.html", T0, 1 / 3) == ("other", "/player.html")


def test_one_fetch_per_object_per_edge_is_the_ideal() -> None:
    ledger = ObjectLedger(1 / 3, 6.0, show_start=T0)
    feed(
        ledger,
        record_line("edge-0", PART, 1.0, upstream=True),
        record_line("edge-0", PART, 1.01),
        record_line("edge-0", PART + "?CMCD=x", 1.02),
        record_line("edge-1", PART, 1.03, upstream=True),  # another edge: its own object
    )
    tally = ledger.tiers["edge"].by_kind["part"]
    assert (tally.requests, tally.upstream, tally.objects) == (4, 2, 2)
    assert tally.upstream_per_object == 1.0
    assert ledger.tiers["edge"].instances == 2
    assert ledger.tiers["edge"].seconds[1] == [4, 2, 2, 4000]


def test_a_leaky_collapse_shows_as_overlapping_fetches() -> None:
    ledger = ObjectLedger(1 / 3, 6.0, show_start=T0)
    # three viewers' blocking requests all went upstream while the first was held (0.3 s)
    feed(
        ledger,
        record_line("edge-0", BLOCKING, 2.0, upstream=True, took=0.30),
        record_line("edge-0", BLOCKING, 2.0, upstream=True, took=0.29),
        record_line("edge-0", BLOCKING, 2.01, upstream=True, took=0.25),
        record_line("edge-0", BLOCKING, 5.0, upstream=True, took=0.01),  # later: a refetch
    )
    tally = ledger.tiers["edge"].by_kind["playlist-blocking"]
    assert (tally.upstream, tally.objects, tally.overlapping) == (4, 1, 2)
    assert tally.upstream_per_object == 4.0


def test_stale_held_and_error_answers_are_counted() -> None:
    ledger = ObjectLedger(1 / 3, 6.0, show_start=T0)
    feed(
        ledger,
        record_line("shield", "/live/720p/index.m3u8", 1.0, cache="STALE"),
        record_line("shield", BLOCKING, 9.0, upstream=True, took=6.5, status=503),
        record_line("shield", PART, 9.1, status=404, cache="-"),
    )
    shield = ledger.tiers["shield"]
    total = shield.total()
    assert (total.stale, total.held_past, total.status_5xx, total.status_4xx) == (1, 1, 1, 1)


def test_memory_is_bounded_and_what_is_forgotten_is_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("livecast.rehearse.objects.MAX_OBJECTS_PER_INSTANCE", 10)
    ledger = ObjectLedger(1 / 3, 6.0, show_start=T0)
    feed(ledger, *(record_line("edge-0", f"/live/a/part-{i}.0.m4s", 1.0) for i in range(25)))
    assert ledger.tiers["edge"].by_kind["part"].objects == 25
    assert ledger.forgotten > 0
    assert sum(len(seen) for seen in ledger._seen.values()) <= 11


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError):
        ObjectLedger(0.0, 6.0)


def test_the_follower_feeds_the_ledger(tmp_path: Path) -> None:
    log = tmp_path / "edge-0.log"
    log.write_text(record_line("edge-0", PART, 1.0, upstream=True) + "\n" + "garbage\n")
    ledger = ObjectLedger(1 / 3, 6.0, show_start=T0)
    follower = AccessLogFollower({"edge-0": log}, ledger)
    follower.poll()
    assert ledger.tiers["edge"].by_kind["part"].upstream == 1
    assert follower.totals["edge"].malformed == 1
