"""``livecast serve --config examples/obs.toml`` as the user runs it (its own process, uvloop):
it prints the playlist, player and RTMP URLs without waiting, an FFmpeg publisher's show plays,
the key never reaches the output, and SIGINT stops everything."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from livecast.config import load_config
from tests.integration.test_contribution import KEY, fetch, publisher_argv

from .processes import descendants, livecast, none_left

pytestmark = pytest.mark.integration


def test_serve_examples_obs_toml_takes_an_rtmp_publish(tmp_path: Path) -> None:
    example = Path("examples/obs.toml").read_text()
    config = tmp_path / "obs.toml"
    config.write_text(
        example.replace("port = 8080", "port = 0").replace("rtmp_port = 1935", "rtmp_port = 0")
    )
    load_config(config, env={"LIVECAST_STREAM_KEY": KEY})  # still the example, ports aside
    proc = livecast("serve", "--config", str(config), env={"LIVECAST_STREAM_KEY": KEY})
    publisher = None
    try:
        assert proc.stdout is not None
        playlist, player, ingest = (proc.stdout.readline().strip() for _ in range(3))
        assert playlist.endswith("/live/main.m3u8") and player.endswith("/player.html")
        assert ingest.startswith("rtmp://127.0.0.1:") and ingest.endswith("/live")
        assert fetch(playlist)[0] == 503  # waiting for the encoder
        publisher = subprocess.Popen(
            publisher_argv(f"{ingest}/{KEY}", 20.0),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        deadline = time.monotonic() + 25
        while fetch(playlist)[0] != 200:
            assert time.monotonic() < deadline, "the published show never played"
            assert publisher.poll() is None, publisher.stderr.read() if publisher.stderr else ""
            time.sleep(0.2)
        processes = descendants(proc.pid)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        assert none_left(processes)
        err = proc.stderr.read() if proc.stderr else ""
        assert KEY not in err and "publish to rtmp://" in err and "Traceback" not in err, err
    finally:
        if publisher is not None:
            publisher.kill()
            publisher.communicate()
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
