"""The driver's indicator counts (recorded through its ``player.harness.RunRecorder``), fed
without sockets: media 404s that answer 200 later, answers held past the limit, retries, bytes
per kind — into the driver's own stats, on its show clock."""

from __future__ import annotations

from livecast.player.harness import NOT_FOUND_MEMORY
from livecast.player.requests import Request
from livecast.rehearse.driver import Driver, DriverConfig

PART = "http://127.0.0.1:8080/live/720p/part-12.3.m4s"


def driver() -> Driver:
    return Driver(
        [], DriverConfig(("http://127.0.0.1:8080/live/main.m3u8",), 10.0, 100.0, held_limit=6.0)
    )


def request(url: str, kind: str = "part", retry: int = 0) -> Request:
    return Request(1, url, kind, 10.0, 0.0, retry)


def test_a_404_that_answers_200_later_is_an_early_404() -> None:
    d = driver()
    recorder = d.recorder
    recorder.answered(request(PART + "?CMCD=bl%3D1"), 404, 10, 0.01, 101.0)
    recorder.answered(request(PART + "?CMCD=bl%3D2"), 404, 10, 0.01, 101.0)
    recorder.answered(request("http://127.0.0.1:8080/live/720p/part-99.0.m4s"), 404, 10, 0.01, 101)
    recorder.answered(request(PART + "?CMCD=bl%3D3"), 200, 90_000, 0.02, 102.5)
    counters = d.stats.indicators.client.counters
    assert counters["media_requests"] == 4
    assert counters["media_404"] == 3
    assert counters["early_404"] == 2  # part-99 never answered 200: not early, just missing
    assert d.stats.indicators.client.bytes_by_kind["part"] == 90_030
    assert d.stats.timeline.at(1).requests == 3 and d.stats.timeline.at(2).requests == 1


def test_held_answers_and_playlists_are_not_media() -> None:
    d = driver()
    d.recorder.answered(request("http://h/live/720p/index.m3u8", "playlist"), 404, 10, 6.5, 101)
    counters = d.stats.indicators.client.counters
    assert counters["held_past"] == 1  # the driver's held limit (3 × target duration)
    assert counters["media_requests"] == counters["media_404"] == 0


def test_retries_are_counted_when_sent() -> None:
    d = driver()
    d.recorder.sent(request(PART, retry=1), 100.35)
    d.recorder.sent(request(PART, retry=2), 100.36)
    counters = d.stats.indicators.client.counters
    assert counters["retries"] == 2 and counters["retried_requests"] == 1
    assert d.stats.timeline.at(0).retry_tenths[3] == 2


def test_the_not_found_memory_is_bounded() -> None:
    d = driver()
    for i in range(NOT_FOUND_MEMORY + 5):
        d.recorder.answered(request(f"http://h/live/a/part-{i}.0.m4s"), 404, 0, 0.0, 101)
    assert len(d.recorder._not_found) == NOT_FOUND_MEMORY
