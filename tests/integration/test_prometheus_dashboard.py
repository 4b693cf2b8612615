"""A real Prometheus (Debian's) scrapes a running ``livecast up --prometheus-targets FILE`` and
every query of the on-call dashboard (ops/grafana/livecast.json) is asked of it.

``livecast up`` runs with two edges, the loop source and load shedding on; a little is played
through each edge (playlists, parts with a ``CMCD=`` query argument, a missing part for a 404)
and at the origin, and a rehearsal (``livecast rehearse --metrics-port``, four viewers) plays
through both edges. Prometheus reads the targets from the file ``livecast up`` writes and the
rehearsal's file beside it (file_sd, re-read every second) and scrapes every second. Then each
panel target, with Grafana's ``$__rate_interval`` replaced by a window of ten scrapes, must
return data — except the ones listed in :func:`why_empty`, each with its reason, which a later
change can flip:

* the edges' ``livecast_edge_*`` (nginx Lua ``/edge/metrics``): required as soon as the edges
  answer ``/edge/metrics`` with 200, expected empty while they do not;
* the CMCD ``livecast_qoe_*``: required as soon as the origin's ``/metrics`` names them;
* what this topology cannot have: contribution ingest (loop source), the lease store (no
  ``[access]``), and counters whose series appear with their first event (media errors, dropped
  units, recording errors, shed requests).
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest

from livecast.edge.nginx import find_nginx
from livecast.edge.origins import free_port
from livecast.errors import LivecastError
from livecast.player.cmcd import encode, request_data, with_cmcd
from livecast.telemetry.prometheus_config import (
    ScrapeSettings,
    file_sd_json,
    prometheus_yml,
    rehearsal_targets,
    topology_targets,
)
from tests.integration.test_contribution import KEY, publisher_argv
from tests.requirements import skip_missing

from .processes import SRC, descendants, none_left, stop

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "ops" / "grafana" / "livecast.json"
LIVECAST_UP = (sys.executable, "-m", "livecast", "up", "--origin-port", "0")
REHEARSE = (sys.executable, "-m", "livecast", "rehearse")
RATE_WINDOW = "10s"  # $__rate_interval for 1 s scrapes: ten samples
SCRAPES_BEFORE_QUERYING = 4


def get(url: str, timeout: float = 10.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@dataclass
class Prometheus:
    """Debian's prometheus on a free loopback port, its TSDB in a temporary directory."""

    process: subprocess.Popen[bytes]
    base_url: str

    def query(self, expr: str) -> list[dict[str, Any]]:
        url = f"{self.base_url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        status, body = get(url)
        answer = json.loads(body)
        assert status == 200 and answer["status"] == "success", (expr, answer)
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def scalar(self, expr: str) -> float:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else 0.0


@pytest.fixture
def prometheus_binary() -> str:
    binary = shutil.which("prometheus")
    if binary is None:
        skip_missing("prometheus", "prometheus is not on PATH")
    return binary


@contextlib.contextmanager
def running_up(
    tmp_path: Path, event_toml: str, edges: int, env: dict[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[str], list[str], Path]]:
    """``livecast up --config EVENT --prometheus-targets FILE`` (origin port 0, its log in
    tmp_path/livecast.log); yields the process, its entry URLs and the targets file; stops it
    with SIGINT."""
    try:
        find_nginx()
    except LivecastError as exc:
        skip_missing("nginx", str(exc))
    event = tmp_path / "event.toml"
    event.write_text(event_toml)
    targets = tmp_path / "sd" / "livecast.json"
    pythonpath = SRC + os.pathsep + os.environ.get("PYTHONPATH", "")
    with (tmp_path / "livecast.log").open("w") as log:
        proc = subprocess.Popen(
            [*LIVECAST_UP, "--config", str(event), "--prometheus-targets", str(targets)],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env={**os.environ, "PYTHONPATH": pythonpath, **(env or {})},
        )
    try:
        assert proc.stdout is not None
        urls = [proc.stdout.readline().strip() for _ in range(edges)]
        assert all(u.endswith("/live/main.m3u8") for u in urls), tmp_path / "livecast.log"
        yield proc, urls, targets
    finally:
        stop(proc)


@pytest.fixture
def livecast_up(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], list[str], Path]]:
    """``livecast up`` with 2 edges, loop source, shedding on."""
    event = 'source = "loop"\n\n[edge]\nedges = 2\nport = 0\n\n[shedding]\nenabled = true\n'
    with running_up(tmp_path, event, edges=2) as running:
        yield running


@pytest.fixture
def prometheus(prometheus_binary: str, tmp_path: Path) -> Iterator[Prometheus]:
    port = free_port()
    config = tmp_path / "prometheus.yml"
    settings = ScrapeSettings(scrape_interval="1s", scrape_timeout="900ms", refresh_interval="1s")
    config.write_text(prometheus_yml([str(tmp_path / "sd" / "*.json")], settings))
    with (tmp_path / "prometheus.log").open("w") as log:
        process = subprocess.Popen(
            [
                prometheus_binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = Prometheus(process, f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 15
        while True:
            assert process.poll() is None, (tmp_path / "prometheus.log").read_text()[-2000:]
            try:
                if get(server.base_url + "/-/ready", timeout=1)[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "prometheus did not get ready in 15 s"
            time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def rehearsal(urls: list[str], tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """``livecast rehearse`` with four viewers on ``urls`` and ``--metrics-port``; its target file
    is written beside livecast up's. Yields the process and its metrics port; stops it."""
    port = free_port()
    scenario = tmp_path / "rehearsal.toml"
    scenario.write_text(
        'name = "prometheus-dashboard"\nduration = 40.0\nseed = 1\nworkers = 1\n\n'
        f"[target]\nurls = {json.dumps(urls)}\n\n"
        '[audience]\nkind = "flash"\nviewers = 4\nwithin = 1.0\n'
    )
    with (tmp_path / "rehearsal.log").open("w") as log:
        proc = subprocess.Popen(
            [*REHEARSE, str(scenario), "--out", str(tmp_path / "out"), "--metrics-port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")},
        )
    target = tmp_path / "sd" / "rehearsal.json"
    target.write_text(file_sd_json(rehearsal_targets([f"http://127.0.0.1:{port}"])))
    try:
        yield proc, port
    finally:
        target.unlink()
        children = descendants(proc.pid)
        stop(proc)
        assert none_left(children), "a rehearsal driver outlived livecast rehearse"


def play(entry_url: str, session: str) -> None:
    """A few requests as a CMCD-sending player makes them: the multivariant playlist and a media
    playlist (``su``: starting up), its last two parts (``br``, ``mtp``; the second flagged
    buffer-starved, ``bs``); and one missing part (a 404)."""
    base = entry_url.rsplit("/", 1)[0]  # …/live
    data = request_data(
        session_id=session,
        content_id="main",
        object_type="m",
        bitrate_bps=None,
        buffer_s=0.0,
        measured_bps=None,
        top_bitrate_bps=None,
        starting=True,
    )
    assert get(with_cmcd(entry_url, encode(data)))[0] == 200
    status, playlist = get(with_cmcd(f"{base}/audio/index.m3u8", encode(data)))
    assert status == 200, playlist
    parts = re.findall(rb'#EXT-X-PART:[^\n]*URI="([^"]+)"', playlist)
    assert parts, playlist
    for last, uri in enumerate(parts[-2:]):
        media = request_data(
            session_id=session,
            content_id="main",
            object_type="a",
            bitrate_bps=128_000,
            buffer_s=1.5,
            measured_bps=8_000_000,
            top_bitrate_bps=128_000,
            starting=False,
        )
        payload = encode(media)
        if last:  # the buffer ran dry: CMCD's "bs" key (between br and cid in key order)
            payload = payload.replace("cid=", "bs,cid=", 1)
        url = urllib.parse.urljoin(f"{base}/audio/index.m3u8", uri.decode())
        assert get(with_cmcd(url, payload))[0] == 200
    assert get(f"{base}/audio/no-such-part.m4s")[0] == 404


STATIC_EMPTY = {
    "livecast_ingest_on_air": "source = loop: no contribution inputs (the encoder test has)",
    "livecast_ingest_publishes_total": "source = loop: no publishes (the encoder test has)",
    "livecast_ingest_switches_total": "source = loop: no input switches",
    "livecast_ingest_received_bytes_total": "source = loop: no encoder (the encoder test has)",
    "livecast_packager_media_errors_total": "no unusable encoder output (series come with one)",
    "livecast_hub_dropped_units_total": "no dropped units (series come with the first)",
    "livecast_record_errors_total": "no recording disk errors (series come with the first)",
    "livecast_origin_shed_total": "nothing shed under no load (series come with the first)",
    "livecast_lease_store_round_trips_total": "no [access]: no lease store",
    "livecast_lease_store_errors_total": "no [access]: no lease store",
    "livecast_sessions_answered_total": "no [access]: no session endpoints",
}


def why_empty(expr: str, edge_metrics: bool, qoe_metrics: bool) -> str | None:
    """Why ``expr`` may return nothing here, or None when it must return data."""
    names = set(re.findall(r"\b(livecast_[a-z_]+?)(?:_bucket)?\b", expr))
    if not edge_metrics and any(n.startswith("livecast_edge_") for n in names):
        return "the edges serve no /edge/metrics yet"
    if not qoe_metrics and any(n.startswith("livecast_qoe_") for n in names):
        return "the origin's /metrics has no livecast_qoe_* yet"
    reasons = [STATIC_EMPTY[n] for n in sorted(names) if n in STATIC_EMPTY]
    # an expression that also reads something always present (a sum of several) must answer
    return reasons[0] if reasons and len(reasons) == len(names) else None


# What livecast up and a rehearsal feed today, whatever else lands later.
ALWAYS_ANSWERED = (
    "Viewers / A",
    "Startup time / A",
    "Scrape targets up / A",
    "Rebuffering ratio / A",
    "Latency behind live / C",
    "Origin errors / A",
    "Viewer-side errors (rehearsal) / A",
    "Requests by tier / B",
    "Egress by tier / B",
    "Packager parts per second / A",
    "Media errors, restarts, drops (5 min) / B",
    "Event-loop lag p90 / A",
    "Load shedding / B",
    "Connections / A",
    "Connections / B",
)


def dashboard_targets() -> list[tuple[str, str, str]]:
    data = json.loads(DASHBOARD.read_text())
    return [
        (panel["title"], target["refId"], target["expr"])
        for panel in data["panels"]
        if panel["type"] != "row"
        for target in panel["targets"]
    ]


def test_prometheus_scrapes_livecast_up_and_every_dashboard_query_answers(
    livecast_up: tuple[subprocess.Popen[str], list[str], Path],
    prometheus: Prometheus,
    tmp_path: Path,
) -> None:
    proc, urls, targets_file = livecast_up
    groups = json.loads(targets_file.read_text())
    nodes = {g["labels"]["node"]: g for g in groups}
    assert set(nodes) == {"origin-0", "edge-0", "edge-1"}
    for index, url in enumerate(urls):
        edge = nodes[f"edge-{index}"]
        assert url.startswith(f"http://{edge['targets'][0]}/")
        assert edge["labels"]["__metrics_path__"] == "/edge/metrics"
    origin = "http://" + nodes["origin-0"]["targets"][0]

    for index, url in enumerate(urls):
        play(url, f"session-{index}")
    assert get(origin + "/live/no-such-object")[0] == 404
    edge_metrics = all(
        get(f"http://{nodes[n]['targets'][0]}/edge/metrics")[0] == 200 for n in ("edge-0", "edge-1")
    )
    qoe_metrics = b"livecast_qoe_" in get(origin + "/metrics")[1]
    # both have landed (edge/metrics_lua.py, qoe/): their panels are no longer excusable
    assert edge_metrics and qoe_metrics

    with rehearsal(urls, tmp_path) as (driver, _):
        answered = ask_every_query(prometheus, edge_metrics, qoe_metrics)
        assert driver.poll() is None, (tmp_path / "rehearsal.log").read_text()[-2000:]

    children = descendants(proc.pid)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 0
    assert not targets_file.exists(), "livecast up left its targets behind"
    assert none_left(children)
    for must in ALWAYS_ANSWERED:  # whatever lands later, these never become excusable
        assert must in answered, must


def ask_every_query(prometheus: Prometheus, edge_metrics: bool, qoe_metrics: bool) -> list[str]:
    """Wait for a few scrapes of every target (the rehearsal's up), then ask every dashboard
    query; fail on those without data that :func:`why_empty` does not excuse."""
    deadline = time.monotonic() + 25
    started = time.monotonic()
    while True:
        seen = prometheus.query('count_over_time(up{job="livecast"}[1m])')
        if (
            len(seen) == 4
            and all(float(s["value"][1]) >= SCRAPES_BEFORE_QUERYING for s in seen)
            and time.monotonic() - started >= SCRAPES_BEFORE_QUERYING
        ):
            break
        assert time.monotonic() < deadline, seen
        time.sleep(0.25)
    up = {s["metric"]["node"]: s["value"][1] for s in prometheus.query('up{job="livecast"}')}
    assert up["origin-0"] == "1"
    if edge_metrics:
        assert up["edge-0"] == up["edge-1"] == "1"
    assert up["rehearsal"] == "1"
    roles = {s["metric"]["role"] for s in prometheus.query("up")}
    assert roles == {"origin", "edge", "rehearsal"}

    answered: list[str] = []
    empty_as_expected: dict[str, str] = {}
    missing: list[str] = []
    for title, ref_id, expr in dashboard_targets():
        query = expr.replace("$__rate_interval", RATE_WINDOW)
        result = prometheus.query(query)
        reason = why_empty(expr, edge_metrics, qoe_metrics)
        label = f"{title} / {ref_id}"
        if result:
            answered.append(label)
        elif reason is not None:
            empty_as_expected[label] = reason
        else:
            missing.append(f"{label}: {query}")
    expected = json.dumps(empty_as_expected, indent=1)
    print(f"\n{len(answered)} queries answered; expected empty: {expected}")
    assert not missing, "dashboard queries without data:\n" + "\n".join(missing)
    parts = prometheus.query(
        f"sum by (rendition) (rate(livecast_packager_parts_total[{RATE_WINDOW}]))"
    )
    assert {p["metric"]["rendition"] for p in parts} >= {"audio", "360p"}
    assert all(float(p["value"][1]) > 0 for p in parts), parts  # the pipeline is producing
    playing = prometheus.scalar("sum(livecast_rehearsal_viewers)")
    assert 1 <= playing <= 4, playing  # the scenario's four, once started
    return answered


def test_the_example_prometheus_config_passes_promtool() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        skip_missing("prometheus", "promtool is not on PATH")
    example = ROOT / "ops" / "prometheus" / "prometheus.yml"
    check = subprocess.run(
        [promtool, "check", "config", str(example)], capture_output=True, text=True, timeout=30
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS" in check.stdout


class KnownCounters(http.server.BaseHTTPRequestHandler):
    """Edge and origin series with known proportions, every counter growing by its share on
    each scrape (so each rate is proportional to it, and ratios of one target's rates are
    exact): edge-0 answers 6 HIT, 2 MISS and 2 MISS-5xx parts per step, edge-1 9 HIT parts and
    1 session request (no cache lookup), the shield 5 MISS parts, the origin 4 parts."""

    EDGE = (
        ("edge-0", "part", "HIT", "2xx", 6),
        ("edge-0", "part", "MISS", "2xx", 2),
        ("edge-0", "part", "MISS", "5xx", 2),
        ("edge-1", "part", "HIT", "2xx", 9),
        ("edge-1", "session", "none", "2xx", 1),
        ("shield", "part", "MISS", "2xx", 5),
    )
    steps: ClassVar[dict[str, int]] = {}

    def do_GET(self) -> None:
        step = self.steps[self.path] = self.steps.get(self.path, 0) + 1
        if self.path == "/edge/metrics":
            lines = [
                f'livecast_edge_requests_total{{tier="{t}",kind="{k}",cache="{c}",code="{x}"}} '
                f"{n * step}"
                for t, k, c, x, n in self.EDGE
            ]
        else:
            lines = [f'livecast_origin_requests_total{{type="part",status="200"}} {4 * step}']
        body = ("\n".join(lines) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_the_ratio_panels_compute_what_they_say_on_known_counters(
    prometheus: Prometheus, tmp_path: Path
) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), KnownCounters)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        groups = topology_targets([base], [("edge-0", base)])  # one /edge/metrics for all tiers
        (tmp_path / "sd").mkdir(exist_ok=True)
        (tmp_path / "sd" / "known.json").write_text(file_sd_json(groups))
        deadline = time.monotonic() + 20
        # the series older than the 5 s window, so no rate is cut short at a series' start
        while prometheus.scalar('min(count_over_time(up{job="livecast"}[1m]))') < 8:
            assert time.monotonic() < deadline, "prometheus did not scrape the known counters"
            time.sleep(0.25)
        by_title = {title: expr for title, _, expr in dashboard_targets()}

        def ask(title: str) -> dict[str, float]:
            query = by_title[title].replace("$__rate_interval", "5s")
            return {
                s["metric"].get("tier", ""): float(s["value"][1]) for s in prometheus.query(query)
            }

        five_xx = ask("Edge 5xx ratio by tier")
        assert five_xx == {
            "edge-0": pytest.approx(0.2),
            "edge-1": 0.0,  # no 5xx series at all: 0, not a gap
            "shield": 0.0,
        }
        assert ask("Edge cache hit ratio by tier") == {
            "edge-0": pytest.approx(0.6),
            "edge-1": pytest.approx(1.0),  # the session request is no cache lookup
            "shield": 0.0,  # lookups but no hits: 0, not a gap
        }
        # 1 − 4 origin parts ÷ 19 edge media requests (edge-0's 10, edge-1's 9; not the shield's,
        # not the session request); two targets scraped apart, so only nearly exact
        (offload,) = ask("Origin offload").values()
        assert offload == pytest.approx(1 - 4 / 19, abs=0.005)  # shield in: 0.83; session: 0.80
        errors = prometheus.query(
            by_title["Edge errors by tier"].replace("$__rate_interval", "10s")
        )
        assert {(s["metric"]["tier"], s["metric"]["code"]) for s in errors} == {("edge-0", "5xx")}
    finally:
        server.shutdown()
        server.server_close()


def test_with_an_encoder_publishing_the_ingest_panels_answer(
    prometheus: Prometheus, tmp_path: Path
) -> None:
    """``source = "rtmp"``: an FFmpeg encoder publishes (and one with a wrong key is refused);
    the ingest panels the loop source leaves empty now answer, by input and by result."""
    event = 'source = "rtmp"\n\n[ingest]\nrtmp_port = 0\n\n[edge]\nedges = 1\nport = 0\n'
    env = {"LIVECAST_STREAM_KEY": KEY}
    with running_up(tmp_path, event, edges=1, env=env) as (_, (entry,), _targets):
        log = tmp_path / "livecast.log"
        deadline = time.monotonic() + 20
        while not (ingest := re.findall(r"rtmp://[0-9.:]+/live", log.read_text())):
            assert time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.1)
        wrong = subprocess.run(
            publisher_argv(f"{ingest[0]}/not-the-key", 1.0),
            capture_output=True,
            timeout=30,
        )
        assert wrong.returncode != 0  # refused: counted as wrong_key
        encoder = subprocess.Popen(
            publisher_argv(f"{ingest[0]}/{KEY}", 60.0),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            while get(entry)[0] != 200:  # 503 until the encoder's media went through the ladder
                assert time.monotonic() < deadline + 25, log.read_text()[-2000:]
                time.sleep(0.2)
            while prometheus.scalar('min(count_over_time(up{role="origin"}[1m]))') < 3:
                assert time.monotonic() < deadline + 40, "prometheus did not scrape the origin"
                time.sleep(0.25)
            by_title = {
                (title, ref): expr.replace("$__rate_interval", RATE_WINDOW)
                for title, ref, expr in dashboard_targets()
            }
            on_air = prometheus.query(by_title["On air", "A"])
            assert {s["metric"]["input"]: s["value"][1] for s in on_air}.get("primary") == "1"
            publishes = prometheus.query(
                by_title["Encoder publishes and input switches (5 min)", "A"]
            )
            assert {s["metric"]["result"] for s in publishes} >= {"accepted", "wrong_key"}
            # the encoder's bytes reach the transcoder, in ladder runs (pipeline_metrics.collect)
            received = prometheus.scalar(
                'sum(livecast_ingest_received_bytes_total{input="primary"})'
            )
            assert received > 10_000, received
            assert prometheus.scalar("sum(livecast_transcode_runs_total)") >= 1
        finally:
            encoder.kill()
            encoder.wait()
