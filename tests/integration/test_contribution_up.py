"""``livecast up --origins 2 --source rtmp``: two origins, each with its own RTMP port, one
encoder publishing to both (FFmpeg's tee muxer, as OBS does with a second output), an nginx
edge in front; SIGKILL one origin and every request through the edge is still answered — also
once the killed origin is back, waiting for an encoder that does not reconnect (its 503s, for
media too, send the edge to the other origin; it once answered a part with a 404, which reached
the viewer)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from livecast.edge.nginx import find_nginx
from livecast.errors import LivecastError
from livecast.hls.playlist import parse_media_playlist
from tests.integration.test_contribution import KEY
from tests.integration.test_contribution_epoch_lock import tee_argv
from tests.integration.test_origin_replicas import origin_children
from tests.integration.test_pipeline import fetch
from tests.requirements import skip_missing

from .processes import descendants, livecast, none_left

pytestmark = pytest.mark.integration


def follow(stream: object, lines: list[str]) -> threading.Thread:
    def read() -> None:
        for line in stream:  # type: ignore[attr-defined]
            lines.append(line)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def _origin_url(line: str, name: str) -> str | None:
    """The URL of origin ``name`` from ``livecast up``'s "origin-1: pid N on URL (…)" line."""
    found = re.search(rf"\b{name}: pid \d+ on (http://\S+) ", line)
    return found.group(1) if found else None


def _status(url: str) -> int | None:
    """The status ``url`` answers with; None when nothing listens there."""
    try:
        return fetch(url)[0]
    except OSError:
        return None


def test_up_with_two_rtmp_origins_fails_over_when_one_is_killed(tmp_path: Path) -> None:
    try:
        find_nginx()
    except LivecastError as exc:
        skip_missing("nginx", str(exc))
    config = tmp_path / "event.toml"
    config.write_text('source = "rtmp"\n[ingest]\nrtmp_port = 0\n')
    proc = livecast(
        "up", "--origins", "2", "--edges", "1", "--port", "0", "--origin-port", "0",
        "--config", str(config), env={"LIVECAST_STREAM_KEY": KEY},
    )  # fmt: skip
    publisher = None
    err: list[str] = []
    try:
        assert proc.stdout is not None and proc.stderr is not None
        entry = proc.stdout.readline().strip()
        assert entry.endswith("/live/main.m3u8"), entry
        follow(proc.stderr, err)
        deadline = time.monotonic() + 20
        while not any("publishes to every origin" in line for line in err):
            assert time.monotonic() < deadline, "".join(err)
            time.sleep(0.1)
        line = next(line for line in err if "publishes to every origin" in line)
        urls = re.findall(r"rtmp://[0-9.:]+/live", line)
        assert len(urls) == 2, line
        publisher = subprocess.Popen(
            tee_argv([f"{url}/{KEY}" for url in urls], 40.0),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        base = entry.rsplit("/", 1)[0] + "/audio/"
        deadline = time.monotonic() + 25
        while fetch(entry)[0] != 200:  # 503 until the encoder's media went through the ladder
            assert time.monotonic() < deadline, "".join(err[-20:])
            time.sleep(0.2)
        (replica,) = origin_children(proc.pid)
        (replica_url,) = {u for line in err if (u := _origin_url(line, "origin-1")) is not None}
        position = parse_media_playlist(fetch(base + "index.m3u8")[1].decode()).next_part()
        assert position is not None
        answered: list[tuple[str, int]] = []
        killed = False
        back = False  # the restarted origin answers (503: it waits for its encoder)
        started = time.monotonic()
        # a viewer: blocking reload, then the part — for 10 s, and until the killed origin is back
        while time.monotonic() - started < 10.0 or not back:
            assert time.monotonic() - started < 40.0, ("the killed origin did not come back", err)
            if not killed and time.monotonic() - started > 3.0:
                os.kill(replica, signal.SIGKILL)
                killed = True
            msn, index = position
            if killed and not back and _status(replica_url + "/live/main.m3u8") == 503:
                back = True  # and the part the viewer asks for next is a 503 there too, which
                # the edge passes to the other origin (a 404 would reach the viewer)
                assert _status(f"{replica_url}/live/audio/part-{msn}.{index}.m4s") == 503
            status, body = fetch(f"{base}index.m3u8?_HLS_msn={msn}&_HLS_part={index}")
            answered.append((f"playlist {msn}.{index}", status))
            assert status == 200, answered[-1]
            playlist = parse_media_playlist(body.decode())
            status, _ = fetch(f"{base}part-{msn}.{index}.m4s")
            answered.append((f"part {msn}.{index}", status))
            assert status == 200, answered[-1]
            position = playlist.next_part() or position
        assert killed and len(answered) > 40
        processes = descendants(proc.pid)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert none_left(processes), "a child outlived livecast up"
        assert KEY not in "".join(err)
    finally:
        if publisher is not None:
            publisher.kill()
            publisher.wait()
        if proc.poll() is None:
            proc.kill()
        proc.wait()
