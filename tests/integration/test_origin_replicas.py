"""Epoch-locked origins as real processes on 127.0.0.1: two ``livecast serve --source loop
--epoch E`` started seconds apart serve the same bytes under the same names, and ``livecast up
--origins 2`` keeps every request through its edge answered while one origin is SIGKILLed.

The loop is the default 20 s one in the user's cache (~/.cache/livecast/loop): slow only the
first time it is pre-encoded."""

from __future__ import annotations

import concurrent.futures
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from livecast.edge.accesslog import parse_access_log_line
from livecast.edge.nginx import find_nginx
from livecast.edge.origins import free_port
from livecast.errors import LivecastError
from livecast.hls.playlist import parse_media_playlist
from tests.integration.test_pipeline import fetch
from tests.requirements import skip_missing

from .processes import descendants, livecast, none_left, stop

pytestmark = pytest.mark.integration

SEGMENT = 2.0


def wait_status(url: str, status: int, timeout: float) -> float:
    """Poll ``url`` until it answers ``status``; the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if fetch(url)[0] == status:
                return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.05)
    pytest.fail(f"{url} did not answer {status} within {timeout:g} s")


def serve(config: Path, port: int, epoch: float) -> subprocess.Popen[str]:
    return livecast(
        "serve", "--config", str(config), "--source", "loop", "--epoch", repr(epoch),
        "--port", str(port),
    )  # fmt: skip


def test_two_origins_with_the_same_epoch_serve_the_same_bytes(tmp_path: Path) -> None:
    config = tmp_path / "event.toml"
    config.write_text('source = "loop"\n')
    epoch = round(time.time() - 97.3, 3)  # almost 5 loops ago, between two segment boundaries
    ports = [free_port(), free_port()]
    bases = [f"http://127.0.0.1:{port}/live" for port in ports]
    first = serve(config, ports[0], epoch)
    second: subprocess.Popen[str] | None = None
    try:
        wait_status(bases[0] + "/main.m3u8", 200, timeout=120)  # a first pre-encode is slow
        time.sleep(3.0)
        second = serve(config, ports[1], epoch)
        joined = wait_status(bases[1] + "/main.m3u8", 200, timeout=60)
        print(f"the replica answered 200 {joined:.2f} s after its start")

        # a blocking reload for a part neither has yet: both answer at its release, identically
        status, body = fetch(bases[0] + "/audio/index.m3u8")
        assert status == 200
        plain = parse_media_playlist(body.decode())
        msn, _ = plain.last_part() or (0, 0)
        # MSNs count from the epoch: floor(E / SD) + media segment; ≈ 100 s in, 30 s listed
        assert 30 <= plain.media_sequence - int(epoch // SEGMENT) <= 36
        query = f"?_HLS_msn={msn + 1}&_HLS_part=1"  # ≈ ⅔ s after the next segment starts
        for name in ("audio", "720p"):
            urls = [f"{base}/{name}/index.m3u8{query}" for base in bases]
            with concurrent.futures.ThreadPoolExecutor(2) as pool:
                answers = list(pool.map(fetch, urls))
            assert [status for status, _ in answers] == [200, 200]
            assert answers[0][1] == answers[1][1], name  # the whole playlist, byte for byte
            pl = parse_media_playlist(answers[0][1].decode())
            assert pl.last_part() is not None and pl.last_part() >= (msn + 1, 1)
            text = answers[0][1].decode()
            uris = re.findall(r'URI="([^"]+\.m4s)"', text)
            uris += [line for line in text.splitlines() if line.endswith(".m4s")]
            uris += re.findall(r'URI="(init-[^"]+\.mp4)"', text)[:1]
            assert len(uris) > 20
            for uri in uris[-12:] + uris[:3]:  # the newest parts, the oldest segments, the init
                if "part-" in uri and uri.endswith(f"{msn + 1}.2.m4s"):
                    continue  # the preload hint: not released yet
                one = fetch(f"{bases[0]}/{name}/{uri}")
                other = fetch(f"{bases[1]}/{name}/{uri}")
                assert one[0] == 200 and one == other, uri
        for _ in range(3):  # the multivariant playlist: bit rates from the same segments
            answers = [fetch(base + "/main.m3u8") for base in bases]
            if answers[0] == answers[1]:
                break
        assert answers[0] == answers[1]
    finally:
        stop(first)
        if second is not None:
            stop(second)
    assert first.returncode == 0 and second is not None and second.returncode == 0


def tier_access_log(pid: int, tier: str) -> Path:
    """The access log of ``tier`` (edge-0, shield) under ``livecast up`` ``pid`` (nginx -p)."""
    for child in descendants(pid):
        title = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").split()
        if title[:2] == [b"nginx:", b"master"]:
            prefix = Path(title[title.index(b"-p") + 1].decode())
            if prefix.name == tier:
                return prefix / "access.log"
    pytest.fail(f"no nginx master of {tier} under livecast up")


def origin_children(pid: int) -> list[int]:
    return [
        child
        for child in descendants(pid)
        if b"serve" in Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
    ]


@pytest.mark.parametrize("shield", [False, True], ids=["edge", "shield"])
def test_up_with_two_origins_fails_over_when_one_is_killed(tmp_path: Path, shield: bool) -> None:
    """The tier in front of the origins (the edge, or the shield behind it) fails over."""
    try:
        find_nginx()
    except LivecastError as exc:
        skip_missing("nginx", str(exc))
    proc = livecast(
        "up", "--origins", "2", "--edges", "1", "--port", "0", "--origin-port", "0",
        "--source", "loop", *(["--shield"] if shield else []),
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        entry = proc.stdout.readline().strip()
        assert entry.endswith("/live/main.m3u8")
        (replica,) = origin_children(proc.pid)
        access_log = tier_access_log(proc.pid, "shield" if shield else "edge-0")
        base = entry.rsplit("/", 1)[0] + "/audio/"
        status, body = fetch(base + "index.m3u8")
        assert status == 200
        position = parse_media_playlist(body.decode()).next_part()
        assert position is not None
        answered: list[tuple[str, int]] = []
        killed_at = None
        started = time.monotonic()
        while time.monotonic() - started < 8.0:  # a viewer: blocking reload, then the part
            if killed_at is None and time.monotonic() - started > 3.0:
                os.kill(replica, signal.SIGKILL)  # the spawned origin: no chance to close
                killed_at = time.monotonic()
            msn, index = position
            status, body = fetch(f"{base}index.m3u8?_HLS_msn={msn}&_HLS_part={index}")
            answered.append((f"playlist {msn}.{index}", status))
            assert status == 200, answered[-1]
            pl = parse_media_playlist(body.decode())
            last = pl.last_part()
            assert last is not None and last >= position
            status, _ = fetch(f"{base}part-{msn}.{index}.m4s")
            answered.append((f"part {msn}.{index}", status))
            assert status == 200, answered[-1]
            position = pl.next_part() or position
        assert killed_at is not None and len(answered) > 40  # ≈ 3 parts/s for 8 s, 2 requests
        last = f"part-{msn}.{index}.m4s"  # the viewer's last request: logged last
        deadline = time.monotonic() + 5.0  # nginx writes its access log buffer every second
        while last not in access_log.read_text():
            assert time.monotonic() < deadline, f"{last} not in the access log"
            time.sleep(0.1)
        records = [parse_access_log_line(line) for line in access_log.read_text().splitlines()]
        retried = [r for r in records if r is not None and len(r.upstream_addrs) > 1]
        assert retried, "no request was passed to the other origin"
        assert all(r.status == 200 for r in retried)
        # the replica is restarted with the same epoch and joins in step
        deadline = time.monotonic() + 30
        while not [pid for pid in origin_children(proc.pid) if pid != replica]:
            assert time.monotonic() < deadline, "the killed origin was not restarted"
            time.sleep(0.2)
        processes = descendants(proc.pid)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert none_left(processes), "a child outlived livecast up"
        err = proc.stderr.read() if proc.stderr else ""
        assert "origin-1" in err and "restarted" in err, err[-2000:]
        print(f"{len(answered)} answers, all 200; failed over: ")
        for record in retried:
            print(" ", record.target, record.upstream_addrs, record.upstream_status)
        print("\n".join(line for line in err.splitlines() if "origin-1" in line))
    finally:
        stop(proc)
