"""The edge's own metrics through a real nginx (edge/metrics_lua.py): requests of every kind
through an edge in front of a scripted origin, then ``GET /edge/metrics`` parsed — the counts
per kind, cache status and status class equal the access log's, the bytes equal the logged body
bytes, every histogram's ``_count`` equals its requests, and a 404 and a 5xx land in ``4xx`` and
``5xx``. Without the Lua modules ``/edge/metrics`` is a 404 that says why."""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from livecast.edge.accesslog import parse_access_log_line, tally
from livecast.edge.metrics_lua import (
    CONTENT_TYPE,
    METRICS_PATH,
    NO_LUA_ANSWER,
    REQUEST_DURATION,
    REQUESTS,
    SENT_BYTES,
    UPSTREAM_RESPONSE,
    kind_of,
)
from livecast.edge.nginx import find_lua_modules, find_nginx
from livecast.edge.nginx_conf import TierConfig, Upstream
from livecast.edge.topology import TopologySpec, tier_configs
from livecast.errors import LivecastError
from livecast.results.scrape import PrometheusSample, parse_prometheus_text
from tests.integration.fake_upstream import FakeUpstream, Scripted, running_tier
from tests.integration.test_edge_shed_503 import get
from tests.requirements import skip_missing

pytestmark = pytest.mark.integration

IMMUTABLE = (("Cache-Control", "public, max-age=86400, immutable"),)
PLAYLIST = (("Content-Type", "application/vnd.apple.mpegurl"), ("Cache-Control", "max-age=1"))
ANSWERS = {
    "/live/main/720p/index.m3u8": Scripted(200, PLAYLIST, b"#EXTM3U\n#EXT-X-VERSION:9\n"),
    "/live/main/720p/part-7.0.m4s": Scripted(200, IMMUTABLE, b"\x01" * 700),
    "/live/main/720p/part-7.1.m4s": Scripted(200, IMMUTABLE, b"\x02" * 650),
    "/live/main/720p/seg-6.m4s": Scripted(200, IMMUTABLE, b"\x03" * 2100),
    "/live/main/720p/init-0.mp4": Scripted(200, IMMUTABLE, b"\x04" * 300),
    "/session/main": Scripted(200, (("Cache-Control", "no-store"),), b'{"lease":"x"}'),
    "/live/main/720p/seg-5.m4s": Scripted(503, (), b"shedding\n"),  # a 5xx (kept 1 s)
    "/live/main/recording.json": Scripted(200, (("Cache-Control", "max-age=5"),), b"{}"),
}
MISSING = "/live/main/720p/seg-9999.m4s"  # the origin's 404


def _tier(tmp_path: Path, upstream: FakeUpstream, lua: bool) -> TierConfig:
    try:
        find_nginx()
    except LivecastError as exc:
        skip_missing("nginx", str(exc))
    modules = find_lua_modules()
    if lua and not modules:
        skip_missing("lua")
    tmp_path.chmod(0o755)
    origin = [Upstream("127.0.0.1", upstream.port)]
    return tier_configs(TopologySpec(edges=1), origin, 2.0, tmp_path, modules if lua else ())[0]


def _scrape(port: int) -> tuple[str, list[PrometheusSample]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{METRICS_PATH}", timeout=10) as answer:
        assert answer.headers["Cache-Control"] == "no-store"
        return answer.headers["Content-Type"], parse_prometheus_text(answer.read().decode())


def _logged(conf: TierConfig, requests: int) -> list[str]:
    """The access log's lines once ``requests`` are in it (nginx flushes it every second)."""
    deadline = time.monotonic() + 5.0
    while True:
        try:
            lines = Path(conf.access_log_path).read_text().splitlines()
        except FileNotFoundError:
            lines = []
        if len(lines) >= requests or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def test_edge_metrics_agree_with_the_access_log(tmp_path: Path) -> None:
    with FakeUpstream() as origin:
        for path, answer in ANSWERS.items():
            origin.script(path, answer)
        conf = _tier(tmp_path, origin, lua=True)
        with running_tier(conf) as port:
            sent: Counter[str] = Counter()
            for path in [*ANSWERS, *ANSWERS, "/live/main/720p/part-7.0.m4s", MISSING]:
                status, _ = get(port, path)
                sent[f"{kind_of(path)} {status // 100}xx"] += 1
            get(port, "/edge/status")  # neither logged nor counted
            with socket.create_connection(("127.0.0.1", port)) as unparsable:
                unparsable.sendall(b"GARBAGE\r\n\r\n")  # logged (400) with no URI at all
                assert unparsable.recv(64).startswith(b"HTTP/1.1 400")
            sent["other 4xx"] += 1
            content_type, samples = _scrape(port)
            _, again = _scrape(port)  # a scrape is not counted either
            lines = _logged(conf, sum(sent.values()))
    assert content_type == CONTENT_TYPE
    assert "failed to run" not in Path(conf.prefix, "error.log").read_text()
    assert again == samples

    records = [r for r in map(parse_access_log_line, lines) if r is not None]
    assert len(records) == sum(sent.values()) == tally(lines)["edge-0"].requests
    expected: Counter[tuple[str, str, str]] = Counter()
    sent_bytes: Counter[str] = Counter()
    for record in records:
        kind = kind_of(record.path)
        expected[(kind, record.cache_status or "none", f"{record.status // 100}xx")] += 1
        sent_bytes[kind] += record.bytes_sent

    def values(name: str, *labels: str) -> dict[tuple[str | None, ...], float]:
        found = [s for s in samples if s.name == name]
        assert all(s.label("tier") == "edge-0" for s in found)
        return {tuple(s.label(label) for label in labels): s.value for s in found}

    requests = values(REQUESTS, "kind", "cache", "code")
    assert requests == {key: float(n) for key, n in expected.items()}
    assert values(SENT_BYTES, "kind") == {(k,): float(n) for k, n in sent_bytes.items()}
    assert set(values(SENT_BYTES, "kind")) == {(k,) for k in ("playlist", "part", "segment")} | {
        ("init",),
        ("session",),
        ("other",),
    }
    by_kind = Counter(kind_of(r.path) for r in records)
    assert values(f"{REQUEST_DURATION}_count", "kind") == {
        (k,): float(n) for k, n in by_kind.items()
    }
    inf = values(f"{REQUEST_DURATION}_bucket", "kind", "le")
    assert {(k,): v for (k, le), v in inf.items() if le == "+Inf"} == {
        (k,): float(n) for k, n in by_kind.items()
    }
    took = values(f"{REQUEST_DURATION}_sum", "kind")
    logged_took: dict[str, float] = {}
    for record in records:
        kind = kind_of(record.path)
        logged_took[kind] = logged_took.get(kind, 0.0) + record.request_time
    for kind, total in logged_took.items():
        assert took[(kind,)] == pytest.approx(total, abs=1e-6)
    # the upstream histogram counts the requests that asked the upstream
    asked = Counter(kind_of(r.path) for r in records if r.upstream_response_time is not None)
    assert values(f"{UPSTREAM_RESPONSE}_count", "kind") == {
        (k,): float(n) for k, n in asked.items()
    }
    # the scripted statuses, by class: the 404 and the 503 (the second one from the cache)
    assert requests[("segment", "MISS", "4xx")] == 1
    assert requests[("segment", "MISS", "5xx")] == 1 and requests[("segment", "HIT", "5xx")] == 1
    assert requests[("part", "HIT", "2xx")] == 3  # 7.0 twice more, 7.1 once more
    assert requests[("session", "none", "2xx")] == 2
    assert requests[("other", "none", "4xx")] == 1  # the unparsable request
    assert sum(n for (kind, _, code), n in requests.items() if code == "5xx") == sent["segment 5xx"]


def test_without_lua_edge_metrics_is_a_404_that_says_why(tmp_path: Path) -> None:
    with FakeUpstream() as origin:
        conf = _tier(tmp_path, origin, lua=False)
        with running_tier(conf) as port:
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(f"http://127.0.0.1:{port}{METRICS_PATH}", timeout=10)
            assert refused.value.code == 404
            assert refused.value.read().decode().strip() == NO_LUA_ANSWER
            assert sum(origin.counts.values()) == 0  # never asked of the origin
