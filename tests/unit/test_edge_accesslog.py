"""The edges' access log: parsing what nginx writes in livecast's format, and per-tier tallies
by ``$upstream_cache_status`` (the hit ratio the rehearsal will report)."""

from __future__ import annotations

import pytest

from livecast.edge.accesslog import FIELDS, log_format, parse_access_log_line, tally

# Lines as nginx 1.22 wrote them in tests/integration/test_edge_*.py (tabs between fields).
MISS = (
    "1795621154.300\tedge-0\tGET\t/live/720p/index.m3u8?_HLS_msn=882000010&_HLS_part=1\t200\t"
    "1741\t0.512\tMISS\t127.0.0.1:40211\t200\t0.511\t4242"
)
HIT = (
    "1795621154.801\tedge-0\tGET\t/live/720p/index.m3u8?_HLS_msn=882000010&_HLS_part=1\t200\t"
    "1741\t1.013\tHIT\t-\t-\t-\t4243"
)
STALE = "1795621160.020\tshield\tGET\t/live/720p/index.m3u8\t200\t1702\t0.000\tSTALE\t-\t-\t-\t4244"
FAILOVER = (
    "1795621161.000\tedge-1\tGET\t/live/main.m3u8\t200\t512\t0.004\tMISS\t"
    "127.0.0.1:8080, 127.0.0.1:8090\t502, 200\t0.001, 0.002\t4245"
)
NO_CACHE = "1795621162.000\tedge-1\tGET\t/favicon.ico\t404\t153\t0.000\t-\t-\t-\t-\t4245"


def test_a_miss_with_its_upstream_timings() -> None:
    record = parse_access_log_line(MISS + "\n")
    assert record is not None
    assert record.tier == "edge-0" and record.method == "GET" and record.status == 200
    assert record.target.endswith("_HLS_part=1") and record.path == "/live/720p/index.m3u8"
    assert record.cache_status == "MISS" and not record.from_cache
    assert record.upstream_addrs == ("127.0.0.1:40211",)
    assert record.upstream_status == "200"
    assert record.request_time == pytest.approx(0.512)
    assert record.upstream_response_time == pytest.approx(0.511)
    assert record.time == pytest.approx(1795621154.3)
    assert record.worker == 4242  # the nginx worker that answered


def test_a_hit_has_no_upstream() -> None:
    record = parse_access_log_line(HIT)
    assert record is not None and record.from_cache
    assert record.upstream_addrs == () and record.upstream_response_time is None


def test_failover_attempts_are_all_counted() -> None:
    record = parse_access_log_line(FAILOVER)
    assert record is not None
    assert record.upstream_addrs == ("127.0.0.1:8080", "127.0.0.1:8090")
    assert record.upstream_response_time == pytest.approx(0.003)
    grouped = parse_access_log_line(FAILOVER.replace(", 127.0.0.1:8090", " : 127.0.0.1:8090"))
    assert grouped is not None and len(grouped.upstream_addrs) == 2


@pytest.mark.parametrize(
    "line",
    [
        "",
        "garbage",
        MISS.replace("\t200\t", "\tOK\t", 1),
        MISS + "\textra",
        MISS.replace("\t", " "),
    ],
)
def test_lines_in_another_format_are_refused(line: str) -> None:
    assert parse_access_log_line(line) is None


def test_tally_counts_by_tier_and_cache_status() -> None:
    lines = [MISS, HIT, HIT, HIT, STALE, FAILOVER, NO_CACHE, "not a log line", ""]
    tiers = tally(lines)
    assert set(tiers) == {"edge-0", "edge-1", "shield"}
    edge = tiers["edge-0"]
    assert edge.requests == 4 and edge.by_status == {"MISS": 1, "HIT": 3}
    assert edge.hit_ratio == pytest.approx(0.75) and edge.upstream_requests == 1
    assert tiers["shield"].from_cache == 1 and tiers["shield"].hit_ratio == 1.0
    other = tiers["edge-1"]
    assert other.by_status == {"MISS": 1, "-": 1}
    assert other.hit_ratio == 0.0 and other.upstream_requests == 2
    assert all(t.malformed == 1 for t in tiers.values())


def test_tally_can_select_records() -> None:
    tiers = tally(
        [MISS, HIT, STALE], where=lambda r: r.path.endswith("index.m3u8") and r.from_cache
    )
    assert {name: t.requests for name, t in tiers.items()} == {"edge-0": 1, "shield": 1}


def test_the_format_matches_the_reader() -> None:
    text = log_format("edge-7")
    assert text.count("\\t") == len(FIELDS) - 1
    assert text.split("\\t")[1] == "edge-7"
    with pytest.raises(ValueError):
        log_format("edge 7")


def test_cmcd_headers_are_logged_after_the_classic_fields() -> None:
    assert [name for name, _ in FIELDS[-4:]] == [
        "cmcd_request",
        "cmcd_object",
        "cmcd_status",
        "cmcd_session",
    ]
    assert log_format("edge-0").endswith("$http_cmcd_status\\t$http_cmcd_session")
    # nginx escape=default writes '"' as \x22 (tests/integration/test_cmcd_qoe.py sends these).
    line = MISS + "\tbl=21300,su\tbr=3200,ot=v\tbs\tsid=\\x226e2f\\x5C\\x22b\\x22,st=l"
    record = parse_access_log_line(line)
    assert record is not None and record.worker == 4242
    assert record.cmcd_headers == {
        "CMCD-Request": "bl=21300,su",
        "CMCD-Object": "br=3200,ot=v",
        "CMCD-Status": "bs",
        "CMCD-Session": 'sid="6e2f\\"b",st=l',
    }
    plain = parse_access_log_line(MISS + "\t-\t-\t-\t-")
    assert plain is not None and plain.cmcd_headers == {}
    legacy = parse_access_log_line(MISS)  # logs written before the CMCD fields still read
    assert legacy is not None and legacy.cmcd_logged == ()
