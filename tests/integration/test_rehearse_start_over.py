"""``livecast rehearse`` with start-over viewers, end to end on its own recording stack: a small
version of examples/rehearse-dvr.toml (40 viewers, a quarter of them joining the recording
6–8 s behind live, 14 s). Their requests reach the origin as DVR playlists and are counted
under their own kinds with their own latency; the live viewers are judged by the same SLOs as
before, their figures free of the start-over viewers'."""

from __future__ import annotations

import http.server
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from livecast.errors import LivecastError
from livecast.rehearse.runner import fetch_recording_info
from livecast.results.slo import DEFAULT_SLOS

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SRC = str(ROOT / "src")
EXAMPLE = ROOT / "examples" / "rehearse-dvr.toml"
DVR_SLOS = ["dvr_start_failures", "dvr_fatal_errors", "dvr_startup_p95", "dvr_rebuffering"]


def small_version(text: str, cache: Path) -> str:
    """The shipped example scaled down: 40 viewers, 14 s (every one watches ≥ 10 s), seek-back
    6–8 s (the show waits until the recording holds 8 s), a 4 s loop in ``cache``."""
    replacements = [
        ("duration = 45.0", "duration = 14.0"),
        ("viewers = 300", "viewers = 40"),
        ("within = 10.0", "within = 4.0"),
        ("start_over = 0.2 ", "start_over = 0.25 "),
        ("seek_back = [10.0, 60.0]", "seek_back = [6.0, 8.0]"),
        ("loop_seconds = 20", f'loop_seconds = 4\ncache_dir = "{cache}"'),
    ]
    for old, new in replacements:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


def rehearse(
    tmp_path: Path, cache: Path
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    scenario = tmp_path / "dvr.toml"
    scenario.write_text(small_version(EXAMPLE.read_text(), cache))
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    run = subprocess.run(
        [sys.executable, "-m", "livecast", "rehearse", str(scenario), "--out", str(tmp_path / "o")],
        capture_output=True, text=True, env=env, timeout=240,
    )  # fmt: skip
    results = tmp_path / "o" / "results.json"
    return run, json.loads(results.read_text()) if results.exists() else {}


def test_start_over_viewers_are_counted_apart_and_the_live_slos_judged_as_before(
    tmp_path: Path, loop_cache: Path
) -> None:
    run, document = rehearse(tmp_path, loop_cache)
    assert run.returncode == 0, run.stderr[-3000:]
    # the show started once the recording held the longest seek-back
    held = re.search(r"recording holds (\d+) s: the show starts", run.stderr)
    assert held is not None and int(held.group(1)) >= 8, run.stderr[-3000:]
    meta, summary, stats = document["meta"], document["summary"], document["stats"]
    start_over = meta["start_over"]
    assert start_over["share"] == 0.25 and start_over["viewers_planned"] == 10
    assert Path(start_over["recording"]) == (tmp_path / "o" / "recording").resolve()
    assert any((tmp_path / "o" / "recording").rglob("seg-*.m4s"))

    # DVR requests were made, counted under their own kinds, and reached the origin as such
    requests = stats["requests"]
    assert requests["multivariant-dvr"]["status_counts"] == {"200": 10}
    assert requests["multivariant"]["status_counts"] == {"200": 30}
    dvr_playlists = requests["playlist-dvr"]["status_counts"].get("200", 0)
    assert dvr_playlists >= 10 * 2 * 5  # 10 viewers × 2 tracks × a reload per 2 s, ≥ 10 s
    assert set(requests["playlist-dvr"]["status_counts"]) == {"200"}
    assert requests["segment-dvr"]["status_counts"].get("200", 0) >= 10 * 2 * 5
    assert "part-dvr" not in requests  # EVENT playlists: whole segments, no parts
    origin = start_over["origin_playlist_dvr_responses"].get("200", 0)
    assert dvr_playlists <= origin <= dvr_playlists + 2 * 10  # in flight at the end at most

    # their latency is reported separately: own histograms, summary figures, a per-second series
    assert requests["playlist-dvr"]["latency_s"]["count"] == dvr_playlists
    for name in ("dvr_request_latency_p50_s", "dvr_request_latency_p95_s"):
        assert summary[name] is not None and 0 < summary[name] < 1.0
    assert summary["dvr_request_latency_p50_s"] <= summary["dvr_request_latency_p95_s"]
    per_second = stats["timeline"]["dvr_request_latency_s"]
    assert sum(h["count"] for h in per_second) == sum(
        r["latency_s"]["count"] for kind, r in requests.items() if kind.endswith("-dvr")
    )
    html = (tmp_path / "o" / "report.html").read_text()
    assert "<h2>Start-over (DVR) viewers</h2>" in html
    assert "Request latency: live vs start-over viewers" in html

    # the live viewers' SLOs as before, over the live viewers only; the DVR ones beside them
    checks = document["verdict"]["checks"]
    names = [c["slo"]["name"] for c in checks]
    defaults = [slo.name for slo in DEFAULT_SLOS]
    assert [n for n in names if n in defaults] == defaults and names[-4:] == DVR_SLOS
    assert summary["viewers"] == 30 and summary["started"] == 30
    assert summary["dvr_viewers"] == 10 and summary["dvr_started"] == 10
    live_latency = next(c for c in checks if c["slo"]["name"] == "latency_p95")
    assert live_latency["measured"] < 3.0 and not live_latency["violated"]
    assert summary["dvr_behind_live_p50_s"] > 6.0  # they watch behind live, as asked
    assert all(c["measured"] is not None for c in checks if c["slo"]["name"] in DVR_SLOS)


@pytest.fixture
def no_recording_server() -> Iterator[str]:
    """A loopback HTTP server answering 404 to everything (an origin without a recording)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_error(404, "no such file")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/live/recording.json"
    server.shutdown()
    server.server_close()


def test_a_target_without_a_recording_is_refused_with_the_reason(no_recording_server: str) -> None:
    with pytest.raises(LivecastError, match=r"start-over viewers need a recording.*404"):
        fetch_recording_info(no_recording_server)
